#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end: two real wgagents (wireguard-go backend) in namespaces the test
# makes, driven by p2pwg-agentctl; wireguard-tools' `wg` is the independent
# reader; coturn is the real STUN server. Usage: agent_e2e.sh WGAGENT AGENTCTL
set -u
WGAGENT=$(readlink -f "$1")
CTL=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl ping setpriv; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done

ID=$$
NS_NET=p2e$ID-net NS_A=p2e$ID-a NS_B=p2e$ID-b NS_S=p2e$ID-stun
IF_A=p2e$ID-wa IF_B=p2e$ID-wb
TMP=$(mktemp -d /tmp/p2pwg-e2e.XXXXXX)
chmod 755 "$TMP"
trap 'e2e_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# ---- topology: a, b and stun on one bridge (198.18.0.0/24) ----
netns_add "$NS_NET"; netns_add "$NS_A"; netns_add "$NS_B"; netns_add "$NS_S"
ip -n "$NS_NET" link add br0 type bridge
ip -n "$NS_NET" link set br0 up
n=1
for ns in "$NS_A" "$NS_B" "$NS_S"; do
	ip link add e2e$ID-$n type veth peer name eth0 netns "$ns"
	ip link set e2e$ID-$n netns "$NS_NET"
	ip -n "$NS_NET" link set e2e$ID-$n master br0 up
	ip -n "$ns" addr add 198.18.0.$n/24 dev eth0
	ip -n "$ns" link set eth0 up
	n=$((n + 1))
done

ip netns exec "$NS_S" turnserver -n --stun-only --listening-ip 198.18.0.3 --listening-port 3478 \
	--no-cli --no-tls --no-dtls --log-file stdout --simple-log >"$TMP/turnserver.log" 2>&1 &
track_pid $! turnserver

start_agent() { # name ns ifname extra-args...
	local name=$1 ns=$2 ifn=$3; shift 3
	agent_dir "$TMP/$name"
	ip netns exec "$ns" "$WGAGENT" -U $E2E_AGENT_UID -i "$ifn" -s "$TMP/$name/agent.sock" -d "$TMP/$name/state" \
		"$@" >>"$TMP/$name/agent.log" 2>&1 &
	local pid=$!
	track_pid $pid wgagent
	eval "PID_$name=$pid"
	retry 10 test -S "$TMP/$name/agent.sock" || { fail "agent $name did not start"; cat "$TMP/$name/agent.log"; exit 1; }
	[ -f "$TMP/$name/wireguard-go.$ifn.pid" ] && track_pid "$(cat "$TMP/$name/wireguard-go.$ifn.pid")" wireguard-go
	return 0
}
ctl() { local name=$1; shift; "$CTL" -s "$TMP/$name/agent.sock" "$@"; }
pubkey() { ctl "$1" hello | awk '/^version/ {print $4}'; }

start_agent a "$NS_A" "$IF_A" --socket-mode 0666 --allow-uid 65533
start_agent b "$NS_B" "$IF_B"
KEY_A=$(pubkey a); KEY_B=$(pubkey b)
KEY_C=$(wg genkey | wg pubkey)
e2e_log "a=$KEY_A b=$KEY_B"

