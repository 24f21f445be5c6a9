// The gateway's view of one configuration: what each listener routes where, with the
// per-backend state the data plane needs (resolved socket addresses, round-robin cursors,
// metric handles).
//
// A Runtime is built from an immutable ConfigSnapshot on start and on every reload, and
// replaced as a whole; requests in flight keep the Runtime they started with alive.
//
// Thread-safety: immutable after Build except for the atomic round-robin cursors; safe to
// share between event loops.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/snapshot.h"
#include "http/proxy_exchange.h"
#include "http/tls_server.h"
#include "routing/route_table.h"
#include "telemetry/metrics.h"

namespace infergate::gateway {

class RequestStats;
class PoolState;

struct BackendRuntime {
  std::shared_ptr<const config::Backend> backend;
  // Endpoints that may receive requests, in the snapshot's order.
  std::vector<http::UpstreamCandidate> endpoints;
  mutable std::atomic<std::uint64_t> next{0};  // round-robin cursor

  // The endpoint with this id ("ip:port"), or nullptr when it is not ready/known.
  const http::UpstreamCandidate* FindEndpoint(std::string_view id) const;
  // Fills `out` with up to out.size() distinct endpoints in round-robin order, starting
  // at the next cursor value; returns how many.
  std::size_t RoundRobin(std::span<http::UpstreamCandidate> out) const;
};

// A rule's request-header edits in the form the proxy applies them, built once.
struct RuleEdits {
  std::vector<http::HeaderEdit> set;  // RequestHeaderModifier.set, then X-Forwarded-Proto
  std::vector<http::HeaderEdit> add;
  std::vector<std::string> remove;
  // ResponseHeaderModifier.
  std::vector<http::HeaderEdit> response_set;
  std::vector<http::HeaderEdit> response_add;
  std::vector<std::string> response_remove;
};

// The server certificates of the HTTPS listeners sharing one bound port, and which
// listener each serves (SNI picks the site, the site names the listener).
struct TlsPortRuntime {
  std::shared_ptr<const http::TlsServerContext> context;
  std::vector<std::string> listener_keys;  // by site index
};

struct ListenerRuntime {
  const config::ResolvedListener* listener = nullptr;
  std::string key;  // "gateway-namespace/gateway-name/listener-name"
  routing::RouteTable routes;
  // The InferencePools this listener routes to (GET /v1/models lists their models).
  std::vector<const config::Backend*> pools;
};

// GET /v1/models on a listener, in OpenAI's list shape: the names `pools` configure
// (InferenceModel names, InferenceModelRewrite exact matches) and the models their
// servers list (`served(pool)`: PoolState::ServedModels), each once, owned by its pool.
std::string ModelsJson(
    const std::vector<const config::Backend*>& pools,
    const std::function<std::vector<std::string>(const config::Backend*)>& served);

class Runtime {
 public:
  // Requires a valid snapshot. Returns an error if an endpoint address cannot be parsed.
  static Result<std::shared_ptr<Runtime>> Build(
      std::shared_ptr<const config::ConfigSnapshot> snapshot);

  const config::ConfigSnapshot& snapshot() const { return *snapshot_; }
  // nullptr when the listener is not in this configuration.
  const ListenerRuntime* FindListener(const std::string& key) const;
  const std::vector<std::unique_ptr<ListenerRuntime>>& listeners() const { return listeners_; }
  // The TLS state of a bound HTTPS port, by TlsPortKey(); nullptr when absent.
  const TlsPortRuntime* FindTlsPort(const std::string& key) const {
    auto it = tls_ports_.find(key);
    return it == tls_ports_.end() ? nullptr : &it->second;
  }
  // The key under which an HTTPS listener's port is bound: HTTPS listeners on the same
  // address and port (not 0) share one socket.
  static std::string TlsPortKey(const ListenerRuntime& lr);
  // The runtime of a backend the snapshot defines (by pointer identity).
  const BackendRuntime* FindBackend(const config::Backend* backend) const;

  // The header edits of a rule of this configuration (never null for such a rule).
  const RuleEdits* FindEdits(const config::RouteRule* rule) const {
    auto it = edits_.find(rule);
    return it == edits_.end() ? nullptr : &it->second;
  }

  // Picks the target model of an InferenceModel by its weights (never null for a model of
  // this configuration's pools).
  // `owner` is a config::ModelRoute or config::RewriteRoute of this configuration's pools
  // (Classify's ChooseTarget owner).
  const routing::WeightedChooser* FindTargetChooser(const void* owner) const {
    auto it = target_choosers_.find(owner);
    return it == target_choosers_.end() ? nullptr : it->second.get();
  }

  // The counter that spreads a RequestMirror filter's copies over requests.
  std::atomic<std::uint64_t>* MirrorCounter(const config::ResolvedMirror* mirror) const {
    auto it = mirror_counters_.find(mirror);
    return it == mirror_counters_.end() ? nullptr : it->second.get();
  }

  // The live state of each InferencePool backend, filled in by the gateway before the
  // runtime is published.
  std::map<const config::Backend*, std::shared_ptr<PoolState>> pools;
  PoolState* FindPool(const config::Backend* backend) const {
    auto it = pools.find(backend);
    return it == pools.end() ? nullptr : it->second.get();
  }

  // Metric handles per (listener, rule, backend), filled in by the gateway before the
  // runtime is published so the request path looks them up without locks or allocation.
  // rule and backend are null for requests that matched no route.
  using StatsKey =
      std::tuple<const ListenerRuntime*, const config::RouteRule*, const config::Backend*>;
  std::map<StatsKey, RequestStats*> stats;
  RequestStats* FindStats(const ListenerRuntime* l, const config::RouteRule* r,
                          const config::Backend* b) const {
    auto it = stats.find({l, r, b});
    return it == stats.end() ? nullptr : it->second;
  }

 private:
  std::shared_ptr<const config::ConfigSnapshot> snapshot_;
  std::vector<std::unique_ptr<ListenerRuntime>> listeners_;
  std::map<const config::Backend*, std::unique_ptr<BackendRuntime>> backends_;
  std::map<const config::RouteRule*, RuleEdits> edits_;
  std::map<std::string, TlsPortRuntime> tls_ports_;
  std::map<const void*, std::unique_ptr<routing::WeightedChooser>> target_choosers_;
  std::map<const config::ResolvedMirror*, std::unique_ptr<std::atomic<std::uint64_t>>>
      mirror_counters_;
};

}  // namespace infergate::gateway
