#include "extproc/picker.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <mutex>
#include <optional>

#include "gateway/classify.h"
#include "gateway/gateway_impl.h"
#include "gateway/openai_request.h"
#include "gateway/response_rewrite.h"

namespace infergate::extproc {
namespace {

using gateway::PoolState;

const config::Backend* FindPoolBackend(const gateway::Runtime& rt, const std::string& id) {
  for (const auto& p : rt.snapshot().pools) {
    if (p->id == id) return p.get();
  }
  return nullptr;
}

// One admitted request: owns the body and everything the scheduler's RequestInfo points
// into, the queue waiter, and the ledger handle from the decision to the end.
class PoolTicket final : public PickTicket, public std::enable_shared_from_this<PoolTicket> {
 public:
  PoolTicket(gateway::Gateway::Impl& gw, RequestHead head, std::string body, DecisionCallback done)
      : gw_(gw),
        m_(gw.metrics),
        head_(std::move(head)),
        body_(std::move(body)),
        done_(std::move(done)) {}
  ~PoolTicket() override { Abandon(); }

  // Classifies and admits; the decision is delivered now or by WaitQueued.
  void Start(const PickerOptions& options, std::uint64_t loop_index);

  void Served(std::string_view endpoint) override;
  void ResponseStarted(int status) override { status_ = status; }
  bool RewritesResponseBody() const override { return rewriter_.has_value(); }
  void ResponseBody(std::string_view piece, bool last, std::string& out) override;
  void Finish(bool success) override;
  void Abandon() override;

 private:
  enum class Phase : std::uint8_t { kAdmitting, kQueued, kDelivered, kEnded };
  // Delivers a refusal before the request reached the pool.
  void Refuse(int status, std::string reason, std::string message);
  // Delivers the pool's outcome (waiter.pick, or expiry) unless the stream is gone.
  void Deliver();
  static asio::awaitable<void> WaitQueued(std::shared_ptr<PoolTicket> self);
  void WakeWaiter();

  gateway::Gateway::Impl& gw_;
  gateway::GatewayMetrics& m_;
  RequestHead head_;
  std::string body_;
  DecisionCallback done_;

  std::shared_ptr<const gateway::Runtime> rt_;
  const config::Backend* backend_ = nullptr;
  std::shared_ptr<PoolState> pool_;
  gateway::OpenAIRequest parsed_;
  std::string target_;
  RequestInfo info_;
  std::vector<std::uint64_t> hashes_;
  gateway::QueueWaiter waiter_;
  bool queued_ = false;

  std::mutex mu_;  // phase_
  Phase phase_ = Phase::kAdmitting;

