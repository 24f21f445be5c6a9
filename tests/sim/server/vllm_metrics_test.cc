#include "sim/server/vllm_metrics.h"

#include <gtest/gtest.h>

#include "datalayer/engine_metrics.h"
#include "sim/engine/engine.h"

namespace infergate::sim {
namespace {

std::string Prom(double v) {
  std::string s;
  AppendPromFloat(s, v);
  return s;
}

TEST(SimServerMetrics, FloatsAsPrometheusClientWritesThem) {
  EXPECT_EQ(Prom(0), "0.0");
  EXPECT_EQ(Prom(1), "1.0");
  EXPECT_EQ(Prom(-1), "-1.0");
  EXPECT_EQ(Prom(0.001), "0.001");
  EXPECT_EQ(Prom(2.5), "2.5");
  EXPECT_EQ(Prom(10), "10.0");
  EXPECT_EQ(Prom(0.015625), "0.015625");
  EXPECT_EQ(Prom(1e-05), "1e-05");
  EXPECT_EQ(Prom(123456), "123456.0");
  EXPECT_EQ(Prom(1234567), "1.234567e+06");
  EXPECT_EQ(Prom(1000000), "1e+06");
  EXPECT_EQ(Prom(1738400123.5), "1.7384001235e+09");
  EXPECT_EQ(Prom(1e16), "1e+16");
  EXPECT_EQ(Prom(1.0 / 0.0), "+Inf");
  EXPECT_EQ(Prom(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(Prom(0.0 / 0.0), "NaN");
}

TEST(SimServerMetrics, Buckets125) {
  EXPECT_EQ(Buckets125(1024), (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}));
  EXPECT_EQ(Buckets125(1), (std::vector<double>{1}));
}

TEST(SimServerMetrics, HistogramBucketsAreInclusive) {
  LocalHistogram h({0.01, 0.02});
  h.Observe(0.02);
  h.Observe(0.005);
  h.Observe(7);
  EXPECT_EQ(h.bucket(0), 1u);
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(2), 1u);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.sum(), 7.025);
}

// Collects what the server's sink collects.
class MetricsSink : public EventSink {
 public:
  explicit MetricsSink(RequestMetrics& m) : m_(m) {}
  void OnToken(const TokenEvent& t) override {
    if (t.index == 0) {
      m_.ObserveFirstToken(ToSeconds(t.time - arrival_));
    } else {
      m_.ObserveInterToken(ToSeconds(t.time - last_[t.id]));
    }
    last_[t.id] = t.time;
  }
  void OnFinished(const FinishedEvent& f) override { m_.ObserveFinished(f); }
  TimeNs arrival_ = 0;

