#!/bin/bash
# SPDX-License-Identifier: MIT
# Reach every pair: a mixed mesh of six nodes, behind a port-preserving NAT
# (n0), a port-remapping one (n1), two port-preserving NATs in a row (n2), a
# symmetric NAT (n3), and two nodes behind ONE port-preserving router that
# does not hairpin (n4, n5). Shows:
#   - n4 and n5 find each other over their LAN: the path checks answer on the
#     local candidates each publishes, WireGuard gets that endpoint, /status
#     says "lan" and /test passes both ways (without the checks the pair never
#     gets a handshake: each would send to the other's public address);
#   - every pair that needs no relay (neither side symmetric) answers /test;
#   - figure: how many of the 30 directed pairs answer /test, and when;
#   - all 30 pairs within 30 s of start: the pairs with the symmetric node (n3)
#     go through the relay over the gateway's HTTPS path (/status: relay).
#     NATLAB_REACH_RELAY=0 only reports this check (for a build without it).
# Usage: natlab_reach_e2e.sh WGAGENT CONTROLD AGENTCTL
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
N=6
BOUND=30
RELAY=${NATLAB_REACH_RELAY:-1}

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

T_START=$(date +%s.%N)
natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
natlab_add_node 0 easy && natlab_add_node 1 remap && natlab_add_node_double 2 &&
	natlab_add_node 3 symmetric && natlab_add_node 4 easy && natlab_add_node_behind 5 4 ||
	{ fail "the lab's nodes could not be built"; exit 1; }
natlab_set_list $(seq 0 $((N - 1)))
T0=$(date +%s.%N)
for ((k = 0; k < N; k++)); do natlab_start_agent $k || { fail "wgagent n$k did not start"; exit 1; }; done
for ((k = 0; k < N; k++)); do natlab_start_controld $k; done
e2e_log "lab built in $(nl_elapsed "$T_START") s; 6 nodes started in $(nl_elapsed "$T0") s: n0 easy, n1 remap, n2 double NAT, n3 symmetric, n4+n5 behind one easy router"

# The pairs that need no relay: neither side symmetric.
norelay=""
for ((k = 0; k < N; k++)); do
	for ((j = 0; j < N; j++)); do
		[ $j != $k ] && natlab_expect_direct $k $j && norelay+="$k>$j "
	done
done
all_in() { local p; for p in $1; do [[ " $2 " == *" $p "* ]] || return 1; done; }

# Every second until all 30 answer or BOUND s have passed: which pairs answer.
pairs="" n_ok=0 t_all="" t_lan="" t_norelay=""
while :; do
	pairs=$(natlab_pairs $N)
	n_ok=$(wc -w <<<"$pairs")
	[ "$n_ok" != "${last_ok:-}" ] && e2e_log "$(nl_elapsed "$T0") s: $n_ok pairs answer"
	last_ok=$n_ok
	if [ -z "$t_lan" ] && [[ " $pairs " == *" 4>5 "* && " $pairs " == *" 5>4 "* ]]; then
		t_lan=$(nl_elapsed "$T0")
	fi
	[ -z "$t_norelay" ] && all_in "$norelay" "$pairs" && t_norelay=$(nl_elapsed "$T0")
	[ "$n_ok" = 30 ] && { t_all=$(nl_elapsed "$T0"); break; }
	awk -v a="$(date +%s.%N)" -v b="$T0" -v m=$BOUND 'BEGIN { exit !(a - b >= m) }' && break
	sleep 1
done
e2e_log "pairs answering /test after $(nl_elapsed "$T0") s: $pairs"
natlab_matrix $N

# ---- same NAT, no hairpin: over the LAN ----
check "n4 -> n5 (same router, no hairpin) answers /test within $BOUND s" test -n "$t_lan"
p45=$(natlab_path 4 5) p54=$(natlab_path 5 4)
check "n4 and n5 report the path to each other as lan ($p45, $p54)" test "$p45 $p54" = "lan lan"
ep45=$(natlab_wg 4 endpoints | awk -v k="$(natlab_pubkey 5)" '$1 == k {print $2}')
check "n4's WireGuard reaches n5 at n5's LAN address ($ep45)" test "$ep45" = 192.168.105.2:51820
doc=$(natlab_nodejson 5)
check "n5 publishes its local endpoints in node.json ($(jq -c .local_endpoints <<<"$doc"))" \
	jq -e '.local_endpoints | index("192.168.105.2:51820") != null and (index("100.64.5.2:51820") != null)' <<<"$doc"
check "node.json keeps every field the prototype reads" \
	jq -e 'has("wg_pubkey") and has("overlay_ip") and has("public_ip") and has("public_port") and has("nat")' <<<"$doc"
m=$(ip netns exec "$(nl_ns 4)" curl -s -m 3 http://127.0.0.1:8081/metrics)
check "n4's /metrics counts answered path checks and a lan peer" \
	bash -c 'grep -Eq "^p2pwg_path_checks_total\{result=\"answered\"\} [1-9]" <<<"$1" &&
		 grep -Eq "^p2pwg_peers_path\{path=\"lan\"\} 1$" <<<"$1"' _ "$m"

# ---- every pair that needs no relay ----
missing=""
for p in $norelay; do [[ " $pairs " == *" $p "* ]] || missing+="$p "; done
check "every pair without the symmetric node ($(wc -w <<<"$norelay")) answers /test within $BOUND s (missing: ${missing:-none})" test -z "$missing"
for k in 0 1 2; do
	p=$(natlab_path $k 4)
	check "n$k reports the path to n4 as direct ($p)" test "$p" = direct
done
p=$(natlab_path 0 3)
check "n0's path to the symmetric n3 is neither direct nor lan ($p: none, or relay once there is one)" \
	bash -c '[ "$1" = none ] || [ "$1" = relay ]' _ "$p"

echo "figure: $n_ok of 30 directed pairs answer /test after $(nl_elapsed "$T0") s (all 30: ${t_all:-not within $BOUND s}; the $(wc -w <<<"$norelay") that need no relay: ${t_norelay:-not within $BOUND} s; n4<->n5 over the LAN: ${t_lan:-never} s)"

# ---- RELAY-DEPENDENT: all 30 pairs, symmetric ones included ----
if [ "$RELAY" = 1 ]; then
	check "all 30 directed pairs answer /test within $BOUND s (needs the relay for n3's pairs)" test "$n_ok" = 30
else
	e2e_log "relay-dependent check skipped (NATLAB_REACH_RELAY=0): $n_ok of 30 pairs answer"
fi
[ "$E2E_FAILS" -gt 0 ] && natlab_table $(seq 0 $((N - 1)))
e2e_summary
