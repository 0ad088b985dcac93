#!/bin/bash
# SPDX-License-Identifier: MIT
# The NAT lab: a p2pwg mesh behind real NATs on this machine, in network
# namespaces with veth links and nftables (see tests/e2e/natlab-lib.sh for the
# topology). Starts the nodes, waits for the mesh, prints who reaches whom,
# then keeps the lab until Ctrl-C (or runs a command in it), and removes
# everything it made, also after a failure or Ctrl-C. Run as root, after
# building (deploy/demo.sh installs, builds and runs this).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<USAGE
Usage: deploy/natlab.sh [options] [-- COMMAND [ARGS...]]
  --nodes N         how many nodes (default 3)
  --nat KIND,...    each node's NAT, cycled over the nodes (default easy,remap,symmetric):
                      easy       port-preserving (nft masquerade)
                      remap      port-remapping, endpoint-independent (snat to <ip>:40000+K)
                      symmetric  a new port per destination (masquerade fully-random)
                      open       no NAT: the node sits on the internet bridge
  --build DIR       where wgagent, controld and p2pwg-agentctl are (default build/)
  --logs            show every controld's log, prefixed by node, until the mesh settles
  --keep            after the status table, keep the lab until Ctrl-C (the default)
  --exit            after the status table, remove the lab and exit
  --wait SECS       how long to wait for the mesh (default 60)
  -- COMMAND        run COMMAND with the lab up (NATLAB_PREFIX and NATLAB_DIR set),
                    then remove the lab; exits with COMMAND's status
Intervals (seconds): NL_POLL (default 3), NL_TEST (3), NL_STUN (10) in the environment.
USAGE
}

NODES=3 NAT=easy,remap,symmetric BUILD=$ROOT/build LOGS=0 KEEP=1 WAIT=60
while [ $# -gt 0 ]; do
	case $1 in
	--nodes) NODES=${2:-}; shift 2 ;;
	--nat) NAT=${2:-}; shift 2 ;;
	--build) BUILD=${2:-}; shift 2 ;;
	--logs) LOGS=1; shift ;;
	--keep) KEEP=1; shift ;;
	--exit) KEEP=0; shift ;;
	--wait) WAIT=${2:-}; shift 2 ;;
	--) shift; break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "natlab: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case $NODES in '' | *[!0-9]*) echo "natlab: --nodes wants a number" >&2; exit 2 ;; esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 40 ] || { echo "natlab: --nodes from 1 to 40" >&2; exit 2; }
case $WAIT in '' | *[!0-9]*) echo "natlab: --wait wants a number of seconds" >&2; exit 2 ;; esac
for kind in ${NAT//,/ }; do
	case $kind in easy | remap | symmetric | open) ;; *)
		echo "natlab: unknown NAT kind '$kind' (easy, remap, symmetric, open)" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "natlab: run as root (it makes network namespaces)" >&2; exit 2; }
for b in wgagent controld p2pwg-agentctl; do
	[ -x "$BUILD/$b" ] || { echo "natlab: $BUILD/$b not found: build first (or run deploy/demo.sh)" >&2; exit 2; }
done
for tool in wireguard-go wg turnserver curl nginx openssl setpriv nft jq; do
	command -v $tool >/dev/null || { echo "natlab: $tool missing: run deploy/install-deps.sh" >&2; exit 2; }
done

NL_POLL=${NL_POLL:-3} NL_TEST=${NL_TEST:-3} NL_STUN=${NL_STUN:-10}
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/e2e/natlab-lib.sh"

LABDIR=$(mktemp -d /tmp/p2pwg-natlab.XXXXXX)
trap 'natlab_unfollow_logs; natlab_cleanup; rm -rf "$LABDIR"; echo "natlab: removed every namespace, process and file of the lab"' EXIT
trap 'exit 130' INT TERM

