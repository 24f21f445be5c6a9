#include "cluster/cluster_simulation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace infergate::cluster {
namespace {

TimeNs Ms(double ms) { return static_cast<TimeNs>(std::llround(ms * 1e6)); }

sim::Profile Tiny() {
  auto p = sim::LoadProfile("tiny");
  EXPECT_TRUE(p.ok());
  return *p;
}

WorkloadRequest Request(int prompt_len, int max_tokens, std::uint32_t salt = 1) {
  WorkloadRequest w;
  for (int i = 0; i < prompt_len; ++i)
    w.prompt_tokens.push_back(salt * 7919u + static_cast<TokenId>(i));
  w.max_tokens = max_tokens;
  return w;
}

// Sends everything to one engine and remembers what it was shown.
class SpyRouter : public Router {
 public:
  struct Seen {
    TimeNs now;
    TimeNs taken_at;
    int running;
    int waiting;
  };
  RouteDecision Route(const RouteRequest& req, std::span<const EngineScrape> engines,
                      TimeNs now) override {
    seen.push_back(
        {now, engines[0].taken_at, engines[0].stats.num_running, engines[0].stats.num_waiting});
    routed.push_back(req.index);
    return RouteDecision::To(0);
  }
  void OnDispatched(const RouteRequest& req, int engine, TimeNs now) override {
    log.push_back({'D', req.index, engine, now});
  }
  void OnFirstToken(std::size_t index, int engine, TimeNs now) override {
    log.push_back({'F', index, engine, now});
  }
  void OnCompleted(const Completion& c, TimeNs now) override {
    log.push_back({'C', c.index, c.engine, now});
    completions.push_back(c);
  }
  struct Call {
    char kind;
    std::size_t index;
    int engine;
    TimeNs now;
  };
  std::vector<Seen> seen;
  std::vector<std::size_t> routed;
  std::vector<Call> log;
  std::vector<Completion> completions;
};

TEST(ClusterSim, ClosedLoopConcurrencyIsRespected) {
  ClusterOptions o;
  o.engines = {Tiny(), Tiny()};
  o.max_concurrency = 3;
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 20; ++i)
    w.push_back(Request(50 + 10 * i, 5 + i, static_cast<std::uint32_t>(i)));
  RoundRobinRouter rr;
  auto res = RunCluster(o, w, rr);
  ASSERT_TRUE(res.ok()) << res.error().message;
  const auto& rs = res->requests;
  // At every send, count requests in flight (sent, not completed).
  int peak = 0;
  for (const auto& a : rs) {
    int in_flight = 0;
    for (const auto& b : rs) {
      if (b.send <= a.send && a.send < b.completion) ++in_flight;
    }
    peak = std::max(peak, in_flight);
  }
  EXPECT_EQ(peak, 3);
  // Requests are sent in order; the fourth goes exactly when the first slot frees.
  for (std::size_t i = 1; i < rs.size(); ++i) EXPECT_LE(rs[i - 1].send, rs[i].send);
  std::vector<TimeNs> done;
  for (const auto& r : rs) done.push_back(r.completion);
  std::sort(done.begin(), done.end());
  EXPECT_EQ(rs[3].send, done[0]);
  for (const auto& r : rs) {
    EXPECT_TRUE(r.success);
    EXPECT_EQ(r.output_tokens, static_cast<int>(r.token_times.size()));
  }
  EXPECT_EQ(rs[0].engine, 0);
  EXPECT_EQ(rs[1].engine, 1);
  EXPECT_EQ(rs[2].engine, 0);
}

TEST(ClusterSim, RouterSeesScrapesAsStaleAsTheInterval) {
  std::vector<WorkloadRequest> w = {Request(100, 50), Request(100, 50, 2)};
  w[0].arrival = Ms(10);
  w[1].arrival = Ms(20);
  ClusterOptions o;
  o.engines = {Tiny()};
  o.scrape_interval = Ms(50);
  SpyRouter stale;
  ASSERT_TRUE(RunCluster(o, w, stale).ok());
  ASSERT_EQ(stale.seen.size(), 2u);
  // At 20 ms the latest scrape is from time 0: it does not show request 0, which the
  // engine has been prefilling since 10 ms.
  EXPECT_EQ(stale.seen[1].now, Ms(20));
  EXPECT_EQ(stale.seen[1].taken_at, 0);
  EXPECT_EQ(stale.seen[1].running, 0);

  o.scrape_interval = 0;  // fresh snapshots
  SpyRouter fresh;
  ASSERT_TRUE(RunCluster(o, w, fresh).ok());
  EXPECT_EQ(fresh.seen[1].taken_at, Ms(20));
  EXPECT_EQ(fresh.seen[1].running, 1);
}

