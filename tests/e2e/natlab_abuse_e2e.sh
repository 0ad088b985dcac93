#!/bin/bash
# SPDX-License-Identifier: MIT
# The NAT lab under attack: three honest nodes form a mesh, then everything a
# hostile list member, peer, STUN server or HTTP client can do is thrown at it
# at once:
#   - hostile node.json entries in the list (all-zero key, public_ip inside the
#     overlay, loopback, multicast, another node's key; a dead URL), around
#     a valid newcomer that must still be applied everywhere;
#   - that newcomer is itself hostile: its /test answers 302 to a secret page
#     on the prober's own loopback (SSRF);
#   - a 900 MB POST and hundreds of slow-drip connections on n0's public 8080;
#   - a lying STUN server among n1's three;
#   - n2's own URL answering another node's key to n2 for one poll.
# Every honest pair must keep answering /test, no session may be reset, no
# ping lost, and n0's controld must stay bounded in memory, descriptors and
# CPU. Prints the figures.
# Usage: natlab_abuse_e2e.sh WGAGENT CONTROLD AGENTCTL FAKESTUN
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq ping busybox truncate; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
FAKESTUN=$(readlink -f "$4")

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

HONEST="0 1 2"
H=3                          # the hostile newcomer's node number
LIAR=198.18.0.4              # the lying STUN server
LIE=198.18.0.99:4444         # what it answers
SECRET=p2pwg-secret-$$       # what the SSRF would leak

# ---- helpers ----
has_peer() { natlab_wg "$1" peers | grep -qxF "$2"; }
all_have_key() { local key=$1 k; shift; for k in "$@"; do has_peer "$k" "$key" || return 1; done; }
proc_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
proc_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
proc_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
healthz() { ip netns exec "$NL_GW" curl -sf -m 2 "http://100.64.$1.2:8080/healthz" | grep -q ok; }
# A node.json a hostile list member would serve.
evil_json() { # FILE KEY IP
	printf '{"wg_pubkey": "%s", "overlay_ip": "", "wg_listen_port": 51820, "public_ip": "%s", "public_port": 51820, "nat": "port-preserving", "updated_at": "2026-11-28T00:00:00Z", "self_url": null, "self_index": null}\n' \
		"$2" "$3" >"$NL_DIR/www/evil/$1"
}

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }

# ---- the liar: a STUN server on the internet that answers a wrong mapping ----
ip -n "$NL_INET" addr add $LIAR/24 dev br0
ip netns exec "$NL_INET" "$FAKESTUN" --listen $LIAR:3478 --answer $LIE >"$TMP/fakestun.log" 2>&1 &
track_pid $! "$(basename "$FAKESTUN" | cut -c1-15)"
disown $!
NL_CTLD_ENV[1]="P2PWG_STUN_SERVERS=$NL_STUN1:3478,$NL_STUN2:3478,$LIAR:3478"

# ---- three honest nodes; a secret page on each one's loopback ----
for k in $HONEST; do
	natlab_add_node $k "$([ $k = 1 ] && echo remap || echo easy)" || { fail "node $k"; exit 1; }
	mkdir -p "$TMP/secret$k" && echo "$SECRET" >"$TMP/secret$k/secret"
	ip netns exec "$(nl_ns $k)" busybox httpd -f -p 127.0.0.1:9999 -h "$TMP/secret$k" &
	track_pid $! busybox
	disown $!
done
natlab_add_node $H open || { fail "node $H"; exit 1; }
natlab_set_list $HONEST
for k in $HONEST; do natlab_start_agent $k || { fail "agent $k"; exit 1; }; done
for k in $HONEST; do natlab_start_controld $k; done
if retry 60 natlab_full_mesh $HONEST; then
	pass "three honest nodes (easy, remap, easy; n1 with a lying third STUN server) form a full mesh"
else
	fail "no full mesh of the honest nodes within 60 s"; natlab_table $HONEST; e2e_summary; exit 1
fi
C0=${NL_CTLD_PID[0]}
RSS0=$(proc_rss_kb "$C0") FD0=$(proc_fds "$C0")
echo "figure: n0 controld before the attack: VmRSS $RSS0 kB, $FD0 descriptors"

