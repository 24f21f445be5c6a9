#include "sim/server/vllm_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace infergate::sim {
namespace {

const std::vector<double> kTtftV0 = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                     0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
const std::vector<double> kTtftV1Extra = {20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kTpotV0 = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                     0.3,  0.4,   0.5,  0.75,  1.0, 2.5};
const std::vector<double> kTpotV1Extra = {5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kLatencyV0 = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,  2.5, 5.0,
                                        10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0};
const std::vector<double> kLatencyV1Extra = {120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

std::vector<double> Join(const std::vector<double>& a, const std::vector<double>& b, bool v1) {
  std::vector<double> out = a;
  if (v1) out.insert(out.end(), b.begin(), b.end());
  return out;
}

double Seconds(TimeNs from, TimeNs to) { return ToSeconds(to - from); }

// Python's repr(float): the shortest round-trip digits, fixed notation when the decimal
// exponent is in [-4, 16), else d.ddde±XX.
void AppendPyRepr(std::string& out, double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  bool negative = false;
  if (!sci.empty() && sci.front() == '-') {
    negative = true;
    sci.remove_prefix(1);
  }
  const auto epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits += c;
  }
  const int exp = std::atoi(std::string(sci.substr(epos + 1)).c_str());
  if (negative) out += '-';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const std::size_t int_len = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out.append(digits, 0, int_len);
        out += '.';
        out.append(digits, int_len, std::string::npos);
      }
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-exp - 1), '0');
      out += digits;
    }
    return;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out.append(digits, 1, std::string::npos);
  }
  out += exp < 0 ? "e-" : "e+";
  const int a = std::abs(exp);
  if (a < 10) out += '0';
  out += std::to_string(a);
}

void AppendEscaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

class PageWriter {
 public:
  PageWriter(std::string& out, const MetricsPageInfo& info) : out_(out) {
    labels_ = "model_name=\"";
    AppendEscaped(labels_, info.model_name);
    labels_ += '"';
    if (info.version == MetricsVersion::kV1) labels_ += ",engine=\"0\"";
  }

  void Header(std::string_view name, std::string_view help, std::string_view type) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // A sample with the common labels plus `extra` (already formatted, may be empty).
  void Sample(std::string_view name, std::string_view extra, double value) {
    out_ += name;
    out_ += '{';
    out_ += labels_;
    if (!extra.empty()) {
      out_ += ',';
      out_ += extra;
    }
    out_ += "} ";
    AppendPromFloat(out_, value);
    out_ += '\n';
  }

  void Gauge(std::string_view name, std::string_view help, double value) {
    Header(name, help, "gauge");
    Sample(name, {}, value);
  }

  void Counter(std::string_view name, std::string_view help, double value) {
    Header(name, help, "counter");
    Sample(name, {}, value);
  }

  void Histogram(std::string_view name, std::string_view help, const LocalHistogram& h) {
    Header(name, help, "histogram");
    std::string bucket_name(name);
    bucket_name += "_bucket";
    std::string le;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
      cumulative += h.bucket(i);
      le = "le=\"";
      if (i < h.bounds().size()) {
        AppendPromFloat(le, h.bounds()[i]);
      } else {
        le += "+Inf";
      }
      le += '"';
      Sample(bucket_name, le, static_cast<double>(cumulative));
    }
    Sample(std::string(name) + "_count", {}, static_cast<double>(h.count()));
    Sample(std::string(name) + "_sum", {}, h.sum());
  }

 private:
  std::string& out_;
  std::string labels_;
};

void AppendLabel(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ',';
  out += name;
  out += "=\"";
  AppendEscaped(out, value);
  out += '"';
}

std::string PyBool(bool b) { return b ? "True" : "False"; }

std::string PyFloat(double v) {
  std::string s;
  AppendPyRepr(s, v);
  return s;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ',';
    s += n;
  }
  return s;
}

}  // namespace

void AppendPromFloat(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  std::string s;
  AppendPyRepr(s, v);
  const auto dot = s.find('.');
  // prometheus_client writes large positive numbers as mantissa e+0<exponent>.
  if (v > 0 && dot != std::string::npos && dot > 6) {
    std::string mantissa;
    mantissa += s[0];
    mantissa += '.';
    mantissa.append(s, 1, dot - 1);
    mantissa.append(s, dot + 1, std::string::npos);
    while (!mantissa.empty() && (mantissa.back() == '0' || mantissa.back() == '.')) {
      mantissa.pop_back();
    }
    out += mantissa;
    out += "e+0";
    out += std::to_string(dot - 1);
    return;
  }
  out += s;
}