natlab_init $$ "$LABDIR" "$BUILD/wgagent" "$BUILD/controld" "$BUILD/p2pwg-agentctl" || exit 1
IFS=, read -r -a KINDS <<<"$NAT"
echo "== the NAT lab ($NL_P, files in $LABDIR)"
echo "   internet 198.18.0.0/24; STUN (coturn) at $NL_STUN1:3478 and $NL_STUN2:3478"
echo "   gateway  nginx with a lab CA: https://gist.$NL_DOMAIN/list.json and https://n<K>-8080.$NL_DOMAIN/"
for ((k = 0; k < NODES; k++)); do
	kind=${KINDS[$((k % ${#KINDS[@]}))]}
	case $kind in
	easy) what="port-preserving NAT (masquerade) at $(nl_pub $k)" ;;
	remap) what="port-remapping NAT (snat to $(nl_pub $k):$((40000 + k)))" ;;
	symmetric) what="symmetric NAT (masquerade fully-random) at $(nl_pub $k)" ;;
	open) what="no NAT, directly at $(nl_pub $k)" ;;
	esac
	printf '   n%-2s      behind a %s, listed as %s\n' $k "$what" "$(nl_url $k)"
done
echo

for ((k = 0; k < NODES; k++)); do
	natlab_add_node $k "${KINDS[$((k % ${#KINDS[@]}))]}" || exit 1
done
natlab_set_list $(seq 0 $((NODES - 1)))
[ $LOGS = 1 ] && natlab_follow_logs $(seq 0 $((NODES - 1)))
T0=$(date +%s.%N)
for ((k = 0; k < NODES; k++)); do natlab_start_agent $k || exit 1; done
for ((k = 0; k < NODES; k++)); do natlab_start_controld $k; done

if retry "$WAIT" natlab_expected_ok "$NODES"; then
	T_MESH=$(nl_elapsed "$T0")
	MESH_OK=1
else
	MESH_OK=0
fi
# The pairs with a symmetric NAT go through the relay, over the gateway.
all_pairs() { [ "$(natlab_pairs "$NODES" | wc -w)" = $((NODES * (NODES - 1))) ]; }
if retry "$WAIT" all_pairs; then T_ALL=$(nl_elapsed "$T0"); else T_ALL=""; fi
sleep $((NL_TEST + 1)) # one more /test round, so that pairs that cannot connect show it
natlab_unfollow_logs
echo
echo "== n0 as wireguard-tools sees it (wg show)"
natlab_wg 0
echo
echo "== who reaches whom, from each controld's /status (http://127.0.0.1:8081/status inside each node, a loopback-only listener)"
natlab_table $(seq 0 $((NODES - 1)))
echo
natlab_matrix "$NODES"
echo
expected=0 total=0 down_expected=0
for ((k = 0; k < NODES; k++)); do
	for ((j = k + 1; j < NODES; j++)); do
		total=$((total + 1))
		if natlab_expect_direct $k $j; then expected=$((expected + 1)); else down_expected=$((down_expected + 1)); fi
	done
done
if [ $MESH_OK = 1 ]; then
	echo "natlab: all $expected pairs that can punch through connected directly in $T_MESH s."
else
	echo "natlab: NOT every pair that should connect did within $WAIT s (see the table; logs in $LABDIR/n*/)."
fi
if [ $down_expected -gt 0 ]; then
	if [ -n "$T_ALL" ]; then
		echo "natlab: the other $down_expected of $total pairs involve a symmetric NAT, where hole punching cannot work: they connected through the relay (the gateway's HTTPS path); every pair answered /test in $T_ALL s."
	else
		echo "natlab: NOT every pair with a symmetric NAT connected through the relay within $WAIT s (see the table)."
	fi
fi

if [ $# -gt 0 ]; then
	export NATLAB_PREFIX=$NL_P NATLAB_DIR=$LABDIR
	"$@"
	exit $?
fi
if [ $KEEP = 1 ]; then
	cat <<HINT

The lab stays up until Ctrl-C. To look inside (node K is namespace $NL_P-nK):
  ip netns exec $(nl_ns 0) wg show
  ip netns exec $(nl_ns 0) curl -s 127.0.0.1:8081/status | jq
  ip netns exec $(nl_ns 0) ping 10.88.0.11
  tail -f $LABDIR/n0/controld.log
HINT
	while :; do
		sleep 3600 &
		track_pid $! sleep
		wait $!
	done
fi
[ $MESH_OK = 1 ]
