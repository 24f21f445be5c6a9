#!/usr/bin/env bash
# Builds the tests that exercise untrusted input and the data plane with AddressSanitizer
# and UndefinedBehaviorSanitizer (build-asan/) and runs them. Part of CI (.ci/run).
#
# To stay inside CI's budget on 2 cores from a cold cache it builds only what these tests
# need, without the micro-benchmarks, and leaves out the simulation-heavy suites (cluster,
# bench, demo, the sim CLI) whose code is the pure simulator already covered by the plain
# run. Measured times: docs/hardening.md.
#   bash scripts/asan.sh                 # build + run
#   ASAN_TESTS=gateway bash scripts/asan.sh   # only tests matching a regex
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR_ASAN:-build-asan}
JOBS=${JOBS:-$(nproc)}
TARGETS=(
  infergate test_upstream
  core_test config_test routing_test datalayer_test flowcontrol_test scheduler_test
  telemetry_test http_test gateway_test sim_server_test
  gateway_integration_test inference_integration_test bad_input_integration_test
  sim_server_integration_test
  prometheus_fuzz_corpus_test engine_metrics_fuzz_corpus_test request_fuzz_corpus_test
  openai_fuzz_corpus_test response_fuzz_corpus_test config_fuzz_corpus_test
  llamacpp_slots_fuzz_corpus_test kubeconfig_fuzz_corpus_test watch_event_fuzz_corpus_test
  extproc_fuzz_corpus_test sync_fuzz_corpus_test
)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFERGATE_ASAN=ON \
  -DINFERGATE_BENCHMARKS=OFF -DINFERGATE_JEMALLOC=OFF >/dev/null
start=$(date +%s)
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${TARGETS[@]}"
echo "asan build: $(($(date +%s) - start)) s"
# Tests of executables not built here are registered as *_NOT_BUILT: skip them. Also left
# to the plain run: the checks of files rather than code (deploy manifests, docs links,
# the dashboard's queries), the simulator benchmark that asserts timings, which ASan's
# slowdown on a loaded machine would break without telling anything about memory, and the
# short soak (its RSS bound is set for jemalloc, which the ASan build leaves out).
ASAN_EXCLUDE="_NOT_BUILT|deploy_kustomize|Docs\\.|grafana_dashboard|SimServerBench\\.|soak_short"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$(date +%s)
ctest --test-dir "$BUILD_DIR" -j"$JOBS" --output-on-failure --timeout 600 -E "$ASAN_EXCLUDE" \
  ${ASAN_TESTS:+-R "$ASAN_TESTS"}
echo "asan tests: $(($(date +%s) - start)) s"