 private:
  RequestMetrics& m_;
  std::unordered_map<RequestId, TimeNs> last_;
};

std::unique_ptr<Engine> TinyEngine(int max_num_seqs = 16, int max_loras = 0) {
  auto p = LoadProfile("tiny");
  EXPECT_TRUE(p.ok());
  p->engine.max_num_seqs = max_num_seqs;
  p->engine.max_loras = max_loras;
  auto e = Engine::Create(*p, 1);
  EXPECT_TRUE(e.ok()) << e.error().message;
  return std::move(*e);
}

EngineRequest Request(RequestId id, int prompt, int max_tokens, std::string lora = "") {
  EngineRequest r;
  r.id = id;
  for (int i = 0; i < prompt; ++i) r.prompt.push_back(static_cast<TokenId>(1000 + i + id * 7));
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.lora = std::move(lora);
  return r;
}

std::string Page(const Engine& e, const RequestMetrics& m, MetricsVersion v, LoraInfoHistory& lora,
                 double now = 1.7e9) {
  lora.Update(e.Stats(), now);
  std::string out;
  AppendVllmMetrics(out, {v, "tiny-model", e.profile().engine.num_gpu_blocks}, e.config(),
                    e.Stats(), m, lora);
  return out;
}

bool Has(const std::string& page, const std::string& line) {
  return page.find(line + "\n") != std::string::npos;
}

TEST(SimServerMetrics, TimingHistogramsFromTinyEngine) {
  auto e = TinyEngine();
  RequestMetrics m(MetricsVersion::kV0, e->config().max_model_len);
  MetricsSink sink(m);
  // Prefill of 100 tokens: 10 + 0.1·100 = 20 ms; then two decode steps of 5 + 1 = 6 ms.
  ASSERT_TRUE(e->Submit(Request(1, 100, 3), 0).ok());
  e->AdvanceTo(FromMillis(100), sink);
  LoraInfoHistory lora;
  const std::string page = Page(*e, m, MetricsVersion::kV0, lora);
  const std::string l = "{model_name=\"tiny-model\",";
  EXPECT_TRUE(Has(page, "vllm:time_to_first_token_seconds_bucket" + l + "le=\"0.01\"} 0.0"));
  EXPECT_TRUE(Has(page, "vllm:time_to_first_token_seconds_bucket" + l + "le=\"0.02\"} 1.0"));
  EXPECT_TRUE(Has(page, "vllm:time_to_first_token_seconds_bucket" + l + "le=\"+Inf\"} 1.0"));
  EXPECT_TRUE(Has(page, "vllm:time_to_first_token_seconds_count{model_name=\"tiny-model\"} 1.0"));
  EXPECT_TRUE(Has(page, "vllm:time_to_first_token_seconds_sum{model_name=\"tiny-model\"} 0.02"));
  EXPECT_TRUE(Has(page, "vllm:time_per_output_token_seconds_bucket" + l + "le=\"0.01\"} 2.0"));
  EXPECT_TRUE(Has(page, "vllm:time_per_output_token_seconds_sum{model_name=\"tiny-model\"} 0.012"));
  EXPECT_TRUE(Has(page, "vllm:e2e_request_latency_seconds_sum{model_name=\"tiny-model\"} 0.032"));
  EXPECT_TRUE(Has(page, "vllm:request_queue_time_seconds_sum{model_name=\"tiny-model\"} 0.0"));
  EXPECT_TRUE(Has(page, "vllm:request_decode_time_seconds_sum{model_name=\"tiny-model\"} 0.012"));
  EXPECT_TRUE(Has(page, "vllm:request_prompt_tokens_bucket" + l + "le=\"100.0\"} 1.0"));
  EXPECT_TRUE(Has(page, "vllm:request_generation_tokens_sum{model_name=\"tiny-model\"} 3.0"));
  EXPECT_TRUE(Has(page,
                  "vllm:request_success_total{model_name=\"tiny-model\",finished_reason=\"length\"}"
                  " 1.0"));
  EXPECT_TRUE(Has(page, "vllm:prompt_tokens_total{model_name=\"tiny-model\"} 100.0"));
  EXPECT_TRUE(Has(page, "vllm:generation_tokens_total{model_name=\"tiny-model\"} 3.0"));
  // V0 0.7's TTFT buckets end at 10 s.
  EXPECT_TRUE(Has(page, "vllm:time_to_first_token_seconds_bucket" + l + "le=\"10.0\"} 1.0"));
  EXPECT_EQ(page.find("le=\"2560.0\""), std::string::npos);
  // Every family has HELP and TYPE.
  EXPECT_NE(page.find("# HELP vllm:request_success_total "), std::string::npos);
  EXPECT_NE(page.find("# TYPE vllm:e2e_request_latency_seconds histogram"), std::string::npos);
  EXPECT_NE(page.find("# TYPE vllm:num_preemptions_total counter"), std::string::npos);
}

TEST(SimServerMetrics, GatewayParserReadsTheEngineStateV0) {
  auto e = TinyEngine(/*max_num_seqs=*/2);
  RequestMetrics m(MetricsVersion::kV0, e->config().max_model_len);
  MetricsSink sink(m);
  // Three requests of 40 prompt tokens: two run (3 blocks each), one waits.
  for (RequestId id = 1; id <= 3; ++id) ASSERT_TRUE(e->Submit(Request(id, 40, 500), 0).ok());
  e->AdvanceTo(FromMillis(1), sink);
  const EngineStats s = e->Stats();
  ASSERT_EQ(s.num_running, 2);
  ASSERT_EQ(s.num_waiting, 1);
  LoraInfoHistory lora;
  const std::string page = Page(*e, m, MetricsVersion::kV0, lora);
  auto parsed = ExtractEndpointMetrics(page);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->engine, EngineKind::kVllm);
  EXPECT_FALSE(parsed->vllm_v1);
  EXPECT_EQ(parsed->malformed_lines, 0u);
  EXPECT_EQ(parsed->running_requests, 2);
  EXPECT_EQ(parsed->waiting_requests, 1);
  EXPECT_DOUBLE_EQ(parsed->kv_usage, s.kv_usage);
  EXPECT_DOUBLE_EQ(parsed->kv_usage, 6.0 / 256.0);
  EXPECT_EQ(parsed->kv_block_size, 16);
  EXPECT_EQ(parsed->kv_num_blocks, 256);
  EXPECT_EQ(parsed->kv_capacity_tokens, 4096);
  EXPECT_TRUE(parsed->Has(kFieldPrefixCachingConfig));
  EXPECT_FALSE(parsed->prefix_caching_enabled);
  EXPECT_FALSE(parsed->Has(kFieldPrefixCacheHitRate));  // -1: off
  EXPECT_TRUE(parsed->Has(kFieldLora));
  EXPECT_EQ(parsed->max_lora, 0);
  EXPECT_TRUE(Has(page, "vllm:num_requests_swapped{model_name=\"tiny-model\"} 0.0"));
  EXPECT_TRUE(Has(page, "vllm:gpu_prefix_cache_hit_rate{model_name=\"tiny-model\"} -1.0"));
  EXPECT_NE(page.find("num_gpu_blocks_override=\"256\""), std::string::npos);
}

