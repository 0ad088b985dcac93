#!/bin/bash
# SPDX-License-Identifier: MIT
# Regenerate the committed seed corpora from readable sources (protoc --encode
# for agent requests, RFC 5769 vectors for STUN). Needs protobuf-compiler and
# xxd, which the tests themselves do not. Run from anywhere.
set -eu
cd "$(dirname "$0")"
C=corpus
mkdir -p $C/agent $C/stun $C/testsrv $C/stunraw
key_b=$(printf 'B%.0s' $(seq 32)) key_c=$(printf 'C%.0s' $(seq 32))
enc() { # name text: one agent request, prefixed by the harness's selector byte
	{ printf "\\x$1"; protoc --encode=p2pwg.Request -I../../proto ../../proto/agent.proto <<<"$3"; } >$C/agent/$2
}
enc 01 hello 'id: 1 hello { version: 1 }'
enc 01 get 'id: 2 get_device {}'
enc 01 set 'id: 3 set_peers { address { addr: "\x0a\x58\x00\x0a" prefix_len: 24 } listen_port: 51820
  peers { public_key: "'$key_b'" endpoint { addr: "\xc6\x12\x00\x02" port: 51820 }
          allowed_ips { addr: "\x0a\x58\x00\x0b" prefix_len: 32 } keepalive: 25 }
  peers { public_key: "'$key_c'" allowed_ips { addr: "\x0a\x58\x00\x0c" prefix_len: 32 } } }'
enc 01 set_empty 'id: 4 set_peers {}'
enc 01 stun 'id: 5 stun_exchange { server { addr: "\xc6\x12\x00\x03" port: 3478 }
  request: "\x00\x01\x00\x00\x21\x12\xa4\x42abcdefghijkl" timeout_ms: 500 }'
{ printf '\x00'; cat $C/agent/set $C/agent/set; } >$C/agent/set_twice
enc 01 path_check 'id: 6 path_check { to { addr: "\xc0\xa8\x01\x03" port: 51820 }
  peer_key: "'$key_b'" txid: "abcdefghijkl" timeout_ms: 500 }'
# (set_then_path_check: a SetPeers naming B, then a PathCheck to B, in two equal halves.)
# RFC 5769 2.2 (IPv4 response), 2.3 (IPv6 response).
xxd -r -p >$C/stun/rfc5769_ipv4 <<'X'
0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220
002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7
80280004c07d4c96
X
xxd -r -p >$C/stun/rfc5769_ipv6 <<'X'
010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220
002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf1
1784c97c8292c275bfe3ed4180280004c8fb0b4c
X
# The IPv4 vector with XOR-MAPPED-ADDRESS's reserved byte set (RFC 8489: ignored).
xxd -r -p >$C/stun/reserved_byte_set <<'X'
0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220
00200008ff01a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7
80280004c07d4c96
X
printf 'GET /test HTTP/1.1\r\nHost: 10.88.0.10:8000\r\n\r\n' >$C/testsrv/get_test
printf 'GET /other HTTP/1.0\n\n' >$C/testsrv/get_other
printf 'POST /test HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc' >$C/testsrv/post
# IPv4 (with a 4-byte option) + UDP to 51820 + the IPv4 STUN vector.
{ printf '\x46\x00\x00\x5c\x00\x00\x00\x00\x40\x11\x00\x00\xc6\x12\x00\x03\xc6\x12\x00\x01\x01\x01\x01\x00'
  printf '\x0d\x96\xca\x6c\x00\x48\x00\x00'; cat $C/stun/rfc5769_ipv4; } >$C/stunraw/ipv4_options
{ printf '\x45\x00\x00\x58\x00\x00\x00\x00\x40\x11\x00\x00\xc6\x12\x00\x03\xc6\x12\x00\x01'
  printf '\x0d\x96\xca\x6c\x00\x48\x00\x00'; cat $C/stun/rfc5769_ipv4; } >$C/stunraw/ipv4
# The registry: nodes()' return data (the reference contract on anvil, two
# URLs), an empty list, and JSON-RPC answers wrapping them.
mkdir -p $C/abi $C/registry
nodes_hex='0000000000000000000000000000000000000000000000000000000000000020
0000000000000000000000000000000000000000000000000000000000000002
0000000000000000000000000000000000000000000000000000000000000040
0000000000000000000000000000000000000000000000000000000000000080
0000000000000000000000000000000000000000000000000000000000000013
68747470733a2f2f632f6e6f64652e6a736f6e00000000000000000000000000
0000000000000000000000000000000000000000000000000000000000000013
68747470733a2f2f622f6e6f64652e6a736f6e00000000000000000000000000'
xxd -r -p >$C/abi/two_urls <<<"$nodes_hex"
xxd -r -p >$C/abi/empty <<<'0000000000000000000000000000000000000000000000000000000000000020
0000000000000000000000000000000000000000000000000000000000000000'
printf '{"jsonrpc":"2.0","id":1,"result":"0x%s"}' "$(tr -d '\n' <<<"$nodes_hex")" >$C/registry/call_two_urls
printf '{"jsonrpc":"2.0","id":1,"result":"0x1a"}' >$C/registry/block
printf '{"jsonrpc":"2.0","id":1,"result":"0x"}' >$C/registry/call_no_contract
printf '{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted: custom error 0x30cd7471","data":"0x30cd7471"}}' >$C/registry/revert
