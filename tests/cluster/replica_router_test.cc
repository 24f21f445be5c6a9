// Several gateway replicas in virtual time (ReplicaRouter): requests spread over
// replicas, each replica's own view, and what replica sync (the shipped event code over a
// modelled transport) puts back into it.
#include "cluster/replica_router.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "cluster/cluster_simulation.h"
#include "cluster/experiment.h"

namespace infergate::cluster {
namespace {

sim::Profile Load(const char* name) {
  auto p = sim::LoadProfile(name);
  EXPECT_TRUE(p.ok());
  return *p;
}

WorkloadRequest Request(int prompt_chars, int max_tokens, std::uint32_t salt) {
  WorkloadRequest w;
  w.prompt_text =
      std::string(static_cast<std::size_t>(prompt_chars), static_cast<char>('a' + salt % 26));
  w.max_tokens = max_tokens;
  w.ignore_eos = true;
  return w;
}

std::unique_ptr<ReplicaRouter> MakeReplicas(int r, bool sync, std::size_t engines,
                                            TimeNs delay = 2 * kNanosPerMilli) {
  std::vector<sim::Profile> profiles(engines, Load("qwq-32b-tp2pp2"));
  std::vector<std::unique_ptr<SchedulerRouter>> routers;
  for (int k = 0; k < r; ++k) {
    SchedulerRouterOptions o;
    o.scheduler.profile = "infergate";
    o.scheduler.seed = 1 + static_cast<std::uint64_t>(k);
    auto router = SchedulerRouter::Create(o, profiles);
    EXPECT_TRUE(router.ok());
    routers.push_back(std::move(*router));
  }
  ReplicaSyncOptions so;
  so.enabled = sync;
  so.delay = delay;
  return std::make_unique<ReplicaRouter>(std::move(routers), so, 7);
}

// Idle engines scraped at `now` by every replica (one scrape per replica, in turn).
void ScrapeAll(ReplicaRouter& rr, std::size_t engines, TimeNs now) {
  std::vector<EngineScrape> scrapes;
  for (std::size_t e = 0; e < engines; ++e)
    scrapes.push_back(EngineScrape{static_cast<int>(e), now, {}});
  for (std::size_t k = 0; k < rr.size(); ++k) rr.OnScrape(scrapes, now);
}

std::size_t Inflight(ReplicaRouter& rr, std::size_t k) {
  return rr.replica(k).scheduler().ledger().inflight();
}

TEST(ReplicaRouterTest, EachReplicaSeesOnlyItsOwnRequestsWithoutSync) {
  auto rr = MakeReplicas(4, false, 3);
  ScrapeAll(*rr, 3, 0);
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 40; ++i) w.push_back(Request(400, 10, static_cast<std::uint32_t>(i)));
  std::vector<std::vector<TokenId>> prompts(w.size());
  std::vector<int> per_replica(4, 0);
  for (std::size_t i = 0; i < w.size(); ++i) {
    RouteDecision d = rr->Route(RouteRequest{i, &w[i], prompts[i]}, {}, 0);
    ASSERT_EQ(d.kind, RouteDecision::Kind::kEngine);
    ++per_replica[static_cast<std::size_t>(rr->ReplicaOf(i))];
  }
  std::size_t total = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_GT(per_replica[k], 0) << "the balancer spreads requests over every replica";
    EXPECT_EQ(Inflight(*rr, k), static_cast<std::size_t>(per_replica[k]));
    total += Inflight(*rr, k);
  }
  EXPECT_EQ(total, 40u);
  EXPECT_EQ(rr->sync_stats().messages, 0u);
}

TEST(ReplicaRouterTest, WithSyncEveryReplicaSeesThePoolsWholeLoadAfterTheDelay) {
  const TimeNs delay = 2 * kNanosPerMilli;
  auto rr = MakeReplicas(4, true, 3, delay);
  ScrapeAll(*rr, 3, 0);
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 40; ++i) w.push_back(Request(400, 10, static_cast<std::uint32_t>(i)));
  std::vector<std::vector<TokenId>> prompts(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    ASSERT_EQ(rr->Route(RouteRequest{i, &w[i], prompts[i]}, {}, 0).kind,
              RouteDecision::Kind::kEngine);
  }
  // Before the delay: local knowledge only.
  std::vector<ReleasedRequest> out;
  rr->Release({}, delay - 1, &out);
  std::size_t before = 0;
  for (std::size_t k = 0; k < 4; ++k) before += Inflight(*rr, k);
  EXPECT_EQ(before, 40u);
  // After it (at the next event, a millisecond later): every replica counts all 40, its own
  // exactly and the rest as remote, dated from their arrival one delay after the dispatch.
  rr->Release({}, delay + kNanosPerMilli, &out);
  EXPECT_EQ(rr->sync_stats().delayed_dispatches, 40u * 3);
  EXPECT_NEAR(rr->sync_stats().dispatch_delay_seconds / (40 * 3), ToSeconds(delay), 1e-9);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(Inflight(*rr, k), 40u) << k;
    std::int32_t remote = 0;
    for (std::uint32_t slot = 0; slot < 3; ++slot) {
      remote += rr->replica(k).scheduler().ledger().Counts(slot).remote_inflight;
    }
    int local = 0;
    for (std::size_t i = 0; i < w.size(); ++i) local += rr->ReplicaOf(i) == static_cast<int>(k);
    EXPECT_EQ(remote, 40 - local) << k;
  }
  // Completions leave every view.
  for (std::size_t i = 0; i < w.size(); ++i) {
    rr->OnFirstToken(i, 0, 10 * kNanosPerMilli);
    rr->OnCompleted(Completion{i, 0, true, 100, 10}, 20 * kNanosPerMilli);
  }
  rr->Release({}, 30 * kNanosPerMilli, &out);
  for (std::size_t k = 0; k < 4; ++k) EXPECT_EQ(Inflight(*rr, k), 0u) << k;
  const ReplicaSyncStats s = rr->sync_stats();
  EXPECT_EQ(s.dispatches, 40u);
  EXPECT_GT(s.messages, 0u);
  EXPECT_EQ(s.invalid, 0u);
  EXPECT_LE(s.max_message_bytes, sync::kMaxMessageBytes);
}

