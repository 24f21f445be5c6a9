// The InferencePool side of the gateway: pool states across reloads, scraping the pool's
// servers, the inference request path (model resolution, scheduling, rewriting, ledger
// updates) and RequestMirror copies.
#include <spdlog/spdlog.h>

#include <charconv>

#include <nlohmann/json.hpp>

#include "datalayer/engine_metrics.h"
#include "gateway/gateway_impl.h"
#include "gateway/openai_request.h"
#include "gateway/response_rewrite.h"
#include "http/headers.h"
#include "http/openai_error.h"
#include "http/peek.h"
#include "http/wire.h"

namespace infergate::gateway {
namespace {

using namespace asio::experimental::awaitable_operators;

constexpr std::size_t kMaxScrapeBody = 8 << 20;
constexpr std::size_t kMaxMirrorResponseBody = 1 << 20;
constexpr TimeNs kMirrorTimeout = 60 * kNanosPerSecond;

// One GET on a keep-alive connection to a pool server (connecting first if needed).
// Returns the body of a 200 response; anything else is an error and drops the connection.
// *connected is set once a connection is up; *kind says why it failed: a refused or
// reset connection is kUnreachable, an HTTP error kBadResponse (a timeout is Get's).
asio::awaitable<Result<std::string>> GetOnce(tcp::socket& socket, beast::flat_buffer& buffer,
                                             const tcp::endpoint& ep, std::string_view target,
                                             const std::string& host, bool* connected,
                                             ScrapeFailure* kind) {
  *kind = ScrapeFailure::kUnreachable;
  if (!socket.is_open()) {
    buffer.clear();
    auto [ec] = co_await socket.async_connect(ep, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return Error{"connect: " + ec.message()};
    socket.set_option(tcp::no_delay(true), ec);
  }
  *connected = true;
  std::string request = "GET ";
  request += target;
  request += " HTTP/1.1\r\nHost: ";
  request += host;
  request += "\r\nAccept: */*\r\nUser-Agent: infergate\r\n\r\n";
  auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request),
                                              asio::as_tuple(asio::use_awaitable));
  if (wec) co_return Error{"write: " + wec.message()};
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxScrapeBody);
  auto [rec, rn] =
      co_await bhttp::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
  if (rec) co_return Error{"read: " + rec.message()};
  auto& res = parser.get();
  if (!res.keep_alive()) {
    boost::system::error_code ignored;
    socket.close(ignored);
  }
  if (res.result_int() != 200) {
    *kind = ScrapeFailure::kBadResponse;
    co_return Error{"HTTP " + std::to_string(res.result_int())};
  }
  co_return std::move(res.body());
}

// GetOnce bounded by `timeout`; on any failure the connection is closed. A kept-alive
// connection that fails before an answer (the server closed it while idle) is retried
// once on a new one, within the same time. *kind: as GetOnce's, or kTimeout when the time
// ran out after the connection was up (the server is late, not down), kConnectTimeout
// when it ran out while connecting with at least 250 ms to do so (the backoff grows the
// timeout there within a few failures).
asio::awaitable<Result<std::string>> Get(tcp::socket& socket, beast::flat_buffer& buffer,
                                         const tcp::endpoint& ep, std::string_view target,
                                         const std::string& host, TimeNs timeout,
                                         ScrapeFailure* kind) {
  asio::steady_timer timer(socket.get_executor(), std::chrono::nanoseconds(timeout));
  bool connected = false;
  auto attempt = [&]() -> asio::awaitable<Result<std::string>> {
    const bool reused = socket.is_open();
    auto r = co_await GetOnce(socket, buffer, ep, target, host, &connected, kind);
    if (r.ok() || !reused || *kind != ScrapeFailure::kUnreachable) co_return r;
    boost::system::error_code ignored;
    socket.close(ignored);
    connected = false;
    co_return co_await GetOnce(socket, buffer, ep, target, host, &connected, kind);
  };
  auto result = co_await (attempt() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  Result<std::string> out = Error{"timed out"};
  if (result.index() == 0) {
    out = std::move(std::get<0>(result));
  } else {
    // A connection attempt says the host is silent only when it had a fair time: a short
    // timeout on a busy machine can expire before the connect's completion runs.
    constexpr TimeNs kConclusiveConnectTimeout = 250 * kNanosPerMilli;
    *kind = connected || timeout < kConclusiveConnectTimeout ? ScrapeFailure::kTimeout
                                                             : ScrapeFailure::kConnectTimeout;
    out = Error{connected ? "timed out waiting for the page" : "timed out connecting"};
  }
  if (!out.ok()) {
    boost::system::error_code ignored;
    socket.close(ignored);
  }
  co_return out;
}

// The ids of OpenAI's model list (vLLM lists served names and LoRA adapters).
std::optional<std::vector<std::string>> ParseModelList(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    return std::nullopt;
  }
  std::vector<std::string> ids;
  for (const auto& m : j["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string()) {
      ids.push_back(m["id"].get<std::string>());
    }
  }
  return ids;
}

