#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the kernel apply benchmark (bench/apply-vm.sh): inside the Debian
# kernel booted by tests/vm/run-vm-test.sh, wgagent (kernel backend, generic
# netlink) and wireguard-tools' wg each drive a kernel WireGuard interface of
# their own. Full: an empty interface gets P peers; one-peer change: one
# peer's endpoint moves among P. Median of R runs, each timing the whole
# command (process start included, `p2pwg-agentctl time`) and, for wgagent,
# its answer alone (`agentctl -T`). Prints `figure|name|value|unit` lines,
# `ok - ` / `FAIL - ` checks, the end marker, and powers the VM off.
# /etc/p2pwg-vm/params holds "PEERS RUNS"; dummy-keys at least PEERS keys.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
IP=/usr/sbin/ip
END_MARKER=P2PWG-VM-TEST-END
PASSES=0
FAILS=0
pass() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
finish() {
	echo "guest: $PASSES passed, $FAILS failed (uptime $(cut -d' ' -f1 /proc/uptime) s)"
	echo "$END_MARKER"
	poweroff -f
	sleep 10
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
umask 077
# The first line may share the console's line with the firmware's last words.
echo "# guest up at $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)"
while read -r m; do
	insmod "/modules/$m" || echo "# insmod $m failed"
done </modules/order
grep -q '^wireguard ' /proc/modules || { fail "wireguard module loaded"; finish; }
read -r P R _ </etc/p2pwg-vm/params
P=${P:-245} R=${R:-5}
[ "$(wc -l </etc/p2pwg-vm/dummy-keys)" -ge "$P" ] || { fail "$P dummy keys in the initramfs"; finish; }
$IP link set lo up

# The agent as in production: uid 61820, kernel backend, interface wga.
mkdir -p /run/a /var/lib
chown 61820:61820 /run/a
chmod 755 /run/a
wgagent -U 61820 -b kernel -i wga -s /run/a/agent.sock -d /var/lib/a >/run/a/agent.log 2>&1 &
i=0
while [ ! -S /run/a/agent.sock ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
[ -S /run/a/agent.sock ] || { fail "agent started"; cat /run/a/agent.log; finish; }
# wg's interface, made as wg-quick makes it.
$IP link add wgw type wireguard
$IP link set wgw up
wg genkey >/tmp/w.key

# Peer i: endpoint 198.18.x.y:51820 (peer 0's port +MOVED), allowed
# 10.88.0.(10 + i)/32, keepalive 25: the same peers as bench/apply.sh.
head -n "$P" /etc/p2pwg-vm/dummy-keys >/tmp/keys
specs() { # MOVED: one word per peer, for agentctl's --peer
	awk -v m="$1" '{ i = NR - 1
		printf "%s,endpoint=198.18.%d.%d:%d,allowed=10.88.0.%d/32,keepalive=25\n", $1,
			int(i / 200), 10 + i % 200, 51820 + (i == 0 ? m : 0), 10 + i }' /tmp/keys
}
conf() {
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51821\n' "$(cat /tmp/w.key)"
	awk -v m="$1" '{ i = NR - 1
		printf "[Peer]\nPublicKey = %s\nEndpoint = 198.18.%d.%d:%d\nAllowedIPs = 10.88.0.%d/32\nPersistentKeepalive = 25\n",
			$1, int(i / 200), 10 + i % 200, 51820 + (i == 0 ? m : 0), 10 + i }' /tmp/keys
}
specs 0 | sed 's/^/--peer /' | tr '\n' ' ' >/tmp/s0
specs 1 | sed 's/^/--peer /' | tr '\n' ' ' >/tmp/s1
conf 0 >/tmp/c0.conf
conf 1 >/tmp/c1.conf
printf '[Interface]\nPrivateKey = %s\nListenPort = 51821\n' "$(cat /tmp/w.key)" >/tmp/empty.conf
CTL="p2pwg-agentctl -s /run/a/agent.sock -t 60000"
# timed FILE CMD...: run CMD under `agentctl time`; its stderr appended to FILE.
timed() { local f=$1; shift; p2pwg-agentctl time "$@" >/dev/null 2>>"$f"; }
# ms WHAT FILE: the times of WHAT's lines ("<what> ran in X ms", "answered in X ms").
ms() { awk -v w="$1" '$0 ~ w { for (i = 1; i < NF; i++) if ($i == "in") print $(i + 1) }' "$2"; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }

r=0
while [ $r -lt "$R" ]; do
	$CTL set --address 10.88.0.9/32 >/dev/null 2>&1
	# shellcheck disable=SC2046
	timed /tmp/t.full $CTL -T set --address 10.88.0.9/32 $(cat /tmp/s0)
	timed /tmp/t.one $CTL -T set --address 10.88.0.9/32 $(cat /tmp/s1)
	wg setconf wgw /tmp/empty.conf
	timed /tmp/w.full wg setconf wgw /tmp/c0.conf
	timed /tmp/w.one wg syncconf wgw /tmp/c1.conf
	wg setconf wgw /tmp/c0.conf
	timed /tmp/floor wg show wgw listen-port
	r=$((r + 1))
done

n=$(wg show wga peers | wc -l)
[ "$n" -eq "$P" ] && pass "wga (the agent's) ends with $P peers" || fail "wga ends with $P peers ($n)"
ep=$(wg show wga endpoints | awk -v k="$(head -1 /tmp/keys)" '$1 == k { print $2 }')
[ "$ep" = 198.18.0.10:51821 ] && pass "wga has the moved endpoint" || fail "wga has the moved endpoint ($ep)"
n=$(wg show wgw peers | wc -l)
[ "$n" -eq "$P" ] && pass "wgw (wg's) ends with $P peers" || fail "wgw ends with $P peers ($n)"
n=$(ms "answered" /tmp/t.full | wc -l)
[ "$n" -eq "$R" ] && pass "every timed SetPeers answered ($n)" || fail "every timed SetPeers answered ($n of $R)"

fa=$(ms p2pwg-agentctl /tmp/t.full | median) fi=$(ms answered /tmp/t.full | median)
oa=$(ms p2pwg-agentctl /tmp/t.one | median) oi=$(ms answered /tmp/t.one | median)
fw=$(ms wg /tmp/w.full | median) ow=$(ms wg /tmp/w.one | median) fl=$(ms wg /tmp/floor | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "figure|kernel (VM): apply $P peers, wgagent SetPeers (agentctl)|$fa|ms"
echo "figure|kernel (VM): apply $P peers, wgagent's answer (agentctl -T)|$fi|ms"
echo "figure|kernel (VM): apply $P peers, wg setconf|$fw|ms"
echo "figure|kernel (VM): apply ratio wgagent answer / wg setconf|$(ratio "$fi" "$fw") (command: $(ratio "$fa" "$fw"))|x"
echo "figure|kernel (VM): one-peer change among $P, wgagent SetPeers (agentctl)|$oa|ms"
echo "figure|kernel (VM): one-peer change among $P, wgagent's answer (agentctl -T)|$oi|ms"
echo "figure|kernel (VM): one-peer change among $P, wg syncconf|$ow|ms"
echo "figure|kernel (VM): one-peer ratio wgagent answer / wg syncconf|$(ratio "$oi" "$ow") (command: $(ratio "$oa" "$ow"))|x"
echo "figure|kernel (VM): wg show (process start floor)|$fl|ms"
echo "info|kernel (VM, QEMU TCG, 1 vCPU): $(uname -r), runs $R, median"
if [ "$FAILS" -gt 0 ]; then
	sed 's/^/# a| /' /run/a/agent.log | grep -v '\(add\|update\) peer' | tail -20
fi
finish
