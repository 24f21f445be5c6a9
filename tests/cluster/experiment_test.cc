// The pieces of `infergate simulate`: workloads drawn as benchmark_serving draws them,
// policy names, the idle-engine floor, results in bench's format, sweeps and capacity.
#include "cluster/experiment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "loadgen/report.h"
#include "sim/engine/output_model.h"

namespace infergate::cluster {
namespace {

WorkloadSpec SeedSpec(std::uint32_t seed, int prompts = 300) {
  WorkloadSpec w;
  w.random.num_prompts = prompts;
  w.random.prefix_len = 1000;
  w.random.input_len = 4000;
  w.random.output_len = 3000;
  w.random.range_ratio = 0.2;
  w.max_concurrency = 30;
  w.seed = seed;
  return w;
}

ClusterSetup SeedCluster() {
  ClusterSetup s;
  auto p = sim::LoadProfile("qwq-32b-tp2pp2");
  EXPECT_TRUE(p.ok());
  s.engines = {*p, *p, *p};
  s.model_id = "qwq";
  return s;
}

// What RunPolicy needs for `spec` on the seed's cluster with the infergate policy: the
// sampled workload, its idle-engine floor and the policy. Tests change `spec` and `setup`
// between runs.
struct PolicyFixture {
  WorkloadSpec spec;
  std::vector<WorkloadRequest> workload;
  ClusterSetup setup = SeedCluster();
  std::vector<double> floor;
  PolicySpec policy;

