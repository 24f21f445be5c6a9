#include "loadgen/report.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace infergate::loadgen {
namespace {

using Json = nlohmann::ordered_json;

struct MetricName {
  const char* key;
  const char* label;
  const char* header;
};
constexpr MetricName kMetrics[] = {
    {"ttft", "TTFT", "Time to First Token"},
    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)"},
    {"itl", "ITL", "Inter-token Latency"},
    {"e2el", "E2EL", "End-to-end Latency"},
};

void Row(std::string& out, std::string_view label, double v) {
  fmt::format_to(std::back_inserter(out), "{:<40} {:<10.2f}\n", label, v);
}
void Row(std::string& out, std::string_view label, std::int64_t v) {
  fmt::format_to(std::back_inserter(out), "{:<40} {:<10}\n", label, v);
}

// Python's repr of a float as benchmark_serving puts it in file names ("10.0", "inf").
std::string PythonFloat(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e16) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

MetricSummary& MutableMetric(BenchmarkResult& r, std::string_view key) {
  if (key == "ttft") return r.ttft_ms;
  if (key == "tpot") return r.tpot_ms;
  if (key == "itl") return r.itl_ms;
  return r.e2el_ms;
}

Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double GetDouble(const Json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<double>();
}

}  // namespace

std::string FormatResultTable(const BenchmarkResult& r) {
  std::string out;
  out += fmt::format("{:=^50}\n", " Serving Benchmark Result ");
  Row(out, "Successful requests:", std::int64_t{r.completed});
  if (r.failed > 0) Row(out, "Failed requests:", std::int64_t{r.failed});
  Row(out, "Benchmark duration (s):", r.duration_s);
  Row(out, "Total input tokens:", r.total_input);
  Row(out, "Total generated tokens:", r.total_output);
  Row(out, "Request throughput (req/s):", r.request_throughput);
  if (r.request_goodput) Row(out, "Request goodput (req/s):", *r.request_goodput);
  Row(out, "Output token throughput (tok/s):", r.output_throughput);
  Row(out, "Total Token throughput (tok/s):", r.total_token_throughput);
  for (const MetricName& m : kMetrics) {
    const auto& selected = r.metrics.percentile_metrics;
    if (std::find(selected.begin(), selected.end(), m.key) == selected.end()) continue;
    const MetricSummary& s = *r.Metric(m.key);
    out += fmt::format("{:-^50}\n", m.header);
    Row(out, fmt::format("Mean {} (ms):", m.label), s.mean);
    Row(out, fmt::format("Median {} (ms):", m.label), s.median);
    for (const auto& [p, v] : s.percentiles) {
      Row(out, fmt::format("P{} {} (ms):", PercentileWord(p), m.label), v);
    }
  }
  out += std::string(50, '=') + "\n";
  return out;
}

