#include "sim/engine/engine.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>

#include "sim/engine/output_model.h"

namespace infergate::sim {

std::string ContextLengthError(int max_model_len, int prompt_tokens,
                               std::optional<int> max_tokens) {
  const std::string head =
      "This model's maximum context length is " + std::to_string(max_model_len) + " tokens. ";
  if (!max_tokens) {
    if (prompt_tokens < max_model_len) return "";
    return head + "However, you requested " + std::to_string(prompt_tokens) +
           " tokens in the messages, Please reduce the length of the messages.";
  }
  if (static_cast<std::int64_t>(prompt_tokens) + *max_tokens <= max_model_len) return "";
  return head + "However, you requested " +
         std::to_string(static_cast<std::int64_t>(prompt_tokens) + *max_tokens) + " tokens (" +
         std::to_string(prompt_tokens) + " in the messages, " + std::to_string(*max_tokens) +
         " in the completion). Please reduce the length of the messages or completion.";
}

Result<std::unique_ptr<Engine>> Engine::Create(const Profile& profile, std::uint64_t seed) {
  auto config = ResolveEngineConfig(profile);
  if (!config.ok()) return config.error();
  auto timing = TimingModel::Create(profile);
  if (!timing.ok()) return timing.error();
  return std::unique_ptr<Engine>(new Engine(profile, std::move(*config), std::move(*timing), seed));
}

Engine::Engine(Profile profile, EngineConfig config, TimingModel timing, std::uint64_t seed)
    : profile_(std::move(profile)),
      config_(std::move(config)),
      timing_(std::move(timing)),
      seed_(seed),
      stage_free_(static_cast<std::size_t>(timing_.num_stages()), 0) {
  ves_.resize(static_cast<std::size_t>(config_.pipeline_parallel));
  for (VirtualEngine& ve : ves_) {
    ve.scheduler = std::make_unique<VirtualScheduler>(config_, &counters_);
  }
}

Engine::~Engine() = default;

int Engine::AdapterIndex(const std::string& name) {
  auto [it, inserted] = adapter_index_.emplace(name, static_cast<int>(adapter_names_.size()));
  if (inserted) adapter_names_.push_back(name);
  return it->second;
}

Result<Admission> Engine::Submit(EngineRequest request, TimeNs now) {
  if (in_advance_) return Error{"Engine::Submit called from an event callback"};
  now = Clamp(now);
  const int prompt_len = static_cast<int>(request.prompt.size());
  if (prompt_len == 0) return Error{"The prompt cannot be empty."};
  if (request.max_tokens && *request.max_tokens < 1) {
    return Error{"max_tokens must be at least 1, got " + std::to_string(*request.max_tokens) + "."};
  }
  if (std::string e = ContextLengthError(config_.max_model_len, prompt_len, request.max_tokens);
      !e.empty()) {
    return Error{e};
  }
  const int max_tokens = request.max_tokens.value_or(config_.max_model_len - prompt_len);
  if (request.min_tokens < 0) {
    return Error{"min_tokens must be greater than or equal to 0, got " +
                 std::to_string(request.min_tokens) + "."};
  }
  if (request.min_tokens > max_tokens) {
    return Error{"min_tokens must be less than or equal to max_tokens=" +
                 std::to_string(max_tokens) + ", got " + std::to_string(request.min_tokens) + "."};
  }
  if (!request.lora.empty() && config_.max_loras == 0) {
    return Error{"LoRA adapter '" + request.lora +
                 "' requested but LoRA is not enabled on this server (max_loras is 0)."};
  }
  // vLLM would accept such a request and then never be able to schedule it (or ignore it
  // once its recompute no longer fits); refuse it up front instead.
  const std::int64_t longest = static_cast<std::int64_t>(prompt_len) + max_tokens;
  const std::int64_t usable_blocks =
      config_.blocks_per_virtual_engine -
      (config_.version == EngineVersion::kV0 ? config_.watermark_blocks : 0);
  if ((longest + config_.block_size - 1) / config_.block_size > usable_blocks) {
    return Error{"The request needs up to " + std::to_string(longest) +
                 " tokens of KV cache, but this server can hold at most " +
                 std::to_string(usable_blocks * config_.block_size) + " tokens per sequence."};
  }
  if (live_.count(request.id) != 0) {
    return Error{"Request id " + std::to_string(request.id) + " is already in use."};
  }

  auto seq = std::make_unique<Sequence>();
  Sequence* s = seq.get();
  s->id = request.id;
  s->order = next_order_++;
  s->prompt_len = prompt_len;
  s->plan = PlanOutput(profile_.eos, seed_, request.id, max_tokens, request.min_tokens,
                       request.ignore_eos);
  s->lora = request.lora.empty() ? 0 : AdapterIndex(request.lora) + 1;
  s->priority = request.priority;
  s->timing.arrival = now;
  s->timing.prompt_tokens = prompt_len;
  if (config_.prefix_caching) {
    s->hash_extra =
        request.lora.empty() ? 0 : Mix64(XXH3_64bits(request.lora.data(), request.lora.size()));
    s->tokens = std::move(request.prompt);
    s->tokens.reserve(static_cast<std::size_t>(prompt_len + s->plan.length));
    HashFullBlocks(*s, config_.block_size);
  }
  live_.emplace(request.id, std::move(seq));
  calls_.push_back(PendingCall{now, false, s->id, s->order, s});
  return Admission{max_tokens};
}

bool Engine::Abort(RequestId id, TimeNs now) {
  if (in_advance_) return false;
  auto it = live_.find(id);
  if (it == live_.end() || it->second->abort_requested) return false;
  Sequence* s = it->second.get();
  s->abort_requested = true;
  calls_.push_back(PendingCall{Clamp(now), true, id, s->order, nullptr});
  return true;
}

TimeNs Engine::NextEventTime() const {
  TimeNs t = calls_head_ < calls_.size() ? calls_[calls_head_].time : kNever;
  for (const VirtualEngine& ve : ves_) t = std::min(t, ve.event_at);
  return t;
}

void Engine::AdvanceTo(TimeNs now, EventSink& sink) {
  assert(!in_advance_ && "EventSink called back into the engine");
  if (in_advance_) return;
  in_advance_ = true;
  while (true) {
    // Earliest step end, then queued call, then scheduling decision (see engine.h).
    TimeNs t_end = kNever, t_decide = kNever;
    int ve_end = -1, ve_decide = -1;
    for (int v = 0; v < static_cast<int>(ves_.size()); ++v) {
      const VirtualEngine& ve = ves_[static_cast<std::size_t>(v)];
      if (ve.busy && ve.event_at < t_end) {
        t_end = ve.event_at;
        ve_end = v;
      } else if (!ve.busy && ve.event_at < t_decide) {
        t_decide = ve.event_at;
        ve_decide = v;
      }
    }
    const TimeNs t_call = calls_head_ < calls_.size() ? calls_[calls_head_].time : kNever;
    const TimeNs t = std::min({t_end, t_call, t_decide});
    if (t == kNever || t > now) break;
    now_ = std::max(now_, t);
    if (t_end == t) {
      Complete(ve_end, t, sink);
    } else if (t_call == t) {
      const PendingCall call = calls_[calls_head_++];
      ApplyCall(call, sink);
    } else {
      Decide(ve_decide, t, sink);
    }
  }
  if (calls_head_ == calls_.size()) {
    calls_.clear();
    calls_head_ = 0;
  }
  now_ = std::max(now_, now);
  in_advance_ = false;
}

void Engine::ApplyCall(const PendingCall& call, EventSink& sink) {
  if (!call.abort) {
    Sequence* s = call.seq;
    int best = 0;
    for (int v = 1; v < static_cast<int>(ves_.size()); ++v) {
      if (ves_[static_cast<std::size_t>(v)].scheduler->num_unfinished() <
          ves_[static_cast<std::size_t>(best)].scheduler->num_unfinished()) {
        best = v;
      }
    }
    s->virtual_engine = best;
    s->timing.virtual_engine = best;
    VirtualEngine& ve = ves_[static_cast<std::size_t>(best)];
    ve.scheduler->AddWaiting(s);
    if (!ve.busy && ve.event_at == kNever) ve.event_at = call.time;
    return;
  }
  auto it = live_.find(call.id);
  if (it == live_.end() || it->second->order != call.order) return;  // finished first
  Sequence* s = it->second.get();
  ves_[static_cast<std::size_t>(s->virtual_engine)].scheduler->Remove(s);
  Finish(s, FinishReason::kAbort, call.time, sink);
}

void Engine::Finish(Sequence* s, FinishReason reason, TimeNs t, EventSink& sink) {
  s->state = Sequence::State::kDone;
  s->timing.finished = t;
  s->timing.output_tokens = s->output_len;
  ++finished_[static_cast<int>(reason)];
  sink.OnFinished(FinishedEvent{s->id, reason, s->timing});
  auto node = live_.extract(s->id);
  if (s->in_flight) {
    // The step in flight still points at it; keep it until that step ends.
    ves_[static_cast<std::size_t>(s->virtual_engine)].aborted_in_flight.push_back(
        std::move(node.mapped()));
  }
}

int Engine::LoadAdapters(const StepPlan& plan) {
  if (config_.max_loras == 0) return 0;
  int loads = 0;
  ++use_clock_;
  for (const ScheduledSeq& ss : plan.seqs) {
    const int lora = ss.seq->lora;
    if (lora == 0) continue;
    auto it = std::find_if(loaded_.begin(), loaded_.end(),
                           [&](const LoadedAdapter& a) { return a.lora == lora; });
    if (it != loaded_.end()) {
      it->last_used = use_clock_;
      continue;
    }
    ++loads;
    if (static_cast<int>(loaded_.size()) < config_.max_loras) {
      loaded_.push_back({lora, use_clock_});
      continue;
    }
    // Evict the least recently used adapter this step does not need, preferring one no
    // running request uses.
    auto in_plan = [&](int l) {
      return std::any_of(plan.seqs.begin(), plan.seqs.end(),
                         [&](const ScheduledSeq& x) { return x.seq->lora == l; });
    };
    auto running = [&](int l) {
      for (const VirtualEngine& ve : ves_) {
        for (const Sequence* r : ve.scheduler->running()) {
          if (r->lora == l) return true;
        }
      }
      return false;
    };
    LoadedAdapter* victim = nullptr;
    for (int pass = 0; pass < 2 && victim == nullptr; ++pass) {
      for (LoadedAdapter& a : loaded_) {
        if (a.last_used == use_clock_ || in_plan(a.lora)) continue;
        if (pass == 0 && running(a.lora)) continue;
        if (victim == nullptr || a.last_used < victim->last_used) victim = &a;
      }
    }
    if (victim != nullptr) {
      *victim = {lora, use_clock_};
    } else {
      loaded_.push_back({lora, use_clock_});  // more adapters in one step than slots
    }
  }
  lora_loads_ += static_cast<std::uint64_t>(loads);
  return loads;
}

void Engine::Decide(int v, TimeNs t, EventSink& sink) {
  VirtualEngine& ve = ves_[static_cast<std::size_t>(v)];
  ve.event_at = kNever;
  StepPlan& plan = ve.step;
  ve.scheduler->Schedule(plan);
  for (Sequence* p : plan.preempted) {
    ++preemptions_;
    sink.OnPreempted(p->id, t);
  }
  if (plan.seqs.empty()) {
    // Only preemptions happened (or nothing to do): decide again with the freed blocks.
    if (!plan.preempted.empty() && ve.scheduler->num_unfinished() > 0) ve.event_at = t;
    return;
  }
  for (const ScheduledSeq& ss : plan.seqs) {
    if (ss.seq->timing.first_scheduled < 0) {
      ss.seq->timing.first_scheduled = t;
      sink.OnScheduled(ss.seq->id, t);
    }
  }
  const TimeNs lora_time = LoadAdapters(plan) * config_.lora_load_time;
  TimeNs ready = t;
  for (int s = 0; s < timing_.num_stages(); ++s) {
    TimeNs& free_at = stage_free_[static_cast<std::size_t>(s)];
    const TimeNs start = std::max(ready, free_at);
    free_at = start + timing_.StageTime(plan.shape, s) + lora_time;
    ready = free_at;
  }
  ++steps_;
  ve.busy = true;
  ve.event_at = ready;
}

void Engine::Complete(int v, TimeNs t, EventSink& sink) {
  VirtualEngine& ve = ves_[static_cast<std::size_t>(v)];
  VirtualScheduler& sched = *ve.scheduler;
  ve.busy = false;
  ve.event_at = kNever;
  for (const ScheduledSeq& ss : ve.step.seqs) {
    Sequence* s = ss.seq;
    if (s->state == Sequence::State::kDone) continue;  // aborted during the step
    s->in_flight = false;
    sched.OnComputed(s, ss.new_tokens);
    if (!ss.samples) continue;
    TokenEvent ev;
    ev.id = s->id;
    ev.index = s->output_len;
    ev.eos = s->plan.reason == FinishReason::kStop && ev.index == s->plan.length - 1;
    ev.piece_key = OutputPieceKey(seed_, s->id, ev.index);
    ev.token = OutputTokenId(ev.piece_key, ev.eos);
    ev.time = t;
    ++s->output_len;
    ++generation_tokens_;
    if (ev.index == 0) {
      s->timing.first_token = t;
      prompt_tokens_ += static_cast<std::uint64_t>(s->prompt_len);
    }
    sched.OnTokenAppended(s, ev.token);
    ev.last = s->output_len == s->plan.length;
    sink.OnToken(ev);
    if (ev.last) {
      sched.Remove(s);
      Finish(s, s->plan.reason, t, sink);
    }
  }
  ve.aborted_in_flight.clear();
  if (sched.num_unfinished() > 0) ve.event_at = t;
}

int Engine::num_running() const {
  int n = 0;
  for (const VirtualEngine& ve : ves_) n += ve.scheduler->num_running();
  return n;
}

int Engine::num_waiting() const {
  int n = 0;
  for (const VirtualEngine& ve : ves_) n += ve.scheduler->num_waiting();
  return n;
}

EngineStats Engine::Stats() const {
  EngineStats st;
  st.time = now_;
  st.block_size = config_.block_size;
  st.max_loras = config_.max_loras;
  std::vector<int> running_loras, waiting_loras;
  for (const VirtualEngine& ve : ves_) {
    const VirtualScheduler& s = *ve.scheduler;
    VirtualEngineStats v;
    v.num_running = s.num_running();
    v.num_waiting = s.num_waiting();
    v.num_blocks = s.pool().num_blocks();
    v.num_free_blocks = s.pool().num_free();
    st.num_running += v.num_running;
    st.num_waiting += v.num_waiting;
    st.num_free_blocks += v.num_free_blocks;
    st.virtual_engines.push_back(v);
    if (config_.max_loras > 0) {
      for (const Sequence* r : s.running()) {
        if (r->lora != 0) running_loras.push_back(r->lora);
      }
      for (const Sequence* w : s.waiting()) {
        if (w->lora != 0) waiting_loras.push_back(w->lora);
      }
    }
  }
  // vLLM reports the configured block count (blocks_per_virtual_engine·pp may round down).
  st.num_gpu_blocks = config_.num_gpu_blocks;
  std::int64_t pooled = 0;
  for (const auto& v : st.virtual_engines) pooled += v.num_blocks;
  st.kv_usage = pooled > 0 ? 1.0 - static_cast<double>(st.num_free_blocks) / pooled : 0.0;
  auto names = [this](std::vector<int>& ids) {
    std::vector<std::string> out;
    for (int id : ids) out.push_back(adapter_names_[static_cast<std::size_t>(id - 1)]);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  st.running_loras = names(running_loras);
  st.waiting_loras = names(waiting_loras);
  st.prefix_cache_queries = counters_.prefix_cache_queries;
  st.prefix_cache_hits = counters_.prefix_cache_hits;
  st.prefill_tokens_computed = counters_.prefill_tokens;
  st.num_preemptions = preemptions_;
  st.prompt_tokens = prompt_tokens_;
  st.generation_tokens = generation_tokens_;
  st.finished_stop = finished_[static_cast<int>(FinishReason::kStop)];
  st.finished_length = finished_[static_cast<int>(FinishReason::kLength)];
  st.finished_abort = finished_[static_cast<int>(FinishReason::kAbort)];
  st.num_steps = steps_;
  st.lora_loads = lora_loads_;
  return st;
}

}  // namespace infergate::sim
