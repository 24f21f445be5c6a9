// GIE v0's published scheduler cases, run through the gie-v0 profile.
#include <gtest/gtest.h>

#include <map>

#include "scheduler_harness.h"

namespace infergate {
namespace {

using testing::Load;
using testing::Request;
using testing::SchedulerHarness;

TEST(GieV0, SheddableRequestIsShedWhenNoEndpointHasCapacity) {
  SchedulerHarness h("gie-v0");
  h.Add("a:1");
  h.Add("b:1");
  h.Add("c:1");
  h.Scrape("a:1", Load{6, 0, 0.2});
  h.Scrape("b:1", Load{0, 0, 0.85});
  h.Scrape("c:1", Load{10, 0, 0.9});
  for (Criticality c : {Criticality::kSheddable, Criticality::kStandard}) {
    PickResult p = h.s().Pick(Request("hello", c));
    EXPECT_EQ(p.status, PickStatus::kShed);
    EXPECT_EQ(p.reason, PickReason::kShedByProfile);
    EXPECT_EQ(p.decided_by, "decision-tree-filter");
    EXPECT_EQ(p.http_status(), 429);
    EXPECT_TRUE(p.endpoints.empty());
  }
}

TEST(GieV0, SheddableRequestGoesToTheEndpointWithCapacity) {
  SchedulerHarness h("gie-v0");
  h.Add("a:1");
  h.Add("b:1");
  h.Add("c:1");
  h.Scrape("a:1", Load{4, 0, 0.2});
  h.Scrape("b:1", Load{0, 0, 0.85});
  h.Scrape("c:1", Load{10, 0, 0.9});
  for (int i = 0; i < 50; ++i) {
    PickResult p = h.s().Pick(Request("hello", Criticality::kSheddable));
    ASSERT_TRUE(p.picked());
    EXPECT_EQ(p.endpoints[0], "a:1");
  }
}

TEST(GieV0, CriticalRequestIsServedEvenWhenEverythingIsLoaded) {
  SchedulerHarness h("gie-v0");
  h.Add("a:1");
  h.Add("b:1");
  h.Add("c:1");
  h.Scrape("a:1", Load{200, 0, 0.95});
  h.Scrape("b:1", Load{150, 0, 0.99});
  h.Scrape("c:1", Load{300, 0, 0.9});
  // Queues all >= 128: least queue keeps q <= 150 + floor(150/3) = {a, b}; least KV keeps
  // kv <= 0.95 + 0.04/2 = {a}.
  for (int i = 0; i < 20; ++i) {
    PickResult p = h.s().Pick(Request("hello", Criticality::kCritical));
    ASSERT_TRUE(p.picked());
    EXPECT_EQ(p.endpoints[0], "a:1");
  }
}

TEST(GieV0, CriticalLeastQueueThenLeastKv) {
  SchedulerHarness h("gie-v0");
  h.Add("a:1");
  h.Add("b:1");
  h.Add("c:1");
  h.Scrape("a:1", Load{0, 0, 0.1});
  h.Scrape("b:1", Load{3, 0, 0.05});
  h.Scrape("c:1", Load{10, 0, 0.01});
  // Least queue keeps q <= 0 + floor(10/3) = {a, b}; least KV keeps kv <= 0.05 + 0.025.
  PickResult p = h.s().Pick(Request("x", Criticality::kCritical));
  ASSERT_TRUE(p.picked());
  EXPECT_EQ(p.endpoints[0], "b:1");
}

TEST(GieV0, LoraAffinityPrefersTheEndpointWithTheAdapter) {
  SchedulerHarness h("gie-v0");
  h.Add("a:1");
  h.Add("b:1");
  h.Add("c:1");
  h.Scrape("a:1", Load{0, 0, 0.1, 0, {"sql-lora"}, {}, 4});
  h.Scrape("b:1", Load{0, 0, 0.1, 0, {}, {}, 4});
  h.Scrape("c:1", Load{0, 0, 0.1, 0, {"x", "y", "z", "w"}, {}, 4});
  RequestInfo r = Request("x", Criticality::kCritical);
  r.target_model = r.lora_adapter = "sql-lora";
  std::map<std::string, int> counts;
  for (int i = 0; i < 2000; ++i) counts[h.s().Pick(r).endpoints.at(0)]++;
  // With probability 0.999 the adapter's endpoint, else one with a free slot; never the
  // endpoint whose slots are all taken.
  EXPECT_GE(counts["a:1"], 1980);
  EXPECT_EQ(counts["c:1"], 0);

  // Without an endpoint holding it, an endpoint with a free slot wins.
  h.Scrape("a:1", Load{0, 0, 0.1, 0, {"p", "q", "r", "s"}, {}, 4});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(h.s().Pick(r).endpoints.at(0), "b:1");
}

TEST(GieV0, RandomChoiceAmongSurvivors) {
  SchedulerHarness h("gie-v0");
  auto ids = h.AddMany(4);
  h.ScrapeAll(ids, Load{0, 0, 0.1});
  std::map<std::string, int> counts;
  for (int i = 0; i < 4000; ++i) counts[h.s().Pick(Request("x")).endpoints.at(0)]++;
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [id, n] : counts) EXPECT_NEAR(n, 1000, 150) << id;
}

TEST(GieV0, UsesScrapedMetricsOnlyAndThereforeHerds) {
  SchedulerHarness h("gie-v0", 7);
  auto ids = h.AddMany(3);
  h.ScrapeAll(ids, Load{0, 0, 0.1});
  h.Scrape(ids[0], Load{0, 0, 0.0});  // marginally emptier at the last scrape
  std::map<std::string, int> counts;
  for (int i = 0; i < 30; ++i) counts[h.PickAndDispatch(Request("x"))]++;
  EXPECT_EQ(counts[ids[0]], 30);
}

}  // namespace
}  // namespace infergate
