#include "gateway/ledger_hooks.h"

#include <spdlog/spdlog.h>

#include "gateway/gateway_impl.h"

namespace infergate::gateway {

LedgerHooks::LedgerHooks(PoolState* pool, const config::Backend* backend, const BackendRuntime* br,
                         GatewayMetrics* metrics, const Clock* clock, const RequestInfo* info,
                         const PickResult* pick, TokenLedger::Handle handle)
    : pool_(pool),
      backend_(backend),
      br_(br),
      metrics_(metrics),
      clock_(clock),
      info_(info),
      pick_(pick),
      handle_(handle),
      dispatched_(pick->picked() ? pick->endpoints.front() : std::string()),
      dispatched_at_(clock->Now()) {
  for (const auto& id : pick->endpoints) {
    if (const auto* c = br->FindEndpoint(id)) candidates_.push_back(*c);
  }
}

http::ExchangeHooks LedgerHooks::Hooks(bool redirect, ModelNameRewriter* rewriter) {
  http::ExchangeHooks hooks;
  hooks.on_attempt = [this](int i) { OnAttempt(i); };
  hooks.on_attempt_failed = [this](int i, const std::string& error, bool connect) {
    OnAttemptFailed(i, error, connect);
  };
  if (redirect) hooks.on_stall = [this] { return OnStall(); };
  hooks.on_body = [this](std::string_view piece) { OnBody(piece); };
  if (rewriter) {
    hooks.rewrite_body = [rewriter](std::string_view in, bool last, std::string& out) {
      rewriter->Rewrite(in, last, out);
    };
  }
  return hooks;
}

void LedgerHooks::OnAttempt(int i) {
  if (candidates_[i].id == dispatched_) return;
  // A connection to the chosen endpoint failed: the request moves to a fallback.
  pool_->WithScheduler([&](Scheduler& s) {
    s.OnFailure(handle_);
    handle_ = s.Dispatch(*info_, *pick_, candidates_[i].id);
    return 0;
  });
  dispatched_.assign(candidates_[i].id);
  dispatched_at_ = clock_->Now();
}

void LedgerHooks::OnAttemptFailed(int i, const std::string& error, bool connect) {
  // i < 0: the endpoint the request was redirected to.
  const std::string_view id = i >= 0 ? candidates_[i].id : std::string_view(dispatched_);
  (connect ? metrics_->connect_errors : metrics_->upstream_failures).With({backend_->id, id}).Inc();
  spdlog::debug("pool {} endpoint {} failed: {}", backend_->id, id, error);
}

std::optional<http::UpstreamCandidate> LedgerHooks::OnStall() {
  std::optional<http::UpstreamCandidate> to;
  // A move frees the endpoint it left for a queued request.
  pool_->UpdateScheduler([&](Scheduler& s) {
    PickResult moved;
    if (!s.ShouldRedirect(*info_, handle_, &moved)) return false;
    const http::UpstreamCandidate* c = br_->FindEndpoint(moved.endpoints.front());
    if (c == nullptr) return false;
    s.OnFailure(handle_);
    handle_ = s.Dispatch(*info_, moved, c->id);
    to = *c;
    return true;
  });
  if (!to) return to;
  metrics_->pool_redirects.With({backend_->id, dispatched_, std::string(to->id)}).Inc();
  spdlog::debug("pool {}: request silent at {} moved to {}", backend_->id, dispatched_, to->id);
  dispatched_.assign(to->id);
  dispatched_at_ = clock_->Now();
  return to;
}

void LedgerHooks::OnBody(std::string_view piece) {
  if (!first_byte_) {
    first_byte_ = true;
    // A request held for this prefill queue may go now.
    pool_->UpdateScheduler([&](Scheduler& s) { return s.OnFirstToken(handle_); });
    metrics_->pool_ttft.With({backend_->id, dispatched_})
        .Observe(ToSeconds(clock_->Now() - dispatched_at_));
  }
  usage_scanner_.Feed(piece);
}

void LedgerHooks::Finish(bool success, const std::optional<Usage>& usage) {
  // What it held (KV space, a place in a prefill queue) is free for the queue.
  pool_->UpdateScheduler(
      [&](Scheduler& s) { return success ? s.OnComplete(handle_, usage) : s.OnFailure(handle_); });
}

}  // namespace infergate::gateway
