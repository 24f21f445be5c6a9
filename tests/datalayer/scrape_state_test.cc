#include "datalayer/scrape_state.h"

#include <gtest/gtest.h>

namespace infergate {
namespace {

constexpr TimeNs kMs = kNanosPerMilli;

const char* kPage =
    "vllm:num_requests_waiting{model_name=\"m\"} 4\n"
    "vllm:num_requests_running{model_name=\"m\"} 2\n"
    "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n";

TEST(EndpointScrapeState, FreshUntilTheStalenessBound) {
  EndpointScrapeState s;
  EXPECT_FALSE(s.has_metrics());
  EXPECT_FALSE(s.IsFresh(0));
  EXPECT_EQ(s.Age(0), kNever);
  ASSERT_TRUE(s.RecordBody(100 * kMs, kPage, EngineKind::kAuto).ok());
  EXPECT_TRUE(s.has_metrics());
  EXPECT_EQ(s.metrics().waiting_requests, 4.0);
  EXPECT_EQ(s.Age(150 * kMs), 50 * kMs);
  EXPECT_TRUE(s.IsFresh(100 * kMs + kDefaultMetricsStaleness));
  EXPECT_FALSE(s.IsFresh(100 * kMs + kDefaultMetricsStaleness + 1));
  EXPECT_TRUE(s.IsFresh(300 * kMs, 200 * kMs));
  EXPECT_FALSE(s.IsFresh(301 * kMs, 200 * kMs));
}

TEST(EndpointScrapeState, FailureMakesStaleButKeepsLastValues) {
  EndpointScrapeState s;
  ASSERT_TRUE(s.RecordBody(0, kPage, EngineKind::kAuto).ok());
  s.RecordFailure(50 * kMs, "connection refused");
  EXPECT_FALSE(s.IsFresh(60 * kMs));
  EXPECT_EQ(s.consecutive_failures(), 1);
  EXPECT_EQ(s.last_error(), "connection refused");
  EXPECT_EQ(s.metrics().waiting_requests, 4.0);
  EXPECT_EQ(s.metrics_time(), 0);
  ASSERT_TRUE(s.RecordBody(100 * kMs, kPage, EngineKind::kAuto).ok());
  EXPECT_TRUE(s.IsFresh(110 * kMs));
  EXPECT_EQ(s.consecutive_failures(), 0);
  EXPECT_EQ(s.successes(), 2u);
  EXPECT_EQ(s.failures(), 1u);
}

TEST(EndpointScrapeState, BadBodyIsRecordedAsFailure) {
  EndpointScrapeState s;
  Status st = s.RecordBody(0, "not metrics", EngineKind::kAuto);
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(s.has_metrics());
  EXPECT_EQ(s.consecutive_failures(), 1);
  EXPECT_EQ(s.last_error(), st.error().message);
}

TEST(EndpointScrapeState, OlderReportsAreIgnored) {
  EndpointScrapeState s;
  ASSERT_TRUE(s.RecordBody(100 * kMs, kPage, EngineKind::kAuto).ok());
  EndpointMetrics old;
  old.waiting_requests = 99;
  s.RecordMetrics(50 * kMs, old);
  s.RecordFailure(60 * kMs, "late failure");
  EXPECT_EQ(s.metrics().waiting_requests, 4.0);
  EXPECT_EQ(s.metrics_time(), 100 * kMs);
  EXPECT_TRUE(s.IsFresh(120 * kMs));
}

TEST(PoolScrapeSummary, AveragesOverFreshReadyEndpoints) {
  EndpointScrapeState a, b, stale, not_ready;
  EndpointMetrics m;
  m.waiting_requests = 2;
  m.kv_usage = 0.2;
  a.RecordMetrics(3000 * kMs, m);
  m.waiting_requests = 6;
  m.kv_usage = 0.6;
  b.RecordMetrics(3000 * kMs, m);
  m.waiting_requests = 100;
  m.kv_usage = 1.0;
  stale.RecordMetrics(0, m);
  not_ready.RecordMetrics(3000 * kMs, m);

  PoolScrapeSummary sum(3100 * kMs);
  sum.Add(a, true);
  sum.Add(b, true);
  sum.Add(stale, true);
  sum.Add(not_ready, false);
  EXPECT_EQ(sum.endpoints(), 4);
  EXPECT_EQ(sum.ready(), 3);
  EXPECT_EQ(sum.fresh(), 2);
  EXPECT_DOUBLE_EQ(sum.average_queue(), 4.0);
  EXPECT_DOUBLE_EQ(sum.average_kv_usage(), 0.4);
}

}  // namespace
}  // namespace infergate

