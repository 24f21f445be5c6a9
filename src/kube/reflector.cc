#include "kube/reflector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "kube/watch_event.h"

namespace infergate::kube {
namespace {

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

std::string ResourceType::CollectionPath(const std::string& ns) const {
  std::string base = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) base += "/namespaces/" + ns;
  return base + "/" + plural;
}

std::string ResourceType::ObjectPath(const std::string& ns, const std::string& name) const {
  return CollectionPath(namespaced ? ns : "") + "/" + name;
}

std::string RbacRule(const ResourceType& type, std::string_view verbs) {
  return fmt::format("{{apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [{}]}}", type.group,
                     type.plural, verbs);
}

std::string StatusMessage(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_object()) {
    if (auto m = doc.find("message"); m != doc.end() && m->is_string())
      return m->get<std::string>();
  }
  return body.substr(0, 200);
}

Reflector::Reflector(ApiClient* client, ResourceType type, std::string namespace_name,
                     ReflectorSink* sink, ReflectorOptions options)
    : client_(client),
      type_(std::move(type)),
      namespace_(std::move(namespace_name)),
      sink_(sink),
      options_(options) {}

std::string Reflector::Describe() const {
  if (!type_.namespaced) return type_.Id();
  return namespace_.empty() ? type_.Id() + " in all namespaces"
                            : fmt::format("{} in namespace {}", type_.Id(), namespace_);
}

void Reflector::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  if (active_) active_->Cancel();
  cv_.notify_all();
}

bool Reflector::Sleep(TimeNs d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::nanoseconds(d), [this] { return stopped_; });
  return !stopped_;
}

void Reflector::ReportDenied(std::string_view verb, const ApiResponse& r) {
  counters_.forbidden.fetch_add(1);
  if (r.status == 401) {
    spdlog::error(
        "kubernetes: cannot {} {}: 401 Unauthorized ({}): the API server rejected the "
        "credentials of {} (expired or wrong token or certificate?)",
        verb, Describe(), StatusMessage(r.body), client_->access().description);
  } else {
    spdlog::error(
        "kubernetes: cannot {} {}: 403 Forbidden ({}). The service account needs the RBAC "
        "rule {} in a {}; retrying",
        verb, Describe(), StatusMessage(r.body), RbacRule(type_, "\"get\", \"list\", \"watch\""),
        namespace_.empty() || !type_.namespaced ? "ClusterRole"
                                                : "Role of namespace " + namespace_);
  }
}

std::optional<std::string> Reflector::List() {
  counters_.lists.fetch_add(1);
  std::vector<nlohmann::json> items;
  std::string cont;
  std::string version;
  for (int page = 0;; ++page) {
    std::string target =
        fmt::format("{}?limit={}", type_.CollectionPath(namespace_), options_.page_size);
    if (!cont.empty()) target += "&continue=" + UrlEncode(cont);
    ApiResponse r = client_->Request("GET", target);
    if (client_->shut_down()) return std::nullopt;  // stopping: nothing to report
    if (r.status == 401 || r.status == 403) {
      ReportDenied("list", r);
      return std::nullopt;
    }
    if (r.status == 404) {
      if (missing_reported_) {
        sink_->Replace(*this, {});
        return std::nullopt;
      }
      missing_reported_ = true;
      spdlog::warn(
          "kubernetes: the API server does not serve {} (404: is its CRD installed?); "
          "treating it as empty and asking again later",
          Describe());
      sink_->Replace(*this, {});
      return std::nullopt;
    }
    if (r.status == 410 && !cont.empty()) {
      // The continue token expired: start the list over.
      items.clear();
      cont.clear();
      continue;
    }
    if (r.status != 200) {
      spdlog::warn(
          "kubernetes: list {}: {}", Describe(),
          r.status == 0 ? r.error : fmt::format("HTTP {}: {}", r.status, StatusMessage(r.body)));
      return std::nullopt;
    }
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("items") || !doc["items"].is_array()) {
      spdlog::warn("kubernetes: list {}: the answer is not a list", Describe());
      return std::nullopt;
    }
    for (auto& item : doc["items"]) {
      if (!item.is_object()) continue;
      item["apiVersion"] = type_.ApiVersion();
      item["kind"] = type_.kind;
      items.push_back(std::move(item));
    }
    const auto& meta = doc.value("metadata", nlohmann::json::object());
    version = meta.is_object() ? meta.value("resourceVersion", "") : "";
    cont = meta.is_object() ? meta.value("continue", "") : "";
    if (cont.empty()) break;
  }
  sink_->Replace(*this, std::move(items));
  return version;
}