  Result<PolicyRun> Run() const { return RunPolicy(setup, spec, workload, floor, policy, {}, {}); }
};

void Prepare(PolicyFixture* f, WorkloadSpec spec, bool keep_trace = false) {
  f->spec = std::move(spec);
  f->setup.keep_trace = keep_trace;
  auto w = SampleWorkload(f->spec);
  ASSERT_TRUE(w.ok()) << w.error().message;
  f->workload = std::move(*w);
  auto floor = IdleTtftSeconds(f->setup, f->workload);
  ASSERT_TRUE(floor.ok()) << floor.error().message;
  f->floor = std::move(*floor);
  auto policy = ParsePolicy("infergate");
  ASSERT_TRUE(policy.ok());
  f->policy = std::move(*policy);
}

TEST(SampleWorkload, TheSeedPresetHasTheSeedsInputTokens) {
  auto w = SampleWorkload(SeedSpec(0));
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_EQ(w->size(), 300u);
  std::int64_t input = 0;
  for (const WorkloadRequest& r : *w) {
    input += static_cast<std::int64_t>(r.prompt_tokens.size());
    EXPECT_EQ(r.prompt_tokens.size(), Tokenizer::Count(r.prompt_text));
    ASSERT_TRUE(r.max_tokens.has_value());
    EXPECT_GE(*r.max_tokens, 600);
    EXPECT_LE(*r.max_tokens, 3000);
    EXPECT_EQ(r.arrival, 0);  // rate inf: all ready at once, the semaphore does the rest
  }
  EXPECT_EQ(input, 1014085);  // the seed's "Total input tokens"
}

TEST(SampleWorkload, SharedPrefixCarriesTenantsAndPoissonArrivals) {
  WorkloadSpec w;
  w.dataset = DatasetKind::kSharedPrefix;
  w.shared_prefix.num_prompts = 200;
  w.shared_prefix.tenants = 5;
  w.shared_prefix.prefix_len = 100;
  w.request_rate = 20;
  auto r = SampleWorkload(w);
  ASSERT_TRUE(r.ok());
  TimeNs last = 0;
  for (const WorkloadRequest& q : *r) {
    EXPECT_EQ(q.fairness_id.rfind("tenant-", 0), 0u);
    ASSERT_TRUE(q.arrival.has_value());
    EXPECT_GE(*q.arrival, last);
    last = *q.arrival;
  }
  EXPECT_NEAR(ToSeconds(last), 200 / 20.0, 3.0);
  w.request_rate = 0;
  EXPECT_FALSE(SampleWorkload(w).ok());
  w.request_rate = 1;
  w.shared_prefix.tenants = 0;
  EXPECT_FALSE(SampleWorkload(w).ok());
}

TEST(ParsePolicy, NamesModesAndErrors) {
  auto ig = ParsePolicy("infergate");
  ASSERT_TRUE(ig.ok());
  EXPECT_TRUE(ig->late_binding);
  EXPECT_EQ(ig->profile, "infergate");
  auto direct = ParsePolicy("infergate:direct");
  ASSERT_TRUE(direct.ok());
  EXPECT_FALSE(direct->late_binding);
  EXPECT_EQ(direct->name, "infergate:direct");
  auto gie = ParsePolicy("gie-default");
  ASSERT_TRUE(gie.ok());
  EXPECT_FALSE(gie->late_binding);
  EXPECT_TRUE(ParsePolicy("gie-default:queue")->late_binding);
  auto bad = ParsePolicy("least-loaded");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("known"), std::string::npos);
  EXPECT_FALSE(ParsePolicy("infergate:sometimes").ok());
}

TEST(IdleTtft, APromptAloneOnAnIdleEngine) {
  ClusterSetup s = SeedCluster();
  s.delays = {FromMillis(1), FromMillis(0.5)};
  WorkloadRequest small, large;
  small.prompt_tokens.assign(1000, 7);
  large.prompt_tokens.assign(3400, 7);
  large.prompt_tokens[1] = 8;  // different content, same length as a third one
  WorkloadRequest same = large;
  same.prompt_tokens[1] = 9;
  const std::vector<WorkloadRequest> w = {small, large, same};
  auto t = IdleTtftSeconds(s, w);
  ASSERT_TRUE(t.ok());
  // The calibrated profile prefills ~3,400 tokens in ~1.87 s through both stages
  // (docs/simulator.md), plus 3 ms of network.
  EXPECT_NEAR((*t)[1], 1.87, 0.05);
  EXPECT_LT((*t)[0], (*t)[1]);
  EXPECT_EQ((*t)[1], (*t)[2]);
  ClusterSetup none;
  EXPECT_FALSE(IdleTtftSeconds(none, w).ok());
}

TEST(RunPolicy, ResultsAreBenchResultsAndDeterministic) {
  const WorkloadSpec spec = SeedSpec(3, 40);
  auto w = SampleWorkload(spec);
  ASSERT_TRUE(w.ok());
  const ClusterSetup setup = SeedCluster();
  auto floor = IdleTtftSeconds(setup, *w);
  ASSERT_TRUE(floor.ok());
  loadgen::RunInfo info;
  info.model_id = "qwq";
  auto policy = ParsePolicy("infergate");
  ASSERT_TRUE(policy.ok());
  auto a = RunPolicy(setup, spec, *w, *floor, *policy, info, {});
  auto b = RunPolicy(setup, spec, *w, *floor, *policy, info, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->result.completed, 40);
  EXPECT_EQ(a->result.info.num_prompts, 40);
  EXPECT_EQ(a->result.info.max_concurrency, 30);
  ASSERT_EQ(a->result.requests.size(), 40u);
  for (std::size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(a->result.requests[i].ttft, b->result.requests[i].ttft);
    EXPECT_EQ(a->result.requests[i].itl, b->result.requests[i].itl);
  }
  EXPECT_GT(a->floor_ttft_ms, 1000);
  EXPECT_GE(a->ttft_over_floor, 0.99);
  EXPECT_NEAR(a->ttft_over_floor * a->floor_ttft_ms, a->result.ttft_ms.mean, 1e-6);
  // The TTFT split adds up to the mean TTFT minus the network.
  EXPECT_NEAR(a->ttft_gateway_ms + a->ttft_engine_queue_ms + a->ttft_prefill_ms,
              a->result.ttft_ms.mean - 1.5, 0.01);
  // The JSON round-trips through bench's reader, with the policy in its metadata.
  auto back = loadgen::ResultFromJson(loadgen::ResultToJson(a->result));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->completed, 40);
  EXPECT_NEAR(back->ttft_ms.mean, a->result.ttft_ms.mean, 0.01);
  bool has_policy = false;
  for (const auto& [k, v] : a->result.info.metadata)
    has_policy |= k == "policy" && v == "infergate";
  EXPECT_TRUE(has_policy);
}

