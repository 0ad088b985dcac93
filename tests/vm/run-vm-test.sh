#!/bin/bash
# SPDX-License-Identifier: MIT
# The kernel WireGuard backend on a real kernel: boots Debian's cloud kernel
# under QEMU (TCG) with an initramfs holding busybox, the kernel's wireguard
# and veth modules, iproute2's ip, wireguard-tools' wg and the project's
# wgagent and p2pwg-agentctl, and runs tests/vm/guest-test.sh as /init.
# The guest's check lines become this script's output and exit code.
# Usage: run-vm-test.sh WGAGENT AGENTCTL
# Environment: P2PWG_VM_KVER picks a kernel version from /lib/modules;
# P2PWG_VM_TIMEOUT bounds the VM's run in seconds (default 240);
# P2PWG_VM_GUEST runs another guest script as /init (bench/apply-vm.sh uses
# tests/vm/guest-bench.sh), P2PWG_VM_DUMMIES sets how many dummy keys it
# gets (default 244) and P2PWG_VM_PARAMS is a line it can read from
# /etc/p2pwg-vm/params.
set -u
# The initramfs keeps these modes: the agent's user must traverse /var and /run
# whatever umask the caller had (bench/apply.sh runs with 077).
umask 022
export PATH=$PATH:/usr/sbin:/sbin
HERE=$(cd "$(dirname "$0")" && pwd)
END_MARKER=P2PWG-VM-TEST-END
N_DUMMIES=${P2PWG_VM_DUMMIES:-244}
GUEST=${P2PWG_VM_GUEST:-$HERE/guest-test.sh}