std::string ResultToJson(const BenchmarkResult& r) {
  Json j;
  const RunInfo& info = r.info;
  j["date"] = info.date;
  j["backend"] = info.backend;
  j["model_id"] = info.model_id;
  j["tokenizer_id"] = info.tokenizer_id;
  j["num_prompts"] = info.num_prompts;
  for (const auto& [k, v] : info.metadata) j[k] = v;
  j["request_rate"] = std::isinf(info.request_rate) ? Json("inf") : Json(info.request_rate);
  j["burstiness"] = info.burstiness;
  j["max_concurrency"] = info.max_concurrency ? Json(*info.max_concurrency) : Json(nullptr);
  j["duration"] = r.duration_s;
  j["completed"] = r.completed;
  j["total_input_tokens"] = r.total_input;
  j["total_output_tokens"] = r.total_output;
  j["request_throughput"] = r.request_throughput;
  j["request_goodput"] = r.request_goodput ? Json(*r.request_goodput) : Json(nullptr);
  j["output_throughput"] = r.output_throughput;
  j["total_token_throughput"] = r.total_token_throughput;
  Json input_lens = Json::array(), ttfts = Json::array(), itls = Json::array(),
       texts = Json::array(), errors = Json::array(), starts = Json::array(),
       latencies = Json::array();
  for (const RequestOutcome& o : r.requests) {
    input_lens.push_back(o.prompt_len);
    ttfts.push_back(Number(o.ttft));
    itls.push_back(o.itl);
    texts.push_back(o.generated_text);
    errors.push_back(o.error);
    starts.push_back(Number(o.send_time));
    latencies.push_back(Number(o.latency));
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = r.output_lens;
  j["ttfts"] = std::move(ttfts);
  j["itls"] = std::move(itls);
  j["generated_texts"] = std::move(texts);
  j["errors"] = std::move(errors);
  for (const MetricName& m : kMetrics) {
    const MetricSummary& s = *r.Metric(m.key);
    j[fmt::format("mean_{}_ms", m.key)] = Number(s.mean);
    j[fmt::format("median_{}_ms", m.key)] = Number(s.median);
    j[fmt::format("std_{}_ms", m.key)] = Number(s.std);
    for (const auto& [p, v] : s.percentiles) {
      j[fmt::format("p{}_{}_ms", PercentileWord(p), m.key)] = Number(v);
    }
  }
  j["failed"] = r.failed;
  j["time_scale"] = info.time_scale;
  j["start_times"] = std::move(starts);
  j["latencies"] = std::move(latencies);
  return j.dump();
}

Result<BenchmarkResult> ResultFromJson(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error{"not a JSON object"};
  if (!j.contains("duration") || !j.contains("completed")) {
    return Error{"not a benchmark result (no \"duration\" or \"completed\")"};
  }
  BenchmarkResult r;
  try {
    RunInfo& info = r.info;
    info.date = j.value("date", "");
    info.backend = j.value("backend", "");
    info.model_id = j.value("model_id", "");
    info.tokenizer_id = j.value("tokenizer_id", "");
    info.num_prompts = j.value("num_prompts", 0);
    if (auto it = j.find("request_rate"); it != j.end() && it->is_number()) {
      info.request_rate = it->get<double>();
    }
    info.burstiness = GetDouble(j, "burstiness", 1.0);
    if (auto it = j.find("max_concurrency"); it != j.end() && it->is_number_integer()) {
      info.max_concurrency = it->get<int>();
    }
    info.time_scale = GetDouble(j, "time_scale", 1.0);
    r.duration_s = GetDouble(j, "duration");
    r.completed = j.value("completed", 0);
    r.total_input = j.value("total_input_tokens", std::int64_t{0});
    r.total_output = j.value("total_output_tokens", std::int64_t{0});
    r.request_throughput = GetDouble(j, "request_throughput");
    for (const char* key : {"request_goodput", "request_goodput:"}) {
      if (auto it = j.find(key); it != j.end() && it->is_number()) {
        r.request_goodput = it->get<double>();
      }
    }
    r.output_throughput = GetDouble(j, "output_throughput");
    r.total_token_throughput = GetDouble(j, "total_token_throughput");

    // Per-metric summaries: every p<N>_<metric>_ms key present becomes a percentile.
    r.metrics.percentile_metrics.clear();
    for (const MetricName& m : kMetrics) {
      MetricSummary& s = MutableMetric(r, m.key);
      const std::string mean_key = fmt::format("mean_{}_ms", m.key);
      if (!j.contains(mean_key)) continue;
      r.metrics.percentile_metrics.push_back(m.key);
      s.mean = GetDouble(j, mean_key.c_str());
      s.median = GetDouble(j, fmt::format("median_{}_ms", m.key).c_str());
      s.std = GetDouble(j, fmt::format("std_{}_ms", m.key).c_str());
      const std::string suffix = fmt::format("_{}_ms", m.key);
      for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        if (k.size() > suffix.size() + 1 && k[0] == 'p' &&
            k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0 && it->is_number()) {
          const std::string word = k.substr(1, k.size() - suffix.size() - 1);
          char* end = nullptr;
          const double p = std::strtod(word.c_str(), &end);
          if (end != word.c_str() && *end == '\0') {
            s.percentiles.emplace_back(p, it->get<double>());
          }
        }
      }
      std::sort(s.percentiles.begin(), s.percentiles.end());
    }
    r.metrics.percentiles.clear();
    for (const auto& [p, v] : r.ttft_ms.percentiles) r.metrics.percentiles.push_back(p);

    // Per-request arrays (absent when saved without details).
    const auto arr = [&](const char* key) -> const Json* {
      auto it = j.find(key);
      return it != j.end() && it->is_array() ? &*it : nullptr;
    };
    const Json* input_lens = arr("input_lens");
    const Json* output_lens = arr("output_lens");
    const Json* ttfts = arr("ttfts");
    const Json* itls = arr("itls");
    const Json* errors = arr("errors");
    const Json* starts = arr("start_times");
    const Json* latencies = arr("latencies");
    const Json* texts = arr("generated_texts");
    std::size_t n = 0;
    for (const Json* a : {input_lens, output_lens, ttfts}) n = std::max(n, a ? a->size() : 0);
    r.requests.resize(n);
    r.output_lens.assign(n, 0);
    r.has_send_times = starts != nullptr && starts->size() == n;
    r.has_latencies = latencies != nullptr && latencies->size() == n;
    const auto num = [](const Json* a, std::size_t i) {
      return a && i < a->size() && (*a)[i].is_number() ? (*a)[i].get<double>() : 0.0;
    };
    for (std::size_t i = 0; i < n; ++i) {
      RequestOutcome& o = r.requests[i];
      o.prompt_len = static_cast<int>(num(input_lens, i));
      o.output_tokens = static_cast<int>(num(output_lens, i));
      r.output_lens[i] = o.output_tokens;
      o.ttft = num(ttfts, i);
      if (errors && i < errors->size() && (*errors)[i].is_string()) {
        o.error = (*errors)[i].get<std::string>();
      }
      // benchmark_serving leaves ttft 0 for a failed request; ours records the error.
      o.success = o.error.empty() && (o.ttft > 0 || o.output_tokens > 0);
      if (!o.success) {
        ++r.failed;
        if (r.first_error.empty()) r.first_error = o.error.empty() ? "unknown error" : o.error;
      }
      if (itls && i < itls->size() && (*itls)[i].is_array()) {
        for (const Json& v : (*itls)[i]) {
          if (v.is_number()) o.itl.push_back(v.get<double>());
        }
      }
      o.send_time = num(starts, i);
      o.latency = num(latencies, i);
      if (texts && i < texts->size() && (*texts)[i].is_string()) {
        o.generated_text = (*texts)[i].get<std::string>();
      }
    }
    if (auto it = j.find("failed"); it != j.end() && it->is_number_integer()) {
      r.failed = it->get<int>();
    }
  } catch (const Json::exception& e) {
    return Error{fmt::format("malformed benchmark result: {}", e.what())};
  }
  return r;
}

