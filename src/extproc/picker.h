// The endpoint picker's Picker: one InferencePool of a running gateway (its scheduler,
// queue and scraped metrics, kept by gateway::Gateway with its listeners unbound), asked
// the way `serve` asks it: the body parsed once, classified (InferenceModel target and
// criticality, the objective header, the model rewrite), admitted through the pool's
// queue (late binding: a held request waits there, its stream open, until an endpoint can
// take it or the stream ends), picked; then told the response's first byte, usage, end or
// reset, so the ledger and prefix index learn what they learn behind `serve`.
//
// Thread-safety: Admit may be called from any thread; tickets are driven by one stream at
// a time (their decision arrives from one of the gateway's event loops).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "extproc/session.h"
#include "gateway/gateway.h"

namespace infergate::extproc {

struct PickerOptions {
  std::string pool;  // the pool id ("namespace/name")
  // How long a request may wait in the pool's queue (0: until its stream ends).
  TimeNs queue_timeout = 0;
  std::string session_header = "x-session-id";
  bool flow_control = true;
};

// The id of the pool `name` names ("name" or "namespace/name"; empty: the only pool) in
// the gateway's configuration, or an error naming the pools there are.
Result<std::string> ResolvePool(gateway::Gateway& gateway, const std::string& name);

class PoolPicker final : public Picker {
 public:
  PoolPicker(gateway::Gateway& gateway, PickerOptions options);
  std::shared_ptr<PickTicket> Admit(RequestHead head, std::string body,
                                    DecisionCallback done) override;
  // True while the configuration has the pool and it has a ready endpoint.
  bool Ready() const;
  // Shutdown: the requests held in the pool's queue are decided now (picked when an
  // endpoint can take them, refused otherwise, as serve's drain does), and later ones
  // are decided at once instead of queued.
  void Drain();

 private:
  gateway::Gateway::Impl& gw_;
  PickerOptions options_;
  PickerOptions draining_options_;  // options_ without queueing
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> next_loop_{0};
};

}  // namespace infergate::extproc
