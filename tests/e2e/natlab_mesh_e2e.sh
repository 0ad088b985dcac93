#!/bin/bash
# SPDX-License-Identifier: MIT
# The NAT lab, end to end: four nodes behind port-preserving and port-remapping
# NATs form a full mesh; then membership changes while traffic flows, crashes
# of controld and wgagent, the gateway down for a while, a broken peer list,
# a NAT rebinding, and a node behind a symmetric NAT (reached through the
# relay). Prints the time to a full mesh and the time to heal after rebinding.
# Usage: natlab_mesh_e2e.sh WGAGENT CONTROLD AGENTCTL
# NATLAB_GW_DOWN sets how long the gateway stays down (seconds, default 25).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft conntrack jq ping; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
GW_DOWN=${NATLAB_GW_DOWN:-25}

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# ---- helpers: logs and checks (sessions and pings are in natlab-lib.sh) ----

# mark K: remember where node K's controld log ends; since K PATTERN: grep after it.
declare -A MARK=()
mark() { local k; for k in "$@"; do MARK[$k]=$(wc -l <"$(nl_dir "$k")/controld.log"); done; }
since() { tail -n +$((MARK[$1] + 1)) "$(nl_dir "$1")/controld.log" | grep -q -- "$2"; }
all_since() { local k p=$1; shift; for k in "$@"; do since "$k" "$p" || return 1; done; }
test_ok() { # K J: node K fetches node J's /test over the overlay
	ip netns exec "$(nl_ns "$1")" curl -s -m 1 "http://10.88.0.$((10 + $2)):8000/test" |
		grep -q "\"wg_ip\": \"10.88.0.$((10 + $2))/32\""
}
all_pairs_test_ok() { local k j; for k in "$@"; do for j in "$@"; do [ $k = $j ] || test_ok $k $j || return 1; done; done; }
all_have_peers() { # N K...: each node's wg show lists N peers
	local n=$1 k; shift
	for k in "$@"; do [ "$(natlab_wg "$k" peers | wc -l)" = "$n" ] || return 1; done
}
peer_gone_everywhere() { # KEY K...
	local key=$1 k; shift
	for k in "$@"; do natlab_wg "$k" peers | grep -qF "$key" && return 1; done
	return 0
}
nodejson_port() { natlab_nodejson "$1" | jq -e ".public_port == $2" >/dev/null; }
endpoint_everywhere() { # KEY ENDPOINT K...: every node has the peer at ENDPOINT
	local key=$1 ep=$2 k; shift 2
	for k in "$@"; do natlab_wg "$k" endpoints | grep -qF "$key	$ep" || return 1; done
}
within() { awk -v t="$1" -v b="$2" 'BEGIN { exit !(t <= b) }'; }
dump_logs() {
	local k
	for k in "$@"; do
		echo "---- n$k controld.log (last 25 lines)"; tail -n 25 "$(nl_dir "$k")/controld.log"
		echo "---- n$k wg show"; natlab_wg "$k" 2>&1 | head -40
	done
}

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
ALL="0 1 2 3"

# ==== a full mesh of four nodes: easy, remap, easy, remap ====
# With controld's default /test interval (10 s): a peer just configured is
# checked at once, not at its slot of the interval, so the mesh is whole within
# seconds of the controlds' start. (Later nodes and restarts use NL_TEST.)
T0=$(date +%s.%N)
NL_TEST=10 natlab_up 4 easy,remap,easy,remap || { fail "nodes did not start"; exit 1; }
T_CTLD=$(date +%s.%N)
if retry 60 natlab_full_mesh $ALL; then
	T_MESH4=$(nl_elapsed "$T0") T_MESH4C=$(nl_elapsed "$T_CTLD")
	pass "full mesh of 4 nodes (easy, remap, easy, remap): every /status shows every peer direct, /test passing"
	check "with /test every 10 s, the mesh is whole within 5 s of the controlds' start ($T_MESH4C s)" within "$T_MESH4C" 5
else
	fail "no full mesh of 4 nodes within 60 s"; natlab_table $ALL; dump_logs $ALL; e2e_summary; exit 1
fi
echo "figure: time to full mesh, 4 nodes: $T_MESH4 s from starting the agents, $T_MESH4C s from starting the controlds (poll ${NL_POLL} s, test 10 s)"
natlab_table $ALL

for k in $ALL; do
	for j in $ALL; do
		[ $k = $j ] || check "n$k gets n$j's /test over the overlay (10.88.0.$((10 + j)))" test_ok $k $j
	done
