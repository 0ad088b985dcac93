#!/bin/bash
# SPDX-License-Identifier: MIT
# Compile the registry contract again: P2pwgRegistry.json (abi, bytecode,
# method identifiers) is checked in, so only a change of the .sol needs this.
# The compiler is the npm solc package, pinned; it is installed once into
# P2PWG_NPM_CACHE/solc-<version> (default cache /var/cache/p2pwg/npm).
set -eu
SOLC_VERSION=0.8.28
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${P2PWG_NPM_CACHE:-/var/cache/p2pwg/npm}/solc-$SOLC_VERSION
if [ ! -f "$DIR/node_modules/solc/package.json" ]; then
	mkdir -p "$DIR"
	npm install --prefix "$DIR" --no-audit --no-fund "solc@$SOLC_VERSION" >/dev/null
fi
NODE_PATH=$DIR/node_modules node "$HERE/compile.js"
echo "wrote $HERE/P2pwgRegistry.json"
