#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds infergate into build/ (or $BUILD_DIR).
# Extra arguments are passed to CMake's configure step, e.g. -DINFERGATE_ASAN=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
