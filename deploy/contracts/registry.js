#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Deploy the p2pwg registry contract and edit its list over plain JSON-RPC
// (node >= 18, no other dependency). Transactions are sent with
// eth_sendTransaction, so the RPC endpoint must hold the sender's unlocked
// account (anvil, a dev node, or a local signer such as clef or a wallet proxy).
//
//   registry.js [--rpc URL] [--from ADDR] deploy           prints the address
//   registry.js [--rpc URL] --address ADDR add URL         appends URL
//   registry.js [--rpc URL] --address ADDR remove INDEX    later entries move up
//   registry.js [--rpc URL] --address ADDR move FROM TO
//   registry.js [--rpc URL] --address ADDR list            one URL a line
//
// Defaults: --rpc $P2PWG_RPC or http://127.0.0.1:8545, --address
// $P2PWG_REGISTRY_ADDRESS, --from the node's first account.
'use strict';
const fs = require('fs');
const path = require('path');

const art = JSON.parse(fs.readFileSync(path.join(__dirname, 'P2pwgRegistry.json'), 'utf8'));
const sel = (sig) => art.methodIdentifiers[sig];

function die(msg) {
  process.stderr.write(`registry.js: ${msg}\n`);
  process.exit(1);
}

let id = 0;
async function rpc(url, method, params) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
  });
  const j = await res.json();
  if (j.error) die(`${method}: ${j.error.message}${j.error.data ? ' ' + JSON.stringify(j.error.data) : ''}`);
  return j.result;
}

const word = (n) => BigInt(n).toString(16).padStart(64, '0');
function encString(s) {
  const hex = Buffer.from(s, 'utf8').toString('hex');
  return word(Buffer.byteLength(s)) + hex.padEnd(Math.ceil(hex.length / 64) * 64, '0');
}

function decStrings(hex) {
  const b = Buffer.from(hex.replace(/^0x/, ''), 'hex');
  const num = (o) => Number(BigInt('0x' + b.subarray(o, o + 32).toString('hex')));
  const base = num(0);
  const n = num(base);
  const out = [];
  for (let i = 0; i < n; i++) {
    const at = base + 32 + num(base + 32 + 32 * i);
    out.push(b.subarray(at + 32, at + 32 + num(at)).toString('utf8'));
  }
  return out;
}

async function send(url, from, to, data) {
  const tx = { from, data };
  if (to) tx.to = to;
  const hash = await rpc(url, 'eth_sendTransaction', [tx]);
  for (let i = 0; i < 600; i++) {
    const r = await rpc(url, 'eth_getTransactionReceipt', [hash]);
    if (r) {
      if (r.status !== '0x1') die(`transaction ${hash} reverted`);
      return r;
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  die(`transaction ${hash} not mined within 60 s`);
}

async function main() {
  const args = process.argv.slice(2);
  const opt = { rpc: process.env.P2PWG_RPC || 'http://127.0.0.1:8545', address: process.env.P2PWG_REGISTRY_ADDRESS };
  while (args.length && args[0].startsWith('--')) {
    const k = args.shift().slice(2);
    if (!['rpc', 'from', 'address'].includes(k) || !args.length) die(`bad option --${k}`);
    opt[k] = args.shift();
  }
  const cmd = args.shift();
  const from = opt.from || (cmd === 'list' ? undefined : (await rpc(opt.rpc, 'eth_accounts', []))[0]);
  if (cmd !== 'list' && !from) die('no account to send from (--from)');
  if (cmd !== 'deploy' && !/^0x[0-9a-fA-F]{40}$/.test(opt.address || '')) die('--address 0x<40 hex digits> is needed');
  const idx = (s) => (/^[0-9]+$/.test(s || '') ? word(s) : die(`not an index: ${s}`));
  switch (cmd) {
    case 'deploy': {
      const r = await send(opt.rpc, from, null, art.bytecode);
      console.log(r.contractAddress);
      break;
    }
    case 'add':
      if (args.length !== 1) die('add URL');
      await send(opt.rpc, from, opt.address, '0x' + sel('add(string)') + word(32) + encString(args[0]));
      break;
    case 'remove':
      await send(opt.rpc, from, opt.address, '0x' + sel('remove(uint256)') + idx(args[0]));
      break;
    case 'move':
      await send(opt.rpc, from, opt.address, '0x' + sel('move(uint256,uint256)') + idx(args[0]) + idx(args[1]));
      break;
    case 'list': {
      const res = await rpc(opt.rpc, 'eth_call', [{ to: opt.address, data: '0x' + sel('nodes()') }, 'latest']);
      for (const u of decStrings(res)) console.log(u);
      break;
    }
    default:
      die('usage: registry.js [--rpc URL] [--from ADDR] [--address ADDR] deploy|add URL|remove INDEX|move FROM TO|list');
  }
}

main().catch((e) => die(e.message));
