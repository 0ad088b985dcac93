#!/bin/bash
# SPDX-License-Identifier: MIT
# Discovery and memory. One namespace holds an HTTPS server (nginx, a CA of
# its own) with P node.json files, every tenth entry of the list on an address
# whose port 443 drops every packet (black-holed; every entry a name, looked
# up as a real list's are), a wgagent (wireguard-go) and a controld.
# Discovery: controld's way (every node.json at once, one timeout each) next to
# the prototype's way, one request after another with a 5 s timeout each (a
# python3 urllib loop, the prototype's language; sequential.py here).
# Memory: RSS and private memory of controld, wgagent and wireguard-go with 0,
# 40 and P peers configured through controld: first with no peer answering its
# /test probe (no peer is up: the worst case, a probe to each always waiting
# out its timeout), then with every peer's /test answered, as in a healthy mesh
# (the probes are redirected to a /test server here, outside WireGuard).
# controld runs with GNUTLS_NO_IMPLICIT_INIT=1, as the systemd unit and the
# image run it (GNUTLS_NO_IMPLICIT_INIT= in the environment: without).
# BENCH_POLL=S: the list poll interval (2 s; controld's default is 15).
# BENCH_PAUSE=S: hold S seconds after the last memory row (to look inside).
# Usage: discovery.sh WGAGENT CONTROLD [PEERS [TIMEOUT_S]]; prints "figure|name|value|unit".
# BENCH_NO_SEQUENTIAL=1 leaves the sequential loop out (two controlds side by side),
# BENCH_NO_MEMORY=1 the memory rows; BENCH_DISCOVERY_RUNS=R times controld's
# discovery R times (a fresh controld each).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib.sh"
WGAGENT=$(readlink -f "$1") CONTROLD=$(readlink -f "$2") P=${3:-245} TO=${4:-5}
ID=$$ TMP=$(mktemp -d /tmp/p2pwg-bench.XXXXXX)
chmod 755 "$TMP"
NS=bdisc$ID IFN=bd$ID DOM=bench.test
trap 'e2e_cleanup; [ -n "${BENCH_KEEP:-}" ] && cp -r "$TMP" "$BENCH_KEEP"; rm -rf "$TMP" "/etc/netns/$NS"' EXIT
trap 'exit 130' INT TERM
netns_add "$NS"
ip -n "$NS" addr add 127.0.0.2/8 dev lo 2>/dev/null
ip netns exec "$NS" nft -f - <<NFT
table inet bench {
	chain in {
		type filter hook input priority 0;
		ip daddr 127.0.0.2 tcp dport 443 drop
	}
}
NFT

# The CA, a wildcard certificate, P node.json files (valid keys and public
# addresses, as real nodes publish), and the list.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=bench CA" \
	-keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=gist.$DOM" \
	-keyout "$TMP/srv.key" -out "$TMP/srv.csr" 2>/dev/null
printf 'subjectAltName=DNS:*.%s\n' "$DOM" >"$TMP/san.ext"
openssl x509 -req -in "$TMP/srv.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial -days 2 \
	-extfile "$TMP/san.ext" -out "$TMP/srv.pem" 2>/dev/null
chmod 644 "$TMP/ca.pem"
mkdir -p "$TMP/www" "$TMP/nginx" "/etc/netns/$NS"
dead=$((P / 10))
{
	echo "127.0.0.1 gist.$DOM"
	for ((i = 0; i < P; i++)); do echo "127.0.0.1 n$i.$DOM"; done
	for ((i = 0; i < dead; i++)); do echo "127.0.0.2 d$i.$DOM"; done
} >"/etc/netns/$NS/hosts"
for ((i = 0; i < P; i++)); do
	printf '{"wg_pubkey": "%s", "overlay_ip": "", "wg_listen_port": 51820, "public_ip": "198.18.%d.%d", "public_port": 51820, "nat": "port-preserving", "updated_at": "2026-01-01T00:00:00+00:00"}\n' \
		"$(wg genkey | wg pubkey)" $((1 + i / 200)) $((10 + i % 200)) >"$TMP/www/n$i.json"
