# SPDX-License-Identifier: MIT
# Waits for a fresh controld's discovery to finish, watching its /metrics on
# one kept connection every 10 ms: a shell loop of `ip netns exec curl` per
# look took most of a core of this 2-core machine, beside the controld it
# timed. Prints the wall-clock times (ns) when LIVE node.json reads had
# answered and when ALL had ended (answered or failed); exits 1 if not
# within TIMEOUT_S.
# Usage: watch_metrics.py METRICS_URL LIVE ALL TIMEOUT_S
import http.client
import sys
import time
import urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
live, total = int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + float(sys.argv[4])
OK = 'p2pwg_nodejson_fetches_total{result="ok"} '
FAILED = 'p2pwg_nodejson_fetches_total{result="failed"} '


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
    if t_live is not None and ok + failed >= total:
        print(t_live, now)
        sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
