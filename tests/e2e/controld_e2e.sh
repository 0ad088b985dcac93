#!/bin/bash
# SPDX-License-Identifier: MIT
# Integration: two nodes, each a CAP_NET_ADMIN wgagent and an unprivileged
# controld, in namespaces this test makes. An nginx "gateway" with a test CA
# serves the peer list over HTTPS and forwards each node's /node.json; coturn
# answers STUN, and a lying STUN server (p2pwg-fakestun) answers a fixed lie.
# Usage: controld_e2e.sh WGAGENT CONTROLD AGENTCTL FAKESTUN
set -u
WGAGENT=$(readlink -f "$1") CONTROLD=$(readlink -f "$2") CTL=$(readlink -f "$3") FAKESTUN=$(readlink -f "$4")
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done

ID=$$
NS_NET=p2c$ID-net NS_A=p2c$ID-a NS_B=p2c$ID-b NS_S=p2c$ID-stun NS_G=p2c$ID-gw
TMP=$(mktemp -d /tmp/p2pwg-ctl.XXXXXX)
chmod 755 "$TMP"
ETC_A=/etc/netns/$NS_A ETC_MADE=0 # node a's resolv.conf and hosts, for the DNS cases
[ -d /etc/netns ] || ETC_MADE=1
trap 'e2e_cleanup; rm -rf "$TMP" "$ETC_A"; [ $ETC_MADE = 1 ] && rmdir /etc/netns 2>/dev/null' EXIT
trap 'exit 130' INT TERM
NOBODY=65534

netns_add "$NS_NET"; netns_add "$NS_A"; netns_add "$NS_B"; netns_add "$NS_S"; netns_add "$NS_G"
ip -n "$NS_NET" link add br0 type bridge
ip -n "$NS_NET" link set br0 up
n=0
for pair in "$NS_A 198.18.0.1" "$NS_B 198.18.0.2" "$NS_S 198.18.0.3" "$NS_G 198.18.0.254"; do
	set -- $pair
	n=$((n + 1))
	ip link add c$ID-$n type veth peer name eth0 netns "$1"
	ip link set c$ID-$n netns "$NS_NET"
	ip -n "$NS_NET" link set c$ID-$n master br0 up
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" link set eth0 up
done

# ---- STUN: two coturn servers, so the NAT kind can be told ----
for port in 3478 3479; do
	ip netns exec "$NS_S" turnserver -n --stun-only --listening-ip 198.18.0.3 --listening-port $port \
		--no-cli --no-tls --no-dtls --log-file stdout --simple-log >"$TMP/turn$port.log" 2>&1 &
	track_pid $! turnserver
done

# ---- the gateway: a test CA, nginx with TLS ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj "/CN=p2pwg test CA" -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=198.18.0.254" \
	-keyout "$TMP/gw.key" -out "$TMP/gw.csr" 2>/dev/null
printf 'subjectAltName=IP:198.18.0.254\n' >"$TMP/san.ext"
openssl x509 -req -in "$TMP/gw.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
	-days 2 -extfile "$TMP/san.ext" -out "$TMP/gw.pem" 2>/dev/null
mkdir -p "$TMP/www/bad" "$TMP/nginx"
LIST_OK='["https://198.18.0.254/a/node.json", "https://198.18.0.254/b/node.json"]'
echo "$LIST_OK" >"$TMP/www/list.json"
echo '{"wg_pubkey": "short", "overlay_ip": ""}' >"$TMP/www/bad/node.json"
chmod -R a+rX "$TMP/www"
{
	nginx_head "$TMP/nginx" 256
	cat <<CONF
	server {
		listen 198.18.0.254:443 ssl http2;
		ssl_certificate $TMP/gw.pem;
		ssl_certificate_key $TMP/gw.key;
		root $TMP/www;
		location = /list.json { if (-f $TMP/www/fail500) { return 500; } }
		location /bad/ { }
		location /other/ { }
		location /a/ {
			if (-f $TMP/www/swap_a) { rewrite ^ /other/node.json last; }
			proxy_pass http://198.18.0.1:8080/;
		}
		location /bstatic/ { }
		location /b/ {
			if (-f $TMP/www/swap_b) { rewrite ^ /bstatic/node.json last; }
			proxy_pass http://198.18.0.2:8080/;
		}
	}
}
CONF
} >"$TMP/nginx.conf"
ip netns exec "$NS_G" nginx -c "$TMP/nginx.conf" -g 'daemon off;' &
track_pid $! nginx
retry 5 ip netns exec "$NS_G" curl -sf --cacert "$TMP/ca.pem" https://198.18.0.254/list.json

start_agent() { # name ns
	agent_dir "$TMP/$1"
	ip netns exec "$2" "$WGAGENT" -U $E2E_AGENT_UID -i p2c$ID-w$1 -s "$TMP/$1/agent.sock" -d "$TMP/$1/state" \
		--allow-uid $NOBODY --socket-group $NOBODY >>"$TMP/$1/agent.log" 2>&1 &
	local pid=$!
	track_pid $pid wgagent
	eval "AGENT_$1=$pid"
	retry 10 test -S "$TMP/$1/agent.sock" || { fail "agent $1 did not start"; cat "$TMP/$1/agent.log"; exit 1; }
	[ -f "$TMP/$1/wireguard-go.p2c$ID-w$1.pid" ] && track_pid "$(cat "$TMP/$1/wireguard-go.p2c$ID-w$1.pid")" wireguard-go
	return 0
}
# http_proxy points nowhere: /test must not go through it. The soft descriptor
# limit is the usual 1024: controld must raise it to its budget itself.
start_controld() { # name ns [VAR=value...]
	local name=$1 ns=$2; shift 2
	ip netns exec "$ns" env GIST_URL=https://198.18.0.254/list.json P2PWG_CA_BUNDLE="$TMP/ca.pem" \
		P2PWG_AGENT_SOCKET="$TMP/$name/agent.sock" P2PWG_STUN_SERVERS=198.18.0.3:3478,198.18.0.3:3479 \
		P2PWG_POLL_INTERVAL=2 P2PWG_TEST_INTERVAL=2 P2PWG_HTTP_TIMEOUT=2 http_proxy=http://127.0.0.1:9 "$@" \
		prlimit --nofile=1024:8192 \
		setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$CONTROLD" >>"$TMP/$name/controld.log" 2>&1 &
	local pid=$!
	track_pid $pid controld
	eval "CTLD_$name=$pid"
}
nodejson() { ip netns exec "$NS_G" curl -s --cacert "$TMP/ca.pem" "https://198.18.0.254/$1/node.json"; }
jfield() { sed -n "s/.*\"$1\": \\([^,}]*\\).*/\\1/p"; }

