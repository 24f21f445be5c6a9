#include "scheduler/token_ledger.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "scheduler/endpoint_view.h"

namespace infergate {
namespace {

constexpr TimeNs kMs = kNanosPerMilli;

TEST(TokenLedger, DispatchFirstTokenFinishMoveTokens) {
  TokenLedger l;
  auto h = l.Dispatch(0, 10 * kMs, 1000, 200);
  ASSERT_NE(h, TokenLedger::kInvalidHandle);
  const LedgerCounts& c = l.Counts(0);
  EXPECT_EQ(c.inflight, 1);
  EXPECT_EQ(c.awaiting, 1);
  EXPECT_EQ(c.awaiting_tokens, 1000);
  EXPECT_EQ(c.expected_output_tokens, 200);
  EXPECT_EQ(c.new_awaiting, 1);  // no scrape yet: everything is new

  EXPECT_TRUE(l.FirstToken(h, 20 * kMs));
  EXPECT_EQ(c.awaiting, 0);
  EXPECT_EQ(c.awaiting_tokens, 0);
  EXPECT_EQ(c.decoding, 1);
  EXPECT_EQ(c.decoding_tokens, 1000);
  EXPECT_EQ(c.new_decoding, 1);
  EXPECT_FALSE(l.FirstToken(h, 21 * kMs));  // only once

  EXPECT_TRUE(l.Finish(h, 30 * kMs));
  EXPECT_EQ(c.inflight, 0);
  EXPECT_EQ(c.decoding, 0);
  EXPECT_EQ(c.expected_output_tokens, 0);
  EXPECT_EQ(c.new_decoding_tokens, 0);
  EXPECT_FALSE(l.Finish(h, 31 * kMs));  // stale handle
  EXPECT_EQ(l.inflight(), 0u);
}

// The oldest awaiting prompt's prefill starts at its dispatch or at the endpoint's last
// first token (the prompt before it done), whichever is later.
TEST(TokenLedger, PrefillStartsAtDispatchOrThePreviousFirstToken) {
  TokenLedger l;
  EXPECT_EQ(l.Counts(0).prefill_since, kNever);
  auto a = l.Dispatch(0, 0, 1000, 10);
  const LedgerCounts& c = l.Counts(0);
  auto b = l.Dispatch(0, 100 * kMs, 500, 10);
  EXPECT_EQ(c.prefill_since, 0);
  EXPECT_EQ(c.prefill_head_tokens, 1000);
  ASSERT_TRUE(l.FirstToken(a, 1000 * kMs));  // b waited behind a until now
  EXPECT_EQ(c.prefill_since, 1000 * kMs);
  EXPECT_EQ(c.prefill_head_tokens, 500);
  auto d = l.Dispatch(0, 1200 * kMs, 300, 10, -1, /*uncached_tokens=*/200);
  EXPECT_EQ(c.prefill_since, 1000 * kMs);  // still b
  ASSERT_TRUE(l.Finish(b, 1300 * kMs));    // b failed before its first token
  EXPECT_EQ(c.prefill_since, 1200 * kMs);  // d, dispatched after a's first token
  EXPECT_EQ(c.prefill_head_tokens, 200);   // its uncached part
  ASSERT_TRUE(l.FirstToken(d, 1500 * kMs));
  EXPECT_EQ(c.prefill_since, kNever);
  EXPECT_EQ(c.prefill_head_tokens, 0);
  l.Dispatch(0, 5000 * kMs, 100, 10);  // an idle endpoint starts at once
  EXPECT_EQ(c.prefill_since, 5000 * kMs);
  EXPECT_EQ(l.Counts(1).prefill_since, kNever);  // another endpoint
}

TEST(TokenLedger, HandlesAreGenerationChecked) {
  TokenLedger l;
  auto a = l.Dispatch(0, 0, 10, 10);
  ASSERT_TRUE(l.Finish(a, 1));
  auto b = l.Dispatch(0, 2, 10, 10);  // reuses the record
  EXPECT_NE(a, b);
  EXPECT_FALSE(l.FirstToken(a, 3));
  EXPECT_TRUE(l.FirstToken(b, 3));
  EXPECT_FALSE(l.Finish(TokenLedger::kInvalidHandle, 4));
  EXPECT_FALSE(l.Finish(0xdead00000001ull, 4));
  EXPECT_EQ(*l.SlotOf(b), 0u);
  EXPECT_FALSE(l.SlotOf(a).has_value());
}

TEST(TokenLedger, CountsAreRelativeToTheLastScrape) {
  TokenLedger l;
  // Before the scrape at t=100: a awaiting, b decoding (first token at 50), c awaiting
  // but starts at 120 (after the scrape).
  auto a = l.Dispatch(3, 10 * kMs, 100, 10);
  auto b = l.Dispatch(3, 20 * kMs, 200, 10);
  auto c = l.Dispatch(3, 30 * kMs, 300, 10);
  ASSERT_TRUE(l.FirstToken(b, 50 * kMs));
  ASSERT_TRUE(l.FirstToken(c, 120 * kMs));
  l.Rebase(3, 100 * kMs);
  const LedgerCounts& k = l.Counts(3);
  EXPECT_EQ(k.new_awaiting, 0);
  EXPECT_EQ(k.new_decoding, 0);
  EXPECT_EQ(k.left_waiting, 1);  // c was waiting at the scrape and has started
  EXPECT_EQ(k.joined_running, 1);
  EXPECT_EQ(k.joined_running_tokens, 300);

  // After the scrape: d dispatched (new), b finishes (was decoding at the scrape).
  auto d = l.Dispatch(3, 130 * kMs, 400, 10);
  ASSERT_TRUE(l.Finish(b, 140 * kMs, nullptr));
  EXPECT_EQ(k.new_awaiting, 1);
  EXPECT_EQ(k.new_awaiting_tokens, 400);
  EXPECT_EQ(k.left_running, 1);
  EXPECT_EQ(k.freed_tokens, 210);  // prompt + expected output (no usage reported)

  // a starts; c finishes (it joined running after the scrape: not in the scraped KV).
  ASSERT_TRUE(l.FirstToken(a, 150 * kMs));
  ASSERT_TRUE(l.Finish(c, 160 * kMs));
  EXPECT_EQ(k.left_waiting, 2);
  EXPECT_EQ(k.joined_running, 1);  // a in, c out
  EXPECT_EQ(k.joined_running_tokens, 100);
  EXPECT_EQ(k.awaiting, 1);
  EXPECT_EQ(k.awaiting_tokens, 400);

  // A new scrape at 155 absorbs everything up to then.
  l.Rebase(3, 155 * kMs);
  EXPECT_EQ(k.new_awaiting, 0);  // d was dispatched at 130 < 155
  EXPECT_EQ(k.left_waiting, 0);
  EXPECT_EQ(k.left_running, 0);
  EXPECT_EQ(k.freed_tokens, 0);
  EXPECT_EQ(k.joined_running, 0);  // a started at 150 < 155
  // An older scrape arriving late changes nothing.
  l.Rebase(3, 120 * kMs);
  EXPECT_EQ(k.new_awaiting, 0);
  (void)d;
}

TEST(TokenLedger, UsageCalibratesPromptRatioAndOutputMean) {
  TokenLedger::Options o;
  o.ewma_alpha = 0.5;
  o.default_output_tokens = 100;
  TokenLedger l(o);
  EXPECT_EQ(l.ExpectedOutputTokens(std::nullopt), 100);
  EXPECT_EQ(l.ExpectedOutputTokens(64), 64);
  auto h = l.Dispatch(0, 0, 1000, 100, /*raw_estimate=*/1000);
  Usage u{1500, 300};
  ASSERT_TRUE(l.Finish(h, 1, &u));
  // The first observation replaces the prior (ratio 1, the default output) outright.
  EXPECT_DOUBLE_EQ(l.prompt_token_ratio(), 1.5);
  EXPECT_DOUBLE_EQ(l.mean_output_tokens(), 300.0);
  EXPECT_EQ(l.CalibratedPromptTokens(400), 600);
  EXPECT_EQ(l.ExpectedOutputTokens(std::nullopt), 300);
  // Exact counts (raw_estimate -1) do not move the ratio; absurd ratios are clamped.
  auto e = l.Dispatch(0, 2, 10, 10, -1);
  Usage v{99999, 0};
  ASSERT_TRUE(l.Finish(e, 3, &v));
  EXPECT_DOUBLE_EQ(l.prompt_token_ratio(), 1.5);
  auto f = l.Dispatch(0, 4, 10, 10, 10);
  ASSERT_TRUE(l.Finish(f, 5, &v));
  EXPECT_DOUBLE_EQ(l.prompt_token_ratio(), 1.5 + 0.5 * (4.0 - 1.5));
}

// Each calibration average is the plain mean of its first 1/α observations, then an EWMA:
// a gateway that has seen a handful of completions (one replica of several sees few) is
// already calibrated, and the prior's weight does not linger.
TEST(TokenLedger, CalibrationIsThePlainMeanUntilItsWeightFallsToAlpha) {
  TokenLedger::Options o;
  o.ewma_alpha = 0.25;  // plain mean over the first four
  TokenLedger l(o);
  const double ratios[] = {1.2, 1.0, 1.1, 1.3, 2.3};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    auto h = l.Dispatch(0, 0, 1000, 10, /*raw_estimate=*/1000);
    const Usage u{static_cast<std::int64_t>(ratios[i] * 1000), 10 * (i + 1)};
    ASSERT_TRUE(l.Finish(h, 1, &u));
    sum += ratios[i];
    EXPECT_NEAR(l.prompt_token_ratio(), sum / (i + 1), 1e-12) << i;
  }
  EXPECT_DOUBLE_EQ(l.mean_output_tokens(), 25.0);  // (10 + 20 + 30 + 40) / 4
  // The fifth has weight α (1/5 would be below it).
  auto h = l.Dispatch(0, 0, 1000, 10, 1000);
  const Usage u{2300, 50};
  ASSERT_TRUE(l.Finish(h, 1, &u));
  EXPECT_NEAR(l.prompt_token_ratio(), 1.15 + 0.25 * (2.3 - 1.15), 1e-12);
  EXPECT_NEAR(l.mean_output_tokens(), 25.0 + 0.25 * 25.0, 1e-12);
}

TEST(TokenLedger, RemoveEndpointInvalidatesItsHandles) {
  TokenLedger l;
  auto a = l.Dispatch(0, 0, 10, 10);
  auto b = l.Dispatch(1, 0, 10, 10);
  l.RemoveEndpoint(0);
  EXPECT_FALSE(l.FirstToken(a, 1));
  EXPECT_TRUE(l.FirstToken(b, 1));
  EXPECT_EQ(l.Counts(0).inflight, 0);
  EXPECT_EQ(l.inflight(), 1u);
  EXPECT_EQ(l.Counts(42).inflight, 0);  // unknown slot: zeros
}

TEST(TokenLedger, UncachedTokensAndTheInflightView) {
  TokenLedger l;
  auto a = l.Dispatch(0, 0, 5000, 100, -1, 400);  // mostly cached
  auto b = l.Dispatch(0, kMs, 3000, 50);          // unknown: all of it
  l.Dispatch(1, kMs, 100, 10, -1, 900);           // more than the prompt: capped
  EXPECT_EQ(l.Counts(0).awaiting_tokens, 8000);
  EXPECT_EQ(l.Counts(0).awaiting_uncached_tokens, 3400);
  EXPECT_EQ(l.Counts(1).awaiting_uncached_tokens, 100);
  ASSERT_TRUE(l.FirstToken(a, 5 * kMs));
  EXPECT_EQ(l.Counts(0).awaiting_uncached_tokens, 3000);
  std::vector<TokenLedger::InflightRequest> seen;
  l.ForEachInflight(0, [&](const TokenLedger::InflightRequest& r) { seen.push_back(r); });
  ASSERT_EQ(seen.size(), 2u);  // most recent first
  EXPECT_EQ(seen[0].prompt_tokens, 3000);
  EXPECT_EQ(seen[0].first_token, kNever);
  EXPECT_EQ(seen[1].uncached_tokens, 400);
  EXPECT_EQ(seen[1].first_token, 5 * kMs);
  EXPECT_EQ(seen[1].expected_output, 100);
  ASSERT_TRUE(l.Finish(b, 6 * kMs));  // failed before its first token
  EXPECT_EQ(l.Counts(0).awaiting_uncached_tokens, 0);
  int unknown = 0;
  l.ForEachInflight(7, [&](const TokenLedger::InflightRequest&) { ++unknown; });
  EXPECT_EQ(unknown, 0);
}

TEST(TokenLedger, LearnsPrefillTimingFromRequestsThatDidNotQueue) {
  TokenLedger l;
  // TTFT = 20 ms + 0.5 ms per uncached token, for requests alone on their endpoint.
  for (int i = 0; i < 20; ++i) {
    const std::int64_t tokens = 1000 + 200 * (i % 5);
    const TimeNs t0 = i * 1000 * kMs;
    auto h = l.Dispatch(0, t0, tokens, 10);
    ASSERT_TRUE(l.FirstToken(h, t0 + FromSeconds(0.02 + 0.0005 * static_cast<double>(tokens))));
    ASSERT_TRUE(l.Finish(h, t0 + 500 * kMs, nullptr));
  }
  EXPECT_EQ(l.prefill_fit().samples, 20);
  EXPECT_NEAR(l.prefill_fit().base_s, 0.02, 1e-6);
  EXPECT_NEAR(l.prefill_fit().per_token_s, 0.0005, 1e-9);
  // A request dispatched behind another one measures a queue, not a prefill: not a sample.
  auto first = l.Dispatch(0, 0, 1000, 10);
  auto second = l.Dispatch(0, 0, 1000, 10);
  ASSERT_TRUE(l.FirstToken(first, FromSeconds(0.52)));
  ASSERT_TRUE(l.FirstToken(second, FromSeconds(60)));
  EXPECT_EQ(l.prefill_fit().samples, 21);
}

TEST(TokenLedger, LearnsTheTimePerOutputToken) {
  TokenLedger l;
  EXPECT_EQ(l.mean_tpot_s(), 0);
  auto h = l.Dispatch(0, 0, 100, 11);
  ASSERT_TRUE(l.FirstToken(h, 100 * kMs));
  const Usage u{100, 11};
  ASSERT_TRUE(l.Finish(h, 100 * kMs + 10 * 50 * kMs, &u));  // 10 tokens after the first
  EXPECT_DOUBLE_EQ(l.mean_tpot_s(), 0.05);
  auto g = l.Dispatch(0, 0, 100, 11);
  ASSERT_TRUE(l.Finish(g, 10 * kMs, &u));  // no first token seen: no sample
  EXPECT_DOUBLE_EQ(l.mean_tpot_s(), 0.05);
}

// vLLM V0 gives a new request to the virtual engine with the fewest unfinished requests,
// ties to the lowest index; the ledger replays that for the requests it sent.
TEST(TokenLedger, VirtualEnginesReplayVllmsAssignment) {
  TokenLedger::Options o;
  o.virtual_engines = 2;
  TokenLedger l(o);
  EXPECT_EQ(l.virtual_engines(), 2);
  EXPECT_EQ(l.NextVirtualEngine(0), 0);  // unknown endpoint: the first
  std::vector<TokenLedger::Handle> h;
  for (int i = 0; i < 4; ++i) h.push_back(l.Dispatch(0, (10 + i) * kMs, 1000, 100));
  EXPECT_EQ(*l.VirtualEngineOf(h[0]), 0);
  EXPECT_EQ(*l.VirtualEngineOf(h[1]), 1);
  EXPECT_EQ(*l.VirtualEngineOf(h[2]), 0);  // a tie goes to the lowest index
  EXPECT_EQ(*l.VirtualEngineOf(h[3]), 1);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 0), 2);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 2);

  // A completion releases its virtual engine's slot whatever its state.
  EXPECT_TRUE(l.FirstToken(h[1], 20 * kMs));
  EXPECT_TRUE(l.Finish(h[1], 30 * kMs, nullptr));
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 1);
  EXPECT_EQ(l.NextVirtualEngine(0), 1);
  const auto e = l.Dispatch(0, 31 * kMs, 1000, 100);
  EXPECT_EQ(*l.VirtualEngineOf(e), 1);
  // A failure (no first token, no usage) releases it too.
  EXPECT_TRUE(l.Finish(h[0], 32 * kMs));
  EXPECT_TRUE(l.Finish(h[2], 33 * kMs));
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 0), 0);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 2);
  EXPECT_EQ(l.NextVirtualEngine(0), 0);
  EXPECT_FALSE(l.VirtualEngineOf(h[0]).has_value());  // finished
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 2), 0);      // out of range

  // Endpoints are independent; the in-flight view carries the tag.
  EXPECT_EQ(*l.VirtualEngineOf(l.Dispatch(1, 40 * kMs, 10, 1)), 0);
  std::vector<int> tags;
  l.ForEachInflight(
      0, [&](const TokenLedger::InflightRequest& r) { tags.push_back(r.virtual_engine); });
  EXPECT_EQ(tags, (std::vector<int>{1, 1}));  // e, then h[3]

  // Removing the endpoint forgets its counts.
  l.RemoveEndpoint(0);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 0);
  EXPECT_EQ(*l.VirtualEngineOf(l.Dispatch(0, 50 * kMs, 10, 1)), 0);
}

