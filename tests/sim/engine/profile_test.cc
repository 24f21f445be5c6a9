#include "sim/engine/profile.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "sim/engine/engine_config.h"

namespace infergate::sim {
namespace {

const char* kMinimal = R"(
name: mini
model: {layers: 2, hidden: 64, heads: 4, kv_heads: 2, intermediate: 128, vocab: 1000}
engine: {max_model_len: 256, num_gpu_blocks: 64}
timing: {mode: linear, prefill_base_ms: 1, prefill_per_token_ms: 0.01, decode_base_ms: 1}
)";

std::string ErrorOf(std::string_view yaml) {
  auto p = ParseProfile(yaml, "x.yaml");
  return p.ok() ? "" : p.error().message;
}

TEST(SimProfile, EveryBuiltinProfileLoadsAndResolves) {
  const auto names = ListBuiltinProfiles();
  EXPECT_NE(std::find(names.begin(), names.end(), "tiny"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "qwq-32b-tp2pp2"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "llama-3.1-8b-h100"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "llama-3.1-70b-h100-tp8"), names.end());
  for (const auto& name : names) {
    auto p = LoadProfile(name);
    ASSERT_TRUE(p.ok()) << name << ": " << p.error().message;
    EXPECT_EQ(p->name, name);
    auto c = ResolveEngineConfig(*p);
    ASSERT_TRUE(c.ok()) << name << ": " << c.error().message;
    EXPECT_GT(c->num_gpu_blocks, 0);
  }
}

TEST(SimProfile, SeedProfileResolvesToTheCalibratedCache) {
  auto p = LoadProfile("qwq-32b-tp2pp2");
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto c = ResolveEngineConfig(*p);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->version, EngineVersion::kV0);
  EXPECT_EQ(c->num_gpu_blocks, 3200);
  EXPECT_EQ(c->blocks_per_virtual_engine, 1600);
  EXPECT_EQ(c->kv_capacity_tokens(), 51200);
  EXPECT_EQ(c->watermark_blocks, 16);
  EXPECT_EQ(c->max_num_batched_tokens, 16384);  // max(max_model_len, 2048)
  EXPECT_FALSE(c->chunked_prefill);
  EXPECT_FALSE(c->prefix_caching);
  EXPECT_EQ(c->pipeline_parallel, 2);
  // 16 tokens x 32 layers x K,V x 4 KV heads per GPU x 128 x 2 bytes.
  EXPECT_EQ(c->block_bytes_per_gpu, 1 << 20);
}

TEST(SimProfile, DefaultsFollowVllm) {
  auto p = ParseProfile(kMinimal, "mini.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto c = ResolveEngineConfig(*p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->max_num_batched_tokens, 2048);
  EXPECT_FALSE(c->chunked_prefill);
  Profile v1 = *p;
  v1.engine.version = EngineVersion::kV1;
  c = ResolveEngineConfig(v1);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->chunked_prefill);
  EXPECT_TRUE(c->prefix_caching);
  EXPECT_EQ(c->max_num_batched_tokens, 2048);
  Profile long_ctx = *p;
  long_ctx.engine.max_model_len = 40000;
  long_ctx.engine.num_gpu_blocks = 4000;
  c = ResolveEngineConfig(long_ctx);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->chunked_prefill);  // V0 turns it on above 32K
}

TEST(SimProfile, LoadsFromAFilePath) {
  const std::string path = ::testing::TempDir() + "/ig_profile_test.yaml";
  {
    std::ofstream out(path);
    out << kMinimal;
  }
  auto p = LoadProfile(path);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->name, "mini");
  EXPECT_EQ(p->source, path);
  std::remove(path.c_str());
  auto missing = LoadProfile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);
}

TEST(SimProfile, UnknownNameListsTheBuiltins) {
  auto p = LoadProfile("no-such-profile");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("tiny"), std::string::npos);
}