// The publisher's flush rule (as `infergate serve` runs it): news after a quiet flush
// interval goes out at once and reaches the peers one hop later; news less than an
// interval after a flush waits for the interval to pass.
TEST(ReplicaRouterTest, MessagesFlushAtOnceAfterAQuietIntervalElseWhenItHasPassed) {
  const TimeNs hop = 1 * kNanosPerMilli;  // the default flush interval is 2 ms
  auto rr = MakeReplicas(2, true, 3, hop);
  ScrapeAll(*rr, 3, 0);  // both replicas flush their first heartbeat at 0
  std::vector<WorkloadRequest> w;
  for (int i = 0; i < 40; ++i) w.push_back(Request(400, 10, static_cast<std::uint32_t>(i)));
  std::vector<std::vector<TokenId>> prompts(w.size());
  auto route = [&](std::size_t from, std::size_t to, TimeNs now) {
    for (std::size_t i = from; i < to; ++i) {
      ASSERT_EQ(rr->Route(RouteRequest{i, &w[i], prompts[i]}, {}, now).kind,
                RouteDecision::Kind::kEngine);
    }
  };
  auto seen = [&](TimeNs now) {
    std::vector<ReleasedRequest> out;
    rr->Release({}, now, &out);
    return Inflight(*rr, 0) + Inflight(*rr, 1);
  };
  // 1.5 ms after the flush at 0: batched until 2 ms, applied at 3 ms.
  ASSERT_NO_FATAL_FAILURE(route(0, 20, 3 * kNanosPerMilli / 2));
  EXPECT_EQ(seen(3 * kNanosPerMilli - 1), 20u) << "each replica knows only its own";
  EXPECT_EQ(seen(3 * kNanosPerMilli), 40u) << "each knows all 20";
  // At 10 ms, quiet since the flush at 2 ms: out at once, applied one hop later.
  ASSERT_NO_FATAL_FAILURE(route(20, 40, 10 * kNanosPerMilli));
  EXPECT_EQ(seen(10 * kNanosPerMilli + hop - 1), 60u);
  EXPECT_EQ(seen(10 * kNanosPerMilli + hop), 80u);
}

// Small runs of the seed's cluster through RunPolicy: every request is served with 4
// replicas, with and without sync, and with sync under heavy message loss.
TEST(ReplicaRouterTest, RunPolicyServesEveryRequestWithReplicas) {
  WorkloadSpec spec;
  spec.dataset = DatasetKind::kRandom;
  spec.random.num_prompts = 60;
  spec.random.input_len = 1000;
  spec.random.output_len = 200;
  spec.request_rate = 4;
  ASSERT_TRUE(SampleWorkload(spec).ok());
  auto workload = *SampleWorkload(spec);
  ClusterSetup setup;
  setup.engines.assign(3, Load("qwq-32b-tp2pp2"));
  auto idle = IdleTtftSeconds(setup, workload);
  ASSERT_TRUE(idle.ok());
  auto policy = ParsePolicy("infergate");
  ASSERT_TRUE(policy.ok());
  loadgen::RunInfo info;
  loadgen::MetricOptions metrics;
  for (const auto& [sync, loss] :
       std::vector<std::pair<bool, double>>{{false, 0}, {true, 0}, {true, 0.5}}) {
    setup.gateway_replicas = 4;
    setup.replica_sync.enabled = sync;
    setup.replica_sync.loss = loss;
    auto run = RunPolicy(setup, spec, workload, *idle, *policy, info, metrics);
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_EQ(run->result.completed, 60) << sync << " " << loss;
    EXPECT_EQ(run->gateway_replicas, 4);
    if (sync) {
      EXPECT_EQ(run->sync.dispatches, 60u);
      EXPECT_GT(run->sync.bytes, 0u);
      EXPECT_EQ(run->sync.invalid, 0u);
      if (loss > 0) {
        EXPECT_GT(run->sync.lost, 0u);
      }
    } else {
      EXPECT_EQ(run->sync.messages, 0u);
    }
  }
  // A scrape latency the replicas' phases cannot fit is refused.
  setup.gateway_replicas = 64;
  EXPECT_FALSE(RunPolicy(setup, spec, workload, *idle, *policy, info, metrics).ok());
}

}  // namespace
}  // namespace infergate::cluster
