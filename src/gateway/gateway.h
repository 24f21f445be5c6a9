// The live gateway: listeners from the configuration's Gateways, requests routed by
// HTTPRoutes (and InferencePools' attach-to annotations) to Service or InferencePool
// backends, proxied over pooled keep-alive connections with responses streamed through.
//
// Life cycle: Start() loads the configuration, binds every listener and the admin
// listener, and starts one event loop per worker thread. Reload() (SIGHUP, or a changed
// config file) loads the configuration again: a bad one is rejected with an error and the
// running one keeps serving; a good one replaces it atomically (new listeners are bound
// first, removed ones closed after). Shutdown() (SIGTERM/SIGINT) stops accepting, lets
// requests in flight finish for up to the drain timeout, and makes Wait() return. A
// signal (HandleSignals) first fails /readyz for the shutdown grace period while serving
// on, then calls Shutdown().
//
// On start it prints one line per bound listener to stdout:
//   listening <gateway-ns>/<gateway>/<listener> <address>:<port>
//   admin <address>:<port>
//
// Configuration from a provider (the Kubernetes API server) instead of files: Start(snapshot)
// serves a snapshot built elsewhere, and Apply(snapshot) swaps in a new one exactly as
// Reload does (listeners reconciled, pools kept while their settings are unchanged, one
// atomic publish). config_paths is then empty and SIGHUP / file polling do nothing.
//
// Thread-safety: Start, Wait, Reload, Apply and Shutdown may be called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace infergate::config {
struct ConfigSnapshot;
}

namespace infergate::gateway {

struct GatewayOptions {
  std::vector<std::string> config_paths;
  int workers = 0;  // event loops; 0 = one per core
  std::string admin_address = "127.0.0.1";
  int admin_port = 9901;  // 0 picks a free port; -1 disables the admin listener
  TimeNs drain_timeout = 30 * kNanosPerSecond;
  // SIGTERM/SIGINT: /readyz answers 503 at once, but every listener keeps serving for this
  // long (so load balancers and Kubernetes endpoints stop sending here first); then the
  // drain begins. A second signal during the grace period drains at once. 0 = no grace.
  TimeNs shutdown_grace = 0;
  // HTTPS listeners: the TLS handshake of a new connection must finish within this.
  TimeNs tls_handshake_timeout = 10 * kNanosPerSecond;
  TimeNs reload_poll_interval = 2 * kNanosPerSecond;  // config file change check; 0 = off
  std::size_t max_header_bytes = 64 * 1024;
  TimeNs idle_timeout = 60 * kNanosPerSecond;          // keep-alive connection with no request
  TimeNs request_read_timeout = 30 * kNanosPerSecond;  // header and body of one request
  int max_attempts = 3;                                // endpoints tried per request
  // InferencePool endpoints: /metrics every scrape_interval (each scrape bounded by
  // scrape_timeout), /v1/models every models_interval.
  TimeNs scrape_interval = 50 * kNanosPerMilli;
  TimeNs scrape_timeout = kNanosPerSecond;
  TimeNs models_interval = 5 * kNanosPerSecond;
  // Requests carrying this header stick to the endpoint that served the same value.
  std::string session_header = "x-session-id";
  // Hold InferencePool requests in the gateway's queue while no endpoint can take them
  // (late binding), instead of piling them into the servers' own queues.
  bool flow_control = true;
  // vLLM V0 pipeline-parallel size of pools without the annotation
  // infergate.io/pipeline-parallel-size (the infergate profile mirrors its virtual engines).
  int pipeline_parallel_size = 1;
  // Re-dispatch (pools with the gateway queue, streaming requests): a request with no
  // first token this long after its dispatch may be aborted at its server and sent once to
  // another (Scheduler::ShouldRedirect decides, again at every scrape interval while it
  // stays silent). 0 = off.
  TimeNs redirect_after = 7 * kNanosPerSecond;
  // RequestMirror copies in flight per event loop; more are dropped (and counted).
  int max_mirrors_in_flight = 64;
  // Replica sync (gateway/replica_sync.h): NATS URLs shared by the gateway's replicas
  // (empty: off), a NATS credentials file, and this replica's id (empty: $HOSTNAME).
  std::vector<std::string> replica_sync_urls;
  std::string replica_sync_creds;
  std::string replica_id;
  // ... and whether the replicas keep one pool-wide release order of their queues
  // (sync::QueueOrder; on by default with replica sync).
  bool replica_queue_order = true;
  // ... and the longest a replica batches its events before publishing them (news after a
  // quiet interval goes at once).
  TimeNs replica_sync_flush = 2 * kNanosPerMilli;
  // Bind the configuration's Gateway listeners. Off when another front end (the ext_proc
  // endpoint picker) serves the pools and the gateway only keeps their state, scrapes
  // their endpoints and serves the admin listener.
  bool bind_listeners = true;
  // Access log: one JSON line per request to this file ("-": stdout; empty: off), for
  // this share of requests (0..1).
  std::string access_log;
  double access_log_sample = 1.0;
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Loads the configuration and starts serving. A configuration error returns an Error
  // whose message lists every problem (the CLI exits 2); a bind failure returns an Error
  // starting with "listen:" (exit 1).
  Status Start();
  // Starts serving a snapshot produced by a provider (requires empty config_paths).
  Status Start(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  // Blocks until Shutdown has drained (or the loops stopped). Returns the exit code: 0.
  int Wait();
  // Loads the configuration again and swaps it in if valid. Returns the error otherwise.
  Status Reload();
  // Swaps in a provider's snapshot if the gateway can serve it (as Reload, without files).
  // Returns the error otherwise; the running configuration keeps serving.
  Status Apply(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  // Begins a graceful shutdown. Safe to call more than once and from a signal handler's
  // loop.
  void Shutdown();
  // Handles SIGTERM/SIGINT (shutdown) and SIGHUP (reload) itself.
  void HandleSignals();

  class Impl;
  // The gateway's internals, for front ends built on the same pools (src/extproc).
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace infergate::gateway
