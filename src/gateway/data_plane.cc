// The gateway's data plane: client sessions (plain and TLS), routing a request to its
// rule and backend, and proxying to a Service backend (InferencePool requests continue in
// pool_request.cc).
#include <spdlog/spdlog.h>

#include "gateway/gateway_impl.h"
#include "gateway/request_view.h"
#include "gateway/runtime.h"
#include "http/deadline_list.h"
#include "http/event_loops.h"
#include "http/headers.h"
#include "http/message_read.h"
#include "http/openai_error.h"
#include "http/proxy_exchange.h"
#include "http/request_intake.h"
#include "http/tls_server.h"
#include "http/upstream_pool.h"
#include "routing/filters.h"
#include "telemetry/metrics.h"

namespace infergate::gateway {

namespace {

std::string ClientAddress(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}

}  // namespace

// ------------------------------------------------------------------ data plane

RequestStats& Gateway::Impl::StatsFor(const ListenerRuntime& lr, const config::RouteRule* rule,
                                      const config::Backend* backend) {
  // Keyed by label values, so series survive reloads that keep the same names.
  std::tuple<std::string, std::string, std::string> key{lr.key, rule ? rule->Id() : std::string(),
                                                        backend ? backend->id : std::string()};
  std::lock_guard lock(stats_mu_);
  auto it = stats_.find(key);
  if (it == stats_.end()) {
    it = stats_
             .emplace(key, std::make_unique<RequestStats>(metrics.requests, metrics.durations,
                                                          std::get<0>(key), std::get<1>(key),
                                                          std::get<2>(key)))
             .first;
  }
  return *it->second;
}

asio::awaitable<void> Gateway::Impl::TlsSession(tcp::socket socket, std::string port_key) {
  std::shared_ptr<const http::TlsServerContext> context;
  std::vector<std::string> listener_keys;
  {
    const auto rt = runtime();
    const TlsPortRuntime* tls = rt->FindTlsPort(port_key);
    if (!tls || !tls->context) co_return;  // the port left the configuration
    context = tls->context;
    listener_keys = tls->listener_keys;
  }
  std::string client_ip = ClientAddress(socket);
  http::PlainSessionHandler serve = [this, keys = std::move(listener_keys), client_ip](
                                        tcp::socket plain, int site) {
    return Session(std::move(plain), keys[static_cast<std::size_t>(site)], client_ip);
  };
  // The call and its by-value arguments complete before the co_await: GCC 12 mishandles
  // temporaries that live across a suspension.
  auto serving = http::ServeTls(std::move(socket), std::move(context), opts.tls_handshake_timeout,
                                std::move(serve));
  co_await std::move(serving);
}

asio::awaitable<void> Gateway::Impl::Session(tcp::socket socket, std::string listener_key,
                                             std::string peer_ip) {
  LoopState& loop = *tls_loop;
  SessionState state(&socket);
  loop.sessions.insert(&state);
  ++active_sessions_;
  auto& connections = metrics.connections.With({listener_key});
  connections.Inc();
  const std::string client_ip = peer_ip.empty() ? ClientAddress(socket) : std::move(peer_ip);
  boost::system::error_code nb_ec;
  socket.non_blocking(true, nb_ec);  // the proxy's writes try a direct send first
  beast::flat_buffer buffer;

  std::shared_ptr<const Runtime> rt;
  std::uint64_t generation = 0;
  const ListenerRuntime* lr = nullptr;
  for (;;) {
    if (draining_) break;
    // The listener's routes are looked up again only when the configuration changed.
    if (const auto g = runtime_generation(); !rt || g != generation) {
      generation = g;
      rt = runtime();
      lr = rt->FindListener(listener_key);
    }
    if (!lr) break;  // the listener left the configuration
    http::RequestParser parser;
    const std::uint64_t body_limit = lr->listener->body_limit;
    http::ApplyIntakeLimits(parser,
                            {static_cast<std::uint32_t>(opts.max_header_bytes), body_limit});
    // An idle keep-alive connection gets the idle timeout; once bytes of a request are
    // here, the read timeout. Draining closes connections that are idle.
    state.idle = buffer.size() == 0;
    state.deadline_fired = false;
    loop.deadlines.Add(
        &state.deadline,
        loop.deadlines.Now() + (state.idle ? opts.idle_timeout : opts.request_read_timeout));
    boost::system::error_code ec;
    ec = co_await http::ReadMessage(socket, buffer, parser, http::ReadUntil::kHeader,
                                    &http::HeadHasObsFold);
    state.idle = false;
    const TimeNs arrival = SteadyClock().Now();
    int reject = 0;
    std::string reject_message;
    if (!ec) {
      loop.deadlines.Add(&state.deadline, arrival + opts.request_read_timeout);
      http::HeadAnswer expect = http::AnswerHead(parser, body_limit);
      reject = expect.reject;
      reject_message = std::move(expect.message);
      if (!reject) http::NormalizeAbsoluteForm(parser.get());
      if (expect.send_continue) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        std::tie(ec, std::ignore) = co_await asio::async_write(socket, asio::buffer(kContinue),
                                                               asio::as_tuple(asio::use_awaitable));
      }
      if (!ec && !reject && !parser.is_done()) {
        std::tie(ec, std::ignore) =
            co_await bhttp::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      }
    }
    loop.deadlines.Remove(&state.deadline);
    if (ec && !reject) {
      reject = http::RejectStatusForReadError(
          ec, std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()),
          opts.max_header_bytes);
      if (reject == 0) {
        // A request that started but did not arrive in time gets a 408; a connection that
        // closed or idled out between requests just ends.
        if (state.deadline_fired && buffer.size() > 0 && !draining_) reject = 408;
        if (!reject) break;
      }
    }
    if (reject) {
      if (reject_message.empty()) reject_message = http::RejectMessage(reject, ec, body_limit);
      rt->FindStats(lr, nullptr, nullptr)->Record(reject, ToSeconds(SteadyClock().Now() - arrival));
      // The rest of the request was not read: the connection cannot continue.
      co_await http::WriteErrorResponse(socket, reject, reject_message, 11, false);
      break;
    }
    bool keep = co_await HandleRequest(socket, parser.get(), *rt, *lr, arrival, client_ip);
    if (!keep) break;
  }

  loop.deadlines.Remove(&state.deadline);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
  connections.Dec();
  loop.sessions.erase(&state);
  --active_sessions_;
}