// The pool name GIE's metrics use (the object name, without namespace).
std::string_view PoolName(std::string_view id) {
  auto slash = id.find('/');
  return slash == std::string_view::npos ? id : id.substr(slash + 1);
}

}  // namespace

// ------------------------------------------------------------------ pool states

Status Gateway::Impl::PreparePools(Runtime& rt) {
  std::lock_guard lock(pools_mu_);
  for (const auto& pool : rt.snapshot().pools) {
    auto settings = SettingsForPool(rt.snapshot(), *pool, opts.pipeline_parallel_size);
    if (!settings.ok()) return settings.error();
    auto it = pools_.find(pool->id);
    if (it != pools_.end() && it->second->settings() == *settings) {
      rt.pools[pool.get()] = it->second;
      continue;
    }
    auto state = PoolState::Create(pool->id, std::move(*settings), &clock_);
    if (!state.ok()) return state.error();
    (*state)->WithScheduler([&](Scheduler& s) { return visibility.InstallStageTimer(s); });
    rt.pools[pool.get()] = std::move(*state);
  }
  return Ok();
}

void Gateway::Impl::CommitPools(const Runtime& rt) {
  std::lock_guard lock(pools_mu_);
  std::map<std::string, std::shared_ptr<PoolState>> next;
  for (const auto& [backend, state] : rt.pools) {
    next[backend->id] = state;
    for (auto& target : state->SetEndpoints(*backend)) {
      const int loop =
          static_cast<int>(scrape_spread_++ % static_cast<std::uint64_t>(loops.size()));
      asio::co_spawn(loops.loop(loop), ScrapeLoop(state, std::move(target)), asio::detached);
    }
  }
  for (auto& [id, state] : pools_) {
    auto it = next.find(id);
    if (it == next.end() || it->second != state) state->StopScraping();
  }
  pools_ = std::move(next);
  if (replica_sync_) replica_sync_->SetPools(pools_);
}

