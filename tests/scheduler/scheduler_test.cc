#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "scheduler/profiles.h"
#include "scheduler_harness.h"

namespace infergate {
namespace {

using testing::kMs;
using testing::Load;
using testing::Request;
using testing::SchedulerHarness;
using testing::Text;

constexpr std::int64_t kCapacity = 51'200;  // the seed deployment's KV tokens per group

std::map<std::string, int> Count(const std::vector<std::string>& picks) {
  std::map<std::string, int> c;
  for (const std::string& p : picks) c[p]++;
  return c;
}

int MaxCount(const std::map<std::string, int>& c) {
  int m = 0;
  for (const auto& [id, n] : c) m = std::max(m, n);
  return m;
}

// 50 requests arrive between two scrapes; every endpoint looked idle at the last scrape.
// The prompts share a 1000-token prefix (as in the seed benchmark) and differ after it.
std::map<std::string, int> Burst(const std::string& profile, int endpoints = 4) {
  SchedulerHarness h(profile, 3);
  auto ids = h.AddMany(endpoints);
  h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
  const std::string prefix = Text(4000, 1);
  std::vector<std::string> prompts;
  for (int i = 0; i < 50; ++i) prompts.push_back(prefix + Text(9600, 100 + i));
  std::vector<std::string> picks;
  for (const std::string& p : prompts) {
    picks.push_back(h.PickAndDispatch(Request(p)));
    h.Advance(1 * kMs);
  }
  return Count(picks);
}

TEST(SchedulerHerding, GieDefaultWithoutLedgerHerdsOntoOneEndpoint) {
  std::map<std::string, int> c = Burst("gie-default");
  EXPECT_EQ(MaxCount(c), 50);  // GIE's known weakness: stale metrics + prefix score
}

TEST(SchedulerHerding, GieDefaultWithLedgerSpreads) {
  std::map<std::string, int> c = Burst("gie-ledger");
  EXPECT_EQ(c.size(), 4u);
  EXPECT_LE(MaxCount(c), 15);
}

TEST(SchedulerHerding, InfergateSpreadsByLoad) {
  std::map<std::string, int> c = Burst("infergate");
  ASSERT_EQ(c.size(), 4u);
  int lo = 50, hi = 0;
  for (const auto& [id, n] : c) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  EXPECT_LE(hi - lo, 1);
}

TEST(SchedulerHerding, RoundRobinIsExactlyEven) {
  std::map<std::string, int> c = Burst("round-robin", 5);
  ASSERT_EQ(c.size(), 5u);
  for (const auto& [id, n] : c) EXPECT_EQ(n, 10) << id;
}

TEST(SchedulerPrefix, InfergateKeepsAPrefixOnTheEndpointThatServedIt) {
  SchedulerHarness h("infergate");
  auto ids = h.AddMany(3);
  h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
  const std::string prefix = Text(8000, 1);  // ~2000 tokens
  TokenLedger::Handle first;
  const std::string prompt1 = prefix + Text(400, 2);
  const std::string home = h.PickAndDispatch(Request(prompt1), &first);
  ASSERT_FALSE(home.empty());
  h.s().OnFirstToken(first);
  h.s().OnComplete(first);
  for (int i = 0; i < 20; ++i) {
    TokenLedger::Handle t;
    const std::string prompt2 = prefix + Text(400, 10 + i);
    EXPECT_EQ(h.PickAndDispatch(Request(prompt2), &t), home);
    h.s().OnFirstToken(t);
    h.s().OnComplete(t);
  }
  // A little load on the warm endpoint does not move the prefix: a 200-token request
  // queued there costs less than re-prefilling 2000 cached tokens elsewhere.
  const std::string small_prompt = Text(800, 3);
  TokenLedger::Handle small = h.s().Dispatch(Request(small_prompt), PickResult{}, home);
  ASSERT_NE(small, TokenLedger::kInvalidHandle);
  const std::string prompt3 = prefix + Text(400, 99);
  EXPECT_EQ(h.PickAndDispatch(Request(prompt3)), home);
}

// The infergate profile as a named profile gives it, with one plugin parameter set.
SchedulerOptions InfergateWith(std::string_view plugin, const std::string& key,
                               const std::string& value) {
  SchedulerOptions o = SchedulerHarness::Options("infergate");
  const NamedProfile named = FindNamedProfile("infergate").value();
  o.picker_config = named.config;
  o.prefix_lru_from_kv_capacity = named.prefix_lru_from_kv_capacity;
  for (PluginSpec& spec : o.picker_config->plugins) {
    if (spec.type == plugin) spec.parameters[key] = value;
  }
  return o;
}

// What a request predicts it will find cached on `endpoint`.
std::int64_t CachedOn(SchedulerHarness& h, const std::string& prompt, const std::string& endpoint) {
  for (const EndpointPrediction& p : h.s().PredictTtft(Request(prompt))) {
    if (p.endpoint == endpoint) return p.prediction.cached_tokens;
  }
  ADD_FAILURE() << "no prediction for " << endpoint;
  return -1;
}

TEST(SchedulerPrefix, TheTokensAServerGeneratesAgeItsPrefixesOut) {
  // Two endpoints with 51,200 KV tokens each both hold a ~2000-token prefix. Endpoint a
  // then generates tokens for other requests: while they fit beside the prefix it stays
  // warm there; once they fill the cache (as the server's LRU evicts), it is gone from a
  // and only from a. Without output aging (outputAging=0) the index keeps it.
  for (const double aging : {1.0, 0.0}) {
    SchedulerHarness h(
        InfergateWith("predicted-ttft-scorer", "outputAging", aging == 0 ? "0" : "1"));
    const auto ids = h.AddMany(2);
    h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
    const std::string prefix = Text(8000, 1);
    const std::string first = prefix + Text(400, 2);
    const std::string other = Text(400, 4);
    for (const std::string& id : ids) {
      TokenLedger::Handle t = h.s().Dispatch(Request(first), PickResult{}, id);
      h.s().OnFirstToken(t);
      h.s().OnComplete(t, Usage{2100, 1});
    }
    const std::string next = prefix + Text(400, 3);
    ASSERT_GE(CachedOn(h, next, ids[0]), 1900);
    auto generate = [&](std::int64_t tokens) {
      TokenLedger::Handle t = h.s().Dispatch(Request(other), PickResult{}, ids[0]);
      h.s().OnFirstToken(t);
      h.s().OnComplete(t, Usage{100, tokens});
    };
    generate(20'000);
    EXPECT_GE(CachedOn(h, next, ids[0]), 1900) << "room left beside it, aging " << aging;
    generate(40'000);
    if (aging > 0) {
      EXPECT_EQ(CachedOn(h, next, ids[0]), 0) << "evicted where the tokens were generated";
    } else {
      EXPECT_GE(CachedOn(h, next, ids[0]), 1900) << "prompts only: the index keeps it";
    }
    EXPECT_GE(CachedOn(h, next, ids[1]), 1900);
    // A server's absurd count costs one capacity's worth of aging (not 2^59 insertions)
    // and empties only that endpoint's index.
    generate(INT64_MAX);
    if (aging > 0) {
      EXPECT_EQ(CachedOn(h, next, ids[0]), 0);
    }
    EXPECT_GE(CachedOn(h, next, ids[1]), 1900);
  }
}

TEST(SchedulerPrefix, InfergateBreaksStickinessWhenTheWarmEndpointIsMuchBusier) {
  // The warm endpoint gets a queue of `waiting` ~2000-token prompts (seen by a scrape)
  // while the others are nearly idle. Moving costs a cold copy of the 2000-token prefix:
  // its prefill now and the prefill work it adds (prefillWorkWeight, 8), so the prefix
  // stays until the warm queue is worth more than that: 8 queued prompts is not enough,
  // 24 is.
  const std::string prefix = Text(8000, 1);
  for (const int waiting : {8, 24}) {
    SchedulerHarness h("infergate");
    auto ids = h.AddMany(3);
    h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
    TokenLedger::Handle t;
    const std::string prompt4 = prefix + Text(400, 2);
    const std::string home = h.PickAndDispatch(Request(prompt4), &t);
    h.s().OnFirstToken(t);
    h.s().OnComplete(t);
    h.Advance(50 * kMs);
    for (const std::string& id : ids) {
      h.Scrape(id, id == home ? Load{static_cast<double>(waiting), 10, 0.4, kCapacity}
                              : Load{0, 2, 0.1, kCapacity});
    }
    const std::string r_prompt = prefix + Text(400, 3);
    const std::string chosen = h.PickAndDispatch(Request(r_prompt));
    if (waiting == 8) {
      EXPECT_EQ(chosen, home) << "sticky while the queue costs less than a cold copy";
      continue;
    }
    EXPECT_NE(chosen, home);
    // The prediction agrees: the warm endpoint's predicted TTFT is worse despite its cache.
    const std::string prompt5 = prefix + Text(400, 4);
    std::vector<EndpointPrediction> pred = h.s().PredictTtft(Request(prompt5));
    double warm = 0, best_cold = 1e9;
    std::int64_t warm_cached = 0;
    for (const EndpointPrediction& p : pred) {
      if (p.endpoint == home) {
        warm = p.prediction.ttft_s;
        warm_cached = p.prediction.cached_tokens;
      } else {
        best_cold = std::min(best_cold, p.prediction.ttft_s);
      }
    }
    EXPECT_GE(warm_cached, 1900);
    EXPECT_GT(warm, best_cold);
  }
}

TEST(SchedulerPrefix, GieDefaultFollowsThePrefixWhatever) {
  SchedulerHarness h("gie-default");
  auto ids = h.AddMany(3);
  h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
  const std::string prefix = Text(8000, 1);
  const std::string prompt6 = prefix + Text(400, 2);
  const std::string home = h.PickAndDispatch(Request(prompt6));
  for (const std::string& id : ids) {
    h.Scrape(id, id == home ? Load{3, 10, 0.5, kCapacity} : Load{0, 2, 0.1, kCapacity});
  }
  // prefix 3 x 125/131 + queue 0 + kv 2 x 0.5 = 3.86 beats 0 + 2 + 2 x 0.9 = 3.8.
  const std::string prompt7 = prefix + Text(400, 3);
  EXPECT_EQ(h.PickAndDispatch(Request(prompt7)), home);
}

// One 8000-token prompt queued on a outweighs four 200-token prompts queued on b: the
// cost model counts tokens, GIE's queue scorer counts requests.
TEST(SchedulerLoad, TokensNotRequests) {
  for (const char* profile : {"infergate", "gie-ledger"}) {
    SchedulerHarness h(profile);
    h.Add("a:1");
    h.Add("b:1");
    h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
    const std::string big = Text(32000, 1);
    const std::string small = Text(800, 2);
    ASSERT_NE(h.s().Dispatch(Request(big), PickResult{}, "a:1"), TokenLedger::kInvalidHandle);
    for (int i = 0; i < 4; ++i) h.s().Dispatch(Request(small), PickResult{}, "b:1");
    const std::string prompt = Text(2000, 3);
    const std::string chosen = h.PickAndDispatch(Request(prompt));
    EXPECT_EQ(chosen, std::string(profile) == "infergate" ? "b:1" : "a:1") << profile;
  }
}

TEST(SchedulerKv, InfergateAvoidsOverflowingAnEndpointWhenAnotherHasRoom) {
  for (const char* profile : {"infergate", "gie-default"}) {
    SchedulerHarness h(profile);
    h.Add("full:1");
    h.Add("roomy:1");
    const std::string prefix = Text(24000, 1);  // 6000 tokens, held by full:1
    h.ScrapeAll({"full:1", "roomy:1"}, Load{0, 0, 0.0, kCapacity});
    TokenLedger::Handle t;
    const std::string warm_prompt = prefix + Text(400, 2);
    RequestInfo warm = Request(warm_prompt);
    PickResult p = h.s().Pick(warm);
    ASSERT_TRUE(p.picked());
    t = h.s().Dispatch(warm, p, "full:1");
    h.s().OnFirstToken(t);
    h.s().OnComplete(t);
    h.Advance(50 * kMs);
    h.Scrape("full:1", Load{0, 6, 0.9, kCapacity});
    h.Scrape("roomy:1", Load{2, 4, 0.5, kCapacity});
    const std::string prompt8 = prefix + Text(8000, 3);
    const std::string chosen = h.PickAndDispatch(Request(prompt8));
    if (std::string(profile) == "infergate") {
      EXPECT_EQ(chosen, "roomy:1");  // 0.9 x 51200 + ~3900 uncached tokens would not fit
    } else {
      EXPECT_EQ(chosen, "full:1");  // GIE: prefix x3 and the shorter queue win
    }
  }
}

TEST(SchedulerKv, WhenNothingFitsTheLeastOverflowWins) {
  SchedulerHarness h("infergate");
  h.Add("a:1");
  h.Add("b:1");
  h.Scrape("a:1", Load{0, 8, 0.99, kCapacity});
  h.Scrape("b:1", Load{0, 8, 0.97, kCapacity});
  const std::string prompt9 = Text(40000, 5);
  PickResult p = h.s().Pick(Request(prompt9));
  ASSERT_TRUE(p.picked());
  EXPECT_EQ(p.endpoints[0], "b:1");
}

TEST(SchedulerSession, StickyWhileHealthyThenMovesAndSticks) {
  SchedulerHarness h("infergate");
  auto ids = h.AddMany(3);
  h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
  const std::string r_prompt = Text(2000, 1);
  RequestInfo r = Request(r_prompt);
  r.session_key = "user-42";
  TokenLedger::Handle t;
  const std::string home = h.PickAndDispatch(r, &t);
  h.s().OnFirstToken(t);
  // Other turns of the session follow even though home is now the busiest endpoint.
  for (int i = 0; i < 3; ++i) {
    const std::string turn_prompt = Text(2000, 10 + i);
    RequestInfo turn = Request(turn_prompt);
    turn.session_key = "user-42";
    EXPECT_EQ(h.PickAndDispatch(turn), home);
  }
  // Home saturates (queue above 5): the session moves, and sticks to its new home.
  h.Advance(50 * kMs);
  for (const std::string& id : ids) {
    h.Scrape(id, id == home ? Load{7, 10, 0.5, kCapacity} : Load{0, 1, 0.1, kCapacity});
  }
  const std::string moved_prompt = Text(2000, 20);
  RequestInfo moved = Request(moved_prompt);
  moved.session_key = "user-42";
  const std::string second = h.PickAndDispatch(moved);
  EXPECT_NE(second, home);
  const std::string again_prompt = Text(2000, 21);
  RequestInfo again = Request(again_prompt);
  again.session_key = "user-42";
  EXPECT_EQ(h.PickAndDispatch(again), second);
  // Another session is unaffected by user-42's home.
  const std::string other_prompt = Text(2000, 22);
  RequestInfo other = Request(other_prompt);
  other.session_key = "user-7";
  EXPECT_TRUE(h.s().Pick(other).picked());
}

TEST(SchedulerFailureMode, FailCloseAnswers503WithoutFreshMetrics) {
  SchedulerHarness h("infergate");
  h.AddMany(3);
  PickResult p = h.s().Pick(Request("x"));
  EXPECT_EQ(p.status, PickStatus::kUnavailable);
  EXPECT_EQ(p.reason, PickReason::kNoFreshMetrics);
  EXPECT_EQ(p.http_status(), 503);
}

TEST(SchedulerFailureMode, FailOpenPicksAnyReadyEndpoint) {
  SchedulerOptions o = SchedulerHarness::Options("infergate");
  o.failure_mode = FailureMode::kFailOpen;
  SchedulerHarness h(o);
  auto ids = h.AddMany(4);
  h.Add("down:1", /*ready=*/false);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    PickResult p = h.s().Pick(Request("x"));
    ASSERT_TRUE(p.picked());
    EXPECT_EQ(p.reason, PickReason::kFailOpen);
    ASSERT_EQ(p.endpoints.size(), 3u);
    EXPECT_EQ(std::set<std::string>(p.endpoints.begin(), p.endpoints.end()).size(), 3u);
    for (const std::string& e : p.endpoints) EXPECT_NE(e, "down:1");
    seen.insert(p.endpoints[0]);
  }
  EXPECT_EQ(seen.size(), 4u);
}

// Slow is not dead: late or failed pages leave an endpoint a candidate; only an endpoint
// that cannot be reached is dropped, and FailClose answers 503 only when none can be.
TEST(SchedulerFailureMode, LateEndpointsStayCandidatesAndOnlyUnreachableOnesAreDropped) {
  SchedulerHarness h("gie-default");
  auto ids = h.AddMany(2);
  h.ScrapeAll(ids, Load{0, 0, 0.1});
  EXPECT_TRUE(h.s().Pick(Request("x")).picked());
  // Both pages late, far past the staleness bound: still routed, by the ledger.
  h.s().ReportScrapeFailure(ids[0], h.clock().Now(), "timed out", ScrapeFailure::kTimeout);
  h.s().ReportScrapeFailure(ids[1], h.clock().Now(), "HTTP 500", ScrapeFailure::kBadResponse);
  h.Advance(5 * kDefaultMetricsStaleness);
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    const std::string to = h.PickAndDispatch(Request("x"));
    ASSERT_FALSE(to.empty());
    seen.insert(to);
  }
  EXPECT_EQ(seen.size(), 2u);  // the ledger spreads what the old pages cannot
  EXPECT_TRUE(h.s().CanHold());
  EXPECT_EQ(h.s().Summary().fresh, 0);
  EXPECT_EQ(h.s().Summary().reachable, 2);
  // A refused connection drops that endpoint at once.
  h.s().ReportScrapeFailure(ids[0], h.clock().Now(), "refused", ScrapeFailure::kUnreachable);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(h.s().Pick(Request("x")).endpoints.at(0), ids[1]);
  h.s().ReportScrapeFailure(ids[1], h.clock().Now(), "refused", ScrapeFailure::kUnreachable);
  EXPECT_FALSE(h.s().CanHold());
  const PickResult p = h.s().Pick(Request("x"));
  EXPECT_EQ(p.reason, PickReason::kNoFreshMetrics);
  EXPECT_EQ(p.http_status(), 503);
}

TEST(SchedulerFailureMode, ResponsesAreProofOfLife) {
  SchedulerHarness h("gie-default");
  auto ids = h.AddMany(1);
  h.ScrapeAll(ids, Load{0, 0, 0.1});
  TokenLedger::Handle handle = 0;
  ASSERT_EQ(h.PickAndDispatch(Request("x"), &handle), ids[0]);
  h.Advance(kNanosPerMilli);
  h.s().ReportScrapeFailure(ids[0], h.clock().Now(), "reset", ScrapeFailure::kUnreachable);
  EXPECT_FALSE(h.s().Pick(Request("x")).picked());
  // The endpoint answers the request sent before: it is up after all.
  h.Advance(kNanosPerMilli);
  EXPECT_TRUE(h.s().OnFirstToken(handle));
  EXPECT_TRUE(h.s().Pick(Request("x")).picked());
}

TEST(SchedulerLateMetrics, TrustHalvesEveryStalenessBoundBeyondIt) {
  const TimeNs s = kDefaultMetricsStaleness;
  EXPECT_EQ(MetricsTrust(0, s), 1.0);
  EXPECT_EQ(MetricsTrust(s, s), 1.0);
  EXPECT_DOUBLE_EQ(MetricsTrust(2 * s, s), 0.5);
  EXPECT_DOUBLE_EQ(MetricsTrust(3 * s, s), 0.25);
  EXPECT_EQ(MetricsTrust(kNever, s), 0.0);
  EXPECT_EQ(MetricsTrust(1000 * s, s), 0.0);
}

TEST(SchedulerLateMetrics, EstimatesMoveFromTheScrapeToTheLedgerAsTheScrapeAges) {
  EndpointMetrics m;
  m.waiting_requests = 10;  // foreign load the ledger did not send
  m.running_requests = 6;
  m.kv_usage = 0.5;
  m.kv_capacity_tokens = 10'000;
  LedgerCounts c;
  c.awaiting = 2;
  c.new_awaiting = 2;
  c.awaiting_tokens = 1'000;
  c.new_awaiting_tokens = 1'000;
  c.decoding = 1;
  c.decoding_tokens = 500;
  const LoadEstimate full = EstimateLoad(m, true, c, 100, 1.0);
  EXPECT_EQ(full.waiting_est, 12);
  EXPECT_EQ(full.running_est, 6);
  const LoadEstimate none = EstimateLoad(m, true, c, 100, 0.0);
  EXPECT_EQ(none.waiting_est, 2);  // only what this gateway sent
  EXPECT_EQ(none.running_est, 1);
  EXPECT_EQ(none.kv_tokens_est, 500);
  EXPECT_DOUBLE_EQ(none.kv_usage_est, 0.15);
  EXPECT_EQ(none.foreign_waiting, 0);
  const LoadEstimate half = EstimateLoad(m, true, c, 100, 0.5);
  EXPECT_DOUBLE_EQ(half.waiting_est, 7);
  EXPECT_DOUBLE_EQ(half.foreign_waiting, full.foreign_waiting / 2);
}

TEST(SchedulerFailureMode, NoReadyEndpointIs503) {
  SchedulerHarness h("round-robin");
  EXPECT_EQ(h.s().Pick(Request("x")).reason, PickReason::kNoEndpoints);
  h.Add("a:1", false);
  EXPECT_EQ(h.s().Pick(Request("x")).reason, PickReason::kNoEndpoints);
  ASSERT_TRUE(h.s().SetReady("a:1", true));
  EXPECT_TRUE(h.s().Pick(Request("x")).picked());  // round-robin needs no metrics
}

TEST(SchedulerSaturation, SheddableIsShedCriticalAndStandardAreNot) {
  for (const char* profile : {"infergate", "gie-default", "gie-ledger"}) {
    SchedulerHarness h(profile);
    auto ids = h.AddMany(3);
    h.ScrapeAll(ids, Load{6, 10, 0.5, kCapacity});
    EXPECT_TRUE(h.s().IsSaturated()) << profile;
    PickResult shed = h.s().Pick(Request("x", Criticality::kSheddable));
    EXPECT_EQ(shed.status, PickStatus::kShed) << profile;
    EXPECT_EQ(shed.reason, PickReason::kSaturated) << profile;
    RequestInfo objective = Request("x");
    objective.priority = -1;  // InferenceObjective: negative priority is sheddable
    EXPECT_EQ(h.s().Pick(objective).status, PickStatus::kShed) << profile;
    EXPECT_TRUE(h.s().Pick(Request("x", Criticality::kStandard)).picked()) << profile;
    RequestInfo critical = Request("x", Criticality::kCritical);
    critical.priority = -5;  // Critical wins: never shed
    EXPECT_TRUE(h.s().Pick(critical).picked()) << profile;
  }
}

TEST(SchedulerSaturation, KvAboveThresholdAndUnreachableEndpointsSaturateLateOnesDoNot) {
  SchedulerHarness h("infergate");
  auto ids = h.AddMany(2);
  h.ScrapeAll(ids, Load{0, 4, 0.85, kCapacity});
  EXPECT_TRUE(h.s().IsSaturated());
  h.Scrape(ids[1], Load{0, 4, 0.5, kCapacity});
  EXPECT_FALSE(h.s().IsSaturated());
  // Late metrics are not "full": with the ledger (the default) the estimates still count,
  // so a server answering its page late does not shed Sheddable requests by that fact.
  h.Advance(201 * kMs);
  EXPECT_FALSE(h.s().IsSaturated());
  // An endpoint that cannot be reached has no room.
  h.s().ReportScrapeFailure(ids[1], h.clock().Now(), "refused", ScrapeFailure::kUnreachable);
  EXPECT_TRUE(h.s().IsSaturated());
  EXPECT_EQ(h.s().Pick(Request("x", Criticality::kSheddable)).status, PickStatus::kShed);
  EXPECT_TRUE(h.s().Pick(Request("x")).picked());
}

TEST(SchedulerSaturation, TheLedgerSaturatesBeforeTheNextScrape) {
  SchedulerHarness h("infergate");
  auto ids = h.AddMany(2);
  h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
  EXPECT_FALSE(h.s().IsSaturated());
  for (int i = 0; i < 10; ++i) {
    const std::string prompt = Text(400, i);
    ASSERT_FALSE(h.PickAndDispatch(Request(prompt)).empty());
  }
  EXPECT_TRUE(h.s().IsSaturated());  // 5 dispatched to each: queue estimate 5 >= 5
  EXPECT_EQ(h.s().Pick(Request("x", Criticality::kSheddable)).status, PickStatus::kShed);
}

TEST(SchedulerFallbacks, DistinctOrderedAndHeader) {
  SchedulerHarness h("gie-default");
  auto ids = h.AddMany(5);
  for (int i = 0; i < 5; ++i) h.Scrape(ids[i], Load{static_cast<double>(i), 0, 0.1 * i});
  PickResult p = h.s().Pick(Request("x"));
  ASSERT_TRUE(p.picked());
  EXPECT_EQ(p.endpoints, (std::vector<std::string>{ids[0], ids[1], ids[2]}));
  EXPECT_EQ(p.DestinationHeader(), ids[0] + "," + ids[1] + "," + ids[2]);
}

TEST(SchedulerFallbacks, NarrowFiltersAreToppedUpFromOtherEndpoints) {
  SchedulerHarness h("gie-v0");
  auto ids = h.AddMany(4);
  h.Scrape(ids[0], Load{0, 0, 0.1});
  h.Scrape(ids[1], Load{9, 0, 0.5});
  h.Scrape(ids[2], Load{3, 0, 0.2});
  h.Scrape(ids[3], Load{20, 0, 0.9});
  PickResult p = h.s().Pick(Request("x"));
  ASSERT_TRUE(p.picked());
  EXPECT_EQ(p.endpoints, (std::vector<std::string>{ids[0], ids[2], ids[1]}));
}

TEST(SchedulerRoundRobin, EvenAndStableWhenEndpointsChange) {
  SchedulerHarness h("round-robin");
  auto ids = h.AddMany(4);
  std::vector<std::string> picks;
  for (int i = 0; i < 400; ++i) picks.push_back(h.s().Pick(Request("x")).endpoints.at(0));
  for (const auto& [id, n] : Count(picks)) EXPECT_EQ(n, 100) << id;
  for (int i = 0; i < 8; ++i) EXPECT_EQ(picks[i], ids[i % 4]);
  // Remove the next endpoint in turn: the cycle continues with the others.
  ASSERT_TRUE(h.s().RemoveEndpoint(ids[0]));
  EXPECT_EQ(h.s().Pick(Request("x")).endpoints.at(0), ids[1]);
  EXPECT_EQ(h.s().Pick(Request("x")).endpoints.at(0), ids[2]);
  EXPECT_EQ(h.s().Pick(Request("x")).endpoints.at(0), ids[3]);
  EXPECT_EQ(h.s().Pick(Request("x")).endpoints.at(0), ids[1]);
}

TEST(SchedulerLifecycle, RemovedEndpointsInvalidateHandlesAndUnknownIdsAreErrors) {
  SchedulerHarness h("infergate");
  auto ids = h.AddMany(2);
  h.ScrapeAll(ids, Load{0, 0, 0.0, kCapacity});
  const std::string r_prompt = Text(1000, 1);
  RequestInfo r = Request(r_prompt);
  PickResult p = h.s().Pick(r);
  TokenLedger::Handle t = h.s().Dispatch(r, p, p.endpoints[0]);
  ASSERT_NE(t, TokenLedger::kInvalidHandle);
  EXPECT_EQ(h.s().ledger().inflight(), 1u);
  ASSERT_TRUE(h.s().RemoveEndpoint(p.endpoints[0]));
  EXPECT_FALSE(h.s().OnFirstToken(t));
  EXPECT_FALSE(h.s().OnComplete(t));
  EXPECT_EQ(h.s().ledger().inflight(), 0u);
  EXPECT_EQ(h.s().Dispatch(r, p, "nobody:1"), TokenLedger::kInvalidHandle);
  EXPECT_FALSE(h.s().RemoveEndpoint("nobody:1"));
  EXPECT_FALSE(h.s().ReportScrape("nobody:1", 0, "vllm:num_requests_waiting 0\n").ok());
  EXPECT_FALSE(h.s().ReportMetrics("nobody:1", 0, EndpointMetrics{}));
  EXPECT_FALSE(h.s().ReportScrapeFailure("nobody:1", 0, "x"));
  EXPECT_FALSE(h.s().UpsertEndpoint(EndpointSpec{"", {}, true}).ok());
  EXPECT_EQ(h.s().endpoint_count(), 1u);
}

TEST(SchedulerLifecycle, ScrapeBodiesAndEngineLabels) {
  SchedulerHarness h("gie-default");
  EndpointSpec spec{"a:1", {{std::string(kEngineTypeLabel), "sglang"}}, true};
  ASSERT_TRUE(h.s().UpsertEndpoint(spec).ok());
  EndpointSpec bad{"b:1", {{std::string(kEngineTypeLabel), "tgi"}}, true};
  Status st = h.s().UpsertEndpoint(bad);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("b:1"), std::string::npos);
  EXPECT_EQ(h.s().endpoint_count(), 2u);  // added anyway, with detection
  // a:1 is SGLang: a vLLM page is not its metrics.
  Status wrong = h.s().ReportScrape("a:1", h.clock().Now(), "vllm:num_requests_waiting 1\n");
  EXPECT_FALSE(wrong.ok());
  ASSERT_TRUE(h.s()
                  .ReportScrape("a:1", h.clock().Now(),
                                "sglang:num_queue_reqs 1\nsglang:token_usage 0.25\n")
                  .ok());
  ASSERT_TRUE(h.s().ReportScrape("b:1", h.clock().Now(), "vllm:num_requests_waiting 3\n").ok());
  std::vector<EndpointStatus> eps = h.s().Endpoints();
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].waiting, 1.0);
  EXPECT_EQ(eps[0].kv_usage, 0.25);
  EXPECT_EQ(eps[1].waiting, 3.0);
  PoolStatus pool = h.s().Summary();
  EXPECT_EQ(pool.endpoints, 2);
  EXPECT_EQ(pool.fresh, 2);
  EXPECT_DOUBLE_EQ(pool.average_queue, 2.0);
  EXPECT_DOUBLE_EQ(pool.average_kv_usage, 0.125);
}

