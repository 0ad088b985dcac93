#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the kernel WireGuard VM test: runs as PID 1 inside a Debian kernel
# booted by tests/vm/run-vm-test.sh, with busybox, iproute2's ip, wg, and the
# project's wgagent and p2pwg-agentctl in the initramfs. Two agents in two
# network namespaces joined by a veth pair drive the kernel's WireGuard
# (no wireguard-go here); `wg` is the independent reader. Prints one
# `ok - ...` / `FAIL - ...` line per check, a summary, the end marker, and
# powers the VM off.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# busybox's shell runs its own `ip` applet before $PATH: always the full path.
IP=/usr/sbin/ip
END_MARKER=P2PWG-VM-TEST-END
PASSES=0
FAILS=0

log() { echo "# $*"; }
pass() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { # check "description" command...
	local what="$1"
	shift
	if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}
retry() { # retry TRIES command...: every 0.2 s
	local n=$1 i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge "$n" ] && return 1
		sleep 0.2
	done
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
finish() {
	echo "guest: $PASSES passed, $FAILS failed (uptime $(uptime_s) s)"
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
log "guest up at $(uptime_s) s, kernel $(uname -r)"

# ---- the kernel's WireGuard and veth, in modprobe's order ----
while read -r m; do
	insmod "/modules/$m" || log "insmod $m failed"
done </modules/order
check "wireguard module loaded" grep -q '^wireguard ' /proc/modules
check "no wireguard-go in the VM" sh -c '! command -v wireguard-go'
if ! grep -q '^wireguard ' /proc/modules; then
	fail "cannot go on without the wireguard module"
	finish
fi

# ---- topology: namespaces a (198.18.0.1) and b (198.18.0.2) on a veth pair ----
for ns in a b; do
	$IP netns add $ns
	$IP -n $ns link set lo up
done
$IP link add eth0 netns a type veth peer name eth0 netns b
$IP -n a addr add 198.18.0.1/24 dev eth0
$IP -n b addr add 198.18.0.2/24 dev eth0
$IP -n a link set eth0 up
$IP -n b link set eth0 up
check "veth pair between namespaces a and b" retry 25 $IP netns exec a ping -c1 -W1 198.18.0.2

start_agent() { # name: agent "name" in namespace "name", interface wg<name>
	local name=$1 pid
	# The agent runs as uid 61820 (no passwd in the VM); its run dir is that user's.
	mkdir -p /run/$name /var/lib
	chown 61820:61820 /run/$name
	chmod 755 /run/$name
	rm -f /run/$name/agent.sock
	$IP netns exec $name wgagent -U 61820 -b kernel -i wg$name -s /run/$name/agent.sock \
		-d /var/lib/$name >>/run/$name/agent.log 2>&1 &
	pid=$!
	eval "PID_$name=$pid"
	if ! retry 100 test -S /run/$name/agent.sock; then
		fail "agent $name did not start"
		sed "s/^/# $name| /" /run/$name/agent.log
		return 1
	fi
}
stop_agent() { # name: SIGTERM, then wait (bounded) for it to exit and reap it
	local pid i=0 st
	eval "pid=\$PID_$1"
	kill -TERM "$pid"
	while [ $i -lt 50 ]; do
		st=$(awk '/^State:/ {print $2}' /proc/$pid/status 2>/dev/null)
		[ -z "$st" ] || [ "$st" = Z ] && break
		sleep 0.1
		i=$((i + 1))
	done
	[ $i -lt 50 ] || return 1
	wait "$pid"
	return 0
}
ctl() { local name=$1; shift; p2pwg-agentctl -s /run/$name/agent.sock "$@"; }
pubkey() { ctl "$1" hello | awk '/^version/ {print $4}'; }
capeff() { awk '/^CapEff:/ {print $2}' /proc/$1/status; }
wga() { $IP netns exec a wg "$@"; }
hs() { wga show wga latest-handshakes | awk -v k="$1" '$1 == k {print $2}'; }
rx() { wga show wga transfer | awk -v k="$1" '$1 == k {print $2}'; }
tx() { wga show wga transfer | awk -v k="$1" '$1 == k {print $3}'; }
# "key endpoint allowed keepalive" per peer, sorted, as wg and as the agent see them
dump_peers() { $IP netns exec "$1" wg show "$2" dump | tail -n +2 | awk '{print $1, $3, $4, $8}' | sort; }
get_peers() { ctl "$1" -t 30000 get | awk '$1 == "peer" {print $2, $4, $6, $14}' | sort; }
short() { echo "$1" | cut -c1-8; }
# HTTP GET with busybox nc (Debian's static busybox wget segfaulted in this VM
# on every request): http_get NS IP PATH prints the answer, headers included.
http_get() {
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$2" |
		$IP netns exec "$1" timeout 10 nc -w 5 "$2" 8000 2>&1 | tr -d '\r'
}

start_agent a
start_agent b
KEY_A=$(pubkey a)
KEY_B=$(pubkey b)
KEY_C=$(wg genkey | wg pubkey)
log "a=$KEY_A b=$KEY_B c=$KEY_C"
check "both agents answer Hello with a 44-character public key" \
	test ${#KEY_A} -eq 44 -a ${#KEY_B} -eq 44 -a "$KEY_A" != "$KEY_B"
check "agent a's log says backend kernel" grep -q "backend kernel, interface wga created" /run/a/agent.log
check "agent b's log says backend kernel" grep -q "backend kernel, interface wgb created" /run/b/agent.log
check "wga is a kernel wireguard link" sh -c "$IP -n a -d link show wga | grep -qw wireguard"
cap=$(capeff "$PID_a")
check "agent a's effective capabilities are CAP_NET_ADMIN only (CapEff=$cap)" test "$cap" = 0000000000001000
cap=$(capeff "$PID_b")
check "agent b's effective capabilities are CAP_NET_ADMIN only (CapEff=$cap)" test "$cap" = 0000000000001000
check "agent a runs with no_new_privs" grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$PID_a/status
check "agent a runs as uid 61820" grep -q '^Uid:[[:space:]]*61820[[:space:]]61820[[:space:]]61820[[:space:]]61820' /proc/$PID_a/status
check "agent a's permitted capabilities are CAP_NET_ADMIN only" grep -q '^CapPrm:[[:space:]]*0000000000001000' /proc/$PID_a/status
check "agent a runs under a seccomp filter" grep -q '^Seccomp:[[:space:]]*2' /proc/$PID_a/status

# ---- a tunnel through the agent protocol ----
ctl a set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" \
	--peer "$KEY_C,endpoint=198.18.0.9:51820,allowed=10.88.0.12/32,keepalive=25" >/tmp/set1 2>&1
check "SetPeers on a is applied ($(head -1 /tmp/set1))" grep -q "changed yes" /tmp/set1
ctl b set --address 10.88.0.11/24 \
	--peer "$KEY_A,endpoint=198.18.0.1:51820,allowed=10.88.0.10/32,keepalive=25" >/tmp/set2 2>&1
check "SetPeers on b is applied ($(head -1 /tmp/set2))" grep -q "changed yes" /tmp/set2
check "ping crosses the tunnel a -> b" retry 50 $IP netns exec a ping -c1 -W1 10.88.0.11
check "ping crosses the tunnel b -> a" retry 10 $IP netns exec b ping -c1 -W1 10.88.0.10
body=$(http_get a 10.88.0.11 /test)
log "/test: $(echo "$body" | tail -1)"
case "$body" in
"HTTP/1.1 200 "*'"wg_ip": "10.88.0.11/32", "time": "20'*) pass "/test over the tunnel answers b's overlay address" ;;
*) fail "/test over the tunnel answers b's overlay address ($body)" ;;
esac
status=$(http_get a 10.88.0.11 /other | head -1)
check "only /test is served (other path: $status)" sh -c "echo '$status' | grep -q '^HTTP/1.1 404'"
check "agent b logs the /test request" retry 15 grep -q "serving request from 10.88.0.10" /run/b/agent.log

