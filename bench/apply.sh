#!/bin/bash
# SPDX-License-Identifier: MIT
# Apply: wgagent's SetPeers (through p2pwg-agentctl) next to wireguard-tools on
# the same wireguard-go backend, each in a namespace of its own. Full: an empty
# interface gets P peers; one-peer change: one peer's endpoint moves among P.
# Each timing is the whole command (process start included), median of R runs.
# Then the same on kernel WireGuard in a VM (apply-vm.sh), unless APPLY_VM=0;
# skipped (said so) without QEMU or a cloud kernel.
# Usage: apply.sh WGAGENT AGENTCTL [PEERS [RUNS]]; prints "figure|name|value|unit".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib.sh"
WGAGENT=$(readlink -f "$1") CTL=$(readlink -f "$2") P=${3:-245} R=${4:-7}
ID=$$ TMP=$(mktemp -d /tmp/p2pwg-bench.XXXXXX)
chmod 755 "$TMP"
trap 'e2e_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
NS_A=bapply$ID-a NS_W=bapply$ID-w IF_A=ba$ID-a IF_W=ba$ID-w
netns_add "$NS_A"; netns_add "$NS_W"

agent_dir "$TMP/a"
ip netns exec "$NS_A" "$WGAGENT" -U $E2E_AGENT_UID -i "$IF_A" -s "$TMP/a/agent.sock" -d "$TMP/a/state" \
	-b userspace >"$TMP/a/agent.log" 2>&1 &
track_pid $! wgagent
retry 10 "$CTL" -s "$TMP/a/agent.sock" hello || { cat "$TMP/a/agent.log"; exit 1; }
[ -f "$TMP/a/wireguard-go.$IF_A.pid" ] && track_pid "$(cat "$TMP/a/wireguard-go.$IF_A.pid")" wireguard-go

# wg's interface: a wireguard-go of its own, as wg-quick would start it.
ip netns exec "$NS_W" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go "$IF_W" >/dev/null 2>&1
sleep 0.3
gopid=$(ip netns exec "$NS_W" ss -Hxlp 2>/dev/null | grep -o "\"wireguard-go\",pid=[0-9]*" | head -1 | cut -d= -f2)
[ -n "$gopid" ] && track_pid "$gopid" wireguard-go
umask 077
wg genkey >"$TMP/w.key"