TEST(SimServerMetrics, GatewayParserReadsTheEngineStateV1WithLora) {
  auto e = TinyEngine(/*max_num_seqs=*/16, /*max_loras=*/2);
  RequestMetrics m(MetricsVersion::kV1, e->config().max_model_len);
  MetricsSink sink(m);
  ASSERT_TRUE(e->Submit(Request(1, 40, 500, "ad1"), 0).ok());
  ASSERT_TRUE(e->Submit(Request(2, 40, 500, "ad2"), 0).ok());
  ASSERT_TRUE(e->Submit(Request(3, 40, 500), 0).ok());
  e->AdvanceTo(FromMillis(1), sink);
  const EngineStats s = e->Stats();
  LoraInfoHistory lora;
  lora.Update(EngineStats{}, 1.0e9);  // an older combination: no adapters
  const std::string page = Page(*e, m, MetricsVersion::kV1, lora, 1.7e9);
  auto parsed = ExtractEndpointMetrics(page);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->vllm_v1);
  EXPECT_EQ(parsed->running_requests, s.num_running);
  EXPECT_EQ(parsed->waiting_requests, s.num_waiting);
  EXPECT_DOUBLE_EQ(parsed->kv_usage, s.kv_usage);
  EXPECT_EQ(parsed->kv_capacity_tokens, 4096);
  EXPECT_TRUE(parsed->Has(kFieldPrefixCacheCounters));
  EXPECT_EQ(parsed->prefix_cache_queries, static_cast<double>(s.prefix_cache_queries));
  // The newest LoRA series wins.
  EXPECT_EQ(parsed->running_lora_adapters, s.running_loras);
  EXPECT_EQ(parsed->running_lora_adapters, (std::vector<std::string>{"ad1", "ad2"}));
  EXPECT_EQ(parsed->max_lora, 2);
  EXPECT_NE(page.find("vllm:kv_cache_usage_perc{model_name=\"tiny-model\",engine=\"0\"}"),
            std::string::npos);
  EXPECT_EQ(page.find("vllm:gpu_cache_usage_perc"), std::string::npos);
  EXPECT_EQ(page.find("vllm:num_requests_swapped"), std::string::npos);
  EXPECT_NE(page.find("finished_reason=\"abort\""), std::string::npos);
  EXPECT_NE(page.find("le=\"2560.0\""), std::string::npos);
  // Both LoRA combinations are on the page.
  EXPECT_NE(page.find("running_lora_adapters=\"\",max_lora=\"2\",waiting_lora_adapters=\"\"} "
                      "1e+09"),
            std::string::npos);
}

TEST(SimServerMetrics, AbortsAreCountedOnlyInV1) {
  for (MetricsVersion v : {MetricsVersion::kV0, MetricsVersion::kV1}) {
    auto e = TinyEngine();
    RequestMetrics m(v, e->config().max_model_len);
    MetricsSink sink(m);
    ASSERT_TRUE(e->Submit(Request(1, 40, 500), 0).ok());
    e->AdvanceTo(FromMillis(50), sink);
    ASSERT_TRUE(e->Abort(1, FromMillis(50)));
    e->AdvanceTo(FromMillis(60), sink);
    EXPECT_EQ(m.e2e().count(), v == MetricsVersion::kV1 ? 1u : 0u);
  }
}

TEST(SimServerMetrics, LoraHistoryKeepsTheNewestCombinations) {
  LoraInfoHistory h;
  EngineStats s;
  for (int i = 0; i < 20; ++i) {
    s.running_loras = {"a" + std::to_string(i)};
    h.Update(s, i);
  }
  ASSERT_EQ(h.entries().size(), LoraInfoHistory::kLoraInfoHistory);
  EXPECT_EQ(h.entries().front().running, "a4");
  EXPECT_EQ(h.entries().back().running, "a19");
  s.running_loras = {"a10"};
  h.Update(s, 99);
  EXPECT_EQ(h.entries().back().running, "a10");
  EXPECT_EQ(h.entries().back().time, 99);
  EXPECT_EQ(h.entries().size(), LoraInfoHistory::kLoraInfoHistory);
}

}  // namespace
}  // namespace infergate::sim
