// SPDX-License-Identifier: MIT
// A JSON-RPC endpoint that answers wrongly on purpose, for the registry test.
//   node fakerpc.js HOST PORT garbage   every answer is not JSON
//   node fakerpc.js HOST PORT abi       a new block each time; eth_call returns a
//                                       string[] whose length claims more than it holds
//   node fakerpc.js HOST PORT revert    a new block each time; eth_call reverts
//   node fakerpc.js HOST PORT lagging URL...
//                                       a good endpoint whose backends lag: blocks 1001
//                                       and 1000 by turns (per client); eth_call
//                                       returns the URLs.
//                                       Prints "<client address> <method>" per request.
'use strict';
const http = require('http');

const [host, port, mode, ...urls] = process.argv.slice(2);
let block = 1000;
const seen = {}; // lagging: blockNumber answers per client
const word = (n) => n.toString(16).padStart(64, '0');

// The canonical ABI encoding of a string[] return value.
function strings(list) {
  let heads = '';
  let tails = '';
  let at = 32 * list.length;
  for (const u of list) {
    const hex = Buffer.from(u).toString('hex');
    heads += word(at);
    tails += word(u.length) + hex.padEnd(Math.ceil(hex.length / 64) * 64, '0');
    at += 32 + Math.ceil(hex.length / 64) * 32;
  }
  return word(32) + word(list.length) + heads + tails;
}

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
      if (mode === 'lagging') {
        console.log(`${req.socket.remoteAddress} ${q.method}`);
        if (q.method === 'eth_blockNumber') {
          const n = (seen[req.socket.remoteAddress] = (seen[req.socket.remoteAddress] || 0) + 1);
          a.result = '0x' + (n % 2 ? 1001 : 1000).toString(16);
        }
        else a.result = '0x' + strings(urls);
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify(a));
      }
      if (q.method === 'eth_blockNumber') a.result = '0x' + (block++).toString(16);
      else if (mode === 'revert') a.error = { code: 3, message: 'execution reverted', data: '0x' };
      else a.result = '0x' + word(32) + word(5) + word(32 * 5);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(a));
    });
  })
  .listen(Number(port), host);