if [ $# -ne 2 ]; then
	echo "usage: $0 WGAGENT AGENTCTL" >&2
	exit 2
fi
WGAGENT=$(readlink -f "$1")
CTL=$(readlink -f "$2")

QEMU=$(command -v qemu-system-x86_64) || {
	echo "skipped: qemu-system-x86_64 not installed"
	exit 77
}
die() {
	echo "FAIL - $*"
	echo "0 passed, 1 failed"
	exit 1
}
for f in "$WGAGENT" "$CTL"; do
	[ -x "$f" ] || die "no executable $f"
done
for tool in cpio modprobe wg ldd timeout; do
	command -v $tool >/dev/null || die "missing $tool: run deploy/install-deps.sh"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
	die "no static $BUSYBOX: install busybox-static (deploy/install-deps.sh)"
IPROUTE=$(readlink -f /sbin/ip)
[ -x "$IPROUTE" ] && ldd "$IPROUTE" >/dev/null 2>&1 || die "no iproute2 ip in /sbin"

# ---- the kernel: the newest cloud kernel with its image and a wireguard module ----
KVER=${P2PWG_VM_KVER:-}
if [ -z "$KVER" ]; then
	for d in $(ls -d /lib/modules/*cloud-amd64 2>/dev/null | sort -rV); do
		v=${d#/lib/modules/}
		if [ -r "/boot/vmlinuz-$v" ] && modprobe -S "$v" -n wireguard 2>/dev/null; then
			KVER=$v
			break
		fi
	done
fi
[ -n "$KVER" ] || die "no linux-image-cloud-amd64 kernel with wireguard: run deploy/install-deps.sh"
KERNEL=/boot/vmlinuz-$KVER
[ -r "$KERNEL" ] || die "cannot read $KERNEL"

WORK=$(mktemp -d /tmp/p2pwg-vm.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib,lib64,etc/p2pwg-vm,modules,proc,sys,dev,run,tmp,var/lib}

# ---- busybox, without its `ip` applet (iproute2's ip is needed for netns) ----
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	case $applet in ip | busybox) continue ;; esac
	ln -s busybox "$ROOT/bin/$applet"
done

# ---- ELF binaries and every shared library they load, at the same paths ----
copy_elf() { # src dest-in-root
	install -D -m 755 "$1" "$ROOT$2" || die "cannot copy $1"
	ldd "$1" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
		[ -e "$ROOT$lib" ] && continue
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib" || exit 1
	done || die "cannot copy the libraries of $1"
}
copy_elf "$IPROUTE" /usr/sbin/ip
copy_elf "$(command -v wg)" /usr/bin/wg
copy_elf "$WGAGENT" /usr/local/bin/wgagent
copy_elf "$CTL" /usr/local/bin/p2pwg-agentctl

# ---- modules in modprobe's order, decompressed ----
modprobe -S "$KVER" -a --show-depends wireguard veth >"$WORK/deps" 2>&1 ||
	die "modprobe --show-depends for $KVER: $(cat "$WORK/deps")"
n=0
while read -r verb path _; do
	[ "$verb" = insmod ] || continue
	n=$((n + 1))
	name=$(printf '%02d-%s' $n "$(basename "$path")")
	case $path in
	*.ko) cp "$path" "$ROOT/modules/$name" ;;
	*.ko.xz) name=${name%.xz}; xz -dc "$path" >"$ROOT/modules/$name" ;;
	*.ko.zst) name=${name%.zst}; zstd -qdc "$path" >"$ROOT/modules/$name" ;;
	*.ko.gz) name=${name%.gz}; gzip -dc "$path" >"$ROOT/modules/$name" ;;
	*) die "unknown module format $path" ;;
	esac || die "cannot unpack $path"
	echo "$name" >>"$ROOT/modules/order"
done <"$WORK/deps"
grep -q wireguard "$ROOT/modules/order" 2>/dev/null || die "no wireguard module for $KVER"

# ---- dummy peers' public keys (made here: 488 execs are cheap on the host) ----
(umask 077
 for _ in $(seq $N_DUMMIES); do wg genkey | wg pubkey; done) >"$ROOT/etc/p2pwg-vm/dummy-keys"
[ "$(sort -u "$ROOT/etc/p2pwg-vm/dummy-keys" | wc -l)" -eq $N_DUMMIES ] || die "cannot make dummy keys"

echo "${P2PWG_VM_PARAMS:-}" >"$ROOT/etc/p2pwg-vm/params"
install -m 755 "$GUEST" "$ROOT/init" || die "cannot install $GUEST as /init"
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$WORK/initramfs.cpio" ||
	die "cpio failed"
echo "# kernel $KERNEL, initramfs $(du -h "$WORK/initramfs.cpio" | cut -f1), $(wc -l <"$ROOT/modules/order") modules"

# ---- boot: TCG only (no usable KVM here), always under a hard time bound ----
clean() { tr -d '\r' | sed -u 's/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g'; }
start=$SECONDS
timeout -k 5 "${P2PWG_VM_TIMEOUT:-240}" "$QEMU" -accel tcg -cpu max -m 512 -smp 1 \
	-nographic -no-reboot -nic none -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic" \
	</dev/null >"$WORK/console.raw" 2>"$WORK/qemu.err" &
QPID=$!
# Interrupted: stop the VM (timeout passes the signal on to qemu) before leaving.
trap 'kill -TERM $QPID 2>/dev/null; wait $QPID; exit 130' INT TERM
tail -n +1 -f --pid=$QPID "$WORK/console.raw" 2>/dev/null | clean &
TPID=$!
wait $QPID
rc=$?
wait $TPID
trap 'exit 130' INT TERM
clean <"$WORK/console.raw" >"$WORK/console.log"
echo "# qemu exited with $rc after $((SECONDS - start)) s"
[ -s "$WORK/qemu.err" ] && sed 's/^/# qemu: /' "$WORK/qemu.err" | grep -v "TCG doesn't support requested feature" | head -20

passes=$(grep -c '^ok - ' "$WORK/console.log")
fails=$(grep -c '^FAIL - ' "$WORK/console.log")
guest=$(sed -n 's/^guest: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$WORK/console.log")
if [ -n "$guest" ] && [ "$guest" != "$passes $fails" ]; then
	fails=$((fails + 1))
	echo "FAIL - the console carried every check line (the guest counted $guest)"
fi
if ! grep -qx "$END_MARKER" "$WORK/console.log"; then
	fails=$((fails + 1))
	[ "$rc" = 124 ] && why="timed out" || why="stopped (qemu exit $rc)"
	echo "FAIL - the VM printed its end marker (it $why before the guest finished)"
fi
if [ "$passes" -eq 0 ]; then
	fails=$((fails + 1))
	echo "FAIL - the guest ran its checks"
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
