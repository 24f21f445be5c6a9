// The benchmark result as benchmark_serving prints and saves it.
//
// FormatResultTable reproduces benchmark_serving's table line for line (including the
// trailing padding of its "{:<40} {:<10}" rows). Two rows are ours and appear only when
// they apply: "Failed requests:" after "Successful requests:" when a request failed, and
// benchmark_serving's own "Request goodput (req/s):" when SLOs were given.
//
// The JSON has benchmark_serving's keys (date, backend, model_id, tokenizer_id,
// num_prompts, metadata keys, request_rate ("inf" or a number), burstiness,
// max_concurrency, duration, completed, total_input_tokens, total_output_tokens,
// request_throughput, request_goodput, output_throughput, total_token_throughput,
// input_lens, output_lens, ttfts, itls, generated_texts, errors, and mean_/median_/std_/
// p<N>_ for ttft, tpot, itl and e2el in ms) plus ours: failed, time_scale, start_times and
// latencies (seconds per request). benchmark_serving spells one key "request_goodput:"
// (a stray colon); we write "request_goodput" and read both.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "core/status.h"
#include "loadgen/result.h"

namespace infergate::loadgen {

std::string FormatResultTable(const BenchmarkResult& r);

// The result JSON text (one line, as json.dump writes it).
std::string ResultToJson(const BenchmarkResult& r);
// Parses a result JSON written by us or by benchmark_serving. Summary numbers are taken
// from the file; per-request arrays when present.
Result<BenchmarkResult> ResultFromJson(std::string_view text);
Result<BenchmarkResult> LoadResultFile(const std::string& path);

// benchmark_serving's default file name:
// "{backend}-{rate}qps[-concurrency{N}]-{basename(model_id)}-{date}.json", with the rate
// printed as Python prints a float ("inf", "10.0", "2.5").
std::string DefaultResultFilename(const RunInfo& info);
// Writes the JSON to dir/filename (dir created if needed; empty dir = current directory).
// Returns the path written.
Result<std::string> SaveResult(const BenchmarkResult& r, const std::string& dir,
                               const std::string& filename);

}  // namespace infergate::loadgen
