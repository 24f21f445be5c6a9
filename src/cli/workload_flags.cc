#include "cli/workload_flags.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "loadgen/dataset.h"

namespace infergate::cli {

void AddWorkloadFlags(CLI::App& cmd, WorkloadFlags& f, const cluster::WorkloadSpec* defaults) {
  // Shows the command's default in the help, where it has one.
  auto shown = [defaults](CLI::Option* option, auto value_of) {
    if (defaults != nullptr) option->default_str(fmt::format("{}", value_of(*defaults)));
  };
  using Spec = cluster::WorkloadSpec;
  shown(cmd.add_option("--seed", f.seed,
                       "Workload seed: numpy's legacy stream draws the dataset, then the "
                       "arrivals (the lengths and arrivals of benchmark_serving)"),
        [](const Spec& w) { return w.seed; });
  shown(cmd.add_option("--num-prompts", f.num_prompts, "Number of requests"),
        [](const Spec& w) { return w.num_prompts(); });
  shown(cmd.add_option("--warmup-prompts", f.warmup_prompts,
                       "Send and serve the first N requests as usual but leave them out of "
                       "every statistic (a steady-state measurement without the cold start); "
                       "the measurement runs from the first measured send to the last "
                       "measured completion"),
        [](const Spec& w) { return w.warmup_prompts; });
  shown(cmd.add_option("--max-concurrency", f.max_concurrency,
                       "At most this many requests in flight (benchmark_serving's semaphore "
                       "around each request); 0: no limit"),
        [](const Spec& w) { return w.max_concurrency; });
  shown(cmd.add_option("--request-rate", f.request_rate,
                       "Requests per second (simulated seconds with bench --time-scale); inf "
                       "sends all at once"),
        [](const Spec& w) { return w.request_rate; });
  shown(cmd.add_option("--burstiness", f.burstiness,
                       "Gamma shape of inter-arrival gaps (1 = Poisson; < 1 burstier)"),
        [](const Spec& w) { return w.burstiness; });
  cmd.add_flag("--ignore-eos", f.ignore_eos, "Send ignore_eos: outputs run to max_tokens");
  shown(cmd.add_option("--random-length-semantics", f.random_length_semantics,
                       "v0.7 (vLLM 0.7.x, as in the seed): lengths from [int(L*r), L]; "
                       "current (newer vLLM): [int(L*(1-r)), int(L*(1+r))]"),
        [](const Spec& w) { return loadgen::ToString(w.random.semantics); });
  shown(cmd.add_option("--random-input-len", f.random_input_len, "Random dataset: input length L"),
        [](const Spec& w) { return w.random.input_len; });
  shown(
      cmd.add_option("--random-output-len", f.random_output_len, "Random dataset: output length O"),
      [](const Spec& w) { return w.random.output_len; });
  shown(cmd.add_option("--random-prefix-len", f.random_prefix_len,
                       "Random dataset: tokens of one prefix shared by all requests"),
        [](const Spec& w) { return w.random.prefix_len; });
  cmd.add_option("--random-range-ratio", f.random_range_ratio,
                 "Random dataset: range ratio r (default 1.0 with v0.7 semantics, i.e. fixed "
                 "lengths; 0.0 with current)");
  shown(cmd.add_option("--random-vocab-size", f.random_vocab_size,
                       "Vocabulary size token ids are drawn from (151643 = Qwen2's, as the seed)"),
        [](const Spec& w) { return w.random.vocab_size; });
  shown(cmd.add_option("--sp-tenants", f.sp_tenants, "Shared-prefix: tenants (system prompts)"),
        [](const Spec& w) { return w.shared_prefix.tenants; });
  shown(cmd.add_option("--sp-prefix-len", f.sp_prefix_len,
                       "Shared-prefix: system prompt tokens per tenant"),
        [](const Spec& w) { return w.shared_prefix.prefix_len; });
  shown(
      cmd.add_option("--sp-question-len", f.sp_question_len, "Shared-prefix: tokens per question"),
      [](const Spec& w) { return w.shared_prefix.question_len; });
  shown(cmd.add_option("--sp-turns", f.sp_turns, "Shared-prefix: turns per session"),
        [](const Spec& w) { return w.shared_prefix.turns; });
  shown(cmd.add_option("--sp-active-sessions", f.sp_active_sessions,
                       "Shared-prefix: sessions open at once; each that ends opens the next (0: "
                       "all from the start)"),
        [](const Spec& w) { return w.shared_prefix.active_sessions; });
  shown(cmd.add_option("--sp-output-len", f.sp_output_len,
                       "Shared-prefix: max_tokens per turn (also the assumed answer length)"),
        [](const Spec& w) { return w.shared_prefix.output_len; });
  shown(cmd.add_option("--sp-range-ratio", f.sp_range_ratio,
                       "Shared-prefix: question/output lengths from [L*(1-r), L*(1+r)]"),
        [](const Spec& w) { return w.shared_prefix.range_ratio; });
}

Result<cluster::WorkloadSpec> ApplyWorkloadFlags(const WorkloadFlags& f, cluster::WorkloadSpec w) {
  if (f.seed) {
    if (*f.seed < 0 || *f.seed > 0xFFFFFFFFLL) return Error{"--seed must be in [0, 2^32 - 1]"};
    w.seed = static_cast<std::uint32_t>(*f.seed);
  }
  if (f.num_prompts) {
    if (*f.num_prompts < 1) return Error{"--num-prompts must be >= 1"};
    w.random.num_prompts = *f.num_prompts;
    w.shared_prefix.num_prompts = *f.num_prompts;
  }
  if (f.request_rate) {
    char* end = nullptr;
    const double rate = std::strtod(f.request_rate->c_str(), &end);
    if (f.request_rate->empty() || *end != '\0' || !(rate > 0)) {
      return Error{fmt::format("--request-rate must be a positive number or inf (got '{}')",
                               *f.request_rate)};
    }
    w.request_rate = rate;
  }
  if (f.burstiness) {
    if (!(*f.burstiness > 0) || std::isinf(*f.burstiness)) {
      return Error{fmt::format("--burstiness must be > 0 (got {})", *f.burstiness)};
    }
    w.burstiness = *f.burstiness;
  }
  if (f.max_concurrency) {
    if (*f.max_concurrency < 0) return Error{"--max-concurrency must be >= 0 (0: no limit)"};
    w.max_concurrency = *f.max_concurrency;
  }
  if (f.ignore_eos) w.ignore_eos = true;

  if (f.random_length_semantics) {
    auto s = loadgen::ParseRandomLengthSemantics(*f.random_length_semantics);
    if (!s.ok()) return s.error();
    w.random.semantics = *s;
    w.random.range_ratio = loadgen::DefaultRangeRatio(*s);
  }
  if (f.random_input_len) w.random.input_len = *f.random_input_len;
  if (f.random_output_len) w.random.output_len = *f.random_output_len;
  if (f.random_prefix_len) w.random.prefix_len = *f.random_prefix_len;
  if (f.random_range_ratio) w.random.range_ratio = *f.random_range_ratio;
  if (f.random_vocab_size) w.random.vocab_size = *f.random_vocab_size;

  if (f.sp_tenants) w.shared_prefix.tenants = *f.sp_tenants;
  if (f.sp_prefix_len) w.shared_prefix.prefix_len = *f.sp_prefix_len;
  if (f.sp_question_len) w.shared_prefix.question_len = *f.sp_question_len;
  if (f.sp_turns) w.shared_prefix.turns = *f.sp_turns;
  if (f.sp_active_sessions) w.shared_prefix.active_sessions = *f.sp_active_sessions;
  if (f.sp_output_len) w.shared_prefix.output_len = *f.sp_output_len;
  if (f.sp_range_ratio) w.shared_prefix.range_ratio = *f.sp_range_ratio;

  if (f.warmup_prompts) w.warmup_prompts = *f.warmup_prompts;
  if (w.warmup_prompts < 0 || w.warmup_prompts >= w.num_prompts()) {
    return Error{
        fmt::format("--warmup-prompts must be in [0, {}) (the requests of the run; got {})",
                    w.num_prompts(), w.warmup_prompts)};
  }
  return w;
}

void AddMetricFlags(CLI::App& cmd, MetricFlags& f) {
  cmd.add_option("--percentile-metrics", f.percentile_metrics,
                 "Metrics with percentiles in the table: comma list of ttft,tpot,itl,e2el")
      ->capture_default_str();
  cmd.add_option("--metric-percentiles", f.metric_percentiles,
                 "Comma list of percentiles, e.g. 50,90,99")
      ->capture_default_str();
}

Result<loadgen::MetricOptions> ParseMetricFlags(const MetricFlags& f) {
  loadgen::MetricOptions metrics;
  auto pm = loadgen::ParsePercentileMetrics(f.percentile_metrics);
  if (!pm.ok()) return pm.error();
  metrics.percentile_metrics = *pm;
  auto ps = loadgen::ParsePercentiles(f.metric_percentiles);
  if (!ps.ok()) return ps.error();
  metrics.percentiles = *ps;
  return metrics;
}

}  // namespace infergate::cli
