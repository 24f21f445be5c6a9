#include "cluster/replica_router.h"

#include <algorithm>
#include <iterator>

namespace infergate::cluster {

ReplicaRouter::ReplicaRouter(std::vector<std::unique_ptr<SchedulerRouter>> replicas,
                             ReplicaSyncOptions sync, std::uint64_t seed)
    : replicas_(std::move(replicas)),
      sync_(sync),
      rng_(seed ^ 0x9e3779b97f4a7c15ULL),
      loss_rng_(seed * 0xbf58476d1ce4e5b9ULL + 1) {
  if (!sync_.enabled || replicas_.size() < 2) return;
  last_flush_.assign(replicas_.size(), kNever);
  for (std::size_t k = 0; k < replicas_.size(); ++k) {
    sync::RecorderOptions ro;
    ro.replica_id = "replica-" + std::to_string(k);
    ro.incarnation = k + 1;
    ro.heartbeat_interval = sync_.heartbeat_interval;
    Scheduler& s = replicas_[k]->scheduler();
    recorders_.push_back(std::make_unique<sync::EventRecorder>(ro, &s.clock()));
    s.SetEventSink(recorders_.back().get());
    sync::ApplierOptions ao;
    ao.self_id = ro.replica_id;
    ao.peer_timeout = sync_.peer_timeout;
    appliers_.push_back(std::make_unique<sync::EventApplier>(ao));
    if (sync_.queue_order) {
      sync::QueueOrderOptions qo;
      qo.max_wait = sync_.queue_order_wait;
      qo.fresh_within = 2 * sync_.heartbeat_interval;
      orders_.push_back(std::make_unique<sync::QueueOrder>(qo, appliers_.back().get()));
      orders_.back()->Gate(replicas_[k]->admission());
    }
  }
}

void ReplicaRouter::Deliver(TimeNs now) {
  now_ = std::max(now_, now);
  for (auto& r : replicas_) r->AdvanceClock(now);
  if (appliers_.empty()) return;
  while (!wire_.empty() && wire_.front().due <= now) {
    const InFlight& m = wire_.front();
    sync::EventApplier& a = *appliers_[m.to];
    if (a.Apply(*m.bytes, m.due, replicas_[m.to]->scheduler()).ok()) {
      ++stats_.applied;
    } else {
      ++stats_.invalid;
    }
    wire_.pop_front();
  }
  if (now >= next_expiry_) {
    next_expiry_ = now + sync_.heartbeat_interval;
    for (std::size_t k = 0; k < appliers_.size(); ++k) {
      appliers_[k]->Expire(now, replicas_[k]->scheduler());
    }
  }
}

void ReplicaRouter::Publish(TimeNs now) {
  if (recorders_.empty()) return;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t k = 0; k < recorders_.size(); ++k) {
    if (!orders_.empty()) {
      recorders_[k]->SetQueueHead(orders_[k]->HeadState(replicas_[k]->admission()));
    }
    out_.clear();
    recorders_[k]->TakeMessages(&out_);
    if (out_.empty()) continue;
    last_flush_[k] = sync::NextFlush(now, last_flush_[k], sync_.flush_interval);
    const TimeNs due = last_flush_[k] + sync_.delay;
    // Flushes of different replicas can fall out of call order: keep the wire sorted by due
    // time (equal times in publish order). Nearly every message goes at the back.
    auto at = wire_.end();
    while (at != wire_.begin() && std::prev(at)->due > due) --at;
    for (std::string& bytes : out_) {
      stats_.max_message_bytes = std::max(stats_.max_message_bytes, bytes.size());
      auto shared = std::make_shared<const std::string>(std::move(bytes));
      for (std::size_t to = 0; to < replicas_.size(); ++to) {
        if (to == k) continue;
        if (sync_.loss > 0 && u(loss_rng_) < sync_.loss) {
          ++stats_.lost;
          continue;
        }
        at = std::next(wire_.insert(at, InFlight{due, to, shared}));
      }
    }
  }
}

