// Engine: a step-based model of one vLLM server, clocked from outside.
//
// The engine holds the requests of one model server and decides, step by step, what the
// GPU computes, the way vLLM's scheduler does (virtual_scheduler.h has the algorithms): waiting
// and running queues, a token budget per step, max_num_seqs, a paged KV cache with
// prefix caching and preemption by recompute, LoRA slots, and pipeline parallelism as
// vLLM V0 runs it. Each step's duration comes from the TimingModel. No wall clock, no
// threads, no I/O: time is whatever the caller says it is, so the same engine runs in
// real time behind HTTP (multiplying by a time scale) and in virtual time in the
// cluster simulation. Same profile, seed and calls → the same events, bit for bit.
//
// Driving it:
//   engine->Submit(request, now);            // and Abort(id, now) at any time
//   engine->AdvanceTo(now, sink);            // run every step that ends by `now`
//   TimeNs next = engine->NextEventTime();   // when to call AdvanceTo again (kNever: idle)
// Submit and Abort only queue the change at `now`; AdvanceTo applies it in time order with
// the steps, so calls may interleave freely. Times never go backwards: a time earlier
// than one already seen is taken as that later time.
//
// Timeline of a virtual engine (there is one per pipeline stage, see below): when it has
// work and no step in flight it schedules a step at once (at the end of its previous step,
// or when a request arrives while it is idle). The step then occupies pipeline stage 0,
// 1, ..., pp−1 in turn for the TimingModel's stage time, each stage serving steps in the
// order they were scheduled (one at a time); the step's tokens are produced when its last
// stage ends, and only then is that virtual engine's next step scheduled. With pp = 1 a
// step simply lasts its stage time. With pp virtual engines, up to pp steps are in flight
// (stage s of one overlapping stage s+1 of another), which is vLLM V0's pipelining. Each
// virtual engine has its own queues and num_gpu_blocks/pp blocks; a new request goes to
// the one with the fewest unfinished requests (ties: the lowest index).
//
// At one instant, events are applied in this order: steps ending, then Submit/Abort calls
// (in call order), then scheduling decisions.
//
// Abort: at its time the request leaves its queue and its blocks return to the pool, even
// if it is part of a step in flight; that step keeps its duration but produces nothing for
// it (the blocks cannot be reused earlier anyway: its virtual engine schedules again only
// after the step). An OnFinished event with reason kAbort is emitted at the abort time.
//
// Thread-safety: not thread-safe. One owner drives it (one strand / one thread). The
// EventSink must not call back into the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "sim/engine/engine_config.h"
#include "sim/engine/profile.h"
#include "sim/engine/request.h"
#include "sim/engine/timing_model.h"
#include "sim/engine/virtual_scheduler.h"

namespace infergate::sim {

struct TokenEvent {
  RequestId id = 0;
  int index = 0;  // 0 is the first token, produced by the end of prefill
  TokenId token = 0;
  std::uint64_t piece_key = 0;  // render with AppendOutputText(piece_key, eos, out)
  bool eos = false;             // the end-of-sequence token (no text)
  bool last = false;            // an OnFinished for this request follows at the same time
  TimeNs time = 0;
};

struct FinishedEvent {
  RequestId id = 0;
  FinishReason reason = FinishReason::kLength;
  RequestTiming timing;
};

// Receives the engine's events in time order, during AdvanceTo. All methods default to
// doing nothing. Must not call into the engine.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // The first step including the request was scheduled (vLLM's first_scheduled_time; the
  // queue time is time − arrival).
  virtual void OnScheduled(RequestId /*id*/, TimeNs /*time*/) {}
  virtual void OnToken(const TokenEvent& /*token*/) {}
  // The request was preempted by recompute; its next token comes after a new prefill.
  virtual void OnPreempted(RequestId /*id*/, TimeNs /*time*/) {}
  // Last event of every accepted request: stop, length or abort.
  virtual void OnFinished(const FinishedEvent& /*finished*/) {}
};

struct VirtualEngineStats {
  int num_running = 0;
  int num_waiting = 0;
  std::int64_t num_blocks = 0;
  std::int64_t num_free_blocks = 0;
};

// A snapshot for /metrics and for tests; counters are totals since creation.
struct EngineStats {
  TimeNs time = 0;  // the engine time the snapshot describes
  int num_running = 0;
  int num_waiting = 0;
  int num_swapped = 0;  // always 0: preemption is by recompute
  double kv_usage = 0;  // 1 − free/total blocks; cached-but-unused blocks count as free
  std::int64_t num_gpu_blocks = 0;
  std::int64_t num_free_blocks = 0;
  int block_size = 0;
  std::uint64_t prefix_cache_queries = 0;  // tokens looked up at admission (prefix caching on)
  std::uint64_t prefix_cache_hits = 0;     // tokens found in the cache
  std::uint64_t num_preemptions = 0;
  std::uint64_t prompt_tokens = 0;            // prompt tokens of requests whose prefill completed
  std::uint64_t generation_tokens = 0;        // output tokens produced
  std::uint64_t prefill_tokens_computed = 0;  // includes recompute after preemption
  std::uint64_t finished_stop = 0;
  std::uint64_t finished_length = 0;
  std::uint64_t finished_abort = 0;
  std::uint64_t num_steps = 0;
  std::uint64_t lora_loads = 0;
  // vllm:lora_requests_info: adapters of running and waiting requests (sorted), max_loras.
  std::vector<std::string> running_loras;
  std::vector<std::string> waiting_loras;
  int max_loras = 0;
  std::vector<VirtualEngineStats> virtual_engines;
};