// One scrape in flight per endpoint: the next starts an interval after the previous one
// started, and each is bounded by a timeout shorter than the interval. While an endpoint
// fails (late, refusing, answering badly) the interval doubles up to kMaxScrapeBackoff
// times opts.scrape_interval, but never past 1.25 opts.scrape_timeout, and the timeout
// grows with it (to at most opts.scrape_timeout), so a server that answers its page late
// is asked less often and given longer; the first success restores both. Each failure is
// reported with its kind (datalayer/scrape_state.h): only refused connections and
// unanswered connection attempts make the endpoint unreachable.
asio::awaitable<void> Gateway::Impl::ScrapeLoop(std::shared_ptr<PoolState> pool,
                                                std::shared_ptr<ScrapeTarget> target) {
  constexpr TimeNs kMaxScrapeBackoff = 32;
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(target->ip, ec);
  if (ec) co_return;
  const tcp::endpoint ep(address, target->port);
  const std::string host = target->id;
  tcp::socket metrics_socket(ex), models_socket(ex);
  beast::flat_buffer metrics_buffer, models_buffer;
  asio::steady_timer timer(ex);
  auto& ok_count = metrics.scrapes.With({pool->id(), "success"});
  auto& failed_count = metrics.scrapes.With({pool->id(), "failure"});
  const TimeNs base_interval = std::max<TimeNs>(opts.scrape_interval, kNanosPerMilli);
  const TimeNs max_interval = std::max(
      base_interval,
      std::min(base_interval * kMaxScrapeBackoff, opts.scrape_timeout + opts.scrape_timeout / 4));
  TimeNs interval = base_interval;
  TimeNs next_models = 0;
  EngineKind engine = EngineKind::kAuto;
  int llamacpp_slots = 0;  // from /props or /slots
  while (!target->stop && !draining_) {
    const TimeNs started = clock_.Now();
    const TimeNs timeout = std::min(opts.scrape_timeout, interval - interval / 10);
    ScrapeFailure kind = ScrapeFailure::kUnreachable;
    auto body = co_await Get(metrics_socket, metrics_buffer, ep, "/metrics", host, timeout, &kind);
    if (target->stop) break;
    bool ok = false;
    if (body.ok()) {
      // Parsed outside the pool's lock; only the recording takes it.
      auto parsed = ExtractEndpointMetrics(*body);
      if (parsed.ok()) {
        engine = parsed->engine;
        ApplyLlamacppSlots(*parsed, llamacpp_slots);
        // Fresh metrics may open room for queued requests.
        pool->UpdateScheduler(
            [&](Scheduler& s) { return s.ReportMetrics(target->id, started, std::move(*parsed)); });
        ok_count.Inc();
        ok = true;
      } else {
        pool->UpdateScheduler([&](Scheduler& s) {
          return s.ReportScrapeFailure(target->id, started, parsed.error().message,
                                       ScrapeFailure::kBadResponse);
        });
        failed_count.Inc();
      }
    } else {
      // A failure may leave nothing reachable: queued requests are then decided at once.
      pool->UpdateScheduler([&](Scheduler& s) {
        return s.ReportScrapeFailure(target->id, started, body.error().message, kind);
      });
      failed_count.Inc();
      spdlog::debug("scrape {} of pool {}: {} ({})", target->id, pool->id(), body.error().message,
                    ScrapeFailureName(kind));
    }
    interval = ok ? base_interval : std::min(max_interval, interval * 2);
    if (started >= next_models) {
      auto list = co_await Get(models_socket, models_buffer, ep, "/v1/models", host,
                               opts.scrape_timeout, &kind);
      std::optional<std::vector<std::string>> ids;
      if (list.ok()) ids = ParseModelList(*list);
      if (ids) pool->SetServedModels(target->id, std::move(*ids));
      if (engine == EngineKind::kLlamacpp) {
        // The slot count turns llama.cpp's busy slots into a load fraction.
        auto props = co_await Get(models_socket, models_buffer, ep, "/props", host,
                                  opts.scrape_timeout, &kind);
        Result<int> slots = props.ok() ? ParseLlamacppSlots(*props) : Result<int>(props.error());
        if (!slots.ok()) {
          auto list_slots = co_await Get(models_socket, models_buffer, ep, "/slots", host,
                                         opts.scrape_timeout, &kind);
          if (list_slots.ok()) slots = ParseLlamacppSlots(*list_slots);
        }
        if (slots.ok()) llamacpp_slots = *slots;
      }
      next_models = started + (ids ? opts.models_interval : kNanosPerSecond);
    }
    timer.expires_at(
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(started + interval)));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Gateway::Impl::CollectPoolMetrics(telemetry::MetricWriter& w) {
  auto rt = runtime();
  if (!rt || rt->pools.empty()) return;
  struct Row {
    std::string name;
    PoolStatus summary;
    std::vector<std::pair<std::string, double>> per_pod_queue;
    std::vector<EndpointStatus> endpoints;
  };
  std::vector<Row> rows;
  for (const auto& [backend, state] : rt->pools) {
    Row row{std::string(PoolName(backend->id)), {}, {}, {}};
    std::vector<EndpointStatus> endpoints;
    state->WithScheduler([&](Scheduler& s) {
      row.summary = s.Summary();
      endpoints = s.Endpoints();
      return 0;
    });
    for (const auto& e : endpoints) {
      std::string pod = e.id;
      for (const auto& ep : backend->endpoints) {
        if (ep.id == e.id) pod = ep.pod_name;
      }
      row.per_pod_queue.emplace_back(std::move(pod), e.waiting);
    }
    row.endpoints = std::move(endpoints);
    rows.push_back(std::move(row));
  }
  w.Header("inference_pool_average_kv_cache_utilization",
           "Average KV cache use of the pool's endpoints with fresh metrics.", "gauge");
  for (const auto& r : rows) {
    w.Sample("inference_pool_average_kv_cache_utilization", {{"name", r.name}},
             r.summary.average_kv_usage);
  }
  w.Header("inference_pool_average_queue_size",
           "Average waiting queue of the pool's endpoints with fresh metrics.", "gauge");
  for (const auto& r : rows) {
    w.Sample("inference_pool_average_queue_size", {{"name", r.name}}, r.summary.average_queue);
  }
  w.Header("inference_pool_ready_pods", "Ready endpoints of the pool.", "gauge");
  for (const auto& r : rows) {
    w.Sample("inference_pool_ready_pods", {{"name", r.name}}, r.summary.ready);
  }
  w.Header("inference_pool_per_pod_queue_size", "Waiting queue of each pool endpoint.", "gauge");
  for (const auto& r : rows) {
    for (const auto& [pod, q] : r.per_pod_queue) {
      w.Sample("inference_pool_per_pod_queue_size", {{"name", r.name}, {"model_server_pod", pod}},
               q);
    }
  }
  w.Header("infergate_pool_inflight_requests",
           "Requests the gateway dispatched to the pool that have not finished.", "gauge");
  for (const auto& r : rows) {
    w.Sample("infergate_pool_inflight_requests", {{"name", r.name}},
             static_cast<double>(r.summary.inflight));
  }
  w.Header("infergate_pool_queued_requests",
           "Requests waiting in the gateway's queue for the pool, by priority band.", "gauge");
  for (const auto& [backend, state] : rt->pools) {
    std::map<int, std::size_t> bands;
    state->ForEachQueuedFlow(
        [&](int priority, std::string_view, std::size_t n) { bands[priority] += n; });
    const std::string name(PoolName(backend->id));
    if (bands.empty())
      w.Sample("infergate_pool_queued_requests", {{"name", name}, {"priority", "0"}}, 0);
    for (const auto& [priority, n] : bands) {
      w.Sample("infergate_pool_queued_requests",
               {{"name", name}, {"priority", std::to_string(priority)}}, static_cast<double>(n));
    }
  }
  w.Header("infergate_pool_saturated", "1 when the pool's saturation detector says full.", "gauge");
  for (const auto& r : rows) {
    w.Sample("infergate_pool_saturated", {{"name", r.name}}, r.summary.saturated ? 1 : 0);
  }
  // Scrape health per endpoint: late (age grows, endpoint still reachable) versus down.
  w.Header("infergate_pool_reachable_endpoints",
           "Ready endpoints that can be reached and have metrics, fresh or late.", "gauge");
  for (const auto& r : rows) {
    w.Sample("infergate_pool_reachable_endpoints", {{"name", r.name}}, r.summary.reachable);
  }
  w.Header("infergate_pool_endpoint_metrics_age_seconds",
           "Age of each endpoint's last good metrics (absent before the first).", "gauge");
  for (const auto& r : rows) {
    for (const auto& e : r.endpoints) {
      if (e.metrics_age == kNever) continue;
      w.Sample("infergate_pool_endpoint_metrics_age_seconds",
               {{"name", r.name}, {"endpoint", e.id}}, ToSeconds(e.metrics_age));
    }
  }
  w.Header("infergate_pool_endpoint_reachable",
           "1 when the endpoint can be reached (a late metrics page does not change it).", "gauge");
  for (const auto& r : rows) {
    for (const auto& e : r.endpoints) {
      w.Sample("infergate_pool_endpoint_reachable", {{"name", r.name}, {"endpoint", e.id}},
               e.reachable ? 1 : 0);
    }
  }
  w.Header("infergate_pool_endpoint_scrape_failures_total",
           "Failed scrapes of each endpoint, by reason (unreachable, connect-timeout, timeout, "
           "bad-response).",
           "counter");
  for (const auto& r : rows) {
    for (const auto& e : r.endpoints) {
      for (int k = 0; k < kScrapeFailureKinds; ++k) {
        w.Sample("infergate_pool_endpoint_scrape_failures_total",
                 {{"name", r.name},
                  {"endpoint", e.id},
                  {"reason", std::string(ScrapeFailureName(static_cast<ScrapeFailure>(k)))}},
                 static_cast<double>(e.scrape_failures[k]));
      }
    }
  }
}

// ------------------------------------------------------------------ mirroring

namespace {

// Sends one mirror copy and discards the answer. Runs detached on the loop that made it.
asio::awaitable<void> SendMirror(http::UpstreamPool* pool, LoopState* loop,
                                 http::UpstreamCandidate target, std::string head, std::string body,
                                 telemetry::Counter* sent, telemetry::Counter* failed) {
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           std::chrono::nanoseconds(kMirrorTimeout));
  auto exchange = [&]() -> asio::awaitable<bool> {
    auto conn = co_await pool->Acquire(target.endpoint);
    if (!conn.ok()) co_return false;
    auto c = std::move(*conn);
    ++c->requests;
    const std::array<asio::const_buffer, 2> bytes{asio::buffer(head), asio::buffer(body)};
    auto [wec, wn] =
        co_await asio::async_write(c->socket, bytes, asio::as_tuple(asio::use_awaitable));
    if (wec) co_return false;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxMirrorResponseBody);
    auto [rec, rn] = co_await bhttp::async_read(c->socket, c->buffer, parser,
                                                asio::as_tuple(asio::use_awaitable));
    if (rec) co_return false;
    pool->Release(std::move(c), parser.get().keep_alive());
    co_return true;
  };
  auto result = co_await (exchange() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  const bool ok = result.index() == 0 && std::get<0>(result);
  (ok ? sent : failed)->Inc();
  --loop->mirrors_in_flight;
}

}  // namespace

