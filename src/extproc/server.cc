#include "extproc/server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <deque>
#include <mutex>

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
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

  EppOptions options;
  gateway::Gateway gateway;
  std::unique_ptr<PoolPicker> picker;
  std::unique_ptr<ExtProcService> extproc;
  std::unique_ptr<HealthService> health;
  std::unique_ptr<grpc::Server> extproc_server;
  std::unique_ptr<grpc::Server> health_server;
};

EndpointPicker::EndpointPicker(EppOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

EndpointPicker::~EndpointPicker() {
  if (impl_->extproc_server) impl_->extproc_server->Shutdown();
  if (impl_->health_server) impl_->health_server->Shutdown();
}

Status EndpointPicker::Start() {
  auto& o = impl_->options;
  if (auto st = impl_->gateway.Start(); !st.ok()) return st;
  auto pool = ResolvePool(impl_->gateway, o.pool);
  if (!pool.ok()) return pool.error();
  o.picker.pool = *pool;
  impl_->picker = std::make_unique<PoolPicker>(impl_->gateway, o.picker);
  impl_->extproc = std::make_unique<ExtProcService>(*impl_->picker, o.session);
  PoolPicker* picker = impl_->picker.get();
  impl_->health = std::make_unique<HealthService>([picker] { return picker->Ready(); });

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
  if (auto st = build(impl_->extproc.get(), o.grpc_port, &impl_->extproc_server, "ext_proc");
      !st.ok()) {
    return st;
  }
  if (auto st = build(impl_->health.get(), o.health_port, &impl_->health_server, "health");
      !st.ok()) {
    return st;
  }
  spdlog::info("endpoint picker for InferencePool {}", o.picker.pool);
  return Ok();
}

int EndpointPicker::Wait() {
  const int code = impl_->gateway.Wait();
  // The gateway has stopped its loops: streams still open get the drain timeout.
  if (impl_->extproc_server) {
    impl_->extproc_server->Shutdown(std::chrono::system_clock::now() +
                                    std::chrono::nanoseconds(impl_->options.gateway.drain_timeout));
  }
  if (impl_->health_server) impl_->health_server->Shutdown();
  return code;
}

void EndpointPicker::Shutdown() { impl_->gateway.Shutdown(); }

void EndpointPicker::HandleSignals() { impl_->gateway.HandleSignals(); }

}  // namespace infergate::extproc
