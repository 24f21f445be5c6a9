// Internals of the gateway shared by its source files (gateway.cc: life cycle and the admin
// listener; data_plane.cc: sessions, routing and the Service path; inference_path.cc: pool
// states, scraping and mirroring; pool_request.cc: InferencePool requests). Not part of the
// public interface.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "gateway/gateway.h"
#include "gateway/pool_state.h"
#include "gateway/replica_sync.h"
#include "gateway/runtime.h"
#include "gateway/visibility.h"
#include "http/deadline_list.h"
#include "http/event_loops.h"
#include "http/proxy_exchange.h"
#include "http/upstream_pool.h"
#include "telemetry/access_log.h"
#include "telemetry/metrics.h"

namespace infergate::gateway {

// Counters and histograms of one (listener, route rule, backend), with the counters per
// status code created on first use and then reached without a lock.
class RequestStats {
 public:
  RequestStats(telemetry::Family<telemetry::Counter>& requests,
               telemetry::Family<telemetry::Histogram>& durations, std::string listener,
               std::string route, std::string backend)
      : requests_(requests),
        listener_(std::move(listener)),
        route_(std::move(route)),
        backend_(std::move(backend)),
        duration_(durations.With({listener_, route_, backend_})) {
    for (auto& c : by_status_) c.store(nullptr, std::memory_order_relaxed);
  }
  void Record(int status, double seconds) {
    if (status < 100 || status > 599) status = 599;
    auto& slot = by_status_[status - 100];
    telemetry::Counter* c = slot.load(std::memory_order_acquire);
    if (!c) {
      c = &requests_.With({listener_, route_, backend_, std::to_string(status)});
      slot.store(c, std::memory_order_release);
    }
    c->Inc();
    duration_.Observe(seconds);
  }