TEST(SchedulerLifecycle, PrefixLruFollowsTheEndpointsKvCapacity) {
  SchedulerHarness h("infergate");
  h.Add("a:1");
  h.Scrape("a:1", Load{0, 0, 0, 16 * 100});  // 1600 tokens = 100 blocks of 16 tokens
  const std::string r_prompt = Text(64 * 256, 1);
  RequestInfo r = Request(r_prompt);
  PickResult p = h.s().Pick(r);
  h.s().Dispatch(r, p, "a:1");
  EXPECT_EQ(h.s().Endpoints()[0].prefix_entries, 100u);
}

TEST(SchedulerLifecycle, PrecomputedHashesAreUsed) {
  SchedulerHarness h("gie-default");
  auto ids = h.AddMany(3);
  h.ScrapeAll(ids, Load{0, 0, 0.1});
  const std::string prompt = Text(64 * 20, 1);
  std::vector<std::uint64_t> hashes;
  ComputeBlockHashes("qwq", prompt, h.s().prefix_options(), &hashes);
  RequestInfo r = Request(prompt);
  r.block_hashes = &hashes;
  PickResult p = h.s().Pick(r);
  EXPECT_TRUE(p.block_hashes.empty());  // the caller's were used
  h.s().Dispatch(r, p, ids[2]);
  RequestInfo again = Request(prompt);  // hashed by the scheduler this time
  EXPECT_EQ(h.s().Pick(again).endpoints.at(0), ids[2]);
}

