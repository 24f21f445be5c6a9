// Decision time of the scheduling core.
//
// The target: median Pick() <= 10 µs with 100 endpoints and a 32 KB prompt, prefix hashing
// included, for gie-default and infergate. The pool is warmed so the prefix index is not
// trivially empty: 100 endpoints, 4000 earlier 32 KB prompts dispatched (all sharing an
// 8 KB system prompt, as chat traffic does), and the measured prompt shares a 16 KB
// prefix with one of them, so matching walks all 256 blocks.
//
// Run: cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
//      cmake --build build-rel --target scheduler_bench && build-rel/bench/scheduler_bench
#include <benchmark/benchmark.h>
#include <xxhash.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "datalayer/engine_metrics.h"
#include "scheduler/scheduler.h"

namespace infergate {
namespace {

std::string Text(std::size_t chars, std::uint64_t seed) {
  std::string out;
  out.reserve(chars);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  while (out.size() < chars) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    out.push_back(static_cast<char>('a' + (x * 0x2545F4914F6CDD1Dull >> 59) % 26));
    if (out.size() % 6 == 5) out.push_back(' ');
  }
  out.resize(chars);
  return out;
}

struct Pool {
  ManualClock clock{1'000'000'000};
  std::unique_ptr<Scheduler> scheduler;
  std::vector<std::string> ids;
  std::string system_prompt = Text(8 * 1024, 1);
  std::string probe;

  Pool(const std::string& profile, int endpoints, int warm_prompts) {
    SchedulerOptions o;
    o.profile = profile;
    scheduler = std::move(Scheduler::Create(o, &clock).value());
    for (int i = 0; i < endpoints; ++i) {
      ids.push_back("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":8000");
      (void)scheduler->UpsertEndpoint(EndpointSpec{ids.back(), {}, true});
      EndpointMetrics m;
      m.engine = EngineKind::kVllm;
      m.waiting_requests = i % 7;
      m.running_requests = 8 + i % 5;
      m.kv_usage = 0.2 + 0.005 * (i % 100);
      m.kv_block_size = 16;
      m.kv_num_blocks = 31'250;
      m.kv_capacity_tokens = 500'000;
      m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage | kFieldKvCapacity;
      scheduler->ReportMetrics(ids.back(), clock.Now(), m);
    }
    std::string prompt;
    for (int i = 0; i < warm_prompts; ++i) {
      prompt = system_prompt + Text(24 * 1024, 1000 + i);
      RequestInfo r;
      r.target_model = "qwq";
      r.prompt = prompt;
      PickResult p = scheduler->Pick(r);
      TokenLedger::Handle h = scheduler->Dispatch(r, p, ids[i % endpoints]);
      scheduler->OnFirstToken(h);
      scheduler->OnComplete(h, Usage{8192, 100});
    }
    // Shares 16 KB (the system prompt and 8 KB of warm prompt 0) with what endpoint 0 holds.
    probe = system_prompt + Text(24 * 1024, 1000).substr(0, 8 * 1024) + Text(16 * 1024, 7);
  }

  RequestInfo Probe() const {
    RequestInfo r;
    r.target_model = "qwq";
    r.prompt = probe;
    return r;
  }
};

void BM_Pick(benchmark::State& state, const std::string& profile) {
  const int endpoints = static_cast<int>(state.range(0));
  Pool pool(profile, endpoints, 4000);
  const RequestInfo r = pool.Probe();
  PickResult result;
  for (auto _ : state) {
    pool.scheduler->Pick(r, &result);
    benchmark::DoNotOptimize(result.endpoints.data());
  }
  if (!result.picked()) state.SkipWithError("not picked");
  state.counters["prompt_bytes"] = static_cast<double>(r.prompt.size());
}
BENCHMARK_CAPTURE(BM_Pick, gie_default, std::string("gie-default"))->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(BM_Pick, gie_ledger, std::string("gie-ledger"))->Arg(100);
BENCHMARK_CAPTURE(BM_Pick, infergate, std::string("infergate"))->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(BM_Pick, gie_v0, std::string("gie-v0"))->Arg(100);
BENCHMARK_CAPTURE(BM_Pick, round_robin, std::string("round-robin"))->Arg(100);

// Pick on a loaded pool: each of the 100 endpoints has 30 requests in flight (20 decoding,
// 10 awaiting their first token), so the KV outlook projects 3,000 requests per decision.
// The clock moves by 100 ns per decision, as it does between real decisions, so nothing
// keyed on the decision time can be reused from the previous one.
void BM_PickLoaded(benchmark::State& state, const std::string& profile) {
  constexpr int kEndpoints = 100;
  constexpr int kInflight = 30;
  Pool pool(profile, kEndpoints, 4000);
  std::vector<std::string> prompts;
  for (int i = 0; i < kEndpoints * kInflight; ++i) {
    prompts.push_back(pool.system_prompt.substr(0, 2048) + Text(2048 + 64 * (i % 32), 9000 + i));
  }
  for (int i = 0; i < kEndpoints * kInflight; ++i) {
    RequestInfo r;
    r.target_model = "qwq";
    r.prompt = prompts[i];
    r.max_tokens = 256 + 16 * (i % 48);
    PickResult p = pool.scheduler->Pick(r);
    TokenLedger::Handle h = pool.scheduler->Dispatch(r, p, pool.ids[i % kEndpoints]);
    pool.clock.Advance(50'000);
    if (i / kEndpoints % 3 != 2) pool.scheduler->OnFirstToken(h);
  }
  const RequestInfo r = pool.Probe();
  PickResult result;
  for (auto _ : state) {
    pool.clock.Advance(100);
    pool.scheduler->Pick(r, &result);
    benchmark::DoNotOptimize(result.endpoints.data());
  }
  if (!result.picked()) state.SkipWithError("not picked");
  state.counters["inflight"] = static_cast<double>(pool.scheduler->ledger().inflight());
}
BENCHMARK_CAPTURE(BM_PickLoaded, gie_default, std::string("gie-default"));
BENCHMARK_CAPTURE(BM_PickLoaded, infergate, std::string("infergate"));

// Pick with the prompt hashed by the caller (outside the pool lock).
void BM_PickPrehashed(benchmark::State& state) {
  Pool pool("infergate", 100, 4000);
  RequestInfo r = pool.Probe();
  std::vector<std::uint64_t> hashes;
  ComputeBlockHashes(r.target_model, r.prompt, pool.scheduler->prefix_options(), &hashes);
  r.block_hashes = &hashes;
  PickResult result;
  for (auto _ : state) {
    pool.scheduler->Pick(r, &result);
    benchmark::DoNotOptimize(result.endpoints.data());
  }
}
BENCHMARK(BM_PickPrehashed);

// The full per-request cost: Pick, Dispatch (ledger + 256-block prefix insert), first
// token, completion.
void BM_RequestLifecycle(benchmark::State& state) {
  Pool pool("infergate", 100, 4000);
  const RequestInfo r = pool.Probe();
  PickResult result;
  auto once = [&] {
    pool.scheduler->Pick(r, &result);
    TokenLedger::Handle h = pool.scheduler->Dispatch(r, result, result.endpoints[0]);
    pool.scheduler->OnFirstToken(h);
    pool.scheduler->OnComplete(h, Usage{8192, 100});
  };
  // Untimed, until the chosen endpoint's prefix LRU is full: each completion ages it by its
  // generated tokens, and until the LRU is full that grows the index's tables, whose
  // rehashes would otherwise land in the timed loop (10x the steady per-request cost in a
  // default-length run).
  for (int i = 0; i < 4000; ++i) once();
  for (auto _ : state) once();
}
BENCHMARK(BM_RequestLifecycle);

// Hashing 32 KB into 64-byte blocks (256 hashed): the chain as implemented (XXH3) vs XXH64.
void BM_BlockHashesXxh3(benchmark::State& state) {
  const std::string prompt = Text(32 * 1024, 3);
  std::vector<std::uint64_t> out;
  for (auto _ : state) {
    ComputeBlockHashes("qwq", prompt, PrefixIndexOptions{}, &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_BlockHashesXxh3);

void BM_BlockHashesXxh64(benchmark::State& state) {
  const std::string prompt = Text(32 * 1024, 3);
  std::vector<std::uint64_t> out;
  for (auto _ : state) {
    out.clear();
    std::uint64_t h = XXH64("qwq", 3, 0);
    for (std::size_t i = 0; i < 256; ++i) {
      h = XXH64(prompt.data() + i * 64, 64, h);
      out.push_back(h);
    }
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_BlockHashesXxh64);

// Parsing a scraped vLLM V0 page (~22 KB with all its histograms) into EndpointMetrics.
void BM_ExtractVllmPage(benchmark::State& state) {
  std::string page =
      "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n"
      "# TYPE vllm:num_requests_running gauge\n"
      "vllm:num_requests_running{model_name=\"qwq\"} 9.0\n"
      "vllm:num_requests_waiting{model_name=\"qwq\"} 3.0\n"
      "vllm:gpu_cache_usage_perc{model_name=\"qwq\"} 0.8734375\n"
      "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",enable_prefix_caching="
      "\"False\",gpu_memory_utilization=\"0.95\",num_gpu_blocks=\"3200\"} 1.0\n"
      "vllm:lora_requests_info{max_lora=\"1\",running_lora_adapters=\"\","
      "waiting_lora_adapters=\"\"} 1.7405e+09\n";
  for (const char* h : {"time_to_first_token_seconds", "time_per_output_token_seconds",
                        "e2e_request_latency_seconds", "request_queue_time_seconds",
                        "request_inference_time_seconds", "request_prefill_time_seconds",
                        "request_decode_time_seconds", "request_prompt_tokens",
                        "request_generation_tokens", "request_max_num_generation_tokens"}) {
    page += std::string("# HELP vllm:") + h + " Histogram.\n# TYPE vllm:" + h + " histogram\n";
    for (const char* le :
         {"0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1",  "0.25", "0.5",
          "0.75",  "1.0",   "2.5",  "5.0",  "7.5",  "10.0", "20.0", "40.0", "80.0", "+Inf"}) {
      page += std::string("vllm:") + h + "_bucket{le=\"" + le + "\",model_name=\"qwq\"} 104.0\n";
    }
    page += std::string("vllm:") + h + "_count{model_name=\"qwq\"} 104.0\n";
    page += std::string("vllm:") + h + "_sum{model_name=\"qwq\"} 1024.5\n";
  }
  for (auto _ : state) {
    Result<EndpointMetrics> m = ExtractEndpointMetrics(page, EngineKind::kVllm);
    benchmark::DoNotOptimize(m.ok());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * page.size()));
  state.counters["page_bytes"] = static_cast<double>(page.size());
}
BENCHMARK(BM_ExtractVllmPage);

}  // namespace
}  // namespace infergate
