#include "cluster/cluster_simulation.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <queue>

#include "sim/engine/output_model.h"

namespace infergate::cluster {
namespace {

// Event classes in tie order (see cluster_simulation.h); engine steps come before all.
enum class Kind : int {
  kScrape = 0,
  kScrapeArrives = 1,  // a snapshot reaches the router (scrape_latency > 0)
  kSubmit = 2,         // the request reaches its engine
  kGatewayFirst = 3,   // the first token passes the gateway
  kGatewayDone = 4,    // the response ends at the gateway
  kClientDone = 5,     // the response ends at the client
  kReady = 6,          // the request becomes ready to send
  kRoute = 7,          // the request reaches the gateway (or a retry is due)
  kWake = 8,           // the router asked to be called back (Router::NextWakeup)
  kAbort = 9,          // a redirected request's abort reaches its old engine
};

struct Event {
  TimeNs time;
  Kind kind;
  std::uint64_t seq;
  std::size_t index;

  bool operator>(const Event& o) const {
    if (time != o.time) return time > o.time;
    if (kind != o.kind) return kind > o.kind;
    return seq > o.seq;
  }
};

class Simulation {
 public:
  Simulation(const ClusterOptions& options, std::span<const WorkloadRequest> workload,
             Router& router)
      : options_(options), workload_(workload), router_(router) {}

  Result<ClusterResult> Run();

 private:
  // Forwards one engine's events to the simulation.
  class Sink final : public sim::EventSink {
   public:
    Sink(Simulation* sim, int engine) : sim_(sim), engine_(engine) {}
    void OnToken(const sim::TokenEvent& e) override {
      sim_->stepped_[static_cast<std::size_t>(engine_)] = 1;
      sim_->OnToken(engine_, e);
    }
    void OnPreempted(sim::RequestId, TimeNs) override {
      sim_->stepped_[static_cast<std::size_t>(engine_)] = 1;
    }
    void OnFinished(const sim::FinishedEvent& f) override { sim_->OnFinished(engine_, f); }

   private:
    Simulation* sim_;
    int engine_;
  };

  void Push(TimeNs t, Kind kind, std::size_t index) { events_.push({t, kind, seq_++, index}); }
  void Scrape(TimeNs now);
  void DeliverScrape(TimeNs now);
  void TrySend(TimeNs now);
  void Route(std::size_t i, TimeNs now);
  void Dispatch(std::size_t i, int engine, TimeNs now);
  // Lets the router release held requests (late binding) and arms its wake-up.
  void Release(TimeNs now);
  void Submit(std::size_t i, TimeNs now);
  void Fail(std::size_t i, std::string error, TimeNs at_client);
  void OnToken(int engine, const sim::TokenEvent& e);
  void OnFinished(int engine, const sim::FinishedEvent& f);
  RouteRequest MakeRouteRequest(std::size_t i) const {
    return RouteRequest{i, &workload_[i], prompts_[i]};
  }

  const ClusterOptions& options_;
  std::span<const WorkloadRequest> workload_;
  Router& router_;

