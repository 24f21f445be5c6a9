// LedgerHooks: keeps a pool's Scheduler in step with what actually happens to one proxied
// request: a move to a fallback endpoint, a re-dispatch of a silent request, its first
// byte (prefill done), its usage and its end. Each event that may free capacity pumps the
// pool's queue (PoolState::UpdateScheduler).
//
// It lives in the request's coroutine frame for the exchange; Hooks() hands
// ProxyExchange callbacks that point at it.
// Thread-safety: one request's loop only (the pool's own lock guards the scheduler).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/pool_state.h"
#include "gateway/response_rewrite.h"
#include "gateway/runtime.h"
#include "http/proxy_exchange.h"
#include "telemetry/metrics.h"

namespace infergate::gateway {

struct GatewayMetrics;

class LedgerHooks {
 public:
  // `info`, `pick`, `candidates` and the objects behind the pointers outlive the hooks.
  // `handle` is the dispatch admission recorded for pick.endpoints[0].
  // The candidates are pick.endpoints that `br` knows, in order.
  LedgerHooks(PoolState* pool, const config::Backend* backend, const BackendRuntime* br,
              GatewayMetrics* metrics, const Clock* clock, const RequestInfo* info,
              const PickResult* pick, TokenLedger::Handle handle);

  // The callbacks for ProxyExchange. `redirect`: a silent request may move once when the
  // scheduler says so (Scheduler::ShouldRedirect); `rewriter`, when set, rewrites the
  // response's model name back to the one the client asked for.
  http::ExchangeHooks Hooks(bool redirect, ModelNameRewriter* rewriter);

  const std::vector<http::UpstreamCandidate>& candidates() const { return candidates_; }
  // The endpoint the request is (last) dispatched to.
  const std::string& dispatched() const { return dispatched_; }
  // When it was (last) dispatched there.
  TimeNs dispatched_at() const { return dispatched_at_; }
  // The request ended: success with the usage the server reported, or a failure. Frees
  // what it held in the ledger (and lets queued requests go).
  void Finish(bool success, const std::optional<Usage>& usage);
  std::optional<Usage> usage() const { return usage_scanner_.Result(); }
  // The redirect counts only when ProxyExchange used it.
  bool first_byte() const { return first_byte_; }

 private:
  void OnAttempt(int i);
  void OnAttemptFailed(int i, const std::string& error, bool connect);
  std::optional<http::UpstreamCandidate> OnStall();
  void OnBody(std::string_view piece);

  PoolState* pool_;
  const config::Backend* backend_;
  const BackendRuntime* br_;
  GatewayMetrics* metrics_;
  const Clock* clock_;
  const RequestInfo* info_;
  const PickResult* pick_;
  TokenLedger::Handle handle_;
  std::vector<http::UpstreamCandidate> candidates_;
  std::string dispatched_;
  TimeNs dispatched_at_ = 0;
  bool first_byte_ = false;
  UsageScanner usage_scanner_;
};

}  // namespace infergate::gateway