expect=$(printf '%s\n' "$KEY_B 198.18.0.2:51820 10.88.0.11/32 25" "$KEY_C 198.18.0.9:51820 10.88.0.12/32 25" | sort)
got=$(dump_peers a wga)
check "wg show wga dump shows exactly the requested peers" test "$got" = "$expect"
[ "$got" = "$expect" ] || log "got: $got"
check "wg show wga dump shows a's public key and port" \
	test "$(wga show wga dump | head -1 | cut -f2,3)" = "$(printf '%s\t51820' "$KEY_A")"
check "wg show wgb dump shows exactly the requested peer" \
	test "$(dump_peers b wgb)" = "$KEY_A 198.18.0.1:51820 10.88.0.10/32 25"
check "wga has 10.88.0.10/24" sh -c "$IP -n a -4 addr show wga | grep -q 'inet 10.88.0.10/24'"

HS_B=$(hs "$KEY_B")
RX_B=$(rx "$KEY_B")
TX_B=$(tx "$KEY_B")
check "a has a handshake with b ($HS_B)" test "${HS_B:-0}" -gt 0

# ---- the one-peer diff: changing the dummy leaves the real peer's session alone ----
sleep 1.1
LOGN=$(wc -l </run/a/agent.log)
ctl a set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" \
	--peer "$KEY_C,endpoint=198.18.0.8:51820,allowed=10.88.0.12/32,keepalive=25" >/tmp/set3 2>&1
