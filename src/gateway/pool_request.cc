// The inference request path of an InferencePool route, as named steps:
//   parse     the OpenAI body (model, prompt, max_tokens, stream)
//   classify  InferenceModel / InferenceModelRewrite / InferenceObjective + headers →
//             target model, criticality, priority, flow (gateway/classify.h, pure)
//   admit     the pool's AdmissionController: picked, held in the queue, or refused
//   proxy     ProxyExchange with the ledger kept in step (gateway/ledger_hooks.h)
//   record    metrics and the request log
#include <spdlog/spdlog.h>

#include "gateway/classify.h"
#include "gateway/gateway_impl.h"
#include "gateway/ledger_hooks.h"
#include "gateway/openai_request.h"
#include "gateway/response_rewrite.h"
#include "http/headers.h"
#include "http/peek.h"

namespace infergate::gateway {

using namespace asio::experimental::awaitable_operators;

// One request's state through the steps.
struct Gateway::Impl::PoolCall {
  PoolCall(tcp::socket& socket, http::Request& req, const Runtime& rt, const ListenerRuntime& lr,
           const config::RouteRule& rule, const config::Backend& backend, TimeNs arrival,
           const std::string& client_ip)
      : socket(socket),
        req(req),
        rt(rt),
        lr(lr),
        rule(rule),
        backend(backend),
        arrival(arrival),
        client_ip(client_ip) {}

  tcp::socket& socket;
  http::Request& req;
  const Runtime& rt;
  const ListenerRuntime& lr;
  const config::RouteRule& rule;
  const config::Backend& backend;
  TimeNs arrival;
  const std::string& client_ip;
  bool client_keep = false;
  RequestStats* stats = nullptr;
  PoolState* pool = nullptr;
  const BackendRuntime* br = nullptr;
  OpenAIRequest parsed;
  RequestClass cls;
  RequestInfo info;
  std::vector<std::uint64_t> hashes;
  QueueWaiter waiter;
  // Visibility: the access log's entry (when it records this request), bounded metric
  // labels, and the decision's record for the live page.
  AccessEntry access_entry;
  AccessEntry* access = nullptr;
  std::size_t request_bytes = 0;
  std::string model_label, target_label;
  std::optional<DecisionRecord> decision;
};

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of the newer header, else of the older one.
std::optional<std::string_view> Header(const http::Request& req, std::string_view name,
                                       std::string_view legacy) {
  if (auto v = http::FindField(req, name)) return v;
  return http::FindField(req, legacy);
}

}  // namespace

asio::awaitable<bool> Gateway::Impl::HandlePoolRequest(tcp::socket& socket, http::Request& req,
                                                       const Runtime& rt, const ListenerRuntime& lr,
                                                       const config::RouteRule& rule,
                                                       const config::Backend& backend,
                                                       TimeNs arrival,
                                                       const std::string& client_ip) {
  PoolCall c(socket, req, rt, lr, rule, backend, arrival, client_ip);
  c.client_keep = http::KeepAlive(req) && !draining_;
  c.stats = rt.FindStats(&lr, &rule, &backend);
  c.pool = rt.FindPool(&backend);
  c.br = rt.FindBackend(&backend);
  if (req.method() != bhttp::verb::post || !c.pool || !c.br) {
    // Not an inference call (health checks, model lists, ...): any ready endpoint.
    co_return co_await ProxyPlain(socket, req, rt, lr, rule, backend, arrival, client_ip);
  }
  c.access = BeginAccess(c.access_entry, req, lr, &rule, &backend, arrival, client_ip);
  c.request_bytes = req.body().size();
  // parse
  auto parsed = ParseOpenAIRequest(req.body());
  if (!parsed.ok()) co_return co_await ReplyToPoolCall(c, 400, parsed.error().message);
  c.parsed = std::move(*parsed);
  if (c.access) c.access->model = c.parsed.model;
  // classify
  if (!ClassifyPoolCall(c)) {
    metrics.model_errors.With({"other", "other", "404"}).Inc();
    co_return co_await ReplyToPoolCall(c, 404,
                                       "The model `" + c.parsed.model + "` does not exist.");
  }
  // admit
  bool keep = false;
  if (!co_await AdmitPoolCall(c, &keep)) co_return keep;
  // proxy, record
  co_return co_await ProxyPoolCall(c);
}

asio::awaitable<bool> Gateway::Impl::ReplyToPoolCall(PoolCall& c, int status, std::string message,
                                                     std::string_view dropped_reason,
                                                     bool retry_after) {
  if (c.stats) c.stats->Record(status, ToSeconds(clock_.Now() - c.arrival));
  if (c.access) EmitAccess(*c.access, status);
  Headers headers;
  if (retry_after) headers.emplace_back("Retry-After", "1");
  if (!dropped_reason.empty()) {
    headers.emplace_back(std::string(kDroppedReasonHeader), std::string(dropped_reason));
  }
  const bool ok = co_await http::WriteErrorResponse(c.socket, status, message, c.req.version(),
                                                    c.client_keep, headers);
  co_return ok&& c.client_keep;
}

