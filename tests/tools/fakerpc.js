// SPDX-License-Identifier: MIT
// A JSON-RPC endpoint that answers wrongly on purpose, for the registry test.
//   node fakerpc.js HOST PORT garbage   every answer is not JSON
//   node fakerpc.js HOST PORT abi       a new block each time; eth_call returns a
//                                       string[] whose length claims more than it holds
//   node fakerpc.js HOST PORT revert    a new block each time; eth_call reverts
'use strict';
const http = require('http');

const [host, port, mode] = process.argv.slice(2);
let block = 1000;
const word = (n) => n.toString(16).padStart(64, '0');

http
  .createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (mode === 'garbage') return res.end('<html>502 upstream garbage\x1b[31m</html>');
      let q;
      try {
        q = JSON.parse(body);
      } catch (e) {
        return res.end('{}');
      }
      const a = { jsonrpc: '2.0', id: q.id };
      if (q.method === 'eth_blockNumber') a.result = '0x' + (block++).toString(16);
      else if (mode === 'revert') a.error = { code: 3, message: 'execution reverted', data: '0x' };
      else a.result = '0x' + word(32) + word(5) + word(32 * 5);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(a));
    });
  })
  .listen(Number(port), host);
