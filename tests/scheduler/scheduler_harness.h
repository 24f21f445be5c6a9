// A Scheduler on a manual clock with endpoints whose metrics tests set directly.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "scheduler/scheduler.h"

namespace infergate::testing {

inline constexpr TimeNs kMs = kNanosPerMilli;

struct Load {
  double waiting = 0;
  double running = 0;
  double kv = 0;
  std::int64_t capacity_tokens = 0;
  std::vector<std::string> running_loras = {};
  std::vector<std::string> waiting_loras = {};
  int max_lora = 0;
};

class SchedulerHarness {
 public:
  explicit SchedulerHarness(SchedulerOptions options) : clock_(10'000 * kMs) {
    Result<std::unique_ptr<Scheduler>> s = Scheduler::Create(std::move(options), &clock_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (s.ok()) scheduler_ = std::move(s).value();
  }
  explicit SchedulerHarness(const std::string& profile, std::uint64_t seed = 1)
      : SchedulerHarness(Options(profile, seed)) {}

  static SchedulerOptions Options(const std::string& profile, std::uint64_t seed = 1) {
    SchedulerOptions o;
    o.profile = profile;
    o.seed = seed;
    return o;
  }

  Scheduler& s() { return *scheduler_; }
  ManualClock& clock() { return clock_; }
  void Advance(TimeNs d) { clock_.Advance(d); }

  void Add(const std::string& id, bool ready = true) {
    EXPECT_TRUE(scheduler_->UpsertEndpoint(EndpointSpec{id, {}, ready}).ok());
  }
  // Adds endpoints "10.0.0.<i>:8000" for i in [1, n].
  std::vector<std::string> AddMany(int n) {
    std::vector<std::string> ids;
    for (int i = 1; i <= n; ++i) {
      ids.push_back("10.0.0." + std::to_string(i) + ":8000");
      Add(ids.back());
    }
    return ids;
  }
  // Reports a scrape taken now.
  void Scrape(const std::string& id, const Load& l) {
    EndpointMetrics m;
    m.engine = EngineKind::kVllm;
    m.waiting_requests = l.waiting;
    m.running_requests = l.running;
    m.kv_usage = l.kv;
    m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage;
    if (l.capacity_tokens > 0) {
      m.kv_block_size = 16;
      m.kv_num_blocks = l.capacity_tokens / 16;
      m.kv_capacity_tokens = l.capacity_tokens;
      m.present |= kFieldKvCapacity;
    }
    if (l.max_lora > 0) {
      m.running_lora_adapters = l.running_loras;
      m.waiting_lora_adapters = l.waiting_loras;
      m.max_lora = l.max_lora;
      m.present |= kFieldLora;
    }
    EXPECT_TRUE(scheduler_->ReportMetrics(id, clock_.Now(), std::move(m)));
  }
  void ScrapeAll(const std::vector<std::string>& ids, const Load& l) {
    for (const std::string& id : ids) Scrape(id, l);
  }

  // Picks and, when picked, dispatches to the primary. Returns the primary ("" if none).
  std::string PickAndDispatch(const RequestInfo& r, TokenLedger::Handle* handle = nullptr) {
    PickResult p = scheduler_->Pick(r);
    if (!p.picked()) return "";
    TokenLedger::Handle h = scheduler_->Dispatch(r, p, p.endpoints[0]);
    EXPECT_NE(h, TokenLedger::kInvalidHandle);
    if (handle) *handle = h;
    return p.endpoints[0];
  }

 private:
  ManualClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
};

// A deterministic text of exactly `chars` characters derived from `seed`.
inline std::string Text(std::size_t chars, std::uint64_t seed) {
  std::string out;
  out.reserve(chars);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  while (out.size() < chars) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    out.push_back(static_cast<char>('a' + (x * 0x2545F4914F6CDD1Dull >> 59) % 26));
    if (out.size() % 6 == 5 && out.size() < chars) out.push_back(' ');
  }
  out.resize(chars);
  return out;
}

// RequestInfo holds a view of the prompt: the prompt must outlive it (temporaries are
// refused at compile time).
inline RequestInfo Request(std::string_view prompt, Criticality c = Criticality::kStandard) {
  RequestInfo r;
  r.target_model = "qwq";
  r.prompt = prompt;
  r.criticality = c;
  r.priority = PriorityOf(c);
  return r;
}
inline RequestInfo Request(const char* prompt, Criticality c = Criticality::kStandard) {
  return Request(std::string_view(prompt), c);
}
RequestInfo Request(std::string&& prompt, Criticality c = Criticality::kStandard) = delete;

}  // namespace infergate::testing
