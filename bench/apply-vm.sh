#!/bin/bash
# SPDX-License-Identifier: MIT
# Apply on kernel WireGuard: wgagent's SetPeers (netlink backend) next to
# `wg setconf` / `wg syncconf` on the same kernel, inside Debian's cloud
# kernel under QEMU (TCG, one vCPU: slow, so compare the ratios). Boots the
# VM of tests/vm/run-vm-test.sh with tests/vm/guest-bench.sh as /init.
# Usage: apply-vm.sh WGAGENT AGENTCTL [PEERS [RUNS]]; prints
# "figure|name|value|unit"; exit 77 if QEMU or the kernel is missing.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
P=${3:-245} R=${4:-5}
P2PWG_VM_GUEST=$HERE/../tests/vm/guest-bench.sh P2PWG_VM_DUMMIES=$P P2PWG_VM_PARAMS="$P $R" \
	P2PWG_VM_TIMEOUT=${P2PWG_VM_TIMEOUT:-600} bash "$HERE/../tests/vm/run-vm-test.sh" "$1" "$2"
