#include "gateway/replica_sync.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "sync/applier.h"
#include "sync/queue_order.h"
#include "sync/recorder.h"

namespace infergate::gateway {
namespace {

std::uint64_t RandomU64() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}

// The wall clock's reading less `clock`'s, now: queue heads are stamped on the wall clock
// so that every replica compares the same numbers (sync::QueueOrderOptions::wall_offset).
TimeNs WallOffset(const Clock* clock) {
  const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  return static_cast<TimeNs>(wall) - clock->Now();
}

}  // namespace

Result<std::vector<std::string>> ParseNatsUrls(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view url = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
    while (!url.empty() && url.back() == ' ') url.remove_suffix(1);
    if (url.empty()) continue;
    if (!url.starts_with("nats://") && !url.starts_with("tls://")) {
      return Error{"replica sync: '" + std::string(url) + "' is not a nats:// or tls:// URL"};
    }
    out.emplace_back(url);
  }
  if (out.empty()) return Error{"replica sync: no NATS URL"};
  return out;
}

std::string PoolSubject(std::string_view prefix, std::string_view pool_id) {
  std::string s(prefix);
  s.push_back('.');
  for (char c : pool_id) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
    s.push_back(keep ? c : '_');
  }
  return s;
}

// One pool's share: its subject, its recorder (the scheduler's event sink) and its applier
// (used only under the pool's lock).
struct PoolSync {
  std::string id;
  std::string subject;
  std::weak_ptr<PoolState> pool;
  std::unique_ptr<sync::EventRecorder> recorder;
  std::unique_ptr<sync::EventApplier> applier;
  std::unique_ptr<sync::QueueOrder> order;  // the pool-wide release order (uses *applier)
  std::atomic<std::uint64_t> received{0}, invalid{0};
};

class ReplicaSync::Impl {
 public:
  Impl(ReplicaSyncOptions options, const Clock* clock)
      : options_(std::move(options)), clock_(clock), incarnation_(RandomU64()) {}

  ~Impl() { Stop(); }

