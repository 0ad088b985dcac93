# SPDX-License-Identifier: MIT
# The NAT lab: a p2pwg mesh behind real (simulated) NATs, built from network
# namespaces, veth links and nftables on addresses the lab owns. Source lib.sh
# first, then this file; deploy/natlab.sh, deploy/demo.sh and the natlab_*
# tests use it.
#
#   internet  (ns <P>-inet): bridge br0, 198.18.0.0/24; coturn (STUN only) on
#             198.18.0.2:3478 and 198.18.0.3:3478 (one process, two addresses)
#   gateway   (ns <P>-gw): 198.18.0.254 on the bridge; nginx's stream module
#             terminating TLS (lab CA) and proxying TCP by SNI, like dstack's:
#             https://gist.<domain>/list.json is the peer list, and
#             https://n<K>-8080.<domain>/ is node K's controld (port 8080),
#             reached over a link of its own (100.64.K.1 <-> 100.64.K.2), as
#             dstack's gateway reaches a CVM over its own tunnel
#   router K  (ns <P>-r<K>): wan 198.18.0.(10+K) on the bridge, lan 192.168.1.1;
#             an inbound filter (new traffic from wan is dropped) and NAT:
#               easy       masquerade (port-preserving)
#               remap      udp sport 51820 snat to <wan>:(40000+K), endpoint-independent
#               symmetric  masquerade fully-random (a new port per destination)
#               open       no router: the node sits on the bridge itself
#   node K    (ns <P>-n<K>): 192.168.1.2 behind its router (default route), plus
#             the gateway link; wgagent (root, keeps CAP_NET_ADMIN) and controld
#             (uid 65534). Its /etc/hosts (/etc/netns/<ns>/hosts) points every lab
#             name at its own gateway link, so HTTPS never crosses the NAT; UDP
#             between nodes can only cross the NATs.
#
# Everything is recorded (namespaces, PIDs with their command names,
# /etc/netns entries) and natlab_cleanup removes exactly that.

NL_DOMAIN=${NL_DOMAIN:-lab.test}
NL_POLL=${NL_POLL:-2}
NL_TEST=${NL_TEST:-2}
NL_STUN=${NL_STUN:-5}
NL_HTTP_TIMEOUT=${NL_HTTP_TIMEOUT:-2}
NL_LOG_LEVEL=${NL_LOG_LEVEL:-info}
NL_UID=65534
NL_MAX_NODES=100
NL_STUN1=198.18.0.2
NL_STUN2=198.18.0.3
NL_GW_PUB=198.18.0.254
NL_ETC=()
declare -A NL_KIND=() NL_PORT=() NL_AGENT_PID=() NL_CTLD_PID=()
# NL_CTLD_ENV[K]: extra VAR=value words for node K's controld (tests set it).
declare -A NL_CTLD_ENV=()
NL_GW_PID=""
NL_ETC_MADE=0

nl_ns() { echo "$NL_P-n$1"; }
nl_rns() { echo "$NL_P-r$1"; }
nl_if() { echo "$NL_P-w$1"; }
nl_pub() { echo "198.18.0.$((10 + $1))"; }
nl_url() { echo "https://n$1-8080.$NL_DOMAIN/node.json"; }
nl_dir() { echo "$NL_DIR/n$1"; }
nl_kinds_ok() { case $1 in easy | remap | symmetric | open) return 0 ;; esac; return 1; }

# natlab_init ID DIR WGAGENT CONTROLD [AGENTCTL]: the internet, STUN, the CA
# and the gateway. DIR must exist; it holds every file of the lab.
natlab_init() {
	NL_ID=$1 NL_DIR=$2
	NL_WGAGENT=$(readlink -f "$3") NL_CONTROLD=$(readlink -f "$4") NL_CTL=${5:+$(readlink -f "$5")}
	NL_P=p2l$NL_ID
	NL_INET=$NL_P-inet NL_GW=$NL_P-gw
	[ -d /etc/netns ] || NL_ETC_MADE=1
	chmod 755 "$NL_DIR"
	mkdir -p "$NL_DIR/www" "$NL_DIR/nginx"

	# ---- a lab CA and the gateway's certificate ----
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=p2pwg NAT lab CA" -keyout "$NL_DIR/ca.key" -out "$NL_DIR/ca.pem" 2>/dev/null || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=gist.$NL_DOMAIN" \
		-keyout "$NL_DIR/gw.key" -out "$NL_DIR/gw.csr" 2>/dev/null || return 1
	printf 'subjectAltName=DNS:gist.%s,DNS:*.%s\n' "$NL_DOMAIN" "$NL_DOMAIN" >"$NL_DIR/san.ext"
	openssl x509 -req -in "$NL_DIR/gw.csr" -CA "$NL_DIR/ca.pem" -CAkey "$NL_DIR/ca.key" \
		-CAcreateserial -days 2 -extfile "$NL_DIR/san.ext" -out "$NL_DIR/gw.pem" 2>/dev/null || return 1
	chmod 644 "$NL_DIR/ca.pem"

	# ---- the internet: a bridge, and STUN on two addresses ----
	netns_add "$NL_INET" || return 1
	ip -n "$NL_INET" link add br0 type bridge
	ip -n "$NL_INET" link set br0 up
	ip -n "$NL_INET" addr add $NL_STUN1/24 dev br0
	ip -n "$NL_INET" addr add $NL_STUN2/24 dev br0
	ip netns exec "$NL_INET" turnserver -n --stun-only --listening-ip $NL_STUN1 --listening-ip $NL_STUN2 \
		--listening-port 3478 --no-cli --no-tls --no-dtls --log-file stdout --simple-log \
		>"$NL_DIR/turnserver.log" 2>&1 &
	track_pid $! turnserver
	disown $!
	retry 10 bash -c "ip netns exec $NL_INET ss -Hlun | grep -q '$NL_STUN2:3478'" ||
		{ echo "natlab: coturn did not start:"; cat "$NL_DIR/turnserver.log"; return 1; }

	# ---- the gateway ----
	netns_add "$NL_GW" || return 1
	ip -n "$NL_INET" link add gw type veth peer name wan netns "$NL_GW"
	ip -n "$NL_INET" link set gw master br0 up
	ip -n "$NL_GW" addr add $NL_GW_PUB/24 dev wan
	ip -n "$NL_GW" link set wan up
	natlab_set_list
	nl_nginx_conf
	natlab_gw_start
}

