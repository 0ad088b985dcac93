#!/bin/bash
# SPDX-License-Identifier: MIT
# Attested membership in the NAT lab, with a fake dstack guest agent per node
# and a fake dstack-verifier (tests/tools/fakedstack.py: the real endpoints and
# JSON shapes; quotes are HMAC-signed claims only the fakes can make).
#   n0, n1: genuine nodes of the allowed app, admitting by attestation;
#   n2: a real node, but its guest agent is another app's;
#   list entries (static node.json) with no quote, a stale quote, and a genuine
#   quote that binds a different key.
# Only n0 and n1 mesh; every refused entry is named in /status with its
# reason. Then the verifier stops: the verified peer keeps its session (also
# across its re-quote), a new genuine entry is not admitted until the verifier
# is back, and then it is.
# Usage: natlab_attest_e2e.sh WGAGENT CONTROLD AGENTCTL
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq python3 sha256sum; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
FAKE=$(readlink -f "$HERE/../tools/fakedstack.py")

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

QSECRET=p2pwg-fake-quote-key-$$
APP=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
OTHER=b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2
COMPOSE=$(printf 'c3%.0s' $(seq 32))
MAXAGE=30 # the lab's quote max age: genuine nodes re-quote every 10 s
VPORT=8099

# ---- helpers ----
iso_at() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.000000+00:00; }
binding() { # KEY UPDATED_AT: the report_data p2pwg binds (hex of 64 bytes)
	printf '%s%s' "$({ printf 'p2pwg-attest-v1'; echo "$1" | base64 -d; printf '%s' "$2"; } | sha256sum | cut -c1-64)" \
		"$(printf '0%.0s' $(seq 64))"
}
# att_json FILE KEY [BINDKEY AGE APP]: a node.json at gist.<domain>/att/FILE, with
# no attestation, or one whose quote (from a fake agent of APP) binds BINDKEY
# and the time AGE seconds ago.
att_json() {
	local f=$1 key=$2 at q
	if [ $# -eq 2 ]; then
		jq -n --arg k "$key" '{wg_pubkey: $k, overlay_ip: "", wg_listen_port: 51820, public_ip: "198.18.0.77",
			public_port: 51820, nat: "open", updated_at: "2026-11-28T00:00:00Z", self_url: null, self_index: null}' >"$NL_DIR/www/att/$f.new"
	else
		at=$(iso_at $(($(date +%s) - $4)))
		q=$(python3 "$FAKE" quote --secret "$QSECRET" --app-id "$5" --compose-hash "$COMPOSE" \
			--report-data "$(binding "$3" "$at")") || return 1
		jq -n --arg k "$key" --arg at "$at" --arg app "$5" --argjson q "$q" '{wg_pubkey: $k, overlay_ip: "",
			wg_listen_port: 51820, public_ip: "198.18.0.77", public_port: 51820, nat: "open", updated_at: $at,
			self_url: null, self_index: null, version: 1, attestation: {version: 1, updated_at: $at, app_id: $app,
			quote: $q.quote, event_log: $q.event_log, vm_config: $q.vm_config}}' >"$NL_DIR/www/att/$f.new"
	fi
	mv -f "$NL_DIR/www/att/$f.new" "$NL_DIR/www/att/$f.json"
}
att_url() { echo "https://gist.$NL_DOMAIN/att/$1.json"; }
start_verifier() {
	ip netns exec "$NL_GW" python3 "$FAKE" verifier --listen 0.0.0.0:$VPORT --secret "$QSECRET" >>"$TMP/verifier.log" 2>&1 &
	VPID=$!
	track_pid $VPID python3
	disown $VPID
	retry 10 ip netns exec "$NL_GW" curl -sf -m 1 http://127.0.0.1:$VPORT/health
}
start_dstack_agent() { # K APP
	local k=$1
	python3 "$FAKE" agent --socket "$(nl_dir "$k")/dstack.sock" --secret "$QSECRET" --app-id "$2" \
		--compose-hash "$COMPOSE" --instance-id "$(printf '%02d' "$k")$(printf 'e%.0s' $(seq 38))" >>"$TMP/dstack$k.log" 2>&1 &
	track_pid $! python3
	disown $!
	retry 10 test -S "$(nl_dir "$k")/dstack.sock"
}
# refused K URL: the reason node K's /status gives for the entry at URL ("" if none).
refused() { natlab_status "$1" | jq -r --arg u "$2" '.peers[] | select(.url == $u) | .refused // ""'; }
refused_has() { refused "$1" "$2" | grep -qF -- "$3"; }
has_peer() { natlab_wg "$1" peers | grep -qxF "$2"; }

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
T0=$(date +%s.%N)
start_verifier || { fail "the fake verifier did not start"; cat "$TMP/verifier.log"; exit 1; }
mkdir -p "$NL_DIR/www/att"
echo "location /att/ { }" >"$NL_DIR/nginx/gist-extra-att.conf"
natlab_gw_reload

