#!/bin/bash
# SPDX-License-Identifier: MIT
# Every benchmark in one run, as one table (Markdown) on stdout; each
# benchmark's own output goes to bench/out/<name>.log. Figures are printed,
# never asserted. Run as root on an otherwise idle machine (the NAT lab takes
# namespaces and the CPU).
# Usage: bench/run.sh [--smoke] [--nodes "4 10 20"] [BUILD_DIR]
#   --smoke: every benchmark at a tiny size with short intervals (CI: does it still run?)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SMOKE=0 SIZES="4 10 20" BUILD=$HERE/../build
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1 ;;
	--nodes) SIZES=$2; shift ;;
	*) BUILD=$1 ;;
	esac
	shift
done
BUILD=$(readlink -f "$BUILD")
W=$BUILD/wgagent C=$BUILD/controld CTL=$BUILD/p2pwg-agentctl
if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for f in "$W" "$C" "$CTL"; do [ -x "$f" ] || { echo "missing $f: build first"; exit 1; }; done
OUT=${BENCH_OUT:-$HERE/out}
mkdir -p "$OUT"
RC=0

# run NAME CMD...: the benchmark's figure lines, its whole output kept.
run() {
	local name=$1 t0 rc; shift
	t0=$SECONDS
	"$@" >"$OUT/$name.log" 2>&1
	rc=$?
	grep -E '^(figure|info)\|' "$OUT/$name.log" | sed "s/^/$name|/"
	if [ $rc != 0 ] || ! grep -q '^figure|' "$OUT/$name.log"; then
		echo "$name|figure|$name failed (exit $rc; $OUT/$name.log)|-|"
		RC=1
	fi
	echo "$name|info|took $((SECONDS - t0)) s" >>"$OUT/timing"
}

: >"$OUT/timing"
LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
{
	if [ $SMOKE = 1 ]; then
		run apply bash "$HERE/apply.sh" "$W" "$CTL" 10 1
		run discovery bash "$HERE/discovery.sh" "$W" "$C" 12 1
		# No 30 s of settling before its 2 s idle window: the smoke only runs it.
		NL_POLL=2 NL_TEST=2 NL_STUN=5 BENCH_BOUND=40 BENCH_SETTLE=2 run mesh2 bash "$HERE/mesh.sh" "$W" "$C" "$CTL" 2 --idle 2 --change
	else
		run apply bash "$HERE/apply.sh" "$W" "$CTL" 245 9
		run discovery bash "$HERE/discovery.sh" "$W" "$C" 245 5
		last=${SIZES##* }
		for n in $SIZES; do
			if [ "$n" = "$last" ]; then
				run mesh$n bash "$HERE/mesh.sh" "$W" "$C" "$CTL" "$n" --idle 120 --change
			else
				run mesh$n bash "$HERE/mesh.sh" "$W" "$C" "$CTL" "$n"
			fi
		done
	fi
	# Relay next to direct, where that benchmark exists.
	[ -x "$HERE/relay.sh" ] && run relay bash "$HERE/relay.sh" "$W" "$C" "$CTL" $([ $SMOKE = 1 ] && echo --smoke)
} >"$OUT/figures"

echo "| benchmark | figure | value | unit |"
echo "|---|---|---|---|"
awk -F'|' '$2 == "figure" { printf "| %s | %s | %s | %s |\n", $1, $3, $4, $5 }' "$OUT/figures"
echo
awk -F'|' '$2 == "info" { printf "- %s: %s\n", $1, $3 }' "$OUT/figures" "$OUT/timing"
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), load at start: $LOAD0"
echo "- versions: $(wireguard-go --version 2>/dev/null | head -1), $(wg --version 2>/dev/null | head -1)"
exit $RC
