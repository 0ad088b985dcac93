#!/bin/bash
# SPDX-License-Identifier: MIT
# The peer list from a smart contract: a real local chain (anvil, from npm)
# in the NAT lab's gateway namespace, the reference registry contract deployed
# on it, and three nodes whose controlds read it (P2PWG_REGISTRY) instead of a
# Gist. The mesh follows an add, a reorder (addresses follow positions) and a
# removal made by transactions; with the chain stopped, or an RPC endpoint
# answering garbage, a malformed list or a revert, it stays as it was; a
# lagging endpoint's older blocks are not read again.
# Prints the time from each transaction to the mesh applying it.
# Usage: natlab_registry_e2e.sh WGAGENT CONTROLD AGENTCTL
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq node npm; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done

# anvil from npm, installed once into a cache (CI machines start empty).
ANVIL_VERSION=1.7.1
ANVIL_DIR=${P2PWG_NPM_CACHE:-/var/cache/p2pwg/npm}/anvil-$ANVIL_VERSION
ANVIL=$ANVIL_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
if [ ! -x "$ANVIL" ]; then
	mkdir -p "$ANVIL_DIR" && npm install --prefix "$ANVIL_DIR" --no-audit --no-fund \
		"@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION" >/dev/null 2>&1 && [ -x "$ANVIL" ] ||
		{ echo "cannot install anvil with npm into $ANVIL_DIR"; exit 1; }
fi

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
ALL="0 1 2"
RPC_PORT=8545

# ---- the chain, in the gateway's namespace: each node reaches it over its
# own gateway link as gist.<domain> (its /etc/hosts) ----
ip netns exec "$NL_GW" "$ANVIL" --host 0.0.0.0 --port $RPC_PORT --silent >"$TMP/anvil.log" 2>&1 &
ANVIL_PID=$!
track_pid $ANVIL_PID anvil
disown $ANVIL_PID
reg() { ip netns exec "$NL_GW" node "$ROOT/deploy/contracts/registry.js" --rpc "http://127.0.0.1:$RPC_PORT" "$@"; }
retry 15 ip netns exec "$NL_GW" curl -sf -m 1 -H 'content-type: application/json' \
	-d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "http://127.0.0.1:$RPC_PORT" ||
	{ fail "anvil did not start"; cat "$TMP/anvil.log"; exit 1; }
ADDR=$(reg deploy) || { fail "cannot deploy the registry contract"; exit 1; }
pass "registry contract deployed at $ADDR"
reg --address "$ADDR" add "$(nl_url 0)" && reg --address "$ADDR" add "$(nl_url 1)" ||
	{ fail "cannot add the first nodes"; exit 1; }
check "the contract lists n0, n1" test "$(reg --address "$ADDR" list | tr '\n' ' ')" = "$(nl_url 0) $(nl_url 1) "

# ---- three nodes read the contract; n2 runs but is not listed yet ----
for k in $ALL; do
	natlab_add_node $k easy || { fail "cannot add node $k"; exit 1; }
	NL_CTLD_ENV[$k]="GIST_URL= P2PWG_ALLOW_HTTP=1 P2PWG_REGISTRY=$ADDR@http://gist.$NL_DOMAIN:$RPC_PORT"
done
for k in $ALL; do natlab_start_agent $k || { fail "n$k's agent did not start"; exit 1; }; done
for k in $ALL; do natlab_start_controld $k; done

