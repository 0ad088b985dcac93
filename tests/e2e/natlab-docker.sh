# SPDX-License-Identifier: MIT
# The compose node in the NAT lab: a Docker engine of the test's own, the
# Debian 12 base image made with debootstrap, both p2pwg images, and a
# docker-compose node plumbed into the lab as node K. Source lib.sh and
# natlab-lib.sh first.
#
# The engine (Debian's docker.io) runs twice, on one data root kept in
# /var/cache/p2pwg/docker so image layers are reused between runs:
#   - to build, in the host's network namespace with --bridge=none and
#     --iptables=false: it touches no interface and no firewall rule of the
#     host, and `docker build --network host` lets apt-get reach the mirror;
#   - to run the node, inside a network namespace of the lab (<P>-dk): the
#     compose network, its bridge, NAT rules and the published port 8080 live
#     there and go with it.
# Each engine is stopped by its PID; the namespace is removed with the lab.

DK_CACHE=${P2PWG_CACHE:-/var/cache/p2pwg}
DK_DOCKER=/usr/bin/docker # /usr/local/bin/docker may be another client
DK_COMPOSE=/usr/bin/docker-compose
DK_SUITE=bookworm
DK_PID=""
DK_NET_SERVICE=net # the service that holds the node's network namespace

# The mirror apt uses on this machine (deb822 or one-line sources).
dk_mirror() {
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	[ -n "$m" ] || m=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
	echo "${m:-http://deb.debian.org/debian}"
}

# dk_rootfs_tarball NAME [PACKAGE,...]: a Debian 12 minbase root filesystem
# (plus those packages) as a tarball, made once a week (the key) and reused
# when present; prints its path.
dk_rootfs_tarball() {
	local name=$1 include=${2:-} key tar root
	# Weekly, and per package list: a changed list makes a new root.
	key=$DK_SUITE-slim-$(date -u +%G-w%V)-$(printf '%s' "$include" | md5sum | cut -c1-8)
	tar=$DK_CACHE/$name-$key.tar
	[ -s "$tar" ] && { echo "$tar"; return 0; }
	mkdir -p "$DK_CACHE" || return 1
	root=$(mktemp -d "$DK_CACHE/root.XXXXXX") || return 1
	debootstrap --variant=minbase ${include:+--include="$include"} "$DK_SUITE" "$root" "$(dk_mirror)" \
		>"$DK_CACHE/debootstrap-$name.log" 2>&1 ||
		{ tail -20 "$DK_CACHE/debootstrap-$name.log" >&2; rm -rf "$root"; return 1; }
	# As Debian's -slim images: no apt lists or caches, and dpkg leaves out
	# documentation and translations, now and in every later install.
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
	printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
		'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
		>"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
	chmod 755 "$root" # mktemp made it 0700; it becomes /
	if ! tar -C "$root" --numeric-owner -cf "$tar.new" . || ! mv -f "$tar.new" "$tar"; then
		rm -rf "$root" "$tar.new"
		return 1
	fi
	rm -rf "$root"
	# Only the newest tarball of each name is kept.
	find "$DK_CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$key.tar" -delete
	echo "$tar"
}

dk_base_tarball() { dk_rootfs_tarball base; }

# dk_engine_start RUNDIR [NETNS]: Debian's dockerd with its own socket,
# pid file, exec root and data root; in NETNS when given. In the host's
# namespace it creates no bridge and no iptables rule (builds use the host's
# network). Sets DK_PID and DOCKER_HOST.
dk_engine_start() {
	local dir=$1 ns=${2:-}
	mkdir -p "$dir" "$DK_CACHE/docker" || return 1
	# One engine at a time on the shared data root (another test run waits).
	if [ -z "${DK_LOCK_FD:-}" ]; then
		exec {DK_LOCK_FD}>"$DK_CACHE/lock" && flock -w 900 "$DK_LOCK_FD" ||
			{ echo "natlab-docker: $DK_CACHE is busy"; return 1; }
	fi
	DK_RUN=$dir
	if [ -n "$ns" ]; then
		set -- nsenter --net="/run/netns/$ns" /usr/sbin/dockerd
	else
		set -- /usr/sbin/dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false
	fi
	"$@" --data-root "$DK_CACHE/docker" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
		-H "unix://$dir/docker.sock" --containerd-namespace p2pwg --log-level warn \
		>>"$dir/dockerd.log" 2>&1 {DK_LOCK_FD}>&- &
	DK_PID=$!
	track_pid $DK_PID dockerd
	disown $DK_PID
	export DOCKER_HOST=unix://$dir/docker.sock
	retry 30 "$DK_DOCKER" version || { echo "natlab-docker: dockerd did not start:"; tail -20 "$dir/dockerd.log"; return 1; }
}

