#!/bin/bash
# SPDX-License-Identifier: MIT
# The mesh in the NAT lab with controld's default intervals (list 15 s, /test
# 10 s, STUN 60 s), nodes behind alternating port-preserving and
# port-remapping NATs: start to full mesh (every pair's /test passing, from
# starting the agents); with --idle S, the CPU seconds and wake-ups (context
# switches) of every daemon over S s of the steady mesh (from BENCH_SETTLE s,
# default 60, after the full mesh); with --change, a node
# added to the list: until every node's agent has it configured, and until
# every pair with it passes /test.
# BENCH_TRACE=DIR keeps a timeline: every controld's log with each line's
# seconds since start (DIR/n<K>.log), and at the end each node's /status and
# `wg show latest-handshakes` (DIR/n<K>.status, DIR/n<K>.hs, DIR/t0).
# Usage: mesh.sh WGAGENT CONTROLD AGENTCTL N [--idle S] [--change]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# controld's defaults (natlab-lib's are shorter).
NL_POLL=${NL_POLL:-15} NL_TEST=${NL_TEST:-10} NL_STUN=${NL_STUN:-60}
. "$HERE/../tests/e2e/lib.sh"
. "$HERE/../tests/e2e/natlab-lib.sh"
B_W=$1 B_C=$2 B_CTL=$3 N=$4 IDLE=0 CHANGE=0
shift 4
while [ $# -gt 0 ]; do
	case $1 in --idle) IDLE=$2; shift ;; --change) CHANGE=1 ;; esac
	shift
done
BOUND=${BENCH_BOUND:-120}
TMP=$(mktemp -d /tmp/p2pwg-bench.XXXXXX)
TRACE=${BENCH_TRACE:-}
trap 'trace_end; natlab_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
ms_since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.1f\n", a - b }'; }

# trace_start K: node K's log lines, stamped as they are written.
TRACERS=()
trace_start() {
	local f
	f=$(nl_dir "$1")/controld.log
	: >>"$f"
	tail -n +1 -F "$f" 2>/dev/null > >(perl -MTime::HiRes=time -ne \
		'BEGIN { $| = 1 } printf "%.3f %s", time() - '"$T0"', $_' >"$TRACE/n$1.log") &
	TRACERS+=($!)
}
trace_end() {
	local k p
	[ -n "$TRACE" ] || return 0
	for k in $(seq 0 $((N - 1))); do
		ip netns exec "$(nl_ns $k)" curl -s -m 3 http://127.0.0.1:8081/status >"$TRACE/n$k.status" 2>/dev/null
		natlab_wg $k latest-handshakes >"$TRACE/n$k.hs" 2>/dev/null
	done
	echo "$T0" >"$TRACE/t0"
	# Each perl ends at the end of its tail's output.
	for p in "${TRACERS[@]}"; do kill_tracked "$p" tail; done
}

natlab_init $$ "$TMP" "$B_W" "$B_C" "$B_CTL" || { echo "info|the lab could not be built"; exit 1; }
ALL=$(seq 0 $((N - 1)))
for k in $ALL; do natlab_add_node $k "$([ $((k % 2)) = 0 ] && echo easy || echo remap)" || exit 1; done
natlab_set_list $ALL
T0=$(date +%s.%N)
[ -z "$TRACE" ] || { mkdir -p "$TRACE"; for k in $ALL; do trace_start $k; done; }
natlab_start_agents $ALL >/dev/null || exit 1
# The agents start all at once, then the lab waits for each one's socket:
# the time from the controlds' start is what controld itself takes.
echo "info|agents started after $(ms_since "$T0") s"
T1=$(date +%s.%N)
for k in $ALL; do natlab_start_controld $k; done
# Every node's /status read at once (one after another, 20 reads took 1-2 s at
# this load: the figure was the sampler's as much as the mesh's), every 0.2 s.
full_mesh_now() {
	local k pids=() ok=0
	for k in $ALL; do natlab_node_sees "$k" $ALL & pids+=($!); done
	for k in "${pids[@]}"; do wait "$k" || ok=1; done
	return $ok
}
until full_mesh_now; do
	[ "$(ms_since "$T0" | cut -d. -f1)" -ge "$BOUND" ] && { echo "figure|start to full mesh, $N nodes|no mesh in $BOUND s|s"; exit 1; }
	sleep 0.2
done
T2=$(date +%s.%N)
# mesh_at SEEN: when the mesh became whole, by the daemons' own clocks: the
# latest test.since of the passing pairs in every /status (the moment the last
# pair passed). The sampler sees it later (SEEN), by as much as one of its
# rounds of 20 processes takes on a loaded machine (~1 s; 4.4 s against 5.7 s
# in one run). SEEN itself if nothing reads, or if a pair flapped after SEEN.
mesh_at() {
	local k t m=0
	t=$(for k in $ALL; do
		ip netns exec "$(nl_ns $k)" curl -s -m 3 http://127.0.0.1:8081/status |
			jq -r '.peers[] | select(.test.ok == true) | .test.since'
	done | sort | tail -1)
	[ -n "$t" ] && m=$(date -d "$t" +%s.%N)
	awk -v m="$m" -v s="$1" 'BEGIN { printf "%s", (m > 0 && m <= s) ? m : s }'
}
TM=$(mesh_at "$T2")
echo "figure|start to full mesh, $N nodes|$(awk -v a="$TM" -v b="$T0" 'BEGIN { printf "%.1f", a - b }')|s"
echo "figure|controlds' start to full mesh, $N nodes|$(awk -v a="$TM" -v b="$T1" 'BEGIN { printf "%.1f", a - b }')|s"
echo "info|the sampler saw the full mesh $(awk -v a="$T2" -v b="$TM" 'BEGIN { printf "%.1f", a - b }') s later ($(awk -v a="$T2" -v b="$T0" 'BEGIN { printf "%.1f", a - b }') s from start)"

