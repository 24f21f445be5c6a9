#include "gateway/gateway.h"

#include "gateway/gateway_impl.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>
#include <unordered_set>

#include "config/loader.h"
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

thread_local LoopState* tls_loop = nullptr;

namespace {

std::string ClientAddress(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string();
}

// File modification signature of the configuration inputs (files, and directories'
// listings), to notice edits without inotify.
std::string ConfigSignature(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::string sig;
  auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      sig += p.string() + ":missing;";
      return;
    }
    sig += p.string() + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size) + ";";
  };
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(path, ec)) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) add(f);
    } else {
      add(path);
    }
  }
  return sig;
}

}  // namespace

// ------------------------------------------------------------------ configuration

Result<std::shared_ptr<const Runtime>> Gateway::Impl::LoadRuntime() {
  auto snapshot = config::LoadConfig(opts.config_paths);
  if (!snapshot.ok()) return snapshot.error();
  return BuildRuntime(*snapshot);
}

Result<std::shared_ptr<const Runtime>> Gateway::Impl::BuildRuntime(
    std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  auto rt = Runtime::Build(std::move(snapshot));
  if (!rt.ok()) return rt.error();
  Runtime& r = **rt;
  for (const auto& lr : r.listeners()) {
    r.stats[{lr.get(), nullptr, nullptr}] = &StatsFor(*lr, nullptr, nullptr);
    for (const auto& route : lr->routes.routes()) {
      const auto& rule = route->rule();
      r.stats[{lr.get(), &rule, nullptr}] = &StatsFor(*lr, &rule, nullptr);
      for (const auto& wb : rule.backends) {
        r.stats[{lr.get(), &rule, wb.backend.get()}] = &StatsFor(*lr, &rule, wb.backend.get());
      }
    }
  }
  if (auto st = PreparePools(r); !st.ok()) return st.error();
  return std::shared_ptr<const Runtime>(*rt);
}

Status Gateway::Impl::ReconcileListeners(const Runtime& rt) {
  // What to bind: an HTTP listener under its own key; the HTTPS listeners of one address
  // and port together, under the port's key (SNI tells them apart per connection).
  struct Wanted {
    std::string address;
    int port = 0;
    bool tls = false;
    std::vector<std::string> listener_keys;
  };
  std::map<std::string, Wanted> wanted;
  for (const auto& lr : rt.listeners()) {
    if (!opts.bind_listeners) break;
    const auto& l = *lr->listener;
    const bool tls = l.protocol == "HTTPS";
    const std::string key = tls ? Runtime::TlsPortKey(*lr) : lr->key;
    Wanted& w = wanted[key];
    w.address = l.bind_address;
    w.port = l.port;
    w.tls = tls;
    w.listener_keys.push_back(lr->key);
  }
  std::map<std::string, BoundListener> next;
  for (const auto& [key, w] : wanted) {
    auto it = bound_.find(key);
    if (it != bound_.end() && it->second.address == w.address &&
        it->second.configured_port == w.port) {
      next.emplace(key, it->second);
      continue;
    }
    // A listener that moved to another address or port is bound anew.
    http::SessionHandler handler;
    if (w.tls) {
      handler = [this, key](tcp::socket s) { return TlsSession(std::move(s), key); };
    } else {
      handler = [this, key](tcp::socket s) { return Session(std::move(s), key, std::string()); };
    }
    auto listener = loops.Listen(w.address, static_cast<unsigned short>(w.port), handler);
    if (!listener.ok()) {
      for (auto& [k, b] : next) {
        if (!bound_.count(k) || bound_[k].listener != b.listener) b.listener->Stop();
      }
      return Error{"listen: listener " + w.listener_keys.front() + ": " + listener.error().message};
    }
    next.emplace(key, BoundListener{w.address, w.port, *listener});
    const auto& ep = (*listener)->endpoint();
    for (const auto& lk : w.listener_keys) {
      std::printf("listening %s %s:%d\n", lk.c_str(), ep.address().to_string().c_str(), ep.port());
      spdlog::info("listener {} on {}:{}{}", lk, ep.address().to_string(), ep.port(),
                   w.tls ? " (HTTPS)" : "");
    }
    std::fflush(stdout);
  }
  for (auto& [k, b] : bound_) {
    auto it = next.find(k);
    if (it == next.end() || it->second.listener != b.listener) {
      spdlog::info("listener {} closed", k);
      b.listener->Stop();
    }
  }
  bound_ = std::move(next);
  return Ok();
}