struct Admission {
  int max_tokens = 0;  // after applying the default
};

// vLLM's check of prompt + max_tokens against max_model_len. Returns vLLM's error message
// ("This model's maximum context length is ...") when the request is too long, else "".
std::string ContextLengthError(int max_model_len, int prompt_tokens, std::optional<int> max_tokens);

class Engine {
 public:
  // Resolves and validates the profile. `seed` drives output tokens and EOS draws.
  static Result<std::unique_ptr<Engine>> Create(const Profile& profile, std::uint64_t seed = 0);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  const Profile& profile() const { return profile_; }
  const EngineConfig& config() const { return config_; }
  const TimingModel& timing() const { return timing_; }
  std::uint64_t seed() const { return seed_; }

  // Queues a request arriving at `now`. Errors (all the client's fault; the message is
  // fit for an HTTP 400 body): empty prompt; max_tokens < 1; min_tokens outside
  // [0, max_tokens]; prompt + max_tokens > max_model_len, or prompt >= max_model_len
  // without max_tokens (vLLM's message, see ContextLengthError); a LoRA adapter when
  // max_loras is 0; a sequence that could never fit one virtual engine's KV cache; an id
  // already in use by an unfinished request.
  Result<Admission> Submit(EngineRequest request, TimeNs now);

  // Queues the abort of request `id` at `now`. Returns false if the id is unknown,
  // already finished (as of the events processed so far), already being aborted, or if
  // called from an event callback.
  bool Abort(RequestId id, TimeNs now);

  // The time of the next thing AdvanceTo would do: a step ending, a queued call, or a
  // scheduling decision; kNever when there is nothing to do. May be earlier than the last
  // time passed in (then call AdvanceTo right away).
  TimeNs NextEventTime() const;

  // Processes, in time order, everything due at or before `now`, emitting events to
  // `sink`. Afterwards the engine's time is max(previous, now).
  void AdvanceTo(TimeNs now, EventSink& sink);

  // State after the events processed so far.
  EngineStats Stats() const;
  TimeNs now() const { return now_; }
  // Requests submitted and not yet finished (including queued Submits).
  int num_unfinished() const { return static_cast<int>(live_.size()); }
  int num_running() const;
  int num_waiting() const;

 private:
  struct VirtualEngine {
    std::unique_ptr<VirtualScheduler> scheduler;
    bool busy = false;         // a step is in flight
    TimeNs event_at = kNever;  // busy: when the step ends; else: when to schedule
    StepPlan step;
    std::vector<std::unique_ptr<Sequence>> aborted_in_flight;
  };
  // A Submit or Abort waiting for AdvanceTo to reach its time.
  struct PendingCall {
    TimeNs time;
    bool abort;
    RequestId id;
    std::uint64_t order;  // Sequence::order, so an abort cannot hit a reused id
    Sequence* seq;        // Submit only
  };

  Engine(Profile profile, EngineConfig config, TimingModel timing, std::uint64_t seed);

  TimeNs Clamp(TimeNs t) const { return t < now_ ? now_ : t; }
  void ApplyCall(const PendingCall& call, EventSink& sink);
  void Decide(int ve, TimeNs t, EventSink& sink);
  void Complete(int ve, TimeNs t, EventSink& sink);
  int LoadAdapters(const StepPlan& plan);
  void Finish(Sequence* s, FinishReason reason, TimeNs t, EventSink& sink);
  int AdapterIndex(const std::string& name);

  Profile profile_;
  EngineConfig config_;
  TimingModel timing_;
  std::uint64_t seed_;
  TimeNs now_ = 0;
  std::uint64_t next_order_ = 0;
  bool in_advance_ = false;

  std::vector<VirtualEngine> ves_;
  std::vector<TimeNs> stage_free_;  // when each pipeline stage finishes its queued work
  std::unordered_map<RequestId, std::unique_ptr<Sequence>> live_;
  std::vector<PendingCall> calls_;
  std::size_t calls_head_ = 0;

  // LoRA adapters by name (index + 1 is Sequence::lora), and the ones loaded on the GPU
  // with their last use.
  std::vector<std::string> adapter_names_;
  std::unordered_map<std::string, int> adapter_index_;
  struct LoadedAdapter {
    int lora;
    std::uint64_t last_used;
  };
  std::vector<LoadedAdapter> loaded_;
  std::uint64_t use_clock_ = 0;

  SchedulerCounters counters_;
  std::uint64_t preemptions_ = 0, prompt_tokens_ = 0, generation_tokens_ = 0;
  std::uint64_t finished_[3] = {0, 0, 0};
  std::uint64_t steps_ = 0, lora_loads_ = 0;
};

}  // namespace infergate::sim