# The gateway is dstack's in small: a TCP proxy that terminates TLS and picks
# the backend by SNI alone (nginx's stream module), never parsing HTTP, so
# upgrades and long-lived streams pass. It cuts a connection idle for
# NL_GW_IDLE seconds; natlab_gw_cut cuts every open one, as its lifetime cut
# does. Behind it, on loopback, plain HTTP servers: the list (with the
# gist-extra*.conf hook) and, only while a node-extra*.conf hook exists, a
# detour for node traffic through an HTTP proxy where the hook applies
# ($node: the node asked for; $nl_client: the client's gateway-link address).
NL_GW_IDLE=${NL_GW_IDLE:-60}
nl_nginx_conf() {
	local d=$NL_DIR/nginx dom=${NL_DOMAIN//./\\.} node_backend='100.64.$node.2:8080' hooks
	hooks=$(compgen -G "$d/node-extra*.conf")
	[ -n "$hooks" ] && node_backend=127.0.0.1:8002
	{
		echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
		# A reload (natlab_gw_cut) closes the old worker's connections this soon.
		echo "worker_shutdown_timeout 1s;"
		# dstack's gateway is a large shared proxy; a lab of 60 nodes opens ~3600
		# connections at once through this one (each proxied one counts twice,
		# and relay streams stay open), far past nginx's usual 1024
		# ("worker_connections are not enough": the lab, not the nodes, failed).
		echo "worker_rlimit_nofile 40000;"
		# Both cores, and every pending connection taken at each wake-up: the
		# lab's gateway shares 2 cores with every node, a real one does not.
		nginx_head "$d" 16384 | sed -e 's/^worker_processes 1;/worker_processes 2;/' \
			-e 's/^events {/events { multi_accept on;/'
		cat <<CONF
	default_type application/json;
	# The peer list (the "Gist"). Tests make it answer 500 by creating list.fail500.
	server {
		listen 127.0.0.1:8001;
		root $NL_DIR/www;
		location = /list.json { if (-f $NL_DIR/www/list.fail500) { return 500; } }
		location / { return 404; }
		# Tests add locations here (e.g. hostile node.json files).
		include $d/gist-extra*.conf;
	}
	# The detour for node-extra*.conf hooks (the stream proxy binds to
	# 127.1.0.K for a client on node K's link).
	map \$remote_addr \$nl_client {
		"~^127\\.1\\.0\\.(?<k>[0-9]+)\$" 100.64.\$k.2;
		default \$remote_addr;
	}
	server {
		listen 127.0.0.1:8002;
		server_name "~^n(?<node>[0-9]{1,2})-8080\\.$dom\$";
		location / {
			# Tests add rules here (e.g. a node misrouted to another's answer).
			include $d/node-extra*.conf;
			proxy_pass http://100.64.\$node.2:8080;
			proxy_connect_timeout 2s;
			proxy_read_timeout 5s;
		}
	}
}
stream {
	error_log $d/error.log;
	map \$ssl_server_name \$nl_backend {
		gist.$NL_DOMAIN 127.0.0.1:8001;
		"~^n(?<node>[0-9]{1,2})-8080\\.$dom\$" $node_backend;
		default 127.0.0.1:9;
	}
	map \$remote_addr \$nl_bind {
		"~^100\\.64\\.(?<k>[0-9]+)\\.2\$" 127.1.0.\$k;
		default 127.0.0.1;
	}
	server {
		listen 443 ssl backlog=4096;
		ssl_certificate $NL_DIR/gw.pem;
		ssl_certificate_key $NL_DIR/gw.key;
		ssl_handshake_timeout 5s;
		proxy_connect_timeout 5s;
		proxy_timeout ${NL_GW_IDLE}s;
		$([ -n "$hooks" ] && echo 'proxy_bind $nl_bind;')
		proxy_pass \$nl_backend;
	}
}
CONF
	} >"$d/nginx.conf"
}

