#!/bin/bash
# SPDX-License-Identifier: MIT
# p2pwg-dstack-key against a fake dstack guest agent: the key it writes is
# wgagent's (mode 0600, its user's, `wg genkey` format; the agent starts with
# it and reports its public key), the same instance gets the same key again
# (a lost volume gives the node back its identity), another instance id gets
# another key, and without a guest agent nothing is written (exit 0). ~3 s.
# Usage: dstack_key_e2e.sh DSTACK_KEY WGAGENT AGENTCTL
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg python3 setpriv stat; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
TOOL=$(readlink -f "$1") WGAGENT=$(readlink -f "$2") CTL=$(readlink -f "$3")
FAKE=$(readlink -f "$HERE/../tools/fakedstack.py")
U=$E2E_AGENT_UID
TMP=$(mktemp -d /tmp/p2pwg-e2e.XXXXXX)
chmod 755 "$TMP"
trap 'e2e_cleanup; rm -f "/var/run/wireguard/dk$$.sock"; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

fake_agent() { # NAME INSTANCE_ID
	python3 "$FAKE" agent --socket "$TMP/$1.sock" --secret "kms-$$" --app-id a1a1 --instance-id "$2" >>"$TMP/$1.log" 2>&1 &
	track_pid $! python3
	disown $!
	retry 10 test -S "$TMP/$1.sock"
}
derive() { # SOCKET DIR
	setpriv --reuid=$U --regid=$U --clear-groups "$TOOL" --socket "$1" --dir "$2"
}
agent_dir "$TMP/s1" && chmod 700 "$TMP/s1"
agent_dir "$TMP/s2" && chmod 700 "$TMP/s2"
agent_dir "$TMP/s3" && chmod 700 "$TMP/s3"

out=$(derive "$TMP/none.sock" "$TMP/s1" 2>&1)
check "without a guest agent it exits 0 and writes nothing ($out)" test ! -e "$TMP/s1/private.key"

fake_agent a 0101010101010101010101010101010101010101 || { fail "fake guest agent"; exit 1; }
fake_agent b 0202020202020202020202020202020202020202 || { fail "fake guest agent"; exit 1; }
derive "$TMP/a.sock" "$TMP/s1" >"$TMP/out" 2>&1
check "it derives the key from /Info's instance id and /GetKey ($(cat "$TMP/out"))" test -s "$TMP/s1/private.key"
check "the key file is wgagent's user's, mode 0600 ($(stat -c '%u %a' "$TMP/s1/private.key"))" \
	test "$(stat -c '%u %a' "$TMP/s1/private.key")" = "$U 600"
PUB=$(wg pubkey <"$TMP/s1/private.key")
check "it is in \`wg genkey\` format (wg pubkey reads it: $PUB)" test -n "$PUB"
check "the key is never printed" bash -c "! grep -qF '$(cat "$TMP/s1/private.key")' '$TMP/out'"
derive "$TMP/a.sock" "$TMP/s2" >/dev/null 2>&1
check "a lost volume gives the same instance the same key again" test "$(wg pubkey <"$TMP/s2/private.key")" = "$PUB"
derive "$TMP/b.sock" "$TMP/s3" >/dev/null 2>&1
check "another instance of the app gets another key" test "$(wg pubkey <"$TMP/s3/private.key")" != "$PUB"

NS=dk$$
netns_add "$NS"
agent_dir "$TMP/run"
ip netns exec "$NS" "$WGAGENT" -U $U -i "dk$$" -p 51820 -s "$TMP/run/agent.sock" -d "$TMP/s1" -b userspace >"$TMP/agent.log" 2>&1 &
track_pid $! wgagent
disown $!
retry 10 test -S "$TMP/run/agent.sock"
[ -f "$TMP/run/wireguard-go.dk$$.pid" ] && track_pid "$(cat "$TMP/run/wireguard-go.dk$$.pid")" wireguard-go
check "wgagent starts with the derived key and reports its public key" \
	bash -c "'$CTL' -s '$TMP/run/agent.sock' hello | grep -qF 'public_key $PUB'"
[ "$E2E_FAILS" = 0 ] || cat "$TMP/agent.log"
e2e_summary
