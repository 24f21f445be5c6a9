// Replica sync end to end: a real nats-server, two `infergate serve` replicas with
// --replica-sync, and two model-server stand-ins (tests/support/test_upstream.cc). A
// request dispatched by replica A shows in replica B's ledger until it ends; garbage
// published on the pool's subject is dropped and counted; NATS killed and restarted: no
// request fails meanwhile, and the peers' state is rebuilt (its age metric falls back).
// The pool-wide release order: a peer's queue head that comes first holds a replica's
// release until the wait's bound lets it go; a version 1 peer (not yet upgraded) is still
// applied.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include "sync/wire.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Server {
  std::string address;
  int port = 0;
  ChildProcess process;
  void Control(const std::string& query) const {
    ASSERT_EQ(HttpRequest(address, port, "GET", "/control?" + query).status, 200);
  }
};

struct Replica {
  std::string dir, address;
  int port = 0, admin_port = 0;
  ChildProcess process;

  std::string Metrics() const { return HttpRequest(address, admin_port, "GET", "/metrics").body; }
  // The value of the sample whose line starts with `key` ("name{labels}"), or -1000.
  double Value(const std::string& key) const {
    const std::string m = Metrics();
    const auto at = m.find("\n" + key + " ");
    return at == std::string::npos ? -1000 : std::atof(m.c_str() + at + key.size() + 2);
  }
  bool WaitFor(const std::string& key, const std::function<bool(double)>& ok,
               std::chrono::milliseconds timeout = 8s) const {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (ok(Value(key))) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

constexpr const char* kRemote =
    "infergate_replica_sync_remote_inflight_requests{pool=\"default/pool\"}";
constexpr const char* kInvalid =
    "infergate_replica_sync_invalid_messages_total{pool=\"default/pool\"}";
constexpr const char* kPeers = "infergate_replica_sync_peers{pool=\"default/pool\"}";
constexpr const char* kAge = "infergate_replica_sync_peer_state_age_seconds{pool=\"default/pool\"}";
constexpr const char* kConnected = "infergate_replica_sync_connected";
constexpr const char* kWaits =
    "infergate_replica_sync_queue_order_waits_total{pool=\"default/pool\"}";
constexpr const char* kTimeouts =
    "infergate_replica_sync_queue_order_timeouts_total{pool=\"default/pool\"}";
constexpr const char* kOldVersion =
    "infergate_replica_sync_old_version_messages_total{pool=\"default/pool\"}";
constexpr const char* kDelayCount =
    "infergate_replica_sync_dispatch_delay_seconds_count{pool=\"default/pool\"}";
constexpr const char* kDelaySum =
    "infergate_replica_sync_dispatch_delay_seconds_sum{pool=\"default/pool\"}";
constexpr const char* kWakeups = "infergate_replica_sync_publisher_wakeups_total";
constexpr const char* kInflight = "infergate_pool_inflight_requests{name=\"pool\"}";

class ReplicaSyncTest : public ::testing::Test {
 protected:
  void StartNats() {
    ASSERT_TRUE(nats_.Start(
        {NATS_SERVER_BIN, "-a", nats_address_, "-p", std::to_string(nats_port_)}, true));
    ASSERT_TRUE(WaitForPort(nats_address_, nats_port_, 10s)) << "nats-server did not come up";
  }

  void SetUp() override {
    nats_address_ = UniqueLoopbackAddress();
    nats_port_ = FreePort(nats_address_);
    StartNats();
    int port = 0;
    for (int i = 0; i < 2; ++i) {
      auto& s = servers_[i];
      s.address = UniqueLoopbackAddress();
      ASSERT_TRUE(s.process.Start({TEST_UPSTREAM_BIN, "--address", s.address, "--port",
                                   std::to_string(port), "--name", "s" + std::to_string(i),
                                   "--models", "base"}));
      auto line = s.process.WaitForLine("listening", 10s);
      ASSERT_TRUE(line.has_value());
      s.port = std::stoi(line->substr(line->rfind(':') + 1));
      port = s.port;
    }
    for (int r = 0; r < 2; ++r) StartReplica(replicas_[r], r == 0 ? "replica-a" : "replica-b");
  }

  void StartReplica(Replica& g, const std::string& id) {
    g.dir = TempDir();
    g.address = UniqueLoopbackAddress();
    std::string y =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
        "  annotations:\n    infergate.io/bind-address: \"" +
        g.address +
        "\"\nspec:\n  gatewayClassName: x\n  listeners:\n  - name: llm\n    protocol: HTTP\n"
        "    port: 0\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
        "spec:\n  parentRefs:\n  - name: gw\n  rules:\n  - backendRefs:\n"
        "    - group: inference.networking.x-k8s.io\n      kind: InferencePool\n"
        "      name: pool\n---\napiVersion: inference.networking.x-k8s.io/v1alpha2\n"
        "kind: InferencePool\nmetadata:\n  name: pool\nspec:\n  selector:\n    app: llm\n"
        "  targetPortNumber: " +
        std::to_string(servers_[0].port) + "\n  extensionRef:\n    name: epp\n";
    for (int i = 0; i < 2; ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-" + std::to_string(i) +
           "\n  labels:\n    app: llm\nstatus:\n  podIP: " + servers_[i].address + "\n";
    }
    std::ofstream(g.dir + "/config.yaml") << y;
    ASSERT_TRUE(g.process.Start({INFERGATE_BIN, "--log-level", "warn", "serve", "-f", g.dir,
                                 "--workers", "1", "--admin-address", g.address + ":0",
                                 "--scrape-interval", "0.02", "--replica-sync",
                                 "nats://" + nats_address_ + ":" + std::to_string(nats_port_),
                                 "--replica-id", id, "--replica-sync-flush", flush_ms_}));
    auto line = g.process.WaitForLine("listening default/gw/llm", 10s);
    ASSERT_TRUE(line.has_value()) << g.process.output();
    g.port = std::stoi(line->substr(line->rfind(':') + 1));
    auto admin = g.process.WaitForLine("admin ", 10s);
    ASSERT_TRUE(admin.has_value());
    g.admin_port = std::stoi(admin->substr(admin->rfind(':') + 1));
    ASSERT_TRUE(g.WaitFor(kConnected, [](double v) { return v == 1; })) << g.Metrics();
  }

  // A completion through replica `g` (blocking).
  HttpResponse Complete(const Replica& g, int i) {
    const std::string body = R"({"model":"base","prompt":"question number )" + std::to_string(i) +
                             R"( about the weather in a city far away","max_tokens":2})";
    return HttpRequest(g.address, g.port, "POST", "/v1/completions", body, {}, 20s);
  }

  // Publishes `payload` on `subject` with NATS's text protocol.
  void PublishRaw(const std::string& subject, const std::string& payload) {
    const std::string bytes = "CONNECT {\"verbose\":false}\r\nPUB " + subject + " " +
                              std::to_string(payload.size()) + "\r\n" + payload + "\r\nPING\r\n";
    const std::string reply = RawExchange(nats_address_, nats_port_, bytes, 1s);
    ASSERT_NE(reply.find("PONG"), std::string::npos) << reply;
  }

  void TearDown() override {
    for (auto& r : replicas_) r.process.Stop();
    for (auto& s : servers_) s.process.Stop();
    nats_.Stop();
  }

  std::string nats_address_;
  int nats_port_ = 0;
  ChildProcess nats_;
  Server servers_[2];
  Replica replicas_[2];
  std::string flush_ms_ = "2";
};