# cpu PID...: utime+stime ticks and context switches of the processes, summed.
cpu() {
	local p t=0 w=0 a b
	for p in "$@"; do
		read -r a b < <(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; echo)
		t=$((t + ${a:-0}))
		b=$(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }')
		w=$((w + b))
	done
	echo "$t $w"
}
if [ "$IDLE" -gt 0 ]; then
	# The first seconds after the full mesh still hold the start's retries
	# and rechecks: the idle window begins once they are over. The window
	# should hold whole periods of what recurs: STUN and the path rechecks
	# (60 s), WireGuard's rekeying (120 s); run.sh takes 120 s.
	sleep "${BENCH_SETTLE:-60}"
	hz=$(getconf CLK_TCK)
	A=() C=() G=()
	for k in $ALL; do
		A+=("${NL_AGENT_PID[$k]}") C+=("${NL_CTLD_PID[$k]}")
		G+=("$(cat "$(nl_dir $k)/wireguard-go.$(nl_if $k).pid")")
	done
	metric_sum() { # NAME: the metric summed over every node's /metrics
		local k v t=0
		for k in $ALL; do
			v=$(ip netns exec "$(nl_ns $k)" curl -s -m 3 http://127.0.0.1:8081/metrics | awk -v m="$1" '$1 == m { print $2 }')
			t=$((t + ${v:-0}))
		done
		echo $t
	}
	p0=$(metric_sum p2pwg_tests_total)
	read -r a0 aw0 <<<"$(cpu "${A[@]}")"; read -r c0 cw0 <<<"$(cpu "${C[@]}")"; read -r g0 gw0 <<<"$(cpu "${G[@]}")"
	sleep "$IDLE"
	read -r a1 aw1 <<<"$(cpu "${A[@]}")"; read -r c1 cw1 <<<"$(cpu "${C[@]}")"; read -r g1 gw1 <<<"$(cpu "${G[@]}")"
	p1=$(metric_sum p2pwg_tests_total)
	per() { awk -v t=$1 -v hz=$hz -v n=$N -v s=$IDLE 'BEGIN { printf "%.3f s (%.3f%%)", t / hz / n, 100 * t / hz / n / s }'; }
	echo "figure|idle $IDLE s, $N-node mesh: controld CPU per node|$(per $((c1 - c0)))|"
	echo "figure|idle $IDLE s, $N-node mesh: wgagent CPU per node|$(per $((a1 - a0)))|"
	echo "figure|idle $IDLE s, $N-node mesh: wireguard-go CPU per node|$(per $((g1 - g0)))|"
	echo "figure|idle $IDLE s, $N-node mesh: controld wake-ups per node|$(((cw1 - cw0) / N)) ($(((cw1 - cw0) / N / IDLE))/s)|"
	echo "figure|idle $IDLE s, $N-node mesh: wgagent wake-ups per node|$(((aw1 - aw0) / N)) ($(((aw1 - aw0) / N / IDLE))/s)|"
	echo "info|failed /test probes since start, all nodes: $(metric_sum p2pwg_tests_failed_total)"
	# Each pair once per /test interval (10 s unless NL_TEST says): 1.00.
	echo "info|/test probes answered in the idle window: $((p1 - p0)), per pair per interval $(awk -v p=$((p1 - p0)) -v n=$N -v s=$IDLE -v i=${NL_TEST:-10} 'BEGIN { printf "%.2f", p / (n * (n - 1)) / (s / i) }')"
fi
if [ "$CHANGE" = 1 ]; then
	k=$N
	natlab_add_node $k "$([ $((k % 2)) = 0 ] && echo easy || echo remap)" >/dev/null || exit 1
	natlab_start_node $k >/dev/null || exit 1
	# The newcomer is up and has published its endpoint before the list names it.
	retry 30 bash -c "[ \"\$(ip netns exec $(nl_ns $k) curl -s -m 2 http://127.0.0.1:8080/node.json | jq -r .public_port)\" != null ]"
	configured() {
		local j v
		for j in $ALL; do
			v=$(ip netns exec "$(nl_ns $j)" curl -s -m 3 http://127.0.0.1:8081/metrics | awk '$1 == "p2pwg_peers_configured" { print $2 }')
			[ "$v" = "$N" ] || return 1
		done
	}
	T1=$(date +%s.%N)
	natlab_set_list $ALL $k
	until configured; do sleep 0.1; [ "$(ms_since "$T1" | cut -d. -f1)" -ge 60 ] && break; done
	echo "figure|list change (a node added) to applied in all $N agents|$(ms_since "$T1")|s"
	retry 60 natlab_full_mesh $ALL $k
	T3=$(date +%s.%N)
	ALL="$ALL $k"
	TM=$(mesh_at "$T3")
	echo "figure|list change to every pair with the newcomer passing /test|$(awk -v a="$TM" -v b="$T1" 'BEGIN { printf "%.1f", a - b }')|s"
fi
