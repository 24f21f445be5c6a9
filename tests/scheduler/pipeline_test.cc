// Building pipelines from named profiles and from EndpointPickerConfig documents.
#include "scheduler/pipeline.h"

#include <gtest/gtest.h>

#include "scheduler/profiles.h"
#include "scheduler_harness.h"

namespace infergate {
namespace {

using testing::Load;
using testing::Request;
using testing::SchedulerHarness;

std::string BuildError(const EndpointPickerConfig& c, std::string_view profile = {}) {
  Result<std::unique_ptr<SchedulingPipeline>> p = SchedulingPipeline::Build(c, profile);
  return p.ok() ? std::string("ok") : p.error().message;
}

EndpointPickerConfig Config(std::vector<PluginSpec> plugins, std::vector<ProfilePluginRef> refs) {
  EndpointPickerConfig c;
  c.plugins = std::move(plugins);
  c.scheduling_profiles.push_back({"default", std::move(refs)});
  return c;
}

TEST(PluginRegistry, BuiltinPluginsByKind) {
  const PluginRegistry& r = PluginRegistry::Builtin();
  struct Expect {
    const char* type;
    PluginKind kind;
  };
  for (Expect e : {Expect{"decision-tree-filter", PluginKind::kFilter},
                   Expect{"least-queue-filter", PluginKind::kFilter},
                   Expect{"least-kv-cache-filter", PluginKind::kFilter},
                   Expect{"lora-affinity-filter", PluginKind::kFilter},
                   Expect{"session-affinity-filter", PluginKind::kFilter},
                   Expect{"kv-headroom-filter", PluginKind::kFilter},
                   Expect{"queue-scorer", PluginKind::kScorer},
                   Expect{"kv-cache-utilization-scorer", PluginKind::kScorer},
                   Expect{"prefix-cache-scorer", PluginKind::kScorer},
                   Expect{"lora-affinity-scorer", PluginKind::kScorer},
                   Expect{"session-affinity-scorer", PluginKind::kScorer},
                   Expect{"predicted-ttft-scorer", PluginKind::kScorer},
                   Expect{"max-score-picker", PluginKind::kPicker},
                   Expect{"random-picker", PluginKind::kPicker},
                   Expect{"weighted-random-picker", PluginKind::kPicker},
                   Expect{"round-robin-picker", PluginKind::kPicker}}) {
    const PluginDescriptor* d = r.Find(e.type);
    ASSERT_NE(d, nullptr) << e.type;
    EXPECT_EQ(d->kind, e.kind) << e.type;
    EXPECT_FALSE(d->summary.empty());
    Result<std::unique_ptr<SchedulingPlugin>> p = r.Create(PluginSpec{e.type, "", {}});
    ASSERT_TRUE(p.ok()) << e.type;
    EXPECT_EQ((*p)->kind(), e.kind);
  }
  EXPECT_EQ(r.List().size(), 16u);
  PluginRegistry copy = r;
  EXPECT_FALSE(copy.Register(*r.Find("queue-scorer")));
}

TEST(SchedulingPipeline, NamedProfilesBuild) {
  for (std::string_view name : NamedProfileNames()) {
    Result<NamedProfile> p = FindNamedProfile(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ(p->name, name);
    EXPECT_EQ(BuildError(p->config), "ok") << name;
  }
  Result<NamedProfile> bad = FindNamedProfile("fastest");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("known: round-robin, gie-v0"), std::string::npos);
}

TEST(SchedulingPipeline, DescribeShowsStagesAndWeights) {
  Result<std::unique_ptr<SchedulingPipeline>> p =
      SchedulingPipeline::Build(FindNamedProfile("gie-default")->config);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Describe(),
            "profile default: queue-scorer x2; kv-cache-utilization-scorer x2; "
            "prefix-cache-scorer x3; max-score-picker");
  EXPECT_EQ((*p)->needs(), kNeedsMetrics | kNeedsPrefixMatch);
  ASSERT_NE((*p)->prefix_options(), nullptr);
  EXPECT_EQ((*p)->prefix_options()->block_chars, 64u);
  EXPECT_EQ((*p)->prefix_options()->max_blocks, 256u);
  EXPECT_EQ((*p)->prefix_options()->lru_capacity_per_endpoint, 31250u);
  Result<std::unique_ptr<SchedulingPipeline>> rr =
      SchedulingPipeline::Build(FindNamedProfile("round-robin")->config);
  EXPECT_EQ((*rr)->needs(), 0u);
}

TEST(SchedulingPipeline, ConfigErrorsNameTheProblem) {
  EXPECT_NE(BuildError(Config({{"fancy-scorer", "", {}}}, {{"fancy-scorer", 1.0}}))
                .find("plugin 'fancy-scorer': unknown type 'fancy-scorer' (known: "),
            std::string::npos);
  EXPECT_EQ(BuildError(Config({{"queue-scorer", "q", {{"useLedgr", "true"}}}}, {{"q", 1.0}})),
            "plugin 'q': unknown parameter 'useLedgr' (known: useLedger)");
  EXPECT_EQ(BuildError(Config({{"random-picker", "", {{"x", "1"}}}}, {})),
            "plugin 'random-picker': unknown parameter 'x' (it takes none)");
  EXPECT_NE(BuildError(Config({{"prefix-cache-scorer", "", {{"hashBlockSize", "sixty"}}}},
                              {{"prefix-cache-scorer", 3.0}}))
                .find("parameter hashBlockSize='sixty': expected an integer in [1, "),
            std::string::npos);
  EXPECT_NE(BuildError(Config({{"decision-tree-filter", "", {{"kvCacheThreshold", "1.5"}}}}, {}))
                .find("expected a number in [0"),
            std::string::npos);
  EXPECT_EQ(BuildError(Config({{"queue-scorer", "", {{"useLedger", "yes"}}}}, {})),
            "plugin 'queue-scorer': parameter useLedger='yes': expected true or false");
  EXPECT_EQ(BuildError(Config({{"queue-scorer", "", {}}}, {{"kv", 1.0}})),
            "profile 'default' refers to undeclared plugin 'kv'");
  EXPECT_EQ(
      BuildError(Config({{"random-picker", "", {}}, {"max-score-picker", "", {}}},
                        {{"random-picker", std::nullopt}, {"max-score-picker", std::nullopt}})),
      "profile 'default' has two pickers ('random-picker', 'max-score-picker')");
  EXPECT_EQ(BuildError(Config({{"least-queue-filter", "", {}}}, {{"least-queue-filter", 2.0}})),
            "profile 'default': weight given for filter 'least-queue-filter' (only scorers "
            "take weights)");
  EXPECT_EQ(BuildError(Config({{"queue-scorer", "", {}}}, {{"queue-scorer", -1.0}})),
            "profile 'default': weight of 'queue-scorer' must be a positive number");
  EXPECT_EQ(BuildError(
                Config({{"queue-scorer", "", {}}}, {{"queue-scorer", 1.0}, {"queue-scorer", 1.0}})),
            "profile 'default' uses plugin 'queue-scorer' twice");
  EXPECT_EQ(
      BuildError(Config({{"queue-scorer", "a", {}}, {"kv-cache-utilization-scorer", "a", {}}}, {})),
      "plugin name 'a' is used twice");
  EXPECT_EQ(BuildError(Config({{"", "a", {}}}, {})), "a plugin without a type");
  EXPECT_EQ(BuildError(EndpointPickerConfig{}), "no schedulingProfiles");
  EndpointPickerConfig two = Config({}, {});
  two.scheduling_profiles.push_back({"other", {}});
  EXPECT_EQ(BuildError(two), "several schedulingProfiles; name the one to use");
  EXPECT_EQ(BuildError(two, "other"), "ok");
  EXPECT_EQ(BuildError(two, "third"), "no scheduling profile named 'third'");
}

TEST(SchedulingPipeline, UnreferencedPluginsAreStillValidated) {
  EXPECT_NE(
      BuildError(Config({{"queue-scorer", "", {}}, {"nope", "", {}}}, {{"queue-scorer", 1.0}})),
      "ok");
}

TEST(SchedulingPipeline, ProfileWithoutPickerGetsMaxScore) {
  Result<std::unique_ptr<SchedulingPipeline>> p =
      SchedulingPipeline::Build(Config({{"queue-scorer", "q", {}}}, {{"q", 1.0}}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Describe(), "profile default: q(queue-scorer) x1; max-score-picker");
}

TEST(SchedulerConfig, YamlStyleConfigDrivesTheScheduler) {
  // What the config loader produces for:
  //   plugins:
  //   - {type: prefix-cache-scorer, parameters: {hashBlockSize: "32", lruCapacityPerServer: "50"}}
  //   - {type: queue-scorer, name: queue, parameters: {useLedger: "true"}}
  //   - {type: weighted-random-picker}
  //   schedulingProfiles:
  //   - {name: default, plugins: [{pluginRef: queue, weight: 1}, {pluginRef: prefix-cache-scorer,
  //   weight: 5},
  //                               {pluginRef: weighted-random-picker}]}
  //   saturationDetector: {queueDepthThreshold: 2}
  SchedulerOptions o;
  o.picker_config = Config(
      {{"prefix-cache-scorer", "", {{"hashBlockSize", "32"}, {"lruCapacityPerServer", "50"}}},
       {"queue-scorer", "queue", {{"useLedger", "true"}}},
       {"weighted-random-picker", "", {}}},
      {{"queue", 1.0}, {"prefix-cache-scorer", 5.0}, {"weighted-random-picker", std::nullopt}});
  o.picker_config->saturation_detector = SaturationDetectorSpec{2.0, std::nullopt, std::nullopt};
  SchedulerHarness h(o);
  EXPECT_EQ(h.s().prefix_options().block_chars, 32u);
  EXPECT_EQ(h.s().prefix_options().lru_capacity_per_endpoint, 50u);
  EXPECT_EQ(h.s().options().saturation.queue_threshold, 2.0);
  auto ids = h.AddMany(2);
  h.ScrapeAll(ids, Load{2, 0, 0.1});
  EXPECT_TRUE(h.s().IsSaturated());
  EXPECT_EQ(h.s().Pick(Request("x", Criticality::kSheddable)).status, PickStatus::kShed);
  EXPECT_TRUE(h.s().Pick(Request("x")).picked());
}

TEST(SchedulerConfig, CreateReportsBadOptions) {
  ManualClock clock;
  SchedulerOptions o;
  o.profile = "nope";
  Result<std::unique_ptr<Scheduler>> s = Scheduler::Create(o, &clock);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unknown scheduling profile 'nope'"), std::string::npos);
  EXPECT_FALSE(Scheduler::Create(SchedulerOptions{}, nullptr).ok());
  SchedulerOptions stale;
  stale.metrics_staleness = 0;
  EXPECT_FALSE(Scheduler::Create(stale, &clock).ok());
  SchedulerOptions sat;
  sat.picker_config = FindNamedProfile("gie-default")->config;
  sat.picker_config->saturation_detector = SaturationDetectorSpec{0.0, std::nullopt, std::nullopt};
  EXPECT_FALSE(Scheduler::Create(sat, &clock).ok());
}

TEST(PluginParams, TypedReadsAndDurations) {
  std::map<std::string, std::string> v{{"d", "0.25"},   {"i", "7"},     {"b", "True"},
                                       {"t1", "250ms"}, {"t2", "2s"},   {"t3", "1.5m"},
                                       {"t4", "3"},     {"t5", "10us"}, {"bad", "soon"}};
  PluginParams p("x", v);
  EXPECT_EQ(p.Double("d", 0, 0, 1), 0.25);
  EXPECT_EQ(p.Int("i", 0, 0, 10), 7);
  EXPECT_TRUE(p.Bool("b", false));
  EXPECT_EQ(p.Duration("t1", 0), 250 * kNanosPerMilli);
  EXPECT_EQ(p.Duration("t2", 0), 2 * kNanosPerSecond);
  EXPECT_EQ(p.Duration("t3", 0), 90 * kNanosPerSecond);
  EXPECT_EQ(p.Duration("t4", 0), 3 * kNanosPerSecond);
  EXPECT_EQ(p.Duration("t5", 0), 10 * kNanosPerMicro);
  EXPECT_EQ(p.Duration("missing", 42), 42);
  ASSERT_FALSE(p.Check().ok());  // "bad" was never read
  EXPECT_NE(p.Check().error().message.find("unknown parameter 'bad'"), std::string::npos);
  EXPECT_EQ(p.Duration("bad", 5), 5);
  ASSERT_FALSE(p.Check().ok());
  EXPECT_EQ(p.Check().error().message,
            "plugin 'x': parameter bad='soon': expected a duration such as 200ms or 2s");
}

}  // namespace
}  // namespace infergate

