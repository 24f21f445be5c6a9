#!/usr/bin/env bash
# ThreadSanitizer run of the threaded parts: the gateway (unit and integration tests:
# several event loops, shared pool state, reloads), flow control, the simulated server
# and replica sync over a real nats-server (its publisher thread) (build-tsan/). Record the result in docs/hardening.md when threading changes.
#   bash scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR_TSAN:-build-tsan}
JOBS=${JOBS:-$(nproc)}
TARGETS=(infergate test_upstream gateway_test flowcontrol_test sim_server_test sync_test
         gateway_integration_test inference_integration_test sim_server_integration_test
         replica_sync_integration_test)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFERGATE_TSAN=ON \
  -DINFERGATE_BENCHMARKS=OFF -DINFERGATE_JEMALLOC=OFF >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${TARGETS[@]}"
# halt_on_error: the first race fails its test (and names both stacks).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
# Only the executables above are built; the others' tests are registered as *_NOT_BUILT.
# soak_short is left out: its RSS bound (< 5% growth) measures TSan's own allocator and
# shadow memory here (9.9% in a run with no race reported), not the gateway.
ctest --test-dir "$BUILD_DIR" -j"$JOBS" --output-on-failure --timeout 900 -E "_NOT_BUILT|soak_short" \
  ${TSAN_TESTS:+-R "$TSAN_TESTS"}