LocalHistogram::LocalHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void LocalHistogram::Observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
  ++count_;
  sum_ += v;
}

std::vector<double> Buckets125(double max_value) {
  std::vector<double> out;
  for (double exponent = 1;; exponent *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * exponent;
      if (v > max_value) return out;
      out.push_back(v);
    }
  }
}

RequestMetrics::RequestMetrics(MetricsVersion version, int max_model_len)
    : version_(version),
      ttft_(Join(kTtftV0, kTtftV1Extra, version == MetricsVersion::kV1)),
      tpot_(Join(kTpotV0, kTpotV1Extra, version == MetricsVersion::kV1)),
      e2e_(Join(kLatencyV0, kLatencyV1Extra, version == MetricsVersion::kV1)),
      queue_(e2e_.bounds()),
      inference_(e2e_.bounds()),
      prefill_(e2e_.bounds()),
      decode_(e2e_.bounds()),
      prompt_tokens_(Buckets125(max_model_len)),
      generation_tokens_(Buckets125(max_model_len)) {}

void RequestMetrics::ObserveFirstToken(double ttft) { ttft_.Observe(ttft); }

void RequestMetrics::ObserveInterToken(double gap) { tpot_.Observe(gap); }

void RequestMetrics::ObserveFinished(const FinishedEvent& f) {
  if (f.reason == FinishReason::kAbort && version_ == MetricsVersion::kV0) return;
  const RequestTiming& t = f.timing;
  if (t.arrival >= 0 && t.finished >= 0) e2e_.Observe(Seconds(t.arrival, t.finished));
  if (t.first_scheduled >= 0) {
    queue_.Observe(Seconds(t.arrival, t.first_scheduled));
    if (t.finished >= 0) inference_.Observe(Seconds(t.first_scheduled, t.finished));
    if (t.first_token >= 0) prefill_.Observe(Seconds(t.first_scheduled, t.first_token));
  }
  if (t.first_token >= 0 && t.finished >= 0) decode_.Observe(Seconds(t.first_token, t.finished));
  prompt_tokens_.Observe(t.prompt_tokens);
  generation_tokens_.Observe(t.output_tokens);
}

void LoraInfoHistory::Update(const EngineStats& stats, double unix_time) {
  std::string running = JoinNames(stats.running_loras);
  std::string waiting = JoinNames(stats.waiting_loras);
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.running == running && e.waiting == waiting;
  });
  if (it != entries_.end()) {
    it->time = unix_time;
    std::rotate(it, it + 1, entries_.end());  // most recent last
    return;
  }
  if (entries_.size() == kLoraInfoHistory) entries_.erase(entries_.begin());
  entries_.push_back({std::move(running), std::move(waiting), unix_time});
}

