// FakeApiServer: a small Kubernetes API server for tests, over plain HTTP on 127.0.0.1
// (port 0). It follows the API conventions the provider relies on:
//   GET  collection            LIST: items (without apiVersion/kind, as the real server),
//                              metadata.resourceVersion, pagination with limit/continue
//                              (a continue token older than the last Compact gets 410)
//   GET  collection?watch=1    WATCH from resourceVersion: a chunked stream of JSON events
//                              ADDED/MODIFIED/DELETED, BOOKMARK every second when
//                              allowWatchBookmarks, ending after timeoutSeconds; a version
//                              older than the last Compact gets 410 (as an HTTP status or
//                              as an ERROR event, see SetGoneAsHttp)
//   PATCH .../NAME/status      merge patch of the status (recorded; emits MODIFIED)
//   401 without the expected bearer token, 403 on resources made Forbid()den.
// Scriptable from the test thread: Apply/Delete objects, Compact the history, CutWatches
// (connections closed mid-stream), Forbid resources.
//
// What it does not do (docs/kubernetes.md): label/field selectors, server-side apply,
// optimistic concurrency on writes, admission/validation of CRDs, watch caches' quirks.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace infergate::testing {

class FakeApiServer {
 public:
  struct Patch {
    std::string path;
    std::string content_type;
    nlohmann::json body;
  };

  FakeApiServer();
  ~FakeApiServer();

  // Binds 127.0.0.1:0 and starts serving. Returns false if it cannot bind.
  bool Start();
  void Stop();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Requests must carry "Authorization: Bearer <token>" (empty: no check).
  void RequireToken(const std::string& token);
  // Makes a type known: e.g. ("v1", "Pod", "pods").
  void AddType(const std::string& api_version, const std::string& kind, const std::string& plural,
               bool namespaced = true);
  // Creates or replaces an object (metadata.namespace defaults to "default"): sets
  // resourceVersion, generation (+1 when spec changed), creationTimestamp, uid; emits
  // ADDED or MODIFIED. Keeps the stored status when the object has none.
  void Apply(nlohmann::json object);
  // Replaces only the status (like the kubelet updating a Pod's status).
  void ApplyStatus(const std::string& api_version, const std::string& kind, const std::string& ns,
                   const std::string& name, nlohmann::json status);
  void Delete(const std::string& api_version, const std::string& kind, const std::string& ns,
              const std::string& name);
  // The stored object (null when absent).
  nlohmann::json Get(const std::string& api_version, const std::string& kind, const std::string& ns,
                     const std::string& name) const;
  // Drops the event history and cuts open watches: a watch or list continuation from any
  // version seen so far gets 410 (a new list can be watched from).
  void Compact();
  // Closes every open watch connection abruptly (no final chunk).
  void CutWatches();
  // 403 on every request to `resource` ("pods", "httproutes/status", ...).
  void Forbid(const std::string& resource, bool forbidden = true);
  void SetGoneAsHttp(bool as_http);

  std::vector<Patch> patches() const;
  // Requests served per kind of request: "list pods", "watch pods", "gone pods", ...
  int count(const std::string& what) const;
  int open_watches() const;

 private:
  struct Type {
    std::string api_version, kind, plural;
    bool namespaced = true;
  };
  struct Event {
    std::int64_t rv;
    std::string plural_key;  // group/plural
    std::string ns;
    std::string type;
    nlohmann::json object;
  };
  struct Request {
    std::string method, path, query, body, content_type, authorization;
  };

  void AcceptLoop();
  void Serve(int fd);
  void Handle(int fd, const Request& req);
  const Type* FindType(const std::string& group, const std::string& plural) const;
  const Type* TypeOf(const std::string& api_version, const std::string& kind) const;
  void Emit(const Type& t, const std::string& type, const nlohmann::json& object);
  void Watch(int fd, const Type& t, const std::string& ns, std::int64_t from, bool bookmarks,
             int timeout_seconds);
  static std::string Key(const Type& t) { return t.api_version + "/" + t.plural; }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Type> types_;
  std::map<std::string, std::map<std::string, nlohmann::json>> objects_;  // type key -> ns/name
  std::vector<Event> events_;
  std::int64_t rv_ = 1000;
  std::int64_t compacted_ = 0;
  std::int64_t cut_generation_ = 0;
  std::set<std::string> forbidden_;
  std::string token_;
  bool gone_as_http_ = false;
  std::vector<Patch> patches_;
  std::map<std::string, int> counts_;
  int open_watches_ = 0;
  std::set<int> watch_fds_;
  std::vector<std::thread> connections_;
  std::set<int> open_fds_;
};

}  // namespace infergate::testing