# ---- watch n0's controld and every honest node's peer count all along ----
(
	while :; do
		echo "$(proc_rss_kb "$C0") $(proc_fds "$C0") $(for k in $HONEST; do natlab_wg $k peers | wc -l; done | tr '\n' ' ')"
		sleep 0.2
	done
) >"$TMP/watch" 2>/dev/null &
WATCH=$!
# The subshell's name is this script's, or bash's when run as `bash script`.
track_pid $WATCH "$(cat /proc/$WATCH/comm)"
snapshot $HONEST >"$TMP/s.before"
ATTACK_S=75
ping_start p01 0 1 $ATTACK_S; ping_start p12 1 2 $ATTACK_S; ping_start p20 2 0 $ATTACK_S

# ==== 1. hostile entries in the list, then a valid newcomer after them ====
mkdir -p "$NL_DIR/www/evil"
echo "location /evil/ { }" >"$NL_DIR/nginx/gist-extra-evil.conf"
natlab_gw_reload
K0=$(natlab_pubkey 0)
RK1=$(wg genkey | wg pubkey) RK2=$(wg genkey | wg pubkey) RK3=$(wg genkey | wg pubkey)
evil_json zero.json AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= 198.18.0.50
evil_json overlay.json "$RK1" 10.88.0.11
evil_json loopback.json "$RK2" 127.0.0.1
evil_json multicast.json "$RK3" 224.0.0.5
evil_json stolen.json "$K0" 198.18.0.51
EVIL="zero overlay loopback multicast stolen"
DEAD="\"https://gist.$NL_DOMAIN/evil/missing.json\""
evil_urls() { local e; for e in $EVIL; do printf ', "https://gist.%s/evil/%s.json"' "$NL_DOMAIN" "$e"; done; }
LIST_EVIL="[\"$(nl_url 0)\", \"$(nl_url 1)\", \"$(nl_url 2)\"$(evil_urls)"
natlab_set_list_raw "$LIST_EVIL, $DEAD]"
sleep $((NL_POLL + 1))

# The newcomer: a real WireGuard peer (wireguard-go, set by hand), listed
# after the hostile entries, whose /test redirects to the prober's loopback.
HPOS=$((3 + $(echo $EVIL | wc -w)))
HIP=10.88.0.$((10 + HPOS))
HNS=$(nl_ns $H) HIF=$(nl_if $H)
(umask 077; wg genkey >"$TMP/h.key")
HKEY=$(wg pubkey <"$TMP/h.key")
ip netns exec "$HNS" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$HIF" >"$TMP/h-wg.log" 2>&1 &
track_pid $! wireguard-go
disown $!
retry 10 ip -n "$HNS" link show "$HIF"
ip netns exec "$HNS" wg set "$HIF" private-key "$TMP/h.key" listen-port 51820
ip -n "$HNS" addr add "$HIP/24" dev "$HIF"
ip -n "$HNS" link set "$HIF" up
for k in $HONEST; do
	doc=$(natlab_nodejson $k)
	ip netns exec "$HNS" wg set "$HIF" peer "$(echo "$doc" | jq -r .wg_pubkey)" persistent-keepalive 5 \
		endpoint "$(echo "$doc" | jq -r '"\(.public_ip):\(.public_port)"')" allowed-ips "10.88.0.$((10 + k))/32"