  std::vector<std::unique_ptr<sim::Engine>> engines_;
  std::vector<Sink> sinks_;
  std::vector<std::uint8_t> stepped_;            // a step of the engine ended (metrics_at_step_end)
  std::vector<sim::EngineStats> step_stats_;     // each engine as of its last step end
  std::vector<EngineScrape> scrapes_;            // what the router sees
  std::vector<EngineScrape> in_flight_scrapes_;  // taken, not yet delivered
  std::vector<std::span<const TokenId>> prompts_;
  std::vector<std::vector<TokenId>> encoded_;  // prompts given as text
  std::vector<RequestRecord> records_;
  std::vector<int> aborted_from_;  // the engine a redirected request left (-1: none)
  std::vector<ReleasedRequest> redirects_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t seq_ = 0;
  std::deque<std::size_t> ready_;  // waiting for a concurrency slot
  int in_flight_ = 0;
  std::size_t outstanding_ = 0;  // not yet completed at the client
  std::size_t held_ = 0;         // in the router's queue
  TimeNs wake_armed_ = kNever;   // the earliest pending kWake event
  std::vector<ReleasedRequest> released_;
};

Result<ClusterResult> Simulation::Run() {
  const ClusterOptions& o = options_;
  if (o.engines.empty()) return Error{"cluster: at least one engine is required"};
  if (o.max_concurrency < 0) return Error{"cluster: max_concurrency must be >= 0"};
  if (o.scrape_interval < 0) return Error{"cluster: scrape_interval must be >= 0"};
  if (o.scrape_latency < 0 || (o.scrape_latency > 0 && o.scrape_latency >= o.scrape_interval)) {
    return Error{"cluster: scrape_latency must be >= 0 and below scrape_interval"};
  }
  if (o.delays.client_to_gateway < 0 || o.delays.gateway_to_engine < 0) {
    return Error{"cluster: network delays must be >= 0"};
  }
  if (Status s = ValidateArrivalProcess(o.arrivals); !s.ok()) {
    return Error{"cluster: " + s.error().message};
  }
  for (std::size_t e = 0; e < o.engines.size(); ++e) {
    // One model seed for every engine: the same request gets the same answer and the same
    // natural length whichever server runs it (replicas of one model decoding alike), so
    // routing changes when tokens come, never which.
    auto engine = sim::Engine::Create(o.engines[e], o.seed);
    if (!engine.ok()) {
      return Error{"cluster: engine " + std::to_string(e) + ": " + engine.error().message};
    }
    engines_.push_back(std::move(*engine));
  }
  sinks_.reserve(engines_.size());
  for (std::size_t e = 0; e < engines_.size(); ++e) {
    sinks_.emplace_back(this, static_cast<int>(e));
    scrapes_.push_back(EngineScrape{static_cast<int>(e), -1, {}});
    step_stats_.push_back(engines_[e]->Stats());
  }
  stepped_.assign(engines_.size(), 0);

  const std::size_t n = workload_.size();
  records_.resize(n);
  aborted_from_.assign(n, -1);
  prompts_.resize(n);
  encoded_.resize(n);
  const std::vector<TimeNs> ready = ReadyTimes(o.arrivals, workload_, o.seed);
  for (std::size_t i = 0; i < n; ++i) {
    const WorkloadRequest& w = workload_[i];
    if (w.prompt_tokens.empty()) {
      encoded_[i] = Tokenizer::Encode(w.prompt_text);
      prompts_[i] = encoded_[i];
    } else {
      prompts_[i] = w.prompt_tokens;
    }
    RequestRecord& r = records_[i];
    r.index = i;
    r.ready = std::max<TimeNs>(0, ready[i]);
    r.prompt_tokens = static_cast<int>(prompts_[i].size());
    Push(r.ready, Kind::kReady, i);
  }
  outstanding_ = n;
  if (n > 0 && o.scrape_interval > 0) {
    if (o.scrape_latency > 0) {
      // The engines are idle before time 0: a gateway that has been scraping them already
      // holds that snapshot when the first request arrives.
      Scrape(0);
      DeliverScrape(0);
    }
    Push(0, Kind::kScrape, 0);
  }

  ClusterResult result;
  std::uint64_t iterations = 0;
  while (true) {
    TimeNs t_engine = kNever;
    for (const auto& e : engines_) t_engine = std::min(t_engine, e->NextEventTime());
    const TimeNs t_event = events_.empty() ? kNever : events_.top().time;
    const TimeNs t = std::min(t_engine, t_event);
    if (t == kNever) break;
    if (t > o.time_limit) {
      return Error{"cluster: simulated time limit reached with " + std::to_string(outstanding_) +
                   " requests outstanding"};
    }
    ++iterations;
    if (t_engine <= t_event) {
      for (std::size_t e = 0; e < engines_.size(); ++e) {
        if (engines_[e]->NextEventTime() != t) continue;
        engines_[e]->AdvanceTo(t, sinks_[e]);
        if (o.metrics_at_step_end && stepped_[e]) {
          stepped_[e] = 0;
          step_stats_[e] = engines_[e]->Stats();
        }
      }
      continue;
    }
    const Event ev = events_.top();
    events_.pop();
    switch (ev.kind) {
      case Kind::kScrape:
        Scrape(ev.time);
        if (o.scrape_latency == 0) {
          DeliverScrape(ev.time);
        } else {
          Push(ev.time + o.scrape_latency, Kind::kScrapeArrives, 0);
        }
        if (outstanding_ > 0) Push(ev.time + o.scrape_interval, Kind::kScrape, 0);
        break;
      case Kind::kScrapeArrives:
        DeliverScrape(ev.time);
        break;
      case Kind::kSubmit:
        Submit(ev.index, ev.time);
        break;
      case Kind::kGatewayFirst: {
        const RequestRecord& r = records_[ev.index];
        router_.OnFirstToken(ev.index, r.engine, ev.time);
        Release(ev.time);
        break;
      }
      case Kind::kGatewayDone: {
        const RequestRecord& r = records_[ev.index];
        router_.OnCompleted(
            Completion{ev.index, r.engine, r.success, r.prompt_tokens, r.output_tokens}, ev.time);
        Release(ev.time);
        break;
      }
      case Kind::kWake:
        if (wake_armed_ == ev.time) wake_armed_ = kNever;
        Release(ev.time);
        break;
      case Kind::kClientDone:
        --in_flight_;
        --outstanding_;
        TrySend(ev.time);
        break;
      case Kind::kReady:
        ready_.push_back(ev.index);
        TrySend(ev.time);
        break;
      case Kind::kRoute:
        Route(ev.index, ev.time);
        break;
      case Kind::kAbort:
        if (aborted_from_[ev.index] >= 0) {
          engines_[static_cast<std::size_t>(aborted_from_[ev.index])]->Abort(ev.index, ev.time);
        }
        break;
    }
  }

  result.requests = std::move(records_);
  result.start = kNever;
  result.end = 0;
  for (const RequestRecord& r : result.requests) {
    if (r.send >= 0) result.start = std::min(result.start, r.send);
    result.end = std::max(result.end, r.completion);
  }
  if (result.start == kNever) result.start = 0;
  for (const auto& e : engines_) result.engine_stats.push_back(e->Stats());
  result.events = iterations;
  return result;
}

void Simulation::Scrape(TimeNs now) {
  // Periodic scrapes go through in_flight_scrapes_ so a latency can separate taking a
  // snapshot from the router seeing it; on-demand ones (interval 0) are seen at once.
  std::vector<EngineScrape>& into = options_.scrape_interval > 0 ? in_flight_scrapes_ : scrapes_;
  into.resize(engines_.size());
  for (std::size_t e = 0; e < engines_.size(); ++e) {
    into[e].engine = static_cast<int>(e);
    into[e].taken_at = now;
    into[e].stats = options_.metrics_at_step_end ? step_stats_[e] : engines_[e]->Stats();
    into[e].late = false;
    if (options_.metrics_stall_timeout > 0) {
      const TimeNs step_end = engines_[e]->NextEventTime();
      const bool busy = into[e].stats.num_running > 0 || into[e].stats.num_waiting > 0;
      into[e].late = busy && step_end != kNever && step_end - now > options_.metrics_stall_timeout;
    }
  }
}

void Simulation::DeliverScrape(TimeNs now) {
  scrapes_.swap(in_flight_scrapes_);
  if (options_.on_scrape) options_.on_scrape(scrapes_[0].taken_at, scrapes_);
  router_.OnScrape(scrapes_, now);
  // Experimental re-dispatch (Router::Redirect): abort at the old engine, send to the new.
  // A request whose first token is already on its way to the gateway stays where it is
  // (the router, which has not seen that token yet, then accounts it at the new endpoint
  // until it completes: a window of one engine-to-gateway delay).
  redirects_.clear();
  router_.Redirect(now, &redirects_);
  for (const ReleasedRequest& rel : redirects_) {
    if (rel.index >= records_.size() || rel.decision.kind != RouteDecision::Kind::kEngine) continue;
    RequestRecord& r = records_[rel.index];
    if (r.dispatched < 0 || r.first_token >= 0 || r.completion >= 0 ||
        rel.decision.engine == r.engine || aborted_from_[rel.index] >= 0) {
      continue;
    }
    aborted_from_[rel.index] = r.engine;
    Push(now + options_.delays.gateway_to_engine, Kind::kAbort, rel.index);
    Dispatch(rel.index, rel.decision.engine, now);
  }
  Release(now);
}

void Simulation::TrySend(TimeNs now) {
  while (!ready_.empty() &&
         (options_.max_concurrency == 0 || in_flight_ < options_.max_concurrency)) {
    const std::size_t i = ready_.front();
    ready_.pop_front();
    ++in_flight_;
    records_[i].send = now;
    Push(now + options_.delays.client_to_gateway, Kind::kRoute, i);
  }
}

void Simulation::Route(std::size_t i, TimeNs now) {
  if (options_.scrape_interval == 0) Scrape(now);
  const RouteRequest req = MakeRouteRequest(i);
  RouteDecision d = router_.Route(req, scrapes_, now);
  RequestRecord& r = records_[i];
  if (r.routed < 0) r.routed = now;
  switch (d.kind) {
    case RouteDecision::Kind::kEngine:
      Dispatch(i, d.engine, now);
      return;
    case RouteDecision::Kind::kReject:
      Fail(i, d.reason.empty() ? "rejected by the router" : d.reason,
           now + options_.delays.client_to_gateway);
      return;
    case RouteDecision::Kind::kRetry:
      ++r.retries;
      // A retry must move time forward, or the loop would never advance.
      Push(std::max(d.retry_at, now + 1), Kind::kRoute, i);
      return;
    case RouteDecision::Kind::kHold:
      r.held = true;
      ++held_;
      Release(now);
      return;
  }
}

void Simulation::Dispatch(std::size_t i, int engine, TimeNs now) {
  if (engine < 0 || engine >= static_cast<int>(engines_.size())) {
    Fail(i,
         "router chose engine " + std::to_string(engine) + " of " + std::to_string(engines_.size()),
         now + options_.delays.client_to_gateway);
    return;
  }
  RequestRecord& r = records_[i];
  r.engine = engine;
  r.dispatched = now;
  router_.OnDispatched(MakeRouteRequest(i), engine, now);
  Push(now + options_.delays.gateway_to_engine, Kind::kSubmit, i);
}

void Simulation::Release(TimeNs now) {
  if (held_ == 0) return;
  if (options_.scrape_interval == 0) Scrape(now);
  released_.clear();
  router_.Release(scrapes_, now, &released_);
  for (const ReleasedRequest& rel : released_) {
    if (rel.index >= records_.size()) continue;
    RequestRecord& r = records_[rel.index];
    // Only requests the router holds can be released, once.
    if (!r.held || r.dispatched >= 0 || r.completion >= 0) continue;
    --held_;
    if (rel.decision.kind == RouteDecision::Kind::kEngine) {
      Dispatch(rel.index, rel.decision.engine, now);
    } else {
      Fail(rel.index, rel.decision.reason.empty() ? "rejected by the router" : rel.decision.reason,
           now + options_.delays.client_to_gateway);
    }
  }
  if (held_ > 0) {
    const TimeNs wake = router_.NextWakeup();
    if (wake != kNever && wake < wake_armed_) {
      wake_armed_ = std::max(wake, now + 1);
      Push(wake_armed_, Kind::kWake, 0);
    }
  }
}

void Simulation::Submit(std::size_t i, TimeNs now) {
  const WorkloadRequest& w = workload_[i];
  sim::EngineRequest req;
  req.id = i;
  req.prompt.assign(prompts_[i].begin(), prompts_[i].end());
  req.max_tokens = w.max_tokens;
  req.min_tokens = w.min_tokens;
  req.ignore_eos = w.ignore_eos;
  req.lora = w.lora;
  req.priority = w.priority;
  RequestRecord& r = records_[i];
  auto admitted = engines_[static_cast<std::size_t>(r.engine)]->Submit(std::move(req), now);
  if (!admitted.ok()) {
    // The engine answers 400 at once; the gateway and the client see it on the way back.
    const TimeNs at_gateway = now + options_.delays.gateway_to_engine;
    r.error = admitted.error().message;
    r.completion = at_gateway + options_.delays.client_to_gateway;
    Push(at_gateway, Kind::kGatewayDone, i);
    Push(r.completion, Kind::kClientDone, i);
    return;
  }
  r.token_times.reserve(static_cast<std::size_t>(std::min(admitted->max_tokens, 4096)));
}

void Simulation::Fail(std::size_t i, std::string error, TimeNs at_client) {
  RequestRecord& r = records_[i];
  r.success = false;
  r.error = std::move(error);
  r.completion = at_client;
  Push(at_client, Kind::kClientDone, i);
}

void Simulation::OnToken(int engine, const sim::TokenEvent& e) {
  RequestRecord& r = records_[static_cast<std::size_t>(e.id)];
  if (engine != r.engine) return;  // the engine a redirected request left
  const TimeNs at_gateway = e.time + options_.delays.gateway_to_engine;
  const TimeNs at_client = at_gateway + options_.delays.client_to_gateway;
  r.token_times.push_back(at_client);
  if (e.index == 0) {
    r.first_token = at_client;
    Push(at_gateway, Kind::kGatewayFirst, static_cast<std::size_t>(e.id));
  }
}

void Simulation::OnFinished(int engine, const sim::FinishedEvent& f) {
  const auto i = static_cast<std::size_t>(f.id);
  RequestRecord& r = records_[i];
  if (engine != r.engine) return;  // the abort of a redirected request at its old engine
  r.success = f.reason != sim::FinishReason::kAbort;
  r.finish_reason = f.reason;
  r.output_tokens = f.timing.output_tokens;
  r.preemptions = f.timing.preemptions;
  r.scheduled = f.timing.first_scheduled;
  r.cached_prompt_tokens = f.timing.cached_prompt_tokens;
  const TimeNs at_gateway = f.timing.finished + options_.delays.gateway_to_engine;
  r.completion = at_gateway + options_.delays.client_to_gateway;
  Push(at_gateway, Kind::kGatewayDone, i);
  Push(r.completion, Kind::kClientDone, i);
}

}  // namespace

Result<ClusterResult> RunCluster(const ClusterOptions& options,
                                 std::span<const WorkloadRequest> workload, Router& router) {
  Simulation sim(options, workload, router);
  return sim.Run();
}

}  // namespace infergate::cluster