  TimeNs arrival_ = 0;
  TimeNs decide_start_ = 0;
  TimeNs queued_at_ = 0;
  TimeNs dispatched_at_ = 0;
  std::string dispatched_;
  int status_ = 0;
  bool first_byte_ = false;
  bool counted_running_ = false;
  gateway::UsageScanner usage_;
  std::optional<gateway::ModelNameRewriter> rewriter_;
};

void PoolTicket::Start(const PickerOptions& options, std::uint64_t loop_index) {
  arrival_ = gw_.clock().Now();
  rt_ = gw_.CurrentRuntime();
  backend_ = rt_ ? FindPoolBackend(*rt_, options.pool) : nullptr;
  if (backend_ != nullptr) {
    auto it = rt_->pools.find(backend_);
    if (it != rt_->pools.end()) pool_ = it->second;
  }
  if (!pool_) {
    return Refuse(503, "no_pool",
                  "the endpoint picker's pool " + options.pool + " is not in its configuration");
  }
  if (!head_.subset.empty()) info_.allowed_endpoints = &head_.subset;

  if (!head_.has_body) {
    // Not an inference call (a GET of the model list, a health check): any endpoint the
    // pool would pick for an empty prompt, without a ledger entry.
    pool_->WithScheduler([&](Scheduler& s) {
      s.Pick(info_, &waiter_.pick);
      return 0;
    });
    {
      std::lock_guard lock(mu_);
      phase_ = Phase::kEnded;
    }
    PickDecision d;
    if (waiter_.pick.picked()) {
      d.endpoints = waiter_.pick.endpoints;
    } else {
      d.status = 503;
      d.reason = std::string(PickReasonName(waiter_.pick.reason));
      d.message = "no endpoint of the pool can take the request";
    }
    auto done = std::move(done_);
    done(std::move(d));
    return;
  }

  auto parsed = gateway::ParseOpenAIRequest(body_);
  if (!parsed.ok()) return Refuse(400, "bad_request", parsed.error().message);
  parsed_ = std::move(*parsed);

  // Classification: the request path's own step (gateway/classify.h).
  auto header = [this](std::string_view name,
                       std::string_view legacy) -> std::optional<std::string_view> {
    if (auto v = head_.Find(name)) return v;
    return head_.Find(legacy);
  };
  const gateway::ClassifyInput in{
      parsed_.model, header(gateway::kObjectiveHeader, gateway::kLegacyObjectiveHeader),
      header(gateway::kFairnessHeader, gateway::kLegacyFairnessHeader)};
  const gateway::RequestClass cls = gateway::Classify(
      in, backend_->pool, [&](const void* owner, std::span<const std::uint32_t>) -> std::size_t {
        const auto* chooser = rt_->FindTargetChooser(owner);
        const int i = chooser ? chooser->Next() : 0;
        return i >= 0 ? static_cast<std::size_t>(i) : 0;
      });
  if (!cls.known() && !pool_->MayServe(parsed_.model)) {
    m_.model_errors.With({"other", "other", "404"}).Inc();
    return Refuse(404, "model_not_found", "The model `" + parsed_.model + "` does not exist.");
  }
  target_ = cls.target;
  if (cls.rewritten(parsed_.model)) {
    gateway::SpliceModel(body_, parsed_, target_);
    rewriter_.emplace(target_, parsed_.model);
  }

  info_.target_model = target_;
  info_.prompt = parsed_.prompt;
  info_.prompt_tokens = parsed_.prompt_tokens;
  info_.max_tokens = parsed_.max_tokens;
  info_.criticality = cls.criticality;
  info_.priority = cls.priority;
  if (cls.lora) info_.lora_adapter = target_;
  if (auto v = head_.Find(options.session_header)) info_.session_key = *v;
  info_.fairness_id = cls.fairness_id;

  decide_start_ = gw_.clock().Now();
  ComputeBlockHashes(target_, info_.prompt, pool_->prefix_options(), &hashes_);
  info_.block_hashes = &hashes_;

  const int loop = static_cast<int>(loop_index % static_cast<std::uint64_t>(gw_.loops.size()));
  waiter_.executor = gw_.loops.loop(loop).get_executor();
  waiter_.wake =
      std::make_shared<asio::steady_timer>(waiter_.executor, asio::steady_timer::time_point::max());
  waiter_.info = &info_;
  const TimeNs ttl = options.queue_timeout > 0 ? options.queue_timeout : kNever / 2;
  const bool queueing =
      options.flow_control && gw_.opts.flow_control && pool_->settings().flow_control;
  const gateway::Admission admission = pool_->PickOrQueue(waiter_, ttl, queueing);
  if (admission == gateway::Admission::kQueueFull) {
    m_.pool_rejections.With({backend_->id, "queue_full"}).Inc();
    m_.model_errors.With({parsed_.model, target_, "429"}).Inc();
    return Refuse(429, "queue_full", "the pool's request queue is full");
  }
  if (admission == gateway::Admission::kPicked) return Deliver();
  {
    std::lock_guard lock(mu_);
    phase_ = Phase::kQueued;
  }
  queued_ = true;
  queued_at_ = gw_.clock().Now();
  asio::co_spawn(waiter_.executor, WaitQueued(shared_from_this()), asio::detached);
}

asio::awaitable<void> PoolTicket::WaitQueued(std::shared_ptr<PoolTicket> self) {
  while (!self->pool_->Decided(self->waiter_)) {
    co_await self->waiter_.wake->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  self->Deliver();
}

void PoolTicket::WakeWaiter() {
  asio::post(waiter_.executor,
             [timer = waiter_.wake] { timer->expires_at(asio::steady_timer::time_point::min()); });
}

void PoolTicket::Refuse(int status, std::string reason, std::string message) {
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kEnded) return;
    phase_ = Phase::kEnded;
  }
  PickDecision d;
  d.status = status;
  d.reason = std::move(reason);
  d.message = std::move(message);
  auto done = std::move(done_);
  if (done) done(std::move(d));
}

void PoolTicket::Deliver() {
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kEnded) {
      // The stream went away while the decision was being made: release what it got.
      if (waiter_.handle != TokenLedger::kInvalidHandle) {
        pool_->UpdateScheduler([&](Scheduler& s) { return s.OnFailure(waiter_.handle); });
      }
      return;
    }
  }
  if (queued_)
    m_.queue_wait.With({backend_->id}).Observe(ToSeconds(gw_.clock().Now() - queued_at_));
  if (waiter_.expired) {
    m_.pool_rejections.With({backend_->id, "queue_ttl"}).Inc();
    m_.model_errors.With({parsed_.model, target_, "503"}).Inc();
    return Refuse(503, "queue_ttl", "the request waited in the pool's queue past its timeout");
  }
  const PickResult& pick = waiter_.pick;
  m_.scheduler_duration.Observe(ToSeconds(gw_.clock().Now() - decide_start_));
  m_.model_requests.With({parsed_.model, target_}).Inc();
  if (!pick.picked()) {
    const int status = pick.http_status();
    const std::string reason(PickReasonName(pick.reason));
    m_.pool_rejections.With({backend_->id, reason}).Inc();
    m_.model_errors.With({parsed_.model, target_, std::to_string(status)}).Inc();
    return Refuse(status, reason,
                  status == 429 ? "the pool is saturated; the request was shed"
                                : "no endpoint of the pool can take the request (" + reason + ")");
  }
  PickDecision d;
  d.endpoints = pick.endpoints;
  d.body = body_;
  dispatched_ = pick.endpoints.front();
  dispatched_at_ = gw_.clock().Now();
  DecisionCallback done;
  {
    std::lock_guard lock(mu_);
    if (phase_ == Phase::kEnded) {
      // Abandoned between the check above and now: Abandon saw no handle to release.
      pool_->UpdateScheduler([&](Scheduler& s) { return s.OnFailure(waiter_.handle); });
      return;
    }
    phase_ = Phase::kDelivered;
    done = std::move(done_);
    m_.model_running.With({parsed_.model}).Inc();
    m_.active_requests.Inc();
    counted_running_ = true;
  }
  done(std::move(d));
}

