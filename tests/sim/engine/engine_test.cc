#include "sim/engine/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sim/engine/output_model.h"

namespace infergate::sim {
namespace {

// The tiny profile (profiles/tiny.yaml): V0, one stage, a prefill step of N tokens takes
// 10 ms + 0.1 ms·N, a decode step of S sequences 5 ms + 1 ms·S; 256 blocks of 16 tokens;
// max_model_len 1024; max_num_seqs 16; token budget max(1024, 2048) = 2048.
Profile Tiny() {
  auto p = LoadProfile("tiny");
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return *p;
}

TimeNs Ms(double ms) { return static_cast<TimeNs>(std::llround(ms * 1e6)); }

std::vector<TokenId> Tokens(int n, std::uint32_t salt) {
  std::vector<TokenId> t;
  for (int i = 0; i < n; ++i) {
    t.push_back((salt * 1000003u + static_cast<std::uint32_t>(i) * 7919u) % Tokenizer::kVocabSize);
  }
  return t;
}

EngineRequest Req(RequestId id, int prompt_len, int max_tokens) {
  EngineRequest r;
  r.id = id;
  r.prompt = Tokens(prompt_len, static_cast<std::uint32_t>(id));
  r.max_tokens = max_tokens;
  return r;
}

std::unique_ptr<Engine> Make(const Profile& p, std::uint64_t seed = 1) {
  auto e = Engine::Create(p, seed);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  return std::move(*e);
}

// Records every event and keeps per-request views.
class Recorder : public EventSink {
 public:
  struct Ev {
    char kind;  // S scheduled, T token, P preempted, F finished
    RequestId id;
    int index;
    TimeNs time;
  };
  void OnScheduled(RequestId id, TimeNs t) override { events.push_back({'S', id, 0, t}); }
  void OnToken(const TokenEvent& e) override {
    events.push_back({'T', e.id, e.index, e.time});
    tokens[e.id].push_back(e);
  }
  void OnPreempted(RequestId id, TimeNs t) override { events.push_back({'P', id, 0, t}); }
  void OnFinished(const FinishedEvent& f) override {
    events.push_back({'F', f.id, static_cast<int>(f.reason), f.timing.finished});
    finished[f.id] = f;
  }
  std::vector<TimeNs> TokenTimes(RequestId id) const {
    std::vector<TimeNs> out;
    if (auto it = tokens.find(id); it != tokens.end()) {
      for (const auto& t : it->second) out.push_back(t.time);
    }
    return out;
  }
  std::vector<Ev> Of(char kind) const {
    std::vector<Ev> out;
    for (const auto& e : events) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }
  std::string Trace() const {
    std::ostringstream os;
    for (const auto& e : events) os << e.kind << e.id << ':' << e.index << '@' << e.time << ' ';
    for (const auto& [id, ts] : tokens) {
      for (const auto& t : ts) os << t.token << ',';
    }
    return os.str();
  }

  std::vector<Ev> events;
  std::map<RequestId, std::vector<TokenEvent>> tokens;
  std::map<RequestId, FinishedEvent> finished;
};

// Advances from event to event until the engine is idle; `each` runs after every step.
void RunIdle(Engine& e, Recorder& r, const std::function<void(TimeNs)>& each = {},
             TimeNs limit = 3600 * kNanosPerSecond) {
  for (int guard = 0; guard < 1'000'000; ++guard) {
    const TimeNs t = e.NextEventTime();
    if (t == kNever || t > limit) return;
    e.AdvanceTo(t, r);
    if (each) each(t);
  }
  FAIL() << "engine did not go idle";
}

TEST(SimEngine, PrefillThenDecodeWithExactStepTimes) {
  auto e = Make(Tiny());
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 100, 3), 0).ok());
  RunIdle(*e, r);
  // Prefill of 100 tokens: 10 + 10 ms; then decodes of one sequence: 6 ms each.
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(20), Ms(26), Ms(32)}));
  ASSERT_EQ(r.finished.count(1), 1u);
  const FinishedEvent& f = r.finished[1];
  EXPECT_EQ(f.reason, FinishReason::kLength);
  EXPECT_EQ(f.timing.arrival, 0);
  EXPECT_EQ(f.timing.first_scheduled, 0);
  EXPECT_EQ(f.timing.first_token, Ms(20));
  EXPECT_EQ(f.timing.finished, Ms(32));
  EXPECT_EQ(f.timing.prompt_tokens, 100);
  EXPECT_EQ(f.timing.output_tokens, 3);
  const EngineStats st = e->Stats();
  EXPECT_EQ(st.prompt_tokens, 100u);
  EXPECT_EQ(st.generation_tokens, 3u);
  EXPECT_EQ(st.finished_length, 1u);
  EXPECT_EQ(st.num_steps, 3u);
  EXPECT_DOUBLE_EQ(st.kv_usage, 0.0);
  EXPECT_EQ(e->num_unfinished(), 0);
}