TEST_F(ReplicaSyncTest, APeersDispatchShowsUpAndGarbageIsCountedAndNatsRestartsAreSurvived) {
  Replica& a = replicas_[0];
  Replica& b = replicas_[1];
  // Each replica hears the other's heartbeats.
  ASSERT_TRUE(b.WaitFor(kPeers, [](double v) { return v == 1; })) << b.Metrics();
  ASSERT_TRUE(a.WaitFor(kPeers, [](double v) { return v == 1; })) << a.Metrics();

  // A slow request through A (its server waits 1.5 s before answering) is in B's ledger
  // while it runs, and leaves it when it ends.
  for (auto& s : servers_) s.Control("first_delay_ms=1500");
  auto slow = std::async(std::launch::async, [&] { return Complete(a, 0); });
  EXPECT_TRUE(b.WaitFor(
      kRemote, [](double v) { return v == 1; }, 1400ms))
      << b.Metrics();
  EXPECT_EQ(b.Value(kInflight), 1) << "B's scheduler counts A's request in its view";
  // B dated A's dispatch (one reading, shorter than B's wait to see it) and A none of B's.
  EXPECT_EQ(b.Value(kDelayCount), 1) << b.Metrics();
  EXPECT_GE(b.Value(kDelaySum), 0) << b.Metrics();
  EXPECT_LT(b.Value(kDelaySum), 1.4) << b.Metrics();
  EXPECT_EQ(a.Value(kDelayCount), 0) << a.Metrics();
  EXPECT_EQ(slow.get().status, 200);
  EXPECT_TRUE(b.WaitFor(
      kRemote, [](double v) { return v == 0; }, 2s))
      << b.Metrics();
  for (auto& s : servers_) s.Control("first_delay_ms=0");

  // Garbage and a foreign version on the pool's subject: dropped and counted by both.
  PublishRaw("infergate.sync.default_pool", "this is not a routing event");
  PublishRaw("infergate.sync.default_pool", std::string("IGR\x09junk", 8));
  EXPECT_TRUE(b.WaitFor(
      kInvalid, [](double v) { return v == 2; }, 3s))
      << b.Metrics();
  EXPECT_TRUE(a.WaitFor(
      kInvalid, [](double v) { return v == 2; }, 3s))
      << a.Metrics();
  EXPECT_EQ(b.Value(kRemote), 0);

  // NATS goes away: requests keep being served on local knowledge.
  nats_.Stop();
  ASSERT_TRUE(a.WaitFor(
      kConnected, [](double v) { return v == 0; }, 5s))
      << a.Metrics();
  for (int i = 0; i < 10; ++i) {
    const HttpResponse r = Complete(i % 2 == 0 ? a : b, 100 + i);
    EXPECT_EQ(r.status, 200) << r.body << r.error;
  }
  EXPECT_GT(a.Value("infergate_replica_sync_dropped_messages_total{reason=\"nats_unavailable\"}"),
            0);
  // NATS returns on the same address: both reconnect and hear each other again.
  StartNats();
  ASSERT_TRUE(a.WaitFor(
      kConnected, [](double v) { return v == 1; }, 10s))
      << a.Metrics();
  ASSERT_TRUE(b.WaitFor(
      kConnected, [](double v) { return v == 1; }, 10s))
      << b.Metrics();
  EXPECT_TRUE(b.WaitFor(
      kAge, [](double v) { return v >= 0 && v < 1.5; }, 5s))
      << b.Metrics();
  EXPECT_TRUE(a.WaitFor(
      kAge, [](double v) { return v >= 0 && v < 1.5; }, 5s))
      << a.Metrics();
  for (auto& s : servers_) s.Control("first_delay_ms=1500");
  auto again = std::async(std::launch::async, [&] { return Complete(b, 1); });
  EXPECT_TRUE(a.WaitFor(
      kRemote, [](double v) { return v == 1; }, 1400ms))
      << a.Metrics();
  EXPECT_EQ(again.get().status, 200);
}