bool Gateway::Impl::ClassifyPoolCall(PoolCall& c) {
  const ClassifyInput in{c.parsed.model, Header(c.req, kObjectiveHeader, kLegacyObjectiveHeader),
                         Header(c.req, kFairnessHeader, kLegacyFairnessHeader)};
  c.cls = Classify(in, c.backend.pool,
                   [&](const void* owner, std::span<const std::uint32_t>) -> std::size_t {
                     const auto* chooser = c.rt.FindTargetChooser(owner);
                     const int i = chooser ? chooser->Next() : 0;
                     return i >= 0 ? static_cast<std::size_t>(i) : 0;
                   });
  if (!c.cls.known() && !c.pool->MayServe(c.parsed.model)) return false;
  if (c.cls.rewritten(c.parsed.model)) SpliceModel(c.req.body(), c.parsed, c.cls.target);
  // Metric labels: names clients invent fold into "other".
  c.model_label = ModelLabel(c.cls.known(), c.pool, c.parsed.model);
  c.target_label = c.cls.known() ? c.cls.target : c.model_label;
  if (c.access) c.access->served_model = c.cls.target;
  RequestInfo& info = c.info;
  info.target_model = c.cls.target;
  info.prompt = c.parsed.prompt;
  info.prompt_tokens = c.parsed.prompt_tokens;
  info.max_tokens = c.parsed.max_tokens;
  info.criticality = c.cls.criticality;
  info.priority = c.cls.priority;
  if (c.cls.lora) info.lora_adapter = c.cls.target;
  if (auto v = http::FindField(c.req, opts.session_header)) info.session_key = *v;
  info.fairness_id = c.cls.fairness_id;
  ComputeBlockHashes(c.cls.target, info.prompt, c.pool->prefix_options(), &c.hashes);
  info.block_hashes = &c.hashes;
  return true;
}

asio::awaitable<bool> Gateway::Impl::AdmitPoolCall(PoolCall& c, bool* keep) {
  const std::string& model = c.model_label;
  const std::string& target = c.target_label;
  const TimeNs decide_start = clock_.Now();
  // Late binding: the request is decided now, or waits in the pool's queue until an
  // endpoint can take it (or its client leaves, or its time runs out).
  QueueWaiter& waiter = c.waiter;
  waiter.executor = c.socket.get_executor();
  waiter.wake =
      std::make_shared<asio::steady_timer>(waiter.executor, asio::steady_timer::time_point::max());
  waiter.info = &c.info;
  const TimeNs ttl = c.rule.timeouts.request.value_or(c.lr.listener->request_timeout);
  PoolState* pool = c.pool;
  const Admission admission = pool->PickOrQueue(waiter, ttl > 0 ? ttl : kNever / 2,
                                                opts.flow_control && pool->settings().flow_control);
  if (admission == Admission::kQueueFull) {
    metrics.pool_rejections.With({c.backend.id, "queue_full"}).Inc();
    if (c.access) c.access->dropped = "queue_full";
    metrics.model_errors.With({model, target, "429"}).Inc();
    *keep =
        co_await ReplyToPoolCall(c, 429, "the pool's request queue is full", "queue-full", true);
    co_return false;
  }
  // Should this frame be destroyed while queued (the loop stopping under it), the queue
  // must not keep a pointer into it. (A request decided at once was never queued.)
  struct Unqueue {
    PoolState* pool;
    QueueWaiter* waiter;
    ~Unqueue() {
      if (pool) pool->CancelQueued(*waiter);
    }
  } unqueue{admission == Admission::kQueued ? pool : nullptr, &waiter};
  if (admission == Admission::kQueued) {
    const TimeNs queued_at = clock_.Now();
    bool watch_client = true;
    while (!pool->Decided(waiter)) {
      if (!watch_client) {
        co_await waiter.wake->async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      auto woke = co_await (
          waiter.wake->async_wait(asio::as_tuple(asio::use_awaitable)) ||
          c.socket.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable)));
      if (woke.index() == 1) {
        const http::Peeked peeked = http::PeekSocket(c.socket);
        if (peeked != http::Peeked::kClosed) {
          // Pipelined bytes: stop watching, keep waiting.
          watch_client = peeked == http::Peeked::kNothing;
          continue;
        }
        // The client left while queued: nothing was sent anywhere.
        if (pool->CancelQueued(waiter)) {
          metrics.model_errors.With({model, target, "499"}).Inc();
          if (c.stats) c.stats->Record(499, ToSeconds(clock_.Now() - c.arrival));
          if (c.access) EmitAccess(*c.access, 499);
          *keep = false;
          co_return false;
        }
      }
    }
    metrics.queue_wait.With({c.backend.id}).Observe(ToSeconds(clock_.Now() - queued_at));
    if (waiter.expired) {
      metrics.pool_rejections.With({c.backend.id, "queue_ttl"}).Inc();
      if (c.access) c.access->dropped = "queue_ttl";
      metrics.model_errors.With({model, target, "503"}).Inc();
      *keep = co_await ReplyToPoolCall(
          c, 503, "the request waited in the pool's queue past its timeout", "queue-ttl");
      co_return false;
    }
  }
  metrics.scheduler_duration.Observe(ToSeconds(clock_.Now() - decide_start));
  const PickResult& pick = waiter.pick;
  c.decision.emplace(BeginDecision(c.backend, *pool, c.model_label, c.target_label, c.info, pick,
                                   c.hashes.size(), decide_start));
  metrics.model_requests.With({model, target}).Inc();
  if (pick.picked()) co_return true;
  const int status = pick.http_status();
  const std::string_view reason = PickReasonName(pick.reason);
  metrics.pool_rejections.With({c.backend.id, std::string(reason)}).Inc();
  metrics.model_errors.With({model, target, std::to_string(status)}).Inc();
  std::string message =
      status == 429
          ? "the pool is saturated; " + std::string(CriticalityLabel(c.info.criticality)) +
                " requests are shed until it has room"
          : "no endpoint of the pool can take the request (" + std::string(reason) + ")";
  FinishDecision(std::move(*c.decision), status, {}, c.request_bytes, nullptr, 0, std::nullopt,
                 ToSeconds(clock_.Now() - c.arrival), c.access);
  *keep = co_await ReplyToPoolCall(c, status, std::move(message), reason, status == 429);
  co_return false;
}