KINDS=(easy remap easy)
for k in 0 1 2; do natlab_add_node $k "${KINDS[$k]}" || { fail "node $k"; exit 1; }; done
for k in 0 1; do
	start_dstack_agent $k $APP || { fail "fake guest agent n$k"; exit 1; }
	NL_CTLD_ENV[$k]="P2PWG_DSTACK_SOCKET=$(nl_dir $k)/dstack.sock P2PWG_VERIFIER_URL=http://100.64.$k.1:$VPORT/verify
		P2PWG_ALLOW_APP_IDS=$APP P2PWG_ALLOW_COMPOSE_HASHES=0x$COMPOSE P2PWG_ATTEST_MAX_AGE=$MAXAGE"
done
start_dstack_agent 2 $OTHER || { fail "fake guest agent n2"; exit 1; }
NL_CTLD_ENV[2]="P2PWG_DSTACK_SOCKET=$(nl_dir 2)/dstack.sock"

K_NOQ=$(wg genkey | wg pubkey) K_STALE=$(wg genkey | wg pubkey) K_THIEF=$(wg genkey | wg pubkey)
K_VICTIM=$(wg genkey | wg pubkey) K_NEW=$(wg genkey | wg pubkey)
att_json noquote "$K_NOQ"
att_json stale "$K_STALE" "$K_STALE" 600 $APP
att_json wrongkey "$K_THIEF" "$K_VICTIM" 0 $APP
LIST="\"$(nl_url 0)\", \"$(nl_url 1)\", \"$(nl_url 2)\", \"$(att_url noquote)\", \"$(att_url stale)\", \"$(att_url wrongkey)\""
natlab_set_list_raw "[$LIST]"
for k in 0 1 2; do natlab_start_agent $k || { fail "agent $k"; exit 1; }; done
for k in 0 1 2; do natlab_start_controld $k; done

# ==== 1. only the genuine nodes mesh; the others are refused, with the reason ====
if retry 40 natlab_full_mesh 0 1; then
	pass "n0 and n1 (genuine, verified quotes of the allowed app) mesh in $(nl_elapsed "$T0") s"
else
	fail "n0 and n1 do not mesh"; natlab_table 0 1 2
fi
sleep $((NL_POLL + 1)) # every refusal is decided by now
for k in 0 1; do
	check "n$k refuses n2, a real node of another app: '$(refused $k "$(nl_url 2)")'" \
		refused_has $k "$(nl_url 2)" "app_id ${OTHER:0:16} is not in P2PWG_ALLOW_APP_IDS"
	check "n$k refuses the entry without a quote: '$(refused $k "$(att_url noquote)")'" \
		refused_has $k "$(att_url noquote)" "attestation: none in its node.json"
	check "n$k refuses the stale quote: '$(refused $k "$(att_url stale)")'" \
		refused_has $k "$(att_url stale)" "attestation: stale"
	check "n$k refuses a genuine quote that binds another key: '$(refused $k "$(att_url wrongkey)")'" \
		refused_has $k "$(att_url wrongkey)" "does not bind this node's key"
	check "n$k configures exactly its genuine peer ($(natlab_wg $k peers | wc -l) peer)" \
		test "$(natlab_wg $k peers)" = "$(natlab_pubkey $((1 - k)))"
done
check "n2 (another app) has no tunnel to n0 or n1 (handshakes: $(natlab_wg 2 latest-handshakes | awk '{print $2}' | tr '\n' ' '))" \
	test -z "$(natlab_wg 2 latest-handshakes | awk '$2 > 0')"