TEST(SimEngine, V0StepsArePrefillOnlyOrDecodeOnlyWithinTheTokenBudget) {
  Profile p = Tiny();
  p.engine.max_num_batched_tokens = 1024;
  auto e = Make(p);
  Recorder r;
  for (RequestId id = 1; id <= 3; ++id) ASSERT_TRUE(e->Submit(Req(id, 400, 2), 0).ok());
  RunIdle(*e, r);
  // Step 1 prefills 1 and 2 (800 tokens; the third would exceed 1024): 10 + 80 ms.
  // Step 2 prefills 3 alone, before any decode: 10 + 40 ms. Step 3 decodes all three.
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(90), Ms(148)}));
  EXPECT_EQ(r.TokenTimes(2), (std::vector<TimeNs>{Ms(90), Ms(148)}));
  EXPECT_EQ(r.TokenTimes(3), (std::vector<TimeNs>{Ms(140), Ms(148)}));
}

TEST(SimEngine, V0PrefillOfANewArrivalStallsDecodes) {
  auto e = Make(Tiny());
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 100, 4), 0).ok());
  e->AdvanceTo(Ms(21), r);  // 1 decodes from 20 ms to 26 ms
  ASSERT_TRUE(e->Submit(Req(2, 200, 2), Ms(21)).ok());
  RunIdle(*e, r);
  // At 26 ms the prefill of 2 (10 + 20 ms) runs alone; 1 resumes decoding at 56 ms.
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(20), Ms(26), Ms(63), Ms(69)}));
  EXPECT_EQ(r.TokenTimes(2), (std::vector<TimeNs>{Ms(56), Ms(63)}));
  EXPECT_EQ(r.finished[2].timing.first_scheduled, Ms(26));
}

TEST(SimEngine, V1ChunksPrefillsAndMixesThemWithDecodes) {
  Profile p = Tiny();
  p.engine.version = EngineVersion::kV1;
  p.engine.max_num_batched_tokens = 256;
  p.engine.enable_prefix_caching = false;
  auto e = Make(p);
  EXPECT_TRUE(e->config().chunked_prefill);
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 600, 2), 0).ok());
  e->AdvanceTo(Ms(1), r);
  ASSERT_TRUE(e->Submit(Req(2, 300, 1), Ms(1)).ok());
  RunIdle(*e, r);
  // 0: 256 of 1's prompt (35.6 ms). 35.6: 256 more; the budget is used up, 2 waits.
  // 71.2: the last 88 of 1 and the first 168 of 2 (10 + 25.6 ms) -> 1's first token.
  // 106.8: 1 decodes while 2's last 132 tokens are prefilled: max(10, 5) + 13.2 + 1 ms.
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(106.8), Ms(131)}));
  EXPECT_EQ(r.TokenTimes(2), (std::vector<TimeNs>{Ms(131)}));
  EXPECT_EQ(r.finished[2].timing.first_scheduled, Ms(71.2));
  EXPECT_EQ(e->Stats().num_steps, 4u);
}