// A shared-prefix workload small enough for the tiny engines (questions of 20 tokens).
struct SmallSharedPrefixShape {
  int prompts, tenants, prefix_len, output_len, turns;
  double rate;
  std::uint32_t seed;
};
WorkloadSpec SmallSharedPrefix(const SmallSharedPrefixShape& x) {
  WorkloadSpec spec;
  spec.dataset = DatasetKind::kSharedPrefix;
  spec.shared_prefix.num_prompts = x.prompts;
  spec.shared_prefix.tenants = x.tenants;
  spec.shared_prefix.prefix_len = x.prefix_len;
  spec.shared_prefix.question_len = 20;
  spec.shared_prefix.output_len = x.output_len;
  spec.shared_prefix.turns = x.turns;
  spec.request_rate = x.rate;
  spec.seed = x.seed;
  return spec;
}

TEST(RunPolicy, TraceHasOneLinePerRequestMatchingTheResult) {
  const WorkloadSpec spec = SmallSharedPrefix({.prompts = 24,
                                               .tenants = 3,
                                               .prefix_len = 400,
                                               .output_len = 10,
                                               .turns = 3,
                                               .rate = 20,
                                               .seed = 2});
  PolicyFixture fx;
  ASSERT_NO_FATAL_FAILURE(Prepare(&fx, spec, /*keep_trace=*/true));
  const std::vector<WorkloadRequest>* w = &fx.workload;
  auto run = fx.Run();
  ASSERT_TRUE(run.ok()) << run.error().message;
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < run->trace_csv.size();) {
    const std::size_t nl = run->trace_csv.find('\n', at);
    ASSERT_NE(nl, std::string::npos) << "every line ends with a newline";
    lines.push_back(run->trace_csv.substr(at, nl - at));
    at = nl + 1;
  }
  ASSERT_EQ(lines.size(), 25u);
  EXPECT_EQ(lines[0].rfind("index,fairness_id,session_key,session,turn,engine,success,", 0), 0u);
  auto fields = [](const std::string& line) {
    std::vector<std::string> out(1);
    for (char ch : line) {
      if (ch == ',') {
        out.emplace_back();
      } else {
        out.back() += ch;
      }
    }
    return out;
  };
  const std::vector<std::string> header = fields(lines[0]);
  auto column = [&](std::string_view name) {
    return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  for (std::size_t i = 0; i < 24; ++i) {
    const std::vector<std::string> f = fields(lines[i + 1]);
    ASSERT_EQ(f.size(), header.size());
    EXPECT_EQ(f[column("index")], std::to_string(i));
    EXPECT_EQ(f[column("fairness_id")], (*w)[i].fairness_id);
    EXPECT_EQ(f[column("session")], std::to_string((*w)[i].session));
    EXPECT_EQ(f[column("turn")], std::to_string((*w)[i].turn));
    const int engine = std::stoi(f[column("engine")]);
    EXPECT_GE(engine, 0);
    EXPECT_LT(engine, 3);
    EXPECT_EQ(f[column("success")], "1");
    EXPECT_NEAR(std::stod(f[column("ttft_ms")]), run->result.requests[i].ttft * 1e3, 1e-3);
    EXPECT_LE(std::stod(f[column("cached_prompt_tokens")]), std::stod(f[column("prompt_tokens")]));
    EXPECT_LE(std::stod(f[column("dispatched_ms")]), std::stod(f[column("first_token_ms")]));
  }
  // Without keep_trace there is none.
  fx.setup.keep_trace = false;
  auto quiet = fx.Run();
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->trace_csv.empty());
}