asio::awaitable<bool> Gateway::Impl::HandleRequest(tcp::socket& socket, http::Request& req,
                                                   const Runtime& rt, const ListenerRuntime& lr,
                                                   TimeNs arrival, const std::string& client_ip) {
  const bool client_keep = http::KeepAlive(req) && !draining_;
  const unsigned version = req.version();
  const RequestHeaderGetter<http::Request> header{&req};
  const routing::RequestView view = MakeRequestView(req, header);
  if (!lr.pools.empty() && view.path == "/v1/models" && req.method() == bhttp::verb::get) {
    // The models this listener's pools serve: the names their configuration gives and
    // the ones their servers list.
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = ModelsJson(lr.pools, [&rt](const config::Backend* pool) {
      const PoolState* state = rt.FindPool(pool);
      return state ? state->ServedModels() : std::vector<std::string>{};
    });
    res.keep_alive(client_keep);
    res.prepare_payload();
    auto [ec, n] = co_await bhttp::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    co_return !ec && client_keep;
  }
  const routing::Route* route = lr.routes.Match(view);
  if (!route) {
    rt.FindStats(&lr, nullptr, nullptr)->Record(404, ToSeconds(SteadyClock().Now() - arrival));
    AccessEntry access_entry;
    if (auto* access = BeginAccess(access_entry, req, lr, nullptr, nullptr, arrival, client_ip)) {
      access->dropped = "no_route";
      EmitAccess(*access, 404);
    }
    bool ok = co_await http::WriteErrorResponse(socket, 404, "no route for this request", version,
                                                client_keep);
    co_return ok&& client_keep;
  }
  const config::RouteRule& rule = route->rule();
  if (!rule.unsupported.empty()) {
    // Serving the rule without what it asks for could send requests where they must not
    // go: the Gateway API's answer is a 500.
    rt.FindStats(&lr, &rule, nullptr)->Record(500, ToSeconds(SteadyClock().Now() - arrival));
    const std::string message =
        "route rule " + rule.Id() + " is not served: " + rule.unsupported.front();
    bool ok = co_await http::WriteErrorResponse(socket, 500, message, version, client_keep);
    co_return ok&& client_keep;
  }
  if (rule.redirect) {
    const std::string_view scheme = lr.listener->protocol == "HTTPS" ? "https" : "http";
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(rule.redirect->status_code),
                                            version};
    res.set(bhttp::field::location,
            routing::RedirectLocation(*rule.redirect, scheme, view.host, view.path, view.query,
                                      routing::MatchedPrefix(rule, view.path)));
    res.keep_alive(client_keep);
    res.prepare_payload();
    rt.FindStats(&lr, &rule, nullptr)
        ->Record(rule.redirect->status_code, ToSeconds(SteadyClock().Now() - arrival));
    auto [ec, n] = co_await bhttp::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    co_return !ec && client_keep;
  }
  const config::Backend* backend = route->PickBackend();
  if (!backend) {
    rt.FindStats(&lr, &rule, nullptr)->Record(500, ToSeconds(SteadyClock().Now() - arrival));
    bool ok = co_await http::WriteErrorResponse(socket, 500, "route has no usable backend", version,
                                                client_keep);
    co_return ok&& client_keep;
  }
  if (const auto& rw = rule.url_rewrite) {
    // The views into the target end here: the new target is built before it is set.
    if (rw->path) {
      std::string rewritten =
          routing::RewritePath(*rw->path, view.path, routing::MatchedPrefix(rule, view.path));
      if (!view.query.empty()) {
        rewritten += '?';
        rewritten += view.query;
      }
      req.target(rewritten);
    }
    if (rw->hostname) req.set(bhttp::field::host, *rw->hostname);
  }
  if (!route->mirrors().empty()) {
    MirrorRequest(socket.get_executor(), rt, route->rule(), req, client_ip);
  }
  if (backend->kind == config::BackendKind::kInferencePool) {
    co_return co_await HandlePoolRequest(socket, req, rt, lr, rule, *backend, arrival, client_ip);
  }
  co_return co_await ProxyPlain(socket, req, rt, lr, rule, *backend, arrival, client_ip);
}

