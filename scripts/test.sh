#!/usr/bin/env bash
# Builds infergate and runs every test (unit and integration) with CTest, then the
# sanitizer run (scripts/asan.sh: ASan + UBSan over the tests of untrusted input and the
# data plane). Both steps print their time.
#   bash scripts/test.sh                                   # what CI runs (.ci/run)
#   INFERGATE_SANITIZERS=0 bash scripts/test.sh            # the plain run only
#   BUILD_DIR=build-x bash scripts/test.sh -DOPTION=VALUE  # another configuration, no
#                                                          # sanitizer run
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/build.sh "$@"
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" -j"$(nproc)" --output-on-failure --timeout 600
echo "plain build and tests: $(($(date +%s) - start)) s"
if [ $# -eq 0 ] && [ "${INFERGATE_SANITIZERS:-1}" != 0 ]; then
  bash scripts/asan.sh
fi