done
for k in $ALL; do
	doc=$(natlab_nodejson $k)
	if [ "${NL_KIND[$k]}" = remap ]; then want="$(nl_pub $k):${NL_PORT[$k]} port-remapping"; else want="$(nl_pub $k):51820 port-preserving"; fi
	got=$(echo "$doc" | jq -r '"\(.public_ip):\(.public_port) \(.nat)"')
	check "n$k's node.json carries its STUN-discovered public endpoint ($got, want $want)" test "$got" = "$want"
	got=$(echo "$doc" | jq -r .overlay_ip)
	check "n$k's overlay address follows its list position ($got)" test "$got" = "10.88.0.$((10 + k))/32"
	check "n$k's node.json: mapping endpoint-independent (the two STUN servers agree)" \
		test "$(echo "$doc" | jq -r .mapping)" = endpoint-independent
done
for k in $ALL; do
	n=$(natlab_wg $k latest-handshakes | awk '$2 > 0' | wc -l)
	check "wg show on n$k: a handshake with each of its 3 peers ($n)" test "$n" = 3
	for j in $ALL; do
		[ $k = $j ] && continue
		line=$(natlab_wg $k dump | awk -v k="$(natlab_pubkey $j)" '$1 == k {print $3, $4}')
		if [ "${NL_KIND[$j]}" = remap ]; then ep="$(nl_pub $j):${NL_PORT[$j]}"; else ep="$(nl_pub $j):51820"; fi
		check "wg show on n$k: n$j at $ep, allowed $line" test "$line" = "$ep 10.88.0.$((10 + j))/32"
	done
done
L1=$(nl_dir 1)/controld.log
check "controld logs [peer] fetch <url>" grep -q '\[peer\] fetch https://n2-8080.lab.test/node.json' "$L1"
check "controld logs [wg] peer <key> at position <i> endpoint <ip:port>" \
	grep -q "\[wg\] peer $(natlab_pubkey 0 | cut -c1-8) at position 0 endpoint 198.18.0.10:51820" "$L1"
check "controld logs [stun] <nat> <ip:port>" grep -q '\[stun\] port-remapping 198.18.0.11:40001' "$L1"
check "controld logs [http] connected to <ip>: <json>" grep -q '\[http\] connected to 10.88.0.12: {"wg_ip": "10.88.0.12/32"' "$L1"

