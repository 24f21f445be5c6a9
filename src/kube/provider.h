// KubernetesProvider: the configuration from the API server instead of files.
//
// One Reflector per watched resource type (and namespace, when a list of namespaces is
// given) keeps a local copy of the objects. Each object is trimmed to what the config
// decoders read and becomes one source of config::LoadConfigSkippingInvalid, so the
// Kubernetes mode produces the same typed resources and validated ConfigSnapshot as
// `serve -f`, through the same decoders, with two differences: Services resolve through
// EndpointSlices, and an invalid object is left out (and reported on its status and in
// the log) instead of failing the whole configuration.
//
// Watched: GatewayClasses (those naming controller_name select the Gateways used),
// Gateways, HTTPRoutes (those with a parentRef to one of those Gateways),
// ReferenceGrants (cross-namespace certificateRefs and backendRefs), Services,
// EndpointSlices, Pods (terminating ones are dropped at once), InferencePools (v1 and
// v1alpha2), InferenceObjectives (llm-d.ai/v1alpha2 and the older group),
// InferenceModelRewrites, InferenceModels, Envoy Gateway's Client/BackendTrafficPolicies.
// Kinds the decoders do not know yet are skipped by them, as in file mode.
//
// A change marks the configuration dirty; a rebuild thread waits `debounce` for more
// changes, builds the snapshot, hands it to the apply function (the gateway swaps it in
// atomically) and then writes status (status.h) for what it applied.
//
// Use: Create, Start (returns the first snapshot once every resource has been listed or
// has failed to list), then Follow(apply) for the later ones; Stop ends everything.
// Thread-safety: Start/Follow/Stop from one thread; apply is called on the provider's
// rebuild thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.h"
#include "config/snapshot.h"
#include "core/clock.h"
#include "core/status.h"
#include "kube/api_client.h"
#include "kube/reflector.h"

namespace infergate::kube {

inline constexpr std::string_view kDefaultControllerName = "infergate.io/gateway-controller";

struct ProviderOptions {
  ClusterAccess access;
  std::vector<std::string> namespaces;  // empty: all
  // The kinds watched (of WatchedResourceTypes); empty: all of them. The endpoint picker
  // watches only what its pool needs (Pods, InferencePools, objectives, rewrites, models).
  std::set<std::string> kinds;
  std::string controller_name = std::string(kDefaultControllerName);
  // Written to each Gateway's status.addresses (IP or hostname).
  std::vector<std::string> status_addresses;
  bool write_status = true;
  TimeNs debounce = 100 * kNanosPerMilli;
  TimeNs initial_sync_timeout = 30 * kNanosPerSecond;
  ReflectorOptions reflector;
};

// The resource types the provider watches, in the order they are listed.
std::vector<ResourceType> WatchedResourceTypes();

// Trims an object to what the decoders read (drops managedFields, status of non-Pods,
// the last-applied annotation, ...). Returns false when the object is to be ignored
// (a terminating Pod).
bool TrimObject(const ResourceType& type, nlohmann::json* object);

class KubernetesProvider final : public ReflectorSink {
 public:
  using ApplyFn = std::function<Status(std::shared_ptr<const config::ConfigSnapshot>)>;

  static Result<std::unique_ptr<KubernetesProvider>> Create(ProviderOptions options);
  ~KubernetesProvider() override;

  // Starts the reflectors and returns the first snapshot (status is written once Follow
  // applies). Fails if nothing could be listed before initial_sync_timeout.
  Result<std::shared_ptr<const config::ConfigSnapshot>> Start();
  // Applies every later snapshot with apply; the first call also writes status for the
  // snapshot Start returned (as applied successfully).
  void Follow(ApplyFn apply);
  void Stop();

  // Snapshots built so far (for tests and logs).
  std::uint64_t builds() const { return builds_.load(); }

  // ReflectorSink (called on reflector threads).
  void Replace(const Reflector& from, std::vector<nlohmann::json> items) override;
  void Upsert(const Reflector& from, nlohmann::json object) override;
  void Remove(const Reflector& from, const nlohmann::json& object) override;
  void ListFailed(const Reflector& from) override;

 private:
  explicit KubernetesProvider(ProviderOptions options) : options_(std::move(options)) {}

  struct Stored {
    nlohmann::json object;  // as received
    std::string text;       // trimmed, serialized: the decoders' input
  };
  struct Built {
    std::shared_ptr<const config::ConfigSnapshot> snapshot;
    std::vector<config::RejectedSource> rejected;
  };
  // Builds a snapshot from the current objects. Requires mu_ held.
  Result<Built> BuildLocked();
  void RebuildLoop();
  void WriteStatus(const Built& built, const std::string& apply_error);
  void MarkDirty();

  ProviderOptions options_;
  std::unique_ptr<ApiClient> client_;
  std::vector<std::unique_ptr<Reflector>> reflectors_;
  std::vector<std::thread> threads_;
  std::thread rebuild_thread_;
  ApplyFn apply_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Per reflector: objects by "namespace/name".
  std::map<const Reflector*, std::map<std::string, Stored>> objects_;
  std::set<const Reflector*> synced_;  // listed (or failed to) at least once
  bool dirty_ = false;
  bool stopping_ = false;
  std::set<std::string> reported_;       // rejection messages already logged
  std::set<std::string> status_denied_;  // resource ids whose status PATCH was refused
  std::uint64_t listed_ok_ = 0;
  Built first_;
  std::atomic<std::uint64_t> builds_{0};
};

}  // namespace infergate::kube
