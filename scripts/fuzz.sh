#!/usr/bin/env bash
# Builds one libFuzzer target with clang, ASan and UBSan (build-fuzz/, its own build
# directory) and runs it for SECONDS on a scratch copy of its seed corpus, with its
# dictionary. New inputs go to build-fuzz/work/TARGET (copy the interesting ones, and
# every crash input as regression-*, into tests/fuzz/corpus/TARGET).
#   scripts/fuzz.sh request_fuzz 600              # one worker, 10 minutes
#   FUZZ_ARGS="-max_len=8192" scripts/fuzz.sh config_fuzz 60
#   FUZZ_ARGS="-runs=10000000" scripts/fuzz.sh sync_fuzz 3600   # stop at 10 M executions
# Targets: every ig_fuzz_target in tests/fuzz/CMakeLists.txt. The last line of build-fuzz/TARGET.log has the
# executions and coverage reached (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
SECONDS_TO_RUN=${2:-60}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  CXX=${CXX_FUZZ:-clang++} cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DINFERGATE_FUZZ=ON -DINFERGATE_ASAN=ON -DINFERGATE_BENCHMARKS=OFF \
    -DINFERGATE_JEMALLOC=OFF >/dev/null
fi
# FUZZ_NO_BUILD=1 runs the binary as built (for several targets run side by side).
[ -n "${FUZZ_NO_BUILD:-}" ] || cmake --build "$BUILD_DIR" -j"${FUZZ_BUILD_JOBS:-2}" --target "$TARGET"

name=${TARGET%_fuzz}
seeds=tests/fuzz/corpus/$TARGET
[ -d "$seeds" ] || seeds=tests/fuzz/corpus/$name
work=$BUILD_DIR/work/$TARGET
mkdir -p "$work" "$BUILD_DIR/crashes/$TARGET"
cp -n "$seeds"/* "$work"/ 2>/dev/null || true
dict=tests/fuzz/$name.dict
extra=()
[ -f "$dict" ] && extra+=("-dict=$dict")
# A leak is reported by ASan at exit; a crash input is written to crashes/TARGET. Short
# allocation stacks, a smaller quarantine and no fill of new blocks make allocation-heavy
# targets (config_fuzz: yaml-cpp nodes) about 1.5x faster; every memory error is still
# caught (re-run a crash input with ASAN_OPTIONS=detect_leaks=1 for full stacks).
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:malloc_context_size=4:quarantine_size_mb=32:max_malloc_fill_size=0} \
  UBSAN_OPTIONS=print_stacktrace=1 \
  "$BUILD_DIR/tests/fuzz/$TARGET" "$work" "${extra[@]}" -max_total_time="$SECONDS_TO_RUN" \
  -print_final_stats=1 -artifact_prefix="$BUILD_DIR/crashes/$TARGET/" ${FUZZ_ARGS:-} \
  2>&1 | tee "$BUILD_DIR/$TARGET.log" | grep -E "^#[0-9]+ +(pulse|DONE|NEW)|ERROR|SUMMARY|stat::|property" | tail -40
