# SPDX-License-Identifier: MIT
# Helpers for the end-to-end tests: namespaces, processes and checks, each
# recorded by name or PID so cleanup removes exactly what the test made.

E2E_NETNS=()
E2E_PIDS=()  # "pid:comm"
E2E_FAILS=0
E2E_PASSES=0
# The user wgagent runs as (--user): numeric, so no passwd entry is needed.
E2E_AGENT_UID=61820

# agent_dir DIR: a run directory the agent accepts (its user's, mode 0755).
agent_dir() {
	mkdir -p "$1" && chown $E2E_AGENT_UID:$E2E_AGENT_UID "$1" && chmod 755 "$1"
}

# nginx_head DIR CONNS: the start of an nginx.conf (up to and into "http {")
# whose pid, logs and temporary files all live in DIR; the caller adds the
# servers and the closing brace.
nginx_head() {
	cat <<CONF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections $2; }
http {
	access_log $1/access.log;
	client_body_temp_path $1/body;
	proxy_temp_path $1/proxy;
	fastcgi_temp_path $1/fastcgi;
	uwsgi_temp_path $1/uwsgi;
	scgi_temp_path $1/scgi;
CONF
}

e2e_log() { printf '[e2e] %s\n' "$*"; }

pass() { E2E_PASSES=$((E2E_PASSES + 1)); printf 'ok - %s\n' "$*"; }
fail() { E2E_FAILS=$((E2E_FAILS + 1)); printf 'FAIL - %s\n' "$*"; }

# check "description" command...: passes if the command succeeds.
check() {
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

netns_add() {
	ip netns add "$1" && E2E_NETNS+=("$1")
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=0
}

# Remember a PID with the command name it will have (ip netns exec, env and
# setpriv exec into it), so a wrapped-around PID is never killed.
track_pid() {
	E2E_PIDS+=("$1:$2")
}

# Kill a tracked PID if it still runs the same command.
kill_tracked() {
	local pid=$1 comm=$2 sig=${3:-TERM}
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && kill -"$sig" "$pid" 2>/dev/null
	return 0
}

wait_gone() {
	local pid=$1 i
	for i in $(seq 1 50); do
		[ -d "/proc/$pid" ] || return 0
		sleep 0.1
	done
	return 1
}

e2e_cleanup() {
	local entry pid comm ns
	for entry in "${E2E_PIDS[@]}"; do
		pid=${entry%%:*}; comm=${entry#*:}
		kill_tracked "$pid" "$comm" TERM
	done
	for entry in "${E2E_PIDS[@]}"; do
		pid=${entry%%:*}; comm=${entry#*:}
		wait_gone "$pid" || kill_tracked "$pid" "$comm" KILL
	done
	for ns in "${E2E_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	E2E_PIDS=(); E2E_NETNS=()
}

# retry SECONDS command...: run until it succeeds or the time is up.
retry() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

e2e_summary() {
	printf '%d passed, %d failed\n' "$E2E_PASSES" "$E2E_FAILS"
	[ "$E2E_FAILS" -eq 0 ]
}