namespace infergate {
namespace {

constexpr TimeNs kMsR = kNanosPerMilli;

EndpointMetrics SomeMetrics() {
  EndpointMetrics m;
  m.waiting_requests = 1;
  return m;
}

TEST(EndpointScrapeStateReachability, UnknownUntilContactedThenLateIsStillReachable) {
  EndpointScrapeState s;
  EXPECT_FALSE(s.IsReachable());  // never contacted
  s.RecordMetrics(0, SomeMetrics());
  EXPECT_TRUE(s.IsReachable());
  // A late page (connected, timed out) and a bad page leave it reachable, though stale.
  s.RecordFailure(50 * kMsR, "timed out waiting for the page", ScrapeFailure::kTimeout);
  s.RecordFailure(100 * kMsR, "HTTP 500", ScrapeFailure::kBadResponse);
  EXPECT_TRUE(s.IsReachable());
  EXPECT_FALSE(s.IsFresh(100 * kMsR));
  EXPECT_EQ(s.failures(ScrapeFailure::kTimeout), 1u);
  EXPECT_EQ(s.failures(ScrapeFailure::kBadResponse), 1u);
  EXPECT_EQ(s.failures(ScrapeFailure::kUnreachable), 0u);
}

TEST(EndpointScrapeStateReachability, RefusedIsDownAtOnceUntilANewerContact) {
  EndpointScrapeState s;
  s.RecordMetrics(0, SomeMetrics());
  s.RecordFailure(50 * kMsR, "connect: Connection refused", ScrapeFailure::kUnreachable);
  EXPECT_FALSE(s.IsReachable());
  s.RecordContact(40 * kMsR);  // a response byte from before the refusal proves nothing
  EXPECT_FALSE(s.IsReachable());
  s.RecordContact(60 * kMsR);  // a response after it does
  EXPECT_TRUE(s.IsReachable());
  EXPECT_EQ(s.last_contact(), 60 * kMsR);
}

TEST(EndpointScrapeStateReachability, ConnectTimeoutsCountOnlyWhenRepeated) {
  EndpointScrapeState s;
  s.RecordMetrics(0, SomeMetrics());
  s.RecordFailure(50 * kMsR, "timed out connecting", ScrapeFailure::kConnectTimeout);
  EXPECT_TRUE(s.IsReachable());
  s.RecordFailure(100 * kMsR, "timed out connecting", ScrapeFailure::kConnectTimeout);
  EXPECT_FALSE(s.IsReachable());
  // Contact resets the run: one more unanswered attempt is not enough again.
  s.RecordMetrics(150 * kMsR, SomeMetrics());
  s.RecordFailure(200 * kMsR, "timed out connecting", ScrapeFailure::kConnectTimeout);
  EXPECT_TRUE(s.IsReachable());
}

// A server busy from the start answers its first pages late: it is awaited (requests may
// be held for it) for a grace after its first scrape outcome, not refused at once.
TEST(EndpointScrapeStateReachability, AwaitedForItsFirstMetricsWithinAGrace) {
  const TimeNs grace = 4000 * kMsR;
  EndpointScrapeState s;
  EXPECT_TRUE(s.AwaitingFirstMetrics(0, grace));  // first scrape under way
  s.RecordFailure(100 * kMsR, "timed out waiting for the page", ScrapeFailure::kTimeout);
  EXPECT_TRUE(s.IsReachable());
  EXPECT_TRUE(s.AwaitingFirstMetrics(3000 * kMsR, grace));
  EXPECT_FALSE(s.AwaitingFirstMetrics(4100 * kMsR, grace));  // the grace is over
  s.RecordMetrics(4200 * kMsR, SomeMetrics());
  EXPECT_FALSE(s.AwaitingFirstMetrics(4200 * kMsR, grace));  // it has metrics now

  EndpointScrapeState refused;  // known down: never awaited
  refused.RecordFailure(100 * kMsR, "connect: Connection refused", ScrapeFailure::kUnreachable);
  EXPECT_FALSE(refused.AwaitingFirstMetrics(200 * kMsR, grace));

  EndpointScrapeState silent;  // one unanswered connection attempt is not yet "down"
  silent.RecordFailure(100 * kMsR, "timed out connecting", ScrapeFailure::kConnectTimeout);
  EXPECT_TRUE(silent.AwaitingFirstMetrics(200 * kMsR, grace));
  silent.RecordFailure(300 * kMsR, "timed out connecting", ScrapeFailure::kConnectTimeout);
  EXPECT_FALSE(silent.AwaitingFirstMetrics(400 * kMsR, grace));
}

TEST(PoolScrapeSummaryReachability, LateEndpointsAreReachableButNotFresh) {
  EndpointScrapeState late, down, fresh;
  late.RecordMetrics(0, SomeMetrics());
  late.RecordFailure(10 * kMsR, "timed out", ScrapeFailure::kTimeout);
  down.RecordMetrics(0, SomeMetrics());
  down.RecordFailure(10 * kMsR, "refused", ScrapeFailure::kUnreachable);
  fresh.RecordMetrics(10 * kMsR, SomeMetrics());
  PoolScrapeSummary sum(20 * kMsR);
  sum.Add(late, true);
  sum.Add(down, true);
  sum.Add(fresh, true);
  EXPECT_EQ(sum.fresh(), 1);
  EXPECT_EQ(sum.reachable(), 2);
}

}  // namespace
}  // namespace infergate