// With answers_from_model, a later turn's history holds the tokens the engines generate for
// the earlier turn, so on the engine that generated them the later turn hits the cache for
// its whole previous prompt and answer (up to the last full block).
TEST(SampleWorkload, ModelAnswersAreWhatTheEnginesGenerateAndCache) {
  // 0.5 req/s: one at a time, so nothing is evicted and nothing overlaps.
  WorkloadSpec spec = SmallSharedPrefix({.prompts = 40,
                                         .tenants = 2,
                                         .prefix_len = 300,
                                         .output_len = 40,
                                         .turns = 4,
                                         .rate = 0.5,
                                         .seed = 6});
  const auto own = SampleWorkload(spec);
  spec.answers_from_model = 17;
  const auto model = SampleWorkload(spec);
  ASSERT_TRUE(own.ok() && model.ok());
  ASSERT_EQ(model->size(), 40u);

  ClusterOptions o;
  auto p = sim::LoadProfile("tiny");
  ASSERT_TRUE(p.ok());
  p->engine.version = sim::EngineVersion::kV1;  // prefix caching on, generated blocks too
  o.engines = {*p};
  o.seed = 17;
  o.arrivals.rate = 0.5;
  auto cached_after_first_turns = [&](const std::vector<WorkloadRequest>& w) {
    RoundRobinRouter rr;
    auto res = RunCluster(o, w, rr);
    EXPECT_TRUE(res.ok());
    std::vector<std::pair<int, int>> out;  // (cached, previous prompt + answer) per later turn
    std::map<int, std::size_t> last;       // session -> its previous request
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (auto it = last.find(w[i].session); it != last.end()) {
        const RequestRecord& prev = res->requests[it->second];
        out.emplace_back(res->requests[i].cached_prompt_tokens,
                         prev.prompt_tokens + prev.output_tokens);
      }
      last[w[i].session] = i;
    }
    return out;
  };
  const int block = 16;
  for (const auto& [cached, previous] : cached_after_first_turns(*model)) {
    // The last generated token has no KV yet (it is the next input), and only full blocks
    // are cached.
    EXPECT_GE(cached, (previous - 1) / block * block);
  }
  // With answers of their own, a later turn hits only its previous prompt.
  for (const auto& [cached, previous] : cached_after_first_turns(*own)) {
    EXPECT_LT(cached, previous - 30);
  }
  // The history's answer tokens are the model's output tokens for the previous request.
  std::map<int, std::size_t> last;
  for (std::size_t i = 0; i < model->size(); ++i) {
    const WorkloadRequest& r = (*model)[i];
    if (auto it = last.find(r.session); it != last.end()) {
      const WorkloadRequest& prev = (*model)[it->second];
      const std::size_t at = prev.prompt_tokens.size();
      ASSERT_GT(r.prompt_tokens.size(), at + 3);
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(r.prompt_tokens[at + static_cast<std::size_t>(k)],
                  sim::OutputTokenId(sim::OutputPieceKey(17, it->second, k), false));
      }
    }
    last[r.session] = i;
  }
}

