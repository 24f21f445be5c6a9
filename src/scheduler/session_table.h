// Which endpoint served each session most recently, for session affinity.
//
// A session key (an optional request header) maps to the endpoint id that last served it.
// The table is a bounded LRU with an idle timeout, so memory stays bounded however many
// sessions clients invent; an entry for an endpoint that has since gone away is simply
// not honoured by the affinity plugins.
//
// Thread-safety: not synchronised; owned by the scheduler.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"

namespace infergate {

class SessionTable {
 public:
  explicit SessionTable(std::size_t capacity = 65'536,
                        TimeNs idle_timeout = 30LL * 60 * kNanosPerSecond)
      : capacity_(capacity), idle_timeout_(idle_timeout) {}
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // The endpoint id that served `key` within the idle timeout, or nullptr. Valid until
  // the next Record call.
  const std::string* Lookup(std::string_view key, TimeNs now) const;
  // `key` was just served by `endpoint_id`; evicts the least recently used beyond capacity.
  void Record(std::string_view key, std::string_view endpoint_id, TimeNs now);
  std::size_t size() const { return map_.size(); }

 private:
  struct Entry {
    std::string key;
    std::string endpoint;
    TimeNs last_used;
  };
  std::size_t capacity_;
  TimeNs idle_timeout_;
  std::list<Entry> lru_;  // front: most recent
  // Keys view into the list entries, which never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> map_;
};

}  // namespace infergate
