#!/bin/sh
# SPDX-License-Identifier: MIT
# Install everything p2pwg needs to build and test, from Debian 12's packages.
# Idempotent and non-interactive; run as root.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev protobuf-c-compiler
libprotobuf-c-dev libcurl4-openssl-dev libjansson-dev libh2o-evloop-dev libmnl-dev
libcmocka-dev libssl-dev libcap-ng-dev libseccomp-dev libc-ares-dev binutils
iproute2 nftables iputils-ping curl util-linux procps
wireguard-go wireguard-tools coturn nginx libnginx-mod-stream openssl
qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio kmod
conntrack jq python3 iperf3
docker.io docker-compose debootstrap systemd systemd-container
nodejs"

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root (apt-get needs it)" >&2
	exit 1
fi
# wgagent's default --user: it leaves root for this one after setup.
if ! getent passwd p2pwg-agent >/dev/null; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin p2pwg-agent
	echo "install-deps: made the system user p2pwg-agent"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm (for anvil, the registry test's chain): Debian's package, unless the
# installed nodejs brings its own (NodeSource's conflicts with Debian's npm).
command -v npm >/dev/null || missing="$missing npm"
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# coturn's package would start a service; p2pwg only runs it inside test namespaces.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
