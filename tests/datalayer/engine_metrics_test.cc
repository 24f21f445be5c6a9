#include "datalayer/engine_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace infergate {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(IG_DATALAYER_TESTDATA) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string WithCrlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out.push_back('\r');
    out.push_back(c);
  }
  return out;
}

TEST(EngineMetrics, VllmV0Page) {
  Result<EndpointMetrics> r =
      ExtractEndpointMetrics(ReadTestdata("vllm_v0.txt"), EngineKind::kVllm);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const EndpointMetrics& m = *r;
  EXPECT_EQ(m.engine, EngineKind::kVllm);
  EXPECT_FALSE(m.vllm_v1);
  EXPECT_EQ(m.waiting_requests, 3.0);
  EXPECT_EQ(m.running_requests, 9.0);
  EXPECT_DOUBLE_EQ(m.kv_usage, 0.8734375);
  EXPECT_EQ(m.kv_block_size, 16);
  EXPECT_EQ(m.kv_num_blocks, 3200);
  EXPECT_EQ(m.kv_capacity_tokens, 51200);
  EXPECT_TRUE(m.Has(kFieldPrefixCachingConfig));
  EXPECT_FALSE(m.prefix_caching_enabled);
  EXPECT_FALSE(m.Has(kFieldPrefixCacheHitRate));  // -1 means "off"
  EXPECT_FALSE(m.Has(kFieldPrefixCacheCounters));
  EXPECT_TRUE(m.Has(kFieldLora));
  EXPECT_TRUE(m.running_lora_adapters.empty());
  EXPECT_TRUE(m.waiting_lora_adapters.empty());
  EXPECT_EQ(m.max_lora, 2);
  EXPECT_EQ(m.present, kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity |
                           kFieldLora | kFieldPrefixCachingConfig);
  EXPECT_EQ(m.malformed_lines, 0u);
}