namespace infergate {
namespace {

// A StageObserver whose clock advances 1 µs per read, recording what it is told.
class RecordingObserver final : public StageObserver {
 public:
  class TickClock final : public Clock {
   public:
    TimeNs Now() const override { return now_ += 1000; }

   private:
    mutable TimeNs now_ = 0;
  };
  const Clock& clock() const override { return clock_; }
  void Describe(std::size_t stage, std::string_view point, std::string_view type,
                std::string_view name) override {
    described.push_back(std::to_string(stage) + ":" + std::string(point) + ":" + std::string(type) +
                        ":" + std::string(name));
  }
  void Observe(std::size_t stage, TimeNs duration) override {
    observed.emplace_back(stage, duration);
  }
  std::vector<std::string> described;
  std::vector<std::pair<std::size_t, TimeNs>> observed;

 private:
  TickClock clock_;
};

TEST(StageObserver, DescribesEveryStageAndTimesOneRunInN) {
  SchedulerHarness h("gie-default");
  auto ids = h.AddMany(3);
  h.ScrapeAll(ids, Load{});
  RecordingObserver obs;
  h.s().set_stage_observer(&obs, 4);
  ASSERT_GE(obs.described.size(), 2u);
  EXPECT_NE(obs.described.back().find(":Picker:"), std::string::npos) << obs.described.back();
  bool has_scorer = false;
  for (const auto& d : obs.described) has_scorer |= d.find(":Scorer:") != std::string::npos;
  EXPECT_TRUE(has_scorer);
  const std::string prompt = testing::Text(200, 1);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(h.s().Pick(Request(prompt)).picked());
  // Runs 0 and 4 are timed: each stage once per timed run, 1 µs apart on this clock.
  ASSERT_EQ(obs.observed.size(), 2 * obs.described.size());
  for (std::size_t i = 0; i < obs.observed.size(); ++i) {
    EXPECT_EQ(obs.observed[i].first, i % obs.described.size());
    EXPECT_EQ(obs.observed[i].second, 1000);
  }
  h.s().set_stage_observer(nullptr);
  ASSERT_TRUE(h.s().Pick(Request(prompt)).picked());
  EXPECT_EQ(obs.observed.size(), 2 * obs.described.size());
}

}  // namespace
}  // namespace infergate