void PoolTicket::Served(std::string_view endpoint) {
  if (endpoint.empty() || endpoint == dispatched_) return;
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::kDelivered) return;
  }
  // A fallback served: the ledger moves the request to the endpoint that has it.
  pool_->UpdateScheduler([&](Scheduler& s) {
    s.OnFailure(waiter_.handle);
    waiter_.handle = s.Dispatch(info_, waiter_.pick, endpoint);
    return 0;
  });
  m_.upstream_failures.With({backend_->id, dispatched_}).Inc();
  dispatched_.assign(endpoint);
  dispatched_at_ = gw_.clock().Now();
}

void PoolTicket::ResponseBody(std::string_view piece, bool last, std::string& out) {
  if (!first_byte_ && !piece.empty()) {
    first_byte_ = true;
    bool live = false;
    {
      std::lock_guard lock(mu_);
      live = phase_ == Phase::kDelivered;
    }
    if (live) {
      // A request held for this prefill queue may go now.
      pool_->UpdateScheduler([&](Scheduler& s) { return s.OnFirstToken(waiter_.handle); });
      m_.pool_ttft.With({backend_->id, dispatched_})
          .Observe(ToSeconds(gw_.clock().Now() - dispatched_at_));
    }
  }
  usage_.Feed(piece);
  if (rewriter_) {
    rewriter_->Rewrite(piece, last, out);
  } else {
    out.append(piece);
  }
}

