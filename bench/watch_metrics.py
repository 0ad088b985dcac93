# SPDX-License-Identifier: MIT
# Waits for a fresh controld's discovery to finish, watching its /metrics on
# one kept connection every 10 ms: a shell loop of `ip netns exec curl` per
# look took most of a core of this 2-core machine, beside the controld it
# timed. Prints the wall-clock times (ns) when LIVE node.json reads had
# answered and when ALL had ended (answered or failed); exits 1 if not
# within TIMEOUT_S. With PIDFILE (a line of PIDs, written once those
# processes run), also the CPU seconds each had used when the LIVE reads had
# answered, after the two times.
# Usage: watch_metrics.py METRICS_URL LIVE ALL TIMEOUT_S [PIDFILE]
import http.client
import os
import sys
import time
import urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
live, total = int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + float(sys.argv[4])
OK = 'p2pwg_nodejson_fetches_total{result="ok"} '
FAILED = 'p2pwg_nodejson_fetches_total{result="failed"} '
pidfile = sys.argv[5] if len(sys.argv) > 5 else None
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime of pid in seconds (fields 14 and 15 of its stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def counts(conn):
    conn.request("GET", url.path)
    ok = failed = 0
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith(OK):
            ok = int(line.split()[1])
        elif line.startswith(FAILED):
            failed = int(line.split()[1])
    return ok, failed


conn, t_live = None, None
while time.monotonic() < deadline:
    try:
        conn = conn or http.client.HTTPConnection(url.hostname, url.port, timeout=2)
        ok, failed = counts(conn)
    except (OSError, http.client.HTTPException):
        conn = None  # not listening yet, or the connection was closed
        time.sleep(0.01)
        continue
    now = time.time_ns()
    if t_live is None and ok >= live:
        t_live = now
        try:
            with open(pidfile) if pidfile else open(os.devnull) as f:
                cpu = [f"{cpu_s(pid):.3f}" for pid in f.read().split()]
        except OSError:
            cpu = []  # no such file or process: the times alone
    if t_live is not None and ok + failed >= total:
        print(t_live, now, *cpu)
        sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
