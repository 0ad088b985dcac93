#!/bin/bash
# SPDX-License-Identifier: MIT
# Relay against direct, side by side in one NAT lab: n0 and n1 sit behind
# symmetric NATs (so they go through the relay over the gateway's HTTPS path),
# n2 and n3 behind port-preserving ones (direct). Over the overlay, measures
# ping latency and iperf3 TCP throughput n0 -> n1 and n2 -> n3, and prints
# them as figure: lines. Not a CI test (it loads the machine for ~30 s).
# Usage: bench/relay.sh WGAGENT CONTROLD AGENTCTL [--smoke]   (as root, with
# nothing else loading the machine, so the figures are not skewed; --smoke: 1 s)
# BENCH_SECONDS sets the iperf3 duration (default 5); BENCH_RELAY_RATE the
# relay's P2PWG_RELAY_RATE (kB/s; default controld's, 12500 = 100 Mbit/s).
set -u
HERE=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

[ "$(id -u)" = 0 ] || { echo "bench/relay.sh: needs root"; exit 1; }
command -v iperf3 >/dev/null || { echo "bench/relay.sh: needs iperf3 (deploy/install-deps.sh)"; exit 1; }
SECS=${BENCH_SECONDS:-5}
[ "${4:-}" = --smoke ] && SECS=1
TMP=$(mktemp -d /tmp/p2pwg-bench.XXXXXX)
trap 'natlab_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

natlab_init $$ "$TMP" "$1" "$2" "$3" || exit 1
for k in 0 1 2 3; do NL_CTLD_ENV[$k]=${BENCH_RELAY_RATE:+P2PWG_RELAY_RATE=$BENCH_RELAY_RATE}; done
natlab_up 4 symmetric,symmetric,easy,easy || exit 1
path_ok() { # K J PATH: K reaches J's /test, with state PATH
	natlab_status "$1" | jq -e --arg u "$(nl_url "$2")" --arg p "$3" \
		'.peers[] | select(.url == $u) | .state == $p and .test.ok == true' >/dev/null
}
retry 60 path_ok 0 1 relay || { echo "n0 -> n1 never went through the relay"; natlab_table 0 1 2 3; exit 1; }
retry 60 path_ok 2 3 direct || { echo "n2 -> n3 never went direct"; natlab_table 0 1 2 3; exit 1; }

measure() { # NAME K J
	local name=$1 k=$2 j=$3 ip rtt avg bps
	ip="10.88.0.$((10 + j))"
	ip netns exec "$(nl_ns "$j")" iperf3 -s -1 -B "$ip" >/dev/null 2>&1 &
	track_pid $! iperf3
	sleep 0.5
	rtt=$(ip netns exec "$(nl_ns "$k")" ping -q -n -c 20 -i 0.1 "$ip" |
		awk '/^rtt/ { split($0, a, "= "); split(a[2], b, "/"); print b[2], b[1] }')
	avg=${rtt%% *}
	bps=$(ip netns exec "$(nl_ns "$k")" iperf3 -J -c "$ip" -t "$SECS" 2>/dev/null |
		jq -r '.end.sum_received.bits_per_second / 1e6 | floor')
	# One line a person reads, and run.sh's "figure|name|value|unit" lines.
	echo "figure: $name: ping ${avg:-?} ms avg, ${rtt#* } ms min; iperf3 TCP ${bps} Mbit/s over ${SECS} s"
	echo "figure|$name: ping, average|${avg:--}|ms"
	echo "figure|$name: iperf3 TCP over ${SECS} s|${bps:--}|Mbit/s"
}
measure "relay (n0 -> n1, both symmetric NAT, through the gateway)" 0 1
measure "direct (n2 -> n3, both port-preserving NAT)" 2 3
echo "n0's relay to n1: $(natlab_status 0 | jq -c --arg u "$(nl_url 1)" '.peers[] | select(.url == $u) | .relay')"
