#include "kube/watch_event.h"

#include <fmt/format.h>

namespace infergate::kube {

Status WatchStreamSplitter::Feed(std::string_view bytes, std::vector<std::string>* out) {
  if (failed_) return Error{"the watch stream already failed"};
  for (char c : bytes) {
    if (depth_ == 0) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
      if (c != '{') {
        failed_ = true;
        return Error{fmt::format("watch stream: expected '{{' between events, got byte 0x{:02x}",
                                 static_cast<unsigned char>(c))};
      }
      current_.clear();
    }
    if (current_.size() >= max_event_bytes_) {
      failed_ = true;
      return Error{fmt::format("watch stream: an event is larger than {} bytes", max_event_bytes_)};
    }
    current_.push_back(c);
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      --depth_;
      if (depth_ == 0) {
        out->push_back(std::move(current_));
        current_.clear();
      }
    }
  }
  return Ok();
}

std::string_view ToString(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "?";
}

Result<WatchEvent> ParseWatchEvent(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Error{"watch event: not valid JSON"};
  if (!doc.is_object()) return Error{"watch event: not a JSON object"};
  auto type = doc.find("type");
  if (type == doc.end() || !type->is_string()) return Error{"watch event: no \"type\""};
  WatchEvent ev;
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "ADDED") {
    ev.type = WatchEventType::kAdded;
  } else if (t == "MODIFIED") {
    ev.type = WatchEventType::kModified;
  } else if (t == "DELETED") {
    ev.type = WatchEventType::kDeleted;
  } else if (t == "BOOKMARK") {
    ev.type = WatchEventType::kBookmark;
  } else if (t == "ERROR") {
    ev.type = WatchEventType::kError;
  } else {
    return Error{fmt::format("watch event: unknown type \"{}\"", t.substr(0, 40))};
  }
  auto object = doc.find("object");
  if (object == doc.end() || !object->is_object()) {
    return Error{fmt::format("watch event {}: no \"object\" map", t)};
  }
  ev.object = std::move(*object);
  if (ev.type == WatchEventType::kError) {
    if (auto code = ev.object.find("code"); code != ev.object.end() && code->is_number_integer()) {
      auto v = code->get<std::int64_t>();
      ev.error_code = v >= 0 && v < 1000 ? static_cast<int>(v) : 0;
    }
    if (auto msg = ev.object.find("message"); msg != ev.object.end() && msg->is_string()) {
      ev.error_message = msg->get<std::string>().substr(0, 500);
    }
    return ev;
  }
  auto meta = ev.object.find("metadata");
  if (meta == ev.object.end() || !meta->is_object()) {
    return Error{fmt::format("watch event {}: the object has no metadata", t)};
  }
  if (auto rv = meta->find("resourceVersion"); rv != meta->end() && rv->is_string()) {
    ev.resource_version = rv->get<std::string>();
  }
  if (ev.type != WatchEventType::kBookmark) {
    auto name = meta->find("name");
    if (name == meta->end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      return Error{fmt::format("watch event {}: the object has no metadata.name", t)};
    }
  }
  return ev;
}

}  // namespace infergate::kube
