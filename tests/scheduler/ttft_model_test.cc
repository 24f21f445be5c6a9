#include "scheduler/ttft_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

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
    view.has_metrics = view.scrape_ok = view.fresh = view.reachable = true;
    view.metrics_age = 0;
    view.trust = 1;
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
  p.kv_pressure_s = 0;
  p.inflight_weight = 0;
  p.prefill_work_weight = 0;
  p.eviction_weight = 0;
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

TEST(PredictTtft, QueueCountsOnlyTheUncachedPartOfAwaitingPrompts) {
  ViewFixture f;
  // Two prompts of 3,000 tokens await their first token, most of each already cached.
  f.ledger.awaiting = 2;
  f.ledger.awaiting_tokens = 6000;
  f.ledger.awaiting_uncached_tokens = 600;
  f.view.load.prefill_backlog_tokens = 6000;
  TtftModelParams p = Simple();
  p.request_overhead_s = 0.01;
  TtftPrediction t = PredictTtft(p, f.view, RequestShape{100, 0, 16, {}});
  EXPECT_DOUBLE_EQ(t.queue_s, 0.6 + 2 * 0.01);
  // Waiting requests the gateway did not send count at the mean prompt, weighted.
  f.view.load.prefill_backlog_tokens = 6000 + 2000;
  f.view.load.foreign_waiting = 1;
  p.foreign_waiting_weight = 0.5;
  t = PredictTtft(p, f.view, RequestShape{100, 0, 16, {}});
  EXPECT_DOUBLE_EQ(t.queue_s, (600 + 0.5 * 2000) / 1000 + 2.5 * 0.01);
}

// While a page is late the responses still tell how far the endpoint got: the time since
// its oldest awaiting prompt could start prefilling is work done, at most that prompt's own.
TEST(PredictTtft, TimeSpentOnTheOldestPrefillIsTakenOffTheQueue) {
  ViewFixture f;
  f.ledger.awaiting = 2;
  f.ledger.awaiting_tokens = f.ledger.awaiting_uncached_tokens = 3000;
  f.ledger.prefill_head_tokens = 2000;  // the oldest: 2 s of prefill at 1,000 tokens/s
  f.view.load.prefill_backlog_tokens = 3000;
  const RequestShape r{100, 0, 16, {}};
  TtftModelParams p = Simple();
  f.view.prefill_elapsed_s = 1.5;
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r).queue_s, 3.0 - 1.5);
  f.view.prefill_elapsed_s = 5;  // longer than its prefill should take: still one 1 s left
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r).queue_s, 3.0 - 2.0);
  f.view.prefill_elapsed_s = 1.5;
  p.prefill_progress = 0.5;
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r).queue_s, 3.0 - 0.75);
  p.prefill_progress = 0;
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r).queue_s, 3.0);
  // Nothing awaiting: nothing to take off.
  p.prefill_progress = 1;
  f.ledger.awaiting = 0;
  f.ledger.awaiting_tokens = f.ledger.awaiting_uncached_tokens = 0;
  f.view.load.prefill_backlog_tokens = 0;
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r).queue_s, 0.0);
}

TEST(PredictTtft, LearnedPrefillTimingReplacesTheConfiguredOne) {
  ViewFixture f;
  f.view.load.prefill_backlog_tokens = 1000;
  f.ledger.awaiting_uncached_tokens = 1000;
  f.ledger.awaiting_tokens = 1000;
  const RequestShape r{2000, 0, 16, {}};
  TtftModelParams p = Simple();
  p.learn_after = 5;
  PrefillTiming learned{0.05, 0.0001, 4};  // too few samples: ignored
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r, &learned).prefill_s, 2.0);
  learned.samples = 5;
  const TtftPrediction t = PredictTtft(p, f.view, r, &learned);
  EXPECT_DOUBLE_EQ(t.prefill_s, 0.05 + 0.2);
  EXPECT_DOUBLE_EQ(t.queue_s, 0.1);  // per token; the base is paid once, by the request
}