RouteDecision ReplicaRouter::Route(const RouteRequest& request,
                                   std::span<const EngineScrape> engines, TimeNs now) {
  Deliver(now);
  if (owner_.size() <= request.index) owner_.resize(request.index + 1, -1);
  int& k = owner_[request.index];
  // A retried request stays with its replica (the same connection).
  if (k < 0) {
    k = static_cast<int>(std::uniform_int_distribution<std::size_t>(0, replicas_.size() - 1)(rng_));
  }
  RouteDecision d = replicas_[static_cast<std::size_t>(k)]->Route(request, engines, now);
  Publish(now);
  return d;
}

void ReplicaRouter::OnFirstToken(std::size_t index, int engine, TimeNs now) {
  Deliver(now);
  const int k = ReplicaOf(index);
  if (k >= 0) replicas_[static_cast<std::size_t>(k)]->OnFirstToken(index, engine, now);
  Publish(now);
}

void ReplicaRouter::OnCompleted(const Completion& completion, TimeNs now) {
  Deliver(now);
  const int k = ReplicaOf(completion.index);
  if (k >= 0) replicas_[static_cast<std::size_t>(k)]->OnCompleted(completion, now);
  Publish(now);
}

void ReplicaRouter::OnScrape(std::span<const EngineScrape> engines, TimeNs now) {
  Deliver(now);
  replicas_[scrapes_++ % replicas_.size()]->OnScrape(engines, now);
  Publish(now);
}

void ReplicaRouter::Release(std::span<const EngineScrape> engines, TimeNs now,
                            std::vector<ReleasedRequest>* out) {
  Deliver(now);
  // Each replica acts on what it knows by itself; none is systematically first to take
  // capacity that has just appeared (in a real deployment none is), so the turn rotates.
  const std::size_t n = replicas_.size();
  for (std::size_t j = 0; j < n; ++j)
    replicas_[(release_turn_ + j) % n]->Release(engines, now, out);
  release_turn_ = (release_turn_ + 1) % n;
  Publish(now);
}

void ReplicaRouter::Redirect(TimeNs now, std::vector<ReleasedRequest>* out) {
  Deliver(now);
  for (auto& r : replicas_) r->Redirect(now, out);
  Publish(now);
}

TimeNs ReplicaRouter::NextWakeup() const {
  TimeNs t = kNever;
  for (const auto& r : replicas_) t = std::min(t, r->NextWakeup());
  // While requests are held, a peer's message may let one through: be called when it is due.
  if (!wire_.empty()) t = std::min(t, wire_.front().due);
  // A head waiting on a peer's goes when its bound runs out.
  for (const auto& o : orders_) t = std::min(t, o->NextDeadline(now_));
  return t;
}

GatewayQueueStats ReplicaRouter::queue_stats() const {
  GatewayQueueStats s;
  for (const auto& r : replicas_) {
    const GatewayQueueStats& q = r->queue_stats();
    s.queued += q.queued;
    s.dispatched += q.dispatched;
    s.expired += q.expired;
    s.rejected += q.rejected;
    s.dropped += q.dropped;
    s.max_length = std::max(s.max_length, q.max_length);
    s.redirected += q.redirected;
  }
  return s;
}

std::vector<std::pair<std::string, std::uint64_t>> ReplicaRouter::refusals() const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& r : replicas_) {
    for (const auto& [name, count] : r->refusals()) {
      auto it =
          std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == name; });
      if (it == out.end()) {
        out.emplace_back(name, count);
      } else {
        it->second += count;
      }
    }
  }
  return out;
}

ReplicaSyncStats ReplicaRouter::sync_stats() const {
  ReplicaSyncStats s = stats_;
  for (const auto& r : recorders_) {
    const sync::RecorderStats rs = r->stats();
    s.dispatches += rs.dispatches;
    s.messages += rs.messages;
    s.bytes += rs.bytes;
  }
  for (const auto& a : appliers_) {
    s.expired_entries += a->stats().expired_entries;
    s.delayed_dispatches += a->stats().dispatch_delay.count;
    s.dispatch_delay_seconds += a->stats().dispatch_delay.sum_seconds;
  }
  for (const auto& o : orders_) {
    s.order_waits += o->stats().waits;
    s.order_timed_out += o->stats().timed_out;
  }
  return s;
}

}  // namespace infergate::cluster
