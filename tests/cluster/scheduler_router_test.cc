// The real scheduling core behind the cluster simulation: what scrapes show it, the
// gateway queue (priority, fairness, TTL), and how scrape staleness hurts a metrics-only
// policy.
#include "cluster/scheduler_router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "cluster/cluster_simulation.h"
#include "cluster/experiment.h"

namespace infergate::cluster {
namespace {

TimeNs Ms(double ms) { return FromMillis(ms); }

sim::Profile Load(const char* name) {
  auto p = sim::LoadProfile(name);
  EXPECT_TRUE(p.ok());
  return *p;
}

WorkloadRequest Request(int prompt_len, int max_tokens, std::uint32_t salt) {
  WorkloadRequest w;
  for (int i = 0; i < prompt_len; ++i) {
    w.prompt_tokens.push_back(salt * 7919u + static_cast<TokenId>(i));
  }
  w.max_tokens = max_tokens;
  w.ignore_eos = true;
  return w;
}

TEST(ScrapedMetrics, WhatAVllmPageSays) {
  sim::EngineStats s;
  s.num_waiting = 3;
  s.num_running = 7;
  s.kv_usage = 0.625;
  s.prefix_cache_queries = 1000;
  s.prefix_cache_hits = 250;
  auto v0 = sim::ResolveEngineConfig(Load("qwq-32b-tp2pp2"));
  ASSERT_TRUE(v0.ok());
  EndpointMetrics m = ScrapedMetrics(s, *v0);
  EXPECT_EQ(m.engine, EngineKind::kVllm);
  EXPECT_FALSE(m.vllm_v1);
  EXPECT_EQ(m.waiting_requests, 3);
  EXPECT_EQ(m.running_requests, 7);
  EXPECT_EQ(m.kv_usage, 0.625);
  EXPECT_EQ(m.kv_capacity_tokens, 3200 * 16);  // cache_config_info
  EXPECT_TRUE(m.Has(kFieldPrefixCachingConfig));
  EXPECT_FALSE(m.prefix_caching_enabled);  // V0 default: off
  EXPECT_EQ(m.prefix_cache_hit_rate, -1);  // vLLM V0 reports -1 when off
  EXPECT_FALSE(m.Has(kFieldLora));

  auto v1 = sim::ResolveEngineConfig(Load("llama-3.1-8b-h100"));
  ASSERT_TRUE(v1.ok());
  m = ScrapedMetrics(s, *v1);
  EXPECT_TRUE(m.vllm_v1);
  EXPECT_TRUE(m.prefix_caching_enabled);
  EXPECT_TRUE(m.Has(kFieldPrefixCacheCounters));
  EXPECT_EQ(m.prefix_cache_hits, 250);
  EXPECT_EQ(m.kv_capacity_tokens, v1->num_gpu_blocks * 16);
}

// One tiny engine cut to 1,280 tokens of KV and prompts of 800 tokens: while one request
// runs no other fits, so the infergate profile holds the rest in the gateway queue.
struct QueueRun {
  ClusterResult result;
  GatewayQueueStats stats;
};

QueueRun RunQueued(std::vector<WorkloadRequest> workload, FlowControlOptions queue) {
  ClusterOptions o;
  o.engines = {Load("tiny")};
  o.engines[0].engine.num_gpu_blocks = 80;
  o.scrape_interval = Ms(10);
  o.scrape_latency = Ms(1);
  SchedulerRouterOptions ro;
  ro.scheduler.profile = "infergate";
  ro.late_binding = true;
  ro.queue = queue;
  auto router = SchedulerRouter::Create(ro, o.engines);
  EXPECT_TRUE(router.ok());
  auto res = RunCluster(o, workload, **router);
  EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
  return {std::move(*res), (*router)->queue_stats()};
}

std::vector<std::size_t> DispatchOrder(const ClusterResult& r) {
  std::vector<std::size_t> order;
  for (const RequestRecord& q : r.requests) {
    if (q.dispatched >= 0) order.push_back(q.index);
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return r.requests[a].dispatched < r.requests[b].dispatched;
  });
  return order;
}

// The seed's groups run vLLM V0 with two pipeline stages: two virtual engines each, which
// the scheduler is told as a pool setting. V1, or a pool of mixed sizes, has none.
TEST(ScrapedMetrics, VirtualEnginesFromTheEngines) {
  const sim::Profile pp2 = Load("qwq-32b-tp2pp2");
  auto config = sim::ResolveEngineConfig(pp2);
  ASSERT_TRUE(config.ok());
  ASSERT_EQ(config->pipeline_parallel, 2);
  std::vector<sim::EngineConfig> configs(3, *config);
  EXPECT_EQ(PoolVirtualEngines(configs), 2);
  configs[1].pipeline_parallel = 1;
  EXPECT_EQ(PoolVirtualEngines(configs), 1);
  configs[1] = *config;
  configs[2].version = sim::EngineVersion::kV1;
  EXPECT_EQ(PoolVirtualEngines(configs), 1);
  EXPECT_EQ(PoolVirtualEngines({}), 1);

  SchedulerRouterOptions o;
  auto router = SchedulerRouter::Create(o, {pp2, pp2});
  ASSERT_TRUE(router.ok());
  EXPECT_EQ((*router)->scheduler().virtual_engines(), 2);
  o.virtual_engines = 1;
  router = SchedulerRouter::Create(o, {pp2, pp2});
  ASSERT_TRUE(router.ok());
  EXPECT_EQ((*router)->scheduler().virtual_engines(), 1);
}

TEST(GatewayQueue, HigherPriorityGoesFirstWhenRoomAppears) {
  std::vector<WorkloadRequest> w;
  for (std::uint32_t i = 0; i < 4; ++i) w.push_back(Request(800, 20, i + 1));
  // Request 0 takes the engine; 1 and 2 are standard, 3 is critical, all queued behind it.
  w[0].arrival = 0;
  for (int i = 1; i < 4; ++i) w[static_cast<std::size_t>(i)].arrival = Ms(20 + i);
  w[3].gateway_priority = 5;
  QueueRun q = RunQueued(w, {});
  for (const RequestRecord& r : q.result.requests) EXPECT_TRUE(r.success) << r.error;
  EXPECT_EQ(DispatchOrder(q.result), (std::vector<std::size_t>{0, 3, 1, 2}));
  EXPECT_TRUE(q.result.requests[3].held);
  // Each queued request left the gateway only once the one before had finished.
  EXPECT_GE(q.result.requests[3].dispatched, q.result.requests[0].completion - Ms(2));
  EXPECT_EQ(q.stats.queued, 4u);
  EXPECT_EQ(q.stats.dispatched, 4u);
  EXPECT_GE(q.stats.max_length, 3u);
}

TEST(GatewayQueue, FlowsTakeTurnsWithinABand) {
  std::vector<WorkloadRequest> w;
  for (std::uint32_t i = 0; i < 5; ++i) w.push_back(Request(800, 10, i + 1));
  w[0].arrival = 0;
  // Tenant "a" queues three requests before tenant "b" queues one: round-robin fairness
  // serves b's second, not fourth.
  const char* flows[] = {"x", "a", "a", "a", "b"};
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i].fairness_id = flows[i];
    if (i > 0) w[i].arrival = Ms(20 + static_cast<double>(i));
  }
  QueueRun q = RunQueued(w, {});
  EXPECT_EQ(DispatchOrder(q.result), (std::vector<std::size_t>{0, 1, 4, 2, 3}));
}

