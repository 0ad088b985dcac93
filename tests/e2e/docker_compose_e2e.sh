#!/bin/bash
# SPDX-License-Identifier: MIT
# The node as dstack users deploy it: both images built (Debian 12 base from
# debootstrap, Debian's docker.io engine), docker-compose.yml brought up with
# Debian's docker-compose as node 2 of the NAT lab, behind its own NAT router,
# next to two plain-process nodes. /test must pass both ways, the key must
# survive a crash of wgagent (restart policy), `docker-compose restart` and
# `down && up`, and `docker inspect` must
# show the user, capabilities, read-only root and no privileged mode.
# Usage: docker_compose_e2e.sh WGAGENT CONTROLD AGENTCTL
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
. "$HERE/natlab-lib.sh"
. "$HERE/natlab-docker.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root"; exit 77; fi
# Only a kernel that cannot hold containers is a reason to skip.
if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null ||
	! grep -qw cgroup /proc/filesystems && ! grep -qw cgroup2 /proc/filesystems ||
	! unshare --net --pid --mount --uts --ipc --fork true 2>/dev/null; then
	echo "skipped: this kernel cannot run containers (overlay, cgroups or namespaces missing)"
	exit 77
fi
for tool in /usr/sbin/dockerd $DK_DOCKER $DK_COMPOSE debootstrap nsenter wireguard-go turnserver nginx jq; do
	command -v $tool >/dev/null || { echo "missing $tool: run deploy/install-deps.sh"; exit 1; }
done
BOUND=${NATLAB_BOUND:-60}
D=2 # the compose node
NL_ID=$$ # natlab_init sets it again; the cleanup needs it earlier

TMP=$(mktemp -d /tmp/p2pwg-docker.XXXXXX)
trap 'dk_cleanup; natlab_cleanup; natlab_keep_logs_on_failure; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# ---- the images ----
T0=$(date +%s.%N)
dk_engine_start "$TMP/engine-build" || { fail "dockerd (build) did not start"; exit 1; }
if dk_build_images "$SRC"; then
	pass "both images built ($(nl_elapsed "$T0") s, base and layer cache in $DK_CACHE)"
	echo "figure: image builds incl. base: $(nl_elapsed "$T0") s"
else
	fail "the images did not build"; exit 1
fi
"$DK_DOCKER" images --format 'figure: image {{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'p2pwg-(wgagent|controld|base)'
dk_engine_stop

# ---- the lab, two plain nodes and the compose node ----
natlab_init $$ "$TMP" "$1" "$2" "$3" || { fail "the lab could not be built"; exit 1; }
netns_add "$NL_P-dk" || exit 1
dk_engine_start "$TMP/engine" "$NL_P-dk" || { fail "dockerd (run) did not start"; exit 1; }
natlab_add_node 0 easy && natlab_add_node 1 remap || { fail "lab nodes"; exit 1; }
dk_node_init $D easy "$TMP" "$SRC" || { fail "compose node's router"; exit 1; }
natlab_set_list 0 1 $D
natlab_start_node 0 && natlab_start_node 1 || { fail "plain nodes did not start"; exit 1; }
T0=$(date +%s.%N)
dk_up || { fail "docker-compose up"; exit 1; }
e2e_log "compose node up and attached in $(nl_elapsed "$T0") s"

mesh() { retry "$BOUND" natlab_full_mesh 0 1 $D; }
if mesh; then
	pass "the compose node and both plain nodes: /test passes every way ($(nl_elapsed "$T0") s)"
	echo "figure: docker-compose up to full mesh: $(nl_elapsed "$T0") s"
else
	fail "no full mesh with the compose node within $BOUND s"
	natlab_table 0 1 $D
fi
KEY=$(dk_pubkey)
check "n$D's key is its wgagent's ($KEY)" test -n "$KEY"
doc=$(natlab_nodejson $D)
check "n$D's node.json through the gateway shows its router's endpoint ($(echo "$doc" | jq -c '[.public_ip, .public_port, .nat]'))" \
	test "$(echo "$doc" | jq -r '"\(.public_ip):\(.public_port)"')" = "$(nl_pub $D):51820"
check "port 8080 is published by the engine (/healthz on the engine's side)" \
	ip netns exec "$NL_P-dk" curl -sf -m 3 http://127.0.0.1:8080/healthz

# p2pwg-status inside the controld container, on the local status listener.
out=$("$DK_DOCKER" exec "$(dk_cid controld)" p2pwg-status); rc=$?
echo "$out"
check "p2pwg-status in the container: every peer direct with /test ok (exit $rc)" \
	test "$rc $(echo "$out" | grep -cE '^[0-9]+ +n[01] .* ok +direct')" = "0 2"