# The gateway goes down (nginx stops) and comes back.
natlab_gw_start() {
	# Ahead of the nodes for the CPU: dstack's gateway runs on machines of its
	# own, not on the cores the lab's nodes share (at 60 nodes, load 30, a
	# gateway at the same priority took seconds per TLS handshake).
	nice -n -10 ip netns exec "$NL_GW" nginx -c "$NL_DIR/nginx/nginx.conf" -g 'daemon off;' \
		>>"$NL_DIR/nginx/stderr.log" 2>&1 &
	NL_GW_PID=$!
	track_pid $NL_GW_PID nginx
	disown $NL_GW_PID
	retry 10 ip netns exec "$NL_GW" curl -sf -m 2 --cacert "$NL_DIR/ca.pem" \
		--resolve gist.$NL_DOMAIN:443:$NL_GW_PUB "https://gist.$NL_DOMAIN/list.json" ||
		{ echo "natlab: nginx did not start:"; cat "$NL_DIR/nginx/error.log" "$NL_DIR/nginx/stderr.log"; return 1; }
}

# The gateway re-reads its configuration (after a test changed an include).
# Connections open before it are cut within a second (worker_shutdown_timeout).
natlab_gw_reload() {
	nl_nginx_conf
	[ -n "$NL_GW_PID" ] && kill_tracked "$NL_GW_PID" nginx HUP
}

# The gateway's lifetime cut, at once: every connection open now is closed.
natlab_gw_cut() { natlab_gw_reload; }

natlab_gw_stop() {
	[ -n "$NL_GW_PID" ] || return 0
	kill_tracked "$NL_GW_PID" nginx TERM
	nl_wait_gone "$NL_GW_PID" || kill_tracked "$NL_GW_PID" nginx KILL
	NL_GW_PID=""
}

# The peer list: natlab_set_list K... lists nodes K in that order;
# natlab_set_list_raw writes any body. Both replace the file atomically.
natlab_set_list() {
	local k body="" sep=""
	for k in "$@"; do
		body="$body$sep\"$(nl_url "$k")\""
		sep=", "
	done
	natlab_set_list_raw "[$body]"
}

natlab_set_list_raw() {
	printf '%s\n' "$1" >"$NL_DIR/www/list.json.new" && mv -f "$NL_DIR/www/list.json.new" "$NL_DIR/www/list.json"
}

natlab_list_fail500() { # on|off
	if [ "$1" = on ]; then : >"$NL_DIR/www/list.fail500"; else rm -f "$NL_DIR/www/list.fail500"; fi
}

# The router's NAT rules for its kind; remap uses NL_PORT[K].
nl_nat_rules() {
	local k=$1
	case ${NL_KIND[$k]} in
	easy) echo 'oifname "wan" masquerade' ;;
	remap)
		echo "oifname \"wan\" udp sport 51820 snat to $(nl_pub "$k"):${NL_PORT[$k]}"
		echo 'oifname "wan" masquerade'
		;;
	symmetric) echo 'oifname "wan" masquerade fully-random' ;;
	esac
}

# nl_hosts K NS: every lab name resolves, in NS, to node K's own gateway link.
nl_hosts() {
	local k=$1 h=/etc/netns/$2 i
	mkdir -p "$h" && NL_ETC+=("$h")
	{
		printf '127.0.0.1 localhost\n100.64.%d.1 gist.%s\n' "$k" "$NL_DOMAIN"
		for ((i = 0; i < NL_MAX_NODES; i++)); do printf '100.64.%d.1 n%d-8080.%s\n' "$k" "$i" "$NL_DOMAIN"; done
	} >"$h/hosts"
}

# nl_neigh_room N: room in the kernel's neighbour (ARP) table for a lab of N
# nodes. The table and its limits (gc_thresh1..3, 128/512/1024 by default) are
# shared by every namespace of the host, and each node's WireGuard interface
# holds one entry per peer it sends to: at 30 nodes the lab alone needs ~900,
# past the soft limit, and the kernel drops packets ("neighbor table
# overflow!": a SYN never reaches the interface, /test times out although the
# handshakes are fresh). One machine per node, as in real use, needs ~N.
# Raised for the lab only, and put back by natlab_cleanup.
NL_NEIGH_SAVED=""
NL_NEIGH_SET=0
nl_neigh_room() {
	local need=$(($1 * $1 + 16 * $1 + 1024)) f=/proc/sys/net/ipv4/neigh/default/gc_thresh
	[ "$(cat ${f}3)" -ge "$need" ] && return 0
	[ -n "$NL_NEIGH_SAVED" ] || NL_NEIGH_SAVED="$(cat ${f}1) $(cat ${f}2) $(cat ${f}3)"
	echo $((need / 4)) >${f}1 && echo $((need / 2)) >${f}2 && echo "$need" >${f}3 && NL_NEIGH_SET=$need
}