check "changing the dummy's endpoint is applied" grep -q "changed yes" /tmp/set3
check "wg shows the dummy's new endpoint" \
	test "$(wga show wga endpoints | awk -v k="$KEY_C" '$1 == k {print $2}')" = 198.18.0.8:51820
check "the agent changed only the dummy peer" sh -c \
	"tail -n +$((LOGN + 1)) /run/a/agent.log | grep -q 'update peer $(short "$KEY_C")' &&
	 ! tail -n +$((LOGN + 1)) /run/a/agent.log | grep -q 'peer $(short "$KEY_B")'"
HS=$(hs "$KEY_B")
check "the real peer keeps its latest handshake ($HS_B -> $HS)" test "$HS" = "$HS_B"
RX=$(rx "$KEY_B")
TX=$(tx "$KEY_B")
check "the real peer's transfer counters are not reset (rx $RX_B -> $RX, tx $TX_B -> $TX)" \
	test "$RX" -ge "$RX_B" -a "$TX" -ge "$TX_B" -a "$RX_B" -gt 0 -a "$TX_B" -gt 0
ctl a set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" \
	--peer "$KEY_C,endpoint=198.18.0.8:51820,allowed=10.88.0.12/32,keepalive=25" >/tmp/set4 2>&1
check "the same state again changes nothing" grep -q "changed no" /tmp/set4

# ---- one peer's allowed IPs split across netlink messages ----
# The real peer b plus 15 dummies with 16 allowed IPs each (~530 bytes of
# netlink per peer): the SET needs two messages and a peer continues in the
# second; the kernel must end up with every allowed IP.
awk 'BEGIN { h = 1 }
     NR <= 15 { ips = ""
       for (j = 0; j < 16; j++) {
         if (h == 10) h = 12
         ips = ips (j ? "+" : "") "10.88.0." h "/32"
         print $1, "10.88.0." h "/32" >"/tmp/wide.expect"
         h++
       }
       printf "%s,endpoint=192.0.2.%d:%d,allowed=%s\n", $1, NR, 41000 + NR, ips >"/tmp/wide.specs" }' \
	/etc/p2pwg-vm/dummy-keys
echo "$KEY_B 10.88.0.11/32" >>/tmp/wide.expect
sort -o /tmp/wide.expect /tmp/wide.expect
set -- --peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25"
while read -r spec; do
	set -- "$@" --peer "$spec"
done </tmp/wide.specs
ctl a -t 60000 set --address 10.88.0.10/24 "$@" >/tmp/set_wide 2>&1
set --
check "SetPeers with 15 peers x 16 allowed IPs is applied ($(head -1 /tmp/set_wide))" grep -q "changed yes" /tmp/set_wide
wga show wga allowed-ips | awk '{ for (i = 2; i <= NF; i++) print $1, $i }' | sort >/tmp/wide.wg
n=$(wc -l </tmp/wide.wg)
check "wg show wga allowed-ips: all 241 allowed IPs, each on its peer ($n)" cmp /tmp/wide.expect /tmp/wide.wg
cmp -s /tmp/wide.expect /tmp/wide.wg || diff /tmp/wide.expect /tmp/wide.wg | head -10 | sed 's/^/# /'
ctl a -t 30000 get | awk '$1 == "peer" { n = split($6, a, ","); for (i = 1; i <= n; i++) print $2, a[i] }' |
	sort >/tmp/wide.get
check "p2pwg-agentctl get: all 241 allowed IPs, each on its peer" cmp /tmp/wide.expect /tmp/wide.get
check "the dummy peer c was removed" sh -c "! $IP netns exec a wg show wga peers | grep -qF '$KEY_C'"
check "the real peer kept its handshake through the 16-peer change" test "$(hs "$KEY_B")" = "$HS_B"

# ---- 245 peers in one SetPeers: several netlink messages ----
# The real peer b plus 244 dummies (the first 15 go from 16 allowed IPs to
# one); allowed IPs 10.88.0.1-9 and .12-.246, never a's own .10; dummies
# without keepalive so none starts a handshake.
awk '{ h = NR <= 9 ? NR : NR + 2; ep = sprintf("192.0.2.%d:%d", NR % 250 + 1, 40000 + NR)
       printf "%s,endpoint=%s,allowed=10.88.0.%d/32\n", $1, ep, h >"/tmp/big.specs"
       printf "%s %s 10.88.0.%d/32 off\n", $1, ep, h >"/tmp/big.dump" }' /etc/p2pwg-vm/dummy-keys