// A warm-up is served but not measured: the same simulation, with the first requests left
// out of the statistics and of the measured window.
TEST(RunPolicy, WarmupRequestsAreServedButNotMeasured) {
  const WorkloadSpec spec = SmallSharedPrefix({.prompts = 30,
                                               .tenants = 3,
                                               .prefix_len = 400,
                                               .output_len = 10,
                                               .turns = 3,
                                               .rate = 20,
                                               .seed = 4});
  PolicyFixture f;
  ASSERT_NO_FATAL_FAILURE(Prepare(&f, spec, /*keep_trace=*/true));
  auto full = f.Run();
  ASSERT_TRUE(full.ok()) << full.error().message;
  f.spec.warmup_prompts = 10;
  auto warm = f.Run();
  ASSERT_TRUE(warm.ok()) << warm.error().message;

  ASSERT_EQ(full->result.requests.size(), 30u);
  ASSERT_EQ(warm->result.requests.size(), 20u);
  EXPECT_EQ(warm->result.info.num_prompts, 20);
  EXPECT_EQ(warm->result.completed, 20);
  // The routing and timing are the same run's: the measured requests are the full run's last 20.
  double ttft_sum = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_DOUBLE_EQ(warm->result.requests[i].ttft, full->result.requests[i + 10].ttft);
    EXPECT_EQ(warm->result.requests[i].output_tokens, full->result.requests[i + 10].output_tokens);
    ttft_sum += warm->result.requests[i].ttft;
  }
  EXPECT_NEAR(warm->result.ttft_ms.mean, ttft_sum / 20 * 1e3, 1e-6);
  // The window opens at the first measured send: its send time is 0, later ones are offsets.
  EXPECT_DOUBLE_EQ(warm->result.requests[0].send_time, 0.0);
  EXPECT_NEAR(warm->result.requests[5].send_time,
              full->result.requests[15].send_time - full->result.requests[10].send_time, 1e-9);
  EXPECT_LT(warm->result.duration_s, full->result.duration_s);
  EXPECT_GT(warm->result.duration_s, 0.0);
  // The trace still has every request, the warm-up ones marked.
  std::size_t lines = 0, marked = 0;
  for (std::size_t at = 0; at < warm->trace_csv.size();) {
    const std::size_t nl = warm->trace_csv.find('\n', at);
    const std::string line = warm->trace_csv.substr(at, nl - at);
    if (lines > 0 && line.back() == '1') ++marked;
    ++lines;
    at = nl + 1;
  }
  EXPECT_EQ(lines, 31u);
  EXPECT_EQ(marked, 10u);
  // A warm-up must leave something to measure.
  f.spec.warmup_prompts = 30;
  auto all_warm = f.Run();
  ASSERT_FALSE(all_warm.ok());
  EXPECT_NE(all_warm.error().message.find("warm-up of 30 requests"), std::string::npos);
}

// Re-dispatch (on by default, 7 s): a request stuck for KV space is aborted where it waits
// and sent to an endpoint that can take it; nothing is lost and the run stays deterministic.
TEST(RunPolicy, RedirectMovesRequestsStuckForKvSpaceAndLosesNothing) {
  PolicyFixture f;
  ASSERT_NO_FATAL_FAILURE(Prepare(&f, SeedSpec(0, 60)));
  const std::vector<WorkloadRequest>* w = &f.workload;
  EXPECT_EQ(f.setup.redirect_after, 7 * kNanosPerSecond);  // the shipped default
  f.setup.redirect_after = 0;
  auto plain = f.Run();
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->queue.redirected, 0u);

  f.setup.redirect_after = 7 * kNanosPerSecond;
  auto moved = f.Run();
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_GT(moved->queue.redirected, 0u);
  EXPECT_LT(moved->queue.redirected, 30u);  // only the few that are stuck
  EXPECT_EQ(moved->result.completed, 60);
  EXPECT_EQ(moved->result.failed, 0);
  for (std::size_t i = 0; i < w->size(); ++i) {
    // Every answer is whole (outputs run to max_tokens here), aborted or not.
    EXPECT_EQ(moved->result.requests[i].output_tokens, *(*w)[i].max_tokens) << i;
  }
  // (Whether it helps is a statistical question, measured over many seeds in
  // docs/benchmarks.md; on one small run it can go either way.)
  auto again = f.Run();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->queue.redirected, moved->queue.redirected);
  EXPECT_DOUBLE_EQ(again->result.ttft_ms.mean, moved->result.ttft_ms.mean);
  // Policies without the gateway queue never redirect.
  auto gie = ParsePolicy("gie-v0");
  ASSERT_TRUE(gie.ok());
  f.policy = *gie;
  auto gie_run = f.Run();
  ASSERT_TRUE(gie_run.ok());
  EXPECT_EQ(gie_run->queue.redirected, 0u);
}