TEST(EngineMetrics, VllmV1DataParallelPage) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(ReadTestdata("vllm_v1.txt"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const EndpointMetrics& m = *r;
  EXPECT_EQ(m.engine, EngineKind::kVllm);
  EXPECT_TRUE(m.vllm_v1);
  EXPECT_EQ(m.waiting_requests, 3.0);  // 1 + 2 over the engine="0"/"1" series
  EXPECT_EQ(m.running_requests, 7.0);  // 4 + 3
  EXPECT_DOUBLE_EQ(m.kv_usage, 0.30);  // mean of 0.25 and 0.35
  EXPECT_EQ(m.kv_block_size, 16);
  EXPECT_EQ(m.kv_num_blocks, 54000);
  EXPECT_EQ(m.kv_capacity_tokens, 864000);
  EXPECT_TRUE(m.prefix_caching_enabled);
  EXPECT_EQ(m.prefix_cache_queries, 100000.0);
  EXPECT_EQ(m.prefix_cache_hits, 60000.0);
  // The newest lora_requests_info series wins; lists are trimmed.
  EXPECT_EQ(m.running_lora_adapters, (std::vector<std::string>{"sql-lora", "chat-lora"}));
  EXPECT_EQ(m.waiting_lora_adapters, (std::vector<std::string>{"tweet-lora"}));
  EXPECT_EQ(m.max_lora, 4);
  EXPECT_TRUE(m.HasRunningAdapter("chat-lora"));
  EXPECT_TRUE(m.HasWaitingAdapter("tweet-lora"));
  EXPECT_FALSE(m.HasRunningAdapter("tweet-lora"));
  EXPECT_EQ(m.present, kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity |
                           kFieldLora | kFieldPrefixCacheCounters | kFieldPrefixCachingConfig);
}

TEST(EngineMetrics, SglangPage) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(ReadTestdata("sglang.txt"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const EndpointMetrics& m = *r;
  EXPECT_EQ(m.engine, EngineKind::kSglang);
  EXPECT_EQ(m.waiting_requests, 2.0);
  EXPECT_EQ(m.running_requests, 12.0);
  EXPECT_DOUBLE_EQ(m.kv_usage, 0.32);
  EXPECT_EQ(m.kv_block_size, 16);
  EXPECT_EQ(m.kv_num_blocks, 8000);
  EXPECT_EQ(m.kv_capacity_tokens, 128000);
  EXPECT_DOUBLE_EQ(m.prefix_cache_hit_rate, 0.41);
  EXPECT_EQ(m.present, kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity |
                           kFieldPrefixCacheHitRate);
}

TEST(EngineMetrics, TrtllmPage) {
  Result<EndpointMetrics> r =
      ExtractEndpointMetrics(ReadTestdata("trtllm.txt"), EngineKind::kTrtllm);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const EndpointMetrics& m = *r;
  EXPECT_EQ(m.engine, EngineKind::kTrtllm);
  EXPECT_EQ(m.waiting_requests, 1.0);
  EXPECT_EQ(m.running_requests, 6.0);
  EXPECT_DOUBLE_EQ(m.kv_usage, 0.62);
  EXPECT_EQ(m.kv_block_size, 32);
  EXPECT_EQ(m.kv_num_blocks, 4096);
  EXPECT_EQ(m.kv_capacity_tokens, 131072);
  EXPECT_DOUBLE_EQ(m.prefix_cache_hit_rate, 0.5);
  EXPECT_EQ(m.present, kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity |
                           kFieldPrefixCacheHitRate);
}

TEST(EngineMetrics, LlamacppPage) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(ReadTestdata("llamacpp.txt"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const EndpointMetrics& m = *r;
  EXPECT_EQ(m.engine, EngineKind::kLlamacpp);
  EXPECT_EQ(m.waiting_requests, 1.0);
  EXPECT_EQ(m.running_requests, 2.0);
  // kv_cache_usage_ratio (0.43 on the page) is not load: finished slots keep their cache.
  EXPECT_EQ(m.kv_usage, 0.0);
  EXPECT_EQ(m.kv_capacity_tokens, 0);
  EXPECT_EQ(m.present, kFieldWaiting | kFieldRunning);
}

TEST(EngineMetrics, LlamacppLoadIsBusySlotsWhenTheSlotCountIsKnown) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(ReadTestdata("llamacpp.txt"));
  ASSERT_TRUE(r.ok());
  EndpointMetrics m = *r;
  ApplyLlamacppSlots(m, 4);
  EXPECT_EQ(m.slots, 4);
  EXPECT_DOUBLE_EQ(m.kv_usage, 0.5);  // 2 processing of 4 slots
  EXPECT_TRUE(m.Has(kFieldKvUsage));
  // An idle server with a full-looking cache is idle.
  Result<EndpointMetrics> idle = ExtractEndpointMetrics(
      "llamacpp:kv_cache_usage_ratio 0.97\nllamacpp:requests_processing 0\n"
      "llamacpp:requests_deferred 0\n");
  ASSERT_TRUE(idle.ok());
  EndpointMetrics i = *idle;
  ApplyLlamacppSlots(i, 4);
  EXPECT_EQ(i.kv_usage, 0.0);
  // Other engines are left alone.
  Result<EndpointMetrics> v = ExtractEndpointMetrics(ReadTestdata("vllm_v0.txt"));
  ASSERT_TRUE(v.ok());
  EndpointMetrics vm = *v;
  ApplyLlamacppSlots(vm, 4);
  EXPECT_EQ(vm.kv_usage, v->kv_usage);
}

TEST(EngineMetrics, LlamacppSlotCountFromPropsOrSlots) {
  EXPECT_EQ(*ParseLlamacppSlots(R"({"total_slots":4,"default_generation_settings":{}})"), 4);
  EXPECT_EQ(*ParseLlamacppSlots(R"([{"id":0},{"id":1},{"id":2}])"), 3);
  EXPECT_FALSE(ParseLlamacppSlots(R"({"total_slots":-1})").ok());
  EXPECT_FALSE(ParseLlamacppSlots("<html>").ok());
  EXPECT_FALSE(ParseLlamacppSlots("[]").ok());
}

TEST(EngineMetrics, CrlfPagesGiveTheSameValues) {
  for (const char* name :
       {"vllm_v0.txt", "vllm_v1.txt", "sglang.txt", "trtllm.txt", "llamacpp.txt"}) {
    std::string page = ReadTestdata(name);
    Result<EndpointMetrics> a = ExtractEndpointMetrics(page);
    Result<EndpointMetrics> b = ExtractEndpointMetrics(WithCrlf(page));
    ASSERT_TRUE(a.ok() && b.ok()) << name;
    EXPECT_EQ(a->waiting_requests, b->waiting_requests) << name;
    EXPECT_EQ(a->running_requests, b->running_requests) << name;
    EXPECT_EQ(a->kv_usage, b->kv_usage) << name;
    EXPECT_EQ(a->kv_capacity_tokens, b->kv_capacity_tokens) << name;
    EXPECT_EQ(a->present, b->present) << name;
  }
}

TEST(EngineMetrics, DetectionPicksTheEngineFromMetricNames) {
  EXPECT_EQ(ExtractEndpointMetrics(ReadTestdata("vllm_v0.txt"))->engine, EngineKind::kVllm);
  EXPECT_EQ(ExtractEndpointMetrics(ReadTestdata("trtllm.txt"))->engine, EngineKind::kTrtllm);
  EXPECT_EQ(ExtractEndpointMetrics(ReadTestdata("llamacpp.txt"))->engine, EngineKind::kLlamacpp);
}

TEST(EngineMetrics, ExplicitEngineIgnoresOtherEnginesNames) {
  // A vLLM page read as SGLang has no SGLang load metrics: an error, not zeros.
  Result<EndpointMetrics> r =
      ExtractEndpointMetrics(ReadTestdata("vllm_v0.txt"), EngineKind::kSglang);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no sglang load metrics"), std::string::npos);
}

TEST(EngineMetrics, SeveralModelNameSeriesAreSummed) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(
      "vllm:num_requests_waiting{model_name=\"a\"} 2\n"
      "vllm:num_requests_waiting{model_name=\"b\"} 5\n"
      "vllm:num_requests_running{model_name=\"b\"} 1\n"
      "vllm:num_requests_running{model_name=\"a\"} 4\n"
      "vllm:gpu_cache_usage_perc{model_name=\"a\"} 0.5\n"
      "vllm:gpu_cache_usage_perc{model_name=\"b\"} 0.7\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->waiting_requests, 7.0);
  EXPECT_EQ(r->running_requests, 5.0);
  EXPECT_DOUBLE_EQ(r->kv_usage, 0.6);
}

TEST(EngineMetrics, CurrentKvNamePreferredOverLegacy) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(
      "vllm:gpu_cache_usage_perc{model_name=\"a\"} 0.9\n"
      "vllm:kv_cache_usage_perc{model_name=\"a\"} 0.2\n");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->kv_usage, 0.2);
  EXPECT_TRUE(r->vllm_v1);
}

