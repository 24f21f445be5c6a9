#!/usr/bin/env bash
# Soak with faults (scripts/soak.py): the gateway, three simulated servers and a mirror
# under mixed traffic while servers are killed and restarted and the configuration is
# reloaded (sometimes invalid), checked from the client log, the access log and the
# servers' counters. 30 minutes by default.
#   scripts/soak.sh                      # 30 min
#   scripts/soak.sh --duration 60 --clients 4 --kill-every 15 --reload-every 10 \
#       --malloc-conf dirty_decay_ms:0,muzzy_decay_ms:0   # as ctest soak_short
# Needs build/infergate (BUILD_DIR to use another build). Prints a JSON summary;
# exits 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
exec python3 scripts/soak.py --bin "$BUILD_DIR/infergate" "$@"
