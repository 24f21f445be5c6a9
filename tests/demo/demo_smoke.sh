#!/usr/bin/env bash
# Runs the quick demo and checks what it must leave: three complete benchmark runs (every
# request successful), the side-by-side comparison and the HTML report.
#   demo_smoke.sh SOURCE_DIR OUT_DIR      (BIN: the infergate binary)
set -euo pipefail
src=$1
out=$2
rm -rf "$out"
bash "$src/scripts/demo.sh" --no-build --quick --out "$out"
fail=0
for run in plain-8080 inference-8081 nginx-8082; do
  if ! grep -Eq '^Successful requests: +24 *$' "$out/$run.txt"; then
    echo "demo_smoke: $run did not complete 24 requests" >&2
    fail=1
  fi
  [ -s "$out/$run.json" ] || { echo "demo_smoke: $run.json missing" >&2; fail=1; }
done
for metric in 'Mean TTFT \(ms\)' 'P99 TTFT \(ms\)' 'Output token throughput \(tok/s\)'; do
  grep -Eq "^$metric +[0-9.]+ +[0-9.]+ \([0-9.]+x\) +[0-9.]+ \([0-9.]+x\)" "$out/compare.txt" ||
    { echo "demo_smoke: compare.txt has no three-way row for $metric" >&2; fail=1; }
done
grep -q '<svg\|<table' "$out/report.html" || { echo "demo_smoke: report.html is empty" >&2; fail=1; }
exit $fail
