// Reflector: keeps one resource type (in one namespace or all) mirrored from the API
// server, the way client-go's reflector does:
//
//   LIST  (paginated: limit=page_size, following metadata.continue) -> Replace(all items)
//   WATCH from the list's resourceVersion, allowWatchBookmarks, timeoutSeconds
//         ADDED/MODIFIED -> Upsert, DELETED -> Remove, BOOKMARK -> newer version only
//   the watch ends normally (timeoutSeconds)   -> watch again from the last version seen
//   the connection drops / the stream is bad   -> watch again from it after a backoff
//   410 Gone (HTTP, or an ERROR event with code 410) -> relist
//   401/403                                    -> one clear error naming the resource,
//                                                the verb and the RBAC rule that is
//                                                missing; retried with backoff
//   404 on LIST                                -> the API is not served (CRD not
//                                                installed): an empty list, retried later
// Backoff doubles from backoff_min to backoff_max and resets after a successful list.
//
// Thread-safety: Run() blocks on the calling thread until Stop() (from any thread).
// The sink is called from Run's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clock.h"
#include "kube/api_client.h"

namespace infergate::kube {

struct ResourceType {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "pods", "inferencepools.inference.networking.k8s.io": the RBAC resource.group.
  std::string Id() const { return group.empty() ? plural : plural + "." + group; }
  // /api/v1[/namespaces/NS]/pods or /apis/GROUP/VERSION[/namespaces/NS]/PLURAL.
  std::string CollectionPath(const std::string& namespace_name) const;
  // The object's path (for .../status).
  std::string ObjectPath(const std::string& namespace_name, const std::string& name) const;
};

// The RBAC rule a verb on a resource needs, as it would appear in a (Cluster)Role.
std::string RbacRule(const ResourceType& type, std::string_view verbs);
// The "message" of a Kubernetes Status body, or the body's start.
std::string StatusMessage(const std::string& body);

class Reflector;

class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  // A list finished: items replace everything this reflector delivered before.
  virtual void Replace(const Reflector& from, std::vector<nlohmann::json> items) = 0;
  virtual void Upsert(const Reflector& from, nlohmann::json object) = 0;
  virtual void Remove(const Reflector& from, const nlohmann::json& object) = 0;
  // A list failed (reported already); what was delivered before stays.
  virtual void ListFailed(const Reflector& from) = 0;
};

struct ReflectorOptions {
  int page_size = 500;
  int watch_timeout_seconds = 300;
  TimeNs backoff_min = 100 * kNanosPerMilli;
  TimeNs backoff_max = 30 * kNanosPerSecond;
};

struct ReflectorCounters {
  std::atomic<std::uint64_t> lists{0};
  std::atomic<std::uint64_t> watches{0};
  std::atomic<std::uint64_t> gone{0};       // 410s
  std::atomic<std::uint64_t> forbidden{0};  // 401/403s
  std::atomic<std::uint64_t> events{0};
};

class Reflector {
 public:
  Reflector(ApiClient* client, ResourceType type, std::string namespace_name, ReflectorSink* sink,
            ReflectorOptions options);

  void Run();
  void Stop();

  const ResourceType& type() const { return type_; }
  const std::string& namespace_name() const { return namespace_; }  // "" = all
  // "pods in namespace x" / "pods in all namespaces".
  std::string Describe() const;
  const ReflectorCounters& counters() const { return counters_; }

 private:
  enum class WatchEnd { kTimeout, kGone, kDropped, kDenied };
  // Returns the list's resourceVersion, or nullopt after reporting why it failed.
  std::optional<std::string> List();
  WatchEnd Watch(std::string* resource_version);
  void ReportDenied(std::string_view verb, const ApiResponse& r);
  // Sleeps up to d; false when stopped.
  bool Sleep(TimeNs d);

  ApiClient* client_;
  ResourceType type_;
  std::string namespace_;
  ReflectorSink* sink_;
  ReflectorOptions options_;
  ReflectorCounters counters_;
  StreamCancel* active_ = nullptr;  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool missing_reported_ = false;  // a 404 was logged once already
};

}  // namespace infergate::kube
