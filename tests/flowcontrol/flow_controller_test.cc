#include "flowcontrol/flow_controller.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace infergate {
namespace {

constexpr TimeNs kMs = kNanosPerMilli;

// Dispatches everything queued and returns the ids in dispatch order.
std::vector<QueueItemId> Drain(FlowController& q, TimeNs now = 0) {
  std::vector<QueueItemId> order;
  q.Dispatch(
      now,
      [&](const QueuedRequest& r) {
        order.push_back(r.id);
        return DispatchAction::kDispatched;
      },
      nullptr);
  return order;
}

TEST(FlowController, HigherBandsFirst) {
  FlowController q;
  ASSERT_EQ(q.Enqueue(1, -1, "f", 0), EnqueueResult::kQueued);
  ASSERT_EQ(q.Enqueue(2, 0, "f", 1), EnqueueResult::kQueued);
  ASSERT_EQ(q.Enqueue(3, 5, "f", 2), EnqueueResult::kQueued);
  ASSERT_EQ(q.Enqueue(4, 0, "f", 3), EnqueueResult::kQueued);
  ASSERT_EQ(q.Enqueue(5, 1, "f", 4), EnqueueResult::kQueued);
  EXPECT_EQ(q.BandSize(0), 2u);
  EXPECT_EQ(Drain(q), (std::vector<QueueItemId>{3, 5, 2, 4, 1}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.stats().dispatched, 5u);
}

TEST(FlowController, FcfsWithinAFlow) {
  FlowController q;
  for (QueueItemId id = 10; id < 20; ++id) q.Enqueue(id, 0, "only", static_cast<TimeNs>(id));
  std::vector<QueueItemId> expect;
  for (QueueItemId id = 10; id < 20; ++id) expect.push_back(id);
  EXPECT_EQ(Drain(q), expect);
}

TEST(FlowController, RoundRobinBetweenFlows) {
  FlowController q;
  // A heavy flow queues 6 before two light flows arrive.
  for (QueueItemId id = 1; id <= 6; ++id) q.Enqueue(id, 0, "heavy", 0);
  q.Enqueue(101, 0, "light-a", 1);
  q.Enqueue(102, 0, "light-a", 1);
  q.Enqueue(201, 0, "light-b", 2);
  EXPECT_EQ(q.FlowSize(0, "heavy"), 6u);
  EXPECT_EQ(Drain(q), (std::vector<QueueItemId>{1, 101, 201, 2, 102, 3, 4, 5, 6}));
}

TEST(FlowController, LeastServedBetweenFlowsByCost) {
  FlowControlOptions o;
  o.fairness = FairnessPolicy::kLeastServed;
  FlowController q(o);
  // "big" sends 1000-token requests, "small" 100-token ones: small gets ~10 per big one.
  for (QueueItemId id = 1; id <= 3; ++id) q.Enqueue(id, 0, "big", 0, 0, 1000);
  for (QueueItemId id = 100; id < 125; ++id) q.Enqueue(id, 0, "small", 0, 0, 100);
  std::vector<QueueItemId> order = Drain(q);
  ASSERT_EQ(order.size(), 28u);
  // big (activated first) goes first; then small until its service passes 1000, ...
  EXPECT_EQ(order[0], 1u);
  int small_before_second_big = 0;
  for (QueueItemId id : order) {
    if (id == 2) break;
    if (id >= 100) ++small_before_second_big;
  }
  EXPECT_EQ(small_before_second_big, 10);
}

TEST(FlowController, LeastServedNewFlowsDoNotBankCredit) {
  FlowControlOptions o;
  o.fairness = FairnessPolicy::kLeastServed;
  FlowController q(o);
  for (QueueItemId id = 1; id <= 10; ++id) q.Enqueue(id, 0, "a", 0);
  std::vector<QueueItemId> first;
  for (int i = 0; i < 5; ++i) {
    first.push_back(q.Peek()->id);
    q.PopNext();
  }
  EXPECT_EQ(first, (std::vector<QueueItemId>{1, 2, 3, 4, 5}));
  // "b" arrives late: it starts level with "a", so they alternate instead of b taking 5.
  for (QueueItemId id = 21; id <= 25; ++id) q.Enqueue(id, 0, "b", 1);
  std::vector<QueueItemId> rest = Drain(q);
  ASSERT_EQ(rest.size(), 10u);
  int b_in_first_four = 0;
  for (int i = 0; i < 4; ++i) b_in_first_four += rest[i] > 20;
  EXPECT_EQ(b_in_first_four, 2);
}

TEST(FlowController, TtlExpiry) {
  FlowControlOptions o;
  o.default_ttl = 100 * kMs;
  FlowController q(o);
  q.Enqueue(1, 0, "f", 0);                    // deadline 100 ms
  q.Enqueue(2, 0, "f", 10 * kMs, 500 * kMs);  // deadline 510 ms
  q.Enqueue(3, 1, "g", 20 * kMs);             // deadline 120 ms
  EXPECT_EQ(q.NextDeadline(), 100 * kMs);
  std::vector<QueueItemId> expired;
  EXPECT_EQ(q.Expire(99 * kMs, &expired), 0u);
  EXPECT_EQ(q.Expire(120 * kMs, &expired), 2u);
  EXPECT_EQ(expired, (std::vector<QueueItemId>{1, 3}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.NextDeadline(), 510 * kMs);
  // Dispatch expires first: nothing is offered after its deadline.
  std::vector<QueueItemId> late;
  std::size_t n = q.Dispatch(
      600 * kMs, [](const QueuedRequest&) { return DispatchAction::kDispatched; }, &late);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(late, (std::vector<QueueItemId>{2}));
  EXPECT_EQ(q.stats().expired, 3u);
  EXPECT_EQ(q.NextDeadline(), kNever);
}

TEST(FlowController, CapacityRejects) {
  FlowControlOptions o;
  o.max_queued = 3;
  o.max_queued_per_band = 2;
  FlowController q(o);
  EXPECT_EQ(q.Enqueue(1, 0, "f", 0), EnqueueResult::kQueued);
  EXPECT_EQ(q.Enqueue(2, 0, "f", 0), EnqueueResult::kQueued);
  EXPECT_EQ(q.Enqueue(3, 0, "g", 0), EnqueueResult::kRejectedCapacity);  // band full
  EXPECT_EQ(q.Enqueue(4, 1, "f", 0), EnqueueResult::kQueued);
  EXPECT_EQ(q.Enqueue(5, 2, "f", 0), EnqueueResult::kRejectedCapacity);  // total full
  EXPECT_EQ(q.Enqueue(1, 3, "f", 0), EnqueueResult::kDuplicateId);
  EXPECT_EQ(q.stats().rejected, 2u);
  EXPECT_EQ(q.size(), 3u);
  FlowControlOptions none;
  none.max_queued = 0;
  FlowController closed(none);
  EXPECT_EQ(closed.Enqueue(1, 0, "f", 0), EnqueueResult::kRejectedCapacity);
}

TEST(FlowController, Cancellation) {
  FlowController q;
  q.Enqueue(1, 0, "a", 0);
  q.Enqueue(2, 0, "b", 0);
  q.Enqueue(3, 0, "a", 0);
  q.Enqueue(4, 0, "c", 0);
  EXPECT_TRUE(q.Cancel(2));  // the only item of flow b
  EXPECT_TRUE(q.Cancel(3));
  EXPECT_FALSE(q.Cancel(3));  // already gone
  EXPECT_FALSE(q.Cancel(99));
  EXPECT_EQ(q.FlowSize(0, "b"), 0u);
  EXPECT_EQ(Drain(q), (std::vector<QueueItemId>{1, 4}));
  EXPECT_EQ(q.stats().cancelled, 2u);
  // Cancelling the flow whose turn it is passes the turn on.
  q.Enqueue(5, 0, "x", 0);
  q.Enqueue(6, 0, "y", 0);
  q.Enqueue(7, 0, "x", 0);
  ASSERT_EQ(q.Peek()->id, 5u);
  q.Cancel(5);
  EXPECT_EQ(q.Peek()->id, 7u);  // still x's turn, its next item
  q.Cancel(7);
  EXPECT_EQ(q.Peek()->id, 6u);
}

TEST(FlowController, StopKeepsTheHeadAndDroppedDoesNotCountService) {
  FlowController q;
  q.Enqueue(1, 0, "f", 0);
  q.Enqueue(2, 0, "f", 0);
  q.Enqueue(3, 0, "f", 0);
  int budget = 1;
  std::size_t n = q.Dispatch(
      0,
      [&](const QueuedRequest&) {
        return budget-- > 0 ? DispatchAction::kDispatched : DispatchAction::kStop;
      },
      nullptr);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(q.Peek()->id, 2u);
  n = q.Dispatch(
      0, [](const QueuedRequest&) { return DispatchAction::kDropped; }, nullptr);
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.stats().dropped, 2u);
}

TEST(FlowController, QueueLengthsForMetrics) {
  FlowController q;
  q.Enqueue(1, 1, "a", 0);
  q.Enqueue(2, 0, "b", 0);
  q.Enqueue(3, 0, "a", 0);
  q.Enqueue(4, 0, "a", 0);
  q.Enqueue(5, 0, "", 0);  // no fairness id: the anonymous flow
  std::vector<std::string> seen;
  q.ForEachFlow([&](int band, std::string_view flow, std::size_t n) {
    seen.push_back(std::to_string(band) + "/" + std::string(flow) + "=" + std::to_string(n));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"1/a=1", "0/=1", "0/a=2", "0/b=1"}));
  EXPECT_EQ(q.BandSize(0), 4u);
  EXPECT_EQ(q.BandSize(7), 0u);
  EXPECT_EQ(q.FlowSize(0, "a"), 2u);
  const QueuedRequest* head = q.Peek();
  EXPECT_EQ(head->priority, 1);
  EXPECT_EQ(head->flow, "a");
}

}  // namespace
}  // namespace infergate