# ---- docker inspect: what the compose file promises ----
ins() { "$DK_DOCKER" inspect -f "$2" "$(dk_cid "$1")"; }
A_CAPS=$(ins wgagent '{{range .HostConfig.CapAdd}}{{.}} {{end}}')
NETMODE="container:$(dk_cid net)"
check "wgagent: user 61820, cap_drop ALL, cap_add only NET_ADMIN NET_RAW SETPCAP ($A_CAPS), read-only, not privileged, the node's network" \
	test "$(ins wgagent '{{.Config.User}} {{.HostConfig.CapDrop}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}}')|$(echo $A_CAPS | tr ' ' '\n' | sort | tr '\n' ' ')" \
	= "61820:61820 [ALL] true false $NETMODE|NET_ADMIN NET_RAW SETPCAP "
check "controld: user 61821, cap_drop ALL and no cap_add, no-new-privileges, read-only, not privileged, the node's network" \
	test "$(ins controld '{{.Config.User}} {{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}} {{.HostConfig.SecurityOpt}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}}')" \
	= "61821:61821 [ALL] [] [no-new-privileges:true] true false $NETMODE"
check "net (holds the namespace): user 65534, cap_drop ALL, no cap_add, no-new-privileges, read-only, not privileged, a bridge network, not the host's" \
	test "$(ins net '{{.Config.User}} {{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}} {{.HostConfig.SecurityOpt}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}}')" \
	= "65534:65534 [ALL] [] [no-new-privileges:true] true false ${DK_PROJECT}_default"
# And what the kernel says of the running processes.
capeff() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
apid=$(pgrep -P "$(dk_pid wgagent)" -x wgagent || dk_pid wgagent)
cpid=$(dk_pid controld)
check "wgagent runs as uid 61820 with CAP_NET_ADMIN only, bounding set too, no_new_privs ($(capeff $apid CapEff)/$(capeff $apid CapBnd))" \
	test "$(capeff $apid Uid | cut -f1) $(capeff $apid CapEff) $(capeff $apid CapBnd) $(capeff $apid NoNewPrivs)" = "61820 0000000000001000 0000000000001000 1"
check "controld runs as uid 61821 with no capability at all ($(capeff $cpid CapEff)/$(capeff $cpid CapBnd))" \
	test "$(capeff $cpid Uid | cut -f1) $(capeff $cpid CapEff) $(capeff $cpid CapBnd) $(capeff $cpid NoNewPrivs)" = "61821 0000000000000000 0000000000000000 1"
check "the root filesystems are read-only inside (touch /usr fails in both)" \
	bash -c "! $DK_DOCKER exec $(dk_cid wgagent) touch /usr/x 2>/dev/null && ! $DK_DOCKER exec $(dk_cid controld) touch /usr/x 2>/dev/null"

# ---- a crash: the restart policy brings wgagent back into the node ----
T0=$(date +%s.%N)
old=$(dk_cid wgagent)
apid=$(pgrep -P "$(dk_pid wgagent)" -x wgagent)
kill_tracked "$apid" wgagent KILL
retry 30 bash -c "[ \"\$($DK_DOCKER inspect -f '{{.RestartCount}} {{.State.Running}}' $old)\" = '1 true' ]" ||
	fail "wgagent's container was not restarted after its crash"
dk_node_attach || fail "attach after the crash"
if mesh; then pass "wgagent killed (-9): restarted by its restart policy, full mesh again ($(nl_elapsed "$T0") s)"; else
	fail "no mesh after wgagent crashed and was restarted"; natlab_table 0 1 $D; dk_compose logs --tail 30; fi
check "after wgagent's crash: the same key ($(dk_pubkey))" test "$(dk_pubkey)" = "$KEY"
check "after wgagent's crash: controld was not restarted (it kept the node's network)" \
	test "$(ins controld '{{.RestartCount}}')" = 0

# ---- the key survives restart and down/up ----
T0=$(date +%s.%N)
# One service at a time, as the README says: docker-compose 1.29 restarts all
# services at once, and a container cannot join the network of one that is
# not up yet.
dk_compose restart -t 5 wgagent >>"$TMP/compose.log" 2>&1 &&
	dk_compose restart -t 5 controld >>"$TMP/compose.log" 2>&1 && dk_node_attach ||
	fail "docker-compose restart wgagent, then controld"
if mesh; then pass "after docker-compose restart (wgagent, then controld): full mesh again ($(nl_elapsed "$T0") s)"; else
	fail "no mesh after restart"; natlab_table 0 1 $D; dk_compose logs --tail 30; fi
check "after docker-compose restart: the same key ($(dk_pubkey))" test "$(dk_pubkey)" = "$KEY"
T0=$(date +%s.%N)
dk_compose down -t 5 >>"$TMP/compose.log" 2>&1 || fail "docker-compose down"
dk_up || fail "docker-compose up after down"
if mesh; then pass "after docker-compose down && up: full mesh again ($(nl_elapsed "$T0") s)"; else
	fail "no mesh after down && up"; natlab_table 0 1 $D; dk_compose logs --tail 30; fi
check "after docker-compose down && up: the same key, kept in the volume ($(dk_pubkey))" test "$(dk_pubkey)" = "$KEY"
check "n0 and n1 see n$D's key unchanged" bash -c \
	"[ \"\$(ip netns exec $(nl_ns 0) wg show $(nl_if 0) peers | grep -cxF '$KEY')\" = 1 ]"
e2e_summary