TEST(ClusterSim, ScrapesHappenAtMultiplesOfTheInterval) {
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 30; ++i) {
    w.push_back(Request(100, 20, static_cast<std::uint32_t>(i)));
    w.back().arrival = Ms(7.3 * i);
  }
  ClusterOptions o;
  o.engines = {Tiny()};
  o.scrape_interval = Ms(25);
  std::vector<TimeNs> scrape_times;
  o.on_scrape = [&](TimeNs t, std::span<const EngineScrape> s) {
    scrape_times.push_back(t);
    EXPECT_EQ(s[0].taken_at, t);
  };
  SpyRouter spy;
  auto res = RunCluster(o, w, spy);
  ASSERT_TRUE(res.ok());
  for (std::size_t k = 0; k < scrape_times.size(); ++k) {
    EXPECT_EQ(scrape_times[k], Ms(25) * static_cast<TimeNs>(k));
  }
  EXPECT_GE(scrape_times.back(), res->end - Ms(25));
  for (const auto& s : spy.seen) {
    EXPECT_GE(s.now - s.taken_at, 0);
    EXPECT_LT(s.now - s.taken_at, Ms(25));
  }
}

TEST(ClusterSim, NetworkDelaysAndRouterCallbacks) {
  ClusterOptions o;
  o.engines = {Tiny()};
  o.delays.client_to_gateway = Ms(2);
  o.delays.gateway_to_engine = Ms(1);
  std::vector<WorkloadRequest> w = {Request(100, 3)};
  SpyRouter spy;
  auto res = RunCluster(o, w, spy);
  ASSERT_TRUE(res.ok());
  const RequestRecord& r = res->requests[0];
  // Sent at 0, routed at 2 ms, at the engine at 3 ms; prefill 20 ms, decodes 6 ms each:
  // tokens leave the engine at 23, 29, 35 ms and reach the client 3 ms later.
  EXPECT_EQ(r.send, 0);
  EXPECT_EQ(r.token_times, (std::vector<TimeNs>{Ms(26), Ms(32), Ms(38)}));
  EXPECT_EQ(r.first_token, Ms(26));
  EXPECT_EQ(r.completion, Ms(38));
  ASSERT_EQ(spy.log.size(), 3u);
  EXPECT_EQ(spy.log[0].kind, 'D');
  EXPECT_EQ(spy.log[0].now, Ms(2));
  EXPECT_EQ(spy.log[1].kind, 'F');
  EXPECT_EQ(spy.log[1].now, Ms(24));
  EXPECT_EQ(spy.log[2].kind, 'C');
  EXPECT_EQ(spy.log[2].now, Ms(36));
  ASSERT_EQ(spy.completions.size(), 1u);
  EXPECT_TRUE(spy.completions[0].success);
  EXPECT_EQ(spy.completions[0].output_tokens, 3);
  EXPECT_EQ(spy.completions[0].prompt_tokens, 100);
  EXPECT_EQ(res->start, 0);
  EXPECT_EQ(res->end, Ms(38));
}

TEST(ClusterSim, SameOptionsGiveTheSameResult) {
  ClusterOptions o;
  o.engines = {Tiny(), Tiny(), Tiny()};
  o.arrivals.rate = 20;
  o.max_concurrency = 8;
  o.seed = 11;
  o.engines[0].eos.model = sim::EosModel::kUniform;
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 60; ++i)
    w.push_back(Request(30 + 17 * (i % 13), 10 + 7 * (i % 5), static_cast<std::uint32_t>(i)));
  auto run = [&] {
    RoundRobinRouter rr;
    auto res = RunCluster(o, w, rr);
    EXPECT_TRUE(res.ok());
    std::vector<TimeNs> flat;
    for (const auto& r : res->requests) {
      flat.push_back(r.send);
      flat.push_back(r.engine);
      flat.insert(flat.end(), r.token_times.begin(), r.token_times.end());
    }
    return flat;
  };
  const auto a = run();
  EXPECT_EQ(a, run());
  o.seed = 12;
  EXPECT_NE(a, run());
}

// Sends request i to engine (i + shift) % engines.
class ShiftRouter : public Router {
 public:
  ShiftRouter(int shift, int engines) : shift_(shift), engines_(engines) {}
  RouteDecision Route(const RouteRequest& req, std::span<const EngineScrape>, TimeNs) override {
    return RouteDecision::To(static_cast<int>((req.index + static_cast<std::size_t>(shift_)) %
                                              static_cast<std::size_t>(engines_)));
  }

 private:
  int shift_, engines_;
};

