#include "seed_workload.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace infergate::cluster {

std::vector<WorkloadRequest> MakeRandomDataset(const RandomDatasetOptions& o) {
  WorkloadRng rng(o.seed);
  const std::int64_t vocab = Tokenizer::kVocabSize;
  std::vector<TokenId> prefix;
  for (int j = 0; j < o.prefix_len; ++j) {
    prefix.push_back(static_cast<TokenId>(rng.UniformInt(0, vocab - 1)));
  }
  std::vector<std::int64_t> input_lens, output_lens, offsets;
  const auto lo = [&](int len) { return static_cast<std::int64_t>(len * o.range_ratio); };
  for (int i = 0; i < o.num_prompts; ++i)
    input_lens.push_back(rng.UniformInt(lo(o.input_len), o.input_len));
  for (int i = 0; i < o.num_prompts; ++i) {
    output_lens.push_back(rng.UniformInt(lo(o.output_len), o.output_len));
  }
  for (int i = 0; i < o.num_prompts; ++i) offsets.push_back(rng.UniformInt(0, vocab - 1));
  std::vector<WorkloadRequest> out(static_cast<std::size_t>(o.num_prompts));
  for (int i = 0; i < o.num_prompts; ++i) {
    WorkloadRequest& w = out[static_cast<std::size_t>(i)];
    w.prompt_tokens = prefix;
    for (std::int64_t j = 0; j < input_lens[static_cast<std::size_t>(i)]; ++j) {
      w.prompt_tokens.push_back(
          static_cast<TokenId>((offsets[static_cast<std::size_t>(i)] + i + j) % vocab));
    }
    w.max_tokens = static_cast<int>(output_lens[static_cast<std::size_t>(i)]);
  }
  return out;
}

namespace {

double SortedPercentile(const std::vector<double>& v, double p) {
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

void Describe(std::vector<double>& v, double& mean, double& median, double& p99) {
  if (v.empty()) return;
  mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  std::sort(v.begin(), v.end());
  median = SortedPercentile(v, 50);
  p99 = SortedPercentile(v, 99);
}

}  // namespace

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return SortedPercentile(v, p);
}

BenchMetrics Summarize(const ClusterResult& result) {
  BenchMetrics m;
  std::vector<double> ttft, tpot, itl;
  for (const RequestRecord& r : result.requests) {
    if (!r.success) continue;
    ++m.completed;
    m.total_input += r.prompt_tokens;
    m.total_output += r.output_tokens;
    ttft.push_back(ToMillis(r.first_token - r.send));
    if (r.output_tokens > 1) {
      const double latency = ToMillis(r.token_times.back() - r.send);
      tpot.push_back((latency - ttft.back()) / (r.output_tokens - 1));
    }
    for (std::size_t k = 1; k < r.token_times.size(); ++k) {
      itl.push_back(ToMillis(r.token_times[k] - r.token_times[k - 1]));
    }
  }
  m.duration_s = ToSeconds(result.end - result.start);
  m.output_throughput = m.duration_s > 0 ? static_cast<double>(m.total_output) / m.duration_s : 0;
  Describe(ttft, m.mean_ttft_ms, m.median_ttft_ms, m.p99_ttft_ms);
  Describe(tpot, m.mean_tpot_ms, m.median_tpot_ms, m.p99_tpot_ms);
  Describe(itl, m.mean_itl_ms, m.median_itl_ms, m.p99_itl_ms);
  for (const auto& s : result.engine_stats) m.preemptions += s.num_preemptions;
  return m;
}

}  // namespace infergate::cluster