void Gateway::Impl::MirrorRequest(asio::any_io_executor ex, const Runtime& rt,
                                  const config::RouteRule& rule, const http::Request& req,
                                  const std::string& client_ip) {
  LoopState* loop = tls_loop;
  for (const auto& m : rule.mirrors) {
    auto* counter = rt.MirrorCounter(&m);
    if (!counter || !m.backend || m.denominator == 0) continue;
    // Exactly numerator of every denominator requests, spread evenly.
    const std::uint64_t n = counter->fetch_add(1, std::memory_order_relaxed);
    if ((n + 1) * m.numerator / m.denominator == n * m.numerator / m.denominator) continue;
    const BackendRuntime* br = rt.FindBackend(m.backend.get());
    http::UpstreamCandidate target;
    if (!br || br->RoundRobin(std::span(&target, 1)) == 0) {
      metrics.mirrors.With({m.backend->id, "failed"}).Inc();
      continue;
    }
    if (loop->mirrors_in_flight >= opts.max_mirrors_in_flight) {
      // A slow or dead mirror must not pile up work: the copy is dropped, not queued.
      metrics.mirrors.With({m.backend->id, "dropped"}).Inc();
      continue;
    }
    std::string head;
    http::RequestHeadEdits edits;
    edits.forwarded_for = client_ip;
    http::AppendUpstreamRequestHead(head, req.base(), req.body().size(), edits);
    ++loop->mirrors_in_flight;
    asio::co_spawn(ex,
                   SendMirror(&loop->pool, loop, target, std::move(head), req.body(),
                              &metrics.mirrors.With({m.backend->id, "sent"}),
                              &metrics.mirrors.With({m.backend->id, "failed"})),
                   asio::detached);
  }
}

}  // namespace infergate::gateway