# Stop the engine by its PID and wait for it (its containerd goes with it).
dk_engine_stop() {
	[ -n "$DK_PID" ] || return 0
	kill_tracked "$DK_PID" dockerd TERM
	local i
	for i in $(seq 1 150); do
		[ -d "/proc/$DK_PID" ] || break
		sleep 0.2
	done
	kill_tracked "$DK_PID" dockerd KILL
	DK_PID=""
	# dockerd leaves the bind mount of its network namespace under its exec root.
	awk -v d="$DK_RUN/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r umount
}

# dk_base_image: the base tarball imported as p2pwg-base:<key>; prints the tag.
dk_base_image() {
	local tar tag
	tar=$(dk_base_tarball) || return 1
	tag=p2pwg-base:$(basename "$tar" .tar | sed 's/^base-//')
	"$DK_DOCKER" image inspect "$tag" >/dev/null 2>&1 || "$DK_DOCKER" import "$tar" "$tag" >/dev/null || return 1
	echo "$tag"
}

# dk_build_images SRC: both images from SRC's Dockerfiles on the local base,
# tagged as docker-compose.yml names them. The shared build stage is tagged
# too, so pruning what is left untagged never drops its cached layers.
dk_build_images() {
	local src=$1 base
	base=$(dk_base_image) || return 1
	dk_build "$base" --target build -f "$src/Dockerfile.wgagent" -t p2pwg-build:latest "$src" &&
		dk_build "$base" -f "$src/Dockerfile.wgagent" -t p2pwg-wgagent:latest "$src" &&
		dk_build "$base" -f "$src/Dockerfile.controld" -t p2pwg-controld:latest "$src" || return 1
	# Earlier builds' images and older bases: the cache does not grow.
	"$DK_DOCKER" image prune -f >/dev/null
	"$DK_DOCKER" images --format '{{.Repository}}:{{.Tag}}' p2pwg-base |
		grep -vx "$base" | xargs -r "$DK_DOCKER" rmi >/dev/null
}

dk_build() { # BASE ARGS...: apt-get in the build reaches the mirror through the host's network
	local base=$1; shift
	"$DK_DOCKER" build -q --network host --build-arg BASE="$base" "$@" >/dev/null
}

# ---- the compose node as node K of the lab ----

# dk_node_init K KIND DIR SRC: node K's router (as natlab_add_node makes it)
# but no namespace of its own: the wgagent container's takes its place, under
# the same name, once it runs (dk_node_attach). Writes the compose override
# that points the node at the lab (its names, CA, interface).
dk_node_init() {
	local k=$1 kind=$2 i
	DK_K=$k DK_DIR=$3 DK_SRC=$4
	natlab_add_node "$k" "$kind" || return 1
	# Its links die with the namespace; dk_node_attach makes them anew.
	ip netns del "$(nl_ns "$k")"
	DK_PROJECT=p2l$NL_ID
	{
		echo 'version: "2.4"'
		echo 'services:'
		echo '  net:'
		echo '    extra_hosts:'
		echo "      - gist.$NL_DOMAIN:100.64.$k.1"
		for ((i = 0; i < 10; i++)); do echo "      - n$i-8080.$NL_DOMAIN:100.64.$k.1"; done
		echo '  wgagent:'
		echo "    command: [--user=61820:61820, --socket-group=61821, --allow-uid=61821,"
		echo "              --uapi-dir=/run/wireguard, --ifname=$(nl_if "$k"), --log-level=$NL_LOG_LEVEL]"
		echo '  controld:'
		echo '    environment:'
		echo '      P2PWG_CA_BUNDLE: /lab/ca.pem'
		echo '    volumes:'
		echo "      - $NL_DIR/ca.pem:/lab/ca.pem:ro"
	} >"$DK_DIR/compose.lab.yml"
}