# natlab_add_node K KIND: the node's namespace, its router (unless open), the
# links and the node's /etc/hosts. Nothing runs in it yet.
natlab_add_node() {
	local k=$1 kind=$2 ns rns h i
	nl_kinds_ok "$kind" || { echo "natlab: unknown NAT kind '$kind' (easy, remap, symmetric, open)"; return 1; }
	[ "$k" -ge 0 ] && [ "$k" -lt $NL_MAX_NODES ] || { echo "natlab: node number $k out of 0..$((NL_MAX_NODES - 1))"; return 1; }
	ns=$(nl_ns "$k") rns=$(nl_rns "$k")
	nl_neigh_room $((k + 1)) || { echo "natlab: cannot make room in the neighbour table"; return 1; }
	NL_KIND[$k]=$kind
	NL_PORT[$k]=$((40000 + k))
	netns_add "$ns" || return 1
	agent_dir "$(nl_dir "$k")"

	# The gateway's own link to the node.
	ip -n "$NL_GW" link add "n$k" type veth peer name gw netns "$ns"
	ip -n "$NL_GW" addr add "100.64.$k.1/24" dev "n$k"
	ip -n "$NL_GW" link set "n$k" up
	ip -n "$ns" addr add "100.64.$k.2/24" dev gw
	ip -n "$ns" link set gw up

	if [ "$kind" = open ]; then
		ip -n "$NL_INET" link add "n$k" type veth peer name eth0 netns "$ns"
		ip -n "$NL_INET" link set "n$k" master br0 up
		ip -n "$ns" addr add "$(nl_pub "$k")/24" dev eth0
		ip -n "$ns" link set eth0 up
	else
		netns_add "$rns" || return 1
		ip netns exec "$rns" sysctl -qw net.ipv4.ip_forward=1
		ip -n "$NL_INET" link add "r$k" type veth peer name wan netns "$rns"
		ip -n "$NL_INET" link set "r$k" master br0 up
		ip -n "$rns" addr add "$(nl_pub "$k")/24" dev wan
		ip -n "$rns" link set wan up
		ip -n "$rns" link add lan type veth peer name eth0 netns "$ns"
		ip -n "$rns" addr add 192.168.1.1/24 dev lan
		ip -n "$rns" link set lan up
		ip -n "$ns" addr add 192.168.1.2/24 dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" route add default via 192.168.1.1
		# A home router: nothing new gets in from the wan side (see
		# lab-facts: without this, a remapping router deadlocks hole punching).
		ip netns exec "$rns" nft -f - <<NFT || return 1
table inet natlab_filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" counter drop
	}
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" counter drop
	}
}
table ip natlab_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
$(nl_nat_rules "$k")
	}
}
NFT
	fi

	# Every lab name resolves to this node's own gateway link.
	nl_hosts "$k" "$ns"
}

# NAT rebinding on a remap router: the node's public port becomes PORT and the
# router forgets the old mappings (its conntrack entries from port 51820).
natlab_rebind() {
	local k=$1 port=$2 rns
	rns=$(nl_rns "$k")
	[ "${NL_KIND[$k]}" = remap ] || { echo "natlab: rebind needs a remap router"; return 1; }
	NL_PORT[$k]=$port
	ip netns exec "$rns" nft -f - <<NFT || return 1
flush chain ip natlab_nat postrouting
$(nl_nat_rules "$k" | sed 's/^/add rule ip natlab_nat postrouting /')
NFT
	ip netns exec "$rns" conntrack -D -p udp --orig-port-src 51820 >/dev/null 2>&1
	return 0
}

# natlab_set_nat K KIND: node K's router becomes KIND (easy, remap, symmetric)
# at once, and its WireGuard port's old mappings are forgotten.
natlab_set_nat() {
	local k=$1 rns
	rns=$(nl_rns "$k")
	nl_kinds_ok "$2" && [ "$2" != open ] || { echo "natlab: cannot make a router $2"; return 1; }
	NL_KIND[$k]=$2
	ip netns exec "$rns" nft -f - <<NFT || return 1
flush chain ip natlab_nat postrouting
$(nl_nat_rules "$k" | sed 's/^/add rule ip natlab_nat postrouting /')
NFT
	ip netns exec "$rns" conntrack -D -p udp --orig-port-src 51820 >/dev/null 2>&1
	return 0
}

# An agent's process, started; nl_agent_ready waits for its socket.
nl_launch_agent() {
	local k=$1 ns d ifn pid
	ns=$(nl_ns "$k") d=$(nl_dir "$k") ifn=$(nl_if "$k")
	rm -f "$d/agent.sock"
	ip netns exec "$ns" "$NL_WGAGENT" -U $E2E_AGENT_UID -i "$ifn" -p 51820 -s "$d/agent.sock" -d "$d/state" \
		--allow-uid $NL_UID --socket-group $NL_UID >>"$d/agent.log" 2>&1 &
	pid=$!
	track_pid $pid wgagent
	disown $pid # no "Killed" line from the shell when a test crashes it
	NL_AGENT_PID[$k]=$pid
}