// Two sequences of 64 prompt tokens in a 16-block cache: each can grow to 8 blocks (128
// tokens). At decode step 65 the first needs a ninth block; the newest running sequence
// is preempted by recompute and comes back, with its tokens kept, when the first ends.
TEST(SimEngine, PreemptsTheNewestSequenceExactlyWhenBlocksRunOut) {
  Profile p = Tiny();
  p.engine.num_gpu_blocks = 16;
  p.engine.max_model_len = 256;
  auto e = Make(p);
  ASSERT_EQ(e->config().watermark_blocks, 0);
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 64, 150), 0).ok());
  ASSERT_TRUE(e->Submit(Req(2, 64, 150), 0).ok());
  int step = 0;
  RunIdle(*e, r, [&](TimeNs t) {
    const EngineStats st = e->Stats();
    // Decode step k is scheduled at 22.8 + 7(k − 1) ms while both run, and holds
    // ceil((64 + k) / 16) blocks per running sequence.
    if (t == 0) {
      EXPECT_EQ(st.num_running, 2);
      EXPECT_DOUBLE_EQ(st.kv_usage, 8.0 / 16);
      return;
    }
    ++step;
    if (step <= 64) {
      ASSERT_EQ(t, Ms(22.8) + Ms(7) * (step - 1)) << step;
      const int per_seq = (64 + step + 15) / 16;
      EXPECT_EQ(st.num_running, 2);
      EXPECT_EQ(st.num_waiting, 0);
      EXPECT_DOUBLE_EQ(st.kv_usage, 2.0 * per_seq / 16) << step;
    } else if (t < Ms(980.8)) {
      // Step 65 onwards: only 1 runs; 2 waits for 9 blocks that never free up.
      ASSERT_EQ(t, Ms(470.8) + Ms(6) * (step - 65)) << step;
      EXPECT_EQ(st.num_running, 1);
      EXPECT_EQ(st.num_waiting, 1);
      EXPECT_DOUBLE_EQ(st.kv_usage, ((64 + step + 15) / 16) / 16.0) << step;
    }
  });
  const auto preempted = r.Of('P');
  ASSERT_EQ(preempted.size(), 1u);
  EXPECT_EQ(preempted[0].id, 2u);
  EXPECT_EQ(preempted[0].time, Ms(470.8));
  EXPECT_EQ(e->Stats().num_preemptions, 1u);
  // 2 had produced tokens 0..64 (the prefill's and 64 decodes).
  const auto& t2 = r.tokens[2];
  ASSERT_EQ(t2.size(), 150u);
  EXPECT_EQ(t2[64].time, Ms(470.8));
  // 1 runs alone from step 65 to step 149 (6 ms each) and ends at 980.8 ms; then 2's
  // recompute prefill of 64 + 65 tokens (10 + 12.9 ms) produces its token 65.
  EXPECT_EQ(r.finished[1].timing.finished, Ms(980.8));
  EXPECT_EQ(t2[65].time, Ms(980.8) + Ms(22.9));
  EXPECT_EQ(r.finished[2].timing.preemptions, 1);
  EXPECT_EQ(r.finished[1].timing.preemptions, 0);
  EXPECT_EQ(e->Stats().prefill_tokens_computed, 128u + 129u);
  EXPECT_EQ(e->Stats().prompt_tokens, 128u);  // counted once per request
}

TEST(SimEngine, RepeatedPromptHitsThePrefixCacheAndPrefillShrinks) {
  for (EngineVersion v : {EngineVersion::kV0, EngineVersion::kV1}) {
    SCOPED_TRACE(ToString(v));
    Profile p = Tiny();
    p.engine.version = v;
    p.engine.enable_prefix_caching = true;
    auto e = Make(p);
    Recorder r;
    EngineRequest a = Req(1, 100, 1);
    EngineRequest b = a;
    b.id = 2;
    EngineRequest c = Req(3, 100, 1);  // shares the first 40 tokens only
    std::copy(a.prompt.begin(), a.prompt.begin() + 40, c.prompt.begin());
    EngineRequest d = Req(4, 96, 1);  // exactly 6 blocks, submitted twice
    EngineRequest d2 = d;
    d2.id = 5;
    ASSERT_TRUE(e->Submit(a, 0).ok());
    RunIdle(*e, r);
    ASSERT_TRUE(e->Submit(b, Ms(100)).ok());
    RunIdle(*e, r);
    ASSERT_TRUE(e->Submit(c, Ms(200)).ok());
    RunIdle(*e, r);
    ASSERT_TRUE(e->Submit(d, Ms(300)).ok());
    RunIdle(*e, r);
    ASSERT_TRUE(e->Submit(d2, Ms(400)).ok());
    RunIdle(*e, r);
    // 1: 100 tokens computed (20 ms). 2: 6 full blocks hit (96 tokens), 4 computed.
    EXPECT_EQ(r.finished[1].timing.first_token, Ms(20));
    EXPECT_EQ(r.finished[2].timing.cached_prompt_tokens, 96);
    EXPECT_EQ(r.finished[2].timing.first_token, Ms(100) + Ms(10.4));
    // 3: 2 full blocks shared (32 tokens).
    EXPECT_EQ(r.finished[3].timing.cached_prompt_tokens, 32);
    EXPECT_EQ(r.finished[3].timing.first_token, Ms(200) + Ms(10 + 6.8));
    // 5: the hit is capped below the prompt length: 5 blocks of 6.
    EXPECT_EQ(r.finished[5].timing.cached_prompt_tokens, 80);
    EXPECT_EQ(r.finished[5].timing.first_token, Ms(400) + Ms(11.6));
    const EngineStats st = e->Stats();
    EXPECT_EQ(st.prefix_cache_queries, 100u + 100u + 100u + 96u + 96u);
    EXPECT_EQ(st.prefix_cache_hits, 96u + 32u + 80u);
    EXPECT_DOUBLE_EQ(st.kv_usage, 0.0);  // cached blocks nobody uses count as free
  }
}

