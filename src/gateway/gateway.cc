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
    so.queue_order = opts.replica_queue_order;
    so.flush_interval = opts.replica_sync_flush;
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
    if (sig == config_signature_) {
      pending_signature_.clear();
    } else if (sig != pending_signature_) {
      pending_signature_ = std::move(sig);  // changed: reload once it has settled
    } else {
      config_signature_ = std::move(sig);
      pending_signature_.clear();
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
