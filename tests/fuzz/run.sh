#!/bin/bash
# SPDX-License-Identifier: MIT
# Run one libFuzzer harness over its seed corpus for FUZZ_SECONDS (default 60);
# any crash, leak or sanitizer report fails the test. New inputs go to a
# scratch corpus, never into the committed one.
set -eu
FUZZER=$1 SEEDS=$2
WORK=$(mktemp -d /tmp/p2pwg-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$FUZZER" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix="$WORK/" -print_final_stats=1 "$WORK" "$SEEDS" 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
	echo "fuzzer failed with status $status; artifacts:"
	ls -l "$WORK"
	for f in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-*; do
		[ -f "$f" ] && od -A x -t x1z "$f" | head -20
	done
	exit 1
fi