TEST(ClusterSim, AnAnswerDoesNotDependOnTheEngineThatRunsIt) {
  // Natural lengths from the EOS model: each request ends where it would on any engine.
  ClusterOptions o;
  o.engines = {Tiny(), Tiny(), Tiny()};
  for (auto& e : o.engines) {
    e.eos.model = sim::EosModel::kUniform;
    e.eos.min_fraction = 0;
    e.eos.max_fraction = 1;
  }
  o.arrivals.rate = 5;
  o.seed = 21;
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 30; ++i) w.push_back(Request(40, 200, static_cast<std::uint32_t>(i)));
  auto lengths = [&](int shift) {
    ShiftRouter router(shift, 3);
    auto res = RunCluster(o, w, router);
    EXPECT_TRUE(res.ok());
    std::vector<int> out;
    for (const auto& r : res->requests) out.push_back(r.output_tokens);
    return out;
  };
  const std::vector<int> a = lengths(0);
  EXPECT_EQ(a, lengths(1));
  EXPECT_EQ(a, lengths(2));
  // Not all at max_tokens: the EOS model is on, so the comparison means something.
  EXPECT_LT(*std::min_element(a.begin(), a.end()), 200);
}

TEST(ClusterSim, RejectionsRetriesAndEngineRefusalsFailSingleRequests) {
  class Picky : public Router {
   public:
    RouteDecision Route(const RouteRequest& req, std::span<const EngineScrape>,
                        TimeNs now) override {
      if (req.index == 1) return RouteDecision::Reject("shed");
      if (req.index == 2 && retries_++ < 2) return RouteDecision::RetryAt(now + Ms(100));
      if (req.index == 3) return RouteDecision::To(7);
      return RouteDecision::To(0);
    }

   private:
    int retries_ = 0;
  } picky;
  ClusterOptions o;
  o.engines = {Tiny()};
  o.max_concurrency = 1;
  std::vector<WorkloadRequest> w = {Request(10, 2), Request(10, 2),   Request(10, 2),
                                    Request(10, 2), Request(2000, 2), Request(10, 2)};
  auto res = RunCluster(o, w, picky);
  ASSERT_TRUE(res.ok()) << res.error().message;
  const auto& r = res->requests;
  EXPECT_TRUE(r[0].success);
  EXPECT_FALSE(r[1].success);
  EXPECT_EQ(r[1].error, "shed");
  EXPECT_TRUE(r[2].success);
  EXPECT_EQ(r[2].retries, 2);
  EXPECT_EQ(r[2].first_token - r[2].send, Ms(200) + Ms(11));
  EXPECT_FALSE(r[3].success);
  EXPECT_NE(r[3].error.find("engine 7"), std::string::npos);
  EXPECT_FALSE(r[4].success);
  EXPECT_NE(r[4].error.find("maximum context length"), std::string::npos);
  EXPECT_TRUE(r[5].success);  // the slot was released after each failure
}

TEST(ClusterSim, TextPromptsAreTokenized) {
  ClusterOptions o;
  o.engines = {Tiny()};
  WorkloadRequest w;
  w.prompt_text = " the quick brown fox";  // " the", " quic", "k", " brow", "n", " fox"
  w.max_tokens = 2;
  RoundRobinRouter rr;
  auto res = RunCluster(o, std::vector<WorkloadRequest>{w}, rr);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->requests[0].prompt_tokens, 6);
  EXPECT_TRUE(res->requests[0].success);
}

TEST(ClusterSim, ScrapeLatencyDelaysWhatTheRouterSees) {
  std::vector<WorkloadRequest> w = {Request(100, 50), Request(100, 50, 2)};
  w[0].arrival = Ms(10);
  w[1].arrival = Ms(50.5);  // the 50 ms scrape is taken but not yet seen
  ClusterOptions o;
  o.engines = {Tiny()};
  o.scrape_interval = Ms(50);
  o.scrape_latency = Ms(1);
  class Counting : public SpyRouter {
   public:
    void OnScrape(std::span<const EngineScrape> e, TimeNs now) override {
      delivered.push_back({now, e[0].taken_at});
    }
    std::vector<std::pair<TimeNs, TimeNs>> delivered;
  } spy;
  ASSERT_TRUE(RunCluster(o, w, spy).ok());
  ASSERT_EQ(spy.seen.size(), 2u);
  EXPECT_EQ(spy.seen[1].taken_at, 0);  // still the time-0 snapshot at 50.5 ms
  // The idle snapshot at 0 is there before anything; then every scrape 1 ms after it.
  ASSERT_GE(spy.delivered.size(), 3u);
  EXPECT_EQ(spy.delivered[0], (std::pair<TimeNs, TimeNs>{0, 0}));
  EXPECT_EQ(spy.delivered[1], (std::pair<TimeNs, TimeNs>{Ms(1), 0}));
  EXPECT_EQ(spy.delivered[2], (std::pair<TimeNs, TimeNs>{Ms(51), Ms(50)}));
  o.scrape_latency = Ms(50);
  EXPECT_FALSE(RunCluster(o, w, spy).ok());  // must be below the interval
}

