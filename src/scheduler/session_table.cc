#include "scheduler/session_table.h"

namespace infergate {

const std::string* SessionTable::Lookup(std::string_view key, TimeNs now) const {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  const Entry& e = *it->second;
  if (now - e.last_used > idle_timeout_) return nullptr;
  return &e.endpoint;
}

void SessionTable::Record(std::string_view key, std::string_view endpoint_id, TimeNs now) {
  if (key.empty() || capacity_ == 0) return;
  auto it = map_.find(key);
  if (it != map_.end()) {
    Entry& e = *it->second;
    e.endpoint.assign(endpoint_id);
    e.last_used = now;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{std::string(key), std::string(endpoint_id), now});
  map_.emplace(lru_.front().key, lru_.begin());
  while (map_.size() > capacity_) {
    map_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

}  // namespace infergate
