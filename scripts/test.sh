#!/usr/bin/env bash
# Builds infergate and runs every test (unit and integration) with CTest.
#   BUILD_DIR=build-asan bash scripts/test.sh -DINFERGATE_ASAN=ON   # sanitizer run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" -j"$(nproc)" --output-on-failure --timeout 600
