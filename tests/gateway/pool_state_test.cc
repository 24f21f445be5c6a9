// A pool's scheduling settings as configured, and the scheduler PoolState builds from them.
#include "gateway/pool_state.h"

#include <gtest/gtest.h>

#include "config/loader.h"
#include "core/clock.h"

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

// Late binding with prefill pacing (pipeline size 2: two of ours awaiting per virtual
// engine): a held request goes as soon as a first token is reported through
// UpdateScheduler, under the same lock, without waiting for the next scrape.
TEST(GatewayPoolState, AFirstTokenReleasesARequestHeldForItsPrefillQueue) {
  ManualClock clock;
  clock.Set(kNanosPerSecond);
  auto plain = Load("");
  ASSERT_TRUE(plain);
  auto settings = SettingsForPool(*plain, *plain->pools.at(0), 2);
  ASSERT_TRUE(settings.ok());
  auto created = PoolState::Create("default/p", *settings, &clock);
  ASSERT_TRUE(created.ok());
  PoolState& pool = **created;
  pool.WithScheduler([&](Scheduler& s) {
    EXPECT_TRUE(s.UpsertEndpoint({"a:1", {}, true}).ok());
    EndpointMetrics m;
    m.engine = EngineKind::kVllm;
    m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity;
    m.kv_block_size = 16;
    m.kv_num_blocks = 10'000;
    m.kv_capacity_tokens = 160'000;
    return s.ReportMetrics("a:1", clock.Now(), std::move(m));
  });
  clock.Advance(kNanosPerMilli);

  asio::io_context io;
  const std::string prompt(4'000, 'x');
  RequestInfo info;
  info.target_model = "m";
  info.prompt = prompt;
  info.max_tokens = 100;
  std::vector<std::unique_ptr<QueueWaiter>> waiters;
  auto admit = [&] {
    auto w = std::make_unique<QueueWaiter>();
    w->executor = io.get_executor();
    w->wake = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
    w->info = &info;
    const Admission a = pool.PickOrQueue(*w, 60 * kNanosPerSecond, /*queueing=*/true);
    waiters.push_back(std::move(w));
    return a;
  };
  // Two virtual engines, two awaiting in each: the fifth waits in the gateway.
  for (int i = 0; i < 4; ++i) ASSERT_EQ(admit(), Admission::kPicked) << i;
  ASSERT_EQ(admit(), Admission::kQueued);
  EXPECT_FALSE(pool.Decided(*waiters[4]));
  EXPECT_EQ(pool.queued(), 1u);

  clock.Advance(kNanosPerMilli);
  pool.UpdateScheduler([&](Scheduler& s) { return s.OnFirstToken(waiters[0]->handle); });
  EXPECT_TRUE(pool.Decided(*waiters[4]));
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_TRUE(waiters[4]->pick.picked());
}

// A prompt larger than every endpoint's KV cache is never held: no endpoint will ever have
// room for it, so it would wait for its client or its TTL, and at the head of the queue
// every request behind it would wait too. It is picked at once (its server answers).
TEST(GatewayPoolState, APromptLargerThanEveryKvCacheIsPickedNotHeld) {
  ManualClock clock;
  clock.Set(kNanosPerSecond);
  auto plain = Load("");
  ASSERT_TRUE(plain);
  auto settings = SettingsForPool(*plain, *plain->pools.at(0));
  ASSERT_TRUE(settings.ok());
  ASSERT_TRUE(settings->flow_control);
  auto created = PoolState::Create("default/p", *settings, &clock);
  ASSERT_TRUE(created.ok());
  PoolState& pool = **created;
  config::Backend backend;
  backend.id = "default/p";
  for (const char* ip : {"10.0.0.1", "10.0.0.2"}) {
    config::Endpoint ep;
    ep.id = std::string(ip) + ":8000";
    ep.ip = ip;
    ep.port = 8000;
    ep.ready = true;
    backend.endpoints.push_back(ep);
  }
  pool.SetEndpoints(backend);  // nothing scrapes in this test: metrics are reported below
  auto report = [&](const std::string& id, std::int64_t blocks) {
    EndpointMetrics m;
    m.engine = EngineKind::kVllm;
    m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity;
    m.kv_block_size = 16;
    m.kv_num_blocks = blocks;
    m.kv_capacity_tokens = 16 * blocks;
    return pool.UpdateScheduler(
        [&](Scheduler& s) { return s.ReportMetrics(id, clock.Now(), std::move(m)); });
  };
  ASSERT_TRUE(report("10.0.0.1:8000", 256));  // 4,096 tokens
  clock.Advance(kNanosPerMilli);

  asio::io_context io;
  auto waiter = [&](const RequestInfo& info) {
    auto w = std::make_unique<QueueWaiter>();
    w->executor = io.get_executor();
    w->wake = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
    w->info = &info;
    return w;
  };
  const std::string huge(40'000, 'x');  // ~10,000 tokens: more than either cache
  RequestInfo big;
  big.target_model = "m";
  big.prompt = huge;
  big.max_tokens = 4;

  // One endpoint has not reported its capacity: it may have room, so the rule holds.
  auto held = waiter(big);
  EXPECT_EQ(pool.PickOrQueue(*held, 60 * kNanosPerSecond, true), Admission::kQueued);
  EXPECT_TRUE(pool.CancelQueued(*held));

  // Both have: the request can never fit, and goes at once.
  ASSERT_TRUE(report("10.0.0.2:8000", 512));  // 8,192 tokens
  clock.Advance(kNanosPerMilli);
  auto w = waiter(big);
  EXPECT_EQ(pool.PickOrQueue(*w, 60 * kNanosPerSecond, true), Admission::kPicked);
  EXPECT_TRUE(w->pick.picked());
  EXPECT_EQ(pool.queued(), 0u);
}

}  // namespace
}  // namespace infergate::gateway