TEST(EngineMetrics, NanAndInfGaugesAreIgnoredAndUsageClamped) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(
      "vllm:num_requests_waiting NaN\n"
      "vllm:num_requests_running +Inf\n"
      "vllm:gpu_cache_usage_perc 1.7\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->Has(kFieldWaiting));
  EXPECT_FALSE(r->Has(kFieldRunning));
  EXPECT_EQ(r->kv_usage, 1.0);
}

// Found by fuzzing: absurd gauges must not overflow integer conversions.
TEST(EngineMetrics, AbsurdValuesAreBoundedOrUnknown) {
  Result<EndpointMetrics> trt = ExtractEndpointMetrics(
      "trtllm_num_requests_running 1e34\n"
      "trtllm_num_requests_waiting -5\n"
      "trtllm_kv_cache_tokens_per_block 32\n"
      "trtllm_kv_cache_max_blocks 1e34\n");
  ASSERT_TRUE(trt.ok());
  EXPECT_EQ(trt->running_requests, 1e9);
  EXPECT_EQ(trt->waiting_requests, 0.0);
  EXPECT_EQ(trt->kv_num_blocks, 0);
  EXPECT_FALSE(trt->Has(kFieldKvCapacity));
  Result<EndpointMetrics> vllm = ExtractEndpointMetrics(
      "vllm:num_requests_waiting 0\n"
      "vllm:cache_config_info{block_size=\"9223372036854775807\",num_gpu_blocks=\"16\"} 1\n"
      "vllm:cache_config_info{block_size=\"1099511627776\",num_gpu_blocks=\"1099511627776\"} 1\n");
  ASSERT_TRUE(vllm.ok());
  EXPECT_FALSE(vllm->Has(kFieldKvCapacity));  // 2^40 x 2^40 tokens is not a server
  Result<EndpointMetrics> sg = ExtractEndpointMetrics(
      "sglang:max_total_num_tokens 1e300\n"
      "sglang:num_queue_reqs 1\n");
  ASSERT_TRUE(sg.ok());
  EXPECT_EQ(sg->kv_capacity_tokens, 0);
}

TEST(EngineMetrics, CacheConfigWithNoneBlocksHasNoCapacity) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(
      "vllm:num_requests_waiting 0\n"
      "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"None\"} 1\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->Has(kFieldKvCapacity));
  EXPECT_EQ(r->kv_capacity_tokens, 0);
}

TEST(EngineMetrics, NotAMetricsPageIsAnError) {
  Result<EndpointMetrics> html =
      ExtractEndpointMetrics("<html><body>502 Bad Gateway</body></html>");
  ASSERT_FALSE(html.ok());
  EXPECT_NE(html.error().message.find("no metrics of a known engine"), std::string::npos);
  EXPECT_NE(html.error().message.find("line 1"), std::string::npos);
  EXPECT_FALSE(ExtractEndpointMetrics("").ok());
  EXPECT_FALSE(ExtractEndpointMetrics("process_cpu_seconds_total 12\n").ok());
}

TEST(EngineMetrics, MalformedLinesDoNotHideGoodOnes) {
  Result<EndpointMetrics> r = ExtractEndpointMetrics(
      "vllm:num_requests_waiting{model_name=\"a\" 99\n"
      "vllm:num_requests_waiting{model_name=\"a\"} 4\n"
      "garbage line here\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->waiting_requests, 4.0);
  EXPECT_EQ(r->malformed_lines, 2u);
}

TEST(EngineMetrics, ParseEngineKind) {
  EXPECT_EQ(*ParseEngineKind("vllm"), EngineKind::kVllm);
  EXPECT_EQ(*ParseEngineKind("vLLM-V1"), EngineKind::kVllm);
  EXPECT_EQ(*ParseEngineKind("sglang"), EngineKind::kSglang);
  EXPECT_EQ(*ParseEngineKind("trt-llm"), EngineKind::kTrtllm);
  EXPECT_EQ(*ParseEngineKind("llama.cpp"), EngineKind::kLlamacpp);
  EXPECT_EQ(*ParseEngineKind(""), EngineKind::kAuto);
  Result<EngineKind> bad = ParseEngineKind("tgi");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unknown engine type 'tgi'"), std::string::npos);
  EXPECT_EQ(EngineKindName(EngineKind::kTrtllm), "trtllm");
}

}  // namespace
}  // namespace infergate