void PoolTicket::Finish(bool success) {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::kDelivered) return;
    phase_ = Phase::kEnded;
  }
  const auto reported = usage_.Result();
  pool_->UpdateScheduler([&](Scheduler& s) {
    return success ? s.OnComplete(waiter_.handle, reported) : s.OnFailure(waiter_.handle);
  });
  m_.pool_picks.With({backend_->id, dispatched_}).Inc();
  m_.model_duration.With({parsed_.model, target_}).Observe(ToSeconds(gw_.clock().Now() - arrival_));
  if (reported) {
    m_.model_input_tokens.With({parsed_.model, target_})
        .Observe(static_cast<double>(reported->prompt_tokens));
    m_.model_output_tokens.With({parsed_.model, target_})
        .Observe(static_cast<double>(reported->completion_tokens));
  }
  if (!success) {
    m_.model_errors.With({parsed_.model, target_, std::to_string(status_ ? status_ : 502)}).Inc();
  }
  if (counted_running_) {
    m_.model_running.With({parsed_.model}).Dec();
    m_.active_requests.Dec();
    counted_running_ = false;
  }
}

void PoolTicket::Abandon() {
  Phase was;
  {
    std::lock_guard lock(mu_);
    was = phase_;
    if (was == Phase::kEnded) return;
    phase_ = Phase::kEnded;
  }
  if (was == Phase::kQueued) {
    // Still queued: nothing was sent anywhere. Otherwise the decision is on its way and
    // Deliver releases what it got.
    if (pool_->CancelQueued(waiter_)) {
      m_.model_errors.With({parsed_.model, target_, "499"}).Inc();
    }
    WakeWaiter();
    return;
  }
  if (was == Phase::kDelivered) {
    // The client went away (or the stream broke) while the response was pending.
    pool_->UpdateScheduler([&](Scheduler& s) { return s.OnFailure(waiter_.handle); });
    m_.model_errors.With({parsed_.model, target_, "499"}).Inc();
    if (counted_running_) {
      m_.model_running.With({parsed_.model}).Dec();
      m_.active_requests.Dec();
      counted_running_ = false;
    }
  }
}

}  // namespace

Result<std::string> ResolvePool(gateway::Gateway& gateway, const std::string& name) {
  auto rt = gateway.impl().CurrentRuntime();
  if (!rt) return Error{"the configuration is not loaded"};
  std::vector<std::string> ids;
  for (const auto& p : rt->snapshot().pools) ids.push_back(p->id);
  if (ids.empty()) return Error{"the configuration has no InferencePool"};
  if (name.empty()) {
    if (ids.size() == 1) return ids.front();
  } else {
    for (const auto& id : ids) {
      const auto slash = id.find('/');
      if (id == name || (slash != std::string::npos && id.substr(slash + 1) == name)) return id;
    }
  }
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id;
  return Error{(name.empty() ? std::string("several InferencePools; name one with --pool")
                             : "no InferencePool " + name) +
               " (the configuration has: " + list + ")"};
}

PoolPicker::PoolPicker(gateway::Gateway& gateway, PickerOptions options)
    : gw_(gateway.impl()), options_(std::move(options)), draining_options_(options_) {
  draining_options_.flow_control = false;
}

std::shared_ptr<PickTicket> PoolPicker::Admit(RequestHead head, std::string body,
                                              DecisionCallback done) {
  auto ticket =
      std::make_shared<PoolTicket>(gw_, std::move(head), std::move(body), std::move(done));
  ticket->Start(draining_.load(std::memory_order_acquire) ? draining_options_ : options_,
                next_loop_.fetch_add(1, std::memory_order_relaxed));
  return ticket;
}

void PoolPicker::Drain() {
  draining_.store(true, std::memory_order_release);
  auto rt = gw_.CurrentRuntime();
  if (!rt) return;
  const config::Backend* backend = FindPoolBackend(*rt, options_.pool);
  if (backend == nullptr) return;
  if (auto it = rt->pools.find(backend); it != rt->pools.end()) it->second->ReleaseQueue();
}

bool PoolPicker::Ready() const {
  auto rt = gw_.CurrentRuntime();
  if (!rt) return false;
  const config::Backend* backend = FindPoolBackend(*rt, options_.pool);
  if (backend == nullptr) return false;
  for (const auto& ep : backend->endpoints) {
    if (ep.ready) return true;
  }
  return false;
}

}  // namespace infergate::extproc