TEST(SimEngine, PrefixCacheIsOffByDefaultInV0) {
  auto e = Make(Tiny());
  EXPECT_FALSE(e->config().prefix_caching);
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 100, 1), 0).ok());
  RunIdle(*e, r);
  EngineRequest again = Req(1, 100, 1);
  again.id = 2;
  ASSERT_TRUE(e->Submit(again, Ms(100)).ok());
  RunIdle(*e, r);
  EXPECT_EQ(r.finished[2].timing.first_token, Ms(120));
  EXPECT_EQ(e->Stats().prefix_cache_queries, 0u);
}

TEST(SimEngine, PipelineParallelSplitsBlocksAndPipelinesVirtualEngines) {
  Profile p = Tiny();
  p.parallel.pipeline = 2;
  auto e = Make(p);
  Recorder r;
  for (RequestId id = 1; id <= 3; ++id) ASSERT_TRUE(e->Submit(Req(id, 100, 2), 0).ok());
  e->AdvanceTo(0, r);
  EngineStats st = e->Stats();
  ASSERT_EQ(st.virtual_engines.size(), 2u);
  EXPECT_EQ(st.num_gpu_blocks, 256);
  EXPECT_EQ(st.virtual_engines[0].num_blocks, 128);
  EXPECT_EQ(st.virtual_engines[1].num_blocks, 128);
  // 1 -> VE0, 2 -> VE1 (fewest unfinished), 3 -> VE0 (a tie goes to the lowest index).
  EXPECT_EQ(st.virtual_engines[0].num_running, 2);
  EXPECT_EQ(st.virtual_engines[1].num_running, 1);
  EXPECT_EQ(st.virtual_engines[0].num_free_blocks, 128 - 14);
  RunIdle(*e, r);
  EXPECT_EQ(r.finished[1].timing.virtual_engine, 0);
  EXPECT_EQ(r.finished[2].timing.virtual_engine, 1);
  EXPECT_EQ(r.finished[3].timing.virtual_engine, 0);
  // VE0 prefills 200 tokens: stage 0 [0, 30], stage 1 [30, 60]. VE1 prefills 100 tokens:
  // stage 0 waits for VE0 [30, 50], stage 1 [60, 80]. VE0 decodes 2 at 60: stage 0
  // [60, 67], stage 1 after VE1's [80, 87]. VE1 decodes 1 at 80: [80, 86], [87, 93].
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(60), Ms(87)}));
  EXPECT_EQ(r.TokenTimes(3), (std::vector<TimeNs>{Ms(60), Ms(87)}));
  EXPECT_EQ(r.TokenTimes(2), (std::vector<TimeNs>{Ms(80), Ms(93)}));
  // A new request goes to the virtual engine with fewer unfinished requests.
  ASSERT_TRUE(e->Submit(Req(4, 10, 1), Ms(100)).ok());
  ASSERT_TRUE(e->Submit(Req(5, 10, 1), Ms(100)).ok());
  ASSERT_TRUE(e->Submit(Req(6, 10, 1), Ms(100)).ok());
  RunIdle(*e, r);
  EXPECT_EQ(r.finished[4].timing.virtual_engine, 0);
  EXPECT_EQ(r.finished[5].timing.virtual_engine, 1);
  EXPECT_EQ(r.finished[6].timing.virtual_engine, 0);
}

TEST(SimEngine, PipelineVirtualEnginesHaveTheirOwnKvBlocks) {
  Profile p = Tiny();
  p.parallel.pipeline = 2;
  p.engine.num_gpu_blocks = 32;  // 16 per virtual engine
  p.engine.max_model_len = 512;
  auto e = Make(p);
  // 200 + 50 tokens need 16 blocks: fits one virtual engine's 16 (watermark 0).
  EXPECT_TRUE(e->Submit(Req(1, 200, 50), 0).ok());
  // 257 tokens would need 17 blocks: refused although the engine has 32.
  auto too_big = e->Submit(Req(2, 200, 57), 0);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message.find("at most 256 tokens"), std::string::npos);
}