nl_agent_ready() {
	local k=$1 d ifn pid
	d=$(nl_dir "$k") ifn=$(nl_if "$k")
	retry 10 test -S "$d/agent.sock" && { [ -z "$NL_CTL" ] || retry 5 "$NL_CTL" -s "$d/agent.sock" hello; } ||
		{ echo "natlab: wgagent n$k did not start:"; cat "$d/agent.log"; return 1; }
	if [ -f "$d/wireguard-go.$ifn.pid" ]; then
		pid=$(cat "$d/wireguard-go.$ifn.pid")
		case " ${E2E_PIDS[*]} " in *" $pid:wireguard-go "*) ;; *) track_pid "$pid" wireguard-go ;; esac
	fi
	return 0
}

natlab_start_agent() { nl_launch_agent "$1" && nl_agent_ready "$1"; }

# Agents K...: all started at once, as machines boot on their own, then
# each waited for (one after another took ~0.25 s a node).
natlab_start_agents() {
	local k
	for k in "$@"; do nl_launch_agent "$k" || return 1; done
	for k in "$@"; do nl_agent_ready "$k" || return 1; done
}

natlab_start_controld() {
	local k=$1 ns d pid
	ns=$(nl_ns "$k") d=$(nl_dir "$k")
	ip netns exec "$ns" env GIST_URL="https://gist.$NL_DOMAIN/list.json" P2PWG_CA_BUNDLE="$NL_DIR/ca.pem" \
		P2PWG_AGENT_SOCKET="$d/agent.sock" P2PWG_STUN_SERVERS=$NL_STUN1:3478,$NL_STUN2:3478 \
		P2PWG_POLL_INTERVAL=$NL_POLL P2PWG_TEST_INTERVAL=$NL_TEST P2PWG_STUN_INTERVAL=$NL_STUN \
		P2PWG_HTTP_TIMEOUT=$NL_HTTP_TIMEOUT P2PWG_LOG_LEVEL=$NL_LOG_LEVEL ${NL_CTLD_ENV[$k]:-} \
		setpriv --reuid=$NL_UID --regid=$NL_UID --clear-groups "$NL_CONTROLD" >>"$d/controld.log" 2>&1 &
	pid=$!
	track_pid $pid controld
	disown $pid
	NL_CTLD_PID[$k]=$pid
}

natlab_start_node() { natlab_start_agent "$1" && natlab_start_controld "$1"; }

# kill -9, as a crash would.
natlab_crash() { # K agent|controld
	local pid
	if [ "$2" = agent ]; then pid=${NL_AGENT_PID[$1]}; else pid=${NL_CTLD_PID[$1]}; fi
	kill_tracked "$pid" "$([ "$2" = agent ] && echo wgagent || echo controld)" KILL
	nl_wait_gone "$pid"
}

# Like wait_gone, but a zombie (an orphan its reaper has not collected yet)
# counts as gone: it holds no namespace any more.
nl_wait_gone() {
	local i
	for i in $(seq 1 50); do
		[ -d "/proc/$1" ] || return 0
		[ "$(awk '/^State/ {print $2}' "/proc/$1/status" 2>/dev/null)" = Z ] && return 0
		sleep 0.1
	done
	return 1
}