TEST(SchedulerDeterminism, SameSeedSameDecisions) {
  auto run = [](std::uint64_t seed) {
    SchedulerHarness h("gie-default", seed);
    auto ids = h.AddMany(6);
    h.ScrapeAll(ids, Load{1, 1, 0.3});
    std::vector<std::string> picks;
    for (int i = 0; i < 100; ++i) {
      const std::string prompt = Text(300, i);
      picks.push_back(h.PickAndDispatch(Request(prompt)));
    }
    return picks;
  };
  EXPECT_EQ(run(11), run(11));
  EXPECT_NE(run(11), run(12));
}

TEST(SchedulerCalibration, UsageReportsCorrectPromptEstimates) {
  SchedulerHarness h("infergate");
  auto ids = h.AddMany(1);
  h.ScrapeAll(ids, Load{0, 0, 0, kCapacity});
  for (int i = 0; i < 200; ++i) {
    const std::string r_prompt = Text(4000, i);
    RequestInfo r = Request(r_prompt);  // estimated 1000 tokens
    TokenLedger::Handle t;
    h.PickAndDispatch(r, &t);
    h.s().OnFirstToken(t);
    h.s().OnComplete(t, Usage{1300, 50});
  }
  EXPECT_NEAR(h.s().ledger().prompt_token_ratio(), 1.3, 0.01);
  EXPECT_NEAR(h.s().ledger().mean_output_tokens(), 50, 1);
  const std::string r_prompt = Text(4000, 999);
  RequestInfo r = Request(r_prompt);
  TokenLedger::Handle t;
  h.PickAndDispatch(r, &t);
  EXPECT_NEAR(static_cast<double>(h.s().Endpoints()[0].ledger.awaiting_tokens), 1300, 5);
}