DOC=$(natlab_nodejson 0)
check "n0's node.json carries its quote, app_id and a report_data binding its key and updated_at" \
	test "$(echo "$DOC" | jq -r '.attestation.app_id')" = $APP -a \
	"$(echo "$DOC" | jq -c '{quote: .attestation.quote, event_log: .attestation.event_log, vm_config: .attestation.vm_config}' |
		ip netns exec "$NL_GW" curl -s -m 2 -d @- http://127.0.0.1:$VPORT/verify | jq -r .details.report_data)" = \
	"$(binding "$(echo "$DOC" | jq -r .wg_pubkey)" "$(echo "$DOC" | jq -r .attestation.updated_at)")"
check "the prototype's fields are unchanged beside it" \
	test "$(echo "$DOC" | jq -r '[.wg_pubkey, .overlay_ip, .self_index] | @tsv')" = "$(natlab_pubkey 0)	10.88.0.10/32	0"

# ==== 2. the verifier stops: verified peers stay, no new one is admitted ====
snapshot 0 1 >"$TMP/s.before"
AT1=$(natlab_nodejson 1 | jq -r .attestation.updated_at)
kill_tracked $VPID python3 TERM
nl_wait_gone $VPID
T_DOWN=$SECONDS
att_json newcomer "$K_NEW" "$K_NEW" 0 $APP
natlab_set_list_raw "[$LIST, \"$(att_url newcomer)\"]"
retry 15 refused_has 0 "$(att_url newcomer)" "the verifier is unreachable"
check "with the verifier down, n0 does not admit a new genuine entry: '$(refused 0 "$(att_url newcomer)")'" \
	refused_has 0 "$(att_url newcomer)" "the verifier is unreachable"
check "n0's /status says the verifier is down: '$(natlab_status 0 | jq -r .attestation.verifier_error)'" \
	test "$(natlab_status 0 | jq -r '.attestation.verifier_error // empty')" != ""
metrics() { ip netns exec "$(nl_ns 0)" curl -s -m 3 http://127.0.0.1:8081/metrics; }
check "n0's /metrics: verifier down, one peer admitted, this node quoted" \
	test "$(metrics | grep -E '^p2pwg_attest_(verifier_up|peers_admitted|quoted) ' | sort | tr '\n' ' ')" = \
	"p2pwg_attest_peers_admitted 1 p2pwg_attest_quoted 1 p2pwg_attest_verifier_up 0 "
# Stay down past n1's next quote (every MAXAGE/3 s), which n0 cannot verify.
retry $((MAXAGE / 3 + 5)) bash -c "[ \"\$(ip netns exec $NL_GW curl -s -m 2 --cacert $NL_DIR/ca.pem --resolve n1-8080.$NL_DOMAIN:443:$NL_GW_PUB $(nl_url 1) | jq -r .attestation.updated_at)\" != '$AT1' ]"
sleep $((NL_POLL + 1))
check "n1 re-quoted during the outage ($AT1 -> $(natlab_nodejson 1 | jq -r .attestation.updated_at))" \
	test "$(natlab_nodejson 1 | jq -r .attestation.updated_at)" != "$AT1"
for k in 0 1; do
	check "n$k keeps its verified peer through the outage: still configured, not refused, /test passing" \
		natlab_node_sees $k 0 1
done
check "no entry was admitted meanwhile (n0 has $(natlab_wg 0 peers | wc -l) peer)" \
	test "$(natlab_wg 0 peers | wc -l)" = 1
snapshot 0 1 >"$TMP/s.after"
check_sessions "the n0-n1 session is untouched by the outage (no new handshake, counters never dropped)" "$TMP/s.before" "$TMP/s.after"
echo "figure: verifier down for $((SECONDS - T_DOWN)) s"

# ==== 3. the verifier is back: the newcomer is admitted ====
att_json newcomer "$K_NEW" "$K_NEW" 0 $APP # freshly quoted
start_verifier || fail "the fake verifier did not restart"
if retry 20 has_peer 0 "$K_NEW"; then
	pass "once the verifier answers, n0 admits the new genuine entry"
else
	fail "n0 did not admit the new entry after the verifier came back: '$(refused 0 "$(att_url newcomer)")'"
fi
check "n0's /status no longer reports the verifier down" \
	test "$(natlab_status 0 | jq -r '.attestation.verifier_error')" = null
grep -h 'attest' "$(nl_dir 0)/controld.log" | sed 's/^/  n0| /' | head -20
echo "figure: attestation lab, start to end: $(nl_elapsed "$T0") s"
e2e_summary
