#include "sim/engine/virtual_scheduler.h"

#include <algorithm>
#include <cassert>

namespace infergate::sim {
namespace {

bool Contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

bool PriorityBefore(const Sequence* a, const Sequence* b) {
  if (a->priority != b->priority) return a->priority < b->priority;
  if (a->timing.arrival != b->timing.arrival) return a->timing.arrival < b->timing.arrival;
  return a->order < b->order;
}

void HashFullBlocks(Sequence& s, int block_size) {
  const std::size_t full = s.tokens.size() / static_cast<std::size_t>(block_size);
  while (s.hashes.size() < full) {
    const std::size_t k = s.hashes.size();
    const BlockHash parent = k == 0 ? 0 : s.hashes[k - 1];
    s.hashes.push_back(
        ChainHash(parent, std::span<const TokenId>(s.tokens.data() + k * block_size, block_size),
                  s.hash_extra));
  }
}

VirtualScheduler::VirtualScheduler(const EngineConfig& config, SchedulerCounters* counters)
    : config_(config),
      counters_(counters),
      block_size_(config.block_size),
      v1_(config.version == EngineVersion::kV1),
      priority_(config.policy == SchedulingPolicy::kPriority),
      pool_(config.blocks_per_virtual_engine, config.prefix_caching) {}

void VirtualScheduler::AddWaiting(Sequence* s) {
  s->state = Sequence::State::kWaiting;
  if (priority_) {
    InsertWaitingByPriority(s);
  } else {
    waiting_.push_back(s);
  }
}

void VirtualScheduler::InsertWaitingByPriority(Sequence* s) {
  auto it =
      std::upper_bound(waiting_.begin(), waiting_.end(), s,
                       [](const Sequence* a, const Sequence* b) { return PriorityBefore(a, b); });
  waiting_.insert(it, s);
}

void VirtualScheduler::InsertRunningByPriority(Sequence* s) {
  auto it =
      std::upper_bound(running_.begin(), running_.end(), s,
                       [](const Sequence* a, const Sequence* b) { return PriorityBefore(a, b); });
  running_.insert(it, s);
}

void VirtualScheduler::Schedule(StepPlan& plan) {
  plan.Clear();
  if (config_.chunked_prefill) {
    ScheduleRunningFirst(plan);
  } else {
    SchedulePrefillFirst(plan);
  }
  for (const ScheduledSeq& ss : plan.seqs) {
    plan.shape.Add(ss.new_tokens, ss.context, ss.decode, ss.samples);
    if (!ss.decode) counters_->prefill_tokens += static_cast<std::uint64_t>(ss.new_tokens);
  }
}

BlockPool::Hit VirtualScheduler::CacheHit(const Sequence* s) const {
  if (!config_.prefix_caching || s->num_computed != 0) return {};
  // At least one token must be computed so the step can sample from it.
  const std::size_t cap = static_cast<std::size_t>((s->num_tokens() - 1) / block_size_);
  const std::size_t n = std::min(cap, s->hashes.size());
  return pool_.Lookup(std::span<const BlockHash>(s->hashes.data(), n));
}

VirtualScheduler::Alloc VirtualScheduler::CanAdmit(const Sequence* s, const BlockPool::Hit& hit,
                                                   int n) const {
  if (v1_) {
    // V1 allocates only what this step computes; free cached blocks of the hit stop being
    // free when taken.
    const std::int64_t need =
        BlocksFor(static_cast<std::int64_t>(hit.blocks) * block_size_ + n) - hit.blocks;
    return need <= pool_.num_free() - hit.free_blocks ? Alloc::kOk : Alloc::kLater;
  }
  // V0 allocates the whole sequence and keeps the watermark free, not crediting hits.
  const std::int64_t required = BlocksFor(s->num_tokens());
  return pool_.num_free() - required >= config_.watermark_blocks ? Alloc::kOk : Alloc::kLater;
}

void VirtualScheduler::Admit(Sequence* s, const BlockPool::Hit& hit, int n) {
  const int hit_tokens = hit.blocks * block_size_;
  if (config_.prefix_caching) {
    counters_->prefix_cache_queries += static_cast<std::uint64_t>(s->num_tokens());
    counters_->prefix_cache_hits += static_cast<std::uint64_t>(hit_tokens);
  }
  if (s->timing.first_scheduled < 0) s->timing.cached_prompt_tokens = hit_tokens;
  pool_.AcquireCached(s->hashes, hit.blocks, s->blocks);
  s->num_computed = hit_tokens;
  s->num_registered = hit.blocks;
  const std::int64_t upto = v1_ ? static_cast<std::int64_t>(hit_tokens) + n : s->num_tokens();
  pool_.Allocate(BlocksFor(upto) - static_cast<std::int64_t>(s->blocks.size()), s->blocks);
  if (v1_) RegisterFullBlocks(s, hit_tokens + n);
  s->state = Sequence::State::kRunning;
}

bool VirtualScheduler::Grow(Sequence* s, int n) {
  const std::int64_t need = BlocksFor(static_cast<std::int64_t>(s->num_computed) + n) -
                            static_cast<std::int64_t>(s->blocks.size());
  if (need > pool_.num_free()) return false;
  if (need > 0) pool_.Allocate(need, s->blocks);
  if (v1_) RegisterFullBlocks(s, s->num_computed + n);
  return true;
}

void VirtualScheduler::RegisterFullBlocks(Sequence* s, int tokens) {
  if (!config_.prefix_caching) return;
  const int full = std::min({tokens / block_size_, static_cast<int>(s->hashes.size()),
                             static_cast<int>(s->blocks.size())});
  for (int k = s->num_registered; k < full; ++k) {
    pool_.Register(s->blocks[static_cast<std::size_t>(k)], s->hashes[static_cast<std::size_t>(k)]);
  }
  s->num_registered = std::max(s->num_registered, full);
}

void VirtualScheduler::Preempt(Sequence* s) {
  pool_.Release(s->blocks);
  s->blocks.clear();
  s->num_computed = 0;
  s->num_registered = 0;
  s->in_flight = false;
  s->state = Sequence::State::kWaiting;
  ++s->timing.preemptions;
}

void VirtualScheduler::AddToPlan(StepPlan& plan, Sequence* s, int n) {
  ScheduledSeq ss;
  ss.seq = s;
  ss.new_tokens = n;
  ss.context = s->num_computed;
  ss.samples = s->num_computed + n == s->num_tokens();
  ss.decode = s->output_len > 0 && n == 1 && ss.samples;
  s->in_flight = true;
  plan.seqs.push_back(ss);
}

void VirtualScheduler::SchedulePrefillFirst(StepPlan& plan) {
  const std::int64_t budget = config_.max_num_batched_tokens;
  int num_seqs = num_running();
  std::int64_t tokens = 0;
  std::vector<int>& loras = scratch_loras_;
  loras.clear();
  if (config_.max_loras > 0) {
    for (const Sequence* r : running_) {
      if (r->lora != 0 && !Contains(loras, r->lora)) loras.push_back(r->lora);
    }
  }
  std::vector<Sequence*>& leftover = scratch_seqs_;
  leftover.clear();
  while (!waiting_.empty()) {
    Sequence* s = waiting_.front();
    const BlockPool::Hit hit = CacheHit(s);
    const int uncached = s->num_tokens() - hit.blocks * block_size_;
    if (CanAdmit(s, hit, uncached) != Alloc::kOk) break;
    if (s->lora != 0 && !Contains(loras, s->lora) &&
        static_cast<int>(loras.size()) >= config_.max_loras) {
      // No adapter slot this step: set aside, keeping its place in the queue.
      leftover.push_back(s);
      waiting_.pop_front();
      continue;
    }
    if (tokens + uncached > budget || num_seqs + 1 > config_.max_num_seqs) break;
    waiting_.pop_front();
    if (s->lora != 0 && !Contains(loras, s->lora)) loras.push_back(s->lora);
    Admit(s, hit, uncached);
    AddToPlan(plan, s, uncached);
    if (priority_) {
      InsertRunningByPriority(s);
    } else {
      running_.push_back(s);
    }
    tokens += uncached;
    ++num_seqs;
  }
  waiting_.insert(waiting_.begin(), leftover.begin(), leftover.end());
  if (!plan.seqs.empty()) return;

  if (priority_) PriorityPreemption(num_running(), budget, plan);

  // Decode every running sequence, oldest (or highest-priority) first.
  std::deque<Sequence*> remaining;
  remaining.swap(running_);
  std::vector<Sequence*> preempted;
  while (!remaining.empty()) {
    Sequence* s = remaining.front();
    remaining.pop_front();
    bool scheduled = true;
    while (!Grow(s, 1)) {
      Sequence* victim = s;
      if (!remaining.empty()) {
        victim = remaining.back();
        remaining.pop_back();
      }
      Preempt(victim);
      preempted.push_back(victim);
      if (victim == s) {
        scheduled = false;
        break;
      }
    }
    if (scheduled) {
      AddToPlan(plan, s, 1);
      running_.push_back(s);
    }
  }
  // Preempted sequences go back to the head of the queue (the last preempted first, as
  // vLLM's deque.extendleft does).
  for (Sequence* p : preempted) {
    if (priority_) {
      InsertWaitingByPriority(p);
    } else {
      waiting_.push_front(p);
    }
    plan.preempted.push_back(p);
  }
}

void VirtualScheduler::PriorityPreemption(int seqs_in_budget, std::int64_t tokens_budget,
                                          StepPlan& plan) {
  if (waiting_.empty()) return;
  Sequence* head = waiting_.front();
  while (!running_.empty() && PriorityBefore(head, running_.back())) {
    const BlockPool::Hit hit = CacheHit(head);
    const int uncached = head->num_tokens() - hit.blocks * block_size_;
    if (uncached > 0 && CanAdmit(head, hit, uncached) == Alloc::kOk && uncached <= tokens_budget &&
        seqs_in_budget + 1 <= config_.max_num_seqs) {
      break;
    }
    Sequence* victim = running_.back();
    running_.pop_back();
    --seqs_in_budget;
    Preempt(victim);
    InsertWaitingByPriority(victim);
    plan.preempted.push_back(victim);
  }
}

void VirtualScheduler::ScheduleRunningFirst(StepPlan& plan) {
  std::int64_t budget = config_.max_num_batched_tokens;
  std::vector<int>& loras = scratch_loras_;
  loras.clear();
  std::size_t i = 0;
  while (i < running_.size() && budget > 0) {
    Sequence* s = running_[i];
    const int n =
        static_cast<int>(std::min<std::int64_t>(s->num_tokens() - s->num_computed, budget));
    bool scheduled = true;
    while (!Grow(s, n)) {
      // Preempt the newest running sequence (the lowest-priority one under the priority
      // policy), which may be `s` itself.
      std::size_t vi = running_.size() - 1;
      if (priority_) {
        for (std::size_t k = 0; k < running_.size(); ++k) {
          if (PriorityBefore(running_[vi], running_[k])) vi = k;
        }
      }
      Sequence* victim = running_[vi];
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(vi));
      if (vi < i) {
        // Already scheduled in this step: take it back out and refund its tokens.
        auto it = std::find_if(plan.seqs.begin(), plan.seqs.end(),
                               [&](const ScheduledSeq& ss) { return ss.seq == victim; });
        budget += it->new_tokens;
        plan.seqs.erase(it);
        --i;
      }
      Preempt(victim);
      plan.preempted.push_back(victim);
      if (priority_) {
        InsertWaitingByPriority(victim);
      } else {
        waiting_.push_front(victim);
      }
      if (victim == s) {
        scheduled = false;
        break;
      }
    }
    if (!scheduled) break;
    AddToPlan(plan, s, n);
    budget -= n;
    if (s->lora != 0 && !Contains(loras, s->lora)) loras.push_back(s->lora);
    ++i;
  }
  if (!plan.preempted.empty()) return;

