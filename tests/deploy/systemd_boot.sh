#!/bin/bash
# SPDX-License-Identifier: MIT
# The systemd units for real: `cmake --install` into a Debian 12 root
# (debootstrap, cached), booted with systemd-nspawn (its own network
# namespace). sysusers and tmpfiles run at boot, both units start, the agent
# runs as p2pwg-agent with CAP_NET_ADMIN only (wireguard-go too), controld as
# p2pwg with none, both under seccomp with no_new_privs, and controld
# reaches the agent over its socket (its /status says "connected").
# Usage: systemd_boot.sh BUILD_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
. "$HERE/../e2e/natlab-lib.sh"
. "$HERE/../e2e/natlab-docker.sh"
BUILD=$(cd "$1" && pwd)

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
if ! unshare --net --pid --mount --uts --ipc --fork true 2>/dev/null; then
	echo "skipped: this kernel cannot run containers (namespaces missing)"
	exit 77
fi
for tool in systemd-nspawn debootstrap nsenter jq; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
MACHINE=p2pwg-units-$$
TMP=$(mktemp -d /tmp/p2pwg-boot.XXXXXX)
NSPAWN=""
stop_machine() {
	[ -n "$NSPAWN" ] || return 0
	kill_tracked "$NSPAWN" systemd-nspawn TERM # an orderly shutdown of the container
	wait_gone "$NSPAWN" || { sleep 10; kill_tracked "$NSPAWN" systemd-nspawn KILL; }
	NSPAWN=""
}
trap 'stop_machine; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

T0=$(date +%s.%N)
tar=$(dk_rootfs_tarball systemd-root systemd,systemd-sysv,dbus,libmnl0,libprotobuf-c1,libssl3,libcap-ng0,libseccomp2,wireguard-go,libcurl4,libjansson4,libh2o-evloop0.13,libc-ares2,curl,jq,ca-certificates) ||
	{ fail "debootstrap of the root"; exit 1; }
R=$TMP/root
mkdir -p "$R" && tar -C "$R" -xf "$tar" && chmod 755 "$R" || { fail "unpacking $tar"; exit 1; }
DESTDIR=$R cmake --install "$BUILD" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "cmake --install"; exit 1; }
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
unitdir=$(sed -n 's/^P2PWG_UNITDIR:PATH=//p' "$BUILD/CMakeCache.txt")
env=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$R$unitdir/p2pwg-controld.service")
# As a user would: the example with a peer list (nothing answers there, which
# controld reports and survives), both units enabled.
sed 's|^GIST_URL=.*|GIST_URL=https://127.0.0.1:9/list.json|' "$R$env.example" >"$R$env"
for u in wgagent controld; do
	ln -s "$unitdir/p2pwg-$u.service" "$R/etc/systemd/system/multi-user.target.wants/p2pwg-$u.service"
done
e2e_log "root ready in $(nl_elapsed "$T0") s"

systemd-nspawn -q -D "$R" -b --register=no --keep-unit --private-network -M "$MACHINE" \
	</dev/null >"$TMP/console.log" 2>&1 &
NSPAWN=$!
track_pid $NSPAWN systemd-nspawn
disown $NSPAWN
leader() { pgrep -P "$NSPAWN" -x systemd; }
in_machine() { nsenter -t "$(leader)" -a "$@"; }
retry 60 bash -c "[ \"\$(nsenter -t \$(pgrep -P $NSPAWN -x systemd) -a systemctl is-system-running 2>/dev/null)\" = running ]"
state=$(in_machine systemctl is-system-running 2>&1)
check "the root boots with systemd ($state)" test "$state" = running
check "both units active" in_machine systemctl is-active p2pwg-wgagent p2pwg-controld
# /status: on controld's local status listener.
SURL=http://127.0.0.1:8081
retry 20 bash -c "nsenter -t \$(pgrep -P $NSPAWN -x systemd) -a curl -sf $SURL/status | jq -e '.node.agent == \"connected\"'"
st=$(in_machine curl -sf $SURL/status)
check "controld reaches the agent over /run/p2pwg/agent.sock ($(echo "$st" | jq -c '[.node.agent, .node.backend, .node.interface]'))" \
	test "$(echo "$st" | jq -r .node.agent)" = connected
out=$(in_machine p2pwg-status --url $SURL); rc=$?
echo "$out"
check "p2pwg-status (installed) prints this node, agent connected (exit $rc)" \
	test "$rc $(grep -c 'agent connected' <<<"$out")" = "0 1"
check "the key is in /var/lib/p2pwg, 0600, p2pwg-agent's" \
	test "$(in_machine stat -c '%U %a' /var/lib/p2pwg/private.key)" = "p2pwg-agent 600"

# What the kernel says of each service's processes (found by their cgroup).
procs() {
	local p
	for p in /proc/[0-9]*; do
		grep -q "/system.slice/p2pwg-$1.service\$" "$p/cgroup" 2>/dev/null || continue
		awk '/^(Name|Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):/ { printf "%s ", $2 } END { print "" }' "$p/status"
	done
}
agent=$(procs wgagent) ctld=$(procs controld)
printf 'p2pwg-wgagent.service: %s\np2pwg-controld.service: %s\n' "$agent" "$ctld"
auid=$(in_machine id -u p2pwg-agent) cuid=$(in_machine id -u p2pwg)
check "wgagent and wireguard-go: uid p2pwg-agent ($auid), CAP_NET_ADMIN only (bounding set too), no_new_privs, seccomp" \
	test "$(echo "$agent" | awk '{ print $2, $3, $4, $5, $6 }' | sort -u)" = "$auid 0000000000001000 0000000000001000 1 2"
check "the agent's cgroup holds wgagent and wireguard-go" bash -c "echo '$agent' | grep -q '^wgagent ' && echo '$agent' | grep -q '^wireguard-go '"
check "controld: uid p2pwg ($cuid), no capability, no_new_privs, seccomp" \
	test "$(echo "$ctld" | awk '{ print $1, $2, $3, $4, $5, $6 }')" = "controld $cuid 0000000000000000 0000000000000000 1 2"
if [ "$E2E_FAILS" -gt 0 ]; then
	in_machine journalctl -u p2pwg-wgagent -u p2pwg-controld --no-pager | tail -30
fi
stop_machine
e2e_summary