start_agent a "$NS_A"; start_agent b "$NS_B"
start_controld a "$NS_A"; start_controld b "$NS_B"
KEY_A=$("$CTL" -s "$TMP/a/agent.sock" hello | awk '/^version/ {print $4}')
KEY_B=$("$CTL" -s "$TMP/b/agent.sock" hello | awk '/^version/ {print $4}')

# ---- they find themselves and each other ----
check "node a finds itself at position 0 (10.88.0.10)" retry 20 bash -c "ip netns exec $NS_G curl -s --cacert $TMP/ca.pem https://198.18.0.254/a/node.json | grep -q '\"overlay_ip\": \"10.88.0.10/32\"'"
check "node b finds itself at position 1 (10.88.0.11)" retry 10 bash -c "ip netns exec $NS_G curl -s --cacert $TMP/ca.pem https://198.18.0.254/b/node.json | grep -q '\"overlay_ip\": \"10.88.0.11/32\"'"
check "node.json carries the STUN-discovered public endpoint" retry 10 bash -c "ip netns exec $NS_G curl -s --cacert $TMP/ca.pem https://198.18.0.254/a/node.json | grep -q '\"public_ip\": \"198.18.0.1\", \"public_port\": 51820'"
DOC=$(nodejson a); e2e_log "a/node.json: $DOC"
for k in wg_pubkey overlay_ip wg_listen_port public_ip public_port nat updated_at self_url self_index version; do
	check "node.json has the prototype field $k" bash -c "echo '$DOC' | grep -q '\"$k\":'"
done
check "node.json names this node's key" bash -c "echo '$DOC' | grep -qF '\"wg_pubkey\": \"$KEY_A\"'"
check "node.json self_url is this node's list entry" bash -c "echo '$DOC' | grep -q '\"self_url\": \"https://198.18.0.254/a/node.json\", \"self_index\": 0'"
check "two STUN servers agree: nat open, mapping endpoint-independent" bash -c "echo '$DOC' | grep -q '\"nat\": \"open\"' && echo '$DOC' | grep -q 'endpoint-independent'"
check "wgagent on a has b as its peer, endpoint from b's node.json" retry 10 bash -c "ip netns exec $NS_A wg show p2c$ID-wa dump | grep -qF '$KEY_B	(none)	198.18.0.2:51820	10.88.0.11/32'"
check "ping a -> b over the overlay" retry 15 ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
check "controld tests /test over the overlay (ignoring http_proxy) and logs it" retry 10 grep -q '\[http\] connected to 10.88.0.11: {"wg_ip": "10.88.0.11/32"' "$TMP/a/controld.log"
check "controld logs the peer in the prototype's words" grep -q "\[wg\] peer ${KEY_B:0:8} at position 1 endpoint 198.18.0.2:51820" "$TMP/a/controld.log"
check "controld logs its STUN result" grep -q "\[stun\] open 198.18.0.1:51820" "$TMP/a/controld.log"
check "controld logs traffic" retry 10 grep -q "\[wg\] traffic rx=[0-9]*B tx=[0-9]*B" "$TMP/a/controld.log"