TEST(SimEngine, LoraSlotsLimitAdmissionAndLoadingCostsTime) {
  Profile p = Tiny();
  p.engine.max_loras = 1;
  p.engine.lora_load_seconds = 0.5;
  auto e = Make(p);
  Recorder r;
  EngineRequest a = Req(1, 100, 2);
  a.lora = "a";
  EngineRequest b = Req(2, 100, 2);
  b.lora = "b";
  EngineRequest base = Req(3, 100, 4);
  ASSERT_TRUE(e->Submit(a, 0).ok());
  ASSERT_TRUE(e->Submit(b, 0).ok());
  ASSERT_TRUE(e->Submit(base, 0).ok());
  e->AdvanceTo(0, r);
  EngineStats st = e->Stats();
  EXPECT_EQ(st.running_loras, (std::vector<std::string>{"a"}));
  EXPECT_EQ(st.waiting_loras, (std::vector<std::string>{"b"}));
  EXPECT_EQ(st.max_loras, 1);
  RunIdle(*e, r);
  // Step 1: prefill of a and base, loading adapter a: 10 + 20 + 500 ms. b had no slot.
  // Step 2: decode of both (7 ms); a ends. Step 3: b's prefill loads b (evicting a):
  // 10 + 10 + 500 ms. Step 4 decodes base and b.
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(530), Ms(537)}));
  EXPECT_EQ(r.TokenTimes(2), (std::vector<TimeNs>{Ms(1057), Ms(1064)}));
  EXPECT_EQ(r.TokenTimes(3), (std::vector<TimeNs>{Ms(530), Ms(537), Ms(1064), Ms(1070)}));
  EXPECT_EQ(e->Stats().lora_loads, 2u);
}

TEST(SimEngine, LoraRequestsAreRefusedWhenLoraIsOff) {
  auto e = Make(Tiny());
  EngineRequest a = Req(1, 10, 2);
  a.lora = "x";
  auto res = e->Submit(a, 0);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.error().message.find("LoRA"), std::string::npos);
}

TEST(SimEngine, AbortFreesBlocksAtOnceAndStopsTokens) {
  auto e = Make(Tiny());
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 100, 50), 0).ok());
  ASSERT_TRUE(e->Submit(Req(2, 100, 3), 0).ok());
  e->AdvanceTo(Ms(40), r);  // prefill ends at 30 ms; a decode step runs 30..37, next 37..44
  EXPECT_GT(e->Stats().kv_usage, 0.0);
  ASSERT_TRUE(e->Abort(1, Ms(40)));
  EXPECT_FALSE(e->Abort(1, Ms(40)));  // already being aborted
  EXPECT_FALSE(e->Abort(99, Ms(40)));
  e->AdvanceTo(Ms(40), r);
  ASSERT_EQ(r.finished.count(1), 1u);
  EXPECT_EQ(r.finished[1].reason, FinishReason::kAbort);
  EXPECT_EQ(r.finished[1].timing.finished, Ms(40));
  EXPECT_EQ(r.finished[1].timing.output_tokens, 2);
  // 1's blocks are back although the step it was part of is still in flight.
  const EngineStats st = e->Stats();
  EXPECT_EQ(st.num_running, 1);
  EXPECT_EQ(st.num_free_blocks, 256 - 7);
  EXPECT_EQ(st.finished_abort, 1u);
  RunIdle(*e, r);
  EXPECT_EQ(r.tokens[1].size(), 2u);  // nothing after the abort
  // The in-flight step keeps its duration (two sequences, 7 ms); then 2 decodes alone.
  EXPECT_EQ(r.TokenTimes(2), (std::vector<TimeNs>{Ms(30), Ms(37), Ms(44)}));
  EXPECT_FALSE(e->Abort(2, Ms(100)));  // finished
}

TEST(SimEngine, AbortOfAWaitingRequest) {
  Profile p = Tiny();
  p.engine.max_num_seqs = 1;
  auto e = Make(p);
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 100, 5), 0).ok());
  ASSERT_TRUE(e->Submit(Req(2, 100, 5), 0).ok());
  e->AdvanceTo(Ms(1), r);
  EXPECT_EQ(e->Stats().num_waiting, 1);
  ASSERT_TRUE(e->Abort(2, Ms(1)));
  e->AdvanceTo(Ms(1), r);
  EXPECT_EQ(e->Stats().num_waiting, 0);
  EXPECT_EQ(r.finished[2].reason, FinishReason::kAbort);
  EXPECT_EQ(r.finished[2].timing.first_scheduled, -1);
  RunIdle(*e, r);
  EXPECT_EQ(r.tokens.count(2), 0u);
}