  Status Connect() {
    natsOptions* opts = nullptr;
    if (natsOptions_Create(&opts) != NATS_OK) return Error{"replica sync: NATS options"};
    std::vector<const char*> urls;
    for (const std::string& u : options_.urls) urls.push_back(u.c_str());
    natsStatus s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
    if (s == NATS_OK && !options_.creds_file.empty()) {
      s = natsOptions_SetUserCredentialsFromFiles(opts, options_.creds_file.c_str(), nullptr);
    }
    if (s == NATS_OK) s = natsOptions_SetName(opts, ("infergate " + options_.replica_id).c_str());
    if (s == NATS_OK) s = natsOptions_SetNoEcho(opts, true);
    // Each publish goes to the socket at once. The publisher batches by its own flush rule;
    // the client's buffering would add its flusher's wait (a millisecond, measured as
    // infergate_replica_sync_dispatch_delay_seconds) to every message's way to the peers.
    if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);  // forever
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 1000);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, 1000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 2);
    // Nothing is buffered while disconnected: stale routing events are worth less than
    // the memory, and the publisher drops (and counts) them instead.
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, 64 * 1024);
    // The callback reports a first connection made in the background (server not up yet).
    if (s == NATS_OK) {
      s = natsOptions_SetRetryOnFailedConnect(opts, true, &Impl::OnReconnected, this);
    }
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &Impl::OnDisconnected, this);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &Impl::OnReconnected, this);
    if (s != NATS_OK) {
      natsOptions_Destroy(opts);
      return Error{std::string("replica sync: ") + natsStatus_GetText(s)};
    }
    s = natsConnection_Connect(&conn_, opts);
    natsOptions_Destroy(opts);
    // NATS_NOT_YET_CONNECTED: the server is not up yet; the client keeps trying.
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
      return Error{std::string("replica sync: connect: ") + natsStatus_GetText(s)};
    }
    if (s == NATS_OK) connected_ = true;  // else the connected callback says when
    if (s == NATS_NOT_YET_CONNECTED) {
      spdlog::warn("replica sync: NATS not reachable yet; routing on local knowledge until it is");
      down_logged_ = true;
    }
    const std::string wildcard = options_.subject_prefix + ".>";
    s = natsConnection_Subscribe(&sub_, conn_, wildcard.c_str(), &Impl::OnMessage, this);
    if (s != NATS_OK)
      return Error{std::string("replica sync: subscribe: ") + natsStatus_GetText(s)};
    natsSubscription_SetPendingLimits(sub_, 65'536, 64 * 1024 * 1024);
    publisher_ = std::thread([this] { PublishLoop(); });
    spdlog::info("replica sync: replica {} on {} (subjects {}.*)", options_.replica_id,
                 options_.urls.front(), options_.subject_prefix);
    return Ok();
  }

  void Stop() {
    {
      std::lock_guard lock(stop_mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (publisher_.joinable()) publisher_.join();
    // Detach every sink before its recorder goes.
    std::map<std::string, std::shared_ptr<PoolSync>> pools;
    {
      std::lock_guard lock(mu_);
      pools.swap(pools_);
      by_subject_.clear();
    }
    for (auto& [id, p] : pools) Detach(*p);
    if (sub_ != nullptr) {
      natsSubscription_Unsubscribe(sub_);
      natsSubscription_Destroy(sub_);
      sub_ = nullptr;
    }
    if (conn_ != nullptr) {
      natsConnection_Close(conn_);
      natsConnection_Destroy(conn_);
      conn_ = nullptr;
    }
    retired_.clear();
  }

  void SetPools(const std::map<std::string, std::shared_ptr<PoolState>>& pools) {
    std::vector<std::shared_ptr<PoolSync>> detach;
    {
      std::lock_guard lock(mu_);
      std::map<std::string, std::shared_ptr<PoolSync>> next;
      for (const auto& [id, state] : pools) {
        auto it = pools_.find(id);
        if (it != pools_.end() && it->second->pool.lock() == state) {
          next[id] = it->second;
          continue;
        }
        auto p = std::make_shared<PoolSync>();
        p->id = id;
        p->subject = PoolSubject(options_.subject_prefix, id);
        p->pool = state;
        sync::RecorderOptions ro;
        ro.replica_id = options_.replica_id;
        ro.incarnation = incarnation_ + std::hash<std::string>{}(id);
        ro.heartbeat_interval = options_.heartbeat_interval;
        ro.wall_offset = WallOffset(clock_);
        ro.on_news = [this] { RequestFlush(); };
        p->recorder = std::make_unique<sync::EventRecorder>(ro, clock_);
        sync::ApplierOptions ao;
        ao.self_id = options_.replica_id;
        ao.peer_timeout = options_.peer_timeout;
        ao.wall_offset = ro.wall_offset;
        p->applier = std::make_unique<sync::EventApplier>(ao);
        sync::QueueOrderOptions qo;
        qo.wall_offset = WallOffset(clock_);
        qo.max_wait = options_.queue_order_wait;
        qo.fresh_within = 2 * options_.heartbeat_interval;
        p->order = std::make_unique<sync::QueueOrder>(qo, p->applier.get());
        state->WithScheduler([&](Scheduler& s) {
          s.SetEventSink(p->recorder.get());
          return 0;
        });
        if (options_.queue_order) {
          state->SetReleaseOrder(p->order.get(), p->recorder.get(), &connected_,
                                 [this] { RequestWake(); });
        }
        next[id] = std::move(p);
      }
      for (auto& [id, p] : pools_) {
        auto it = next.find(id);
        if (it == next.end() || it->second != p) detach.push_back(p);
      }
      pools_ = std::move(next);
      by_subject_.clear();
      for (auto& [id, p] : pools_) by_subject_[p->subject] = p;
    }
    for (auto& p : detach) Detach(*p);
    {
      std::lock_guard lock(mu_);
      for (auto& p : detach) retired_.push_back(std::move(p));
      if (retired_.size() > 64) retired_.erase(retired_.begin(), retired_.begin() + 32);
    }
    RequestWake();  // a new pool's first heartbeat is due now
  }

  void Collect(telemetry::MetricWriter& w) {
    struct Row {
      std::string pool;
      std::uint64_t received, invalid, lost, expired;
      std::size_t peers, remote;
      double age_s;
      std::uint64_t old_version = 0, waits = 0, timed_out = 0;
      sync::DelayHistogram delay;
    };
    std::vector<Row> rows;
    std::uint64_t dispatches = 0, messages = 0, bytes = 0, overflow = 0;
    std::vector<std::shared_ptr<PoolSync>> pools;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, p] : pools_) pools.push_back(p);
    }
    for (auto& p : pools) {
      const sync::RecorderStats rs = p->recorder->stats();
      dispatches += rs.dispatches;
      messages += rs.messages;
      bytes += rs.bytes;
      overflow += rs.dropped_events;
      auto state = p->pool.lock();
      if (!state) continue;
      Row row{p->id, p->received.load(), p->invalid.load(), 0, 0, 0, 0, -1, 0, 0, 0, {}};
      state->WithScheduler([&](Scheduler&) {
        const sync::ApplierStats& as = p->applier->stats();
        row.lost = as.lost_messages;
        row.expired = as.expired_entries;
        row.old_version = as.old_version_messages;
        row.delay = as.dispatch_delay;
        row.waits = p->order->stats().waits;
        row.timed_out = p->order->stats().timed_out;
        row.peers = p->applier->peer_count();
        row.remote = p->applier->remote_entries();
        const TimeNs age = p->applier->MaxPeerAge(clock_->Now());
        row.age_s = age < 0 ? -1 : ToSeconds(age);
        return 0;
      });
      rows.push_back(std::move(row));
    }
    const bool connected =
        conn_ != nullptr && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
    w.Header("infergate_replica_sync_connected", "1 while connected to NATS.", "gauge");
    w.Sample("infergate_replica_sync_connected", {}, connected ? 1 : 0);
    w.Header("infergate_replica_sync_published_messages_total",
             "Routing-event messages produced for peers.", "counter");
    w.Sample("infergate_replica_sync_published_messages_total", {},
             static_cast<double>(published_messages_.load()));
    w.Header("infergate_replica_sync_published_bytes_total", "Bytes of those messages.", "counter");
    w.Sample("infergate_replica_sync_published_bytes_total", {},
             static_cast<double>(published_bytes_.load()));
    w.Header("infergate_replica_sync_publisher_wakeups_total",
             "Times the publisher thread woke (news, a heartbeat, a release deadline).", "counter");
    w.Sample("infergate_replica_sync_publisher_wakeups_total", {},
             static_cast<double>(publisher_wakeups_.load()));
    w.Header("infergate_replica_sync_local_dispatches_total",
             "Requests this replica dispatched (the denominator of the per-request ratios).",
             "counter");
    w.Sample("infergate_replica_sync_local_dispatches_total", {}, static_cast<double>(dispatches));
    const double per = dispatches > 0 ? static_cast<double>(dispatches) : 1.0;
    w.Header("infergate_replica_sync_bytes_per_request",
             "Routing-event bytes produced per dispatched request.", "gauge");
    w.Sample("infergate_replica_sync_bytes_per_request", {}, static_cast<double>(bytes) / per);
    w.Header("infergate_replica_sync_messages_per_request",
             "Routing-event messages produced per dispatched request.", "gauge");
    w.Sample("infergate_replica_sync_messages_per_request", {},
             static_cast<double>(messages) / per);
    w.Header("infergate_replica_sync_dropped_messages_total",
             "Routing events not sent: NATS unreachable or publish failed (messages), or the "
             "recorder's queue full (events).",
             "counter");
    w.Sample("infergate_replica_sync_dropped_messages_total", {{"reason", "nats_unavailable"}},
             static_cast<double>(dropped_unavailable_.load()));
    w.Sample("infergate_replica_sync_dropped_messages_total", {{"reason", "publish_failed"}},
             static_cast<double>(dropped_failed_.load()));
    w.Sample("infergate_replica_sync_dropped_messages_total", {{"reason", "queue_full"}},
             static_cast<double>(overflow));
    // One family per pool-labelled field of Row.
    auto per_pool = [&](const char* name, const char* help, const char* type, auto field) {
      w.Header(name, help, type);
      for (const Row& r : rows) w.Sample(name, {{"pool", r.pool}}, static_cast<double>(field(r)));
    };
    per_pool("infergate_replica_sync_received_messages_total", "Peers' messages applied.",
             "counter", [](const Row& r) { return r.received; });
    per_pool("infergate_replica_sync_invalid_messages_total",
             "Messages on the pool's subject dropped as invalid (garbage, another version, too "
             "large, absurd counts).",
             "counter", [](const Row& r) { return r.invalid; });
    per_pool("infergate_replica_sync_lost_messages_total",
             "Gaps in peers' message sequence numbers.", "counter",
             [](const Row& r) { return r.lost; });
    per_pool("infergate_replica_sync_expired_entries_total",
             "Remote requests closed by peer expiry, restart, TTL or heartbeat repair.", "counter",
             [](const Row& r) { return r.expired; });
    per_pool("infergate_replica_sync_old_version_messages_total",
             "Peers' messages applied that came in an older wire version (a replica not yet "
             "upgraded).",
             "counter", [](const Row& r) { return r.old_version; });
    per_pool("infergate_replica_sync_queue_order_waits_total",
             "Queue heads that waited for a peer's head that comes first pool-wide.", "counter",
             [](const Row& r) { return r.waits; });
    per_pool("infergate_replica_sync_queue_order_timeouts_total",
             "Of those waits, the ones that ended by their bound.", "counter",
             [](const Row& r) { return r.timed_out; });
    per_pool("infergate_replica_sync_peers", "Peer replicas heard from.", "gauge",
             [](const Row& r) { return r.peers; });
    per_pool("infergate_replica_sync_remote_inflight_requests",
             "Peers' requests in flight, counted in this replica's ledger.", "gauge",
             [](const Row& r) { return r.remote; });
    w.Header("infergate_replica_sync_dispatch_delay_seconds",
             "From a peer's dispatch to its application to this replica's ledger (the peer's "
             "batching, NATS, the wait for the scheduler; across machines it includes their "
             "wall clocks' difference).",
             "histogram");
    static const std::array<double, sync::DelayHistogram::kBounds> kDelayBounds = [] {
      std::array<double, sync::DelayHistogram::kBounds> b{};
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = sync::DelayHistogram::Bound(i);
      return b;
    }();
    for (const Row& r : rows) {
      w.HistogramSamples("infergate_replica_sync_dispatch_delay_seconds", {{"pool", r.pool}},
                         kDelayBounds, r.delay.buckets, r.delay.sum_seconds);
    }
    per_pool("infergate_replica_sync_peer_state_age_seconds",
             "Time since the stalest peer's last message (-1: no peer).", "gauge",
             [](const Row& r) { return r.age_s; });
  }

  const std::string& replica_id() const { return options_.replica_id; }

 private:
  static void OnDisconnected(natsConnection*, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    self->connected_ = false;
    if (!self->down_logged_.exchange(true)) {
      spdlog::warn(
          "replica sync: NATS connection lost; routing on local knowledge until it "
          "returns");
    }
  }
  static void OnReconnected(natsConnection*, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    self->connected_ = true;
    if (self->down_logged_.exchange(false)) spdlog::info("replica sync: NATS connection back");
    self->force_heartbeat_ = true;
    self->RequestWake();
  }
  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    self->Receive(natsMsg_GetSubject(msg),
                  std::string_view(natsMsg_GetData(msg),
                                   static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
  }

  void Receive(std::string_view subject, std::string_view bytes) {
    std::shared_ptr<PoolSync> p;
    {
      std::lock_guard lock(mu_);
      auto it = by_subject_.find(std::string(subject));
      if (it != by_subject_.end()) p = it->second;
    }
    if (!p) return;  // a pool this replica does not serve
    auto state = p->pool.lock();
    if (!state) return;
    const Status st = state->UpdateScheduler(
        [&](Scheduler& s) { return p->applier->Apply(bytes, clock_->Now(), s); });
    if (st.ok()) {
      ++p->received;
    } else if (st.error().message != "own message") {
      if (p->invalid++ == 0) {
        spdlog::warn(
            "replica sync: dropped an invalid message on {} ({}); further ones are "
            "counted in infergate_replica_sync_invalid_messages_total",
            subject, st.error().message);
      }
    }
  }

  void Detach(PoolSync& p) {
    if (auto state = p.pool.lock()) {
      state->SetReleaseOrder(nullptr, nullptr, nullptr);
      state->WithScheduler([](Scheduler& s) {
        s.SetEventSink(nullptr);
        return 0;
      });
    }
  }

  // A recorder has news after having had nothing to send: wake the publisher.
  void RequestFlush() {
    std::lock_guard lock(stop_mu_);
    if (news_) return;
    news_ = true;
    stop_cv_.notify_one();
  }

  // A pool's release deadline moved earlier, or NATS came back (a heartbeat is due): wake
  // the publisher to take a new look at when it must next wake.
  void RequestWake() {
    std::lock_guard lock(stop_mu_);
    if (rewake_) return;
    rewake_ = true;
    stop_cv_.notify_one();
  }

  // The publisher sleeps until the earliest of: news to flush, a pool's release deadline
  // (the timer of WakeDuePools), a heartbeat and the peer expiry; a deadline that moves
  // earlier, news and a reconnection wake it. So an idle replica wakes about once a
  // heartbeat, not once a flush interval.
  // News goes out by one rule (sync::NextFlush, which the virtual-time cluster runs too):
  // at once when the last flush of news is a flush interval or more ago, else when the
  // interval has passed. So peers route on a dispatch the moment it lands rather than up
  // to a tick later, and a busy replica still sends at most one batch of news per
  // interval. A due heartbeat goes with whatever is pending.
  void PublishLoop() {
    std::vector<std::string> out;
    const TimeNs interval = options_.flush_interval;
    TimeNs next_expiry = clock_->Now() + options_.heartbeat_interval;
    TimeNs wake_at = clock_->Now();
    TimeNs last_news_flush = kNever;
    std::vector<std::shared_ptr<PoolSync>> pools;
    while (true) {
      bool news = false;
      {
        std::unique_lock lock(stop_mu_);
        while (!stopping_ && !rewake_) {
          const TimeNs now = clock_->Now();
          TimeNs due = wake_at;
          if (news_) due = std::min(due, sync::NextFlush(now, last_news_flush, interval));
          if (now >= due) break;
          stop_cv_.wait_for(lock, std::chrono::nanoseconds(due - now));
        }
        if (stopping_) return;
        rewake_ = false;
        news = news_;
      }
      ++publisher_wakeups_;
      pools.clear();
      {
        std::lock_guard lock(mu_);
        for (auto& [id, p] : pools_) pools.push_back(p);
      }
      // The release order's timer: a queue head held for a peer's head goes when the wait's
      // bound runs out, whatever else happens (the peer may never release its own).
      wake_at = WakeDuePools(pools);
      const TimeNs now = clock_->Now();
      const bool news_due = news && sync::NextFlush(now, last_news_flush, interval) <= now;
      bool heartbeat_due = force_heartbeat_.load();
      for (const auto& p : pools)
        heartbeat_due = heartbeat_due || p->recorder->NextHeartbeat() <= now;
      if (news_due || heartbeat_due) {
        {
          // Cleared before the take: news made from here on is taken now or wakes us again.
          std::lock_guard lock(stop_mu_);
          news_ = false;
        }
        Flush(pools, force_heartbeat_.exchange(false), &out);
        if (news) last_news_flush = now;
      }
      if (now >= next_expiry) {
        next_expiry = now + options_.heartbeat_interval;
        for (auto& p : pools) {
          if (auto state = p->pool.lock()) {
            state->UpdateScheduler([&](Scheduler& s) {
              p->applier->Expire(clock_->Now(), s);
              return 0;
            });
          }
        }
      }
      wake_at = std::min(wake_at, next_expiry);
      for (const auto& p : pools) wake_at = std::min(wake_at, p->recorder->NextHeartbeat());
    }
  }

  // Takes every pool's messages and publishes them.
  void Flush(const std::vector<std::shared_ptr<PoolSync>>& pools, bool heartbeat,
             std::vector<std::string>* out) {
    const bool connected = natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
    for (const auto& p : pools) {
      out->clear();
      p->recorder->TakeMessages(out, heartbeat);
      for (const std::string& m : *out) {
        published_messages_ += 1;
        published_bytes_ += m.size();
        if (!connected) {
          ++dropped_unavailable_;
          continue;
        }
        const natsStatus s =
            natsConnection_Publish(conn_, p->subject.c_str(), m.data(), static_cast<int>(m.size()));
        if (s != NATS_OK) ++dropped_failed_;
      }
    }
  }

  // Re-runs the pump of every pool whose release order's wait is due; returns the earliest
  // release deadline left (kNever: none; a wait that starts later wakes the publisher).
  TimeNs WakeDuePools(const std::vector<std::shared_ptr<PoolSync>>& pools) {
    const TimeNs now = clock_->Now();
    TimeNs next = kNever;
    for (const auto& p : pools) {
      auto state = p->pool.lock();
      if (!state) continue;
      state->WakeIfDue(now);
      next = std::min(next, state->release_deadline());
    }
    return next;
  }

  ReplicaSyncOptions options_;
  const Clock* clock_;
  std::uint64_t incarnation_;
  natsConnection* conn_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::thread publisher_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool news_ = false;    // a recorder has news since the last flush (under stop_mu_)
  bool rewake_ = false;  // the publisher must recompute when it wakes (under stop_mu_)
  std::atomic<std::uint64_t> publisher_wakeups_{0};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<PoolSync>> pools_;
  std::map<std::string, std::shared_ptr<PoolSync>> by_subject_;
  std::vector<std::shared_ptr<PoolSync>> retired_;  // detached; kept while peers' calls end
  std::atomic<bool> down_logged_{false};
  std::atomic<bool> connected_{false};  // asked by the release order (no NATS: no waits)
  std::atomic<bool> force_heartbeat_{false};
  std::atomic<std::uint64_t> published_messages_{0}, published_bytes_{0};
  std::atomic<std::uint64_t> dropped_unavailable_{0}, dropped_failed_{0};
};