TEST(TokenLedger, APeersEventDatedBeforeTheScrapeIsAlreadyInIt) {
  TokenLedger l;
  // A peer's request p, dispatched at 10 and decoding from 20 (seen here on time), and a
  // local one q decoding from 30.
  const auto p = l.DispatchRemote(0, 10 * kMs, 500, 100);
  const auto q = l.Dispatch(0, 12 * kMs, 300, 50);
  ASSERT_TRUE(l.FirstToken(p, 20 * kMs));
  ASSERT_TRUE(l.FirstToken(q, 30 * kMs));
  l.Rebase(0, 40 * kMs);
  const LedgerCounts& k = l.Counts(0);
  EXPECT_EQ(k.joined_running, 0);

  // p finished at 60, but the peer's message arrives after the scrape at 70: the scrape
  // already left p's blocks out, so nothing is freed twice.
  l.Rebase(0, 70 * kMs);
  ASSERT_TRUE(l.Finish(p, 60 * kMs));
  EXPECT_EQ(k.left_running, 0);
  EXPECT_EQ(k.freed_tokens, 0);
  EXPECT_EQ(k.inflight, 1);
  // q finishing now (after the scrape) frees its tokens, as before.
  ASSERT_TRUE(l.Finish(q, 80 * kMs));
  EXPECT_EQ(k.left_running, 1);
  EXPECT_EQ(k.freed_tokens, 350);

  // A peer's dispatch at 85 whose first token (at 95) is learned after the scrape at 100:
  // the scrape shows it running already, so it is not added to running again...
  const auto r = l.DispatchRemote(0, 85 * kMs, 700, 10);
  EXPECT_EQ(k.new_awaiting, 1);  // dispatched after the scrape at 70
  l.Rebase(0, 100 * kMs);
  EXPECT_EQ(k.new_awaiting, 0);
  ASSERT_TRUE(l.FirstToken(r, 95 * kMs));
  EXPECT_EQ(k.joined_running, 0);
  EXPECT_EQ(k.left_waiting, 0);
  EXPECT_EQ(k.decoding, 1);
  // ...while one learned on time after the scrape is (the old path).
  const auto s = l.DispatchRemote(0, 101 * kMs, 200, 10);
  ASSERT_TRUE(l.FirstToken(s, 110 * kMs));
  EXPECT_EQ(k.new_decoding, 1);
  EXPECT_EQ(k.new_decoding_tokens, 200);
  // A peer's dispatch dated before the scrape counts as in it (not new).
  const auto t = l.DispatchRemote(0, 99 * kMs, 900, 10);
  EXPECT_EQ(k.new_awaiting, 0);
  EXPECT_EQ(k.awaiting_tokens, 900);
  // An event can never be dated before the request's own dispatch.
  ASSERT_TRUE(l.FirstToken(t, 1 * kMs));
  EXPECT_EQ(l.Inflight(t)->first_token, 99 * kMs);
}