TEST(ClusterSim, StepEndMetricsHideWhatHappensDuringAStep) {
  // A 900-token prefill takes 100 ms on the tiny engine; a second request arrives during it.
  std::vector<WorkloadRequest> w = {Request(900, 5), Request(50, 5, 2)};
  w[0].arrival = 0;
  w[1].arrival = Ms(20);
  ClusterOptions o;
  o.engines = {Tiny()};
  o.scrape_interval = Ms(50);
  std::vector<EngineScrape> at50;
  o.on_scrape = [&](TimeNs t, std::span<const EngineScrape> s) {
    if (t == Ms(50)) at50.assign(s.begin(), s.end());
  };
  SpyRouter a;
  ASSERT_TRUE(RunCluster(o, w, a).ok());
  ASSERT_EQ(at50.size(), 1u);
  EXPECT_EQ(at50[0].stats.num_running, 1);  // the instant: one prefilling...
  EXPECT_EQ(at50[0].stats.num_waiting, 1);  // ...one waiting for the step to end
  o.metrics_at_step_end = true;
  SpyRouter b;
  ASSERT_TRUE(RunCluster(o, w, b).ok());
  ASSERT_EQ(at50.size(), 1u);
  // vLLM's gauges: no step has ended yet, so the page still shows the idle engine.
  EXPECT_EQ(at50[0].stats.num_running, 0);
  EXPECT_EQ(at50[0].stats.num_waiting, 0);
}

// Holds everything, releases one request per completion (and all at a wake-up time).
class HoldingRouter : public Router {
 public:
  RouteDecision Route(const RouteRequest& req, std::span<const EngineScrape>, TimeNs) override {
    held.push_back(req.index);
    return RouteDecision::Hold();
  }
  void OnCompleted(const Completion&, TimeNs) override { ++credits; }
  void Release(std::span<const EngineScrape>, TimeNs now,
               std::vector<ReleasedRequest>* out) override {
    ++releases;
    if (now >= reject_at) {
      for (std::size_t i : held) out->push_back({i, RouteDecision::Reject("503 late")});
      held.clear();
      return;
    }
    while (!held.empty() && (credits > 0 || first)) {
      out->push_back({held.front(), RouteDecision::To(0)});
      held.erase(held.begin());
      if (!first) --credits;
      first = false;
    }
  }
  TimeNs NextWakeup() const override { return reject_at; }
  std::vector<std::size_t> held;
  int credits = 0;
  bool first = true;
  int releases = 0;
  TimeNs reject_at = kNever;
};

TEST(ClusterSim, HeldRequestsAreReleasedOnEventsAndWakeUps) {
  std::vector<WorkloadRequest> w;
  for (std::uint32_t i = 0; i < 4; ++i) w.push_back(Request(100, 10, i + 1));
  ClusterOptions o;
  o.engines = {Tiny()};
  HoldingRouter router;
  router.reject_at = Ms(90);
  auto res = RunCluster(o, w, router);
  ASSERT_TRUE(res.ok()) << res.error().message;
  const auto& r = res->requests;
  // Request 0 goes at once; 1 when 0 completes (a 20 ms prefill + 9 decodes of 6 ms:
  // 74 ms); 2 and 3 are still held at the 90 ms wake-up and answered then.
  EXPECT_TRUE(r[0].held);
  EXPECT_EQ(r[0].dispatched, 0);
  EXPECT_EQ(r[1].dispatched, r[0].completion);
  EXPECT_TRUE(r[1].success);
  for (std::size_t i = 2; i < 4; ++i) {
    EXPECT_FALSE(r[i].success);
    EXPECT_EQ(r[i].error, "503 late");
    EXPECT_EQ(r[i].completion, Ms(90));
    EXPECT_EQ(r[i].dispatched, -1);
  }
  EXPECT_GT(router.releases, 4);
}

TEST(ClusterSim, InvalidOptionsAreErrors) {
  RoundRobinRouter rr;
  std::vector<WorkloadRequest> w = {Request(10, 2)};
  ClusterOptions o;
  EXPECT_FALSE(RunCluster(o, w, rr).ok());  // no engines
  o.engines = {Tiny()};
  o.max_concurrency = -1;
  EXPECT_FALSE(RunCluster(o, w, rr).ok());
  o.max_concurrency = 0;
  o.arrivals.rate = 0;
  EXPECT_FALSE(RunCluster(o, w, rr).ok());
  o.arrivals.rate = 1;
  o.engines[0].model.layers = 0;
  auto bad = RunCluster(o, w, rr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("engine 0"), std::string::npos);
  o.engines = {Tiny()};
  o.time_limit = Ms(5);
  auto late = RunCluster(o, w, rr);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().message.find("time limit"), std::string::npos);
}

}  // namespace
}  // namespace infergate::cluster
