// SimServer: simulated vLLM servers behind real HTTP, driven by the wall clock.
//
// Each replica is one sim::Engine behind its own listener (replica i on the host address
// plus i: 127.0.0.2, 127.0.0.3, ...; same port, or its own free port when 0 is asked for)
// and serves vLLM 0.7's OpenAI-compatible API: POST /v1/completions and
// /v1/chat/completions (streamed and not), GET /v1/models, /health and /metrics (see
// openai_request.h, openai_response.h and vllm_metrics.h for the exact shapes). Two
// endpoints of its own let a client compare what it measured with what the engine did:
//   GET /sim/stats     engine seed, queues and blocks, the steady-clock time of simulated
//                      time 0 (wall_origin_ns), and how late token chunks (and
//                      non-streamed responses, one entry each) were written compared
//                      with the engine's schedule: p50, p99, max in wall µs since start
//                      (or since the last GET /sim/stats?reset=1);
//   GET /sim/requests  the last 65,536 requests whose response ended: the engine's timing
//                      in simulated seconds (id, reason, arrival, first_scheduled,
//                      first_token, finished), token counts, and how late the first output
//                      was written (wall µs).
// Replicas are spread over the event loops (replica i on loop i mod workers); everything
// about a replica — its engine, its connections, its timer — lives on its loop, so nothing
// is locked.
//
// Real time: the engine runs in simulated time sim = (wall − start) · time_scale
// (SimClock). A replica keeps one timer armed at the wall time of the engine's next event
// (NextEventTime). When it fires — or right after a request is submitted or aborted — the
// replica advances the engine to the current simulated time and pushes every token event
// straight into the waiting responses: each stream's new chunks go out in one write as
// soon as the step that produced them ends (TCP_NODELAY; no polling, no buffering between
// steps). When a step produced chunks for many streams they are written in slices of 64
// streams with the loop free to read new requests in between, so admission does not wait
// for a whole burst. A server that falls behind (a busy machine) never accumulates a
// backlog: whatever is due is written at once, several tokens per write if need be.
// A response's head is written as soon as the engine has accepted the request.
//
// A client that closes its connection (while its request waits in the queue, runs, or
// streams) has its request aborted in the engine at once, freeing its KV blocks: every
// response keeps a read pending on its socket to notice.
//
// Faults (for tests; all bounded): fail_rate answers that fraction of generation requests
// with a 500 error, chosen deterministically from the seed, the replica and the order of
// requests at it; die_after ends the process with _exit(1) once the N-th request has had
// output written (mid-stream); metrics_delay_ms delays /metrics; metrics_mode makes it
// answer 500, unparsable text, or never (until the client closes); refuse_connections
// resets every connection right after accepting it.
//
// Other engines (engine_api): llama.cpp's and SGLang's /metrics and /v1/models, and
// llama.cpp's GET /props and /slots (engine_api.h); metrics_in_engine_loop answers
// /metrics only between engine steps, as llama.cpp's server loop does.
//
// Shutdown (Shutdown(), or SIGTERM/SIGINT after HandleSignals): listeners stop,
// streams in progress end with a vLLM error event and [DONE], other requests get a 503,
// idle connections close; Run returns once every connection has ended (or after 3 s).
//
// Thread-safety: Create, Listen, HandleSignals and Run from one thread; Shutdown from any
// thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "sim/engine/profile.h"
#include "sim/server/engine_api.h"
#include "sim/server/vllm_metrics.h"

namespace infergate::sim {

struct LoraModule {
  std::string name;  // the model name requests use
  std::string path;  // reported as the card's root in /v1/models (default: the name)
};

enum class MetricsMode { kOk, kError, kGarbage, kHang };

struct FaultOptions {
  double fail_rate = 0;        // in [0, 1]
  std::int64_t die_after = 0;  // 0: never
  std::int64_t metrics_delay_ms = 0;
  MetricsMode metrics_mode = MetricsMode::kOk;
  bool refuse_connections = false;
};

struct SimServerOptions {
  std::string host = "127.0.0.1";  // replica i listens on host + i (IPv4 when replicas > 1)
  unsigned short port = 8000;      // 0: a free port per replica
  int replicas = 1;
  int workers = 0;  // event loops; 0: min(replicas, hardware threads)
  double time_scale = 1.0;
  std::uint64_t seed = 0;  // replica i's engine gets seed + i
  std::string model;       // the model path/name (root of the base model cards)
  // Names requests may use for the base model; the first labels the metrics. Empty: {model}.
  std::vector<std::string> served_model_names;
  std::vector<LoraModule> lora_modules;
  MetricsVersion metrics_version = MetricsVersion::kV0;
  // Whose API to present: vLLM's, or llama.cpp's / SGLang's metric names and model list
  // (engine_api.h). Generation requests are served the same way for all three.
  EngineApi engine_api = EngineApi::kVllm;
  // Answer /metrics from the engine loop, as llama.cpp does: a scrape that arrives during
  // a step is answered when the step ends, so it stalls for as long as a long prefill.
  bool metrics_in_engine_loop = false;
  FaultOptions faults;
};

// How late token chunks were written compared with the engine's schedule (wall time).
struct TokenLateness {
  std::uint64_t tokens = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;
};

class SimServer {
 public:
  // Checks the options and creates one engine per replica. Errors are usage or profile
  // errors (the message names the option or the profile field).
  static Result<std::unique_ptr<SimServer>> Create(const Profile& profile,
                                                   SimServerOptions options);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds every replica's listener. Returns "address:port" per replica, in order, with
  // the real port. Errors (e.g. the address cannot be bound) are runtime failures.
  Result<std::vector<std::string>> Listen();

  // From now on SIGTERM and SIGINT call Shutdown (a signal that arrives before Run is
  // handled once Run starts). Call before announcing the listeners.
  void HandleSignals();

  // Serves until Shutdown completes. Requires a successful Listen.
  void Run();

  // Starts the shutdown described above. Safe from any thread; idempotent.
  void Shutdown();

  // Token lateness over all replicas (complete after Run has returned).
  TokenLateness Lateness() const;

 private:
  struct Impl;
  explicit SimServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace infergate::sim