TEST(TokenLedger, ALatePeersEventReplaysTheVirtualEngines) {
  TokenLedger::Options o;
  o.virtual_engines = 2;
  TokenLedger l(o);
  // a (here) at 10 goes to virtual engine 0. A peer's b, dispatched at 5, is learned at
  // 12: the server placed b first (engine 0) and a after it (engine 1).
  const auto a = l.Dispatch(0, 10 * kMs, 1000, 100);
  EXPECT_EQ(*l.VirtualEngineOf(a), 0);
  const auto b = l.DispatchRemote(0, 5 * kMs, 1000, 100);
  EXPECT_EQ(*l.VirtualEngineOf(b), 0);
  EXPECT_EQ(*l.VirtualEngineOf(a), 1);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 0), 1);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 1);
  // The list stays in dispatch order: b is older than a.
  std::vector<TimeNs> order;
  l.ForEachInflight(0,
                    [&](const TokenLedger::InflightRequest& r) { order.push_back(r.dispatched); });
  EXPECT_EQ(order, (std::vector<TimeNs>{10 * kMs, 5 * kMs}));
  EXPECT_EQ(l.AwaitingAhead(a), 0);  // b is in the other virtual engine

  // c (here) at 20: a tie, so engine 0. But b had finished at 15 (learned at 25): at 20
  // engine 0 was empty and engine 1 held a, so c went to 0 all the same; d at 22 then
  // found 0 and 1 level (c, a) and went to 0, not 1 as the ledger first thought.
  const auto c = l.Dispatch(0, 20 * kMs, 1000, 100);
  const auto d = l.Dispatch(0, 22 * kMs, 1000, 100);
  EXPECT_EQ(*l.VirtualEngineOf(c), 0);
  EXPECT_EQ(*l.VirtualEngineOf(d), 1);
  ASSERT_TRUE(l.Finish(b, 15 * kMs));
  EXPECT_EQ(*l.VirtualEngineOf(c), 0);
  EXPECT_EQ(*l.VirtualEngineOf(d), 0);
  EXPECT_EQ(*l.VirtualEngineOf(a), 1);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 0), 2);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 1);
  EXPECT_EQ(l.NextVirtualEngine(0), 1);

  // A finish remembered within the window takes part in a later replay: e (peer, at 16,
  // learned now) arrived when b was gone and a held engine 1: e to 0, and then c at 20
  // found 0 and 1 level (e, a) and went to 0, d at 22 to 1.
  const auto e = l.DispatchRemote(0, 16 * kMs, 1000, 100);
  EXPECT_EQ(*l.VirtualEngineOf(e), 0);
  EXPECT_EQ(*l.VirtualEngineOf(c), 0);
  EXPECT_EQ(*l.VirtualEngineOf(d), 1);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 0), 2);
  EXPECT_EQ(l.VirtualEngineUnfinished(0, 1), 2);
}

