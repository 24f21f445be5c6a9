#include "extproc/server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "gateway/gateway_impl.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace infergate::extproc {
namespace {

namespace health = ::grpc::health::v1;

// One ext_proc stream. Reads, writes and decisions arrive on different threads; all
// touch the session under core->mu (recursive: a decision made at once is delivered
// from inside Session::Admit, under the lock the read handler holds).
class StreamReactor final
    : public grpc::ServerBidiReactor<pb::ProcessingRequest, pb::ProcessingResponse> {
 public:
  StreamReactor(Picker& picker, const SessionOptions& options)
      : picker_(picker), session_(options), core_(std::make_shared<Core>()) {
    core_->reactor = this;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(core_->mu);
    if (!ok) {
      // Envoy closed its side (after the exchange) or the stream broke.
      session_.OnStreamEnd();
      read_closed_ = true;
      FinishWhenIdle(session_.done() ? grpc::Status::OK
                                     : grpc::Status(grpc::StatusCode::CANCELLED,
                                                    "the stream ended before the exchange"));
      return;
    }
    Session::Step step = session_.OnRequest(in_);
    const bool admit = step.admit;
    Apply(std::move(step));
    if (admit) {
      std::weak_ptr<Core> weak = core_;
      session_.Admit(picker_, [weak](PickDecision d) {
        auto core = weak.lock();
        if (!core) return;
        std::lock_guard lock(core->mu);
        if (core->reactor != nullptr) core->reactor->OnDecided(std::move(d));
      });
    }
    if (!finish_pending_ && !finished_) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(core_->mu);
    writing_ = false;
    if (!ok) {
      session_.OnStreamEnd();
      out_.clear();
      FinishWhenIdle(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    out_.pop_front();
    Pump();
  }

  void OnCancel() override {
    std::lock_guard lock(core_->mu);
    session_.OnStreamEnd();
    out_.clear();
    FinishWhenIdle(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    {
      std::lock_guard lock(core_->mu);
      session_.OnStreamEnd();
      core_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Core {
    std::recursive_mutex mu;
    StreamReactor* reactor = nullptr;
  };

  void OnDecided(PickDecision d) { Apply(session_.OnDecision(std::move(d))); }

  void Apply(Session::Step step) {
    if (finish_pending_ || finished_) return;
    for (auto& r : step.replies) out_.push_back(std::move(r));
    if (step.error) {
      out_.clear();
      FinishWhenIdle(
          grpc::Status(static_cast<grpc::StatusCode>(step.error->grpc_code), step.error->message));
      return;
    }
    if (step.done) {
      FinishWhenIdle(grpc::Status::OK);
      return;
    }
    Pump();
  }

  void FinishWhenIdle(grpc::Status status) {
    if (finished_) return;
    if (!finish_pending_) {
      finish_pending_ = true;
      finish_status_ = std::move(status);
    }
    Pump();
  }

  void Pump() {
    if (writing_ || finished_) return;
    if (!out_.empty()) {
      writing_ = true;
      StartWrite(&out_.front());
      return;
    }
    if (finish_pending_) {
      finished_ = true;
      Finish(finish_status_);
    }
  }

  Picker& picker_;
  Session session_;
  std::shared_ptr<Core> core_;
  pb::ProcessingRequest in_;
  std::deque<pb::ProcessingResponse> out_;
  bool writing_ = false;
  bool read_closed_ = false;
  bool finish_pending_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

class ExtProcService final : public pb::ExternalProcessor::CallbackService {
 public:
  ExtProcService(Picker& picker, SessionOptions options) : picker_(picker), options_(options) {}
  grpc::ServerBidiReactor<pb::ProcessingRequest, pb::ProcessingResponse>* Process(
      grpc::CallbackServerContext*) override {
    return new StreamReactor(picker_, options_);
  }

 private:
  Picker& picker_;
  SessionOptions options_;
};

class HealthService final : public health::Health::CallbackService {
 public:
  explicit HealthService(std::function<bool()> ready) : ready_(std::move(ready)) {}
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const health::HealthCheckRequest* req,
                                  health::HealthCheckResponse* res) override {
    auto* reactor = ctx->DefaultReactor();
    const std::string& s = req->service();
    if (s.empty() || s == "liveness") {
      res->set_status(health::HealthCheckResponse::SERVING);
    } else if (s == "readiness" || s == "envoy.service.ext_proc.v3.ExternalProcessor") {
      res->set_status(ready_() ? health::HealthCheckResponse::SERVING
                               : health::HealthCheckResponse::NOT_SERVING);
    } else {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service " + s));
      return reactor;
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  std::function<bool()> ready_;
};

std::string HostPort(const std::string& address, int port) {
  return address.find(':') != std::string::npos ? "[" + address + "]:" + std::to_string(port)
                                                : address + ":" + std::to_string(port);
}

}  // namespace

class EndpointPicker::Impl {
 public:
  explicit Impl(EppOptions o) : options(std::move(o)), gateway(options.gateway) {}

  Status Start(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  void WaitSignal();
  // SIGTERM/SIGINT: gRPC readiness fails for the shutdown grace (serving goes on), then
  // Drain. A second signal drains at once.
  void BeginShutdown();
  // Stops taking streams; held requests are decided (picked or refused, each with an
  // answer on its stream); open streams get the drain timeout; then the gateway stops.
  void Drain();

  EppOptions options;
  bool from_provider = false;
  std::atomic<bool> not_ready{false};
  std::atomic<bool> grace_started{false};
  std::atomic<bool> draining{false};
  std::mutex drain_mu;
  std::thread drain_thread;  // guarded by drain_mu
  gateway::Gateway gateway;
  // On the gateway's first loop (so destroyed before it).
  std::unique_ptr<boost::asio::signal_set> signals;
  std::unique_ptr<boost::asio::steady_timer> grace_timer;
  std::unique_ptr<PoolPicker> picker;
  std::unique_ptr<ExtProcService> extproc;
  std::unique_ptr<HealthService> health;
  std::unique_ptr<grpc::Server> extproc_server;
  std::unique_ptr<grpc::Server> health_server;
};

EndpointPicker::EndpointPicker(EppOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

EndpointPicker::~EndpointPicker() {
  {
    std::lock_guard lock(impl_->drain_mu);
    if (impl_->drain_thread.joinable()) impl_->drain_thread.join();
  }
  if (impl_->extproc_server) impl_->extproc_server->Shutdown();
  if (impl_->health_server) impl_->health_server->Shutdown();
}

Status EndpointPicker::Start() { return impl_->Start(nullptr); }

Status EndpointPicker::Start(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  impl_->from_provider = true;
  return impl_->Start(std::move(snapshot));
}

Status EndpointPicker::Apply(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  return impl_->gateway.Apply(std::move(snapshot));
}

Status EndpointPicker::Impl::Start(std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  auto& o = options;
  if (auto st = snapshot ? gateway.Start(std::move(snapshot)) : gateway.Start(); !st.ok()) {
    return st;
  }
  auto pool = ResolvePool(gateway, o.pool);
  if (!pool.ok()) return pool.error();
  o.picker.pool = *pool;
  picker = std::make_unique<PoolPicker>(gateway, o.picker);
  extproc = std::make_unique<ExtProcService>(*picker, o.session);
  health = std::make_unique<HealthService>([this] { return !not_ready && picker->Ready(); });

  auto build = [&](grpc::Service* service, int port, std::unique_ptr<grpc::Server>* out,
                   const char* what) -> Status {
    grpc::ServerBuilder builder;
    int selected = 0;
    builder.AddListeningPort(HostPort(o.grpc_address, port), grpc::InsecureServerCredentials(),
                             &selected);
    builder.RegisterService(service);
    builder.SetMaxReceiveMessageSize(static_cast<int>(o.session.max_body_bytes + (1 << 20)));
    builder.SetMaxSendMessageSize(static_cast<int>(o.session.max_body_bytes + (1 << 20)));
    *out = builder.BuildAndStart();
    if (!*out || selected == 0) {
      return Error{std::string("listen: ") + what + " " + HostPort(o.grpc_address, port) +
                   ": cannot bind"};
    }
    std::printf("%s %s\n", what, HostPort(o.grpc_address, selected).c_str());
    std::fflush(stdout);
    spdlog::info("{} on {}", what, HostPort(o.grpc_address, selected));
    return Ok();
  };
  if (auto st = build(extproc.get(), o.grpc_port, &extproc_server, "ext_proc"); !st.ok()) {
    return st;
  }
  if (auto st = build(health.get(), o.health_port, &health_server, "health"); !st.ok()) {
    return st;
  }
  spdlog::info("endpoint picker for InferencePool {}", o.picker.pool);
  return Ok();
}

void EndpointPicker::Impl::WaitSignal() {
  signals->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      if (from_provider) {
        spdlog::info("SIGHUP: the configuration follows the API server; nothing to reload");
      } else {
        spdlog::info("SIGHUP: reloading configuration");
        (void)gateway.Reload();
      }
    } else {
      BeginShutdown();
    }
    WaitSignal();
  });
}

void EndpointPicker::Impl::BeginShutdown() {
  const TimeNs grace = options.gateway.shutdown_grace;
  if (grace_started.exchange(true) || grace <= 0) {
    Drain();
    return;
  }
  not_ready = true;
  spdlog::info("shutdown: gRPC readiness fails now; serving for {:.1f}s more, then draining",
               ToSeconds(grace));
  auto& loop = gateway.impl().loops.loop(0);
  boost::asio::post(loop, [this, &loop, grace] {
    grace_timer = std::make_unique<boost::asio::steady_timer>(loop);
    grace_timer->expires_after(std::chrono::nanoseconds(grace));
    grace_timer->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Drain();
    });
  });
}

void EndpointPicker::Impl::Drain() {
  if (draining.exchange(true)) return;
  not_ready = true;
  const TimeNs drain = options.gateway.drain_timeout;
  spdlog::info("draining: held requests are decided now; open streams have up to {:.0f}s",
               ToSeconds(drain));
  std::lock_guard lock(drain_mu);
  drain_thread = std::thread([this, drain] {
    // Decides the held requests, again while the server shuts down, so a stream admitted
    // just as draining began is not left waiting.
    std::atomic<bool> stop{false};
    std::thread releaser([&] {
      while (!stop.load()) {
        if (picker) picker->Drain();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    // No new streams from here; the open ones end on their own or at the deadline.
    if (extproc_server) {
      extproc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::nanoseconds(drain));
    }
    stop = true;
    releaser.join();
    gateway.Shutdown();
  });
}

int EndpointPicker::Wait() {
  const int code = impl_->gateway.Wait();
  {
    std::lock_guard lock(impl_->drain_mu);
    if (impl_->drain_thread.joinable()) impl_->drain_thread.join();
  }
  // Stopped otherwise (the loops ended): streams still open get the drain timeout.
  if (impl_->extproc_server) {
    impl_->extproc_server->Shutdown(std::chrono::system_clock::now() +
                                    std::chrono::nanoseconds(impl_->options.gateway.drain_timeout));
  }
  if (impl_->health_server) impl_->health_server->Shutdown();
  return code;
}

void EndpointPicker::Shutdown() { impl_->Drain(); }

void EndpointPicker::HandleSignals() {
  impl_->signals = std::make_unique<boost::asio::signal_set>(impl_->gateway.impl().loops.loop(0),
                                                             SIGTERM, SIGINT, SIGHUP);
  impl_->WaitSignal();
}

}  // namespace infergate::extproc
