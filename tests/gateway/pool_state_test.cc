// A pool's scheduling settings as configured, and the scheduler PoolState builds from them.
#include "gateway/pool_state.h"

#include <gtest/gtest.h>

#include "config/loader.h"

namespace infergate::gateway {
namespace {

std::shared_ptr<const config::ConfigSnapshot> Load(const std::string& annotations) {
  const std::string text =
      "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
      "metadata:\n  name: p\n" +
      (annotations.empty() ? "" : "  annotations:\n" + annotations) +
      "spec:\n  selector: {app: llm}\n  targetPortNumber: 8000\n";
  auto snap = config::LoadConfigFromString(text, "pool.yaml", {});
  EXPECT_TRUE(snap.ok()) << (snap.ok() ? "" : snap.error().message);
  return snap.ok() ? *snap : nullptr;
}

TEST(GatewayPoolSettings, ThePipelineSizeComesFromTheAnnotationElseTheGatewayDefault) {
  SteadyClock clock;
  auto plain = Load("");
  ASSERT_TRUE(plain);
  auto s = SettingsForPool(*plain, *plain->pools.at(0), 2);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->pipeline_parallel_size, 2);
  EXPECT_TRUE(s->flow_control);  // the infergate profile queues by default
  auto state = PoolState::Create("default/p", *s, &clock);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ((*state)->WithScheduler([](Scheduler& x) { return x.virtual_engines(); }), 2);

  auto annotated = Load(
      "    infergate.io/pipeline-parallel-size: \"4\"\n"
      "    infergate.io/flow-control: \"false\"\n");
  ASSERT_TRUE(annotated);
  s = SettingsForPool(*annotated, *annotated->pools.at(0), 2);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->pipeline_parallel_size, 4);
  EXPECT_FALSE(s->flow_control);
  state = PoolState::Create("default/p", *s, &clock);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ((*state)->WithScheduler([](Scheduler& x) { return x.virtual_engines(); }), 4);

  // A change of pipeline size is a change of settings: the pool gets a new scheduler.
  auto one = SettingsForPool(*annotated, *annotated->pools.at(0), 2);
  one->pipeline_parallel_size = 1;
  EXPECT_FALSE(*one == *s);
}

TEST(GatewayPoolSettings, GieProfilesDoNotQueueUnlessAnnotated) {
  auto gie = Load("    infergate.io/scheduling-profile: gie-default\n");
  ASSERT_TRUE(gie);
  auto s = SettingsForPool(*gie, *gie->pools.at(0));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->flow_control);
  EXPECT_EQ(s->pipeline_parallel_size, 1);
}

}  // namespace
}  // namespace infergate::gateway