keys=()
for ((i = 0; i < P; i++)); do keys+=("$(wg genkey | wg pubkey)"); done
peer_ip() { echo "10.88.0.$((10 + $1))"; } # the overlay /24 holds 245 peers
specs() { # MOVED: one peer's endpoint port +1
	local i
	for ((i = 0; i < P; i++)); do
		printf -- '--peer %s,endpoint=198.18.%d.%d:%d,allowed=%s/32,keepalive=25\n' "${keys[$i]}" \
			$((i / 200)) $((10 + i % 200)) $((51820 + (i == 0 ? $1 : 0))) "$(peer_ip $i)"
	done
}
conf() {
	local i
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51821\n' "$(cat "$TMP/w.key")"
	for ((i = 0; i < P; i++)); do
		printf '[Peer]\nPublicKey = %s\nEndpoint = 198.18.%d.%d:%d\nAllowedIPs = %s/32\nPersistentKeepalive = 25\n' \
			"${keys[$i]}" $((i / 200)) $((10 + i % 200)) $((51820 + (i == 0 ? $1 : 0))) "$(peer_ip $i)"
	done
}
mapfile -t S0 < <(specs 0 | tr '\n' ' ' | xargs -n2 echo)
mapfile -t S1 < <(specs 1 | tr '\n' ' ' | xargs -n2 echo)
conf 0 >"$TMP/c0.conf"; conf 1 >"$TMP/c1.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51821\n' "$(cat "$TMP/w.key")" >"$TMP/empty.conf"
A=(--address 10.88.0.9/32)
agentset() { "$CTL" -s "$TMP/a/agent.sock" -t 20000 set "${A[@]}" "$@" >/dev/null; }
# in_agent SPECS...: the ms the agent took to answer (agentctl -T), no process start.
in_agent() { "$CTL" -T -s "$TMP/a/agent.sock" -t 20000 set "${A[@]}" "$@" 2>&1 >/dev/null | awk '/answered in/ { print $4 }'; }
# ms CMD...: the command's wall time in ms (3 decimals).
ms() {
	local t0 t1
	t0=$(date +%s%N); "$@" || return 1; t1=$(date +%s%N)
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f\n", d / 1e6 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

full_a=() one_a=() full_i=() one_i=() full_w=() one_w=()
for ((r = 0; r < R; r++)); do
	agentset || exit 1
	full_a+=("$(ms agentset ${S0[@]})")
	one_a+=("$(ms agentset ${S1[@]})")
	agentset
	full_i+=("$(in_agent ${S0[@]})")
	one_i+=("$(in_agent ${S1[@]})")
	ip netns exec "$NS_W" wg setconf "$IF_W" "$TMP/empty.conf"
	full_w+=("$(ms ip netns exec "$NS_W" wg setconf "$IF_W" "$TMP/c0.conf")")
	one_w+=("$(ms ip netns exec "$NS_W" wg syncconf "$IF_W" "$TMP/c1.conf")")
	ip netns exec "$NS_W" wg setconf "$IF_W" "$TMP/c0.conf"
done
# The same command that does nothing: the floor both sides pay to start.
quiet() { "$@" >/dev/null; }
noop_w=$(for r in 1 2 3; do ms quiet ip netns exec "$NS_W" wg show "$IF_W" listen-port; done | median)
n=$("$CTL" -s "$TMP/a/agent.sock" get | grep -c '^ *peer') || true
fa=$(printf '%s\n' "${full_a[@]}" | median) oa=$(printf '%s\n' "${one_a[@]}" | median)
fw=$(printf '%s\n' "${full_w[@]}" | median) ow=$(printf '%s\n' "${one_w[@]}" | median)
echo "figure|apply $P peers, wgagent SetPeers (agentctl)|$fa|ms"
echo "figure|apply $P peers, wgagent's answer to SetPeers (agentctl -T)|$(printf '%s\n' "${full_i[@]}" | median)|ms"
echo "figure|apply $P peers, wg setconf|$fw|ms"
echo "figure|apply ratio wgagent / wg setconf|$(awk -v a=$fa -v b=$fw 'BEGIN { printf "%.2f", a / b }')|x"
echo "figure|one-peer change among $P, wgagent SetPeers|$oa|ms"
echo "figure|one-peer change among $P, wgagent's answer to SetPeers (agentctl -T)|$(printf '%s\n' "${one_i[@]}" | median)|ms"
echo "figure|one-peer change among $P, wg syncconf|$ow|ms"
echo "figure|one-peer ratio wgagent / wg syncconf|$(awk -v a=$oa -v b=$ow 'BEGIN { printf "%.2f", a / b }')|x"
echo "figure|ip netns exec wg show (process start floor)|$noop_w|ms"
echo "info|agent ends with $n peers listed; runs $R, median; backend wireguard-go"

# Kernel WireGuard, the same figures inside the VM, with the namespaces gone.
[ "${APPLY_VM:-1}" = 1 ] || exit 0
e2e_cleanup
bash "$HERE/apply-vm.sh" "$WGAGENT" "$CTL" "$P" "$R" >"$TMP/vm.out" 2>&1
rc=$?
grep -E '^(figure|info)\|' "$TMP/vm.out"
case $rc in
0) ;;
77) echo "info|kernel rows skipped: $(grep -m1 skipped "$TMP/vm.out")" ;;
*)
	sed 's/^/# vm: /' "$TMP/vm.out" | tail -30
	echo "figure|kernel (VM) apply failed (exit $rc)|-|"
	exit 1
	;;
esac