done
list() { # N [DEAD]: N live entries and DEAD black-holed ones, every tenth
	local i=0 d=0 k
	for ((k = 0; k < $1 + ${2:-0}; k++)); do
		if { [ $((k % 10)) -eq 9 ] || [ $i -ge $1 ]; } && [ $d -lt ${2:-0} ]; then
			echo "\"https://d$((d++)).$DOM/node.json\""
		else
			echo "\"https://n$((i++)).$DOM/node.json\""
		fi
	done | paste -sd, | sed 's/^/[/; s/$/]/'
}
{
	nginx_head "$TMP/nginx" 2048
	cat <<CONF
	ssl_certificate $TMP/srv.pem;
	ssl_certificate_key $TMP/srv.key;
	default_type application/json;
	keepalive_requests 10000;
	server {
		listen 127.0.0.1:443 ssl http2;
		server_name "~^n(?<node>[0-9]+)\\.bench\\.test\$";
		location = /node.json { alias $TMP/www/n\$node.json; }
	}
	server {
		listen 127.0.0.1:443 ssl http2;
		server_name gist.$DOM;
		root $TMP/www;
	}
	server {
		listen 127.0.0.1:8001;
		access_log off;
		location = /test { return 200 "Hello from the bench\n"; }
	}
}
CONF
} >"$TMP/nginx/nginx.conf"
ip netns exec "$NS" nginx -c "$TMP/nginx/nginx.conf" || exit 1
track_pid "$(cat "$TMP/nginx/nginx.pid")" nginx
retry 5 ip netns exec "$NS" curl -sf --cacert "$TMP/ca.pem" "https://n0.$DOM/node.json" || exit 1