done
mkdir -p "$TMP/h-nginx/www"
printf '{"wg_pubkey": "%s", "overlay_ip": "%s/32", "wg_listen_port": 51820, "public_ip": "%s", "public_port": 51820, "nat": "open", "updated_at": "2026-11-28T00:00:00Z", "self_url": "%s", "self_index": %d}\n' \
	"$HKEY" "$HIP" "$(nl_pub $H)" "$(nl_url $H)" "$HPOS" >"$TMP/h-nginx/www/node.json"
{
	nginx_head "$TMP/h-nginx" 64
	cat <<CONF
	default_type application/json;
	server { listen 100.64.$H.2:8080; root $TMP/h-nginx/www; }
	server { listen $HIP:8000; location / { return 302 http://127.0.0.1:9999/secret; } }
}
CONF
} >"$TMP/h-nginx/nginx.conf"
ip netns exec "$HNS" nginx -c "$TMP/h-nginx/nginx.conf" -g 'daemon off;' >"$TMP/h-nginx/stderr.log" 2>&1 &
track_pid $! nginx
disown $!
natlab_set_list_raw "$LIST_EVIL, \"$(nl_url $H)\", $DEAD]"
T=$(date +%s.%N)
if retry 30 all_have_key "$HKEY" $HONEST; then
	pass "a valid newcomer listed after five hostile entries (a dead URL after it) is configured on every honest node ($(nl_elapsed "$T") s): no entry froze the peer set"
else
	fail "the newcomer was not configured everywhere: a hostile entry froze the peer set"
	for k in $HONEST; do tail -n 5 "$(nl_dir $k)/agent.log"; done
fi
for k in $HONEST; do
	n=$(natlab_wg $k peers | wc -l)
	check "n$k has exactly its 2 honest peers and the newcomer, none of the hostile keys ($n peers)" \
		test "$n" = 3
	[ $k = 0 ] || check "n$k keeps n0's key at n0's address (the stolen key did not move it)" \
		grep -qxF "$K0	10.88.0.10/32" <(natlab_wg $k allowed-ips)
	for e in $EVIL missing; do
		check "n$k names the hostile entry $e.json in its log" grep -q "evil/$e.json" "$(nl_dir $k)/controld.log"
	done
done

# ==== 2. the newcomer's /test redirects to a secret page: it must not be read ====
sleep $((2 * NL_TEST + 1))
no_secret() { [ -n "$1" ] && ! grep -q "$SECRET" <<<"$1"; }
probed_and_failed() { # K: K's /status has a failing /test result for the newcomer
	natlab_status "$1" | jq -e --arg u "$(nl_url $H)" '.peers[] | select(.url == $u) | .test.ok == false' >/dev/null
}
for k in $HONEST; do
	check "n$k probed the newcomer's /test, which fails: its 302 is not followed" retry 10 probed_and_failed $k
	check "n$k probed the newcomer's /test without following its redirect (no secret in /status)" no_secret "$(natlab_status $k)"
	check "n$k's log holds no secret" no_secret "$(cat "$(nl_dir $k)/controld.log")"
done

# ==== 3. a 900 MB POST on n0's public port ====
truncate -s 900M "$TMP/big"
T=$(date +%s.%N)
code=$(ip netns exec "$NL_GW" curl -s -o /dev/null -w '%{http_code}' -m 30 -X POST -T "$TMP/big" \
	"http://100.64.0.2:8080/node.json" 2>/dev/null)
t=$(nl_elapsed "$T")
rm -f "$TMP/big"
sleep 1
peak=$(awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$TMP/watch")
echo "figure: 900 MB POST to n0:8080: answer $code after $t s; n0 controld VmRSS peak $peak kB (before $RSS0 kB)"
check "the 900 MB POST is refused early (HTTP $code after $t s)" \
	awk -v c="$code" -v t="$t" 'BEGIN { exit !((c == 413 || c == 405 || c == 400 || c == 0 || c == "000") && t < 10) }'
check "n0's controld memory stays bounded: peak $peak kB <= $RSS0 + 16384 kB" test "$peak" -le $((RSS0 + 16384))

# ==== 4. hundreds of slow-drip connections on n0's public port ====
DRIP=350  # under the public cap (256) plus the listen backlog (128): no connect blocks
ip netns exec "$NL_GW" bash -c "trap '' PIPE; ulimit -n 4096; fds=()
	for i in \$(seq $DRIP); do exec {fd}<>/dev/tcp/100.64.0.2/8080 || break; fds+=(\$fd); done
	echo \${#fds[@]} >$TMP/drip.opened
	for r in \$(seq 25); do for fd in \"\${fds[@]}\"; do printf G >&\$fd; done 2>/dev/null; sleep 1; done" &
DRIPPER=$!
track_pid $DRIPPER bash
sleep 3
CPU_A=$(proc_cpu_ticks "$C0")
sleep 10
CPU_B=$(proc_cpu_ticks "$C0")
cpu=$(awk -v a="$CPU_A" -v b="$CPU_B" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / 10 }')
fdpeak=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TMP/watch")
echo "figure: $(cat "$TMP/drip.opened" 2>/dev/null) slow-drip connections on n0:8080: n0 controld CPU $cpu% of a core, descriptors peak $fdpeak (before $FD0)"
check "under the slow drip n0's controld does not spin ($cpu% of a core)" test "$cpu" -lt 30
check "under the slow drip n0's controld descriptors stay bounded (peak $fdpeak < 300)" test "$fdpeak" -lt 300
kill_tracked "$DRIPPER" bash TERM
wait "$DRIPPER" 2>/dev/null
T=$(date +%s.%N)
if retry 10 healthz 0; then
	pass "n0's /healthz answers again $(nl_elapsed "$T") s after the drip stops"
else
	fail "n0's /healthz does not answer 10 s after the drip stopped"
fi

# ==== 5. n2's own URL answers another key to n2 for one poll ====
# (the dead entry goes first: while any entry is unreadable, a node cannot
# conclude it is not listed, so it would not even count this poll)
natlab_set_list_raw "$LIST_EVIL, \"$(nl_url $H)\"]"
sleep $((NL_POLL + 1))
cat >"$NL_DIR/nginx/node-extra-misroute.conf" <<CONF
set \$misroute "\$node:\$nl_client";
if (\$misroute = "2:100.64.2.2") {
	return 200 '{"wg_pubkey": "$RK1", "overlay_ip": "", "wg_listen_port": 51820, "public_ip": "198.18.0.52", "public_port": 51820, "nat": null, "updated_at": "2026-11-28T00:00:00Z", "self_url": null, "self_index": null}';
}
CONF
MARK2=$(wc -l <"$(nl_dir 2)/controld.log")
natlab_gw_reload
sleep $((NL_POLL + 1))
rm -f "$NL_DIR/nginx/node-extra-misroute.conf"
natlab_gw_reload
sleep $((NL_POLL + 1))
check "n2 said it did not find itself, and how many polls in a row" \
	grep -q "1 of 3 polls in a row" <(tail -n +$((MARK2 + 1)) "$(nl_dir 2)/controld.log")
check "n2 kept every peer while its own URL answered another key (never fewer than 3)" \
	awk '{ if ($5 < 3) exit 1 }' <(tail -n 60 "$TMP/watch")
check "n2 still has its address 10.88.0.12" test "$(natlab_status 2 | jq -r .node.overlay_ip)" = 10.88.0.12/32

# ==== 6. the lying STUN server did not decide n1's endpoint ====
doc=$(natlab_nodejson 1)
got=$(echo "$doc" | jq -r '"\(.public_ip):\(.public_port) \(.nat)"')
check "n1 publishes the endpoint two of its three STUN servers agree on, not the lie ($got)" \
	test "$got" = "198.18.0.11:40001 port-remapping"

# ==== and through it all ====
check "the honest nodes are still a full mesh (every /status: direct, /test passing)" retry 15 natlab_full_mesh $HONEST
kill_tracked "$WATCH" bash TERM
ping_check p01 "n0 pinged n1 throughout the attack without loss"
ping_check p12 "n1 pinged n2 throughout without loss"
ping_check p20 "n2 pinged n0 throughout without loss"
snapshot $HONEST >"$TMP/s.after"
check_sessions "no honest session was reset or removed during the attack" "$TMP/s.before" "$TMP/s.after"
min=$(awk '{ for (i = 3; i <= 5; i++) if (m == "" || $i < m) m = $i } END { print m }' "$TMP/watch")
check "no honest node ever had fewer than its 2 honest peers configured (lowest $min)" test "$min" -ge 2
echo "figure: n0 controld after the attack: VmRSS $(proc_rss_kb "$C0") kB, $(proc_fds "$C0") descriptors"
e2e_summary