# ---- /status, /metrics, /healthz ----
ST=$(ip netns exec "$NS_A" curl -s http://127.0.0.1:8081/status)
check "/status shows b as direct with a passing /test" retry 10 bash -c "ip netns exec $NS_A curl -s http://127.0.0.1:8081/status | tr -d ' \n' | grep -q '\"position\":1,\"url\":\"https://198.18.0.254/b/node.json\".*\"test\":{\"ok\":true.*\"state\":\"direct\"'"
# test.since: when the present run of passes (or failures) began. Later
# results of the same kind leave it; a change of result moves it.
b_test() { ip netns exec "$NS_A" curl -s http://127.0.0.1:8081/status | jq -r '.peers[1].test | "\(.ok) \(.at) \(.since)"'; }
export -f b_test; export NS_A
read -r OK1 AT1 SINCE1 <<<"$(b_test)"
e2e_log "b's /test: ok $OK1 at $AT1 since $SINCE1"
check "/status says since when b's /test has passed ($SINCE1), not after its last probe ($AT1)" \
	bash -c '[[ "$1" == 20*+00:00 && ! "${1:0:19}" > "${2:0:19}" ]]' _ "$SINCE1" "$AT1"
check "a later pass leaves test.since where it was" retry 10 bash -c 'read -r ok at since <<<"$(b_test)"; [ "$ok" = true ] && [ "$at" != "$1" ] && [ "$since" = "$2" ]' _ "$AT1" "$SINCE1"
ip netns exec "$NS_A" nft add table ip p2since
ip netns exec "$NS_A" nft add chain ip p2since out '{ type filter hook output priority 0; }'
ip netns exec "$NS_A" nft add rule ip p2since out ip daddr 10.88.0.11 tcp dport 8000 drop
check "b's /test failing moves test.since to the failure" retry 15 bash -c 'read -r ok at since <<<"$(b_test)"; [ "$ok" = false ] && [[ "$since" > "$1" ]]' _ "$SINCE1"
read -r _ _ SINCE2 <<<"$(b_test)"
ip netns exec "$NS_A" nft delete table ip p2since
check "and passing again moves it once more" retry 15 bash -c 'read -r ok at since <<<"$(b_test)"; [ "$ok" = true ] && [[ "$since" > "$1" ]]' _ "$SINCE2"
check "/status shows this node's overlay address and agent" bash -c 'tr -d " \n" <<<"$1" | grep -q "\"agent\":\"connected\".*\"overlay_ip\":\"10.88.0.10/32\""' _ "$ST"
M=$(ip netns exec "$NS_A" curl -s http://127.0.0.1:8081/metrics)
check "/metrics: self found, one direct peer" bash -c 'grep -q "^p2pwg_self_found 1" <<<"$1" && grep -q "^p2pwg_peers_direct 1" <<<"$1"' _ "$M"
check "/metrics: the list is polled with ETag (304s counted)" retry 10 bash -c "ip netns exec $NS_A curl -s http://127.0.0.1:8081/metrics | grep -q 'result=\"not_modified\"} [1-9]'"
check "/healthz answers ok" test "$(ip netns exec "$NS_A" curl -s http://127.0.0.1:8080/healthz)" = ok
check "other paths are 404" test "$(ip netns exec "$NS_A" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/other)" = 404
code() { ip netns exec "$1" curl -s -o /dev/null -w '%{http_code}' "$2"; }
PUB_CODES="$(code "$NS_A" http://127.0.0.1:8080/status) $(code "$NS_A" http://127.0.0.1:8080/metrics)"
check "/status and /metrics are not served on the public port ($PUB_CODES)" test "$PUB_CODES" = "404 404"
check "nor through the gateway" test "$(ip netns exec "$NS_G" curl -s -o /dev/null -w '%{http_code}' --cacert "$TMP/ca.pem" https://198.18.0.254/a/status)" = 404
check "the status listener is loopback only: refused from another host" bash -c "! ip netns exec $NS_G curl -s -m 2 http://198.18.0.1:8081/status"
check "/node.json is served on the status listener too" bash -c "ip netns exec $NS_A curl -s http://127.0.0.1:8081/node.json | grep -q wg_pubkey"
NOFILE=$(awk '/^Max open files/ {print $4}' /proc/$CTLD_a/limits)
BUDGET=$(sed -n 's/.*descriptors: budget \([0-9]*\).*/\1/p' "$TMP/a/controld.log" | head -1)
e2e_log "descriptor budget ${BUDGET:-?}, soft limit $NOFILE (started with 1024)"
check "controld raises its descriptor limit from 1024 to its budget ($BUDGET, limit $NOFILE)" bash -c "[ -n '$BUDGET' ] && [ '$NOFILE' -ge '$BUDGET' ] && [ '$BUDGET' -gt 1024 ]"
check "controld runs unprivileged (uid $NOBODY)" test "$(awk '/^Uid/ {print $2}' /proc/$CTLD_a/status)" = $NOBODY
check "controld holds no capabilities" test "$(awk '/^CapEff/ {print $2}' /proc/$CTLD_a/status)" = 0000000000000000
check "no private key in controld's log or its documents" bash -c "! grep -qF '$(cat "$TMP/a/state/private.key")' '$TMP/a/controld.log' && ! echo '$DOC$ST' | grep -qF '$(cat "$TMP/a/state/private.key")'"

# ---- an idle node sleeps: CPU time over 10 s of normal cycles (2 s intervals) ----
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
T0=$(cpu "$CTLD_a"); sleep 10; T1=$(cpu "$CTLD_a")
TICKS=$(getconf CLK_TCK)
e2e_log "controld CPU over 10 s: $(( (T1 - T0) * 1000 / TICKS )) ms"
check "controld does not busy-loop (CPU over 10 s: $(( (T1 - T0) * 1000 / TICKS )) ms, limit 1000 ms)" test $(( (T1 - T0) * 1000 / TICKS )) -lt 1000

# ---- a bad and a dead peer do not disturb the others ----
HS=$(ip netns exec "$NS_A" wg show p2c$ID-wa latest-handshakes | awk -v k="$KEY_B" '$1 == k {print $2}')
echo '["https://198.18.0.254/a/node.json", "https://198.18.0.254/b/node.json", "https://198.18.0.254/bad/node.json", "https://198.18.0.77/node.json"]' >"$TMP/www/list.json"
check "a malformed node.json is skipped with the URL and the reason" retry 10 grep -q "skipping https://198.18.0.254/bad/node.json: wg_pubkey" "$TMP/a/controld.log"
check "a dead peer is skipped with the reason" retry 10 grep -q "skipping https://198.18.0.77/node.json: " "$TMP/a/controld.log"
check "the good peer stays configured and its session untouched" bash -c "ip netns exec $NS_A wg show p2c$ID-wa latest-handshakes | grep -qF '$KEY_B	$HS'"
C0=$(grep -c 'fetch https://198.18.0.254/b/node.json' "$TMP/a/controld.log")
D0=$(grep -c 'skipping https://198.18.0.77/node.json' "$TMP/a/controld.log")
# The good peer is quiet (handshake fresh, /test passing): read one poll in four.
check "cycles go on while the dead one times out (it is tried again each cycle)" retry 15 bash -c "[ \$(grep -c 'skipping https://198.18.0.77/node.json' $TMP/a/controld.log) -ge $((D0 + 3)) ]"
check "and the good peer is read again meanwhile" retry 15 bash -c "[ \$(grep -c 'fetch https://198.18.0.254/b/node.json' $TMP/a/controld.log) -ge $((C0 + 1)) ]"
echo "$LIST_OK" >"$TMP/www/list.json"

# ---- hostile entries are left out alone; the rest is applied ----
mkdir -p "$TMP/www/zero" "$TMP/www/lo" "$TMP/www/ovl"
echo '{"wg_pubkey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "overlay_ip": "", "public_ip": "198.18.0.9", "public_port": 51820}' >"$TMP/www/zero/node.json"
echo "{\"wg_pubkey\": \"$(wg genkey | wg pubkey)\", \"overlay_ip\": \"\", \"public_ip\": \"127.0.0.1\", \"public_port\": 51820}" >"$TMP/www/lo/node.json"
echo "{\"wg_pubkey\": \"$(wg genkey | wg pubkey)\", \"overlay_ip\": \"\", \"public_ip\": \"10.88.0.99\", \"public_port\": 51820}" >"$TMP/www/ovl/node.json"
chmod -R a+rX "$TMP/www"
G=https://198.18.0.254
echo "[\"$G/a/node.json\", \"$G/zero/node.json\", \"$G/lo/node.json\", \"$G/ovl/node.json\", \"$G/b/node.json\", 12345, \"$G/a/node.json\", \"$G/b/node.json2\"]" >"$TMP/www/list.json"
check "the rest is applied: a configures b at its new position 4 (10.88.0.14)" retry 15 bash -c "ip netns exec $NS_A wg show p2c$ID-wa allowed-ips | grep -qF '$KEY_B	10.88.0.14/32'"
check "b finds itself at position 4 past the hostile entries" retry 10 bash -c "ip netns exec $NS_G curl -s --cacert $TMP/ca.pem $G/b/node.json | grep -q '\"overlay_ip\": \"10.88.0.14/32\"'"
check "an all-zero key is left out alone, saying so" grep -q "entry 1 ($G/zero/node.json) wg_pubkey is all zero" "$TMP/a/controld.log"
check "a public_ip on loopback is left out alone, saying so" grep -q "entry 2 ($G/lo/node.json) public_ip 127.0.0.1 is not a reachable" "$TMP/a/controld.log"
check "a public_ip inside the overlay is left out alone, saying so" grep -q "entry 3 ($G/ovl/node.json) public_ip 10.88.0.99 is not a reachable" "$TMP/a/controld.log"
check "a non-string entry is skipped alone, keeping positions" grep -q "list entry 5 skipped: not a string" "$TMP/a/controld.log"
check "a repeated URL is skipped alone" grep -q "list entry 6 skipped: same URL as entry 0" "$TMP/a/controld.log"
check "/status says why each left-out entry configures nothing" bash -c "ip netns exec $NS_A curl -s http://127.0.0.1:8081/status > $TMP/st.json; grep -q '\"refused\": \"wg_pubkey is all zero\"' $TMP/st.json && grep -q '\"refused\": \"not a string\"' $TMP/st.json"
check "the tunnel to b at its new address carries traffic" retry 10 ip netns exec "$NS_A" ping -c1 -W1 10.88.0.14
# Two more cycles (a refused entry is never quiet: it is read every poll).
C0=$(grep -c "fetch $G/zero/node.json" "$TMP/a/controld.log")
retry 10 bash -c "[ \$(grep -c 'fetch $G/zero/node.json' $TMP/a/controld.log) -ge $((C0 + 2)) ]"
check "a refused entry is said once, not every cycle ($(grep -c 'wg_pubkey is all zero' "$TMP/a/controld.log"))" test "$(grep -c 'wg_pubkey is all zero' "$TMP/a/controld.log")" -eq 1
check "a key listed twice is said once, not every cycle ($(grep -c 'repeat a key already listed' "$TMP/a/controld.log"))" test "$(grep -c 'repeat a key already listed' "$TMP/a/controld.log")" -eq 1
check "wgagent never refused a peer set" bash -c "! grep -q 'did not apply the peer set' $TMP/a/controld.log $TMP/b/controld.log"
echo "$LIST_OK" >"$TMP/www/list.json"
check "with the list restored, b is back at 10.88.0.11" retry 15 bash -c "ip netns exec $NS_A wg show p2c$ID-wa allowed-ips | grep -qF '$KEY_B	10.88.0.11/32'"

# ---- one poll where its own URL answers another key does not wipe the tunnels ----
mkdir -p "$TMP/www/other"
echo "{\"wg_pubkey\": \"$(wg genkey | wg pubkey)\", \"overlay_ip\": \"\"}" >"$TMP/www/other/node.json"
chmod -R a+rX "$TMP/www"
touch "$TMP/www/swap_a"
lost=0
for i in $(seq 1 12); do
	sleep 0.5
	[ "$i" -eq 6 ] && rm -f "$TMP/www/swap_a"
	ip netns exec "$NS_A" wg show p2c$ID-wa peers | grep -qF "$KEY_B" || lost=1
	ip -n "$NS_A" addr show p2c$ID-wa | grep -qF 10.88.0.10/ || lost=1
done
rm -f "$TMP/www/swap_a"
check "its own URL answering another key is counted, not obeyed at once" grep -q "is not in the list as read in full (1 of 3 polls in a row); keeping the current address and peers" "$TMP/a/controld.log"
check "a kept its address and b as a peer throughout" test "$lost" -eq 0
check "and never left the mesh" bash -c "! grep -q 'no address and no peers until it is' $TMP/a/controld.log"
check "b has a as its peer again once a's URL answers a's key" retry 15 bash -c "ip netns exec $NS_B wg show p2c$ID-wb peers | grep -qF '$KEY_A'"
check "the tunnel a -> b carries traffic again" retry 10 ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11

# ---- roaming: an endpoint WireGuard learnt from b's packets survives a re-sent peer set ----
ip -n "$NS_B" addr add 198.18.0.12/24 dev eth0
printf 'table ip p2roam { chain post { type nat hook postrouting priority 100; udp sport 51820 snat to 198.18.0.12; }; }\n' | ip netns exec "$NS_B" nft -f -
ip netns exec "$NS_B" conntrack -D -p udp --orig-port-src 51820 >/dev/null 2>&1
check "a learns b's new source address from its packets (roaming)" retry 10 bash -c "ip netns exec $NS_B ping -c1 -W1 10.88.0.10 >/dev/null; ip netns exec $NS_A wg show p2c$ID-wa endpoints | grep -qF '$KEY_B	198.18.0.12:51820'"
# b falls quiet (its /test probes would teach a again within seconds), the
# gateway serves b's last node.json, and a can no longer reach the endpoint b
# published: a re-sent stale endpoint would cut a off from b.
mkdir -p "$TMP/www/bstatic"
nodejson b >"$TMP/www/bstatic/node.json"
chmod -R a+rX "$TMP/www"
touch "$TMP/www/swap_b"
kill -STOP "$CTLD_b"
printf 'table ip p2block { chain out { type filter hook output priority 0; ip daddr 198.18.0.2 udp dport 51820 drop; }; }\n' | ip netns exec "$NS_A" nft -f -
C0=$(grep -c 'this node is position 0' "$TMP/a/controld.log")
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
start_controld a "$NS_A"
check "a restarted controld re-sends its peer set" retry 20 bash -c "[ \$(grep -c 'this node is position 0' $TMP/a/controld.log) -gt $C0 ]"
check "and leaves b's roamed endpoint in place" retry 3 bash -c "ip netns exec $NS_A wg show p2c$ID-wa endpoints | grep -qF '$KEY_B	198.18.0.12:51820'"
check "so a still reaches b" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
ip netns exec "$NS_A" nft delete table ip p2block
ip netns exec "$NS_B" nft delete table ip p2roam
ip netns exec "$NS_B" conntrack -D -p udp --orig-port-src 51820 >/dev/null 2>&1
ip -n "$NS_B" addr del 198.18.0.12/24 dev eth0
kill -CONT "$CTLD_b"
rm -f "$TMP/www/swap_b"
check "b's packets from its own address again move the endpoint back" retry 10 bash -c "ip netns exec $NS_B ping -c1 -W1 10.88.0.10 >/dev/null; ip netns exec $NS_A wg show p2c$ID-wa endpoints | grep -qF '$KEY_B	198.18.0.2:51820'"

# ---- fail static: a broken list keeps the last good one ----
echo 'this is not json' >"$TMP/www/list.json"
check "a garbage list is refused and the last good list kept" retry 10 grep -q "peer list https://198.18.0.254/list.json: not JSON.*keeping the last good list" "$TMP/a/controld.log"
touch "$TMP/www/fail500"
check "a list answering 500 keeps the last good list" retry 10 grep -q "peer list https://198.18.0.254/list.json: HTTP 500; keeping the last good list" "$TMP/a/controld.log"
rm -f "$TMP/www/fail500"; : >"$TMP/www/list.json"
check "an empty list body is refused too" retry 10 grep -q "peer list https://198.18.0.254/list.json: not JSON" "$TMP/a/controld.log"
check "the tunnel stayed up meanwhile" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
check "b is still a's peer" bash -c "ip netns exec $NS_A wg show p2c$ID-wa peers | grep -qF '$KEY_B'"
echo "$LIST_OK" >"$TMP/www/list.json"
check "the list is read again when it is fixed" retry 10 grep -q "peer list readable again" "$TMP/a/controld.log"

# ---- the agent restarts: controld reconnects and re-sends the whole state ----
HS=$(ip netns exec "$NS_A" wg show p2c$ID-wa latest-handshakes | awk -v k="$KEY_B" '$1 == k {print $2}')
kill -9 "$AGENT_a"; wait_gone "$AGENT_a"
check "controld notices the agent is gone" retry 5 grep -q "lost wgagent" "$TMP/a/controld.log"
check "tunnel keeps working without the agent" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
start_agent a "$NS_A"
check "controld reconnects to the restarted agent" retry 20 bash -c "[ \$(grep -c 'connected to wgagent' $TMP/a/controld.log) -ge 2 ]"
check "the whole state is re-sent and found already in place" retry 10 bash -c "[ \$(grep -c 'interface already so' $TMP/a/controld.log) -ge 1 ]"
check "no handshake reset across the agent restart" bash -c "ip netns exec $NS_A wg show p2c$ID-wa latest-handshakes | grep -qF '$KEY_B	$HS'"

# ---- controld restarts ----
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
check "tunnel keeps working without controld" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
start_controld a "$NS_A"
check "a restarted controld finds itself again" retry 20 bash -c "[ \$(grep -c 'this node is position 0' $TMP/a/controld.log) -ge 2 ]"
check "no handshake reset across the controld restart" bash -c "ip netns exec $NS_A wg show p2c$ID-wa latest-handshakes | grep -qF '$KEY_B	$HS'"

# ---- both restart, controld first: nothing is torn down meanwhile ----
HS=$(ip netns exec "$NS_A" wg show p2c$ID-wa latest-handshakes | awk -v k="$KEY_B" '$1 == k {print $2}')
kill -9 "$CTLD_a" "$AGENT_a"; wait_gone "$CTLD_a"; wait_gone "$AGENT_a"
: >"$TMP/a/agent.log"
start_controld a "$NS_A"
sleep 3
start_agent a "$NS_A"
check "restarted in the wrong order, the node finds itself again" retry 20 bash -c "[ \$(grep -c 'this node is position 0' $TMP/a/controld.log) -ge 3 ]"
check "and the agent removed no peer and no address meanwhile" bash -c "! grep -q 'remove peer\|address removed' $TMP/a/agent.log"
check "and the session with b was not reset" bash -c "ip netns exec $NS_A wg show p2c$ID-wa latest-handshakes | grep -qF '$KEY_B	$HS'"

# ---- controld restarts while a peer's node.json is unreadable: the peer stays ----
kill -STOP "$CTLD_b"
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
start_controld a "$NS_A"
check "with b's node.json unreadable, a restarted controld reports b skipped" retry 20 bash -c "[ \$(grep -c 'skipping https://198.18.0.254/b/node.json' $TMP/a/controld.log) -ge 1 ]"
sleep 2
check "but keeps b as a peer (the agent removed nothing)" bash -c "! grep -q 'remove peer\|address removed' $TMP/a/agent.log"
check "and the tunnel to b still carries traffic" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11
kill -CONT "$CTLD_b"

# ---- a node added beside a broken entry is read again soon when not up yet ----
# A broken entry (a malformed node.json) is never ready: reading it again backs
# off to the poll interval. A node added to the list later, not serving yet when
# first read, still gets the quick re-reads (0.25, 0.5, 1 s...), not a poll later.
KEY_L=$(wg genkey | wg pubkey)
mkdir -p "$TMP/www/late"
chmod a+rx "$TMP/www/late"
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
echo "[\"$G/a/node.json\", \"$G/b/node.json\", \"$G/bad/node.json\"]" >"$TMP/www/list.json"
L0=$(wc -l <"$TMP/a/controld.log")
since_restart() { tail -n +$((L0 + 1)) "$TMP/a/controld.log"; }
logged() { since_restart | grep -qF "$1"; }
start_controld a "$NS_A" P2PWG_POLL_INTERVAL=8
retry 20 logged 'this node is position 0'
sleep 10 # the broken entry's re-reads back off: 0.25, 0.5, 1, 2, 4 s, then the polls'
echo "[\"$G/a/node.json\", \"$G/b/node.json\", \"$G/bad/node.json\", \"$G/late/node.json\"]" >"$TMP/www/list.json"
retry 12 logged "skipping $G/late/node.json: HTTP 404"
# It comes up just after its first read.
echo "{\"wg_pubkey\": \"$KEY_L\", \"overlay_ip\": \"\", \"public_ip\": \"198.18.0.9\", \"public_port\": 51820}" >"$TMP/www/late/n.tmp"
chmod a+r "$TMP/www/late/n.tmp"; mv "$TMP/www/late/n.tmp" "$TMP/www/late/node.json"
T_UP=$EPOCHREALTIME
retry 12 bash -c "ip netns exec $NS_A wg show p2c$ID-wa allowed-ips | grep -qF '$KEY_L	10.88.0.13/32'"
WAITED=$(awk -v a="$T_UP" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
e2e_log "the added node was configured ${WAITED} s after it came up; reads of it: $(since_restart | grep -cF "fetch $G/late/node.json")"
check "a node added beside a broken entry is configured within 3 s of coming up (${WAITED} s; the poll is 8 s)" awk -v w="$WAITED" 'BEGIN { exit !(w < 3) }'
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
echo "$LIST_OK" >"$TMP/www/list.json"
start_controld a "$NS_A"
check "back to the two nodes: the added one is removed" retry 20 bash -c "! ip netns exec $NS_A wg show p2c$ID-wa allowed-ips | grep -qF '$KEY_L'"

# ---- a peer's /test redirecting to a page on a's loopback: nothing of it is published ----
# Node c is a fake list entry at position 2 (10.88.0.12); that address sits on a's
# own loopback, where an nginx answers /test with a redirect to a secret page.
SECRET=p2pwg-secret-$ID
mkdir -p "$TMP/www/c" "$TMP/fake"
echo "{\"wg_pubkey\": \"$(wg genkey | wg pubkey)\", \"overlay_ip\": \"10.88.0.12/32\", \"public_ip\": \"198.18.0.9\", \"public_port\": 51820}" >"$TMP/www/c/node.json"
chmod -R a+rX "$TMP/www"
ip -n "$NS_A" addr add 10.88.0.12/32 dev lo
{
	nginx_head "$TMP/fake" 64
	cat <<CONF
	server { listen 10.88.0.12:8000; location / { return 302 http://127.0.0.1:8099/secret; } }
	server { listen 127.0.0.1:8099; access_log $TMP/fake/secret.log; location / { return 200 "$SECRET\n"; } }
}
CONF
} >"$TMP/fake/nginx.conf"
ip netns exec "$NS_A" nginx -c "$TMP/fake/nginx.conf" -g 'daemon off;' &
track_pid $! nginx
retry 5 ip netns exec "$NS_A" curl -s -o /dev/null http://10.88.0.12:8000/
echo '["https://198.18.0.254/a/node.json", "https://198.18.0.254/b/node.json", "https://198.18.0.254/c/node.json"]' >"$TMP/www/list.json"
c_tested() { ip netns exec "$NS_A" curl -s http://127.0.0.1:8081/status | tr -d ' \n' | grep -q '"position":2,[^{]*"test":{"ok":false'; }
check "a's /status shows c's /test as failed (a redirect is not an answer)" retry 15 c_tested
check "c's /test was asked once at 10.88.0.12:8000" grep -q '"GET /test HTTP' "$TMP/fake/access.log"
check "the page c redirects to was never fetched" bash -c "! grep -q 'GET /secret' '$TMP/fake/secret.log'"
check "the secret is not in a's log" bash -c "! grep -q '$SECRET' '$TMP/a/controld.log'"
check "nor in a's /status" bash -c "! ip netns exec $NS_A curl -s http://127.0.0.1:8081/status | grep -q '$SECRET'"
echo "$LIST_OK" >"$TMP/www/list.json"

# ---- port 8080 under abuse: bodies, idle and dripping clients, no descriptors left ----
rss() { awk "/^$2:/ {print \$2}" /proc/$1/status; }
RSS0=$(rss "$CTLD_a" VmRSS)
POST=$(head -c 300M /dev/zero | ip netns exec "$NS_A" curl -s -o /dev/null -m 20 -w '%{http_code} %{size_upload}' -T - -X POST http://127.0.0.1:8080/node.json)
RSS1=$(rss "$CTLD_a" VmRSS); HWM=$(rss "$CTLD_a" VmHWM)
e2e_log "figure: 300 MB POST to :8080 -> HTTP ${POST% *} after ${POST#* } bytes sent; controld VmRSS ${RSS0} kB before, ${RSS1} kB after, peak ${HWM} kB"
# The 413 may be lost to the reset that closing on an unread body causes; what
# counts is that the upload was cut short.
check "a 300 MB POST is cut short (HTTP ${POST% *} after ${POST#* } of 314572800 bytes)" test "${POST#* }" -lt 104857600
check "and controld's memory stays bounded (peak ${HWM} kB, was ${RSS0} kB)" test "$HWM" -lt $((RSS0 + 32768))
POST=$(ip netns exec "$NS_A" curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Expect:' -H 'Content-Length: 943718400' -X POST --data-binary x http://127.0.0.1:8080/node.json)
check "a POST announcing 900 MB is refused at once ($POST)" test "$POST" = 413

# A client that sends nothing, or drips its first request byte by byte, is
# closed after 5 s; one that was answered keeps its connection for the next
# read (a peer reads again a poll later: a new TLS connection each time was
# most of an idle node's CPU).
cat >"$TMP/closed_in.sh" <<'SH'
# Seconds until controld on 127.0.0.1:8080 gives up on a client that sends
# nothing (idle) or a request one byte a second (drip). Builtins only.
s=$SECONDS
exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
[ "$1" = drip ] && printf 'GET /healthz HTTP/1.1\r\n' >&3
for i in $(seq 20); do
	[ "$1" = drip ] && { printf X >&3 2>/dev/null || break; }
	read -r -t 1 -u 3 _; [ $? -le 128 ] && break   # closed (or answered): not a timeout
done
echo $((SECONDS - s))
SH
cat >"$TMP/kept.sh" <<'SH'
# The status line of a second request sent 8 s after the first was answered,
# on the same connection.
exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n' >&3
read -r -t 2 -u 3 _ || exit 1
while read -r -t 0.5 -u 3 _; do :; done
sleep 8
printf 'GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n' >&3 2>/dev/null || exit 1
read -r -t 2 -u 3 line && echo "${line%$'\r'}"
SH
KEPT=$(ip netns exec "$NS_A" bash "$TMP/kept.sh")
check "a connection answered once is kept: a second request 8 s later is answered (${KEPT:-closed})" \
	test "$KEPT" = "HTTP/1.1 200 OK"
T_IDLE=$(ip netns exec "$NS_A" bash "$TMP/closed_in.sh" idle)
T_DRIP=$(ip netns exec "$NS_A" bash "$TMP/closed_in.sh" drip)
e2e_log "figure: an idle connection is closed after ${T_IDLE:-?} s, a dripping one after ${T_DRIP:-?} s"
check "an idle connection is closed within 7 s (${T_IDLE:-none} s)" test "${T_IDLE:-99}" -le 7
check "a connection dripping its request is closed within 7 s (${T_DRIP:-none} s)" test "${T_DRIP:-99}" -le 7

# 300 idle connections: controld takes at most its cap, without spinning.
hold() { # NS COUNT SECONDS: open COUNT idle connections to :8080 and keep them
	# exec: the holder is the one process with the connections, so killing it closes them.
	ip netns exec "$1" bash -c "for i in \$(seq $2); do exec {f}<>/dev/tcp/127.0.0.1/8080 || break; done; exec sleep $3" >/dev/null 2>&1 &
	HOLDER=$!
	track_pid $HOLDER sleep
}
nfd() { ls /proc/$1/fd | wc -l; }
FD0=$(nfd "$CTLD_a")
hold "$NS_A" 300 30
sleep 2
FD1=$(nfd "$CTLD_a"); T0=$(cpu "$CTLD_a"); sleep 3; T1=$(cpu "$CTLD_a")
e2e_log "figure: 300 idle connections: controld holds $FD1 descriptors (was $FD0), CPU $(( (T1 - T0) * 1000 / TICKS )) ms over 3 s"
check "with 300 idle connections open controld holds at most 256 of them ($FD1 descriptors, was $FD0)" test "$FD1" -le $((FD0 + 256 + 8))
check "and does not spin (CPU $(( (T1 - T0) * 1000 / TICKS )) ms over 3 s)" test $(( (T1 - T0) * 1000 / TICKS )) -lt 300
kill_tracked "$HOLDER" sleep; wait_gone "$HOLDER"
check "/healthz answers again once they close" retry 8 bash -c "[ \$(ip netns exec $NS_A curl -s -m 2 http://127.0.0.1:8080/healthz) = ok ]"

# No descriptor left (a limit just above what it holds): controld rests, then recovers.
# Only the soft limit moves, as controld's own uid (this root has no CAP_SYS_RESOURCE to count on).
LIM=$(awk '/^Max open files/ {print $4 ":" $5}' /proc/$CTLD_a/limits)
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"; }
as_nobody prlimit --pid "$CTLD_a" --nofile=$(( $(nfd "$CTLD_a") + 16 )):"${LIM#*:}"
hold "$NS_A" 100 30
sleep 2
T0=$(cpu "$CTLD_a"); sleep 3; T1=$(cpu "$CTLD_a")
e2e_log "figure: out of descriptors with 100 connections waiting: CPU $(( (T1 - T0) * 1000 / TICKS )) ms over 3 s"
check "out of descriptors, controld does not spin (CPU $(( (T1 - T0) * 1000 / TICKS )) ms over 3 s)" test $(( (T1 - T0) * 1000 / TICKS )) -lt 300
check "and says so in the log" bash -c "[ \$(grep -c 'public listener: Too many open files' '$TMP/a/controld.log') -ge 1 ]"
kill_tracked "$HOLDER" sleep; wait_gone "$HOLDER"
check "/healthz answers again once those connections close" retry 10 bash -c "[ \$(ip netns exec $NS_A curl -s -m 2 http://127.0.0.1:8080/healthz) = ok ]"
tail -3 "$TMP/a/controld.log" | sed 's/^/  a| /'
as_nobody prlimit --pid "$CTLD_a" --nofile="$LIM"
check "the tunnel to b stayed up throughout" ip netns exec "$NS_A" ping -c1 -W1 10.88.0.11

# ---- a lying STUN server is outvoted by two honest ones, and not believed against one ----
ip -n "$NS_S" addr add 198.18.0.4/24 dev eth0
ip netns exec "$NS_S" "$FAKESTUN" --listen 198.18.0.4:3478 --answer 203.0.113.9:1234 >"$TMP/fakestun1.log" 2>&1 &
track_pid $! p2pwg-fakestun
published_true() { # the true endpoint is in a's node.json and the lie is not
	local doc
	doc=$(ip netns exec "$NS_G" curl -s --cacert "$TMP/ca.pem" https://198.18.0.254/a/node.json)
	echo "$doc" | grep -q '"public_ip": "198.18.0.1", "public_port": 51820' && ! echo "$doc" | grep -q 203.0.113.9
}
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
start_controld a "$NS_A" P2PWG_STUN_SERVERS=198.18.0.4:3478,198.18.0.3:3478,198.18.0.3:3479 P2PWG_STUN_INTERVAL=5
check "three STUN servers, the liar asked first: node.json publishes the true endpoint" retry 20 published_true
check "and the true NAT kind (open, endpoint-independent)" bash -c "ip netns exec $NS_G curl -s --cacert $TMP/ca.pem https://198.18.0.254/a/node.json | grep -q '\"nat\": \"open\".*\"mapping\": \"endpoint-independent\"'"
check "the liar is named as outvoted" grep -q "outvoted, ignored: 198.18.0.4:3478 says 203.0.113.9:1234 (2 of 3 answers agree on 198.18.0.1:51820)" "$TMP/a/controld.log"
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
# Two servers, the liar silent at first; it then answers, with the reserved byte set.
start_controld a "$NS_A" P2PWG_STUN_SERVERS=198.18.0.3:3478,198.18.0.4:3479 P2PWG_STUN_INTERVAL=5
check "two STUN servers, one answering: its endpoint is published" retry 20 published_true
ip netns exec "$NS_S" "$FAKESTUN" --listen 198.18.0.4:3479 --answer 203.0.113.9:1234 --reserved 0x80 >"$TMP/fakestun2.log" 2>&1 &
track_pid $! p2pwg-fakestun
check "two STUN servers disagreeing on the address: the log names both" retry 20 grep -q "servers disagree on this node's public address (198.18.0.3:3478 says 198.18.0.1:51820, 198.18.0.4:3479 says 203.0.113.9:1234)" "$TMP/a/controld.log"
check "and the last agreed endpoint stays published, not the lie" published_true
sleep 6
check "the disagreement is said once, not at every probe (STUN every 5 s)" test "$(grep -c 'servers disagree' "$TMP/a/controld.log")" -eq 1

# ---- DNS that never answers stalls nothing; names are looked up again ----
# a's resolver asks 198.18.0.5, a host that drops every DNS query unanswered.
ip -n "$NS_S" addr add 198.18.0.5/24 dev eth0
check "198.18.0.5 drops DNS queries" ip netns exec "$NS_S" nft -f - <<'NFT'
table inet dnsdrop { chain input { type filter hook input priority 0; udp dport 53 drop; tcp dport 53 drop; }; }
NFT
mkdir -p "$ETC_A"
echo 'nameserver 198.18.0.5' >"$ETC_A/resolv.conf"
echo '127.0.0.1 localhost' >"$ETC_A/hosts"
kill -9 "$CTLD_a"; wait_gone "$CTLD_a"
start_controld a "$NS_A" P2PWG_STUN_SERVERS=stun.moving.test:3478,198.18.0.3:3479 P2PWG_STUN_INTERVAL=5
retry 10 ip netns exec "$NS_A" curl -sf -m 1 http://127.0.0.1:8080/healthz
slowest=0 failed=0
for i in $(seq 20); do # 10 s: the probe at start and the next one wait on DNS
	for path in healthz node.json; do
		t=$(ip netns exec "$NS_A" curl -s -o /dev/null -m 3 -w '%{time_total}' "http://127.0.0.1:8080/$path") || failed=$((failed + 1))
		ms=$(awk -v t="${t:-3}" 'BEGIN { printf "%d", t * 1000 }')
		[ "$ms" -gt "$slowest" ] && slowest=$ms
	done
	sleep 0.5
done
e2e_log "figure: slowest /healthz or /node.json while a STUN name hangs in DNS: $slowest ms"
check "while a STUN name hangs in DNS, /healthz and /node.json answer within 1 s ($slowest ms, $failed failed)" test "$slowest" -lt 1000 -a "$failed" -eq 0
check "the numeric server's endpoint is published meanwhile" published_true
check "the name that cannot be resolved is named, once" test "$(grep -c 'cannot resolve stun.moving.test:3478' "$TMP/a/controld.log")" -eq 1
printf '127.0.0.1 localhost\n198.18.0.4 stun.moving.test\n' >"$ETC_A/hosts"
check "a name that appears is looked up at the next probe" retry 15 grep -q 'stun.moving.test:3478 resolves to 198.18.0.4' "$TMP/a/controld.log"
check "(there, a liar: the disagreement is named)" retry 10 grep -q "servers disagree on this node's public address (stun.moving.test:3478 says 203.0.113.9:1234, 198.18.0.3:3479 says 198.18.0.1:51820)" "$TMP/a/controld.log"
printf '127.0.0.1 localhost\n198.18.0.3 stun.moving.test\n' >"$ETC_A/hosts"
check "a name that moves is followed" retry 15 grep -q 'stun.moving.test:3478 now resolves to 198.18.0.3' "$TMP/a/controld.log"
echo '127.0.0.1 localhost' >"$ETC_A/hosts"
check "a failed lookup keeps the last good address" retry 20 grep -q 'cannot resolve stun.moving.test:3478 (.*); keeping 198.18.0.3' "$TMP/a/controld.log"
check "and the true endpoint stays published throughout" published_true
check "/healthz answers promptly still" test "$(ip netns exec "$NS_A" curl -s -m 1 http://127.0.0.1:8080/healthz)" = ok

# ---- configuration errors are clear ----
out=$("$CONTROLD" --gist-url https://x/list.json 2>&1); rc=$?
check "controld refuses to run as root ($rc)" bash -c "[ $rc -eq 2 ] && echo '$out' | grep -q 'refusing to run as root'"
out=$(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$CONTROLD" --gist-url https://x/l --poll-interval 0 2>&1)
check "a bad value is refused naming it ($out)" bash -c "echo '$out' | grep -q 'P2PWG_POLL_INTERVAL'"
out=$(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups env -u GIST_URL "$CONTROLD" 2>&1)
check "a missing GIST_URL is named" bash -c "echo '$out' | grep -q 'GIST_URL'"
out=$(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$CONTROLD" --gist-url http://x/l 2>&1)
check "an http:// list URL is refused without --allow-http" bash -c "echo '$out' | grep -q 'https://'"
check "--help lists every setting with its variable" bash -c "'$CONTROLD' --help | grep -q 'GIST_URL' && '$CONTROLD' --help | grep -q 'P2PWG_STUN_SERVERS'"

sed 's/^/  a| /' "$TMP/a/controld.log" | head -30
e2e_summary
