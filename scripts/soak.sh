#!/usr/bin/env bash
# Soak with faults (scripts/soak.py): the gateway, three simulated servers and a mirror
# under mixed traffic while servers are killed and restarted and the configuration is
# reloaded (sometimes invalid). 30 minutes by default.
#   scripts/soak.sh                      # 30 min
#   scripts/soak.sh --duration 120       # the CI length (ctest soak_short)
# Needs build/infergate (BUILD_DIR to use another build). Prints a JSON summary;
# exits 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
exec python3 scripts/soak.py --bin "$BUILD_DIR/infergate" "$@"
