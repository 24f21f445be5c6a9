// Decoding a Kubernetes watch stream: the body of GET ...?watch=1 is a sequence of JSON
// objects {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}, one after
// another (the API server puts a newline after each, but chunk boundaries fall anywhere).
//
// WatchStreamSplitter cuts the byte stream into complete top-level JSON texts without
// parsing them (string- and escape-aware brace matching); ParseWatchEvent decodes one.
// Both take untrusted bytes: they never throw, never read out of bounds, and bound the
// memory one event may take (tests/fuzz/watch_event_fuzz.cc).
//
// Not thread-safe; one splitter per stream.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace infergate::kube {

class WatchStreamSplitter {
 public:
  static constexpr std::size_t kDefaultMaxEventBytes = 64u << 20;
  explicit WatchStreamSplitter(std::size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Appends bytes; moves every JSON text completed by them to out. After an error (bytes
  // between events that are not whitespace, an event larger than the limit) it returns the
  // error and accepts nothing more.
  Status Feed(std::string_view bytes, std::vector<std::string>* out);
  // Whether a partial event is buffered (the stream ended mid-event if it ends now).
  bool partial() const { return depth_ > 0; }

 private:
  std::size_t max_event_bytes_;
  std::string current_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool failed_ = false;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

std::string_view ToString(WatchEventType t);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  nlohmann::json object;         // the object (ADDED/MODIFIED/DELETED/BOOKMARK)
  std::string resource_version;  // object.metadata.resourceVersion ("" when absent)
  // ERROR: the Status object's code (410 = the version is too old) and message.
  int error_code = 0;
  std::string error_message;
};

// Decodes one event. Errors name what is wrong (not JSON, no type, unknown type, object
// not a map).
Result<WatchEvent> ParseWatchEvent(std::string_view text);

}  // namespace infergate::kube
