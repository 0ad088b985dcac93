#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what is needed, build, and run every test: unit (cmocka under ctest),
# end to end (network namespaces, wireguard-go, coturn) and the fuzzers for a
# bounded time. Run as root on Debian 12. FUZZ_SECONDS sets each fuzzer's run.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)

bash deploy/install-deps.sh

echo "== build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DP2PWG_WERROR=ON -DP2PWG_TESTS=ON -DP2PWG_SANITIZE=OFF -DP2PWG_FUZZ=OFF >/dev/null
cmake --build build -j "$JOBS"

echo "== unit and end-to-end tests"
(cd build && ctest --output-on-failure -j 1 --timeout 600)

echo "== unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DP2PWG_SANITIZE=ON -DP2PWG_WERROR=ON >/dev/null
cmake --build build-asan -j "$JOBS"
(cd build-asan && ctest --output-on-failure -L unit)

echo "== fuzzers (${FUZZ_SECONDS:=10} s each)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DP2PWG_FUZZ=ON -DP2PWG_TESTS=ON >/dev/null
cmake --build build-fuzz -j "$JOBS"
(cd build-fuzz && FUZZ_SECONDS=$FUZZ_SECONDS ctest --output-on-failure -L fuzz)
echo "== all tests passed"