// An endpoint with a 10,000-token cache and the ledger's in-flight requests.
struct OutlookFixture : ViewFixture {
  KvOutlook outlook;
  OutlookFixture() {
    outlook.capacity = 10000;
    outlook.tpot_s = 0.01;  // 100 tokens per second per sequence
    view.kv_capacity_tokens = 10000;
    view.load.kv_tokens_est = 0;
    view.kv_outlook = &outlook;
  }
  void Add(double tokens, double finish_s, bool decoding = true) {
    outlook.inflight.push_back({tokens, finish_s, decoding});
    outlook.Finalize();
  }
};

TEST(KvOutlook, ProjectsHoldingsForward) {
  OutlookFixture f;
  f.outlook.other = 1000;
  f.Add(3000, 10);  // grows 100 tokens/s, frees ~4,000 at t = 10 s
  f.Add(4000, 2);   // frees ~4,200 at t = 2 s
  EXPECT_DOUBLE_EQ(f.outlook.HeldNow(), 8000);
  EXPECT_DOUBLE_EQ(f.outlook.SecondsUntilFree(1500), 0);
  // 3,000 free only after the 2 s request leaves: at 2 s the other holds 3,200 + 1,000.
  EXPECT_DOUBLE_EQ(f.outlook.SecondsUntilFree(3000), 2);
  EXPECT_DOUBLE_EQ(f.outlook.SecondsUntilFree(9500), 3600);  // never (the other stays)
  // A 1,000 + 500 token request admitted now: the peak is just before the 2 s finish:
  // 1,000 + (3,000 + 200) + (4,000 + 200) + (1,000 + 200).
  EXPECT_DOUBLE_EQ(f.outlook.PeakDemand(1000, 500), 9600);
  // One that finishes within 1 s peaks at its own end.
  EXPECT_DOUBLE_EQ(f.outlook.PeakDemand(1000, 100), 1000 + 3100 + 4100 + 1100);
}

TEST(PredictTtft, WithTheOutlookKvWaitIsTheTimeUntilRoomAndOverflowIsPriced) {
  OutlookFixture f;
  f.Add(7000, 5);
  TtftModelParams p = Simple();
  p.kv_overflow_penalty = 1;
  TtftPrediction t = PredictTtft(p, f.view, RequestShape{2000, 100, 16, {}});
  EXPECT_TRUE(t.kv_fits);
  EXPECT_EQ(t.kv_wait_s, 0);
  // Peak just before the request ends at 1 s: 7,000 + 100 + 2,000 + 100.
  EXPECT_EQ(t.kv_demand_tokens, 9200);
  EXPECT_EQ(t.preempt_s, 0);
  t = PredictTtft(p, f.view, RequestShape{4000, 300, 16, {}});
  EXPECT_FALSE(t.kv_fits);
  EXPECT_DOUBLE_EQ(t.kv_wait_s, 5);  // the 7,000 leave at 5 s
  EXPECT_DOUBLE_EQ(t.ttft_s, t.queue_s + t.prefill_s + 5);
  // Admitted now it would peak at 7,000 + 300 + 4,000 + 300 = 11,600: 1,600 over.
  EXPECT_EQ(t.kv_overflow_tokens, 1600);
  EXPECT_DOUBLE_EQ(t.preempt_s, 1.6);
}

TEST(PredictTtft, BalanceCountsSequencesOnlyUnderKvPressure) {
  OutlookFixture f;
  f.view.load.running_est = 8;
  TtftModelParams p = Simple();
  p.inflight_weight = 2;
  p.kv_balance_from = 0.7;
  f.Add(1000, 1);  // 20% full with the request: no pressure
  const RequestShape r{1000, 0, 16, {}};
  EXPECT_EQ(PredictTtft(p, f.view, r).balance_s, 0);
  f.outlook.other = 7000;  // 90% full: each sequence costs 2 prefills of this prompt
  f.outlook.Finalize();
  EXPECT_DOUBLE_EQ(PredictTtft(p, f.view, r).balance_s, 2 * 8 * 1.0);
}