 private:
  telemetry::Family<telemetry::Counter>& requests_;
  std::string listener_, route_, backend_;
  telemetry::Histogram& duration_;
  std::array<std::atomic<telemetry::Counter*>, 500> by_status_;
};

// One client connection, in its session coroutine's frame.
struct SessionState {
  explicit SessionState(tcp::socket* s) : socket(s) {}
  tcp::socket* socket;
  bool idle = true;  // between requests (draining may close it)
  bool deadline_fired = false;
  void OnDeadline() {
    deadline_fired = true;
    boost::system::error_code ignored;
    socket->cancel(ignored);
  }
  http::DeadlineEntry<SessionState, &SessionState::OnDeadline> deadline{this};
};

// State confined to one event loop.
struct LoopState {
  explicit LoopState(asio::io_context& loop) : pool(loop), deadlines(loop) {}
  http::UpstreamPool pool;
  http::DeadlineList deadlines;
  std::unordered_set<SessionState*> sessions;
  int mirrors_in_flight = 0;  // RequestMirror copies being sent from this loop
};

// The state of the loop the calling thread runs (set on each loop when it starts).
extern thread_local LoopState* tls_loop;

// What a route rule adds to an exchange besides its request-header edits:
// timeouts.backendRequest bounds the exchange together with the request timeout (the
// stricter wins; a connection that fails at once leaves the bound to the next attempt),
// and its ResponseHeaderModifier edits the head relayed to the client.
inline void ApplyRuleToExchange(const config::RouteRule& rule, const RuleEdits* edits,
                                http::ExchangeOptions* xo) {
  if (rule.timeouts.backend_request && *rule.timeouts.backend_request > 0) {
    const TimeNs bound = *rule.timeouts.backend_request;
    xo->timeout = xo->timeout > 0 ? std::min(xo->timeout, bound) : bound;
  }
  if (edits) {
    xo->response_edits = {edits->response_remove, edits->response_set, edits->response_add};
  }
}

struct GatewayMetrics {
  explicit GatewayMetrics(telemetry::Registry& r)
      : requests(r.AddCounter("infergate_requests_total",
                              "Requests answered, by listener, route rule, backend and status.",
                              {"listener", "route", "backend", "code"})),
        durations(r.AddHistogram("infergate_request_duration_seconds",
                                 "Time from the request's arrival to the end of its response.",
                                 {"listener", "route", "backend"},
                                 {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                  1, 2.5, 5, 10, 30, 60, 300, 1800})),
        connect_errors(r.AddCounter("infergate_upstream_connect_errors_total",
                                    "Upstream connections that could not be made.",
                                    {"backend", "endpoint"})),
        upstream_failures(r.AddCounter(
            "infergate_upstream_failures_total",
            "Upstream attempts that failed before a response (connect, reset, bad header).",
            {"backend", "endpoint"})),
        connections(
            r.AddGauge("infergate_active_connections", "Open client connections.", {"listener"})),
        active_requests(
            r.AddGauge("infergate_active_requests", "Requests being proxied (streams in flight).")
                .With({})),
        reloads(r.AddCounter("infergate_config_reloads_total",
                             "Configuration loads after the first, by result.", {"result"})),
        config_ok(r.AddGauge("infergate_config_last_reload_successful",
                             "1 if the last configuration load succeeded.")
                      .With({})),
        model_requests(r.AddCounter("inference_model_request_total",
                                    "Inference requests, by requested and target model.",
                                    {"model_name", "target_model_name"})),
        model_errors(r.AddCounter("inference_model_request_error_total",
                                  "Inference requests that failed, by error code.",
                                  {"model_name", "target_model_name", "error_code"})),
        model_duration(
            r.AddHistogram("inference_model_request_duration_seconds",
                           "Inference request duration from arrival to the end of the response.",
                           {"model_name", "target_model_name"},
                           {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8,  1,    1.25, 1.5, 2,
                            3,     4,     5,    6,   8,   10,  15,  20,   30,   45,   60,  120,
                            180,   240,   300,  360, 480, 600, 900, 1200, 1800, 2700, 3600})),
        model_input_tokens(r.AddHistogram(
            "inference_model_input_tokens", "Prompt tokens of inference requests (from usage).",
            {"model_name", "target_model_name"}, telemetry::ExponentialBuckets(1, 2, 18))),
        model_output_tokens(r.AddHistogram("inference_model_output_tokens",
                                           "Completion tokens of inference requests (from usage).",
                                           {"model_name", "target_model_name"},
                                           telemetry::ExponentialBuckets(1, 2, 18))),
        model_running(r.AddGauge("inference_model_running_requests",
                                 "Inference requests in flight through the gateway.",
                                 {"model_name"})),
        scheduler_duration(
            r.AddHistogram("inference_extension_scheduler_e2e_duration_seconds",
                           "Time to decide where an inference request goes (hashing and picking).",
                           {}, telemetry::ExponentialBuckets(1e-6, 2, 18))
                .With({})),
        pool_ttft(r.AddHistogram(
            "infergate_pool_time_to_first_byte_seconds",
            "Time from dispatch to the first response byte, per pool endpoint (the TTFT the "
            "gateway observes).",
            {"pool", "endpoint"},
            {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256})),
        pool_picks(r.AddCounter("infergate_pool_picks_total",
                                "Requests the scheduler sent to each pool endpoint.",
                                {"pool", "endpoint"})),
        pool_redirects(r.AddCounter(
            "infergate_pool_redirects_total",
            "Streaming requests still without a first token that were aborted at one pool "
            "endpoint and sent to another (re-dispatch).",
            {"pool", "from", "to"})),
        pool_rejections(r.AddCounter(
            "infergate_pool_rejections_total",
            "Inference requests the pool refused: shed (429) or no endpoint (503), by reason.",
            {"pool", "reason"})),
        scrapes(r.AddCounter("infergate_pool_scrapes_total",
                             "Metric scrapes of pool endpoints, by result.", {"pool", "result"})),
        mirrors(r.AddCounter("infergate_mirror_requests_total",
                             "RequestMirror copies: sent, dropped (too many in flight) or "
                             "failed (the mirror did not answer).",
                             {"backend", "result"})),
        queue_wait(r.AddHistogram(
            "infergate_pool_queue_wait_seconds",
            "Time requests waited in the gateway's queue for a pool.", {"pool"},
            {0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512})) {}

