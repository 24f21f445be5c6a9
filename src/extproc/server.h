// `infergate epp`: Envoy's ExternalProcessor service over gRPC (one Session per stream,
// on gRPC's callback API so a request held in the pool's queue costs a stream, not a
// thread), gRPC health checking on its own port (services "", "liveness", "readiness",
// "envoy.service.ext_proc.v3.ExternalProcessor"), and the gateway's admin listener
// (/metrics) on the metrics port; the pool's state, scraping and configuration reloads
// come from gateway::Gateway with its listeners unbound.
//
// On start it prints, one line each:
//   ext_proc <address>:<port>
//   health <address>:<port>
//   admin <address>:<port>        (from the gateway)
//
// Thread-safety: Start, Wait and Shutdown may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "extproc/picker.h"
#include "extproc/session.h"
#include "gateway/gateway.h"

namespace infergate::extproc {

struct EppOptions {
  gateway::GatewayOptions gateway;  // config paths, metrics (admin) address, scraping
  std::string pool;                 // --pool: "name" or "namespace/name"; empty: the only one
  std::string grpc_address = "0.0.0.0";
  int grpc_port = 9002;    // 0 picks a free port
  int health_port = 9003;  // 0 picks a free port
  PickerOptions picker;    // pool filled in by Start
  SessionOptions session;
};

class EndpointPicker {
 public:
  explicit EndpointPicker(EppOptions options);
  ~EndpointPicker();
  EndpointPicker(const EndpointPicker&) = delete;
  EndpointPicker& operator=(const EndpointPicker&) = delete;

  // Loads the configuration, resolves the pool and starts the three listeners. Errors:
  // configuration (exit 2) or "listen: ..." (exit 1).
  Status Start();
  // As Start, on a provider's snapshot (the Kubernetes API server) instead of files.
  Status Start(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  // Swaps in a later snapshot of the provider (as gateway::Gateway::Apply).
  Status Apply(std::shared_ptr<const config::ConfigSnapshot> snapshot);
  // Blocks until Shutdown; returns the exit code.
  int Wait();
  // Drains: stops accepting streams, decides the requests held in the pool's queue now
  // (each gets its answer: an endpoint, or an ImmediateResponse 503 with
  // x-llm-d-request-dropped-reason), gives open streams the drain timeout, then stops.
  void Shutdown();
  // SIGTERM/SIGINT: gRPC readiness fails for the gateway options' shutdown_grace while
  // streams are still served, then Shutdown (a second signal skips the grace). SIGHUP
  // reloads the configuration files.
  void HandleSignals();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace infergate::extproc