TEST(PredictTtft, WorkAndEvictionMakeAColdCopyCostlierThanItsTtft) {
  // The warm endpoint holds 4,000 of the prompt's 4,100 tokens but has 4,000 uncached
  // tokens queued; the cold one is idle with a 90%-full cache. Same TTFT (4.1 s).
  ViewFixture warm, cold;
  warm.view.prefix_blocks = 250;
  cold.view.prefix_occupancy = 0.9;
  const RequestShape r{4100, 0, 16, {}};
  TtftModelParams p = Simple();
  warm.ledger.awaiting_uncached_tokens = 4000;
  warm.view.load.prefill_backlog_tokens = 4000;
  warm.ledger.awaiting_tokens = 4000;
  EXPECT_DOUBLE_EQ(PredictTtft(p, warm.view, r).ttft_s, PredictTtft(p, cold.view, r).ttft_s);
  p.prefill_work_weight = 1;
  p.eviction_weight = 1;
  const TtftPrediction w = PredictTtft(p, warm.view, r), c = PredictTtft(p, cold.view, r);
  EXPECT_DOUBLE_EQ(w.work_s, 0.1);
  EXPECT_DOUBLE_EQ(c.work_s, 4.1);
  EXPECT_DOUBLE_EQ(c.evict_s, 4.1 * 0.9);
  EXPECT_LT(w.cost_s, c.cost_s);
  cold.view.prefix_caching = false;  // nothing to evict where nothing is cached
  EXPECT_EQ(PredictTtft(p, cold.view, r).evict_s, 0);
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
  // Old metrics: GIE's rule (no ledger) reads them as saturated; with the ledger the
  // estimates (discounted by age in EstimateLoad) still count: late is not full.
  f.view.metrics_age = 201 * kNanosPerMilli;
  EXPECT_TRUE(std::isinf(SaturationDetector(scraped_only).Utilisation(f.view)));
  EXPECT_DOUBLE_EQ(d.Utilisation(f.view), 1.2);
  // An endpoint that cannot be reached has no room either way.
  f.view.reachable = false;
  EXPECT_TRUE(std::isinf(d.Utilisation(f.view)));
  EXPECT_TRUE(d.IsSaturated({}));  // no endpoint has room
  ViewFixture g;
  g.view.load.kv_usage_est = 0.79;
  std::vector<EndpointView> both{f.view, g.view};
  EXPECT_FALSE(d.IsSaturated(both));
}

}  // namespace
}  // namespace infergate

namespace infergate {
namespace {

TEST(KvOutlook, ProjectDecodingIsTheScalarFormulaBitForBit) {
  // Irregular times (full mantissas after the division), requests past their finish and
  // before their first token, outputs the generated count reaches or not, lengths that are
  // and are not multiples of the vector width.
  std::mt19937_64 rng(7);
  for (std::size_t n : {0, 1, 3, 4, 5, 8, 31, 257}) {
    std::vector<TimeNs> finish_at(n), first_token(n);
    std::vector<double> output(n), finish_s(n), generated(n);
    const TimeNs now = 5'000'000'000 + static_cast<TimeNs>(rng() % 1'000'000'007);
    const double tpot = 0.001 + static_cast<double>(rng() % 100'000) * 1.37e-6;
    for (std::size_t i = 0; i < n; ++i) {
      first_token[i] = now - 2'000'000'000 + static_cast<TimeNs>(rng() % 3'000'000'000);
      output[i] = static_cast<double>(rng() % 2000);
      finish_at[i] = first_token[i] + FromSeconds(output[i] * tpot);
    }
    ProjectDecoding(n, finish_at.data(), first_token.data(), output.data(), now, tpot,
                    finish_s.data(), generated.data());
    for (std::size_t i = 0; i < n; ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(finish_s[i], std::max(0.0, ToSeconds(finish_at[i] - now)));
      EXPECT_EQ(generated[i],
                std::min(output[i], std::max(0.0, ToSeconds(now - first_token[i])) / tpot));
    }
  }
}

}  // namespace
}  // namespace infergate