Reflector::WatchEnd Reflector::Watch(std::string* rv) {
  counters_.watches.fetch_add(1);
  std::string target =
      fmt::format("{}?watch=1&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds={}",
                  type_.CollectionPath(namespace_), UrlEncode(*rv), options_.watch_timeout_seconds);
  WatchStreamSplitter splitter;
  std::vector<std::string> texts;
  WatchEnd end = WatchEnd::kTimeout;
  bool stop_stream = false;
  auto on_data = [&](std::string_view bytes) {
    texts.clear();
    if (auto st = splitter.Feed(bytes, &texts); !st.ok()) {
      spdlog::warn("kubernetes: watch {}: {}", Describe(), st.error().message);
      end = WatchEnd::kDropped;
      return false;
    }
    for (auto& text : texts) {
      auto ev = ParseWatchEvent(text);
      if (!ev.ok()) {
        spdlog::warn("kubernetes: watch {}: {}", Describe(), ev.error().message);
        end = WatchEnd::kDropped;
        return false;
      }
      counters_.events.fetch_add(1);
      switch (ev->type) {
        case WatchEventType::kAdded:
        case WatchEventType::kModified:
          if (!ev->resource_version.empty()) *rv = ev->resource_version;
          ev->object["apiVersion"] = type_.ApiVersion();
          ev->object["kind"] = type_.kind;
          sink_->Upsert(*this, std::move(ev->object));
          break;
        case WatchEventType::kDeleted:
          if (!ev->resource_version.empty()) *rv = ev->resource_version;
          sink_->Remove(*this, ev->object);
          break;
        case WatchEventType::kBookmark:
          if (!ev->resource_version.empty()) *rv = ev->resource_version;
          break;
        case WatchEventType::kError:
          if (ev->error_code == 410) {
            end = WatchEnd::kGone;
          } else {
            spdlog::warn("kubernetes: watch {}: error event {}: {}", Describe(), ev->error_code,
                         ev->error_message);
            end = ev->error_code == 401 || ev->error_code == 403 ? WatchEnd::kDenied
                                                                 : WatchEnd::kDropped;
          }
          stop_stream = true;
          return false;
      }
    }
    return !stop_stream;
  };
  StreamCancel cancel;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return WatchEnd::kDropped;
    active_ = &cancel;
  }
  ApiResponse r = client_->Stream(target, on_data, &cancel, options_.watch_timeout_seconds + 30);
  {
    std::lock_guard lock(mu_);
    active_ = nullptr;
    // Cut by Stop, or by the client's Shutdown, which the provider's Stop calls before it
    // stops each reflector: nothing to report.
    if (stopped_ || client_->shut_down()) return WatchEnd::kDropped;
  }
  if (r.status == 410) return WatchEnd::kGone;
  if (r.status == 401 || r.status == 403) {
    ReportDenied("watch", r);
    return WatchEnd::kDenied;
  }
  if (r.status != 200) {
    spdlog::warn(
        "kubernetes: watch {}: {}", Describe(),
        r.status == 0 ? r.error : fmt::format("HTTP {}: {}", r.status, StatusMessage(r.body)));
    return WatchEnd::kDropped;
  }
  if (end != WatchEnd::kTimeout) return end;
  if (!r.error.empty() || splitter.partial()) {
    spdlog::info("kubernetes: watch {} dropped ({}); resuming from version {}", Describe(),
                 r.error.empty() ? "cut mid-event" : r.error, *rv);
    return WatchEnd::kDropped;
  }
  return WatchEnd::kTimeout;
}

void Reflector::Run() {
  TimeNs backoff = options_.backoff_min;
  auto grow = [&] { backoff = std::min(options_.backoff_max, backoff * 2); };
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
    }
    auto version = List();
    if (!version) {
      sink_->ListFailed(*this);
      if (!Sleep(backoff)) return;
      grow();
      continue;
    }
    backoff = options_.backoff_min;
    TimeNs watch_backoff = options_.backoff_min;
    bool relist = false;
    while (!relist) {
      WatchEnd end = Watch(&*version);
      {
        std::lock_guard lock(mu_);
        if (stopped_) return;
      }
      switch (end) {
        case WatchEnd::kTimeout:
          watch_backoff = options_.backoff_min;
          break;
        case WatchEnd::kGone:
          counters_.gone.fetch_add(1);
          spdlog::info("kubernetes: watch {}: version {} is gone (410); listing again", Describe(),
                       *version);
          relist = true;
          break;
        case WatchEnd::kDropped:
          if (!Sleep(watch_backoff)) return;
          watch_backoff = std::min(options_.backoff_max, watch_backoff * 2);
          if (watch_backoff >= options_.backoff_max) relist = true;
          break;
        case WatchEnd::kDenied:
          if (!Sleep(backoff)) return;
          grow();
          relist = true;
          break;
      }
    }
  }
}

}  // namespace infergate::kube