Result<BenchmarkResult> LoadResultFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("cannot open {}", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = ResultFromJson(ss.str());
  if (!r) return Error{fmt::format("{}: {}", path, r.error().message)};
  return r;
}

std::string DefaultResultFilename(const RunInfo& info) {
  std::string model = info.model_id;
  if (const auto slash = model.rfind('/'); slash != std::string::npos) {
    model = model.substr(slash + 1);
  }
  const std::string concurrency =
      info.max_concurrency ? fmt::format("-concurrency{}", *info.max_concurrency) : "";
  return fmt::format("{}-{}qps{}-{}-{}.json", info.backend, PythonFloat(info.request_rate),
                     concurrency, model, info.date);
}

Result<std::string> SaveResult(const BenchmarkResult& r, const std::string& dir,
                               const std::string& filename) {
  namespace fs = std::filesystem;
  fs::path path = filename.empty() ? fs::path(DefaultResultFilename(r.info)) : fs::path(filename);
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Error{fmt::format("cannot create --result-dir {}: {}", dir, ec.message())};
    path = fs::path(dir) / path;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{fmt::format("cannot write {}", path.string())};
  out << ResultToJson(r);
  out.close();
  if (!out) return Error{fmt::format("error writing {}", path.string())};
  return path.string();
}

}  // namespace infergate::loadgen