TEST(TokenLedger, ThreeVirtualEnginesAndTheDefaultOfOne) {
  TokenLedger::Options o;
  o.virtual_engines = 3;
  TokenLedger three(o);
  std::vector<int> got;
  std::vector<TokenLedger::Handle> h;
  for (int i = 0; i < 5; ++i) {
    h.push_back(three.Dispatch(0, i * kMs, 100, 10));
    got.push_back(*three.VirtualEngineOf(h.back()));
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 0, 1}));
  EXPECT_TRUE(three.Finish(h[2], 10 * kMs));  // virtual engine 2 now has the fewest
  EXPECT_EQ(three.NextVirtualEngine(0), 2);

  TokenLedger one;
  EXPECT_EQ(one.virtual_engines(), 1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*one.VirtualEngineOf(one.Dispatch(0, i, 100, 10)), 0);
  EXPECT_EQ(one.VirtualEngineUnfinished(0, 0), 3);
  EXPECT_EQ(one.NextVirtualEngine(0), 0);

  o.virtual_engines = 0;
  EXPECT_EQ(TokenLedger(o).virtual_engines(), 1);
  o.virtual_engines = 1000;
  EXPECT_EQ(TokenLedger(o).virtual_engines(), TokenLedger::kMaxVirtualEngines);
}

