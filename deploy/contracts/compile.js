// SPDX-License-Identifier: MIT
// Compile P2pwgRegistry.sol with the npm solc package (version pinned in
// compile.sh) into P2pwgRegistry.json: abi, bytecode, method identifiers.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const src = path.join(__dirname, 'P2pwgRegistry.sol');
const input = {
  language: 'Solidity',
  sources: { 'P2pwgRegistry.sol': { content: fs.readFileSync(src, 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'paris',
    outputSelection: { '*': { P2pwgRegistry: ['abi', 'evm.bytecode.object', 'evm.methodIdentifiers'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of out.errors || []) {
  process.stderr.write(e.formattedMessage);
  if (e.severity === 'error') process.exit(1);
}
const c = out.contracts['P2pwgRegistry.sol'].P2pwgRegistry;
const doc = {
  compiler: 'solc ' + solc.version(),
  settings: { optimizer: input.settings.optimizer, evmVersion: input.settings.evmVersion },
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
  methodIdentifiers: c.evm.methodIdentifiers,
};
fs.writeFileSync(path.join(__dirname, 'P2pwgRegistry.json'), JSON.stringify(doc, null, 1) + '\n');