# A node leaves for good: its processes stop and its namespaces go.
natlab_remove_node() {
	local k=$1 ifn entry pid comm
	ifn=$(nl_if "$k")
	pid=$(cat "$(nl_dir "$k")/wireguard-go.$ifn.pid" 2>/dev/null)
	for entry in "${NL_CTLD_PID[$k]}:controld" "${NL_AGENT_PID[$k]}:wgagent" "$pid:wireguard-go"; do
		[ -n "${entry%%:*}" ] && kill_tracked "${entry%%:*}" "${entry#*:}" TERM
	done
	for entry in "${NL_CTLD_PID[$k]}:controld" "${NL_AGENT_PID[$k]}:wgagent" "$pid:wireguard-go"; do
		pid=${entry%%:*} comm=${entry#*:}
		[ -n "$pid" ] || continue
		nl_wait_gone "$pid" && continue
		echo "natlab: n$k's $comm ($pid, $(awk '/^State/ {print $2}' /proc/$pid/status 2>/dev/null)) did not stop on TERM; killing it"
		kill_tracked "$pid" "$comm" KILL
	done
	ip netns del "$(nl_ns "$k")" 2>/dev/null
	ip netns del "$(nl_rns "$k")" 2>/dev/null
	rm -rf "/etc/netns/$(nl_ns "$k")"
	# The kernel frees a namespace once nothing holds it; its links go with it.
	retry 10 bash -c "! ip -n $NL_GW link show n$k" ||
		echo "natlab: n$k's namespace is gone but something still holds it (its gateway link n$k remains)"
	unset "NL_KIND[$k]"
}

# ---- reading the lab ----

# /status is served on a loopback-only listener: read it inside the node.
natlab_status() { ip netns exec "$(nl_ns "$1")" curl -s -m 3 http://127.0.0.1:8081/status; }
natlab_nodejson() { # K, fetched through the gateway as a peer would
	ip netns exec "$NL_GW" curl -s -m 3 --cacert "$NL_DIR/ca.pem" \
		--resolve "n$1-8080.$NL_DOMAIN:443:$NL_GW_PUB" "$(nl_url "$1")"
}
natlab_wg() { local k=$1; shift; ip netns exec "$(nl_ns "$k")" wg show "$(nl_if "$k")" "$@"; }
natlab_pubkey() { natlab_wg "$1" public-key; }

# ---- sessions and pings across a change ----

# snapshot K...: "node key latest-handshake rx tx" for every peer of each node.
snapshot() {
	local k
	for k in "$@"; do
		join <(natlab_wg "$k" latest-handshakes | sort) <(natlab_wg "$k" transfer | sort) | sed "s/^/$k /"
	done
}
# same_sessions BEFORE AFTER: every session in BEFORE is still there, its
# counters did not drop (a re-created peer starts from zero) and it had no
# new handshake earlier than WireGuard's own rekey after 120 s.
same_sessions() {
	awk 'NR == FNR { hs[$1 " " $2] = $3; rx[$1 " " $2] = $4; tx[$1 " " $2] = $5; next }
	     { k = $1 " " $2; seen[k] = 1
	       if (k in hs && ($4 < rx[k] || $5 < tx[k] || ($3 != hs[k] && $3 - hs[k] < 115))) {
		       print "  reset: node " $1 " peer " substr($2, 1, 8) ": handshake " hs[k] " -> " $3 ", rx " rx[k] " -> " $4 ", tx " tx[k] " -> " $5; bad = 1 } }
	     END { for (k in hs) if (!(k in seen)) { print "  gone: " k; bad = 1 }; exit bad }' "$1" "$2"
}
check_sessions() { # WHAT BEFORE AFTER
	local out
	if out=$(same_sessions "$2" "$3"); then pass "$1"; else fail "$1"; echo "$out"; fi
}
# ping_start NAME K J SECS: node K pings node J's overlay address 5 times a second.
declare -A PING=()
ping_start() {
	ip netns exec "$(nl_ns "$2")" ping -q -n -i 0.2 -W 1 -c $(($4 * 5)) "10.88.0.$((10 + $3))" >"$NL_DIR/ping.$1" 2>&1 &
	track_pid $! ping
	PING[$1]=$!
}
# ping_check NAME WHAT: waits for the ping; passes if every echo was answered.
ping_check() {
	wait "${PING[$1]}"
	check "$2 ($(grep -o '[0-9]* packets transmitted, [0-9]* received' "$NL_DIR/ping.$1"))" grep -q ' 0% packet loss' "$NL_DIR/ping.$1"
}
# Whether two NAT kinds let WireGuard punch through directly (else: the relay).
natlab_expect_direct() {
	local a=${NL_KIND[$1]} b=${NL_KIND[$2]}
	[ "$a" = symmetric ] && [ "$b" != open ] && return 1
	[ "$b" = symmetric ] && [ "$a" != open ] && return 1
	return 0
}

# nl_ok_nodes [STATES] < STATUS: the node numbers (from their URLs) of the
# peers in one of STATES (a jq list, default "direct") with a passing /test,
# on one line.
nl_ok_nodes() {
	jq -r ".peers[] | select((.state | IN(${1:-\"direct\"})) and .test.ok == true) | .url |
		capture(\"^https://n(?<n>[0-9]+)-8080[.]\").n" | tr '\n' ' '
}

# natlab_node_sees K J...: node K's /status shows each node J in state direct
# with a passing /test over the overlay.
natlab_node_sees() {
	local k=$1 ok j; shift
	ok=$(natlab_status "$k" | nl_ok_nodes) || return 1
	for j in "$@"; do
		[ "$j" = "$k" ] && continue
		case " $ok " in *" $j "*) ;; *) return 1 ;; esac
	done
}

# natlab_full_mesh K...: every listed node sees all the others.
natlab_full_mesh() {
	local k
	for k in "$@"; do natlab_node_sees "$k" "$@" || return 1; done
}

# natlab_expected_ok N: with nodes 0..N-1, every pair that can punch through
# (natlab_expect_direct) is direct with a passing /test.
natlab_expected_ok() {
	local n=$1 k j st ok
	for ((k = 0; k < n; k++)); do
		st=$(natlab_status "$k") || return 1
		ok=$(echo "$st" | nl_ok_nodes)
		for ((j = 0; j < n; j++)); do
			[ $j = $k ] && continue
			natlab_expect_direct $k $j || continue
			case " $ok " in *" $j "*) ;; *) return 1 ;; esac
		done
	done
}