TEST(EstimateLoad, AddsWhatTheScrapeCannotSee) {
  EndpointMetrics m;
  m.waiting_requests = 3;
  m.running_requests = 4;
  m.kv_usage = 0.5;
  m.kv_capacity_tokens = 10000;
  LedgerCounts c;
  c.awaiting = 3;  // one old still waiting, two new
  c.awaiting_tokens = 900;
  c.new_awaiting = 2;
  c.new_awaiting_tokens = 600;
  c.left_waiting = 1;
  c.joined_running = 1;
  c.joined_running_tokens = 250;
  c.left_running = 2;
  c.freed_tokens = 1000;
  c.new_decoding = 1;
  c.new_decoding_tokens = 100;
  LoadEstimate e = EstimateLoad(m, true, c, 500);
  EXPECT_EQ(e.waiting_est, 3 - 1 + 2);
  EXPECT_EQ(e.running_est, 4 - 2 + 1 + 1);
  EXPECT_EQ(e.kv_tokens_est, 5000 - 1000 + 250 + 100);
  EXPECT_DOUBLE_EQ(e.kv_usage_est, (4350.0 + 600.0) / 10000.0);
  // The scrape saw 3 waiting; this gateway accounts for 1 (left) + 1 (still waiting, old).
  EXPECT_EQ(e.foreign_waiting, 1);
  EXPECT_EQ(e.prefill_backlog_tokens, 900 + 500);
}