TEST(GatewayQueue, ExpiredRequestsAreAnswered503) {
  std::vector<WorkloadRequest> w;
  for (std::uint32_t i = 0; i < 3; ++i) w.push_back(Request(800, 200, i + 1));
  w[0].arrival = 0;
  w[1].arrival = Ms(10);
  w[2].arrival = Ms(11);
  FlowControlOptions queue;
  queue.default_ttl = Ms(100);  // request 0 runs for far longer
  QueueRun q = RunQueued(w, queue);
  const auto& r = q.result.requests;
  EXPECT_TRUE(r[0].success);
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_FALSE(r[i].success);
    EXPECT_EQ(r[i].error.rfind("503", 0), 0u) << r[i].error;
    EXPECT_EQ(r[i].dispatched, -1);
    // Answered at its deadline (plus the way back to the client).
    EXPECT_EQ(r[i].completion, r[i].routed + Ms(100));
  }
  EXPECT_EQ(q.stats.expired, 2u);
  EXPECT_EQ(q.stats.dispatched, 1u);
}

TEST(GatewayQueue, AFullQueueAnswers429) {
  std::vector<WorkloadRequest> w;
  for (std::uint32_t i = 0; i < 4; ++i) w.push_back(Request(800, 50, i + 1));
  for (std::size_t i = 0; i < w.size(); ++i) w[i].arrival = Ms(static_cast<double>(i));
  FlowControlOptions queue;
  queue.max_queued = 2;
  QueueRun q = RunQueued(w, queue);
  int rejected = 0;
  for (const RequestRecord& r : q.result.requests) {
    if (!r.success) {
      EXPECT_EQ(r.error.rfind("429", 0), 0u) << r.error;
      ++rejected;
    }
  }
  EXPECT_EQ(rejected, 1);
  EXPECT_EQ(q.stats.rejected, 1u);
}

