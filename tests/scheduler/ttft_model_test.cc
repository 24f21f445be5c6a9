#include "scheduler/ttft_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "scheduler/saturation_detector.h"

namespace infergate {
namespace {

struct ViewFixture {
  EndpointMetrics metrics;
  LedgerCounts ledger;
  EndpointView view;

  ViewFixture() {
    view.metrics = &metrics;
    view.ledger = &ledger;
    view.has_metrics = view.scrape_ok = view.fresh = true;
    view.metrics_age = 0;
  }
};

TtftModelParams Simple() {
  TtftModelParams p;
  p.prefill_tokens_per_s = 1000;
  p.request_overhead_s = 0;
  p.decode_interference = 0;
  p.decode_step_s = 0.05;
  p.decode_step_per_seq_s = 0;
  p.decode_weight = 0;
  p.kv_admit_fraction = 1.0;
  p.kv_overflow_penalty = 2.0;
  return p;
}

TEST(PredictTtft, QueueAndOwnPrefillInTokens) {
  ViewFixture f;
  f.view.load.prefill_backlog_tokens = 3000;
  RequestShape r{500, 100, 16, {}};
  TtftPrediction p = PredictTtft(Simple(), f.view, r);
  EXPECT_DOUBLE_EQ(p.queue_s, 3.0);
  EXPECT_DOUBLE_EQ(p.prefill_s, 0.5);
  EXPECT_DOUBLE_EQ(p.ttft_s, 3.5);
  EXPECT_EQ(p.kv_demand_tokens, -1);  // capacity unknown
  EXPECT_TRUE(p.kv_fits);
  EXPECT_DOUBLE_EQ(p.cost_s, 3.5);
}

TEST(PredictTtft, CachedPrefixSkipsPrefillUnlessCachingIsOff) {
  ViewFixture f;
  f.view.prefix_blocks = 20;  // 320 tokens
  RequestShape r{500, 0, 16, {}};
  TtftPrediction on = PredictTtft(Simple(), f.view, r);
  EXPECT_EQ(on.cached_tokens, 320);
  EXPECT_DOUBLE_EQ(on.prefill_s, 0.18);
  f.view.prefix_blocks = 100;  // more than the prompt: capped at prompt - 1
  EXPECT_EQ(PredictTtft(Simple(), f.view, r).cached_tokens, 499);
  f.view.prefix_caching = false;
  TtftPrediction off = PredictTtft(Simple(), f.view, r);
  EXPECT_EQ(off.cached_tokens, 0);
  EXPECT_DOUBLE_EQ(off.prefill_s, 0.5);
  TtftModelParams half = Simple();
  half.prefix_credit = 0.5;
  f.view.prefix_caching = true;
  f.view.prefix_blocks = 20;
  EXPECT_EQ(PredictTtft(half, f.view, r).cached_tokens, 160);
}

TEST(PredictTtft, KvOverflowIsPriced) {
  ViewFixture f;
  f.view.kv_capacity_tokens = 10000;
  f.view.load.kv_tokens_est = 8000;
  f.view.load.prefill_backlog_tokens = 1000;
  f.view.load.running_est = 0;
  RequestShape r{1500, 0, 16, {}};
  TtftPrediction p = PredictTtft(Simple(), f.view, r);
  EXPECT_EQ(p.kv_demand_tokens, 10500);
  EXPECT_FALSE(p.kv_fits);
  EXPECT_DOUBLE_EQ(p.kv_wait_s, 2.0 * 500 / 1000);
  r.prompt_tokens = 1000;
  TtftPrediction fits = PredictTtft(Simple(), f.view, r);
  EXPECT_TRUE(fits.kv_fits);
  EXPECT_EQ(fits.kv_wait_s, 0);
}

TEST(PredictTtft, RunningSequencesGrowWhileTheRequestWaits) {
  ViewFixture f;
  f.view.kv_capacity_tokens = 100000;
  f.view.load.kv_tokens_est = 0;
  f.view.load.running_est = 10;
  f.view.load.prefill_backlog_tokens = 1000;  // 1 s queue
  RequestShape r{1000, 0, 16, {}};            // 1 s prefill
  TtftPrediction p = PredictTtft(Simple(), f.view, r);
  // 10 sequences x 2 s / 0.05 s per token = 400 tokens of growth.
  EXPECT_EQ(p.kv_demand_tokens, 1000 + 1000 + 400);
}

TEST(PredictTtft, LoraLoadingCosts) {
  ViewFixture f;
  f.metrics.present = kFieldLora;
  f.metrics.max_lora = 2;
  RequestShape r{100, 0, 16, "sql"};
  TtftModelParams p = Simple();
  p.lora_load_s = 0.3;
  p.lora_wait_s = 5;
  f.metrics.running_lora_adapters = {"sql"};
  EXPECT_EQ(PredictTtft(p, f.view, r).lora_s, 0);
  f.metrics.running_lora_adapters = {"other"};
  f.metrics.waiting_lora_adapters = {"sql"};
  EXPECT_EQ(PredictTtft(p, f.view, r).lora_s, 0.3);
  f.metrics.waiting_lora_adapters = {};
  EXPECT_EQ(PredictTtft(p, f.view, r).lora_s, 0.3);  // a free slot
  f.metrics.running_lora_adapters = {"a", "b"};
  EXPECT_EQ(PredictTtft(p, f.view, r).lora_s, 5);  // every slot taken
  r.lora_adapter = {};
  EXPECT_EQ(PredictTtft(p, f.view, r).lora_s, 0);
}

TEST(PredictTtft, DecodeTermFavoursFewerRunningSequences) {
  ViewFixture a, b;
  a.view.load.running_est = 2;
  b.view.load.running_est = 20;
  TtftModelParams p = Simple();
  p.decode_weight = 0.1;
  p.decode_step_per_seq_s = 0.001;
  RequestShape r{100, 1000, 16, {}};
  TtftPrediction pa = PredictTtft(p, a.view, r), pb = PredictTtft(p, b.view, r);
  EXPECT_DOUBLE_EQ(pa.ttft_s, pb.ttft_s);
  EXPECT_DOUBLE_EQ(pa.tpot_s, 0.05 + 0.003);
  EXPECT_LT(pa.cost_s, pb.cost_s);
}

TEST(SaturationDetector, GieRuleWithLedgerAndStaleness) {
  SaturationDetector d;
  ViewFixture f;
  f.view.waiting = 4;
  f.view.kv_usage = 0.4;
  f.view.load.waiting_est = 6;
  f.view.load.kv_usage_est = 0.4;
  EXPECT_DOUBLE_EQ(d.Utilisation(f.view), 1.2);
  SaturationOptions scraped_only;
  scraped_only.use_ledger = false;
  EXPECT_DOUBLE_EQ(SaturationDetector(scraped_only).Utilisation(f.view), 0.8);
  f.view.metrics_age = 201 * kNanosPerMilli;
  EXPECT_TRUE(std::isinf(d.Utilisation(f.view)));
  EXPECT_TRUE(d.IsSaturated({}));  // no endpoint has room
  ViewFixture g;
  g.view.load.kv_usage_est = 0.79;
  std::vector<EndpointView> both{f.view, g.view};
  EXPECT_FALSE(d.IsSaturated(both));
}

}  // namespace
}  // namespace infergate
