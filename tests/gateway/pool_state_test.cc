// A pool's scheduling settings as configured, and the scheduler PoolState builds from them.
#include "gateway/pool_state.h"

#include <gtest/gtest.h>

#include "config/loader.h"
#include "core/clock.h"
#include "sync/applier.h"
#include "sync/queue_order.h"
#include "sync/recorder.h"
#include "sync/wire.h"

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

// Several gateway replicas: the live pool gates its queue's head on the pool-wide release
// order (sync::QueueOrder, as the virtual-time cluster does). One idle endpoint with fresh
// metrics (the scheduler would let anything through), a peer replica's messages applied as
// the NATS subscriber applies them (UpdateScheduler), on a manual clock.
class GatewayReleaseOrder : public ::testing::Test {
 protected:
  void SetUp() override {
    clock.Set(100 * kNanosPerSecond);
    auto plain = Load("");
    ASSERT_TRUE(plain);
    auto settings = SettingsForPool(*plain, *plain->pools.at(0));
    ASSERT_TRUE(settings.ok());
    auto created = PoolState::Create("default/p", *settings, &clock);
    ASSERT_TRUE(created.ok());
    pool = *created;
    pool->WithScheduler([&](Scheduler& s) { return s.UpsertEndpoint({"a:1", {}, true}).ok(); });
    Report();
    sync::RecorderOptions ro;
    ro.replica_id = "self";
    recorder = std::make_unique<sync::EventRecorder>(ro, &clock);
    sync::ApplierOptions ao;
    ao.self_id = "self";
    applier = std::make_unique<sync::EventApplier>(ao);
    sync::QueueOrderOptions qo;  // wall offset 0: stamps are the manual clock's
    order = std::make_unique<sync::QueueOrder>(qo, applier.get());
    pool->SetReleaseOrder(order.get(), recorder.get(), &reachable, [this] { ++earlier_deadlines; });
    info.target_model = "m";
    info.prompt = "a short prompt";
    info.max_tokens = 10;
  }
  void TearDown() override {
    if (pool) pool->SetReleaseOrder(nullptr, nullptr, nullptr);
  }
  void Report() {
    EndpointMetrics m;
    m.engine = EngineKind::kVllm;
    m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity;
    m.kv_block_size = 16;
    m.kv_num_blocks = 10'000;
    m.kv_capacity_tokens = 160'000;
    EXPECT_TRUE(pool->UpdateScheduler(
        [&](Scheduler& s) { return s.ReportMetrics("a:1", clock.Now(), std::move(m)); }));
  }
  // The peer's queue head (held 0: its queue emptied), stamped `stamp` on the shared clock.
  void PeerHead(std::size_t held, TimeNs stamp) {
    sync::Event q;
    q.type = sync::EventType::kQueue;
    q.held = held;
    q.request = 7;
    q.stamp_us = static_cast<std::uint64_t>(stamp / kNanosPerMicro);
    std::string bytes;
    sync::EncodeMessage(sync::MessageHeader{"peer", 1, ++peer_sequence}, {q}, &bytes);
    const Status st =
        pool->UpdateScheduler([&](Scheduler& s) { return applier->Apply(bytes, clock.Now(), s); });
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  std::unique_ptr<QueueWaiter> Waiter() {
    auto w = std::make_unique<QueueWaiter>();
    w->executor = io.get_executor();
    w->wake = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
    w->info = &info;
    return w;
  }
  // The request that `w` dispatched ends (so the endpoint's prefill pacing holds nothing).
  void Finish(const QueueWaiter& w) {
    ASSERT_TRUE(w.pick.picked());
    EXPECT_TRUE(pool->UpdateScheduler([&](Scheduler& s) { return s.OnComplete(w.handle); }));
  }
  // The queue events this replica would publish now (held counts, in order).
  std::vector<std::uint64_t> PublishedHeads() {
    std::vector<std::string> out;
    recorder->TakeMessages(&out);
    std::vector<std::uint64_t> held;
    for (const std::string& m : out) {
      const Result<sync::Message> decoded = sync::DecodeMessage(m);
      EXPECT_TRUE(decoded.ok());
      if (!decoded.ok()) continue;
      for (const sync::Event& e : decoded->events) {
        if (e.type == sync::EventType::kQueue) held.push_back(e.held);
      }
    }
    return held;
  }

  ManualClock clock;
  std::shared_ptr<PoolState> pool;
  std::unique_ptr<sync::EventRecorder> recorder;
  std::unique_ptr<sync::EventApplier> applier;
  std::unique_ptr<sync::QueueOrder> order;
  std::atomic<bool> reachable{true};
  int earlier_deadlines = 0;  // calls of the release order's timer hook
  std::uint64_t peer_sequence = 0;
  asio::io_context io;
  RequestInfo info;
};

TEST_F(GatewayReleaseOrder, APeersEarlierHeadHoldsOurReleaseUntilItsOwnGoes) {
  PeerHead(1, clock.Now() - kNanosPerMilli);  // the peer's head arrived 1 ms before ours
  auto w = Waiter();
  ASSERT_EQ(pool->PickOrQueue(*w, 60 * kNanosPerSecond, true), Admission::kQueued);
  EXPECT_FALSE(pool->Decided(*w));
  EXPECT_EQ(order->stats().waits, 1u);
  EXPECT_EQ(pool->release_deadline(), clock.Now() + order->options().max_wait);
  // The timer was told once: the publisher sleeps until the deadline, not polling for it.
  EXPECT_EQ(earlier_deadlines, 1);
  // The held head is published for the peers.
  EXPECT_EQ(PublishedHeads(), std::vector<std::uint64_t>{1});

  // A scrape meanwhile does not let it jump the peer's head.
  clock.Advance(2 * kNanosPerMilli);
  Report();
  EXPECT_FALSE(pool->Decided(*w));
  pool->WakeIfDue(clock.Now());  // not due yet
  EXPECT_FALSE(pool->Decided(*w));
  EXPECT_EQ(earlier_deadlines, 1) << "the deadline did not move: no new wake";

  // The peer's head went (its queue is empty): ours goes at once, and the emptied queue is
  // published.
  clock.Advance(kNanosPerMilli);
  PeerHead(0, 0);
  ASSERT_TRUE(pool->Decided(*w));
  EXPECT_TRUE(w->pick.picked());
  EXPECT_EQ(order->stats().timed_out, 0u);
  EXPECT_EQ(pool->release_deadline(), kNever);
  EXPECT_EQ(PublishedHeads(), std::vector<std::uint64_t>{0});
}

TEST_F(GatewayReleaseOrder, ALaterPeerHeadAStalePeerOrNoNatsIsNotWaitedOn) {
  PeerHead(1, clock.Now() + kNanosPerMilli);  // arrived after ours will
  auto first = Waiter();
  EXPECT_EQ(pool->PickOrQueue(*first, 60 * kNanosPerSecond, true), Admission::kPicked);
  Finish(*first);

  // An earlier head, but the peer has been silent longer than the order trusts it.
  PeerHead(1, clock.Now() - kNanosPerMilli);
  clock.Advance(order->options().fresh_within + kNanosPerMilli);
  Report();
  auto second = Waiter();
  EXPECT_EQ(pool->PickOrQueue(*second, 60 * kNanosPerSecond, true), Admission::kPicked);
  Finish(*second);

  // Fresh again, but NATS is down: its dispatches could not be seen, so local knowledge.
  PeerHead(1, clock.Now() - kNanosPerMilli);
  reachable = false;
  auto third = Waiter();
  EXPECT_EQ(pool->PickOrQueue(*third, 60 * kNanosPerSecond, true), Admission::kPicked);
  Finish(*third);
  EXPECT_EQ(order->stats().waits, 0u);

  // Back: the same head is waited on.
  reachable = true;
  auto fourth = Waiter();
  EXPECT_EQ(pool->PickOrQueue(*fourth, 60 * kNanosPerSecond, true), Admission::kQueued);
  EXPECT_EQ(order->stats().waits, 1u);
  EXPECT_TRUE(pool->CancelQueued(*fourth));
}

// The peer never releases its head (its own scheduler holds it, or its message is lost):
// the wait's bound runs out and the timer (WakeIfDue, called by the replica sync
// publisher) lets ours through, with no other event in the pool.
TEST_F(GatewayReleaseOrder, TheWaitsBoundEndsItWhenTheTimerWakesThePump) {
  PeerHead(1, clock.Now() - kNanosPerMilli);
  auto w = Waiter();
  ASSERT_EQ(pool->PickOrQueue(*w, 60 * kNanosPerSecond, true), Admission::kQueued);
  const TimeNs deadline = pool->release_deadline();
  ASSERT_NE(deadline, kNever);
  clock.Set(deadline - 1);
  pool->WakeIfDue(clock.Now());
  EXPECT_FALSE(pool->Decided(*w));
  clock.Set(deadline);
  pool->WakeIfDue(clock.Now());
  ASSERT_TRUE(pool->Decided(*w));
  EXPECT_TRUE(w->pick.picked());
  EXPECT_EQ(order->stats().timed_out, 1u);
  EXPECT_EQ(pool->release_deadline(), kNever);  // nothing more to wake for
  Finish(*w);

  // The next local head behind the same peer head is a new wait, bounded the same.
  auto next = Waiter();
  EXPECT_EQ(pool->PickOrQueue(*next, 60 * kNanosPerSecond, true), Admission::kQueued);
  EXPECT_EQ(order->stats().waits, 2u);
  EXPECT_EQ(pool->release_deadline(), clock.Now() + order->options().max_wait);
  EXPECT_TRUE(pool->CancelQueued(*next));
  EXPECT_EQ(PublishedHeads().back(), 0u);  // the cancelled head left the published queue
}

}  // namespace
}  // namespace infergate::gateway