// A peer that says its queue's head arrived before anything of ours (stamp 1 us after the
// epoch) and then never lets it go: a request through A waits on it for the order's bound
// (10 ms) and is then released by the bound (PoolState::WakeIfDue from the publisher's
// timer, or the next scrape's pump, whichever comes first: this test does not time which;
// GatewayReleaseOrder.TheWaitsBoundEndsItWhenTheTimerWakesThePump pins the timer's part);
// B serves too. A version 1 peer's dispatch is applied and counted.
TEST_F(ReplicaSyncTest, APeersEarlierHeadHoldsAReleaseUntilTheBoundEndsTheWait) {
  Replica& a = replicas_[0];
  Replica& b = replicas_[1];
  ASSERT_TRUE(a.WaitFor(kPeers, [](double v) { return v == 1; })) << a.Metrics();
  ASSERT_EQ(a.Value(kWaits), 0) << "nothing queued, nothing waited";
  // A few requests first, so both have scraped their servers and hold by the metrics.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Complete(a, i).status, 200);

  std::vector<sync::Event> events(2);
  events[0].type = sync::EventType::kQueue;
  events[0].held = 1;
  events[0].request = 1;
  events[0].stamp_us = 1;
  events[1].type = sync::EventType::kHeartbeat;
  std::string head;
  sync::EncodeMessage(sync::MessageHeader{"stuck-peer", 5, 1}, events, &head);
  PublishRaw("infergate.sync.default_pool", head);
  ASSERT_TRUE(a.WaitFor(
      kPeers, [](double v) { return v == 2; }, 3s))
      << a.Metrics();
  // Within the peer's freshness (2 s): every request through A waits on it, then goes.
  for (int i = 0; i < 3; ++i) {
    const HttpResponse r = Complete(a, 10 + i);
    EXPECT_EQ(r.status, 200) << r.body << r.error;
  }
  EXPECT_GE(a.Value(kWaits), 1) << a.Metrics();
  EXPECT_GE(a.Value(kTimeouts), 1) << a.Metrics();
  EXPECT_EQ(a.Value(kTimeouts), a.Value(kWaits)) << "the stuck peer never releases: every "
                                                    "wait ends by the bound";
  EXPECT_EQ(Complete(b, 20).status, 200);

  // An older replica (wire version 1) dispatches to server 0: counted in A's ledger.
  sync::Event d;
  d.type = sync::EventType::kDispatch;
  d.request = 3;
  d.endpoint = servers_[0].address + ":" + std::to_string(servers_[0].port);
  d.prompt_tokens = 100;
  d.output_tokens = 10;
  sync::MessageHeader old{"old-replica", 6, 1};
  old.version = 1;
  std::string v1;
  sync::EncodeMessage(old, {d}, &v1);
  ASSERT_EQ(v1[3], 1);
  PublishRaw("infergate.sync.default_pool", v1);
  EXPECT_TRUE(a.WaitFor(
      kOldVersion, [](double v) { return v == 1; }, 3s))
      << a.Metrics();
  EXPECT_EQ(a.Value(kRemote), 1) << a.Metrics();
  EXPECT_EQ(a.Value(kInvalid), 0) << a.Metrics();
}