Status Gateway::Impl::Start(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  auto rt = snapshot ? BuildRuntime(std::move(snapshot)) : LoadRuntime();
  if (!rt.ok()) return rt.error();
  config_signature_ = ConfigSignature(opts.config_paths);
  if (!opts.replica_sync_urls.empty()) {
    ReplicaSyncOptions so;
    so.urls = opts.replica_sync_urls;
    so.creds_file = opts.replica_sync_creds;
    so.replica_id = opts.replica_id;
    auto sync = ReplicaSync::Start(std::move(so), &clock_);
    if (!sync.ok()) return sync.error();
    replica_sync_ = std::move(*sync);
    registry.AddCollector([this](telemetry::MetricWriter& w) { replica_sync_->Collect(w); });
  }
  for (int i = 0; i < loops.size(); ++i) {
    asio::post(loops.loop(i), [s = loop_states[i].get()] { tls_loop = s; });
  }
  {
    std::lock_guard lock(reload_mu_);
    if (auto st = ReconcileListeners(**rt); !st.ok()) return st;
    CommitPools(**rt);
    Publish(*rt);
  }
  registry.AddCollector([this](telemetry::MetricWriter& w) { CollectPoolMetrics(w); });
  registry.AddCollector([this](telemetry::MetricWriter& w) { CollectEndpointMetrics(w); });
  if (!opts.access_log.empty()) {
    auto log = telemetry::AccessLog::Open(
        {.path = opts.access_log, .sample_rate = opts.access_log_sample});
    if (!log.ok()) return log.error();
    access_log = std::move(*log);
  }
  if (opts.admin_port >= 0) {
    auto admin = loops.Listen(opts.admin_address, static_cast<unsigned short>(opts.admin_port),
                              [this](tcp::socket s) { return AdminSession(std::move(s)); });
    if (!admin.ok()) return Error{"listen: admin: " + admin.error().message};
    admin_ = *admin;
    std::printf("admin %s:%d\n", admin_->endpoint().address().to_string().c_str(),
                admin_->endpoint().port());
    std::fflush(stdout);
  }
  metrics.config_ok.Set(1);
  loops.Start();
  started_ = true;
  ready_ = true;
  WatchConfigFiles();
  return Ok();
}

Status Gateway::Impl::Reload() {
  if (opts.config_paths.empty()) {
    spdlog::info("no configuration files to reload: the configuration comes from a provider");
    return Ok();
  }
  return Swap(LoadRuntime(), fmt::format("{} file(s)", opts.config_paths.size()));
}

Status Gateway::Impl::Apply(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  if (!started_) return Error{"the gateway is not started"};
  return Swap(BuildRuntime(std::move(snapshot)), "the provider");
}

Status Gateway::Impl::Swap(Result<std::shared_ptr<const Runtime>> rt, const std::string& what) {
  std::lock_guard lock(reload_mu_);
  if (!rt.ok()) {
    metrics.reloads.With({"failure"}).Inc();
    metrics.config_ok.Set(0);
    spdlog::error("configuration rejected; the previous one keeps serving:\n{}",
                  rt.error().message);
    return rt.error();
  }
  if (auto st = ReconcileListeners(**rt); !st.ok()) {
    metrics.reloads.With({"failure"}).Inc();
    metrics.config_ok.Set(0);
    spdlog::error("configuration rejected; the previous one keeps serving: {}", st.error().message);
    return st;
  }
  CommitPools(**rt);
  Publish(*rt);
  metrics.reloads.With({"success"}).Inc();
  metrics.config_ok.Set(1);
  spdlog::info("configuration reloaded from {}", what);
  return Ok();
}

void Gateway::Impl::WatchConfigFiles() {
  if (opts.reload_poll_interval <= 0) return;
  if (!watch_timer_) watch_timer_ = std::make_unique<asio::steady_timer>(loops.loop(0));
  watch_timer_->expires_after(std::chrono::nanoseconds(opts.reload_poll_interval));
  watch_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || draining_) return;
    std::string sig = ConfigSignature(opts.config_paths);
    if (sig != config_signature_) {
      config_signature_ = sig;
      spdlog::info("configuration files changed; reloading");
      (void)Reload();
    }
    WatchConfigFiles();
  });
}

void Gateway::Impl::HandleSignals() {
  if (!signals_) {
    signals_ = std::make_unique<asio::signal_set>(loops.loop(0), SIGTERM, SIGINT, SIGHUP);
  }
  signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading configuration");
      (void)Reload();
    } else {
      BeginShutdown();
    }
    HandleSignals();
  });
}