# Every read of the list and of a peer's node.json is a TLS connection through
# the gateway unless it is kept (~3 ms of CPU each at both ends, most of an
# idle node's CPU), and every /test probe a TCP handshake and teardown through
# the tunnel: over four polls and two /test intervals n1 opens at most one
# connection.
m1() { ip netns exec "$(nl_ns 1)" curl -s -m 3 http://127.0.0.1:8081/metrics | awk -v m="p2pwg_$1" '$1 == m { print $2 }'; }
c0=$(m1 connections_opened_total) t0=$(($(m1 tests_total) + $(m1 tests_failed_total)))
w=21 # n1 started with a /test interval of 10 s
sleep $w
c1=$(m1 connections_opened_total) t1=$(($(m1 tests_total) + $(m1 tests_failed_total)))
check "over $w s n1 reads the list, node.json and /test on kept connections ($((c1 - c0)) opened, $((t1 - t0)) /test probes)" \
	test $((c1 - c0)) -le 1 -a $((t1 - t0)) -ge 3

# A kept connection that stops passing packets (here n0 drops everything on
# n1's kept probe connection; after an outage, its retransmission timer can
# have grown past the probe's budget) costs n1 no failed probe: the probe is
# made again at once on a new connection, and only that one could fail.
kp=$(ip netns exec "$(nl_ns 1)" ss -Htn state established dst 10.88.0.10 dport = :8000 | awk '{ split($3, a, ":"); print a[2]; exit }')
if [ -n "$kp" ]; then
	ip netns exec "$(nl_ns 0)" nft -f - <<NFT
table inet p2pwg_keptdrop {
	chain in {
		type filter hook input priority -10;
		ip saddr 10.88.0.11 tcp sport $kp tcp dport 8000 drop
	}
}
NFT
	f0=$(m1 tests_failed_total) c0=$(m1 connections_opened_total)
	sleep 14 # one /test interval (10 s) and its jitter, plus the kept probe's 1.5 s
	f1=$(m1 tests_failed_total) c1=$(m1 connections_opened_total)
	ok01=$(natlab_status 1 | jq -r --arg u "$(nl_url 0)" '.peers[] | select(.url == $u) | .test.ok')
	ip netns exec "$(nl_ns 0)" nft delete table inet p2pwg_keptdrop
	check "a kept /test connection gone silent: n1 probes n0 again on a new one, no failure shown ($((f1 - f0)) failed, $((c1 - c0)) opened, /test ok: $ok01)" \
		test "$((f1 - f0)) $ok01" = "0 true" -a $((c1 - c0)) -ge 1
else
	check "n1 keeps a /test connection to n0" false
fi

# ==== membership changes while traffic flows ====
ping_start members 0 1 25
snapshot $ALL >"$TMP/s.before"
natlab_add_node 4 easy && natlab_start_node 4
retry 15 nodejson_port 4 51820
T=$(date +%s.%N)
natlab_set_list 0 1 2 3 4
if retry 30 natlab_full_mesh 0 1 2 3 4; then
	t=$(nl_elapsed "$T")
	check "a node added to the list joins within poll + test interval + 10 s: $t s" within "$t" $((NL_POLL + NL_TEST + 10))
	echo "figure: time for an added node to join (every pair /test ok): $t s"
else
	fail "the added node n4 did not join within 30 s"; natlab_table 0 1 2 3 4; dump_logs 4
fi
check "n4 takes its list position's overlay address (10.88.0.14)" \
	test "$(natlab_status 4 | jq -r .node.overlay_ip)" = 10.88.0.14/32
KEY4=$(natlab_pubkey 4)
T=$(date +%s.%N)
natlab_set_list 0 1 2 3
if retry 20 peer_gone_everywhere "$KEY4" $ALL; then
	pass "a node removed from the list disappears from every peer's wg show ($(nl_elapsed "$T") s)"
else
	fail "the removed node n4 is still configured somewhere"
fi
snapshot $ALL >"$TMP/s.after"
check_sessions "the nodes not involved kept their sessions (no new handshake, counters never dropped)" "$TMP/s.before" "$TMP/s.after"
ping_check members "n0 pinged n1 throughout the changes without loss"
natlab_remove_node 4
check "the four stay a full mesh" retry 10 natlab_full_mesh $ALL

# ==== faults: controld crashes (kill -9) and restarts ====
snapshot $ALL >"$TMP/s.before"
mark 1
ping_start c0 0 1 8; ping_start c2 2 1 8
natlab_crash 1 controld
sleep 3
check "with n1's controld dead, n1's tunnels still carry /test both ways" all_pairs_test_ok $ALL
natlab_start_controld 1
check "the restarted controld finds itself again" retry 15 since 1 "this node is position 1"
check "it reconciles with nothing to change ('interface already so')" since 1 "interface already so"
ping_check c0 "n0 pinged n1 throughout controld's crash and restart without loss"
ping_check c2 "n2 pinged n1 throughout without loss"
snapshot $ALL >"$TMP/s.after"
check_sessions "no session was reset by controld's crash and restart" "$TMP/s.before" "$TMP/s.after"

# ==== faults: wgagent crashes (kill -9) and restarts ====
snapshot $ALL >"$TMP/s.before"
mark 2
ping_start a0 0 2 8; ping_start a3 3 2 8
natlab_crash 2 agent
check "controld notices the agent is gone" retry 5 since 2 "lost wgagent"
sleep 2
# /test is served by wgagent itself, so n2's own /test is down with it; the
# tunnels are not: n2 still reaches the others' /test, and the pings go on.
n2_reaches_all() { test_ok 2 0 && test_ok 2 1 && test_ok 2 3; }
check "with n2's wgagent dead, n2's tunnels still carry traffic (n2 gets every peer's /test)" n2_reaches_all
natlab_start_agent 2
check "controld reconnects to the restarted agent" retry 20 since 2 "connected to wgagent"
check "it re-sends the whole state and finds it in place ('interface already so')" retry 10 since 2 "interface already so"
ping_check a0 "n0 pinged n2 throughout wgagent's crash and restart without loss"
ping_check a3 "n3 pinged n2 throughout without loss"
snapshot $ALL >"$TMP/s.after"
check_sessions "no session was reset by wgagent's crash and restart" "$TMP/s.before" "$TMP/s.after"
n=0; for p in $(pgrep -x wireguard-go); do grep -qF "$(nl_if 2)" /proc/$p/cmdline 2>/dev/null && n=$((n + 1)); done
check "exactly one wireguard-go serves n2's interface after the agent's restart ($n)" test $n = 1

# ==== faults: the gateway (nginx) is down for a while ====
snapshot $ALL >"$TMP/s.before"
mark $ALL
ping_start g03 0 3 $((GW_DOWN + 2)); ping_start g12 1 2 $((GW_DOWN + 2))
natlab_gw_stop
e2e_log "gateway down for $GW_DOWN s"
sleep "$GW_DOWN"
check "every controld noticed the gateway is gone and kept its last good list" all_since "keeping the last good list" $ALL
check "while the gateway is down, every pair still answers /test over the overlay" all_pairs_test_ok $ALL
check "nothing was torn down: every node still has its 3 peers" all_have_peers 3 $ALL
natlab_gw_start
check "when the gateway is back, every controld reads the list again (logs 'peer list readable again')" \
	retry $((NL_POLL + 10)) all_since "peer list readable again" $ALL
check "and every peer's node.json answers again" retry $((NL_POLL + 10)) all_since "answers again" $ALL
ping_check g03 "n0 pinged n3 throughout the gateway's $GW_DOWN s outage without loss"
ping_check g12 "n1 pinged n2 throughout without loss"
snapshot $ALL >"$TMP/s.after"
check_sessions "no session was reset by the gateway outage" "$TMP/s.before" "$TMP/s.after"

# ==== a broken peer list: 500, garbage, empty ====
snapshot $ALL >"$TMP/s.before"
mark $ALL
natlab_list_fail500 on
check "the list answering 500: every node keeps the last good list" retry 10 all_since "HTTP 500; keeping the last good list" $ALL
natlab_list_fail500 off
natlab_set_list_raw '{"peers": [garbage'
check "a garbage list: every node refuses it and keeps the last good list" retry 10 all_since "not JSON.*keeping the last good list" $ALL
mark $ALL
natlab_set_list_raw ''
check "an empty list body: every node refuses it and keeps the last good list" retry 10 all_since "not JSON.*keeping the last good list" $ALL
check "meanwhile the mesh is whole: every /status shows all peers direct, /test ok" natlab_full_mesh $ALL
natlab_set_list $ALL
check "the list is read again when it is fixed" retry 10 all_since "peer list readable again" $ALL
snapshot $ALL >"$TMP/s.after"
check_sessions "no session was reset by the broken list" "$TMP/s.before" "$TMP/s.after"

# ==== NAT rebinding: n1's router maps it to another port ====
KEY1=$(natlab_pubkey 1)
mark $ALL
T=$(date +%s.%N)
natlab_rebind 1 41001
healed() { nodejson_port 1 41001 && endpoint_everywhere "$KEY1" 198.18.0.11:41001 0 2 3 && all_pairs_test_ok $ALL; }
if retry 60 healed; then
	HEAL=$(nl_elapsed "$T")
	check "after NAT rebinding the mesh heals within STUN + poll interval + 15 s: $HEAL s" within "$HEAL" $((NL_STUN + NL_POLL + 15))
	echo "figure: time to heal after NAT rebinding (new port published, every peer's endpoint updated, every pair /test ok): $HEAL s (STUN every ${NL_STUN} s, poll ${NL_POLL} s)"
else
	fail "the mesh did not heal within 60 s of n1's NAT rebinding"; natlab_table $ALL; dump_logs 1 0
fi
check "n1 found its new port by STUN ([stun] port-remapping 198.18.0.11:41001)" since 1 '\[stun\] port-remapping 198.18.0.11:41001'
check "its peers logged the new endpoint ([wg] peer ${KEY1:0:8} at position 1 endpoint 198.18.0.11:41001)" \
	all_since "\[wg\] peer ${KEY1:0:8} at position 1 endpoint 198.18.0.11:41001" 0 2 3

# ==== a node behind a symmetric NAT: listed, configured, reached through the relay ====
# (node 5, at list position 4: a fresh namespace rather than n4's again)
natlab_add_node 5 symmetric && natlab_start_node 5
natlab_set_list 0 1 2 3 5
URL5=$(nl_url 5)
sym_tested() { # every other node's /status has a /test result for n5
	local k
	for k in $ALL; do natlab_status $k | jq -e --arg u "$URL5" '.peers[] | select(.url == $u) | .test != null' >/dev/null || return 1; done
}
sym_relayed() {
	local k
	for k in $ALL; do
		natlab_status $k | jq -e --arg u "$URL5" '.peers[] | select(.url == $u) | .state == "relay" and .path == "relay" and .test.ok == true' >/dev/null || return 1
	done
}
check "the others configure n5 and probe it" retry 30 sym_tested
sleep "$NL_TEST"
doc=$(natlab_nodejson 5)
check "n5's STUN finds its NAT symmetric, mapping endpoint-dependent ($(echo "$doc" | jq -c '[.nat, .mapping]'))" \
	test "$(echo "$doc" | jq -r '"\(.nat) \(.mapping)"')" = "symmetric endpoint-dependent"
check "n5 is at position 4, overlay 10.88.0.14" test "$(echo "$doc" | jq -r .overlay_ip)" = 10.88.0.14/32
check "the others reach n5's /test through the relay and list it as 'relay', not as direct" retry 30 sym_relayed
check "the four others are still a full mesh" natlab_full_mesh $ALL
natlab_table 0 1 2 3 5

e2e_summary
