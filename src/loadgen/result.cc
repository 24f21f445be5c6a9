#include "loadgen/result.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

namespace infergate::loadgen {

namespace {

std::vector<std::string_view> SplitCsv(std::string_view csv) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= csv.size()) {
    const std::size_t comma = csv.find(',', start);
    const std::size_t end = comma == std::string_view::npos ? csv.size() : comma;
    out.push_back(csv.substr(start, end - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<double> ParseDouble(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Result<std::vector<std::string>> ParsePercentileMetrics(std::string_view csv) {
  std::vector<std::string> out;
  for (std::string_view m : SplitCsv(csv)) {
    if (m != "ttft" && m != "tpot" && m != "itl" && m != "e2el") {
      return Error{fmt::format(
          "--percentile-metrics: unknown metric '{}' (allowed: ttft, tpot, itl, e2el)", m)};
    }
    out.emplace_back(m);
  }
  return out;
}

Result<std::vector<double>> ParsePercentiles(std::string_view csv) {
  std::vector<double> out;
  for (std::string_view p : SplitCsv(csv)) {
    const auto v = ParseDouble(p);
    if (!v || !(*v > 0 && *v <= 100)) {
      return Error{fmt::format("--metric-percentiles: '{}' is not a percentile in (0, 100]", p)};
    }
    out.push_back(*v);
  }
  return out;
}

Result<std::vector<std::pair<std::string, double>>> ParseGoodput(
    const std::vector<std::string>& pairs) {
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& pair : pairs) {
    const std::size_t colon = pair.find(':');
    if (colon == std::string::npos || pair.find(':', colon + 1) != std::string::npos) {
      return Error{fmt::format(
          "--goodput: '{}' is not KEY:VALUE (e.g. ttft:500, value in milliseconds)", pair)};
    }
    const std::string key = pair.substr(0, colon);
    if (key != "ttft" && key != "tpot" && key != "e2el") {
      return Error{fmt::format("--goodput: unknown metric '{}' (allowed: ttft, tpot, e2el)", key)};
    }
    const auto v = ParseDouble(std::string_view(pair).substr(colon + 1));
    if (!v || *v < 0 || std::isnan(*v)) {
      return Error{fmt::format("--goodput: '{}' needs a non-negative number of ms", pair)};
    }
    out.emplace_back(key, *v);
  }
  return out;
}

std::string PercentileWord(double p) {
  if (p == std::floor(p)) return fmt::format("{}", static_cast<long long>(p));
  return fmt::format("{}", p);
}

const MetricSummary* BenchmarkResult::Metric(std::string_view name) const {
  if (name == "ttft") return &ttft_ms;
  if (name == "tpot") return &tpot_ms;
  if (name == "itl") return &itl_ms;
  if (name == "e2el") return &e2el_ms;
  return nullptr;
}

BenchmarkResult ComputeResult(RunInfo info, MetricOptions metrics,
                              std::vector<RequestOutcome> outcomes, double duration_s) {
  BenchmarkResult r;
  r.info = std::move(info);
  r.metrics = std::move(metrics);
  r.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2els;
  std::vector<double> all_tpots;  // 0 for single-token outputs, as goodput counts them
  r.output_lens.reserve(outcomes.size());
  for (const RequestOutcome& o : outcomes) {
    if (!o.success) {
      r.output_lens.push_back(0);
      ++r.failed;
      if (r.first_error.empty()) r.first_error = o.error.empty() ? "unknown error" : o.error;
      continue;
    }
    ++r.completed;
    r.output_lens.push_back(o.output_tokens);
    r.total_input += o.prompt_len;
    r.total_output += o.output_tokens;
    double tpot = 0;
    if (o.output_tokens > 1) {
      tpot = (o.latency - o.ttft) / (o.output_tokens - 1);
      tpots.push_back(tpot);
    }
    all_tpots.push_back(tpot);
    itls.insert(itls.end(), o.itl.begin(), o.itl.end());
    ttfts.push_back(o.ttft);
    e2els.push_back(o.latency);
  }
  if (!r.metrics.goodput_slo_ms.empty()) {
    int good = 0;
    for (std::size_t i = 0; i < ttfts.size(); ++i) {
      bool ok = true;
      for (const auto& [key, ms] : r.metrics.goodput_slo_ms) {
        const double v = key == "ttft" ? ttfts[i] : key == "tpot" ? all_tpots[i] : e2els[i];
        ok = ok && v <= ms / 1000.0;
      }
      good += ok ? 1 : 0;
    }
    r.request_goodput = good / duration_s;
  }
  r.request_throughput = r.completed / duration_s;
  r.output_throughput = static_cast<double>(r.total_output) / duration_s;
  r.total_token_throughput = static_cast<double>(r.total_input + r.total_output) / duration_s;
  const std::vector<double>& ps = r.metrics.percentiles;
  r.ttft_ms = Summarize(std::move(ttfts), ps, 1000.0);
  r.tpot_ms = Summarize(std::move(tpots), ps, 1000.0);
  r.itl_ms = Summarize(std::move(itls), ps, 1000.0);
  r.e2el_ms = Summarize(std::move(e2els), ps, 1000.0);
  r.requests = std::move(outcomes);
  return r;
}

std::vector<RequestOutcome> DropWarmup(std::vector<RequestOutcome> outcomes, std::size_t warmup,
                                       double* window_s) {
  if (warmup == 0 || warmup >= outcomes.size()) return outcomes;
  outcomes.erase(outcomes.begin(), outcomes.begin() + static_cast<std::ptrdiff_t>(warmup));
  double start = outcomes.front().send_time, end = start;
  for (const RequestOutcome& o : outcomes) start = std::min(start, o.send_time);
  for (RequestOutcome& o : outcomes) {
    end = std::max(end, o.send_time + (o.success ? o.latency : 0.0));
    o.send_time -= start;
  }
  *window_s = end - start;
  return outcomes;
}

std::string LocalDate() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace infergate::loadgen