Result<std::unique_ptr<ReplicaSync>> ReplicaSync::Start(ReplicaSyncOptions options,
                                                        const Clock* clock) {
  if (options.urls.empty()) return Error{"replica sync: no NATS URL"};
  if (!options.creds_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(options.creds_file, ec)) {
      return Error{"replica sync: credentials file " + options.creds_file + " is not readable"};
    }
  }
  if (options.replica_id.empty()) {
    const char* host = std::getenv("HOSTNAME");
    options.replica_id = host != nullptr && *host != '\0'
                             ? std::string(host)
                             : "infergate-" + std::to_string(RandomU64() % 1'000'000'000);
  }
  if (options.replica_id.size() > sync::kMaxIdBytes) options.replica_id.resize(sync::kMaxIdBytes);
  auto impl = std::make_unique<Impl>(std::move(options), clock);
  if (Status s = impl->Connect(); !s.ok()) return s.error();
  return std::unique_ptr<ReplicaSync>(new ReplicaSync(std::move(impl)));
}

ReplicaSync::ReplicaSync(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReplicaSync::~ReplicaSync() = default;

void ReplicaSync::SetPools(const std::map<std::string, std::shared_ptr<PoolState>>& pools) {
  impl_->SetPools(pools);
}
void ReplicaSync::Collect(telemetry::MetricWriter& w) { impl_->Collect(w); }
const std::string& ReplicaSync::replica_id() const { return impl_->replica_id(); }

}  // namespace infergate::gateway
