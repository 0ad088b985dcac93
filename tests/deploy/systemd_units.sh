#!/bin/bash
# SPDX-License-Identifier: MIT
# The hardened systemd install: `cmake --install` puts binaries, units,
# sysusers.d, tmpfiles.d and the environment example where the units expect
# them; `systemd-analyze verify` is clean; `systemd-analyze security` scores
# at most 2.0 for controld and 3.0 for wgagent; sysusers and tmpfiles make
# the users and directories the agent accepts.
# Usage: systemd_units.sh BUILD_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
BUILD=$(cd "$1" && pwd)
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
MAX_CONTROLD=2.0
MAX_WGAGENT=3.0

TMP=$(mktemp -d /tmp/p2pwg-units.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
D=$TMP/root
DESTDIR=$D cmake --install "$BUILD" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "cmake --install"; exit 1; }
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
unitdir=$(sed -n 's/^P2PWG_UNITDIR:PATH=//p' "$BUILD/CMakeCache.txt")

# What each unit names must be installed at that path.
for u in wgagent controld; do
	f=$D$unitdir/p2pwg-$u.service
	check "p2pwg-$u.service installed in $unitdir" test -f "$f"
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$f")
	check "p2pwg-$u.service: its ExecStart $exe is installed" test -x "$D$exe"
	env=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$f")
	check "p2pwg-$u.service: $env.example installed beside its EnvironmentFile" test -f "$D$env.example"
done
check "p2pwg-status installed" test -x "$D$prefix/bin/p2pwg-status"
check "every controld setting (controld --help) is documented in p2pwg.env.example" bash -c \
	"for v in \$('$BUILD/controld' --help | grep -o '\\b\\(GIST_URL\\|P2PWG_[A-Z_]*\\)' | sort -u); do
		grep -q \"^#\\{0,1\\}\$v=\" '$D$env.example' || { echo \$v; exit 1; }; done"

# verify checks that ExecStart exists on this machine: point it at the
# installed copy (nothing else in the units changes).
mkdir -p "$TMP/verify"
for u in wgagent controld; do
	sed "s#^ExecStart=$prefix#ExecStart=$D$prefix#" "$D$unitdir/p2pwg-$u.service" >"$TMP/verify/p2pwg-$u.service"
done
out=$(cd "$TMP/verify" && systemd-analyze verify p2pwg-wgagent.service p2pwg-controld.service 2>&1); rc=$?
[ -z "$out" ] || echo "$out"
check "systemd-analyze verify: clean (exit $rc, $(echo -n "$out" | grep -c .) lines)" test "$rc:$out" = "0:"

for u in controld wgagent; do
	max=MAX_${u^^}
	score=$(systemd-analyze security --offline=true --no-pager "$D$unitdir/p2pwg-$u.service" 2>&1 |
		sed -n 's/.*Overall exposure level for p2pwg-[a-z]*\.service: \([0-9.]*\).*/\1/p')
	echo "figure: systemd-analyze security exposure, p2pwg-$u.service: ${score:-none} (at most ${!max})"
	check "p2pwg-$u.service: exposure ${score:-none} <= ${!max}" \
		awk -v s="$score" -v m="${!max}" 'BEGIN { exit !(s != "" && s + 0 <= m + 0) }'
done

# sysusers and tmpfiles in the install root: the users, the agent's
# membership in controld's group, and directories the agent accepts (its own,
# not writable by group or other).
mkdir -p "$D/etc"
for f in passwd group shadow gshadow; do : >"$D/etc/$f"; done
check "systemd-sysusers makes p2pwg and p2pwg-agent" \
	systemd-sysusers --root="$D" "$D$prefix/lib/sysusers.d/p2pwg.conf"
check "p2pwg-agent is in group p2pwg (the control socket's group)" \
	grep -q '^p2pwg:[^:]*:[0-9]*:p2pwg-agent$' "$D/etc/group"
check "systemd-tmpfiles makes the agent's directories" \
	systemd-tmpfiles --root="$D" --create "$D$prefix/lib/tmpfiles.d/p2pwg.conf"
auid=$(awk -F: '$1 == "p2pwg-agent" { print $3 }' "$D/etc/passwd")
for d in /var/lib/p2pwg:700 /run/p2pwg:755 /run/wireguard:755; do
	check "${d%:*}: owned by p2pwg-agent ($auid), mode ${d#*:}" \
		test "$(stat -c '%u %a' "$D${d%:*}")" = "$auid ${d#*:}"
done
e2e_summary