# PID: "rss_kib private_kib anonymous_kib". RSS counts the shared libraries'
# pages this process touched (most of controld's RSS at 0 peers: libcrypto
# alone ~4 MiB), private those no other process maps, anonymous its own heap
# and stacks: what a peer more costs shows there.
rss() {
	awk '/^Rss:/ { r = $2 } /^Private_(Clean|Dirty):/ { p += $2 } /^Anonymous:/ { a = $2 }
	     END { print r, p, a }' "/proc/$1/smaps_rollup"
}
mib() { echo "$(($1 / 1024)).$((($1 % 1024) * 10 / 1024))"; }
metric() { ip netns exec "$NS" curl -s -m 2 http://127.0.0.1:8081/metrics | awk -v m="$1" '$1 == m { print $2 }'; }

# The prototype's way.
list $((P - dead)) $dead >"$TMP/www/list.json"
t0=$(date +%s%N)
[ -n "${BENCH_NO_SEQUENTIAL:-}" ] ||
	ip netns exec "$NS" python3 "$HERE/sequential.py" "$TMP/ca.pem" "$TO" "$TMP/www/list.json" >"$TMP/seq.out"
t1=$(date +%s%N)
seq_s=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')
seq_ok=$(grep -cs '^ok' "$TMP/seq.out")

# wgagent, then controld with an empty list.
agent_dir "$TMP/a"
ip netns exec "$NS" "$WGAGENT" -U $E2E_AGENT_UID -i "$IFN" -s "$TMP/a/agent.sock" -d "$TMP/a/state" \
	-b userspace --allow-uid 65534 --socket-group 65534 >"$TMP/a/agent.log" 2>&1 &
track_pid $! wgagent
APID=$!
retry 10 test -S "$TMP/a/agent.sock" || { cat "$TMP/a/agent.log"; exit 1; }
GOPID=$(cat "$TMP/a/wireguard-go.$IFN.pid" 2>/dev/null) && track_pid "$GOPID" wireguard-go
echo '[]' >"$TMP/www/list.json"
start_controld() {
	ip netns exec "$NS" env GIST_URL="https://gist.$DOM/list.json" P2PWG_CA_BUNDLE="$TMP/ca.pem" \
		P2PWG_AGENT_SOCKET="$TMP/a/agent.sock" P2PWG_STUN_SERVERS=127.0.0.1:3478,127.0.0.1:3479 \
		P2PWG_POLL_INTERVAL=${1:-2} P2PWG_HTTP_TIMEOUT=$TO P2PWG_LISTEN=127.0.0.1:8080 \
		P2PWG_SELF_URL="https://n0.$DOM/node.json" P2PWG_LOG_LEVEL=warn \
		GNUTLS_NO_IMPLICIT_INIT=${GNUTLS_NO_IMPLICIT_INIT-1} \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$CONTROLD" >>"$TMP/controld.log" 2>&1 &
	CPID=$!
	track_pid $CPID controld
}
# The node itself is entry 0 (P2PWG_SELF_URL): served with the agent's key.
self_json() {
	local key
	key=$(ip netns exec "$NS" wg show "$IFN" public-key)
	sed "s|\"wg_pubkey\": \"[^\"]*\"|\"wg_pubkey\": \"$key\"|" "$TMP/www/n0.json" >"$TMP/n0.tmp" && mv "$TMP/n0.tmp" "$TMP/www/n0.json"
}
self_json
# Every peer's /test answered (on) or none (off): the probes to the peers'
# overlay addresses go to the /test server above.
answer_tests() {
	if [ "$1" = on ]; then
		ip netns exec "$NS" nft -f - <<NFT
table ip benchtest {
	chain out {
		type nat hook output priority -100;
		ip daddr 10.88.0.11-10.88.0.254 tcp dport 8000 redirect to :8001
	}
}
NFT
	else
		ip netns exec "$NS" nft delete table ip benchtest
	fi
}
mem_row() { # PEERS [LABEL [KEY]]: RSS and private of the three processes
	read -r cr cp ca <<<"$(rss $CPID)"
	read -r ar ap aa <<<"$(rss $APID)"
	read -r gr gp ga <<<"$(rss $GOPID)"
	# One reading can fall inside a poll's fetches (every 2 s here) or
	# between two: controld's lowest and highest over 8 s of them.
	local lo=$cr hi=$cr r p a i
	for ((i = 0; i < (P >= 100 ? 4 * ${BENCH_POLL:-2} + 24 : 4); i++)); do # the smoke's 12 peers: 1 s
		sleep 0.25
		read -r r p a <<<"$(rss $CPID)"
		[ "$r" -lt "$lo" ] && lo=$r
		[ "$r" -gt "$hi" ] && hi=$r
	done
	local at="$1 peers${2:+, $2}"
	echo "figure|memory at $at: controld RSS between polls / during one|$(mib $lo) / $(mib $hi)|MiB"
	echo "figure|memory at $at: controld RSS / private / anonymous|$(mib $cr) / $(mib $cp) / $(mib $ca)|MiB"
	echo "figure|memory at $at: wgagent RSS / private / anonymous|$(mib $ar) / $(mib $ap) / $(mib $aa)|MiB"
	echo "figure|memory at $at: wireguard-go RSS|$(mib $gr)|MiB"
	MEM[$1${3:-}]=$lo ANON[$1${3:-}]=$ca
	HWM=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' /proc/$CPID/status)
}
declare -A MEM=() ANON=()
configured() { [ "$(metric p2pwg_peers_configured)" = "$1" ]; }
if [ -z "${BENCH_NO_MEMORY:-}" ]; then
	start_controld ${BENCH_POLL:-2}
	retry 10 configured 0 || { echo "controld did not start"; tail "$TMP/controld.log"; exit 1; }
	sleep 3
	mem_row 0
	# The list holds the node itself (entry 0) and its peers: P entries, P-1 peers.
	for n in 40 $((P - 1)); do
		[ $n -lt $P ] || continue
		list $((n + 1)) >"$TMP/www/list.json.new" && mv "$TMP/www/list.json.new" "$TMP/www/list.json"
		retry 30 configured "$n" || echo "info|at $n: $(metric p2pwg_peers_configured) peers configured"
		sleep 5 # a few more polls: memory settled
		mem_row $n "no /test answered"
		answer_tests on
		sleep $((P >= 100 ? 12 : 6)) # the probes in flight time out (5 s), the next ones are answered
		ok0=$(metric p2pwg_tests_total) bad0=$(metric p2pwg_tests_failed_total)
		mem_row $n "every /test answered" a
		echo "info|at $n peers, while every /test was answered: $(($(metric p2pwg_tests_total) - ok0)) probes answered, $(($(metric p2pwg_tests_failed_total) - bad0)) failed"
		[ $n -eq $((P - 1)) ] && for what in metrics:200 status:50; do
			# What a scrape costs at this size: the answer's time on one kept
			# connection (the fastest is the least the busy loop added).
			ip netns exec "$NS" curl -s -w '%{time_total}\n' \
				$(printf -- "-o /dev/null http://127.0.0.1:8081/${what%:*} %.0s" $(seq ${what#*:})) |
				sort -n | awk -v w="${what%:*}" -v p=$n '{ t[NR] = $1 * 1000 }
					END { printf "figure|at %d peers: /%s answered in, fastest / median of %d|%.2f / %.2f|ms\n", p, w, NR, t[1], t[int((NR + 1) / 2)] }'
		done
		answer_tests off
		[ -n "${BENCH_PAUSE:-}" ] && [ $n -eq $((P - 1)) ] && { echo "info|paused $BENCH_PAUSE s: controld is PID $CPID" >&2; sleep "$BENCH_PAUSE"; }
	done
	echo "figure|controld peak RSS (VmHWM) after $((P - 1)) peers' polls|$HWM|MiB"
	if [ -n "${MEM[40]:-}" ] && [ $((P - 1)) -gt 40 ]; then
		for k in "" a; do # mem_row's keys: none answered, every one answered
			what=$([ -z "$k" ] && echo "no /test answered" || echo "every /test answered")
			echo "figure|controld growth per peer, 40 to $((P - 1)), $what: RSS between polls / anonymous|$(((MEM[$((P - 1))$k] - MEM[40$k]) / (P - 41))) / $(((ANON[$((P - 1))$k] - ANON[40$k]) / (P - 41)))|KiB"
		done
	fi
	kill_tracked $CPID controld; wait_gone $CPID
fi
list $((P - dead)) $dead >"$TMP/www/list.json"

# controld's way: a fresh controld reads the whole list of P at once.
# Watched from one process on a kept connection (see watch_metrics.py),
# started first: it tries every 10 ms until controld listens.
# The CPU both sides used until every live one was read (controld's from its
# start, the list's fetch and its own start included): on a machine of two
# cores, their sum over two is the least such a discovery can take here.
cpu_s() { awk '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' hz="$(getconf CLK_TCK)" "/proc/$1/stat"; }
NGW=$(pgrep -P "$(cat "$TMP/nginx/nginx.pid")" | head -1) # nginx's one worker
for ((run = 1; run <= ${BENCH_DISCOVERY_RUNS:-1}; run++)); do
	rm -f "$TMP/cpu.pids"
	ip netns exec "$NS" python3 "$HERE/watch_metrics.py" http://127.0.0.1:8081/metrics \
		$((P - dead)) "$P" $((TO + 30)) "$TMP/cpu.pids" >"$TMP/watch.out" &
	WPID=$!
	track_pid $WPID watch_metrics
	sleep 0.5 # its interpreter's start is over
	n0=$(cpu_s "$NGW")
	t0=$(date +%s%N)
	start_controld 600
	echo "$CPID $NGW" >"$TMP/cpu.pids.new" && mv "$TMP/cpu.pids.new" "$TMP/cpu.pids"
	wait $WPID
	read -r t1 t2 ccpu ncpu <"$TMP/watch.out"
	[ -n "${t2:-}" ] || { echo "controld did not end its discovery"; tail "$TMP/controld.log"; exit 1; }
	echo "figure|controld peak RSS (VmHWM) over this discovery|$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' /proc/$CPID/status)|MiB"
	echo "figure|discovery $P node.json, $dead black-holed: controld, every live one read|$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')|s"
	[ -n "${ncpu:-}" ] && awk -v c="$ccpu" -v n="$ncpu" -v n0="$n0" -v r=$((P - dead + 1)) 'BEGIN {
		printf "figure|discovery, CPU until every live one was read: controld / nginx / (sum over 2 cores)|%.2f / %.2f / (%.2f)|s\n", c, n - n0, (c + n - n0) / 2
		printf "figure|discovery, CPU per HTTPS read (%d, the list with them): controld / nginx|%.2f / %.2f|ms\n", r, 1000 * c / r, 1000 * (n - n0) / r }'
	echo "figure|discovery $P node.json, $dead black-holed: controld, cycle over (timeouts)|$(awk -v d=$((t2 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')|s"
	[ $run -lt ${BENCH_DISCOVERY_RUNS:-1} ] && { kill_tracked $CPID controld; wait_gone $CPID; }
done
[ -n "${BENCH_NO_SEQUENTIAL:-}" ] && exit 0
echo "figure|discovery $P node.json, $dead black-holed: prototype's way (sequential, ${TO} s timeout)|$seq_s|s"
echo "figure|discovery ratio sequential / controld (cycle over)|$(awk -v a=$seq_s -v b=$((t2 - t0)) 'BEGIN { printf "%.1f", a / (b / 1e9) }')|x"
echo "info|sequential read $seq_ok of $P; times include controld's start and its list fetch (its /metrics watched every 10 ms)"