// An idle replica's publisher sleeps until a heartbeat or the peer expiry is due (about
// once a second each), not once a flush interval (2 ms: 500 wakeups a second).
TEST_F(ReplicaSyncTest, AnIdlePublisherWakesForHeartbeatsOnly) {
  Replica& a = replicas_[0];
  ASSERT_TRUE(a.WaitFor(kPeers, [](double v) { return v == 1; })) << a.Metrics();
  const double before = a.Value(kWakeups);
  ASSERT_GE(before, 1) << a.Metrics();
  std::this_thread::sleep_for(1500ms);
  const double woke = a.Value(kWakeups) - before;
  EXPECT_GE(woke, 1) << "a heartbeat is due every second";
  EXPECT_LE(woke, 10) << a.Metrics();
  // And news still goes out at once: a dispatch through A is in B's ledger.
  for (auto& s : servers_) s.Control("first_delay_ms=1500");
  auto slow = std::async(std::launch::async, [&] { return Complete(a, 0); });
  EXPECT_TRUE(replicas_[1].WaitFor(
      kRemote, [](double v) { return v == 1; }, 1000ms))
      << replicas_[1].Metrics();
  EXPECT_EQ(slow.get().status, 200);
}

// The publisher's flush rule: news after a quiet flush interval goes out at once. With a
// 3 s interval, a dispatch through A is in B's view within a second; at A's next tick it
// could be up to 3 s later. (The batching of news within an interval is pinned in virtual
// time: ReplicaRouterTest.MessagesFlushAtOnceAfterAQuietIntervalElseWhenItHasPassed.)
TEST_F(ReplicaSyncTest, TheFirstNewsAfterAQuietIntervalGoesOutAtOnce) {
  for (auto& r : replicas_) r.process.Stop();
  flush_ms_ = "3000";
  StartReplica(replicas_[0], "replica-a");
  StartReplica(replicas_[1], "replica-b");
  Replica& a = replicas_[0];
  Replica& b = replicas_[1];
  ASSERT_TRUE(b.WaitFor(
      kPeers, [](double v) { return v == 1; }, 10s))
      << b.Metrics();
  for (auto& s : servers_) s.Control("first_delay_ms=1500");
  auto slow = std::async(std::launch::async, [&] { return Complete(a, 0); });
  EXPECT_TRUE(b.WaitFor(
      kRemote, [](double v) { return v == 1; }, 1000ms))
      << b.Metrics();
  EXPECT_EQ(slow.get().status, 200);
  EXPECT_TRUE(b.WaitFor(
      kRemote, [](double v) { return v == 0; }, 5s))
      << b.Metrics();
}

}  // namespace
}  // namespace infergate::testing
