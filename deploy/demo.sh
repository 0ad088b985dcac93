#!/bin/bash
# SPDX-License-Identifier: MIT
# The main job: install, build, then run a p2pwg mesh behind real NATs on this
# machine (the NAT lab: network namespaces, nftables NAT routers, coturn for
# STUN, nginx with a lab CA as the gateway). Shows each node's controld log,
# then who reaches whom, and removes everything it made on exit.
# Run as root on Debian 12. Options go to deploy/natlab.sh, e.g.
#   bash deploy/demo.sh --nodes 4 --nat easy,remap,easy,symmetric
#   bash deploy/demo.sh --keep        (keep the lab up until Ctrl-C)
set -eu
cd "$(dirname "$0")/.."
case " $* " in *" -h "* | *" --help "*) exec bash deploy/natlab.sh --help ;; esac
bash deploy/install-deps.sh
echo "demo: building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
exec bash deploy/natlab.sh --logs --exit --nodes 4 --nat easy,remap,easy,symmetric "$@"
