// Side-by-side comparison of benchmark results (`infergate bench compare`).
//
// Rows: duration, completed, failed, request/output/total throughput, and mean, median and
// P99 of TTFT, TPOT, ITL and E2EL. Every value after the first run's is followed by its
// ratio to the first run's, e.g. "7335.87 (0.67x)", as in the seed's comparison of the plain
// gateway with inference routing.
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>

#include "loadgen/result.h"

namespace infergate::loadgen {

struct NamedResult {
  std::string name;  // e.g. the file's stem
  BenchmarkResult result;
};

// A fixed-width text table, or a Markdown table when `markdown` is true. Requires at least
// one run. A metric a run did not record (e.g. no P99) shows "-".
std::string FormatComparison(std::span<const NamedResult> runs, bool markdown);

}  // namespace infergate::loadgen