TEST(SimEngine, PriorityPolicyOrdersAdmissions) {
  for (SchedulingPolicy policy : {SchedulingPolicy::kFcfs, SchedulingPolicy::kPriority}) {
    Profile p = Tiny();
    p.engine.scheduling_policy = policy;
    p.engine.max_num_batched_tokens = 1024;  // one 600-token prompt per step
    auto e = Make(p);
    Recorder r;
    ASSERT_TRUE(e->Submit(Req(1, 100, 1), 0).ok());
    int prio = 5;
    for (RequestId id : {10, 11, 12}) {
      EngineRequest q = Req(id, 600, 1);
      q.priority = prio;
      prio = prio == 5 ? 0 : 1;  // 10: 5, 11: 0, 12: 1
      ASSERT_TRUE(e->Submit(q, Ms(1)).ok());
    }
    RunIdle(*e, r);
    std::vector<RequestId> order;
    for (const auto& ev : r.Of('S')) order.push_back(ev.id);
    if (policy == SchedulingPolicy::kFcfs) {
      EXPECT_EQ(order, (std::vector<RequestId>{1, 10, 11, 12}));
    } else {
      EXPECT_EQ(order, (std::vector<RequestId>{1, 11, 12, 10}));
    }
  }
}

TEST(SimEngine, PriorityPolicyPreemptsLowerPriorityWhenBlocksAreShort) {
  Profile p = Tiny();
  p.engine.scheduling_policy = SchedulingPolicy::kPriority;
  p.engine.num_gpu_blocks = 64;
  auto e = Make(p);
  Recorder r;
  EngineRequest low = Req(1, 800, 100);
  low.priority = 5;
  ASSERT_TRUE(e->Submit(low, 0).ok());
  e->AdvanceTo(Ms(100), r);  // prefill 0..90 ms, decodes 90..96, 96..102
  EngineRequest high = Req(2, 400, 10);
  high.priority = 0;
  ASSERT_TRUE(e->Submit(high, Ms(100)).ok());
  RunIdle(*e, r);
  const auto preempted = r.Of('P');
  ASSERT_GE(preempted.size(), 1u);
  EXPECT_EQ(preempted[0].id, 1u);
  EXPECT_EQ(preempted[0].time, Ms(102));
  // The high-priority prompt is prefilled right after: 10 + 40 ms.
  EXPECT_EQ(r.finished[2].timing.first_token, Ms(152));
  EXPECT_EQ(r.finished[1].timing.output_tokens, 100);
}

TEST(SimEngine, RejectsRequestsThatExceedMaxModelLenWithVllmsMessage) {
  auto e = Make(Tiny());
  auto too_long = e->Submit(Req(1, 1000, 100), 0);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error().message,
            "This model's maximum context length is 1024 tokens. However, you requested 1100 "
            "tokens (1000 in the messages, 100 in the completion). Please reduce the length of "
            "the messages or completion.");
  EngineRequest no_max = Req(2, 1024, 1);
  no_max.max_tokens.reset();
  auto full = e->Submit(no_max, 0);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message,
            "This model's maximum context length is 1024 tokens. However, you requested 1024 "
            "tokens in the messages, Please reduce the length of the messages.");
  EngineRequest fits = Req(3, 1000, 1);
  fits.max_tokens.reset();
  auto ok = e->Submit(fits, 0);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->max_tokens, 24);
  EXPECT_TRUE(e->Submit(Req(4, 1000, 24), 0).ok());  // exactly max_model_len

  EXPECT_FALSE(e->Submit(Req(5, 0, 1), 0).ok());   // empty prompt
  EXPECT_FALSE(e->Submit(Req(6, 10, 0), 0).ok());  // max_tokens < 1
  EngineRequest min_over = Req(7, 10, 5);
  min_over.min_tokens = 6;
  EXPECT_FALSE(e->Submit(min_over, 0).ok());
  auto dup = e->Submit(Req(3, 10, 1), 0);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("already in use"), std::string::npos);
}

TEST(SimEngine, EosModelEndsOutputsEarlyWithStop) {
  Profile p = Tiny();
  p.eos.model = EosModel::kUniform;
  p.eos.min_fraction = 0.2;
  p.eos.max_fraction = 0.6;
  auto e = Make(p);
  Recorder r;
  for (RequestId id = 1; id <= 20; ++id) ASSERT_TRUE(e->Submit(Req(id, 20, 100), 0).ok());
  EngineRequest ignore = Req(100, 20, 100);
  ignore.ignore_eos = true;
  EngineRequest min = Req(101, 20, 100);
  min.min_tokens = 90;
  ASSERT_TRUE(e->Submit(ignore, 0).ok());
  ASSERT_TRUE(e->Submit(min, 0).ok());
  RunIdle(*e, r);
  for (RequestId id = 1; id <= 20; ++id) {
    const FinishedEvent& f = r.finished[id];
    EXPECT_EQ(f.reason, FinishReason::kStop);
    EXPECT_GE(f.timing.output_tokens, 20);
    EXPECT_LE(f.timing.output_tokens, 60);
    EXPECT_TRUE(r.tokens[id].back().eos);
    EXPECT_TRUE(r.tokens[id].back().last);
    EXPECT_FALSE(r.tokens[id].front().eos);
    const OutputPlan plan = PlanOutput(p.eos, 1, id, 100, 0, false);
    EXPECT_EQ(f.timing.output_tokens, plan.length);
  }
  EXPECT_EQ(r.finished[100].reason, FinishReason::kLength);
  EXPECT_EQ(r.finished[100].timing.output_tokens, 100);
  EXPECT_EQ(r.finished[101].reason, FinishReason::kStop);
  EXPECT_EQ(r.finished[101].timing.output_tokens, 90);
  EXPECT_EQ(e->Stats().finished_stop, 21u);
  EXPECT_EQ(e->Stats().finished_length, 1u);
}