// The KV outlook as its definition reads (kv_outlook.h), one request at a time: the
// in-flight requests merged by finish time, whole prompts summed against the scrape for
// `other`, then the total held. The scheduler computes the same projection in columns,
// vector divisions and interleaved sums; decisions may not change, so the results must be
// equal bit for bit.
// With virtual engines, the outlook is the one the next request lands in: its share of
// the capacity and of `other`, and only its in-flight requests (`whole` still sums all).
KvOutlook ReferenceOutlook(const TokenLedger& ledger, std::uint32_t slot, const LoadEstimate& load,
                           std::int64_t capacity, TimeNs now) {
  const TtftModelParams p;
  const int ves = ledger.virtual_engines();
  const int target = ledger.NextVirtualEngine(slot);
  KvOutlook o;
  o.capacity = static_cast<double>(capacity);
  if (ves > 1) o.capacity /= ves;
  const double learned = ledger.mean_tpot_s();
  const double tpot =
      std::max(1e-4, learned > 0 ? learned
                                 : p.decode_step_s + p.decode_step_per_seq_s *
                                                         (std::max(0.0, load.running_est) + 1));
  o.tpot_s = tpot;
  struct Entry {
    double uncached, prompt, output;
    TimeNs first_token, finish_at;
    bool mine;  // in the target virtual engine
  };
  std::vector<Entry> decoding, awaiting;
  ledger.ForEachInflight(slot, [&](const TokenLedger::InflightRequest& r) {
    Entry e{static_cast<double>(r.uncached_tokens),
            static_cast<double>(r.prompt_tokens),
            static_cast<double>(r.expected_output),
            r.first_token,
            kNever,
            r.virtual_engine == target};
    if (r.first_token == kNever) {
      awaiting.push_back(e);
    } else {
      e.finish_at = r.first_token + FromSeconds(e.output * tpot);
      decoding.push_back(e);
    }
  });
  std::sort(decoding.begin(), decoding.end(),
            [](const Entry& a, const Entry& b) { return a.finish_at < b.finish_at; });
  std::sort(awaiting.begin(), awaiting.end(),
            [](const Entry& a, const Entry& b) { return a.output < b.output; });
  double whole = 0;
  auto d = decoding.begin();
  auto a = awaiting.begin();
  while (d != decoding.end() || a != awaiting.end()) {
    const double d_finish = d == decoding.end() ? 0 : std::max(0.0, ToSeconds(d->finish_at - now));
    const double a_finish = a == awaiting.end() ? 0 : a->output * tpot;
    if (a == awaiting.end() || (d != decoding.end() && d_finish <= a_finish)) {
      const double generated =
          std::min(d->output, std::max(0.0, ToSeconds(now - d->first_token)) / tpot);
      if (d->mine) o.inflight.push_back({d->uncached + generated, d_finish, true});
      whole += d->prompt + generated;
      ++d;
    } else {
      if (a->mine) o.inflight.push_back({a->uncached, a_finish, false});
      whole += a->prompt;
      ++a;
    }
  }
  o.other = std::max(0.0, static_cast<double>(load.kv_tokens_est) - whole);
  if (ves > 1) o.other /= ves;
  o.held = o.other;
  for (const KvOutlook::Inflight& r : o.inflight) o.held += r.tokens;
  return o;
}

