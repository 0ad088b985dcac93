#!/bin/bash
# SPDX-License-Identifier: MIT
# The NAT lab at size, with the default intervals (list 15 s, /test 10 s,
# STUN 60 s): N nodes (2N + 2 namespaces, 3N daemons) behind alternating
# port-preserving and port-remapping NATs converge to a full mesh, every pair
# keeps answering /test through a window that spans a STUN cycle (no probe
# fails: /test reports a pair down only when it is down) with each node's
# checks of an interval leaving together, and a node that
# really goes down is reported down by every other node.
# Usage: natlab_scale_e2e.sh WGAGENT CONTROLD AGENTCTL
# NATLAB_NODES sets the size (default 30, as CI runs it), NATLAB_NAT the kinds (default
# easy,remap), NATLAB_BOUND the seconds allowed to reach the full mesh (60),
# NATLAB_HOLD the window it must hold (60).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# The defaults of controld, as a user runs it (natlab-lib's are shorter):
# at 60 nodes on 2 cores the lab's 2 s fetch timeout cut connections that the
# default 5 s lets finish, and every cut one was made again.
NL_POLL=${NL_POLL:-15} NL_TEST=${NL_TEST:-10} NL_STUN=${NL_STUN:-60} NL_HTTP_TIMEOUT=${NL_HTTP_TIMEOUT:-5}
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
N=${NATLAB_NODES:-30}
KINDS=${NATLAB_NAT:-easy,remap}
BOUND=${NATLAB_BOUND:-60}
HOLD=${NATLAB_HOLD:-60}

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# scale_metric NAME K...: the sum of controld's counter NAME over nodes K.
scale_metric() {
	local name=$1 k sum=0 v; shift
	for k in "$@"; do
		v=$(ip netns exec "$(nl_ns "$k")" curl -s -m 3 http://127.0.0.1:8081/metrics |
			awk -v m="p2pwg_$name" '$1 == m { print $2 }')
		sum=$((sum + ${v:-0}))
	done
	echo $sum
}

# scale_failing K...: "FROM>TO: reason" for every pair whose last /test failed.
scale_failing() {
	local k
	for k in "$@"; do
		natlab_status "$k" | jq -r --arg k "$k" '.peers[] | select(.self | not) |
			select(.test.ok != true) | "n\($k)>\(.url | capture("https://(?<n>[^-]+)-").n // "?"): \(.state) \(.test.result // "never tested")"'
	done
}

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
ALL=$(seq 0 $((N - 1)))
T0=$(date +%s.%N)
natlab_up "$N" "$KINDS" || { fail "nodes did not start"; exit 1; }
e2e_log "$N nodes started in $(nl_elapsed "$T0") s ($KINDS; poll $NL_POLL s, test $NL_TEST s, STUN $NL_STUN s)"
if retry "$BOUND" natlab_full_mesh $ALL; then
	pass "full mesh of $N nodes within $BOUND s: every /status shows all $((N - 1)) peers direct, /test passing"
	echo "figure: time to full mesh, $N nodes: $(nl_elapsed "$T0") s (from starting the agents; poll ${NL_POLL} s, test ${NL_TEST} s)"
else
	fail "no full mesh of $N nodes within $BOUND s"
	scale_failing $ALL | head -20
fi

# Every /test probe made in the window must pass: a check that fails while
# both ends are up and hold a session says "down" when it is not.
ok0=$(scale_metric tests_total $ALL) bad0=$(scale_metric tests_failed_total $ALL)
end=$((SECONDS + HOLD)) worst=0
while [ $SECONDS -lt $end ]; do
	sleep 5
	n=$(scale_failing $ALL | tee "$TMP/failing" | wc -l)
	if [ "$n" -gt "$worst" ]; then worst=$n; cp "$TMP/failing" "$TMP/worst"; fi
done
ok1=$(scale_metric tests_total $ALL) bad1=$(scale_metric tests_failed_total $ALL)
e2e_log "in $HOLD s: $((ok1 - ok0)) /test probes passed, $((bad1 - bad0)) failed; at most $worst pairs shown failing at once"
[ "$worst" -gt 0 ] && head -10 "$TMP/worst"
check "every pair keeps answering /test for $HOLD s (no probe failed, each pair probed)" \
	test $((bad1 - bad0)) = 0 -a $((ok1 - ok0)) -ge $((N * (N - 1) * (HOLD / NL_TEST - 1)))
check "no pair was shown down during the $HOLD s" test "$worst" = 0

# A node's /test checks of an interval leave at one tick (up to 64 peers, a
# group: controld's CADENCE_GROUP_MAX), one wake-up of it and of its WireGuard
# rather than one per peer: its peers' latest results are seconds apart at
# most. Spread one by one over the interval, they were ~9 s apart here. A
# node read while its tick's answers come in, or whose check was made again
# on a new connection, is read again until its next tick.
scale_tick_span() { # K: seconds from the first to the last of K's latest results
	natlab_status "$1" | jq -e '[.peers[] | select(.self | not) | .test.at // empty |
		.[0:19] + "Z" | fromdateiso8601] | max - min'
}
tick_together() { local s; s=$(scale_tick_span "$1") && [ "$s" -le 2 ]; }
if [ "$N" -le 65 ]; then
	spread=""
	for k in $ALL; do retry $((NL_TEST + 2)) tick_together $k || spread="$spread n$k:$(scale_tick_span $k)s"; done
	check "each node's /test checks of an interval leave together (latest results within 2 s)${spread:+; apart:$spread}" \
		test -z "$spread"
fi

for k in $ALL; do
	n=$(natlab_wg $k latest-handshakes | awk '$2 > 0' | wc -l)
	[ "$n" = $((N - 1)) ] || fail "n$k has a handshake with $n of its $((N - 1)) peers"
done
check "n1 (${NL_KIND[1]}) publishes its STUN-discovered endpoint" \
	test "$(natlab_nodejson 1 | jq -r '"\(.public_ip):\(.public_port)"')" = \
	"198.18.0.11:$([ "${NL_KIND[1]}" = remap ] && echo 40001 || echo 51820)"

# A node that is really gone (agent and wireguard-go killed) is down for all.
last=$((N - 1))
gopid=$(cat "$(nl_dir $last)/wireguard-go.$(nl_if $last).pid")
kill_tracked "${NL_CTLD_PID[$last]}" controld KILL
kill_tracked "${NL_AGENT_PID[$last]}" wgagent KILL
nl_wait_gone "${NL_AGENT_PID[$last]}"
kill_tracked "$gopid" wireguard-go KILL
sees_down() {
	local k
	for k in $(seq 0 $((last - 1))); do
		natlab_status "$k" | jq -e --arg u "$(nl_url $last)" \
			'.peers[] | select(.url == $u) | .test.ok == false' >/dev/null || return 1
	done
}
check "n$last gone: every other node reports it down within $((NL_TEST + 10)) s" retry $((NL_TEST + 10)) sees_down
e2e_log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
e2e_summary
