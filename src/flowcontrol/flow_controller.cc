#include "flowcontrol/flow_controller.h"

#include <algorithm>
#include <iterator>

namespace infergate {

FlowController::FlowController(FlowControlOptions options) : options_(options) {}

FlowController::~FlowController() = default;

EnqueueResult FlowController::Enqueue(QueueItemId id, int priority, std::string_view flow_id,
                                      TimeNs now, TimeNs ttl, std::uint64_t cost) {
  if (items_.count(id)) return EnqueueResult::kDuplicateId;
  if (items_.size() >= options_.max_queued) {
    ++stats_.rejected;
    return EnqueueResult::kRejectedCapacity;
  }
  auto band_it = bands_.find(priority);
  if (options_.max_queued_per_band > 0 && band_it != bands_.end() &&
      band_it->second.size >= options_.max_queued_per_band) {
    ++stats_.rejected;
    return EnqueueResult::kRejectedCapacity;
  }
  if (band_it == bands_.end()) {
    band_it = bands_.try_emplace(priority).first;
    band_it->second.priority = priority;
    band_it->second.cursor = band_it->second.ring.end();
  }
  Band& band = band_it->second;

  auto flow_it = band.flows.find(flow_id);
  bool activated = false;
  if (flow_it == band.flows.end()) {
    flow_it = band.flows.try_emplace(std::string(flow_id)).first;
    flow_it->second.id = flow_it->first;
    flow_it->second.band = &band;
    activated = true;
  }
  Flow& flow = flow_it->second;

  if (ttl <= 0) ttl = options_.default_ttl;
  const TimeNs deadline = ttl >= kNever - now ? kNever : now + ttl;
  Item& item = items_[id];
  item.flow = &flow;
  item.request = QueuedRequest{id, priority, flow.id, now, deadline, cost};
  if (activated) ActivateFlow(band, flow);
  flow.fifo.push_back(&item);
  item.in_flow = std::prev(flow.fifo.end());
  ++band.size;
  deadlines_.emplace(deadline, id);
  ++stats_.enqueued;
  return EnqueueResult::kQueued;
}

void FlowController::ActivateFlow(Band& band, Flow& flow) {
  flow.activation = ++activations_;
  if (options_.fairness == FairnessPolicy::kRoundRobin) {
    // A new flow joins at the end of the current rotation: just before whoever is next.
    if (band.ring.empty()) {
      band.ring.push_back(&flow);
      flow.in_ring = band.ring.begin();
      band.cursor = band.ring.begin();
    } else {
      flow.in_ring = band.ring.insert(band.cursor, &flow);
    }
  } else {
    flow.served = std::max(flow.served, band.service_level);
    band.by_service.emplace(flow.served, flow.activation, &flow);
  }
}

FlowController::Flow* FlowController::NextFlow(const Band& band) const {
  if (options_.fairness == FairnessPolicy::kRoundRobin) return *band.cursor;
  return std::get<2>(*band.by_service.begin());
}

const QueuedRequest* FlowController::Peek() const {
  if (bands_.empty()) return nullptr;
  const Flow* flow = NextFlow(bands_.begin()->second);
  return &flow->fifo.front()->request;
}

void FlowController::PopNext(bool served) {
  if (bands_.empty()) return;
  Band& band = bands_.begin()->second;
  Flow* flow = NextFlow(band);
  if (options_.fairness == FairnessPolicy::kRoundRobin) {
    // This flow had its turn.
    if (++band.cursor == band.ring.end()) band.cursor = band.ring.begin();
  }
  if (served) {
    ++stats_.dispatched;
  } else {
    ++stats_.dropped;
  }
  RemoveItem(*flow->fifo.front(), served);
}

void FlowController::RemoveItem(Item& item, bool served) {
  Flow& flow = *item.flow;
  Band& band = *flow.band;
  const QueueItemId id = item.request.id;
  const std::uint64_t cost = item.request.cost;
  deadlines_.erase({item.request.deadline, id});
  flow.fifo.erase(item.in_flow);
  --band.size;
  items_.erase(id);

  if (options_.fairness == FairnessPolicy::kLeastServed) {
    if (served) {
      band.by_service.erase(ServiceKey{flow.served, flow.activation, &flow});
      band.service_level = std::max(band.service_level, flow.served);
      flow.served += cost;
      if (!flow.fifo.empty()) band.by_service.emplace(flow.served, flow.activation, &flow);
    } else if (flow.fifo.empty()) {
      band.by_service.erase(ServiceKey{flow.served, flow.activation, &flow});
    }
  }
  if (flow.fifo.empty()) {
    if (options_.fairness == FairnessPolicy::kRoundRobin) {
      if (band.cursor == flow.in_ring) ++band.cursor;
      band.ring.erase(flow.in_ring);
      if (band.cursor == band.ring.end()) band.cursor = band.ring.begin();
    }
    band.flows.erase(band.flows.find(flow.id));
  }
  if (band.size == 0) bands_.erase(band.priority);
}

bool FlowController::Cancel(QueueItemId id) {
  auto it = items_.find(id);
  if (it == items_.end()) return false;
  RemoveItem(it->second, false);
  ++stats_.cancelled;
  return true;
}

std::size_t FlowController::Expire(TimeNs now, std::vector<QueueItemId>* expired) {
  std::size_t n = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const QueueItemId id = deadlines_.begin()->second;
    RemoveItem(items_.at(id), false);
    if (expired) expired->push_back(id);
    ++stats_.expired;
    ++n;
  }
  return n;
}

TimeNs FlowController::NextDeadline() const {
  return deadlines_.empty() ? kNever : deadlines_.begin()->first;
}

std::size_t FlowController::BandSize(int priority) const {
  auto it = bands_.find(priority);
  return it == bands_.end() ? 0 : it->second.size;
}

std::size_t FlowController::FlowSize(int priority, std::string_view flow) const {
  auto it = bands_.find(priority);
  if (it == bands_.end()) return 0;
  auto f = it->second.flows.find(flow);
  return f == it->second.flows.end() ? 0 : f->second.fifo.size();
}

void FlowController::ForEachFlow(
    const std::function<void(int, std::string_view, std::size_t)>& fn) const {
  for (const auto& [priority, band] : bands_) {
    for (const auto& [id, flow] : band.flows) fn(priority, id, flow.fifo.size());
  }
}

}  // namespace infergate