  telemetry::Family<telemetry::Counter>& requests;
  telemetry::Family<telemetry::Histogram>& durations;
  telemetry::Family<telemetry::Counter>& connect_errors;
  telemetry::Family<telemetry::Counter>& upstream_failures;
  telemetry::Family<telemetry::Gauge>& connections;
  telemetry::Gauge& active_requests;
  telemetry::Family<telemetry::Counter>& reloads;
  telemetry::Gauge& config_ok;
  telemetry::Family<telemetry::Counter>& model_requests;
  telemetry::Family<telemetry::Counter>& model_errors;
  telemetry::Family<telemetry::Histogram>& model_duration;
  telemetry::Family<telemetry::Histogram>& model_input_tokens;
  telemetry::Family<telemetry::Histogram>& model_output_tokens;
  telemetry::Family<telemetry::Gauge>& model_running;
  telemetry::Histogram& scheduler_duration;
  telemetry::Family<telemetry::Histogram>& pool_ttft;
  telemetry::Family<telemetry::Counter>& pool_picks;
  telemetry::Family<telemetry::Counter>& pool_redirects;
  telemetry::Family<telemetry::Counter>& pool_rejections;
  telemetry::Family<telemetry::Counter>& scrapes;
  telemetry::Family<telemetry::Counter>& mirrors;
  telemetry::Family<telemetry::Histogram>& queue_wait;
};

class Gateway::Impl {
 public:
  explicit Impl(GatewayOptions o)
      : opts(std::move(o)),
        loops(opts.workers > 0
                  ? opts.workers
                  : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))),
        metrics(registry) {
    for (int i = 0; i < loops.size(); ++i) {
      loop_states.push_back(std::make_unique<LoopState>(loops.loop(i)));
    }
  }

  Status Start(std::shared_ptr<const config::ConfigSnapshot> snapshot = nullptr);
  Status Reload();
  Status Apply(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  void Shutdown();
  int Wait();
  void HandleSignals();
  // The published runtime (pools, their InferenceModels and live states), for front ends
  // other than the gateway's listeners.
  std::shared_ptr<const Runtime> CurrentRuntime() const { return runtime(); }
  const infergate::Clock& clock() const { return clock_; }

 private:
  using Clock = SteadyClock;

  Result<std::shared_ptr<const Runtime>> LoadRuntime();
  // The runtime of a snapshot (LoadRuntime without the file loading).
  Result<std::shared_ptr<const Runtime>> BuildRuntime(
      std::shared_ptr<const config::ConfigSnapshot> snapshot);
  // Swaps rt in (Reload's second half). `what` names the source for the log.
  Status Swap(Result<std::shared_ptr<const Runtime>> rt, const std::string& what);
  // Binds listeners the runtime has and the current set lacks; closes the ones it no
  // longer has. Requires reload_mu_ held.
  Status ReconcileListeners(const Runtime& rt);
  // The published runtime. Readers on the request path compare runtime_generation()
  // with the one they hold and call runtime() (a lock) only when it moved.
  std::shared_ptr<const Runtime> runtime() const {
    std::lock_guard lock(runtime_mu_);
    return runtime_;
  }
  std::uint64_t runtime_generation() const {
    return runtime_generation_.load(std::memory_order_acquire);
  }
  void Publish(std::shared_ptr<const Runtime> rt) {
    std::lock_guard lock(runtime_mu_);
    runtime_ = std::move(rt);
    runtime_generation_.fetch_add(1, std::memory_order_release);
  }
  RequestStats& StatsFor(const ListenerRuntime& lr, const config::RouteRule* rule,
                         const config::Backend* backend);

  // One client connection of a listener. client_ip: the peer's address when the socket
  // is not the client's own (an HTTPS connection's decrypted stream); empty: read it.
  asio::awaitable<void> Session(tcp::socket socket, std::string listener_key,
                                std::string client_ip);
  // One connection to a bound HTTPS port: TLS, then Session for the listener SNI picked.
  asio::awaitable<void> TlsSession(tcp::socket socket, std::string port_key);
  // SIGTERM/SIGINT: the shutdown grace period (readiness fails, serving goes on), then
  // Shutdown(). A second call skips what is left of the grace period.
  void BeginShutdown();
  // Handles one parsed request; returns whether the connection may be kept.
  asio::awaitable<bool> HandleRequest(tcp::socket& socket, http::Request& req, const Runtime& rt,
                                      const ListenerRuntime& lr, TimeNs arrival,
                                      const std::string& client_ip);
  asio::awaitable<void> AdminSession(tcp::socket socket);
  void WatchConfigFiles();
  void CheckDrained();

  // --- inference path (inference_path.cc) ---
  // Prepares the pool states a runtime needs (reusing running ones whose settings did
  // not change); no side effects until CommitPools.
  Status PreparePools(Runtime& rt);
  // Makes rt's pools the live ones: starts scrape loops of new endpoints, stops those of
  // pools and endpoints that are gone. Requires reload_mu_ held.
  void CommitPools(const Runtime& rt);
  asio::awaitable<void> ScrapeLoop(std::shared_ptr<PoolState> pool,
                                   std::shared_ptr<ScrapeTarget> target);
  // --- the pool request path (pool_request.cc) ---
  // Handles a request routed to an InferencePool backend: parse → classify → admit →
  // proxy → record, each step below.
  asio::awaitable<bool> HandlePoolRequest(tcp::socket& socket, http::Request& req,
                                          const Runtime& rt, const ListenerRuntime& lr,
                                          const config::RouteRule& rule,
                                          const config::Backend& backend, TimeNs arrival,
                                          const std::string& client_ip);
  struct PoolCall;  // one request's state through the steps
  // Answers the request with a JSON error (and x-llm-d-request-dropped-reason when the
  // gateway dropped it; Retry-After: 1 when asked); returns whether to keep the connection.
  asio::awaitable<bool> ReplyToPoolCall(PoolCall& c, int status, std::string message,
                                        std::string_view dropped_reason = {},
                                        bool retry_after = false);
  // Classifies the request (gateway/classify.h) and describes it to the scheduler; the
  // body's model is rewritten to the target. False: the pool does not serve the model.
  bool ClassifyPoolCall(PoolCall& c);
  // Admission (PoolState::PickOrQueue), waiting while queued. True: picked; false: the
  // request was answered (or its client left), *keep says whether the connection stays.
  asio::awaitable<bool> AdmitPoolCall(PoolCall& c, bool* keep);
  // Proxies a picked request with the ledger kept in step, then records it.
  asio::awaitable<bool> ProxyPoolCall(PoolCall& c);
  void RecordPoolCall(PoolCall& c, const http::ExchangeOutcome& out, const std::string& dispatched,
                      TimeNs dispatched_at, const std::optional<Usage>& reported);
  // The exchange options of a request of `rule` (both routes): header edits, timeout,
  // attempts, keep-alive.
  http::ExchangeOptions ExchangeOptionsFor(const Runtime& rt, const ListenerRuntime& lr,
                                           const config::RouteRule& rule,
                                           const std::string& client_ip, bool client_keep) const;
  // Sends copies of a request to the rule's RequestMirror backends, if their fraction
  // says so; never waits for them.
  // `ex` is the calling loop's executor (the copies use that loop's connection pool).
  void MirrorRequest(asio::any_io_executor ex, const Runtime& rt, const config::RouteRule& rule,
                     const http::Request& req, const std::string& client_ip);
  // Proxies to the backend's ready endpoints in round-robin order (Service backends, and
  // pool requests that are not inference calls).
  asio::awaitable<bool> ProxyPlain(tcp::socket& socket, http::Request& req, const Runtime& rt,
                                   const ListenerRuntime& lr, const config::RouteRule& rule,
                                   const config::Backend& backend, TimeNs arrival,
                                   const std::string& client_ip);
  void CollectPoolMetrics(telemetry::MetricWriter& w);

  // --- visibility (live.cc) ---
  // Counts a pool decision and starts its record for the live page (with per-candidate
  // predictions when the page is being watched).
  DecisionRecord BeginDecision(const config::Backend& backend, PoolState& pool,
                               std::string model_label, std::string target_label,
                               const RequestInfo& info, const PickResult& pick,
                               std::size_t prompt_blocks, TimeNs decide_start);
  // Completes it with the outcome (out: null when nothing was proxied) and observes the
  // request's sizes, NTPOT and TTFT.
  void FinishDecision(DecisionRecord&& d, int status, std::string_view served_by,
                      std::size_t request_bytes, const http::ExchangeOutcome* out,
                      TimeNs dispatched_at, const std::optional<Usage>& usage, double seconds,
                      AccessEntry* access = nullptr);
  // Access log: when it is on, gives the request an x-request-id (kept when the client
  // sent one; passed upstream) and returns `entry` filled with the request's side when this
  // request is sampled, else null.
  AccessEntry* BeginAccess(AccessEntry& entry, http::Request& req, const ListenerRuntime& lr,
                           const config::RouteRule* rule, const config::Backend* backend,
                           TimeNs arrival, const std::string& client_ip);
  // Records what the upstream exchange did (attempted endpoints from `candidates`).
  void AccessOutcome(AccessEntry& entry, const http::ExchangeOutcome& out,
                     std::span<const http::UpstreamCandidate> candidates);
  // Writes the line.
  void EmitAccess(const AccessEntry& entry, int status);
  // Per-endpoint gauges (scraped, ledger, predicted) and the prefix index size.
  void CollectEndpointMetrics(telemetry::MetricWriter& w);
  // The live page's state (admin /api/live); see docs/observability.md.
  std::string LiveJson();

 public:
  GatewayOptions opts;
  http::EventLoops loops;
  telemetry::Registry registry;
  GatewayMetrics metrics;
  Visibility visibility{registry};
  std::unique_ptr<telemetry::AccessLog> access_log;  // null: off
  std::vector<std::unique_ptr<LoopState>> loop_states;

 private:
  // (Not std::atomic<std::shared_ptr>: libstdc++'s lock-bit implementation is invisible
  // to ThreadSanitizer, and a generation counter lets readers skip even the lock.)
  mutable std::mutex runtime_mu_;
  std::shared_ptr<const Runtime> runtime_;
  std::atomic<std::uint64_t> runtime_generation_{0};
  std::mutex reload_mu_;
  struct BoundListener {
    std::string address;
    int configured_port;
    std::shared_ptr<http::Listener> listener;
  };
  std::map<std::string, BoundListener> bound_;  // by listener key; guarded by reload_mu_
  std::shared_ptr<http::Listener> admin_;
  std::mutex stats_mu_;
  std::map<std::tuple<std::string, std::string, std::string>, std::unique_ptr<RequestStats>> stats_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> started_{false};
  std::atomic<int> active_sessions_{0};
  std::atomic<bool> ready_{false};
  std::string config_signature_;
  // A changed signature seen at the last poll: the files are reloaded only once it holds
  // for a whole poll interval, so a file caught mid-write (truncated, half written) is
  // not loaded. An empty file is a valid configuration with nothing to serve: a reload
  // that read one closed every listener, and the next one reopened them on new ports.
  std::string pending_signature_;
  std::unique_ptr<asio::steady_timer> watch_timer_;
  std::unique_ptr<asio::steady_timer> drain_timer_;
  std::unique_ptr<asio::steady_timer> grace_timer_;
  std::atomic<bool> grace_started_{false};
  std::unique_ptr<asio::signal_set> signals_;
  TimeNs drain_deadline_ = 0;
  SteadyClock clock_;
  std::mutex pools_mu_;
  std::map<std::string, std::shared_ptr<PoolState>> pools_;  // live pools by backend id
  std::atomic<std::uint64_t> scrape_spread_{0};              // loop choice for scrapers
  // After pools_: stopped (sinks detached) before the pools go.
  std::unique_ptr<ReplicaSync> replica_sync_;  // set in Start when replica sync is on
};

}  // namespace infergate::gateway
