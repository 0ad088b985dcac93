#!/bin/bash
# SPDX-License-Identifier: MIT
# The NAT lab at size: ten nodes (20 + 2 namespaces, 30 daemons) behind
# alternating port-preserving and port-remapping NATs must converge to a full
# mesh on this machine. Prints the time from start to the full mesh.
# Usage: natlab_scale_e2e.sh WGAGENT CONTROLD AGENTCTL
# NATLAB_NODES sets the size (default 10), NATLAB_NAT the kinds (default easy,remap).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
N=${NATLAB_NODES:-10}
KINDS=${NATLAB_NAT:-easy,remap}
BOUND=${NATLAB_BOUND:-90}

TMP=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
ALL=$(seq 0 $((N - 1)))
T0=$(date +%s.%N)
natlab_up "$N" "$KINDS" || { fail "nodes did not start"; exit 1; }
e2e_log "$N nodes started in $(nl_elapsed "$T0") s ($KINDS)"
if retry "$BOUND" natlab_full_mesh $ALL; then
	T_MESH=$(nl_elapsed "$T0")
	pass "full mesh of $N nodes within $BOUND s: every /status shows all $((N - 1)) peers direct, /test passing"
	echo "figure: time to full mesh, $N nodes: $T_MESH s (from starting the agents; poll ${NL_POLL} s, test ${NL_TEST} s)"
else
	fail "no full mesh of $N nodes within $BOUND s"
	natlab_table $ALL
fi
for k in $ALL; do
	n=$(natlab_wg $k latest-handshakes | awk '$2 > 0' | wc -l)
	ovl=$(natlab_status $k | jq -r .node.overlay_ip)
	check "n$k: address 10.88.0.$((10 + k)) of its position, a handshake with each of its $((N - 1)) peers ($ovl, $n)" \
		test "$ovl $n" = "10.88.0.$((10 + k))/32 $((N - 1))"
done
doc=$(natlab_nodejson 1)
check "n1 (${NL_KIND[1]}) publishes its STUN-discovered endpoint ($(echo "$doc" | jq -c '[.public_ip, .public_port, .nat]'))" \
	test "$(echo "$doc" | jq -r '"\(.public_ip):\(.public_port)"')" = \
	"198.18.0.11:$([ "${NL_KIND[1]}" = remap ] && echo 40001 || echo 51820)"
load=$(cut -d' ' -f1-3 /proc/loadavg)
e2e_log "load average: $load"
e2e_summary