check "both agents answer Hello with a 44-character public key" \
	test ${#KEY_A} -eq 44 -a ${#KEY_B} -eq 44 -a "$KEY_A" != "$KEY_B"
check "agent log names the userspace backend" grep -q "backend userspace" "$TMP/a/agent.log"
cap=$(awk '/^CapEff/ {print $2}' /proc/$PID_a/status)
check "agent's effective capabilities are CAP_NET_ADMIN only (CapEff=$cap)" test "$cap" = 0000000000001000
check "agent runs with no_new_privs" grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$PID_a/status
status_of() { awk -v k="$2:" '$1 == k {print $2, $3, $4, $5}' /proc/$1/status; }
check "agent runs as uid $E2E_AGENT_UID, not root ($(status_of $PID_a Uid))" \
	test "$(status_of $PID_a Uid)" = "$E2E_AGENT_UID $E2E_AGENT_UID $E2E_AGENT_UID $E2E_AGENT_UID"
check "agent has no supplementary group but its own" test "$(status_of $PID_a Groups)" = "$E2E_AGENT_UID   "
check "agent's permitted capabilities are CAP_NET_ADMIN only" test "$(status_of $PID_a CapPrm)" = "0000000000001000   "
check "agent's bounding set is CAP_NET_ADMIN only" test "$(status_of $PID_a CapBnd)" = "0000000000001000   "
check "agent runs under a seccomp filter (Seccomp 2)" test "$(status_of $PID_a Seccomp)" = "2   "
check "agent's memory is not dumpable (its /proc files stay root's)" test "$(stat -c %u /proc/$PID_a/environ)" = 0
check "agent has no core dumps (RLIMIT_CORE 0)" grep -q '^Max core file size *0 *0 ' /proc/$PID_a/limits
WG_A=$(cat "$TMP/a/wireguard-go.$IF_A.pid")
check "wireguard-go runs as uid $E2E_AGENT_UID ($(status_of $WG_A Uid))" \
	test "$(status_of $WG_A Uid)" = "$E2E_AGENT_UID $E2E_AGENT_UID $E2E_AGENT_UID $E2E_AGENT_UID"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
	v=$(status_of $WG_A $c)
	check "wireguard-go's $c is at most CAP_NET_ADMIN ($v)" test "$((0x${v% *} & ~0x1000))" = 0
done
check "wireguard-go runs with no_new_privs" test "$(status_of $WG_A NoNewPrivs)" = "1   "
check "wireguard-go's environment is only what it needs" test "$(tr '\0' ' ' </proc/$WG_A/environ)" = \
	"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 LOG_LEVEL=error "
check "wireguard-go runs in /" test "$(readlink /proc/$WG_A/cwd)" = /
check "wireguard-go holds neither the control socket nor the key" \
	bash -c "! ls -l /proc/$WG_A/fd | grep -qE 'agent.sock|private.key|SOCK_RAW'"
check "the UAPI socket dir is the agent user's, not writable by others" \
	test "$(stat -c '%u %a' /var/run/wireguard)" = "$E2E_AGENT_UID 755"
check "a's UAPI socket is reachable by its user only" test "$(stat -c '%u %a' /var/run/wireguard/$IF_A.sock)" = "$E2E_AGENT_UID 700"
mode=$(stat -c %a "$TMP/a/state/private.key")
check "private key file is mode 600 ($mode)" test "$mode" = 600
check "private key never in the agent log" bash -c "! grep -qF '$(cat "$TMP/a/state/private.key")' '$TMP/a/agent.log'"

# ---- a tunnel ----
ctl a set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" \
	--peer "$KEY_C,endpoint=198.18.0.9:51820,allowed=10.88.0.12/32,keepalive=25" >"$TMP/set1" 2>&1
check "SetPeers on a is applied" grep -q "changed yes" "$TMP/set1"
ctl b set --address 10.88.0.11/24 --peer "$KEY_A,endpoint=198.18.0.1:51820,allowed=10.88.0.10/32,keepalive=25" >/dev/null
check "ping crosses the tunnel a -> b" retry 15 ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
check "ping crosses the tunnel b -> a" retry 5 ip netns exec "$NS_B" ping -c1 -W1 10.88.0.10
body=$(ip netns exec "$NS_A" curl -s --max-time 3 http://10.88.0.11:8000/test)
e2e_log "/test: $body"
check "/test over the tunnel answers b's overlay address" \
	bash -c "echo '$body' | grep -q '\"wg_ip\": \"10.88.0.11/32\", \"time\": \"20'"
check "agent b logs the /test request" retry 3 grep -q "serving request from 10.88.0.10" "$TMP/b/agent.log"
code=$(ip netns exec "$NS_A" curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://10.88.0.11:8000/other)
check "only /test is served (other path: $code)" test "$code" = 404

dump_peers() { # ns ifname: "key endpoint allowed keepalive" per peer, sorted
	ip netns exec "$1" wg show "$2" dump | tail -n +2 | awk '{print $1, $3, $4, $8}' | sort
}
expect=$(printf '%s\n' "$KEY_B 198.18.0.2:51820 10.88.0.11/32 25" "$KEY_C 198.18.0.9:51820 10.88.0.12/32 25" | sort)
check "wg show dump on a shows exactly the requested peers" test "$(dump_peers "$NS_A" "$IF_A")" = "$expect"
check "wg show on a shows its public key and port" \
	test "$(ip netns exec "$NS_A" wg show "$IF_A" dump | head -1 | cut -f2,3)" = "$(printf '%s\t51820' "$KEY_A")"

hs() { ip netns exec "$NS_A" wg show "$IF_A" latest-handshakes | awk -v k="$1" '$1 == k {print $2}'; }
rx() { ip netns exec "$NS_A" wg show "$IF_A" transfer | awk -v k="$1" '$1 == k {print $2}'; }
HS_B=$(hs "$KEY_B"); RX_B=$(rx "$KEY_B")
check "a has a handshake with b ($HS_B)" test "${HS_B:-0}" -gt 0

# ---- change one peer: the other keeps its session ----
sleep 1.1
ctl a set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" \
	--peer "$KEY_C,endpoint=198.18.0.8:51820,allowed=10.88.0.12/32,keepalive=25" >/dev/null
check "changed peer's endpoint is applied" bash -c "ip netns exec $NS_A wg show $IF_A endpoints | grep -q '198.18.0.8:51820'"
check "unchanged peer keeps its handshake time" test "$(hs "$KEY_B")" = "$HS_B"
check "unchanged peer's counters are not reset" test "$(rx "$KEY_B")" -ge "$RX_B"
# ---- remove a peer ----
ctl a set --address 10.88.0.10/24 --peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" >"$TMP/set3"
check "removing a peer is applied" grep -q "changed yes" "$TMP/set3"
check "removed peer is gone from wg show" test "$(dump_peers "$NS_A" "$IF_A")" = "$KEY_B 198.18.0.2:51820 10.88.0.11/32 25"
check "agent logs the removal" grep -q "remove peer ${KEY_C:0:8}" "$TMP/a/agent.log"
ctl a set --address 10.88.0.10/24 --peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" >"$TMP/set4"
check "the same state again changes nothing" grep -q "changed no" "$TMP/set4"
check "and the remaining peer still has its session" test "$(hs "$KEY_B")" = "$HS_B"

# ---- agent restart keeps the tunnel ----
ip netns exec "$NS_A" ping -i 0.2 -c 25 -W1 10.88.0.11 >"$TMP/ping_restart" 2>&1 &
PING=$!
sleep 0.5
kill -TERM "$PID_a"
check "agent exits on SIGTERM" wait_gone "$PID_a"
check "interface kept after SIGTERM" ip -n "$NS_A" link show "$IF_A"
start_agent a "$NS_A" "$IF_A" --socket-mode 0666 --allow-uid 65533
wait $PING
loss=$(grep -o '[0-9.]*% packet loss' "$TMP/ping_restart")
check "no ping lost across the agent restart ($loss)" test "$loss" = "0% packet loss"
check "restarted agent keeps its public key" test "$(pubkey a)" = "$KEY_A"
check "restarted agent adopted the interface" grep -q "adopted with 1 peers" "$TMP/a/agent.log"
check "restart did not reset the session" test "$(hs "$KEY_B")" = "$HS_B"
check "/test still answered after the restart" ip netns exec "$NS_B" curl -sf --max-time 3 http://10.88.0.10:8000/test -o /dev/null

# ---- wireguard-go dies: the agent rebuilds the interface, address and peers ----
kill -HUP "$PID_a"
sleep 0.3
check "SIGHUP does not stop the agent" test -d /proc/$PID_a
WG_A=$(cat "$TMP/a/wireguard-go.$IF_A.pid")
kill -KILL "$WG_A"
t0=$EPOCHREALTIME
retry 10 ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
took=$(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}")
check "ping a -> b resumes after wireguard-go is killed (${took}s)" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
WG_A2=$(cat "$TMP/a/wireguard-go.$IF_A.pid")
[ "$WG_A2" != "$WG_A" ] && track_pid "$WG_A2" wireguard-go
check "a new wireguard-go runs ($WG_A -> $WG_A2)" test "$WG_A2" != "$WG_A" -a -d /proc/$WG_A2
check "the rebuilt interface has the peer back" test "$(dump_peers "$NS_A" "$IF_A")" = "$KEY_B 198.18.0.2:51820 10.88.0.11/32 25"
check "the rebuilt interface has a's key" test "$(ip netns exec "$NS_A" wg show "$IF_A" public-key)" = "$KEY_A"
check "the agent logs the rebuild" grep -q "rebuilt $IF_A: key, port, address and 1 peers restored" "$TMP/a/agent.log"
check "/test answered after the rebuild" retry 5 ip netns exec "$NS_B" curl -sf --max-time 3 http://10.88.0.10:8000/test -o /dev/null
ip -n "$NS_A" link del "$IF_A"
check "a deleted interface is rebuilt too" retry 10 ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
WG_A3=$(cat "$TMP/a/wireguard-go.$IF_A.pid")
[ "$WG_A3" != "$WG_A2" ] && track_pid "$WG_A3" wireguard-go
check "the agent is still the same process" test -d /proc/$PID_a

# ---- STUN from the WireGuard port against a real STUN server ----
retry 5 ip netns exec "$NS_S" ss -Hlun sport = :3478
out=$(ctl a stun 198.18.0.3:3478)
e2e_log "stun: $out"
check "STUN mapping shows the WireGuard port" test "$out" = "mapped 198.18.0.1:51820"
check "tunnel still works after STUN" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
out=$(ctl a -t 500 stun 198.18.0.4:3478 2>&1)
check "STUN to a silent server times out with a clear error ($out)" bash -c "echo '$out' | grep -q 'TIMEOUT'"

# ---- who may talk to the agent ----
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" -s "$TMP/a/agent.sock" hello 2>&1)
check "a client with an untrusted uid is refused" test $? -ne 0
check "the refusal is logged with the uid" grep -q "refused client pid [0-9]* uid 65534" "$TMP/a/agent.log"
check "an allowed uid is served" setpriv --reuid=65533 --regid=65533 --clear-groups "$CTL" -s "$TMP/a/agent.sock" hello

# ---- a client that never reads its answers ----
ctl a -t 5000 stall 2000 >"$TMP/stall" 2>&1 &
STALL=$!
sleep 0.5
t0=$(date +%s%N)
ctl a -t 1000 set --address 10.88.0.10/24 --peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" >"$TMP/set_stall" 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
check "SetPeers is answered while another client never reads (${ms} ms)" grep -q "changed no" "$TMP/set_stall"
wait $STALL
e2e_log "stalling client: $(cat "$TMP/stall")"
check "the agent hangs up on the client that never reads" grep -q "hung up" "$TMP/stall"
check "and logs it once" test "$(grep -c 'does not read its replies' "$TMP/a/agent.log")" = 1

# ---- /test: one peer can neither lock the others out nor flood the log ----
ip -n "$NS_B" addr add 10.88.0.13/32 dev "$IF_B"
ctl a set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32+10.88.0.13/32,keepalive=25" >/dev/null
ip netns exec "$NS_B" bash -c 'for i in $(seq 40); do exec {fd}<>/dev/tcp/10.88.0.10/8000; done; sleep 2' \
	>/dev/null 2>&1 &
HOLD=$!
sleep 0.5
check "another peer's /test is answered while one peer holds 40 idle connections" \
	ip netns exec "$NS_B" curl -sf --max-time 2 --interface 10.88.0.13 http://10.88.0.10:8000/test -o /dev/null
wait $HOLD
# From outside the tunnel (routed to a's eth0), the source address proves nothing.
ip -n "$NS_S" route add 10.88.0.10/32 via 198.18.0.1
check "/test is not served to the overlay address arriving outside the tunnel" \
	bash -c "! ip netns exec $NS_S curl -s --max-time 1 http://10.88.0.10:8000/test"
before=$(grep -c "serving request from" "$TMP/a/agent.log")
ip netns exec "$NS_B" curl -s --max-time 10 $(printf 'http://10.88.0.10:8000/test %.0s' $(seq 30)) >/dev/null
lines=$(($(grep -c "serving request from" "$TMP/a/agent.log") - before))
check "30 /test requests in a row add at most one log line ($lines)" test "$lines" -le 1

# ---- /test: a process holding the port is reported, and outlasted ----
ctl b set >/dev/null # no address: b closes its /test listener
# (once the address is seen gone: the squatter's bind would fail before that)
retry 5 bash -c "[ -z \"\$(ip netns exec $NS_B ss -Hltn sport = :8000)\" ]"
mkdir -p "$TMP/fake" && echo '{"wg_ip": "fake"}' >"$TMP/fake/test"
# busybox's bind can still meet the port in use a moment (seen on CI as
# "httpd: bind: Address already in use"): start it again until it stays.
for try in $(seq 30); do
	ip netns exec "$NS_B" setpriv --reuid=65534 --regid=65534 --clear-groups \
		busybox httpd -f -p 8000 -h "$TMP/fake" 2>>"$TMP/squat.err" &
	SQUAT=$!
	sleep 0.5
	kill -0 $SQUAT 2>/dev/null && break
	wait $SQUAT 2>/dev/null
	sleep 0.5
done
e2e_log "the squatter holds :8000 after $try attempt(s) ($(sort -u "$TMP/squat.err" 2>/dev/null | tr '\n' ' '))"
track_pid $SQUAT busybox
retry 3 ip netns exec "$NS_B" ss -Hltn sport = :8000
ctl b set --address 10.88.0.11/24 --peer "$KEY_A,endpoint=198.18.0.1:51820,allowed=10.88.0.10/32,keepalive=25" >/dev/null
check "b reports loudly that another process holds the /test port" \
	retry 3 grep -q "error: cannot serve /test on 10.88.0.11:8000.*another process holds the port" "$TMP/b/agent.log"
kill_tracked $SQUAT busybox
wait_gone $SQUAT
check "b serves /test itself once the port is free" retry 6 bash -c \
	"ip netns exec $NS_A curl -sf --max-time 1 http://10.88.0.11:8000/test | grep -q '\"wg_ip\": \"10.88.0.11/32\"'"

# ---- garbage and oversized frames ----
out=$(ctl a garbage 100)
check "garbage gets an INVALID answer ($out)" bash -c "echo '$out' | grep -q 'status INVALID'"
out=$(ctl a garbage 300000)
check "an oversized frame gets an INVALID answer ($out)" bash -c "echo '$out' | grep -q 'exceeds'"
out=$(ctl a raw 0801)
check "an unknown request type is answered UNSUPPORTED ($out)" bash -c "echo '$out' | grep -q 'UNSUPPORTED'"
out=$(ctl a set --address 10.88.1.10/24 2>&1)
check "an address outside the overlay is refused with the reason" bash -c "echo '$out' | grep -q 'outside the overlay'"
check "the agent keeps serving after bad requests" ctl a hello
check "the agent process is still the same" test -d /proc/$PID_a

# ---- paths the agent refuses (each attempt must end by itself, before any interface) ----
refused() { # name log-pattern agent-args...: the agent exits non-zero, saying why
	local name=$1 pat=$2 pid; shift 2
	ip netns exec "$NS_S" "$WGAGENT" -U $E2E_AGENT_UID -i p2e$ID-x --no-stun "$@" >"$TMP/$name.log" 2>&1 &
	pid=$!
	track_pid $pid wgagent
	if ! wait_gone $pid; then
		kill_tracked $pid wgagent
		[ -f "$TMP/$name/wireguard-go.p2e$ID-x.pid" ] && kill "$(cat "$TMP/$name/wireguard-go.p2e$ID-x.pid")"
		return 1
	fi
	wait $pid
	[ $? -ne 0 ] && grep -q -- "$pat" "$TMP/$name.log"
}
agent_dir "$TMP/real"
ln -s "$TMP/real" "$TMP/link"
check "a symlinked run dir is refused" refused link "refusing directory $TMP/link: not a directory" \
	-s "$TMP/link/agent.sock" -d "$TMP/link/state"
check "and nothing was made through the symlink" test -z "$(ls -A "$TMP/real")"
mkdir -p "$TMP/other" && chown 65534:65534 "$TMP/other"
check "a run dir owned by another user (who could swap the socket path) is refused" \
	refused other "refusing directory $TMP/other: owned by another user" -s "$TMP/other/agent.sock" -d "$TMP/other/state"
agent_dir "$TMP/open" && chmod 1777 "$TMP/open"
check "a run dir writable by others is refused" \
	refused open "refusing directory $TMP/open: writable by group or other" -s "$TMP/open/agent.sock" -d "$TMP/open/state"
agent_dir "$TMP/plant" && agent_dir "$TMP/plant/state" && chmod 700 "$TMP/plant/state"
(umask 077; wg genkey >"$TMP/plant/state/private.key")
chown 65534:65534 "$TMP/plant/state/private.key"
check "a 0600 key planted by another user is refused" \
	refused plant "must be owned by the agent's user" -s "$TMP/plant/agent.sock" -d "$TMP/plant/state"

# ---- a fresh run dir: made for the agent's user before wireguard-go starts ----
mkdir -m 755 "$TMP/fresh" # as /run is
ip netns exec "$NS_S" "$WGAGENT" -U $E2E_AGENT_UID -i p2e$ID-f --no-stun -s "$TMP/fresh/run/agent.sock" \
	-d "$TMP/fresh/state" >"$TMP/fresh.log" 2>&1 &
PID_f=$!
track_pid $PID_f wgagent
retry 10 test -S "$TMP/fresh/run/agent.sock"
[ -f "$TMP/fresh/run/wireguard-go.p2e$ID-f.pid" ] && track_pid "$(cat "$TMP/fresh/run/wireguard-go.p2e$ID-f.pid")" wireguard-go
check "a missing run dir is made for the agent's user, mode 755" \
	test "$(stat -c '%u %a' "$TMP/fresh/run")" = "$E2E_AGENT_UID 755"
check "wireguard-go's pid file is there on a fresh run dir" test -s "$TMP/fresh/run/wireguard-go.p2e$ID-f.pid"
check "and so is its log" test -f "$TMP/fresh/run/wireguard-go.p2e$ID-f.log"
check "the state dir is the agent user's, mode 700" test "$(stat -c '%u %a' "$TMP/fresh/state")" = "$E2E_AGENT_UID 700"
kill_tracked $PID_f wgagent

# ---- logs explain ----
grep -h '' "$TMP/a/agent.log" | sed 's/^/  a| /' | head -40
e2e_summary