TEST(SimProfile, ErrorsNameTheFileLineAndField) {
  EXPECT_EQ(ErrorOf("model: {layers: sixty}\n"),
            "x.yaml:1: model.layers: expected an integer, got 'sixty'");
  EXPECT_EQ(ErrorOf("name: a\nmodel:\n  layers: 2\n  hiden: 3\n"),
            "x.yaml:4: model.hiden: unknown field (expected one of: name, layers, hidden, heads, "
            "kv_heads, head_dim, intermediate, vocab, params, dtype_bytes, kv_dtype_bytes, "
            "tied_embeddings)");
  EXPECT_NE(ErrorOf("engine: {version: v2}\nmodel: {layers: 1}")
                .find("engine.version: expected one of v0, v1, got 'v2'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("model: [1, 2]").find("model: expected a mapping"), std::string::npos);
  EXPECT_NE(ErrorOf("model: {layers: 2").find("invalid YAML"), std::string::npos);
  EXPECT_NE(ErrorOf("bogus: 1").find("bogus: unknown field"), std::string::npos);
  EXPECT_NE(ErrorOf("engine: {max_model_len: 10}").find("model: missing"), std::string::npos);
  EXPECT_NE(ErrorOf("engine: {enforce_eager: maybe}\nmodel: {}")
                .find("engine.enforce_eager: expected true or false, got 'maybe'"),
            std::string::npos);
}

TEST(SimProfile, ValidationNamesTheField) {
  auto base = ParseProfile(kMinimal, "mini.yaml");
  ASSERT_TRUE(base.ok());
  auto err = [&](auto mutate) {
    Profile p = *base;
    mutate(p);
    Status s = ValidateProfile(p);
    return s.ok() ? std::string() : s.error().message;
  };
  EXPECT_EQ(err([](Profile& p) { p.model.layers = 0; }), "mini.yaml: model.layers: must be > 0");
  EXPECT_NE(err([](Profile& p) { p.parallel.tensor = 3; }).find("parallel.tensor: must divide"),
            std::string::npos);
  EXPECT_NE(err([](Profile& p) {
              p.engine.gpu_memory_utilization = 1.5;
            }).find("engine.gpu_memory_utilization"),
            std::string::npos);
  EXPECT_NE(err([](Profile& p) {
              p.engine.max_num_batched_tokens = 100;
            }).find("engine.max_num_batched_tokens"),
            std::string::npos);
  EXPECT_NE(err([](Profile& p) {
              p.engine.version = EngineVersion::kV1;
              p.parallel.pipeline = 2;
            }).find("not modelled"),
            std::string::npos);
  EXPECT_NE(err([](Profile& p) {
              p.timing.mode = TimingMode::kRoofline;
            }).find("hardware.memory_bandwidth_gbs"),
            std::string::npos);
  EXPECT_NE(err([](Profile& p) {
              p.eos.model = EosModel::kGeometric;
              p.eos.mean_tokens = 0;
            }).find("eos.mean_tokens"),
            std::string::npos);
  EXPECT_NE(err([](Profile& p) { p.engine.num_gpu_blocks = 0; }).find("hardware.memory_gib"),
            std::string::npos);
}

TEST(SimProfile, ModelThatDoesNotFitIsAnError) {
  auto p = LoadProfile("qwq-32b-tp2pp2");
  ASSERT_TRUE(p.ok());
  p->parallel.pipeline = 1;  // 65 GB of weights on two 22 GiB GPUs
  auto c = ResolveEngineConfig(*p);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("does not fit"), std::string::npos);
  p->parallel.pipeline = 2;
  p->engine.max_model_len = 60000;  // more than 51,200 tokens of cache
  c = ResolveEngineConfig(*p);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("max seq len (60000)"), std::string::npos);
}

TEST(SimProfile, ParamsFromDimensions) {
  ModelSpec m;
  m.layers = 64;
  m.hidden = 5120;
  m.heads = 40;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.intermediate = 27648;
  m.vocab = 152064;
  // Qwen2.5-32B without its small q/k/v biases and norms: 32.76e9 parameters.
  EXPECT_NEAR(ModelParams(m) / 1e9, 32.76, 0.01);
}

}  // namespace
}  // namespace infergate::sim
