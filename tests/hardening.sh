#!/bin/bash
# SPDX-License-Identifier: MIT
# The daemons are built hardened: PIE, full RELRO (BIND_NOW), a non-executable
# stack, the stack protector, and (optimised builds) _FORTIFY_SOURCE.
# Usage: hardening.sh [--no-fortify] BINARY...
set -u
fortify=1
if [ "${1:-}" = --no-fortify ]; then fortify=0; shift; fi
command -v readelf >/dev/null || { echo "missing readelf (binutils)"; exit 1; }
fails=0
check() { # what command...
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then echo "ok - $what"; else echo "FAIL - $what"; fails=$((fails + 1)); fi
}
for bin in "$@"; do
	name=$(basename "$bin")
	header=$(readelf -hW "$bin"); dynamic=$(readelf -dW "$bin")
	segments=$(readelf -lW "$bin"); symbols=$(readelf -sW --dyn-syms "$bin")
	check "$name is position-independent (ELF type DYN)" grep -q 'Type:[[:space:]]*DYN' <<<"$header"
	check "$name binds every symbol at load (BIND_NOW)" \
		grep -qE '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW|\(BIND_NOW\)' <<<"$dynamic"
	check "$name has a read-only relocation segment (GNU_RELRO)" grep -q GNU_RELRO <<<"$segments"
	check "$name has a non-executable stack" \
		bash -c "grep GNU_STACK <<<'$segments' | grep -qv 'RWE'"
	check "$name uses the stack protector (__stack_chk_fail)" grep -q '__stack_chk_fail' <<<"$symbols"
	if [ $fortify = 1 ]; then
		check "$name calls fortified libc functions (__*_chk)" \
			grep -qE '__(memcpy|snprintf|read|strcpy|vsnprintf|memset|fprintf|printf)_chk' <<<"$symbols"
	fi
done
[ $fails = 0 ]