  std::vector<Sequence*>& leftover = scratch_seqs_;
  leftover.clear();
  while (!waiting_.empty() && budget > 0) {
    if (num_running() >= config_.max_num_seqs) break;
    Sequence* s = waiting_.front();
    if (s->lora != 0 && !Contains(loras, s->lora) &&
        static_cast<int>(loras.size()) >= config_.max_loras) {
      leftover.push_back(s);
      waiting_.pop_front();
      continue;
    }
    const BlockPool::Hit hit = CacheHit(s);
    const int n = static_cast<int>(
        std::min<std::int64_t>(s->num_tokens() - hit.blocks * block_size_, budget));
    if (CanAdmit(s, hit, n) != Alloc::kOk) break;
    waiting_.pop_front();
    if (s->lora != 0 && !Contains(loras, s->lora)) loras.push_back(s->lora);
    Admit(s, hit, n);
    AddToPlan(plan, s, n);
    running_.push_back(s);
    budget -= n;
  }
  waiting_.insert(waiting_.begin(), leftover.begin(), leftover.end());
}

void VirtualScheduler::OnComputed(Sequence* s, int new_tokens) {
  s->num_computed += new_tokens;
  if (!v1_) RegisterFullBlocks(s, s->num_computed);
}

void VirtualScheduler::OnTokenAppended(Sequence* s, TokenId token) {
  if (!config_.prefix_caching) return;
  s->tokens.push_back(token);
  HashFullBlocks(*s, block_size_);
}

void VirtualScheduler::Remove(Sequence* s) {
  auto erase = [s](std::deque<Sequence*>& q) {
    auto it = std::find(q.begin(), q.end(), s);
    if (it == q.end()) return false;
    q.erase(it);
    return true;
  };
  if (!erase(running_)) erase(waiting_);
  pool_.Release(s->blocks);
  s->blocks.clear();
  s->state = Sequence::State::kDone;
}

}  // namespace infergate::sim
