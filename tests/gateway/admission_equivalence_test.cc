// The live gateway's admission (PoolState) and the cluster simulation's
// (cluster::SchedulerRouter) decide alike: the same request sequence, with scrapes, first
// tokens, completions, priorities, a Sheddable request, a spell of unreachable endpoints
// and TTLs, driven
// through each as its host drives it, gives the same decisions at the same steps.
// The scenario is checked to cover every kind of decision, so a rule that changes on one
// side only (holding Sheddable requests, holding with no endpoint reachable, skipping the
// queue's order, ...) shows as a difference.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/scheduler_router.h"
#include "gateway/pool_state.h"
#include "sim/engine/profile.h"

namespace infergate::gateway {
namespace {

constexpr TimeNs kMs = kNanosPerMilli;

struct Event {
  enum Kind { kScrape, kDown, kArrive, kFirstToken, kComplete, kTick } kind;
  TimeNs at = 0;
  std::size_t index = 0;                // kArrive, kFirstToken, kComplete
  std::vector<sim::EngineStats> stats;  // kScrape: per engine
};

// A decision as "<step> #<index> <outcome>", the outcome an endpoint id or
// "<status> <reason>".
using Log = std::vector<std::string>;

const FlowControlOptions kQueue{.max_queued = 4,
                                .max_queued_per_band = 0,
                                .default_ttl = 3000 * kMs,
                                .fairness = FairnessPolicy::kRoundRobin};

sim::EngineStats Stats(int running, int waiting, double kv) {
  sim::EngineStats s;
  s.num_running = running;
  s.num_waiting = waiting;
  s.kv_usage = kv;
  return s;
}

std::vector<cluster::WorkloadRequest> Workload() {
  std::vector<cluster::WorkloadRequest> w(12);
  for (std::size_t i = 0; i < w.size(); ++i) {
    // ~800 tokens each (4 characters a token), each its own text: one fits in a tiny
    // engine's 1,280 tokens of KV at a time.
    w[i].prompt_text = std::string(3200, static_cast<char>('a' + i)) + std::to_string(i);
    w[i].max_tokens = 40;
    w[i].fairness_id = i % 2 ? "tenant-b" : "tenant-a";
  }
  w[5].gateway_priority = 5;   // jumps the queue
  w[6].gateway_priority = -1;  // Sheddable
  w[7].session_key = "s1";
  return w;
}

std::vector<Event> Script() {
  std::vector<Event> e;
  auto scrape = [&](TimeNs at, std::vector<sim::EngineStats> s) {
    e.push_back({Event::kScrape, at, 0, std::move(s)});
  };
  auto at = [&](Event::Kind k, TimeNs t, std::size_t i) { e.push_back({k, t, i, {}}); };
  scrape(0, {Stats(0, 0, 0), Stats(0, 0, 0)});
  for (std::size_t i = 0; i < 5; ++i) at(Event::kArrive, (1 + i) * kMs, i);
  scrape(50 * kMs, {Stats(1, 1, 0.7), Stats(1, 1, 0.7)});
  at(Event::kArrive, 60 * kMs, 5);  // priority 5: ahead of 2-4
  scrape(100 * kMs, {Stats(1, 6, 0.95), Stats(1, 6, 0.95)});
  at(Event::kArrive, 110 * kMs, 6);  // Sheddable, saturated pool
  at(Event::kArrive, 120 * kMs, 7);  // the queue is full (4)
  at(Event::kFirstToken, 400 * kMs, 0);
  at(Event::kFirstToken, 420 * kMs, 1);
  scrape(450 * kMs, {Stats(1, 0, 0.7), Stats(1, 0, 0.7)});
  at(Event::kComplete, 900 * kMs, 0);
  scrape(950 * kMs, {Stats(0, 1, 0.7), Stats(1, 0, 0.7)});
  at(Event::kComplete, 1000 * kMs, 1);
  scrape(1050 * kMs, {Stats(1, 0, 0.7), Stats(1, 0, 0.7)});
  at(Event::kArrive, 1100 * kMs, 8);
  // Scrapes keep coming, nothing finishes: the oldest held requests run out of time.
  for (TimeNs t = 1500; t <= 3500; t += 500) {
    scrape(t * kMs, {Stats(1, 0, 0.7), Stats(1, 0, 0.7)});
  }
  at(Event::kTick, 4200 * kMs, 0);
  at(Event::kArrive, 4300 * kMs, 9);
  // Every endpoint refuses its scrape: nothing can be reached, no hold can end, the
  // failure mode answers. (Scrapes that merely stop leave the endpoints reachable with
  // late metrics: slow is not dead.)
  e.push_back({Event::kDown, 4500 * kMs, 0, {Stats(0, 0, 0), Stats(0, 0, 0)}});
  at(Event::kTick, 7000 * kMs, 0);
  at(Event::kArrive, 7100 * kMs, 10);
  // They come back: holding resumes.
  scrape(7500 * kMs, {Stats(1, 0, 0.7), Stats(1, 0, 0.7)});
  at(Event::kArrive, 7600 * kMs, 11);
  at(Event::kTick, 8000 * kMs, 0);
  return e;
}

std::vector<sim::Profile> Engines() {
  auto p = sim::LoadProfile("tiny");
  EXPECT_TRUE(p.ok());
  p->engine.num_gpu_blocks = 80;
  return {*p, *p};
}

cluster::SchedulerRouterOptions RouterOptions() {
  cluster::SchedulerRouterOptions o;
  o.scheduler.profile = "infergate";
  o.criticality = Criticality::kStandard;
  o.late_binding = true;
  o.queue = kQueue;
  return o;
}

// The simulation's side, driven as cluster::Simulation drives a Router.
Log RunSimulated(const std::vector<cluster::WorkloadRequest>& w) {
  auto engines = Engines();
  auto router = cluster::SchedulerRouter::Create(RouterOptions(), engines);
  EXPECT_TRUE(router.ok());
  cluster::SchedulerRouter& r = **router;
  std::vector<int> engine_of(w.size(), -1);
  Log log;
  int step = 0;
  auto note = [&](std::vector<std::pair<std::size_t, std::string>> got) {
    std::sort(got.begin(), got.end());
    for (auto& [i, o] : got)
      log.push_back(std::to_string(step) + " #" + std::to_string(i) + " " + o);
  };
  auto describe = [&](std::size_t i, const cluster::RouteDecision& d) -> std::string {
    if (d.kind == cluster::RouteDecision::Kind::kEngine) {
      engine_of[i] = d.engine;
      return "10.0.0." + std::to_string(d.engine + 1) + ":8000";
    }
    if (d.reason == "503 gateway queue TTL expired") return "503 queue-ttl";
    if (d.reason == "429 gateway queue full") return "429 queue-full";
    return d.reason;
  };
  auto release = [&](TimeNs now, std::vector<std::pair<std::size_t, std::string>>* got) {
    std::vector<cluster::ReleasedRequest> out;
    r.Release({}, now, &out);
    for (const auto& rel : out) got->emplace_back(rel.index, describe(rel.index, rel.decision));
  };
  for (const Event& e : Script()) {
    std::vector<std::pair<std::size_t, std::string>> got;
    switch (e.kind) {
      case Event::kScrape: {
        std::vector<cluster::EngineScrape> s;
        for (std::size_t k = 0; k < e.stats.size(); ++k) {
          s.push_back({static_cast<int>(k), e.at, e.stats[k]});
        }
        r.OnScrape(s, e.at);
        break;
      }
      case Event::kDown: {
        std::vector<cluster::EngineScrape> s;
        for (std::size_t k = 0; k < e.stats.size(); ++k) {
          cluster::EngineScrape down{static_cast<int>(k), e.at, {}};
          down.down = true;
          s.push_back(down);
        }
        r.OnScrape(s, e.at);
        break;
      }
      case Event::kArrive: {
        const cluster::RouteRequest req{e.index, &w[e.index], {}};
        const cluster::RouteDecision d = r.Route(req, {}, e.at);
        if (d.kind != cluster::RouteDecision::Kind::kHold)
          got.emplace_back(e.index, describe(e.index, d));
        break;
      }
      case Event::kFirstToken:
        r.OnFirstToken(e.index, engine_of[e.index], e.at);
        break;
      case Event::kComplete:
        r.OnCompleted({e.index, engine_of[e.index], true, 800, 40}, e.at);
        break;
      case Event::kTick:
        break;
    }
    release(e.at, &got);
    note(std::move(got));
    ++step;
  }
  return log;
}

// The live gateway's side: PoolState as the request path and the scrape loop call it.
Log RunLive(const std::vector<cluster::WorkloadRequest>& w) {
  auto engines = Engines();
  std::vector<sim::EngineConfig> configs;
  for (const auto& p : engines) configs.push_back(*sim::ResolveEngineConfig(p));
  ManualClock clock(0);
  PoolSettings settings;
  settings.profile = "infergate";
  settings.flow_control = true;
  settings.queue = kQueue;
  settings.pipeline_parallel_size = cluster::PoolVirtualEngines(configs);
  auto pool = PoolState::Create("default/p", settings, &clock);
  EXPECT_TRUE(pool.ok());
  PoolState& p = **pool;
  std::vector<std::string> ids;
  for (std::size_t k = 0; k < engines.size(); ++k) {
    ids.push_back("10.0.0." + std::to_string(k + 1) + ":8000");
    EndpointSpec spec;
    spec.id = ids.back();
    spec.labels[std::string(kEngineTypeLabel)] = "vllm";
    EXPECT_TRUE(p.WithScheduler([&](Scheduler& s) { return s.UpsertEndpoint(spec); }).ok());
  }
  asio::io_context io;
  std::vector<RequestInfo> infos(w.size());
  std::vector<std::unique_ptr<QueueWaiter>> waiters(w.size());
  std::vector<bool> reported(w.size(), false);
  Log log;
  int step = 0;
  for (const Event& e : Script()) {
    clock.Set(e.at);
    std::vector<std::pair<std::size_t, std::string>> got;
    switch (e.kind) {
      case Event::kScrape:
        p.UpdateScheduler([&](Scheduler& s) {
          for (std::size_t k = 0; k < e.stats.size(); ++k) {
            s.ReportMetrics(ids[k], e.at, cluster::ScrapedMetrics(e.stats[k], configs[k]));
          }
          return 0;
        });
        break;
      case Event::kDown:
        p.UpdateScheduler([&](Scheduler& s) {
          for (const auto& id : ids) {
            s.ReportScrapeFailure(id, e.at, "connection refused", ScrapeFailure::kUnreachable);
          }
          return 0;
        });
        break;
      case Event::kArrive: {
        // The request as the gateway's parse and classify steps describe it.
        const cluster::WorkloadRequest& q = w[e.index];
        RequestInfo& info = infos[e.index];
        info.target_model = "model";
        info.prompt = q.prompt_text;
        info.max_tokens = q.max_tokens;
        info.criticality = Criticality::kStandard;
        info.priority = q.gateway_priority.value_or(PriorityOf(Criticality::kStandard));
        info.fairness_id = q.fairness_id;
        info.session_key = q.session_key;
        auto waiter = std::make_unique<QueueWaiter>();
        waiter->executor = io.get_executor();
        waiter->wake = std::make_shared<asio::steady_timer>(io);
        waiter->info = &info;
        const Admission a = p.PickOrQueue(*waiter, 0, true);
        if (a == Admission::kQueueFull) {
          got.emplace_back(e.index, "429 queue-full");
          reported[e.index] = true;
        }
        waiters[e.index] = std::move(waiter);
        break;
      }
      case Event::kFirstToken:
        p.UpdateScheduler([&](Scheduler& s) { return s.OnFirstToken(waiters[e.index]->handle); });
        break;
      case Event::kComplete:
        p.UpdateScheduler([&](Scheduler& s) {
          return s.OnComplete(waiters[e.index]->handle, Usage{800, 40});
        });
        break;
      case Event::kTick:
        p.UpdateScheduler([](Scheduler&) { return 0; });
        break;
    }
    for (std::size_t i = 0; i < w.size(); ++i) {
      QueueWaiter* qw = waiters[i].get();
      if (!qw || reported[i] || !p.Decided(*qw)) continue;
      reported[i] = true;
      if (qw->expired) {
        got.emplace_back(i, "503 queue-ttl");
      } else if (qw->pick.picked()) {
        got.emplace_back(i, qw->pick.endpoints.front());
      } else {
        got.emplace_back(i, std::to_string(qw->pick.http_status()) + " " +
                                std::string(PickReasonName(qw->pick.reason)));
      }
    }
    std::sort(got.begin(), got.end());
    for (auto& [i, o] : got)
      log.push_back(std::to_string(step) + " #" + std::to_string(i) + " " + o);
    ++step;
  }
  io.poll();  // the wake-ups posted for decided requests
  return log;
}

std::string Join(const Log& log) {
  std::string s;
  for (const auto& l : log) s += l + "\n";
  return s;
}

bool Has(const Log& log, const std::string& needle) {
  return std::any_of(log.begin(), log.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

TEST(AdmissionEquivalence, TheLivePoolAndTheSimulationDecideAlike) {
  const auto workload = Workload();
  const Log simulated = RunSimulated(workload);
  const Log live = RunLive(workload);
  EXPECT_EQ(Join(live), Join(simulated));
  // The scenario reaches every kind of decision (else the comparison proves little).
  SCOPED_TRACE(Join(live));
  EXPECT_TRUE(Has(live, "#0 10.0.0."));            // picked at once
  EXPECT_TRUE(Has(live, "#6 429 saturated"));      // Sheddable: shed, not held
  EXPECT_TRUE(Has(live, "#7 429 queue-full"));     // the queue's capacity
  EXPECT_TRUE(Has(live, "503 queue-ttl"));         // a TTL ran out
  EXPECT_TRUE(Has(live, "503 no-fresh-metrics"));  // unreachable: the failure mode answered
  // Request 5 (priority 5) arrived after 2-4 and left before them.
  auto step_of = [&](std::size_t i) {
    for (const auto& l : live) {
      if (l.find(" #" + std::to_string(i) + " ") != std::string::npos) return std::stoi(l);
    }
    return -1;
  };
  EXPECT_GT(step_of(2), 0);
  EXPECT_LT(step_of(5), step_of(3));
  EXPECT_GT(step_of(10), 0);
  EXPECT_EQ(step_of(11), -1);  // held again once the endpoints answered
}

}  // namespace
}  // namespace infergate::gateway