TEST(EstimateLoad, RoundToIntSaturates) {
  EXPECT_EQ(RoundToInt(2.5), 3);
  EXPECT_EQ(RoundToInt(-2.5), -3);
  EXPECT_EQ(RoundToInt(1e300), std::int64_t{1} << 62);
  EXPECT_EQ(RoundToInt(-1e300), -(std::int64_t{1} << 62));
  EXPECT_EQ(RoundToInt(std::numeric_limits<double>::quiet_NaN()), 0);
}

TEST(EstimateLoad, WithoutCapacityOrMetrics) {
  EndpointMetrics m;
  m.kv_usage = 0.4;
  LedgerCounts c;
  c.awaiting = c.new_awaiting = 2;
  c.awaiting_tokens = c.new_awaiting_tokens = 100;
  LoadEstimate e = EstimateLoad(m, true, c, 500);
  EXPECT_EQ(e.kv_tokens_est, -1);
  EXPECT_DOUBLE_EQ(e.kv_usage_est, 0.4);
  EXPECT_EQ(e.waiting_est, 2);
  LoadEstimate none = EstimateLoad(m, false, c, 500);
  EXPECT_DOUBLE_EQ(none.kv_usage_est, 0.0);
  EXPECT_EQ(none.prefill_backlog_tokens, 100);
}

}  // namespace
}  // namespace infergate