# docker-compose for the node, its settings from the environment as a user's.
dk_compose() {
	GIST_URL="https://gist.$NL_DOMAIN/list.json" P2PWG_STUN_SERVERS=$NL_STUN1:3478,$NL_STUN2:3478 \
		P2PWG_POLL_INTERVAL=$NL_POLL P2PWG_TEST_INTERVAL=$NL_TEST P2PWG_STUN_INTERVAL=$NL_STUN \
		P2PWG_HTTP_TIMEOUT=$NL_HTTP_TIMEOUT P2PWG_LOG_LEVEL=$NL_LOG_LEVEL \
		"$DK_COMPOSE" --ansi never -p "$DK_PROJECT" -f "$DK_SRC/docker-compose.yml" \
		-f "$DK_DIR/compose.lab.yml" "$@"
}

dk_cid() { dk_compose ps -q "$1" 2>/dev/null; }
dk_pid() { "$DK_DOCKER" inspect -f '{{.State.Pid}}' "$(dk_cid "$1")" 2>/dev/null; }

# dk_node_attach: the node's network namespace (the net container's) becomes node K's
# (ip netns attach, so every natlab_* reader works on it), with the links a
# lab node has: 192.168.1.2 behind its router as the default route, and the
# gateway's own link 100.64.K.2. Its docker network stays, for port 8080.
# Again after the net container is made anew (down/up); a no-op while it runs.
dk_node_attach() {
	local k=$DK_K pid ns rns
	ns=$(nl_ns "$k") rns=$(nl_rns "$k")
	pid=$(dk_pid "$DK_NET_SERVICE")
	[ -n "$pid" ] && [ "$pid" != 0 ] || { echo "natlab-docker: $DK_NET_SERVICE is not running"; return 1; }
	# Still the same namespace: its links are there.
	[ "$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)" = "$(stat -L -c %i "/proc/$pid/ns/net")" ] && return 0
	ip netns del "$ns" 2>/dev/null
	ip netns attach "$ns" "$pid" || return 1
	case " ${E2E_NETNS[*]} " in *" $ns "*) ;; *) E2E_NETNS+=("$ns") ;; esac
	ip -n "$NL_GW" link del "n$k" 2>/dev/null
	ip -n "$rns" link del lan 2>/dev/null
	ip -n "$NL_GW" link add "n$k" type veth peer name gw netns "$ns" || return 1
	ip -n "$NL_GW" addr add "100.64.$k.1/24" dev "n$k"
	ip -n "$NL_GW" link set "n$k" up
	ip -n "$rns" link add lan type veth peer name lan0 netns "$ns" || return 1
	ip -n "$rns" addr add 192.168.1.1/24 dev lan
	ip -n "$rns" link set lan up
	ip -n "$ns" addr add "100.64.$k.2/24" dev gw
	ip -n "$ns" link set gw up
	ip -n "$ns" addr add 192.168.1.2/24 dev lan0
	ip -n "$ns" link set lan0 up
	ip -n "$ns" route replace default via 192.168.1.1 dev lan0
}

# dk_up: the node's containers up (healthy) and attached to the lab.
dk_up() {
	dk_compose up -d >>"$DK_DIR/compose.log" 2>&1 || { tail -20 "$DK_DIR/compose.log"; return 1; }
	dk_node_attach
}

# The node's public key, from its controld's /status.
dk_pubkey() { natlab_status "$DK_K" | jq -r '.node.wg_pubkey // empty'; }

# dk_cleanup: the node's containers and volumes, then the engine.
dk_cleanup() {
	if [ -n "$DK_PID" ] && [ -n "${DK_PROJECT:-}" ]; then
		dk_compose logs --no-color >"$DK_DIR/containers.log" 2>&1
		dk_compose down -v -t 5 >>"$DK_DIR/compose.log" 2>&1
	fi
	dk_engine_stop
}
