# SPDX-License-Identifier: MIT
# The prototype's discovery loop, as a stand-in: every node.json of the list,
# one request after another, each with its own timeout.
# Usage: sequential.py CA_BUNDLE TIMEOUT_S LIST_FILE
import json
import ssl
import sys
import urllib.request

ctx = ssl.create_default_context(cafile=sys.argv[1])
timeout = float(sys.argv[2])
with open(sys.argv[3]) as f:
    urls = json.load(f)
for url in urls:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            json.loads(r.read(4096))
        print("ok", url)
    except Exception as e:  # a dead peer is skipped, as the prototype does
        print("fail", url, e)
