#!/bin/bash
# SPDX-License-Identifier: MIT
# The relay in the NAT lab: two nodes each behind a symmetric NAT (no direct
# path can exist) reach each other's /test through the relay over the
# gateway's HTTPS path, and their /status says so. Strangers who open the
# relay path get nothing through and are cut. The pair survives the gateway's
# idle cut (keepalives), and recovers by itself from the lifetime cut, from an
# idle cut it could not prevent (both controlds stopped), from a gateway
# restart and from a crash of controld; when both NATs become easy it moves to
# the direct path with no /test failure. Prints the time to the first relayed
# /test and the recovery times.
# Usage: natlab_relay_e2e.sh WGAGENT CONTROLD AGENTCTL
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || { echo "missing nginx's stream module: run deploy/install-deps.sh"; exit 1; }

NL_GW_IDLE=6 # the gateway's idle cut, short; the relay's keepalive is 2 s
KA=2
RECOVER=15

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
for k in 0 1; do NL_CTLD_ENV[$k]="P2PWG_RELAY_KEEPALIVE=$KA P2PWG_RELAY_AFTER=5"; done
T0=$(date +%s.%N)
natlab_up 2 symmetric || { fail "nodes did not start"; exit 1; }

# relayed K J: K's /status shows J through the relay, /test passing.
relayed() {
	natlab_status "$1" | jq -e --arg u "$(nl_url "$2")" \
		'.peers[] | select(.url == $u) | .path == "relay" and .state == "relay" and .test.ok == true and .relay.state == "up"' >/dev/null
}
pair_relayed() { relayed 0 1 && relayed 1 0; }
relay_field() { natlab_status "$1" | jq -r --arg u "$(nl_url "$2")" ".peers[] | select(.url == \$u) | .relay.$3"; }
metric() { ip netns exec "$(nl_ns "$1")" curl -s -m 3 http://127.0.0.1:8081/metrics | awk -v m="$2" '$1 == m { print $2 }'; }
pings() { ip netns exec "$(nl_ns "$1")" ping -q -n -c 1 -W 1 "10.88.0.$((10 + $2))" >/dev/null; }
pair_through() { pings 0 1 && pings 1 0 && pair_relayed; }
# recover WHAT T C: once n0 has had more than C streams up, both ways ping and
# /test through the relay again, within RECOVER s of T; prints the figure.
new_stream() { [ "$(relay_field 0 1 connects)" -gt "$1" ]; }
recover() {
	local t
	if retry $RECOVER new_stream "$3" && retry $RECOVER pair_through; then
		t=$(nl_elapsed "$2")
		check "the pair recovered by itself from $1 within $RECOVER s ($t s)" \
			awk -v t="$t" -v b=$RECOVER 'BEGIN { exit !(t <= b) }'
		echo "figure: relay recovery after $1: $t s"
	else
		fail "the pair did not recover from $1 within $RECOVER s"
		natlab_table 0 1
	fi
}

# ==== two symmetric NATs: only the relay joins them ====
if retry 40 pair_relayed; then
	T_FIRST=$(nl_elapsed "$T0")
	pass "n0 and n1 (both behind symmetric NATs) reach each other's /test through the relay; /status says path relay"
	echo "figure: time to the first relayed /test both ways, from starting the agents: $T_FIRST s"
else
	fail "n0 and n1 did not reach each other through the relay within 40 s"
	natlab_table 0 1
	for k in 0 1; do tail -n 30 "$(nl_dir $k)/controld.log"; done
fi
check "both see their NAT as symmetric (so no direct path is possible)" \
	test "$(natlab_nodejson 0 | jq -r .nat) $(natlab_nodejson 1 | jq -r .nat)" = "symmetric symmetric"
ep=$(natlab_wg 0 endpoints | awk '{ print $2 }')
check "n0's WireGuard sends to its relay socket on loopback ($ep)" grep -q '^127\.0\.0\.1:' <<<"$ep"
check "n0 pings n1 over the overlay" pings 0 1
check "relay counters move both ways (n0: tx $(relay_field 0 1 tx_bytes), rx $(relay_field 0 1 rx_bytes))" \
	test "$(relay_field 0 1 tx_bytes)" -gt 0 -a "$(relay_field 0 1 rx_bytes)" -gt 0
check "/metrics counts the relay (p2pwg_relay_streams_up 1 on n1)" test "$(metric 1 p2pwg_relay_streams_up)" = 1

# ==== strangers open the relay path from the internet side ====
K0=$(natlab_pubkey 0) K1=$(natlab_pubkey 1)
# stranger NAME FROMKEY_B64|random: an upgrade to n0's /relay through the
# gateway, a HELLO from that key, then an AUTH of zeros and a DATA frame.
stranger() {
	local f=$TMP/stranger.$1
	{
		printf 'GET /relay HTTP/1.1\r\nHost: n0-8080.%s\r\nConnection: Upgrade\r\nUpgrade: p2pwg-relay\r\n\r\n' "$NL_DOMAIN"
		sleep 0.5
		printf '\x01\x00\x51\x01'
		if [ "$2" = random ]; then head -c 32 /dev/urandom; else base64 -d <<<"$2"; fi
		base64 -d <<<"$K0"
		head -c 16 /dev/urandom
		sleep 0.5
		printf '\x02\x00\x20'; head -c 32 /dev/zero
		printf '\x03\x00\x04ping'
		sleep 6
	} | ip netns exec "$NL_GW" timeout 5 openssl s_client -quiet -connect "$NL_GW_PUB:443" \
		-servername "n0-8080.$NL_DOMAIN" -CAfile "$NL_DIR/ca.pem" >"$f.out" 2>/dev/null
	echo $? >"$f.rc"
}
R0=$(metric 0 p2pwg_relay_refused_total)
RX0=$(metric 0 p2pwg_relay_rx_bytes_total)
T=$(date +%s.%N)
stranger random random
t=$(nl_elapsed "$T")
check "a stranger (a key not in the list) got the upgrade and was cut before its 5 s ran out ($t s)" \
	test "$(cat "$TMP/stranger.random.rc")" != 124
check "and got not one byte back after the 101 ($(($(wc -c <"$TMP/stranger.random.out"))) bytes in all)" \
	bash -c "grep -q '^HTTP/1.1 101' '$TMP/stranger.random.out' && [ \"\$(sed -n '/^\r$/,\$p' '$TMP/stranger.random.out' | tail -c +3 | wc -c)\" = 0 ]"
stranger impostor "$K1"
check "an impostor with n1's public key but not its private key (a MAC of zeros) is cut too" \
	test "$(cat "$TMP/stranger.impostor.rc")" != 124
R1=$(metric 0 p2pwg_relay_refused_total)
check "n0 counted both refusals (p2pwg_relay_refused_total $R0 -> $R1)" test "$R1" -ge $((R0 + 2))
check "n0 logged the refusal" grep -q 'refused a relay stream: not a member of the list, or a wrong MAC' "$(nl_dir 0)/controld.log"
C0=$(relay_field 0 1 connects)
check "the real pair's stream was not cut meanwhile (cuts on n0: $(relay_field 0 1 cuts))" test "$(relay_field 0 1 cuts)" = 0

# ==== the gateway's idle cut: keepalives stay inside it ====
sleep $((NL_GW_IDLE + 2 - ${t%.*}))
check "after more than the gateway's ${NL_GW_IDLE} s idle cut the stream is still the same (keepalive ${KA} s; cuts 0, connects $C0)" \
	test "$(relay_field 0 1 cuts) $(relay_field 1 0 cuts) $(relay_field 0 1 connects)" = "0 0 $C0"
RX1=$(metric 0 p2pwg_relay_rx_bytes_total)
e2e_log "relay rx on n0 $RX0 -> $RX1 bytes (WireGuard keepalives and /test)"

# ==== the lifetime cut: every connection through the gateway closes ====
snapshot 0 1 >"$TMP/s.before"
C0=$(relay_field 0 1 connects)
# idle_strangers K N: N upgrades to node K's /relay that never say HELLO.
idle_strangers() {
	local i
	for ((i = 0; i < $2; i++)); do
		{ printf 'GET /relay HTTP/1.1\r\nHost: n%d-8080.%s\r\nConnection: Upgrade\r\nUpgrade: p2pwg-relay\r\n\r\n' "$1" "$NL_DOMAIN"; sleep 12; } |
			ip netns exec "$NL_GW" timeout 12 openssl s_client -quiet -connect "$NL_GW_PUB:443" \
				-servername "n$1-8080.$NL_DOMAIN" -CAfile "$NL_DIR/ca.pem" >/dev/null 2>&1 &
		track_pid $! timeout
	done
}
R0=$(metric 0 p2pwg_relay_refused_total)
T=$(date +%s.%N)
natlab_gw_cut
idle_strangers 0 20
idle_strangers 1 20
recover "the gateway's lifetime cut (every connection closed; the old worker lingers up to 1 s) while 20 strangers per node hold relay upgrades open" "$T" "$C0"
R1=$(metric 0 p2pwg_relay_refused_total)
check "n0 evicted the oldest idle strangers to make room (p2pwg_relay_refused_total $R0 -> $R1; 16 may authenticate at once)" test "$R1" -ge $((R0 + 4))

# ==== an idle cut the pair could not prevent: both controlds stopped ====
C0=$(relay_field 0 1 connects)
for k in 0 1; do kill_tracked "${NL_CTLD_PID[$k]}" controld STOP; done
sleep $((NL_GW_IDLE + 2))
T=$(date +%s.%N)
for k in 0 1; do kill_tracked "${NL_CTLD_PID[$k]}" controld CONT; done
recover "the gateway's idle cut (both controlds stopped for $((NL_GW_IDLE + 2)) s)" "$T" "$C0"

# ==== the gateway restarted ====
C0=$(relay_field 0 1 connects)
natlab_gw_stop
sleep 1
T=$(date +%s.%N)
natlab_gw_start || fail "the gateway did not come back"
recover "a gateway restart (down 1 s)" "$T" "$C0"

# ==== controld crashes and comes back (its relay socket is gone) ====
natlab_crash 0 controld
T=$(date +%s.%N)
natlab_start_controld 0
recover "a kill -9 of n0's controld (restarted at once)" "$T" 0

snapshot 0 1 >"$TMP/s.after"
check_sessions "WireGuard's sessions outlived every cut (no new handshake, counters never dropped)" "$TMP/s.before" "$TMP/s.after"
check "both controlds still run, through duplicate streams and every cut" \
	test "$(cat /proc/${NL_CTLD_PID[0]}/comm 2>/dev/null) $(cat /proc/${NL_CTLD_PID[1]}/comm 2>/dev/null)" = "controld controld"
# ==== both NATs become easy: the pair leaves the relay for the direct path ====
# Path checks keep trying the published endpoints while WireGuard uses the
# relay; once both routers preserve ports (STUN finds the new endpoints), a
# check answers and WireGuard moves, with no /test failure and no ping lost.
direct_both() {
	[ "$(natlab_path 0 1) $(natlab_path 1 0)" = "direct direct" ] &&
		! natlab_wg 0 endpoints | grep -q '127\.0\.0\.1' &&
		! natlab_wg 1 endpoints | grep -q '127\.0\.0\.1'
}
direct_ok() {
	for k in 0 1; do
		natlab_status $k | jq -e --arg u "$(nl_url $((1 - k)))" \
			'.peers[] | select(.url == $u) | .path == "direct" and .state == "direct" and .test.ok == true' >/dev/null || return 1
	done
}
test_fails() { # the /test failures either node reported since the start of this part
	for k in 0 1; do
		natlab_status $k | jq -r '.peers[] | select(.test != null and .test.ok == false) | .test.at'
	done
}
ping_start easy 0 1 40
T=$(date +%s.%N)
natlab_set_nat 0 easy && natlab_set_nat 1 easy || fail "the routers could not be changed"
: >"$TMP/fails"
moved=""
for ((i = 0; i < 30; i++)); do
	test_fails >>"$TMP/fails"
	if direct_both; then moved=$(nl_elapsed "$T"); break; fi
	sleep 1
done
if [ -n "$moved" ]; then
	pass "with both NATs easy the pair moved from the relay to the direct path by itself ($moved s)"
	echo "figure: relay to direct after the NATs became easy: $moved s"
	sleep 3
	test_fails >>"$TMP/fails"
	check "and /test never failed on either node meanwhile ($(sort -u "$TMP/fails" | wc -l) failures)" test ! -s "$TMP/fails"
	check "and both /status say state direct with /test passing" direct_ok
else
	fail "the pair did not move to the direct path within 30 s of both NATs becoming easy"
fi
ping_check easy "no ping lost while the pair moved from the relay to the direct path"

natlab_table 0 1
e2e_summary
