// VirtualScheduler: the queues, KV blocks and scheduling algorithm of one virtual engine.
//
// Internal to the engine (Engine owns one per pipeline-parallel virtual engine); the
// public contract is engine.h. Two algorithms, after vLLM:
//
// Prefill-first (V0 default, chunked prefill off). Running sequences count against
// max_num_seqs first. Waiting sequences are admitted in queue order while each fits the
// token budget, max_num_seqs and the free blocks minus the watermark (its whole sequence
// must fit; the first that does not stops admission); a sequence whose LoRA adapter would
// exceed max_loras is set aside and keeps its place. If anything was admitted the step is
// that prefill batch alone. Otherwise every running sequence decodes one token, oldest
// first; when one cannot get a slot for its new token, the newest running sequence not yet
// scheduled in this step is preempted by recompute (its blocks freed, computed tokens
// forgotten, generated tokens kept) and put back at the head of the waiting queue; if
// there is none left, the sequence itself is. Under the priority policy the queues are
// ordered by (priority, arrival) instead, and when nothing could be admitted, running
// sequences of lower priority than the head of the queue are preempted until it fits.
//
// Running-first (V1, and V0 with chunked prefill). Running sequences are served in order
// with the token budget: one token for decodes, the rest of the prompt (chunked to the
// remaining budget) for partial prefills; a sequence that cannot get blocks preempts the
// newest running sequence (the lowest-priority one under the priority policy) until it
// fits or is itself preempted. Then, only if nothing was preempted, waiting sequences
// are admitted in order into the remaining budget (chunked) while max_num_seqs, max_loras
// and the blocks allow. V1 allocates blocks as tokens are scheduled and counts prefix-cache
// hits; V0 allocates the whole sequence at admission and keeps the watermark.
//
// Prefix caching: at admission the sequence's full blocks are looked up by chain hash;
// the hit is capped at num_tokens − 1 tokens (something must be computed to sample) and
// reuses those blocks. Blocks are registered for reuse when scheduled (V1) or when their
// tokens have been computed (V0).
//
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "sim/engine/block_pool.h"
#include "sim/engine/engine_config.h"
#include "sim/engine/output_model.h"
#include "sim/engine/request.h"
#include "sim/engine/timing_model.h"

namespace infergate::sim {

// One request inside the engine.
struct Sequence {
  enum class State { kPending, kWaiting, kRunning, kDone };

  RequestId id = 0;
  std::uint64_t order = 0;  // submission number; breaks ties between equal arrivals
  int prompt_len = 0;
  OutputPlan plan;
  int lora = 0;  // 0: base model; else index + 1 into the engine's adapter names
  int priority = 0;
  State state = State::kPending;
  bool in_flight = false;        // part of the virtual engine's step in progress
  bool abort_requested = false;  // an Abort is queued
  int virtual_engine = 0;

  int output_len = 0;
  int num_computed = 0;    // tokens whose K/V are in the cache
  int num_registered = 0;  // leading blocks registered in the prefix cache
  std::vector<BlockId> blocks;
  // Prefix caching only: all tokens (prompt, then output) and the chain hash of every
  // full block of them.
  std::vector<TokenId> tokens;
  std::vector<BlockHash> hashes;
  std::uint64_t hash_extra = 0;

  RequestTiming timing;

  int num_tokens() const { return prompt_len + output_len; }
};

// One sequence's share of a step.
struct ScheduledSeq {
  Sequence* seq = nullptr;
  int new_tokens = 0;
  int context = 0;  // tokens already computed before this step
  bool decode = false;
  bool samples = false;  // the step completes its tokens, so it samples one
};

struct StepPlan {
  std::vector<ScheduledSeq> seqs;
  std::vector<Sequence*> preempted;
  BatchShape shape;
  void Clear() {
    seqs.clear();
    preempted.clear();
    shape = BatchShape();
  }
};

// Counters the scheduler adds to; owned by the engine.
struct SchedulerCounters {
  std::uint64_t prefix_cache_queries = 0;  // tokens looked up at admission
  std::uint64_t prefix_cache_hits = 0;     // tokens found
  std::uint64_t prefill_tokens = 0;        // prompt/recompute tokens computed
};

class VirtualScheduler {
 public:
  VirtualScheduler(const EngineConfig& config, SchedulerCounters* counters);

  // Queues a newly arrived sequence.
  void AddWaiting(Sequence* s);

  // Forms the next step into `plan` (cleared first). Preempted sequences are listed in
  // plan.preempted; scheduled ones are marked in_flight.
  void Schedule(StepPlan& plan);

  // Applies a finished step to `s`: its computed tokens grow by `new_tokens`.
  void OnComputed(Sequence* s, int new_tokens);
  // Records output token `token` of `s` for prefix caching (a no-op without it).
  void OnTokenAppended(Sequence* s, TokenId token);

  // Removes `s` (running or waiting) and frees its blocks: finish or abort.
  void Remove(Sequence* s);

  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  int num_unfinished() const { return num_waiting() + num_running(); }
  const BlockPool& pool() const { return pool_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const std::deque<Sequence*>& running() const { return running_; }

 private:
  enum class Alloc { kOk, kLater };
  void SchedulePrefillFirst(StepPlan& plan);
  void ScheduleRunningFirst(StepPlan& plan);
  void PriorityPreemption(int seqs_in_budget, std::int64_t tokens_budget, StepPlan& plan);

  // Prefix-cache hit for a sequence with nothing computed: whole blocks, capped below its
  // length. Returns the hit in blocks.
  BlockPool::Hit CacheHit(const Sequence* s) const;
  // Admission of a waiting sequence computing `n` of its tokens after a hit of `hit`.
  Alloc CanAdmit(const Sequence* s, const BlockPool::Hit& hit, int n) const;
  void Admit(Sequence* s, const BlockPool::Hit& hit, int n);
  // Blocks for a running sequence to compute `n` more tokens; false if they do not fit.
  bool Grow(Sequence* s, int n);
  void RegisterFullBlocks(Sequence* s, int tokens);
  void Preempt(Sequence* s);
  void InsertWaitingByPriority(Sequence* s);
  void InsertRunningByPriority(Sequence* s);
  void AddToPlan(StepPlan& plan, Sequence* s, int n);
  int BlocksFor(std::int64_t tokens) const {
    return static_cast<int>((tokens + block_size_ - 1) / block_size_);
  }

  const EngineConfig& config_;
  SchedulerCounters* counters_;
  const int block_size_;
  const bool v1_;
  const bool priority_;
  BlockPool pool_;
  std::deque<Sequence*> waiting_;
  std::deque<Sequence*> running_;
  std::vector<int> scratch_loras_;
  std::vector<Sequence*> scratch_seqs_;
};

// Extends s.hashes to cover every full block of s.tokens.
void HashFullBlocks(Sequence& s, int block_size);

// True if `a` runs before `b` under the priority policy: lower priority value, then
// earlier arrival, then earlier submission.
bool PriorityBefore(const Sequence* a, const Sequence* b);

}  // namespace infergate::sim