# natlab_up N KIND[,KIND...]: nodes 0..N-1 (kinds cycle), all listed, all started.
natlab_up() {
	local n=$1 k kinds
	IFS=, read -r -a kinds <<<"$2"
	[ ${#kinds[@]} -gt 0 ] || kinds=(easy)
	for ((k = 0; k < n; k++)); do
		natlab_add_node $k "${kinds[$((k % ${#kinds[@]}))]}" || return 1
	done
	natlab_set_list $(seq 0 $((n - 1)))
	natlab_start_agents $(seq 0 $((n - 1))) || return 1
	for ((k = 0; k < n; k++)); do natlab_start_controld $k; done
}

nl_elapsed() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.1f\n", a - b }'; }

# The table a user reads: for each node, each peer's overlay address,
# endpoint, handshake age and /test result, from its controld's /status.
natlab_table() {
	local k st
	printf '%-5s %-5s %-16s %-14s %-22s %-10s %-6s %s\n' FROM TO "TO'S NAT" OVERLAY ENDPOINT HANDSHAKE /TEST STATE
	for k in "$@"; do
		st=$(natlab_status "$k") || { printf '%-5s (controld does not answer)\n' "n$k"; continue; }
		echo "$st" | jq -r --arg from "n$k" '.peers[] | select(.self | not) |
			[$from, (.url | capture("https://(?<n>[^-]+)-").n // "?"), (.nat // "-"),
			 (.overlay_ip // "-"), (.endpoint // .published_endpoint // "-"),
			 (if .handshake_age_s == null then "never" else "\(.handshake_age_s) s ago" end),
			 (if .test == null then "-" elif .test.ok then "ok" else "fail" end), .state] | @tsv' |
			while IFS=$'\t' read -r f t nat ovl ep hs test state; do
				printf '%-5s %-5s %-16s %-14s %-22s %-10s %-6s %s\n' "$f" "$t" "$nat" "$ovl" "$ep" "$hs" "$test" "$state"
			done
	done
}

# natlab_matrix N: who reaches whom among nodes 0..N-1: "ok" when
# the row's controld has a handshake and a passing /test to the column.
natlab_matrix() {
	local n=$1 k j ok relayed st row
	printf '%-16s' "from \\ to"
	for ((j = 0; j < n; j++)); do printf '%-6s' "n$j"; done
	echo
	for ((k = 0; k < n; k++)); do
		st=$(natlab_status "$k")
		ok=$(nl_ok_nodes <<<"$st") relayed=$(nl_ok_nodes '"relay"' <<<"$st")
		row=$(printf '%-16s' "n$k (${NL_KIND[$k]})")
		for ((j = 0; j < n; j++)); do
			if [ $j = $k ]; then row+=$(printf '%-6s' "-")
			elif [[ " $ok " == *" $j "* ]]; then row+=$(printf '%-6s' ok)
			elif [[ " $relayed " == *" $j "* ]]; then row+=$(printf '%-6s' relay)
			else row+=$(printf '%-6s' down)
			fi
		done
		echo "$row"
	done
}

# natlab_follow_logs K...: every node's controld log, each line prefixed with
# the node's name, on stdout until natlab_unfollow_logs.
natlab_follow_logs() {
	local k files=() fd
	for k in "$@"; do files+=("$(nl_dir "$k")/controld.log"); touch "${files[-1]}"; done
	exec {fd}> >(awk '/^==> .* <==$/ { f = $2; sub(/.*\/n/, "", f); sub(/\/.*/, "", f); p = sprintf("n%-2s| ", f); next }
		NF { print p $0; fflush() }')
	NL_AWK_PID=$!
	track_pid $NL_AWK_PID awk
	tail -n +1 -F "${files[@]}" 2>/dev/null 1>&"$fd" &
	NL_TAIL_PID=$!
	track_pid $NL_TAIL_PID tail
	exec {fd}>&-
}

natlab_unfollow_logs() {
	[ -n "${NL_TAIL_PID:-}" ] || return 0
	kill_tracked "$NL_TAIL_PID" tail TERM
	wait "$NL_AWK_PID" 2>/dev/null
	NL_TAIL_PID=""
}

# After a failed test, keep every log of the lab (daemons, nginx, coturn) in
# /tmp/p2pwg-natlab-logs.<pid> for a post-mortem; say where.
natlab_keep_logs_on_failure() {
	local keep=/tmp/p2pwg-natlab-logs.$NL_ID
	[ "${E2E_FAILS:-0}" -gt 0 ] && [ -d "${NL_DIR:-}" ] || return 0
	mkdir -p "$keep" && (cd "$NL_DIR" && find . -name '*.log' -exec cp --parents {} "$keep/" \;)
	echo "natlab: the lab's logs are kept in $keep"
}

natlab_cleanup() {
	local h k
	e2e_cleanup
	for h in "${NL_ETC[@]}"; do
		case $h in /etc/netns/p2l*) rm -rf "$h" ;; esac
	done
	NL_ETC=()
	[ "$NL_ETC_MADE" = 1 ] && rmdir /etc/netns 2>/dev/null
	# wireguard-go removes its UAPI socket on exit; a killed one may not.
	for k in "${!NL_AGENT_PID[@]}"; do rm -f "/var/run/wireguard/$(nl_if "$k").sock"; done
	if [ -n "$NL_NEIGH_SAVED" ] && [ "$(cat /proc/sys/net/ipv4/neigh/default/gc_thresh3)" = "$NL_NEIGH_SET" ]; then
		set -- $NL_NEIGH_SAVED
		echo "$1" >/proc/sys/net/ipv4/neigh/default/gc_thresh1
		echo "$2" >/proc/sys/net/ipv4/neigh/default/gc_thresh2
		echo "$3" >/proc/sys/net/ipv4/neigh/default/gc_thresh3
		NL_NEIGH_SAVED=""
	fi
	return 0
}

# ---- more home layouts: two nodes behind one router, double NAT ----

# natlab_add_node_behind K H: node K behind node H's router (H added first,
# not open), on a LAN port of its own (192.168.(100+K).2/24, the router at .1;
# the router forwards between its LAN ports without NAT). The router does not
# hairpin: a packet from one LAN to the router's own public address is not
# turned back inside. K counts as H's NAT kind.
declare -A NL_BEHIND=()
natlab_add_node_behind() {
	local k=$1 host=$2 ns rns lan
	[ -n "${NL_KIND[$host]:-}" ] && [ "${NL_KIND[$host]}" != open ] ||
		{ echo "natlab: node $host has no router to share"; return 1; }
	ns=$(nl_ns "$k") rns=$(nl_rns "$host") lan=192.168.$((100 + k))
	NL_KIND[$k]=${NL_KIND[$host]}
	NL_PORT[$k]=${NL_PORT[$host]}
	NL_BEHIND[$k]=$host
	netns_add "$ns" || return 1
	agent_dir "$(nl_dir "$k")"
	ip -n "$NL_GW" link add "n$k" type veth peer name gw netns "$ns"
	ip -n "$NL_GW" addr add "100.64.$k.1/24" dev "n$k"
	ip -n "$NL_GW" link set "n$k" up
	ip -n "$ns" addr add "100.64.$k.2/24" dev gw
	ip -n "$ns" link set gw up
	ip -n "$rns" link add "lan$k" type veth peer name eth0 netns "$ns"
	ip -n "$rns" addr add "$lan.1/24" dev "lan$k"
	ip -n "$rns" link set "lan$k" up
	ip -n "$ns" addr add "$lan.2/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$lan.1"
	nl_hosts "$k" "$ns"
}

# natlab_add_node_double K: node K behind two port-preserving NATs, a home
# router (ns <P>-h<K>, 10.0.0.1 on its LAN) behind the provider's (router K,
# kind easy): made as an easy node, then the home router is put between.
natlab_add_node_double() {
	local k=$1 ns rns hns
	natlab_add_node "$k" easy || return 1
	ns=$(nl_ns "$k") rns=$(nl_rns "$k") hns=$NL_P-h$k
	netns_add "$hns" || return 1
	ip netns exec "$hns" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$ns" link del eth0 # the provider router's lan end goes with it
	ip -n "$rns" link add lan type veth peer name wan netns "$hns"
	ip -n "$rns" addr add 192.168.1.1/24 dev lan
	ip -n "$rns" link set lan up
	ip -n "$hns" addr add 192.168.1.2/24 dev wan
	ip -n "$hns" link set wan up
	ip -n "$hns" route add default via 192.168.1.1
	ip -n "$hns" link add lan type veth peer name eth0 netns "$ns"
	ip -n "$hns" addr add 10.0.0.1/24 dev lan
	ip -n "$hns" link set lan up
	ip -n "$ns" addr add 10.0.0.2/24 dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via 10.0.0.1
	ip netns exec "$hns" nft -f - <<NFT || return 1
table inet natlab_filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" counter drop
	}
}
table ip natlab_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" masquerade
	}
}
NFT
	NL_KIND[$k]=double
}

# natlab_pairs N: "K>J" for every directed pair of nodes 0..N-1 whose row's
# controld has a handshake and a passing /test to the column, on one line.
natlab_pairs() {
	local n=$1 k j ok
	for ((k = 0; k < n; k++)); do
		ok=$(natlab_status "$k" | nl_ok_nodes '"direct", "relay"')
		for ((j = 0; j < n; j++)); do
			[ $j = $k ] && continue
			case " $ok " in *" $j "*) printf '%s>%s ' "$k" "$j" ;; esac
		done
	done
	echo
}

# natlab_path K J: the path node K's /status reports to node J.
natlab_path() {
	natlab_status "$1" | jq -r --arg u "$(nl_url "$2")" '.peers[] | select(.url == $u) | .path // "-"'
}