overlay_of() { natlab_status "$1" | jq -r .node.overlay_ip; }
# addresses K:POS...: every node K has the address of list position POS.
addresses() {
	local kp
	for kp in "$@"; do [ "$(overlay_of "${kp%%:*}")" = "10.88.0.$((10 + ${kp#*:}))/32" ] || return 1; done
}
# reach K:POS...: node K gets /test from the node at list position POS, over the overlay.
reach() {
	local kp a
	for kp in "$@"; do
		a=10.88.0.$((10 + ${kp#*:}))
		ip netns exec "$(nl_ns "${kp%%:*}")" curl -s -m 1 "http://$a:8000/test" | grep -qF "\"wg_ip\": \"$a/32\"" || return 1
	done
}
peers_of() { natlab_wg "$1" allowed-ips | sort; }
mesh_state() { local k; for k in "$@"; do echo "n$k"; peers_of $k; done; }
list_error_everywhere() { # PATTERN K...
	local p=$1 k; shift
	for k in "$@"; do natlab_status "$k" | jq -e --arg p "$p" '.list.error // "" | test($p)' >/dev/null || return 1; done
}
dump() {
	local k
	for k in "$@"; do
		echo "---- n$k controld.log (last 20 lines)"; tail -n 20 "$(nl_dir "$k")/controld.log"
		echo "---- n$k /status .list"; natlab_status "$k" | jq -c .list
	done
}
# tx ARGS: send a transaction (registry.js waits until it is mined); T_TX is when it was sent.
T_TX=0
tx() { T_TX=$(date +%s.%N); reg --address "$ADDR" "$@"; }

T0=$(date +%s.%N)
if retry 60 natlab_full_mesh 0 1 && retry 10 addresses 0:0 1:1; then
	pass "n0, n1 from the contract: full mesh, addresses of their positions ($(nl_elapsed "$T0") s)"
else
	fail "no mesh of n0, n1 from the contract within 60 s"; dump $ALL; e2e_summary; exit 1
fi
check "n0's /status names the registry and the block it read" \
	bash -c "ip netns exec $(nl_ns 0) curl -s -m 3 http://127.0.0.1:8081/status | jq -e '.list.url == \"$ADDR@http://gist.$NL_DOMAIN:$RPC_PORT\" and .list.block > 0 and .list.entries == 2'"
check "n2 (not listed) has no address and no peer" test "$(overlay_of 2) $(natlab_wg 2 peers | wc -l)" = "null 0"

# ==== add: a transaction appends n2 ====
tx add "$(nl_url 2)" || fail "add transaction"
if retry 30 natlab_full_mesh $ALL && retry 5 addresses 2:2; then
	t=$(nl_elapsed "$T_TX")
	pass "add n2 by transaction: full mesh of 3, n2 at 10.88.0.12"
	echo "figure: registry add, transaction to full mesh (every pair /test ok): $t s (poll ${NL_POLL} s)"
else
	fail "the mesh did not follow the add"; dump $ALL
fi

# ==== reorder: n2 moves to the front; every address follows its position ====
tx move 2 0 || fail "move transaction"
if retry 30 addresses 2:0 0:1 1:2 && retry 30 reach 0:0 0:2 1:0 1:1 2:1 2:2; then
	t=$(nl_elapsed "$T_TX")
	pass "move n2 to position 0 by transaction: n2 10.88.0.10, n0 .11, n1 .12, each /test answers at its new address"
	echo "figure: registry move, transaction to every /test answering at the new addresses: $t s"
else
	fail "the mesh did not follow the move ($(for k in $ALL; do printf 'n%s=%s ' $k "$(overlay_of $k)"; done))"; dump $ALL
fi
check "n0 routes n2 at 10.88.0.10 and n1 at 10.88.0.12" \
	bash -c "[ \"\$(ip netns exec $(nl_ns 0) wg show $(nl_if 0) allowed-ips | awk '{print \$2}' | sort | tr '\n' ' ')\" = '10.88.0.10/32 10.88.0.12/32 ' ]"

# ==== remove: n1 (position 2) leaves ====
K1=$(natlab_pubkey 1)
tx remove 2 || fail "remove transaction"
gone() { ! natlab_wg 0 peers | grep -qF "$K1" && ! natlab_wg 2 peers | grep -qF "$K1"; }
if retry 30 gone && retry 10 natlab_full_mesh 0 2 && addresses 2:0 0:1; then
	t=$(nl_elapsed "$T_TX")
	pass "remove n1 by transaction: gone from n0's and n2's interfaces, n0 and n2 keep their addresses and tunnel"
	echo "figure: registry remove, transaction to the node gone from every interface: $t s"
else
	fail "the mesh did not follow the removal"; dump $ALL
fi

# ==== fail static: the chain stopped, then an RPC answering wrongly ====
BEFORE=$(mesh_state 0 2)
snapshot 0 2 >"$TMP/snap.before"
ping_start p02 0 0 12 # n2 is at position 0 now: 10.88.0.10
kill_tracked $ANVIL_PID anvil TERM
nl_wait_gone $ANVIL_PID || kill_tracked $ANVIL_PID anvil KILL
check "anvil stopped: every node says so in /status" retry 10 list_error_everywhere "connect" 0 2
sleep $((NL_POLL + 1))
check "anvil stopped: n0 and n2 keep their peers and addresses" test "$(mesh_state 0 2)" = "$BEFORE"
check "anvil stopped: the list is kept (2 entries)" test "$(natlab_status 0 | jq .list.entries)" = 2

fake() { # MODE [URL...]: the fake RPC on the chain's address and port
	ip netns exec "$NL_GW" node "$ROOT/tests/tools/fakerpc.js" 0.0.0.0 $RPC_PORT "$@" >>"$TMP/fakerpc.log" 2>&1 &
	FAKE_PID=$!
	track_pid $FAKE_PID node
	disown $FAKE_PID
}
unfake() { kill_tracked $FAKE_PID node TERM; nl_wait_gone $FAKE_PID; }
fake garbage
check "an RPC answering garbage: every node refuses it (not JSON)" retry 10 list_error_everywhere "JSON|json" 0 2
unfake
fake abi
check "an RPC answering a malformed string[]: every node refuses it" retry 10 list_error_everywhere "entr|past the end|bytes" 0 2
unfake
fake revert
check "an RPC whose call reverts: every node refuses it" retry 10 list_error_everywhere "revert" 0 2
unfake
# A good endpoint again, whose backends lag: nodes accept its list (the same
# as the chain's), read nodes() once at the newer block, and never again for
# the older one it keeps answering.
: >"$TMP/fakerpc.log"
fake lagging "$(nl_url 2)" "$(nl_url 0)"
check "an RPC answering well again: every node takes its list" retry 10 list_error_everywhere "^$" 0 2
sleep $((2 * NL_POLL + 1))
calls() { grep -c "^100[.]64[.]$1[.]2 $2\$" "$TMP/fakerpc.log"; }
check "a lagging RPC (blocks 1001, 1000, 1001...): one eth_call per node, eth_blockNumber every poll (n0: $(calls 0 eth_call), $(calls 0 eth_blockNumber); n2: $(calls 2 eth_call), $(calls 2 eth_blockNumber))" \
	test "$(calls 0 eth_call) $(calls 2 eth_call)" = "1 1" -a "$(calls 0 eth_blockNumber)" -ge 3 -a "$(calls 2 eth_blockNumber)" -ge 3
check "after all that: n0 and n2 keep their peers and addresses" test "$(mesh_state 0 2)" = "$BEFORE"
check "after all that: the list is kept (2 entries)" test "$(natlab_status 2 | jq .list.entries)" = 2
snapshot 0 2 >"$TMP/snap.after"
check_sessions "n0-n2's tunnel was never reset" "$TMP/snap.before" "$TMP/snap.after"
ping_check p02 "n0 pinged n2 throughout"
unfake
check "n0 and n2 still answer each other's /test" natlab_full_mesh 0 2
e2e_summary
