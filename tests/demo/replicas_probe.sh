#!/usr/bin/env bash
# Runs scripts/replicas_live.sh --probe: two `infergate serve` replicas on a real
# nats-server in front of the simulated servers, N one-token completions through the first;
# checks that the second dated every one of them (its dispatch-delay histogram) and that
# the delay is a positive number of milliseconds.
#   replicas_probe.sh SOURCE_DIR OUT_DIR      (BIN: the infergate binary)
set -euo pipefail
src=$1
out=$2
n=20
rm -rf "$out"
report=$(bash "$src/scripts/replicas_live.sh" --replicas 2 --probe "$n" --out "$out")
echo "$report"
line=$(grep "peers' dispatches applied after" <<<"$report") ||
  { echo "replicas_probe: no dispatch delay reported" >&2; exit 1; }
count=$(sed -E 's/.*; ([0-9]+) dispatches$/\1/' <<<"$line")
ms=$(sed -E 's/.*applied after ([0-9.]+) ms.*/\1/' <<<"$line")
[ "$count" -ge "$n" ] || { echo "replicas_probe: $count of $n dispatches dated" >&2; exit 1; }
awk -v m="$ms" 'BEGIN { exit !(m > 0 && m < 1000) }' ||
  { echo "replicas_probe: a delay of $ms ms" >&2; exit 1; }