void Gateway::Impl::BeginShutdown() {
  if (grace_started_.exchange(true) || opts.shutdown_grace <= 0) {
    Shutdown();
    return;
  }
  // Readiness fails first; traffic keeps flowing while the load balancers in front (the
  // Service's endpoints, after the readiness probe fails) stop sending here.
  ready_ = false;
  spdlog::info("shutdown: /readyz fails now; serving for {:.1f}s more, then draining",
               ToSeconds(opts.shutdown_grace));
  asio::post(loops.loop(0), [this] {
    grace_timer_ = std::make_unique<asio::steady_timer>(loops.loop(0));
    grace_timer_->expires_after(std::chrono::nanoseconds(opts.shutdown_grace));
    grace_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Shutdown();
    });
  });
}

// ------------------------------------------------------------------ shutdown

void Gateway::Impl::Shutdown() {
  if (draining_.exchange(true)) return;
  ready_ = false;
  spdlog::info("draining: no new connections; waiting up to {:.0f}s for requests in flight",
               ToSeconds(opts.drain_timeout));
  {
    std::lock_guard lock(reload_mu_);
    for (auto& [k, b] : bound_) b.listener->Stop();
  }
  if (admin_) admin_->Stop();
  {
    // Scrapes stop while draining: requests waiting in a pool's queue are decided now.
    std::lock_guard lock(pools_mu_);
    for (auto& [id, pool] : pools_) pool->ReleaseQueue();
  }
  for (int i = 0; i < loops.size(); ++i) {
    asio::post(loops.loop(i), [s = loop_states[i].get()] {
      // Idle keep-alive connections end now; busy ones end after their response.
      for (auto* session : s->sessions) {
        if (session->idle) {
          boost::system::error_code ec;
          session->socket->cancel(ec);
        }
      }
      s->pool.Clear();
    });
  }
  asio::post(loops.loop(0), [this] {
    drain_deadline_ = SteadyClock().Now() + opts.drain_timeout;
    drain_timer_ = std::make_unique<asio::steady_timer>(loops.loop(0));
    CheckDrained();
  });
}

void Gateway::Impl::CheckDrained() {
  if (active_sessions_.load() == 0 || SteadyClock().Now() >= drain_deadline_) {
    if (active_sessions_.load() > 0) {
      spdlog::warn("drain timeout: closing {} connection(s) still open", active_sessions_.load());
    }
    loops.Stop();
    return;
  }
  drain_timer_->expires_after(std::chrono::milliseconds(20));
  drain_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) CheckDrained();
  });
}

int Gateway::Impl::Wait() {
  loops.Join();
  if (access_log) access_log->Close();  // every line of the drained requests is written
  return 0;
}

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

// ------------------------------------------------------------------ admin

asio::awaitable<void> Gateway::Impl::AdminSession(tcp::socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request<bhttp::string_body> req;
    auto [ec, n] =
        co_await bhttp::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    std::string_view path = req.target().substr(0, req.target().find('?'));
    if (path == "/metrics") {
      res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = registry.Expose();
    } else if (path == "/" || path == "/index.html") {
      res.set(bhttp::field::content_type, "text/html; charset=utf-8");
      res.body() = kLivePageHtml;
    } else if (path == "/api/live") {
      res.set(bhttp::field::content_type, "application/json");
      res.set(bhttp::field::cache_control, "no-store");
      res.body() = LiveJson();
    } else if (path == "/healthz") {
      res.body() = "ok\n";
    } else if (path == "/readyz") {
      if (!ready_) res.result(bhttp::status::service_unavailable);
      res.body() = ready_ ? "ready\n" : "not ready\n";
    } else {
      res.result(bhttp::status::not_found);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = http::OpenAIErrorBody(404, "unknown admin path");
    }
    res.prepare_payload();
    std::tie(ec, std::ignore) =
        co_await bhttp::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    if (ec || !req.keep_alive()) break;
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

// ------------------------------------------------------------------ Gateway

Gateway::Gateway(GatewayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Gateway::~Gateway() {
  impl_->loops.Stop();
  impl_->loops.Join();
}
Status Gateway::Start() { return impl_->Start(); }
int Gateway::Wait() { return impl_->Wait(); }
Status Gateway::Start(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  if (!snapshot) return Error{"no configuration snapshot"};
  return impl_->Start(std::move(snapshot));
}
Status Gateway::Reload() { return impl_->Reload(); }
Status Gateway::Apply(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  if (!snapshot) return Error{"no configuration snapshot"};
  return impl_->Apply(std::move(snapshot));
}
void Gateway::Shutdown() { impl_->Shutdown(); }
void Gateway::HandleSignals() { impl_->HandleSignals(); }

}  // namespace infergate::gateway