TEST(RunPolicy, ParameterOverridesReachThePlugin) {
  const WorkloadSpec spec = SeedSpec(1, 20);
  auto w = SampleWorkload(spec);
  ASSERT_TRUE(w.ok());
  const std::vector<double> floor(w->size(), 1.0);
  PolicySpec p = *ParsePolicy("infergate");
  p.params["predicted-ttft-scorer.inflightWeight"] = "0.5";
  EXPECT_TRUE(RunPolicy(SeedCluster(), spec, *w, floor, p, {}, {}).ok());
  p.params["predicted-ttft-scorer.noSuchParameter"] = "1";
  auto bad = RunPolicy(SeedCluster(), spec, *w, floor, p, {}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("noSuchParameter"), std::string::npos);
  p.params.clear();
  p.params["no-such-plugin.x"] = "1";
  EXPECT_FALSE(RunPolicy(SeedCluster(), spec, *w, floor, p, {}, {}).ok());
}

PolicyRun Point(const std::string& policy, double rate, std::vector<double> ttfts_ms,
                int failed = 0) {
  PolicyRun r;
  r.policy.name = policy;
  r.result.info.request_rate = rate;
  for (double t : ttfts_ms) {
    loadgen::RequestOutcome o;
    o.success = true;
    o.ttft = t / 1e3;
    r.result.requests.push_back(o);
  }
  r.result.failed = failed;
  return r;
}

TEST(Sweep, AveragesSeedsAndFindsTheCapacity) {
  std::vector<PolicyRun> runs = {
      Point("a", 1, {100, 100, 200}), Point("a", 1, {300, 300, 300}),  // P50: 100, 300
      Point("a", 2, {250, 250, 250}), Point("a", 3, {400, 400, 400}),
      Point("a", 4, {100, 100, 100}),  // back under: the capacity stops at the first miss
      Point("b", 1, {500}),           Point("b", 2, {100}, 1),
  };
  const auto points = AverageSweep(runs, 50);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0].policy, "a");
  EXPECT_EQ(points[0].rate, 1);
  EXPECT_EQ(points[0].seeds, 2);
  EXPECT_DOUBLE_EQ(points[0].slo_ttft_ms, 200);
  EXPECT_EQ(SloCapacity(points, "a", 300), 2);
  EXPECT_EQ(SloCapacity(points, "a", 500), 4);
  EXPECT_EQ(SloCapacity(points, "b", 1000), 1);  // rate 2 had a failed request
  EXPECT_EQ(SloCapacity(points, "b", 100), 0);
  EXPECT_EQ(SloCapacity(points, "c", 100), 0);
}

TEST(Sweep, TheKneeIsTheFirstRateOverFiveTimesTheLightLoadMedian) {
  auto pt = [](const char* policy, double rate, double p90) {
    SweepPoint p{policy, rate};
    p.slo_ttft_ms = p90;
    p.output_throughput = rate * 100;
    return p;
  };
  // Light load: the median of the five lowest rates (one outlier at rate 1 does not move
  // it): 61 ms, so the knee is the first rate over 305 ms, even though a later one dips back.
  const std::vector<SweepPoint> points = {pt("g", 1, 200),  pt("g", 2, 60),   pt("g", 3, 58),
                                          pt("g", 4, 62),   pt("g", 5, 61),   pt("g", 10, 250),
                                          pt("g", 12, 320), pt("g", 14, 290), pt("g", 16, 900),
                                          pt("i", 1, 50),   pt("i", 12, 100)};
  const Knee k = KneeOf(points, "g");
  EXPECT_DOUBLE_EQ(k.light_ms, 61);  // median of {200, 60, 58, 62, 61}
  EXPECT_DOUBLE_EQ(k.rate, 12);
  EXPECT_DOUBLE_EQ(k.slo_ttft_ms, 320);
  // A bigger factor moves it; one never reached gives no knee.
  EXPECT_DOUBLE_EQ(KneeOf(points, "g", 10).rate, 16);
  EXPECT_DOUBLE_EQ(KneeOf(points, "g", 20).rate, 0);
  // Fewer points than light_rates: the median of what there is (even count: the mean of
  // the middle two).
  const Knee i = KneeOf(points, "i");
  EXPECT_DOUBLE_EQ(i.light_ms, 75);
  EXPECT_DOUBLE_EQ(i.rate, 0);
  EXPECT_DOUBLE_EQ(KneeOf(points, "none").rate, 0);
}