// A bursty open-loop workload on the seed's cluster: the longer gie-default waits between
// scrapes, the more requests it sends on a stale picture of the queues.
double GieDefaultMeanTtft(TimeNs scrape_interval) {
  WorkloadSpec w;
  w.random.num_prompts = 150;
  w.random.input_len = 2000;
  w.random.output_len = 300;
  w.request_rate = 1;
  w.burstiness = 0.1;
  auto workload = SampleWorkload(w);
  EXPECT_TRUE(workload.ok());
  ClusterSetup setup;
  const sim::Profile p = Load("qwq-32b-tp2pp2");
  setup.engines = {p, p, p};
  setup.scrape_interval = scrape_interval;
  setup.model_id = "qwq";
  const std::vector<double> floor(workload->size(), 1.0);
  auto run = RunPolicy(setup, w, *workload, floor, *ParsePolicy("gie-default"), {}, {});
  EXPECT_TRUE(run.ok()) << (run.ok() ? "" : run.error().message);
  EXPECT_EQ(run->result.completed, 150);
  return run->result.ttft_ms.mean;
}

TEST(ScrapeStaleness, SlowerScrapesHurtAMetricsOnlyPolicyOnBurstyTraffic) {
  const double fresh = GieDefaultMeanTtft(Ms(50));
  const double stale = GieDefaultMeanTtft(Ms(1000));
  EXPECT_GT(stale, 1.1 * fresh) << "50 ms: " << fresh << " ms, 1 s: " << stale << " ms";
}

}  // namespace
}  // namespace infergate::cluster

namespace infergate::cluster {
namespace {

// llama.cpp-like stalls in virtual time: pages made between steps, prefills far longer
// than the scrape timeout, a FailClose pool (the default). Late endpoints stay candidates,
// so no request is rejected although every page is late for most of the run.
TEST(StallingMetrics, LatePagesRejectNoRequest) {
  ClusterOptions o;
  o.engines.assign(3, Load("tiny"));
  for (sim::Profile& p : o.engines) {
    p.timing.linear.prefill_per_token_ms = 3;  // a 900-token prompt: one ~2.7 s step
    p.engine.max_num_seqs = 4;
  }
  o.max_concurrency = 6;
  o.scrape_interval = Ms(50);
  o.scrape_latency = Ms(1);
  o.metrics_stall_timeout = Ms(1000);
  int late = 0;
  o.on_scrape = [&](TimeNs, std::span<const EngineScrape> s) {
    for (const EngineScrape& e : s) late += e.late ? 1 : 0;
  };
  std::vector<WorkloadRequest> w;
  for (std::uint32_t i = 0; i < 18; ++i) w.push_back(Request(900, 16, i + 1));
  SchedulerRouterOptions ro;
  ro.scheduler.profile = "infergate";
  ro.late_binding = true;
  ASSERT_EQ(ro.scheduler.failure_mode, FailureMode::kFailClose);
  auto router = SchedulerRouter::Create(ro, o.engines);
  ASSERT_TRUE(router.ok());
  auto res = RunCluster(o, w, **router);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_GT(late, 100);  // the scenario happened: many scrapes were late
  int ok = 0;
  for (const RequestRecord& r : res->requests) ok += r.success ? 1 : 0;
  EXPECT_EQ(ok, 18);
  // All three engines were used.
  std::set<int> used;
  for (const RequestRecord& r : res->requests) used.insert(r.engine);
  EXPECT_EQ(used.size(), 3u);
}

}  // namespace
}  // namespace infergate::cluster