void CheckProjectionAgainstTheDefinition(int virtual_engines) {
  SchedulerOptions options = SchedulerHarness::Options("infergate");
  options.pipeline_virtual_engines = virtual_engines;
  SchedulerHarness h(options);
  ASSERT_EQ(h.s().virtual_engines(), virtual_engines);
  // Seven endpoints: one group of four projected together and three more; in flight on
  // each 0, 1, 3, 5, 9, 14 and 31 requests (vector steps of four and their remainders).
  const std::vector<std::string> ids = h.AddMany(7);
  const int inflight[] = {0, 1, 3, 5, 9, 14, 31};
  for (std::size_t e = 0; e < ids.size(); ++e) h.Scrape(ids[e], Load{0, 2, 0.1, kCapacity});
  std::vector<std::uint32_t> slots(ids.size());
  std::vector<std::string> prompts;
  for (int i = 0; i < 40; ++i) prompts.push_back(Text(400 + 97 * i, 300 + i));
  // One completion with usage, so the TPOT is learned.
  RequestInfo first = Request(prompts[0]);
  first.prompt_tokens = 100;
  TokenLedger::Handle done = h.s().Dispatch(first, PickResult{}, ids[0]);
  h.Advance(200 * kMs);
  h.s().OnFirstToken(done);
  h.Advance(913'700'123);
  h.s().OnComplete(done, Usage{100, 30});
  for (std::size_t e = 0; e < ids.size(); ++e) {
    for (int i = 0; i < inflight[e]; ++i) {
      RequestInfo r = Request(prompts[i]);
      r.prompt_tokens = 100 + 37 * i;
      r.max_tokens = 20 + 13 * (i % 7);  // repeats: equal finish times and outputs
      TokenLedger::Handle t = h.s().Dispatch(r, PickResult{}, ids[e]);
      slots[e] = *h.s().ledger().SlotOf(t);
      h.Advance(3 * kMs + 7'919 * i);  // irregular times: values with full mantissas
      if (i % 3 != 2) h.s().OnFirstToken(t);
    }
  }
  // The scrape sees more than the ledger on some endpoints (other > 0), less on others.
  for (std::size_t e = 0; e < ids.size(); ++e) {
    h.Scrape(ids[e], Load{1, 3, e % 2 ? 0.6 : 0.0, kCapacity});
  }
  const TtftModelParams p;
  const std::string probe_prompt = Text(3000, 999);
  RequestInfo probe = Request(probe_prompt);
  probe.prompt_tokens = 2500;
  probe.max_tokens = 400;
  for (TimeNs step : {TimeNs{0}, TimeNs{700'013'117}, TimeNs{2'999'990'001}}) {
    h.Advance(step);
    const std::vector<EndpointPrediction> got = h.s().PredictTtft(probe);
    const std::vector<EndpointStatus> status = h.s().Endpoints();
    ASSERT_EQ(got.size(), ids.size());
    for (std::size_t e = 0; e < ids.size(); ++e) {
      SCOPED_TRACE(ids[e] + " at +" + std::to_string(step) + " ns");
      ASSERT_EQ(got[e].endpoint, ids[e]);
      const KvOutlook want =
          ReferenceOutlook(h.s().ledger(), slots[e], status[e].load, kCapacity, h.clock().Now());
      if (virtual_engines == 1) {
        EXPECT_EQ(want.inflight.size(), static_cast<std::size_t>(inflight[e]));
      } else {
        const int target = h.s().ledger().NextVirtualEngine(slots[e]);
        EXPECT_EQ(
            want.inflight.size(),
            static_cast<std::size_t>(h.s().ledger().VirtualEngineUnfinished(slots[e], target)));
      }
      const double peak = want.PeakDemand(2500, 400);
      const TtftPrediction& t = got[e].prediction;
      EXPECT_EQ(t.kv_wait_s, want.SecondsUntilFree(2500 + 0.0));
      EXPECT_EQ(t.kv_demand_tokens, RoundToInt(peak));
      EXPECT_EQ(t.pressure_s, p.kv_pressure_s * (peak / want.capacity));
    }
  }
}

TEST(SchedulerKvOutlook, ProjectionEqualsTheDefinitionBitForBit) {
  CheckProjectionAgainstTheDefinition(1);
}

TEST(SchedulerKvOutlook, VirtualEngineProjectionEqualsTheDefinitionBitForBit) {
  CheckProjectionAgainstTheDefinition(2);
  CheckProjectionAgainstTheDefinition(3);
}

// A server that reports an absurd usage (near INT64_MAX tokens) for a request that was
// decoding at the last scrape: the ledger's account of the freed KV must stay sane, so a
// small request still fits the idle endpoint afterwards.
TEST(SchedulerKv, ABogusUsageCountDoesNotCorruptTheKvAccount) {
  SchedulerHarness h("infergate");
  h.Add("a:1");
  h.Scrape("a:1", Load{0, 0, 0.0, kCapacity});
  h.Advance(kMs);
  const std::string text = Text(4000, 5);
  TokenLedger::Handle t = h.s().Dispatch(Request(text), PickResult{}, "a:1");
  h.s().OnFirstToken(t);
  h.Advance(50 * kMs);
  h.Scrape("a:1", Load{0, 1, 0.02, kCapacity});
  h.Advance(kMs);
  h.s().OnComplete(t, Usage{INT64_MAX, INT64_MAX});
  const std::string small_text = Text(400, 6);
  RequestInfo small = Request(small_text);
  small.max_tokens = 100;
  const std::vector<EndpointPrediction> p = h.s().PredictTtft(small);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].prediction.kv_fits);
  EXPECT_GE(p[0].prediction.kv_demand_tokens, 0);
  EXPECT_LE(p[0].prediction.kv_demand_tokens, kCapacity);
  EXPECT_FALSE(h.s().ShouldHold(small));
}

// Late binding waits for the tenant's warm endpoint: a's cache holds the tenant's ~2000
// token prefix but is full for a moment (a long request with 10 tokens left), b is empty.
// Going to b now means prefilling the whole prompt; the cost model prices a's short wait
// below that, so the request is held for a (waitForWarm) instead of bound to b, the first
// endpoint with room. A request that is cold everywhere is not held.
TEST(SchedulerKv, AHeldRequestWaitsForItsWarmEndpointRatherThanGoingCold) {
  for (const bool wait : {true, false}) {
    SCOPED_TRACE(wait);
    SchedulerHarness h(InfergateWith("kv-headroom-filter", "waitForWarm", wait ? "true" : "false"));
    h.Add("a:1");
    h.Add("b:1");
    h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
    h.Advance(kMs);
    const std::string prefix = Text(8000, 1);
    const std::string first = prefix + Text(400, 2);
    TokenLedger::Handle t = h.s().Dispatch(Request(first), PickResult{}, "a:1");
    h.s().OnFirstToken(t);
    h.s().OnComplete(t, Usage{2100, 50});
    const std::string filler = Text(400, 9);
    RequestInfo big = Request(filler);
    big.prompt_tokens = 51'150;
    big.max_tokens = 10;
    const TokenLedger::Handle long_one = h.s().Dispatch(big, PickResult{}, "a:1");
    h.s().OnFirstToken(long_one);

    const std::string next_text = prefix + Text(400, 3);
    RequestInfo next = Request(next_text);
    next.max_tokens = 100;
    std::map<std::string, TtftPrediction> pred;
    for (const EndpointPrediction& p : h.s().PredictTtft(next)) pred[p.endpoint] = p.prediction;
    ASSERT_EQ(pred.size(), 2u);
    EXPECT_FALSE(pred["a:1"].kv_fits);
    EXPECT_GE(pred["a:1"].cached_tokens, 1900);
    EXPECT_TRUE(pred["b:1"].kv_fits);
    EXPECT_LT(pred["a:1"].cost_s, pred["b:1"].cost_s) << "the wait costs less than a cold prefill";
    EXPECT_EQ(h.s().ShouldHold(next), wait);

    const std::string cold_text = Text(8400, 7);
    EXPECT_FALSE(h.s().ShouldHold(Request(cold_text))) << "cold everywhere: b takes it now";

    // a frees its room: the warm request goes there.
    h.s().OnComplete(long_one, Usage{51'150, 10});
    EXPECT_FALSE(h.s().ShouldHold(next));
    EXPECT_EQ(h.s().Pick(next).endpoints.front(), "a:1");
  }
}

// Two virtual engines of 25,600 tokens each. Two 20,000-token requests fill one each; the
// next request lands in virtual engine 0 (a tie), which has 5,600 tokens left: an 8,000
// token prompt waits there, although the server as a whole has 11,200 free.
TEST(SchedulerVirtualEngines, HoldUntilTheTargetVirtualEngineCanAdmit) {
  for (int ves : {1, 2}) {
    SCOPED_TRACE(ves);
    SchedulerOptions options = SchedulerHarness::Options("infergate");
    options.pipeline_virtual_engines = ves;
    SchedulerHarness h(options);
    h.Add("a:1");
    h.Scrape("a:1", Load{0, 0, 0.0, kCapacity});
    h.Advance(kMs);
    const std::string text = Text(400, 1);
    std::vector<TokenLedger::Handle> held;
    for (int i = 0; i < 2; ++i) {
      RequestInfo r = Request(text);
      r.prompt_tokens = 20'000;
      r.max_tokens = 100;
      held.push_back(h.s().Dispatch(r, PickResult{}, "a:1"));
      h.s().OnFirstToken(held.back());
    }
    EXPECT_EQ(*h.s().ledger().VirtualEngineOf(held[1]), ves == 2 ? 1 : 0);
    RequestInfo next = Request(text);
    next.prompt_tokens = 8'000;
    next.max_tokens = 100;
    EXPECT_EQ(h.s().ShouldHold(next), ves == 2);
    const std::vector<EndpointPrediction> p = h.s().PredictTtft(next);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].prediction.kv_fits, ves == 1);
    // Once the request in virtual engine 0 finishes, it can go.
    h.s().OnComplete(held[0], Usage{20'000, 100});
    EXPECT_FALSE(h.s().ShouldHold(next));
  }
}

// Re-dispatch: a request waiting for KV space in its virtual engine may move to a server
// that can take it now, but not before it has been silent for twice its predicted prefill,
// not one waiting behind another of ours, not one that has started, and not to a virtual
// engine with a prefill of ours queued.
TEST(SchedulerVirtualEngines, RedirectOnlyTheOldestStuckRequestToAnIdleVirtualEngine) {
  SchedulerOptions options = SchedulerHarness::Options("infergate");
  options.pipeline_virtual_engines = 2;
  SchedulerHarness h(options);
  h.Add("a:1");
  h.Add("b:1");
  h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
  h.Advance(kMs);
  const std::string text = Text(400, 3);
  auto request = [&](std::int64_t tokens) {
    RequestInfo r = Request(text);
    r.prompt_tokens = tokens;
    r.max_tokens = 100;
    return r;
  };
  // a:1's two virtual engines each hold a 20,000-token request (5,600 tokens left in each).
  for (int i = 0; i < 2; ++i) {
    const auto big = h.s().Dispatch(request(20'000), PickResult{}, "a:1");
    h.s().OnFirstToken(big);
  }
  const RequestInfo stuck_info = request(8'000);
  const auto stuck = h.s().Dispatch(stuck_info, PickResult{}, "a:1");      // VE 0, no room
  const auto other = h.s().Dispatch(request(1'000), PickResult{}, "a:1");  // VE 1
  const RequestInfo behind_info = request(8'000);
  const auto behind = h.s().Dispatch(behind_info, PickResult{}, "a:1");  // VE 0, after `stuck`
  ASSERT_EQ(*h.s().ledger().VirtualEngineOf(stuck), 0);
  ASSERT_EQ(*h.s().ledger().VirtualEngineOf(behind), 0);
  // Dispatched at the same instant, still in order: `behind` queues behind `stuck`.
  EXPECT_EQ(h.s().ledger().AwaitingAhead(stuck), 0);
  EXPECT_EQ(h.s().ledger().AwaitingAhead(behind), 1);
  EXPECT_EQ(h.s().ledger().AwaitingAhead(other), 0);
  h.Advance(kMs);

  // Silent for less than twice its own predicted prefill (8,000 tokens at the unlearned
  // 2,000 tokens/s: 4 s), it may just be prefilling: it stays.
  PickResult pick;
  EXPECT_FALSE(h.s().ShouldRedirect(stuck_info, stuck, &pick));
  h.Advance(7 * kNanosPerSecond);
  h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
  h.Advance(kMs);
  EXPECT_FALSE(h.s().ShouldRedirect(stuck_info, stuck, &pick));
  h.Advance(2 * kNanosPerSecond);
  h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
  h.Advance(kMs);
  EXPECT_TRUE(h.s().ShouldRedirect(stuck_info, stuck, &pick));
  ASSERT_TRUE(pick.picked());
  EXPECT_EQ(pick.endpoints.front(), "b:1");
  EXPECT_FALSE(h.s().ShouldRedirect(behind_info, behind, &pick));  // behind `stuck`
  h.s().OnFirstToken(other);
  EXPECT_EQ(h.s().ledger().AwaitingAhead(other), -1);
  EXPECT_FALSE(h.s().ShouldRedirect(request(1'000), other, &pick));  // it has started

  // Once b:1's next virtual engine has a prefill of ours queued, it is not a way out.
  h.s().Dispatch(request(1'000), PickResult{}, "b:1");  // b's VE 0
  h.s().Dispatch(request(1'000), PickResult{}, "b:1");  // b's VE 1; the next goes to 0
  EXPECT_FALSE(h.s().ShouldRedirect(stuck_info, stuck, &pick));
  // The ledger is untouched by asking.
  EXPECT_EQ(h.s().ledger().SlotOf(stuck), h.s().ledger().SlotOf(behind));
}

// Prefill pacing: vLLM V0 prefills every waiting prompt of a virtual engine in one step, so
// with the mirror on the gateway holds a request while every virtual engine it could go to
// already has two of ours awaiting a first token (one prefilling, one next), and lets it go
// as soon as one of them starts. Off with holdAwaiting=0, and by default without the mirror.
TEST(SchedulerVirtualEngines, PrefillsArePacedTwoPerVirtualEngine) {
  const std::string text = Text(400, 4);
  RequestInfo r = Request(text);
  r.prompt_tokens = 1'000;
  r.max_tokens = 100;
  // Returns ShouldHold after each of 8 dispatches (4 to a:1, then 4 to b:1).
  auto run = [&](int ves, const char* hold_awaiting) {
    SchedulerOptions options = SchedulerHarness::Options("infergate");
    options.pipeline_virtual_engines = ves;
    if (hold_awaiting != nullptr) {
      NamedProfile named = FindNamedProfile("infergate").value();
      for (PluginSpec& spec : named.config.plugins) {
        if (spec.type == "predicted-ttft-scorer") spec.parameters["holdAwaiting"] = hold_awaiting;
      }
      options.picker_config = named.config;
    }
    SchedulerHarness h(options);
    h.Add("a:1");
    h.Add("b:1");
    h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
    h.Advance(kMs);
    std::vector<bool> held;
    std::vector<TokenLedger::Handle> handles;
    for (int i = 0; i < 8; ++i) {
      handles.push_back(h.s().Dispatch(r, PickResult{}, i < 4 ? "a:1" : "b:1"));
      held.push_back(h.s().ShouldHold(r));
    }
    // One of a:1's prefills starts decoding: its virtual engine has room in its queue.
    h.s().OnFirstToken(handles[0]);
    held.push_back(h.s().ShouldHold(r));
    return held;
  };
  const std::vector<bool> none(9, false);
  std::vector<bool> paced(9, false);
  paced[7] = true;  // every virtual engine of both servers has two awaiting
  EXPECT_EQ(run(2, nullptr), paced);
  EXPECT_EQ(run(2, "auto"), paced);
  EXPECT_EQ(run(2, "0"), none);
  EXPECT_EQ(run(1, nullptr), none);  // no mirror: off by default
  std::vector<bool> four(9, false);
  four[7] = true;  // explicitly on without the mirror: four awaiting per server
  EXPECT_EQ(run(1, "4"), four);
}

// Only the target virtual engine's prefill queue counts. a:1 has one request decoding and
// one awaiting in virtual engine 0 and one awaiting in 1; b:1 has two awaiting in 0 and
// one in 1. The next request lands in virtual engine 1 on both, behind one prompt: equal
// queues, where the whole servers' are two prompts against three.
TEST(SchedulerVirtualEngines, TheQueueIsTheTargetVirtualEngines) {
  const std::string text = Text(400, 2);
  auto predict = [&](int ves) {
    SchedulerOptions options = SchedulerHarness::Options("infergate");
    options.pipeline_virtual_engines = ves;
    SchedulerHarness h(options);
    h.Add("a:1");
    h.Add("b:1");
    h.ScrapeAll({"a:1", "b:1"}, Load{0, 0, 0.0, kCapacity});
    h.Advance(kMs);
    RequestInfo r = Request(text);
    r.prompt_tokens = 2'000;
    r.max_tokens = 100;
    const auto a0 = h.s().Dispatch(r, PickResult{}, "a:1");  // 0
    const auto a1 = h.s().Dispatch(r, PickResult{}, "a:1");  // 1
    h.s().OnFirstToken(a0);
    h.s().OnFirstToken(a1);
    h.s().OnComplete(a1, Usage{2'000, 100});
    h.s().Dispatch(r, PickResult{}, "a:1");                              // 1 (0 has one)
    h.s().Dispatch(r, PickResult{}, "a:1");                              // 0 (a tie)
    for (int i = 0; i < 3; ++i) h.s().Dispatch(r, PickResult{}, "b:1");  // 0, 1, 0
    if (ves == 2) {
      EXPECT_EQ(h.s().ledger().NextVirtualEngine(0), 1);
      EXPECT_EQ(h.s().ledger().NextVirtualEngine(1), 1);
    }
    return h.s().PredictTtft(r);
  };
  const std::vector<EndpointPrediction> mirror = predict(2);
  ASSERT_EQ(mirror.size(), 2u);
  EXPECT_GT(mirror[0].prediction.queue_s, 0.0);
  EXPECT_EQ(mirror[0].prediction.queue_s, mirror[1].prediction.queue_s);
  const std::vector<EndpointPrediction> whole = predict(1);
  ASSERT_EQ(whole.size(), 2u);
  EXPECT_LT(whole[0].prediction.queue_s, whole[1].prediction.queue_s);
  EXPECT_GT(whole[0].prediction.queue_s, mirror[0].prediction.queue_s);
}

TEST(SchedulerVirtualEngines, ConfiguredByThePoolAndSwitchedOffByTheScorer) {
  const ManualClock clock;
  SchedulerOptions o;
  o.pipeline_virtual_engines = 0;
  EXPECT_FALSE(Scheduler::Create(o, &clock).ok());
  o.pipeline_virtual_engines = TokenLedger::kMaxVirtualEngines + 1;
  EXPECT_FALSE(Scheduler::Create(o, &clock).ok());
  o.pipeline_virtual_engines = 2;
  EXPECT_EQ((*Scheduler::Create(o, &clock))->virtual_engines(), 2);

  Result<NamedProfile> named = FindNamedProfile("infergate");
  ASSERT_TRUE(named.ok());
  for (auto& [value, want] :
       std::vector<std::pair<std::string, int>>{{"auto", 2}, {"off", 1}, {"3", 3}}) {
    EndpointPickerConfig config = named->config;
    for (PluginSpec& spec : config.plugins) {
      if (spec.type == "predicted-ttft-scorer") spec.parameters["virtualEngines"] = value;
    }
    o.picker_config = config;
    Result<std::unique_ptr<Scheduler>> s = Scheduler::Create(o, &clock);
    ASSERT_TRUE(s.ok()) << value;
    EXPECT_EQ((*s)->virtual_engines(), want) << value;
  }
  for (const char* bad : {"on", "0", "17", ""}) {
    EndpointPickerConfig config = named->config;
    for (PluginSpec& spec : config.plugins) {
      if (spec.type == "predicted-ttft-scorer") spec.parameters["virtualEngines"] = bad;
    }
    o.picker_config = config;
    Result<std::unique_ptr<Scheduler>> s = Scheduler::Create(o, &clock);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.error().message.find("virtualEngines"), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace infergate