TEST(SimEngine, OutputTokensRenderToTextThatTokenizesBackToThem) {
  auto e = Make(Tiny(), 42);
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 10, 30), 0).ok());
  RunIdle(*e, r);
  std::string text;
  std::vector<TokenId> ids;
  for (const TokenEvent& t : r.tokens[1]) {
    AppendOutputText(t.piece_key, t.eos, text);
    ids.push_back(t.token);
  }
  EXPECT_EQ(Tokenizer::Encode(text), ids);
}

TEST(SimEngine, SameSeedAndInputsGiveTheSameTrace) {
  Profile p = Tiny();
  p.engine.version = EngineVersion::kV1;
  p.engine.num_gpu_blocks = 64;
  p.eos.model = EosModel::kGeometric;
  p.eos.mean_tokens = 40;
  auto run = [&](std::uint64_t seed) {
    auto e = Make(p, seed);
    Recorder r;
    std::uint64_t x = 7;
    TimeNs t = 0;
    for (RequestId id = 1; id <= 40; ++id) {
      x = Mix64(x);
      t += static_cast<TimeNs>(x % 50) * kNanosPerMilli;
      e->AdvanceTo(t, r);
      EngineRequest q = Req(id, 40 + static_cast<int>(x % 300), 200);
      const auto shared = Tokens(32, 1);  // a common prefix, so the prefix cache is used
      std::copy(shared.begin(), shared.end(), q.prompt.begin());
      EXPECT_TRUE(e->Submit(q, t).ok());
      if (id % 7 == 0) e->Abort(id - 3, t);
    }
    RunIdle(*e, r);
    EXPECT_EQ(e->num_unfinished(), 0);
    return r.Trace();
  };
  const std::string a = run(5);
  EXPECT_EQ(a, run(5));
  EXPECT_NE(a, run(6));
}

TEST(SimEngine, CallsMayArriveBeforeAdvanceCatchesUp) {
  // Submitting at a time later than the engine has processed is applied in time order:
  // the step ending at 20 ms is processed before the arrival at 21 ms.
  auto e = Make(Tiny());
  Recorder r;
  ASSERT_TRUE(e->Submit(Req(1, 100, 2), 0).ok());
  ASSERT_TRUE(e->Submit(Req(2, 100, 1), Ms(21)).ok());
  RunIdle(*e, r);
  EXPECT_EQ(r.TokenTimes(1), (std::vector<TimeNs>{Ms(20), Ms(26)}));
  EXPECT_EQ(r.finished[2].timing.first_scheduled, Ms(26));
  // A time in the past is taken as the engine's current time.
  ASSERT_TRUE(e->Submit(Req(3, 100, 1), Ms(1)).ok());
  RunIdle(*e, r);
  EXPECT_EQ(r.finished[3].timing.arrival, e->Stats().time - Ms(20));
}

TEST(SimEngine, EventSinkMustNotCallBack) {
  auto e = Make(Tiny());
  struct Reentrant : EventSink {
    Engine* engine = nullptr;
    bool submit_failed = false;
    void OnToken(const TokenEvent&) override {
      submit_failed = !engine->Submit(Req(9, 10, 1), 0).ok();
    }
  } sink;
  sink.engine = e.get();
  ASSERT_TRUE(e->Submit(Req(1, 10, 1), 0).ok());
  e->AdvanceTo(Ms(100), sink);
  EXPECT_TRUE(sink.submit_failed);
}