asio::awaitable<bool> Gateway::Impl::ProxyPoolCall(PoolCall& c) {
  LedgerHooks ledger(c.pool, &c.backend, c.br, &metrics, &clock_, &c.info, &c.waiter.pick,
                     c.waiter.handle);
  std::optional<ModelNameRewriter> rewriter;
  if (c.cls.rewritten(c.parsed.model)) rewriter.emplace(c.cls.target, c.parsed.model);
  // Re-dispatch: a streaming request (the gateway sees its first token) still silent
  // opts.redirect_after after dispatch may move once, when the scheduler says so.
  const bool redirect = opts.flow_control && c.pool->settings().flow_control && c.parsed.stream &&
                        opts.redirect_after > 0;
  const http::ExchangeHooks hooks = ledger.Hooks(redirect, rewriter ? &*rewriter : nullptr);
  http::ExchangeOptions xo = ExchangeOptionsFor(c.rt, c.lr, c.rule, c.client_ip, c.client_keep);
  if (redirect) {
    xo.stall_check = opts.redirect_after;
    xo.stall_recheck = opts.scrape_interval;
  }

  auto& running = metrics.model_running.With({c.model_label});
  running.Inc();
  metrics.active_requests.Inc();
  auto out = co_await http::ProxyExchange(c.socket, c.req, ledger.candidates(), tls_loop->pool,
                                          tls_loop->deadlines, xo, hooks);
  metrics.active_requests.Dec();
  running.Dec();

  const bool success = out.completed && out.status / 100 == 2;
  const auto reported = ledger.usage();
  ledger.Finish(success, reported);
  RecordPoolCall(c, out, ledger.dispatched(), ledger.dispatched_at(), reported);
  co_return out.keep_client_alive;
}

void Gateway::Impl::RecordPoolCall(PoolCall& c, const http::ExchangeOutcome& out,
                                   const std::string& dispatched, TimeNs dispatched_at,
                                   const std::optional<Usage>& reported) {
  const std::string& model = c.model_label;
  const std::string& target = c.target_label;
  const bool success = out.completed && out.status / 100 == 2;
  const int status = out.status ? out.status : 499;  // 499: the client went away first
  if (out.candidate != -1) metrics.pool_picks.With({c.backend.id, dispatched}).Inc();
  const double seconds = ToSeconds(clock_.Now() - c.arrival);
  FinishDecision(std::move(*c.decision), status, dispatched, c.request_bytes, &out, dispatched_at,
                 reported, seconds, c.access);
  if (c.access) EmitAccess(*c.access, status);
  metrics.model_duration.With({model, target}).Observe(seconds);
  if (reported) {
    metrics.model_input_tokens.With({model, target})
        .Observe(static_cast<double>(reported->prompt_tokens));
    metrics.model_output_tokens.With({model, target})
        .Observe(static_cast<double>(reported->completion_tokens));
  }
  // A client that left mid-response is counted as 499, not as the status its head had.
  if (!success) {
    metrics.model_errors.With({model, target, out.client_gone ? "499" : std::to_string(status)})
        .Inc();
  }
  if (c.stats) c.stats->Record(status, seconds);
  if (!out.error.empty() && status >= 500) {
    spdlog::warn("{} {} -> {} ({}): {} ({})", c.req.method_string(), c.req.target(), c.backend.id,
                 dispatched, status, out.error);
  }
}

}  // namespace infergate::gateway
