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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/snapshot.h"
#include "http/proxy_exchange.h"
#include "routing/route_table.h"
#include "telemetry/metrics.h"

namespace infergate::gateway {

class RequestStats;

struct BackendRuntime {
  std::shared_ptr<const config::Backend> backend;
  // Endpoints that may receive requests, in the snapshot's order.
  std::vector<http::UpstreamCandidate> endpoints;
  mutable std::atomic<std::uint64_t> next{0};  // round-robin cursor

  // Fills `out` with up to out.size() distinct endpoints in round-robin order, starting
  // at the next cursor value; returns how many.
  std::size_t RoundRobin(std::span<http::UpstreamCandidate> out) const;
};

// A rule's request-header edits in the form the proxy applies them, built once.
struct RuleEdits {
  std::vector<http::HeaderEdit> set;  // RequestHeaderModifier.set, then X-Forwarded-Proto
  std::vector<http::HeaderEdit> add;
  std::vector<std::string> remove;
};

struct ListenerRuntime {
  const config::ResolvedListener* listener = nullptr;
  std::string key;  // "gateway-namespace/gateway-name/listener-name"
  routing::RouteTable routes;
};

class Runtime {
 public:
  // Requires a valid snapshot. Returns an error if an endpoint address cannot be parsed.
  static Result<std::shared_ptr<Runtime>> Build(
      std::shared_ptr<const config::ConfigSnapshot> snapshot);

  const config::ConfigSnapshot& snapshot() const { return *snapshot_; }
  // nullptr when the listener is not in this configuration.
  const ListenerRuntime* FindListener(const std::string& key) const;
  const std::vector<std::unique_ptr<ListenerRuntime>>& listeners() const { return listeners_; }
  // The runtime of a backend the snapshot defines (by pointer identity).
  const BackendRuntime* FindBackend(const config::Backend* backend) const;

  // The header edits of a rule of this configuration (never null for such a rule).
  const RuleEdits* FindEdits(const config::RouteRule* rule) const {
    auto it = edits_.find(rule);
    return it == edits_.end() ? nullptr : &it->second;
  }

  // Metric handles per (listener, rule, backend), filled in by the gateway before the
  // runtime is published so the request path looks them up without locks or allocation.
  // rule and backend are null for requests that matched no route.
  using StatsKey = std::tuple<const ListenerRuntime*, const config::RouteRule*,
                              const config::Backend*>;
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
};

}  // namespace infergate::gateway