// A run at `offered` req/s that completed `delivered` requests per second of its duration
// and `output` tokens per second.
PolicyRun Delivered(const std::string& policy, double offered, double delivered, double output) {
  PolicyRun r = Point(policy, offered, {100});
  r.result.request_throughput = delivered;
  r.result.output_throughput = output;
  return r;
}

TEST(Sweep, SaturationRateIsTheDeliveredPlateau) {
  // "rr" keeps up to 10 req/s, then plateaus near 12 and sags a little under overload;
  // the plateau is averaged over seeds before the maximum is taken.
  std::vector<PolicyRun> runs = {
      Delivered("rr", 5, 4.9, 980),      Delivered("rr", 10, 9.8, 1960),
      Delivered("rr", 15, 12.0, 2400),   Delivered("rr", 15, 12.4, 2480),  // mean 12.2
      Delivered("rr", 20, 12.3, 2460),   Delivered("rr", 20, 11.9, 2380),  // mean 12.1
      Delivered("rr", 25, 11.5, 2300),   Delivered("fast", 5, 4.95, 990),
      Delivered("fast", 10, 9.9, 1980),  Delivered("fast", 15, 14.7, 2940),
      Delivered("fast", 20, 19.0, 3800), Delivered("fast", 25, 23.0, 4600),
  };
  const auto points = AverageSweep(runs, 90);
  ASSERT_EQ(points.size(), 10u);
  EXPECT_DOUBLE_EQ(points[2].request_throughput, 12.2);

  const Saturation rr = SaturationOf(points, "rr");
  EXPECT_DOUBLE_EQ(rr.rate, 12.2);
  EXPECT_DOUBLE_EQ(rr.output_throughput, 2440);
  EXPECT_EQ(rr.offered, 15);  // 12.1 at 20 is on the plateau too, but 15 is where it starts
  EXPECT_TRUE(rr.reached);    // 12.2 < 0.9 * 15

  // On a flat plateau the maximum may come late; `offered` still names where it starts
  // (12.0 >= 0.99 * 12.1; 11.0 at 12 req/s is not on it).
  const std::vector<PolicyRun> flat_runs = {
      Delivered("flat", 12, 11.0, 2200), Delivered("flat", 15, 12.0, 2400),
      Delivered("flat", 20, 12.05, 2410), Delivered("flat", 25, 12.1, 2420)};
  const Saturation flat = SaturationOf(AverageSweep(flat_runs, 90), "flat");
  EXPECT_DOUBLE_EQ(flat.rate, 12.1);
  EXPECT_DOUBLE_EQ(flat.output_throughput, 2420);
  EXPECT_EQ(flat.offered, 15);

  // Never under 90% of the offered rate: the sweep did not find the plateau, and the
  // highest delivered throughput is only a lower bound.
  const Saturation fast = SaturationOf(points, "fast");
  EXPECT_DOUBLE_EQ(fast.rate, 23.0);
  EXPECT_EQ(fast.offered, 25);
  EXPECT_FALSE(fast.reached);

  const Saturation none = SaturationOf(points, "other");
  EXPECT_EQ(none.rate, 0);
  EXPECT_FALSE(none.reached);
}

}  // namespace
}  // namespace infergate::cluster