// Random traffic with aborts against every scheduler variant: every request ends exactly
// once, its tokens come in order, the counters add up and the cache drains.
TEST(SimEngine, InvariantsHoldUnderRandomTrafficForEveryVariant) {
  struct Variant {
    const char* name;
    EngineVersion version;
    bool caching;
    bool chunked;
    SchedulingPolicy policy;
    int pipeline;
  };
  const Variant variants[] = {
      {"v0", EngineVersion::kV0, false, false, SchedulingPolicy::kFcfs, 1},
      {"v0-cache", EngineVersion::kV0, true, false, SchedulingPolicy::kFcfs, 1},
      {"v0-chunked", EngineVersion::kV0, true, true, SchedulingPolicy::kFcfs, 1},
      {"v0-priority", EngineVersion::kV0, false, false, SchedulingPolicy::kPriority, 1},
      {"v0-pp2", EngineVersion::kV0, false, false, SchedulingPolicy::kFcfs, 2},
      {"v1", EngineVersion::kV1, true, true, SchedulingPolicy::kFcfs, 1},
      {"v1-priority", EngineVersion::kV1, true, true, SchedulingPolicy::kPriority, 1},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    Profile p = Tiny();
    p.engine.version = v.version;
    p.engine.enable_prefix_caching = v.caching;
    if (v.version == EngineVersion::kV0) p.engine.enable_chunked_prefill = v.chunked;
    p.engine.max_num_batched_tokens = v.chunked ? 128 : 0;
    p.engine.scheduling_policy = v.policy;
    p.parallel.pipeline = v.pipeline;
    p.engine.num_gpu_blocks = 96 * v.pipeline;  // tight: preemptions happen
    p.engine.max_model_len = 512;
    p.engine.max_loras = 2;
    auto e = Make(p, 3);
    Recorder r;
    std::map<RequestId, int> prompt_len;
    std::uint64_t x = 99;
    TimeNs t = 0;
    auto check = [&](TimeNs) {
      const EngineStats st = e->Stats();
      int running = 0, waiting = 0;
      std::int64_t free = 0, total = 0;
      for (const auto& ve : st.virtual_engines) {
        running += ve.num_running;
        waiting += ve.num_waiting;
        free += ve.num_free_blocks;
        total += ve.num_blocks;
        EXPECT_GE(ve.num_free_blocks, 0);
        EXPECT_LE(ve.num_free_blocks, ve.num_blocks);
      }
      EXPECT_EQ(running, st.num_running);
      EXPECT_EQ(waiting, st.num_waiting);
      EXPECT_EQ(free, st.num_free_blocks);
      EXPECT_DOUBLE_EQ(st.kv_usage, 1.0 - static_cast<double>(free) / total);
      EXPECT_LE(st.num_running, p.engine.max_num_seqs * v.pipeline);
    };
    for (RequestId id = 1; id <= 150; ++id) {
      x = Mix64(x);
      t += static_cast<TimeNs>(x % 40) * kNanosPerMilli;
      e->AdvanceTo(t, r);
      check(t);
      EngineRequest q =
          Req(id, 8 + static_cast<int>(x % 200), 1 + static_cast<int>((x >> 8) % 120));
      std::copy_n(Tokens(24, 5).begin(), 8, q.prompt.begin());  // some shared prefix
      q.priority = static_cast<int>((x >> 16) % 3);
      if ((x >> 20) % 5 == 0) q.lora = "adapter" + std::to_string((x >> 24) % 3);
      prompt_len[id] = static_cast<int>(q.prompt.size());
      ASSERT_TRUE(e->Submit(q, t).ok());
      if ((x >> 30) % 6 == 0) e->Abort(id - (x >> 33) % 5, t);
    }
    RunIdle(*e, r, check);
    EXPECT_EQ(e->num_unfinished(), 0);
    EXPECT_EQ(r.finished.size(), 150u);
    for (const auto& [id, f] : r.finished) {
      const auto& toks = r.tokens[id];
      EXPECT_EQ(static_cast<int>(toks.size()), f.timing.output_tokens) << id;
      for (std::size_t k = 0; k < toks.size(); ++k) EXPECT_EQ(toks[k].index, static_cast<int>(k));
      if (f.reason != FinishReason::kAbort) {
        EXPECT_LE(f.timing.arrival, f.timing.first_scheduled);
        EXPECT_LT(f.timing.first_scheduled, f.timing.first_token);
        EXPECT_LE(f.timing.first_token, f.timing.finished);
        EXPECT_TRUE(toks.back().last);
      }
      EXPECT_EQ(f.timing.prompt_tokens, prompt_len[id]);
    }
    const EngineStats st = e->Stats();
    EXPECT_EQ(st.num_free_blocks, st.num_gpu_blocks);
    EXPECT_EQ(st.finished_stop + st.finished_length + st.finished_abort, 150u);
    EXPECT_GT(st.num_preemptions, 0u);
  }
}

}  // namespace
}  // namespace infergate::sim
