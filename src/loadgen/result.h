// Per-request outcomes and the benchmark result computed from them, with
// benchmark_serving's metric definitions. Shared by the live client (`infergate bench`)
// and the virtual-time cluster (`infergate simulate`), which fills RequestOutcome from its
// own records and gets the same table, JSON and HTML.
//
// Definitions (benchmark_serving): TTFT = send → first streamed chunk with non-empty
// choices; ITL = every gap between successive such chunks, pooled over requests; TPOT =
// (latency − TTFT) / (output_tokens − 1) per request with output_tokens > 1; E2EL =
// latency = send → last such chunk. Throughputs divide by the duration from the first send
// to the last completion. Failed requests count 0 output tokens and no latencies.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "loadgen/statistics.h"

namespace infergate::loadgen {

// One request as the client saw it. Times are seconds; `send_time` is from the benchmark's
// start, the others from the request's send.
struct RequestOutcome {
  bool success = false;
  std::string error;           // why it failed; empty on success
  int prompt_len = 0;          // input tokens (server's usage.prompt_tokens when reported)
  int output_tokens = 0;       // usage.completion_tokens, else the count of content chunks
  double send_time = 0;        // since the benchmark's start
  double ttft = 0;             // send → first chunk with non-empty choices
  std::vector<double> itl;     // gaps between successive such chunks
  double latency = 0;          // send → last such chunk
  double request_written = 0;  // send → request fully written (connect + write); live only
  std::string generated_text;  // optional
};

// Which metrics get a table section and which percentiles they report
// (--percentile-metrics, --metric-percentiles), and goodput SLOs (--goodput).
struct MetricOptions {
  std::vector<std::string> percentile_metrics = {"ttft", "tpot", "itl"};
  std::vector<double> percentiles = {99};
  // (metric, SLO in ms); metric is ttft, tpot or e2el. Empty: no goodput.
  std::vector<std::pair<std::string, double>> goodput_slo_ms;
};

// "ttft,tpot" → {"ttft","tpot"}; each must be one of ttft, tpot, itl, e2el.
Result<std::vector<std::string>> ParsePercentileMetrics(std::string_view csv);
// "50,99.9" → {50, 99.9}; each must be in (0, 100].
Result<std::vector<double>> ParsePercentiles(std::string_view csv);
// {"ttft:500", "tpot:50"} → SLOs; keys ttft, tpot, e2el; values >= 0.
Result<std::vector<std::pair<std::string, double>>> ParseGoodput(
    const std::vector<std::string>& pairs);
// "99" for 99, "99.9" for 99.9 (benchmark_serving's p_word).
std::string PercentileWord(double p);

// The run's settings as recorded in the result JSON.
struct RunInfo {
  std::string date;  // "%Y%m%d-%H%M%S", local time
  std::string backend = "vllm";
  std::string model_id;
  std::string tokenizer_id;
  int num_prompts = 0;
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  std::optional<int> max_concurrency;
  // Durations are measured times multiplied by this (simulator speed-up); 1 = wall time.
  double time_scale = 1.0;
  std::vector<std::pair<std::string, std::string>> metadata;  // --metadata K=V
};

// The local time now as RunInfo::date writes it ("%Y%m%d-%H%M%S").
std::string LocalDate();

struct BenchmarkResult {
  RunInfo info;
  MetricOptions metrics;
  double duration_s = 0;
  int completed = 0;
  int failed = 0;
  std::int64_t total_input = 0;
  std::int64_t total_output = 0;
  double request_throughput = 0;
  std::optional<double> request_goodput;  // set when SLOs were given
  double output_throughput = 0;
  double total_token_throughput = 0;
  MetricSummary ttft_ms, tpot_ms, itl_ms, e2el_ms;
  std::string first_error;  // of the first failed request in request order
  // Per request, in dataset order. A result loaded from a JSON file may lack some of
  // these; the flags say which were present.
  std::vector<RequestOutcome> requests;
  std::vector<int> output_lens;  // actual output tokens per request (0 when failed)
  bool has_send_times = true;
  bool has_latencies = true;

  // The summary of "ttft", "tpot", "itl" or "e2el"; nullptr for another name.
  const MetricSummary* Metric(std::string_view name) const;
};

// Leaves a warm-up out of a run: the first `warmup` outcomes (in send order) were sent and
// served but are not measured. Returns the others in their order, with send times made
// offsets from the first of them, and sets *window_s to the time from that send to the last
// measured completion (send + latency; a failed request counts at its send). With no
// warm-up (or none left to measure) it returns the outcomes unchanged and leaves *window_s
// alone.
std::vector<RequestOutcome> DropWarmup(std::vector<RequestOutcome> outcomes, std::size_t warmup,
                                       double* window_s);

// Computes every aggregate from the outcomes. Requires duration_s > 0.
BenchmarkResult ComputeResult(RunInfo info, MetricOptions metrics,
                              std::vector<RequestOutcome> outcomes, double duration_s);

}  // namespace infergate::loadgen