echo "$KEY_B 198.18.0.2:51820 10.88.0.11/32 25" >>/tmp/big.dump
sort /tmp/big.dump -o /tmp/big.dump
sed 's/ off$/ 0/' /tmp/big.dump >/tmp/big.get
set -- --peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25"
while read -r spec; do
	set -- "$@" --peer "$spec"
done </tmp/big.specs
log "SetPeers with $(($# / 2)) peers"
t0=$(uptime_s)
ctl a -t 60000 set --address 10.88.0.10/24 "$@" >/tmp/set5 2>&1
log "applied in $(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN {print b - a}') s: $(head -1 /tmp/set5)"
set --
check "a 245-peer SetPeers is applied" grep -q "changed yes" /tmp/set5
wga show wga dump >/tmp/big.wg
n=$(tail -n +2 /tmp/big.wg | wc -l)
check "wg show wga dump has 245 peers ($n)" test "$n" -eq 245
dump_peers a wga >/tmp/big.wg.sorted
check "wg show wga dump: every key with its endpoint, allowed IP and keepalive" \
	cmp /tmp/big.dump /tmp/big.wg.sorted
cmp -s /tmp/big.dump /tmp/big.wg.sorted || diff /tmp/big.dump /tmp/big.wg.sorted | head -10 | sed 's/^/# /'
get_peers a >/tmp/big.get.got
n=$(wc -l </tmp/big.get.got)
check "p2pwg-agentctl get reads back 245 peers ($n)" test "$n" -eq 245
check "p2pwg-agentctl get: every key with its endpoint, allowed IP and keepalive" \
	cmp /tmp/big.get /tmp/big.get.got
cmp -s /tmp/big.get /tmp/big.get.got || diff /tmp/big.get /tmp/big.get.got | head -10 | sed 's/^/# /'
check "the real peer kept its handshake through the 245-peer change" test "$(hs "$KEY_B")" = "$HS_B"
check "ping still crosses the tunnel with 245 peers" retry 10 $IP netns exec a ping -c1 -W1 10.88.0.11

# ---- agent restart: the interface is adopted, the session kept ----
HS_B=$(hs "$KEY_B")
OLD_PID=$PID_a
check "agent a exits on SIGTERM" stop_agent a
check "interface wga kept after the agent exited" $IP -n a link show wga
start_agent a
check "restarted agent is a new process" test "$PID_a" != "$OLD_PID"
check "restarted agent adopted the interface" \
	grep -q "backend kernel, interface wga adopted with 245 peers" /run/a/agent.log
check "restarted agent keeps its public key" test "$(pubkey a)" = "$KEY_A"
HS=$(hs "$KEY_B")
check "the restart did not reset the session (latest handshake $HS_B -> $HS)" test "$HS" = "$HS_B"
cap=$(capeff "$PID_a")
check "restarted agent's effective capabilities are CAP_NET_ADMIN only (CapEff=$cap)" \
	test "$cap" = 0000000000001000
n=$(get_peers a | wc -l)
check "restarted agent reads back 245 peers ($n)" test "$n" -eq 245
check "ping crosses the tunnel after the restart" retry 10 $IP netns exec a ping -c1 -W1 10.88.0.11
body=$(http_get b 10.88.0.10 /test)
case "$body" in
"HTTP/1.1 200 "*'"wg_ip": "10.88.0.10/32"'*) pass "/test answered by the restarted agent" ;;
*) fail "/test answered by the restarted agent ($body)" ;;
esac

# ---- the interface is deleted: the agent (uid 61820, seccomp) rebuilds it ----
$IP -n a link del wga
check "a deleted kernel interface is rebuilt and ping crosses it" retry 25 $IP netns exec a ping -c1 -W1 10.88.0.11
n=$($IP netns exec a wg show wga dump | tail -n +2 | wc -l)
check "the rebuilt interface has its 245 peers back ($n)" test "$n" -eq 245
check "the agent logs the rebuild" grep -q "rebuilt wga: key, port, address and 245 peers restored" /run/a/agent.log
check "agent a is still the same process" test -d /proc/$PID_a

# ---- logs ----
if [ "$FAILS" -gt 0 ]; then
	sed 's/^/# a| /' /run/a/agent.log | grep -v '\(add\|update\) peer' | head -60
	sed 's/^/# b| /' /run/b/agent.log | head -30
	dmesg | tail -20 | sed 's/^/# dmesg| /'
else
	head -4 /run/a/agent.log | sed 's/^/# a| /'
fi
finish