void AppendVllmMetrics(std::string& out, const MetricsPageInfo& info, const EngineConfig& config,
                       const EngineStats& stats, const RequestMetrics& requests,
                       const LoraInfoHistory& lora) {
  const bool v1 = info.version == MetricsVersion::kV1;
  PageWriter w(out, info);

  // CacheConfig.metrics_info(): the config's attributes as Python str()s, in its order.
  std::string cache;
  AppendLabel(cache, "block_size", std::to_string(config.block_size));
  AppendLabel(cache, "gpu_memory_utilization", PyFloat(config.gpu_memory_utilization));
  AppendLabel(cache, "swap_space_bytes", "4294967296");
  AppendLabel(
      cache, "num_gpu_blocks_override",
      info.num_gpu_blocks_override > 0 ? std::to_string(info.num_gpu_blocks_override) : "None");
  AppendLabel(cache, "cache_dtype", "auto");
  AppendLabel(cache, "is_attention_free", "False");
  AppendLabel(cache, "sliding_window", "None");
  AppendLabel(cache, "enable_prefix_caching", PyBool(config.prefix_caching));
  AppendLabel(cache, "cpu_offload_gb", "0");
  AppendLabel(cache, "calculate_kv_scales", "False");
  AppendLabel(cache, "num_gpu_blocks", std::to_string(config.num_gpu_blocks));
  const std::int64_t cpu_blocks =
      config.block_bytes_per_gpu > 0 ? (std::int64_t{4} << 30) / config.block_bytes_per_gpu : 0;
  AppendLabel(cache, "num_cpu_blocks", std::to_string(cpu_blocks));
  w.Header("vllm:cache_config_info", "KV-cache configuration of the engine (value always 1).",
           "gauge");
  w.Sample("vllm:cache_config_info", cache, 1.0);

  w.Gauge("vllm:num_requests_running", "Requests in the running queue.", stats.num_running);
  if (!v1) {
    w.Gauge("vllm:num_requests_swapped",
            "Requests swapped out to CPU memory (always 0: preemption recomputes).",
            stats.num_swapped);
  }
  w.Gauge("vllm:num_requests_waiting", "Requests in the waiting queue.", stats.num_waiting);
  if (v1) {
    w.Gauge("vllm:kv_cache_usage_perc", "Fraction of KV-cache blocks in use (0..1).",
            stats.kv_usage);
  } else {
    w.Gauge("vllm:gpu_cache_usage_perc", "Fraction of GPU KV-cache blocks in use (0..1).",
            stats.kv_usage);
    w.Gauge("vllm:cpu_cache_usage_perc", "Fraction of CPU swap blocks in use (0..1).", 0.0);
    const double gpu_rate = !config.prefix_caching ? -1.0
                            : stats.prefix_cache_queries == 0
                                ? 0.0
                                : static_cast<double>(stats.prefix_cache_hits) /
                                      static_cast<double>(stats.prefix_cache_queries);
    w.Gauge("vllm:cpu_prefix_cache_hit_rate",
            "Prefix-cache hit rate of the CPU swap space (-1: prefix caching off).",
            config.prefix_caching ? 0.0 : -1.0);
    w.Gauge("vllm:gpu_prefix_cache_hit_rate",
            "Prefix-cache hit rate in tokens (-1: prefix caching off).", gpu_rate);
  }

  w.Header("vllm:lora_requests_info",
           "LoRA adapters of running and waiting requests; value: Unix time last seen.", "gauge");
  for (const auto& e : lora.entries()) {
    std::string l;
    AppendLabel(l, "running_lora_adapters", e.running);
    AppendLabel(l, "max_lora", std::to_string(stats.max_loras));
    AppendLabel(l, "waiting_lora_adapters", e.waiting);
    w.Sample("vllm:lora_requests_info", l, e.time);
  }

  w.Counter("vllm:num_preemptions_total", "Preemptions by recompute since start.",
            static_cast<double>(stats.num_preemptions));
  w.Counter("vllm:prompt_tokens_total", "Prompt tokens prefilled since start.",
            static_cast<double>(stats.prompt_tokens));
  w.Counter("vllm:generation_tokens_total", "Output tokens generated since start.",
            static_cast<double>(stats.generation_tokens));
  if (v1) {
    w.Counter("vllm:prefix_cache_queries_total", "Tokens looked up in the prefix cache.",
              static_cast<double>(stats.prefix_cache_queries));
    w.Counter("vllm:prefix_cache_hits_total", "Tokens found in the prefix cache.",
              static_cast<double>(stats.prefix_cache_hits));
  }
  w.Header("vllm:request_success_total", "Finished requests by finish reason.", "counter");
  w.Sample("vllm:request_success_total", "finished_reason=\"stop\"",
           static_cast<double>(stats.finished_stop));
  w.Sample("vllm:request_success_total", "finished_reason=\"length\"",
           static_cast<double>(stats.finished_length));
  if (v1) {
    w.Sample("vllm:request_success_total", "finished_reason=\"abort\"",
             static_cast<double>(stats.finished_abort));
  }

  w.Histogram("vllm:time_to_first_token_seconds", "Seconds from arrival to the first output token.",
              requests.ttft());
  w.Histogram("vllm:time_per_output_token_seconds",
              "Seconds between consecutive output tokens of a request.", requests.tpot());
  w.Histogram("vllm:e2e_request_latency_seconds", "Seconds from arrival to the last output token.",
              requests.e2e());
  w.Histogram("vllm:request_queue_time_seconds", "Seconds from arrival to first scheduling.",
              requests.queue());
  w.Histogram("vllm:request_inference_time_seconds",
              "Seconds from first scheduling to the last output token.", requests.inference());
  w.Histogram("vllm:request_prefill_time_seconds",
              "Seconds from first scheduling to the first output token.", requests.prefill());
  w.Histogram("vllm:request_decode_time_seconds",
              "Seconds from the first to the last output token.", requests.decode());
  w.Histogram("vllm:request_prompt_tokens", "Prompt tokens per finished request.",
              requests.prompt_tokens());
  w.Histogram("vllm:request_generation_tokens", "Output tokens per finished request.",
              requests.generation_tokens());
}

}  // namespace infergate::sim
