#!/bin/bash
# SPDX-License-Identifier: MIT
# The main job, as it stands: install, build, then start two wgagents in
# throw-away network namespaces, join them with a WireGuard tunnel through the
# agent protocol, and show their state. Everything it makes is removed on exit.
# Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
AGENT=$ROOT/build/wgagent CTL=$ROOT/build/p2pwg-agentctl
. "$ROOT/tests/e2e/lib.sh"

ID=$$
TMP=$(mktemp -d /tmp/p2pwg-demo.XXXXXX)
trap 'e2e_cleanup; rm -rf "$TMP"; echo "demo: cleaned up"' EXIT
trap 'exit 130' INT TERM

netns_add p2d$ID-a; netns_add p2d$ID-b
ip link add p2d$ID-va netns p2d$ID-a type veth peer name p2d$ID-vb netns p2d$ID-b
ip -n p2d$ID-a addr add 198.18.0.1/24 dev p2d$ID-va; ip -n p2d$ID-a link set p2d$ID-va up
ip -n p2d$ID-b addr add 198.18.0.2/24 dev p2d$ID-vb; ip -n p2d$ID-b link set p2d$ID-vb up

for n in a b; do
	mkdir -p "$TMP/$n"
	ip netns exec p2d$ID-$n "$AGENT" -i p2d$ID-w$n -s "$TMP/$n/agent.sock" -d "$TMP/$n/state" \
		>"$TMP/$n/log" 2>&1 &
	pid=$!
	track_pid $pid wgagent
	tail -n +1 -f --pid=$pid "$TMP/$n/log" | sed -u "s/^/node-$n | /" &
	retry 10 test -S "$TMP/$n/agent.sock"
	[ -f "$TMP/$n/wireguard-go.p2d$ID-w$n.pid" ] && track_pid "$(cat "$TMP/$n/wireguard-go.p2d$ID-w$n.pid")" wireguard-go
done
KEY_A=$("$CTL" -s "$TMP/a/agent.sock" hello | awk '/^version/ {print $4}')
KEY_B=$("$CTL" -s "$TMP/b/agent.sock" hello | awk '/^version/ {print $4}')
"$CTL" -s "$TMP/a/agent.sock" set --address 10.88.0.10/24 \
	--peer "$KEY_B,endpoint=198.18.0.2:51820,allowed=10.88.0.11/32,keepalive=25" >/dev/null
"$CTL" -s "$TMP/b/agent.sock" set --address 10.88.0.11/24 \
	--peer "$KEY_A,endpoint=198.18.0.1:51820,allowed=10.88.0.10/32,keepalive=25" >/dev/null
retry 15 ip netns exec p2d$ID-a ping -c1 -W1 10.88.0.11
echo
echo "== node a pings node b over the tunnel"
ip netns exec p2d$ID-a ping -c 3 -i 0.3 10.88.0.11
echo "== node a fetches node b's /test over the tunnel"
ip netns exec p2d$ID-a curl -s http://10.88.0.11:8000/test; echo
echo "== node a, as the agent reports it (p2pwg-agentctl get)"
"$CTL" -s "$TMP/a/agent.sock" get
echo "== node a, as wireguard-tools reads it (wg show)"
ip netns exec p2d$ID-a wg show p2d$ID-wa
sleep 0.3