http::ExchangeOptions Gateway::Impl::ExchangeOptionsFor(const Runtime& rt,
                                                        const ListenerRuntime& lr,
                                                        const config::RouteRule& rule,
                                                        const std::string& client_ip,
                                                        bool client_keep) const {
  http::ExchangeOptions xo;
  // Hop-by-hop fields, client framing and client-sent x-gateway-* / x-llm-d-* routing
  // headers are dropped on the way out (never obeyed); the rule's header filter applies.
  xo.edits.forwarded_for = client_ip;
  const RuleEdits* edits = rt.FindEdits(&rule);
  if (edits) {
    xo.edits.set = edits->set;
    xo.edits.add = edits->add;
    xo.edits.remove = edits->remove;
  }
  xo.timeout = rule.timeouts.request.value_or(lr.listener->request_timeout);
  ApplyRuleToExchange(rule, edits, &xo);  // backendRequest, ResponseHeaderModifier
  xo.max_attempts = opts.max_attempts;
  xo.client_keep_alive = client_keep;
  return xo;
}

asio::awaitable<bool> Gateway::Impl::ProxyPlain(tcp::socket& socket, http::Request& req,
                                                const Runtime& rt, const ListenerRuntime& lr,
                                                const config::RouteRule& rule,
                                                const config::Backend& backend_ref, TimeNs arrival,
                                                const std::string& client_ip) {
  const config::Backend* backend = &backend_ref;
  const bool client_keep = http::KeepAlive(req) && !draining_;
  const BackendRuntime* br = rt.FindBackend(backend);
  AccessEntry access_entry;
  AccessEntry* access = BeginAccess(access_entry, req, lr, &rule, backend, arrival, client_ip);
  std::array<http::UpstreamCandidate, 16> candidate_storage;
  const std::span<http::UpstreamCandidate> candidates(
      candidate_storage.data(),
      br ? br->RoundRobin(
               std::span(candidate_storage.data(), static_cast<std::size_t>(opts.max_attempts)))
         : 0);

  const http::ExchangeOptions xo = ExchangeOptionsFor(rt, lr, rule, client_ip, client_keep);
  // One pointer of capture keeps the hook inside std::function's inline storage.
  struct AttemptLog {
    GatewayMetrics* metrics;
    const config::Backend* backend;
    std::span<http::UpstreamCandidate> candidates;
  } log{&metrics, backend, candidates};
  http::ExchangeHooks hooks;
  hooks.on_attempt_failed = [log = &log](int i, const std::string& error, bool connect) {
    const std::string_view endpoint = log->candidates[i].id;
    (connect ? log->metrics->connect_errors : log->metrics->upstream_failures)
        .With({log->backend->id, endpoint})
        .Inc();
    spdlog::debug("upstream {} failed: {}", endpoint, error);
  };
  metrics.active_requests.Inc();
  auto out = co_await http::ProxyExchange(socket, req, candidates, tls_loop->pool,
                                          tls_loop->deadlines, xo, hooks);
  metrics.active_requests.Dec();
  int status = out.status ? out.status : 499;  // 499: the client went away first
  rt.FindStats(&lr, &rule, backend)->Record(status, ToSeconds(SteadyClock().Now() - arrival));
  if (access) {
    AccessOutcome(*access, out, candidates);
    EmitAccess(*access, status);
  }
  if (!out.error.empty() && status >= 500) {
    spdlog::warn("{} {} -> {}: {} ({})", req.method_string(), req.target(), backend->id, status,
                 out.error);
  }
  co_return out.keep_client_alive;
}
}  // namespace infergate::gateway
