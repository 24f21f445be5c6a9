// `infergate sim`: simulated vLLM servers (one engine per replica) behind vLLM's
// OpenAI-compatible HTTP API and /metrics, driven by the wall clock (sim/server).
#include <sys/resource.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "sim/engine/profile.h"
#include "sim/server/sim_server.h"

namespace infergate::cli {
namespace {

struct SimFlags {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string profile;
  std::string model;
  std::vector<std::string> served_model_names;
  std::vector<std::string> lora_modules;
  bool enable_lora = false;
  int max_loras = 0;
  double time_scale = 1.0;
  int replicas = 1;
  int workers = 0;
  long long seed = 0;
  std::string metrics_version = "v0";
  int max_model_len = 0;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  long long num_gpu_blocks_override = 0;
  double gpu_memory_utilization = 0;
  int block_size = 0;
  bool prefix_caching = false;
  bool chunked_prefill = false;
  std::string scheduling_policy;
  std::string eos;
  double eos_min_fraction = -1, eos_max_fraction = -1, eos_mean_tokens = -1;
  double fail_rate = 0;
  long long die_after = 0;
  long long metrics_delay_ms = 0;
  std::string metrics_mode = "ok";
  std::string engine_api = "vllm";
  bool metrics_in_engine_loop = false;
  bool refuse_connections = false;
  bool list_profiles = false;
  // Set when the flag was given.
  CLI::Option* prefix_caching_opt = nullptr;
  CLI::Option* chunked_prefill_opt = nullptr;
  CLI::Option* max_loras_opt = nullptr;
};

int UsageError(const std::string& message) {
  std::fprintf(stderr, "infergate sim: %s\n", message.c_str());
  return kExitUsage;
}

// Serving thousands of streams needs as many descriptors.
void RaiseOpenFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Applies the command-line overrides to the profile. Returns an error naming the flag.
Status ApplyOverrides(const SimFlags& f, sim::Profile& p) {
  auto positive = [](long long v, const char* flag) -> Status {
    if (v < 0) return Error{std::string(flag) + " must be positive"};
    return Ok();
  };
  for (auto [v, flag] : {std::pair<long long, const char*>{f.max_model_len, "--max-model-len"},
                         {f.max_num_seqs, "--max-num-seqs"},
                         {f.max_num_batched_tokens, "--max-num-batched-tokens"},
                         {f.num_gpu_blocks_override, "--num-gpu-blocks-override"},
                         {f.block_size, "--block-size"},
                         {f.max_loras, "--max-loras"}}) {
    if (auto s = positive(v, flag); !s) return s;
  }
  if (f.max_model_len > 0) p.engine.max_model_len = f.max_model_len;
  if (f.max_num_seqs > 0) p.engine.max_num_seqs = f.max_num_seqs;
  if (f.max_num_batched_tokens > 0) p.engine.max_num_batched_tokens = f.max_num_batched_tokens;
  if (f.num_gpu_blocks_override > 0) p.engine.num_gpu_blocks = f.num_gpu_blocks_override;
  if (f.block_size > 0) p.engine.block_size = f.block_size;
  if (f.gpu_memory_utilization != 0) {
    if (!(f.gpu_memory_utilization > 0 && f.gpu_memory_utilization <= 1)) {
      return Error{"--gpu-memory-utilization must be in (0, 1]"};
    }
    p.engine.gpu_memory_utilization = f.gpu_memory_utilization;
  }
  if (f.prefix_caching_opt->count() > 0) p.engine.enable_prefix_caching = f.prefix_caching;
  if (f.chunked_prefill_opt->count() > 0) p.engine.enable_chunked_prefill = f.chunked_prefill;
  if (!f.scheduling_policy.empty()) {
    if (f.scheduling_policy == "fcfs") {
      p.engine.scheduling_policy = sim::SchedulingPolicy::kFcfs;
    } else if (f.scheduling_policy == "priority") {
      p.engine.scheduling_policy = sim::SchedulingPolicy::kPriority;
    } else {
      return Error{"--scheduling-policy must be fcfs or priority, got '" + f.scheduling_policy +
                   "'"};
    }
  }
  if (f.max_loras_opt->count() > 0) {
    p.engine.max_loras = f.max_loras;
  } else if ((f.enable_lora || !f.lora_modules.empty()) && p.engine.max_loras == 0) {
    p.engine.max_loras = 1;  // vLLM's default --max-loras with --enable-lora
  }
  if (!f.eos.empty()) {
    if (f.eos == "none") {
      p.eos.model = sim::EosModel::kNone;
    } else if (f.eos == "uniform") {
      p.eos.model = sim::EosModel::kUniform;
    } else if (f.eos == "geometric") {
      p.eos.model = sim::EosModel::kGeometric;
    } else {
      return Error{"--eos must be none, uniform or geometric, got '" + f.eos + "'"};
    }
  }
  if (f.eos_min_fraction >= 0) p.eos.min_fraction = f.eos_min_fraction;
  if (f.eos_max_fraction >= 0) p.eos.max_fraction = f.eos_max_fraction;
  if (f.eos_mean_tokens >= 0) p.eos.mean_tokens = f.eos_mean_tokens;
  if (auto s = sim::ValidateProfile(p); !s) {
    return Error{"profile '" + p.name + "' with the command-line overrides: " + s.error().message};
  }
  return Ok();
}

// The profile `infergate sim` runs when neither --profile nor a matching --model is given:
// one H100 serving Llama 3.1 8B, the most common single-GPU vLLM deployment.
constexpr std::string_view kDefaultSimProfile = "llama-3.1-8b-h100";

// Without --profile, as `vllm serve MODEL` needs nothing more than the model: the built-in
// profile whose model name --model names (compared case-insensitively, ignoring an
// organisation prefix such as "Qwen/"), else kDefaultSimProfile.
std::string DefaultProfileFor(std::string_view model) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto slash = out.rfind('/');
    return slash == std::string::npos ? out : out.substr(slash + 1);
  };
  const std::string want = lower(model);
  if (!want.empty()) {
    for (const std::string& name : sim::ListBuiltinProfiles()) {
      auto p = sim::LoadProfile(name);
      if (p && lower(p->model.name) == want) return name;
    }
  }
  return std::string(kDefaultSimProfile);
}

int RunSim(const SimFlags& f) {
  if (f.list_profiles) {
    for (const auto& name : sim::ListBuiltinProfiles()) std::printf("%s\n", name.c_str());
    return kExitOk;
  }
  auto profile = sim::LoadProfile(f.profile.empty() ? DefaultProfileFor(f.model) : f.profile);
  if (!profile) return UsageError(profile.error().message);
  if (auto s = ApplyOverrides(f, *profile); !s) return UsageError(s.error().message);

  sim::SimServerOptions o;
  o.host = f.host;
  if (f.port < 0 || f.port > 65535) return UsageError("--port must be in [0, 65535]");
  o.port = static_cast<unsigned short>(f.port);
  o.replicas = f.replicas;
  o.workers = f.workers;
  o.time_scale = f.time_scale;
  if (f.seed < 0) return UsageError("--seed must not be negative");
  o.seed = static_cast<std::uint64_t>(f.seed);
  o.model = f.model;
  o.served_model_names = f.served_model_names;
  for (const std::string& m : f.lora_modules) {
    const auto eq = m.find('=');
    if (eq == std::string::npos) {
      o.lora_modules.push_back({m, ""});
    } else {
      o.lora_modules.push_back({m.substr(0, eq), m.substr(eq + 1)});
    }
  }
  if (f.metrics_version == "v0") {
    o.metrics_version = sim::MetricsVersion::kV0;
  } else if (f.metrics_version == "v1") {
    o.metrics_version = sim::MetricsVersion::kV1;
  } else {
    return UsageError("--metrics-version must be v0 or v1, got '" + f.metrics_version + "'");
  }
  if (!sim::ParseEngineApi(f.engine_api, &o.engine_api)) {
    return UsageError("--engine-api must be vllm, llamacpp or sglang, got '" + f.engine_api + "'");
  }
  o.metrics_in_engine_loop = f.metrics_in_engine_loop;
  o.faults.fail_rate = f.fail_rate;
  o.faults.die_after = f.die_after;
  o.faults.metrics_delay_ms = f.metrics_delay_ms;
  o.faults.refuse_connections = f.refuse_connections;
  if (f.metrics_mode == "ok") {
    o.faults.metrics_mode = sim::MetricsMode::kOk;
  } else if (f.metrics_mode == "error") {
    o.faults.metrics_mode = sim::MetricsMode::kError;
  } else if (f.metrics_mode == "garbage") {
    o.faults.metrics_mode = sim::MetricsMode::kGarbage;
  } else if (f.metrics_mode == "hang") {
    o.faults.metrics_mode = sim::MetricsMode::kHang;
  } else {
    return UsageError("--metrics-mode must be ok, error, garbage or hang, got '" + f.metrics_mode +
                      "'");
  }

  auto server = sim::SimServer::Create(*profile, std::move(o));
  if (!server) return UsageError(server.error().message);
  RaiseOpenFileLimit();
  auto bound = (*server)->Listen();
  if (!bound) {
    std::fprintf(stderr, "infergate sim: %s\n", bound.error().message.c_str());
    return kExitRuntime;
  }
  (*server)->HandleSignals();
  for (const std::string& b : *bound) std::printf("listening %s\n", b.c_str());
  std::fflush(stdout);
  spdlog::info("infergate sim: profile {} ({}), {} replica(s), time scale {}", profile->name,
               profile->source, bound->size(), f.time_scale);
  (*server)->Run();
  const sim::TokenLateness l = (*server)->Lateness();
  if (l.tokens > 0) {
    spdlog::info(
        "infergate sim: token writes vs the engine's schedule (wall): n={} p50={:.0f}us "
        "p99={:.0f}us max={:.0f}us",
        l.tokens, l.p50_us, l.p99_us, l.max_us);
  }
  return kExitOk;
}

}  // namespace

void AddSimCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand(
      "sim",
      "Run simulated vLLM servers: one engine per replica behind vLLM 0.7's OpenAI API "
      "(/v1/completions, /v1/chat/completions, /v1/models, /health) and /metrics.\n"
      "Time: the engines run in simulated time, --time-scale X times faster than the wall "
      "clock (sim = wall elapsed x X). Metrics and the timing model are in simulated "
      "seconds; a latency a client measures on the wall clock x X = the simulated latency "
      "(infergate bench --time-scale X does this conversion).\n"
      "Prints 'listening <address>:<port>' per replica on stdout once serving.\n"
      "Exit codes: 0 after SIGTERM/SIGINT, 2 bad flags or profile, 1 runtime failure "
      "(e.g. cannot bind).");
  auto f = std::make_shared<SimFlags>();
  cmd->add_option("--host", f->host, "Address of replica 0; replica i listens on this address + i")
      ->capture_default_str();
  cmd->add_option("--port", f->port, "Port of every replica (0: a free port each)")
      ->capture_default_str();
  cmd->add_option(
      "--profile", f->profile,
      "Built-in profile name (see --list-profiles) or a profile YAML file (default: the "
      "built-in whose model is --model, else llama-3.1-8b-h100)");
  cmd->add_flag("--list-profiles", f->list_profiles, "Print the built-in profiles and exit");
  cmd->add_option("--model", f->model, "Model name (default: the profile's model.name)");
  cmd->add_option("--served-model-name", f->served_model_names,
                  "Names clients may use for the model (default: --model); the first "
                  "labels the metrics")
      ->expected(1, -1);
  cmd->add_option("--lora-modules", f->lora_modules,
                  "LoRA adapters served as models: NAME or NAME=PATH; requests naming one "
                  "run with that adapter")
      ->expected(1, -1);
  cmd->add_flag("--enable-lora", f->enable_lora,
                "Enable LoRA (implied by --lora-modules; --max-loras defaults to 1)");
  f->max_loras_opt =
      cmd->add_option("--max-loras", f->max_loras, "LoRA adapters per batch (engine.max_loras)");
  cmd->add_option("--time-scale", f->time_scale,
                  "Simulated time runs X times faster than the wall clock; a wall-clock "
                  "latency x X = simulated latency")
      ->capture_default_str();
  cmd->add_option("--replicas", f->replicas,
                  "Independent servers (one engine each) on consecutive addresses from --host")
      ->capture_default_str();
  cmd->add_option("--workers", f->workers,
                  "Event loops the replicas are spread over (default: min(replicas, cores))");
  cmd->add_option("--seed", f->seed, "Seed of the output tokens and EOS draws (replica i: +i)")
      ->capture_default_str();
  cmd->add_option("--metrics-version", f->metrics_version,
                  "v0 (vLLM 0.7, the seed's server) or v1 metric names")
      ->capture_default_str();
  cmd->add_option("--engine-api", f->engine_api,
                  "Present vllm's, llamacpp's or sglang's metric names and model list (llamacpp "
                  "also serves /props and /slots; slots = max_num_seqs)")
      ->capture_default_str();
  cmd->add_flag("--metrics-in-engine-loop", f->metrics_in_engine_loop,
                "Answer /metrics between engine steps, as llama.cpp does: a scrape during a long "
                "prefill stalls until the step ends");
  cmd->add_option("--max-model-len", f->max_model_len, "Override engine.max_model_len");
  cmd->add_option("--max-num-seqs", f->max_num_seqs, "Override engine.max_num_seqs");
  cmd->add_option("--max-num-batched-tokens", f->max_num_batched_tokens,
                  "Override engine.max_num_batched_tokens");
  cmd->add_option("--num-gpu-blocks-override", f->num_gpu_blocks_override,
                  "KV-cache blocks (override engine.num_gpu_blocks)");
  cmd->add_option("--gpu-memory-utilization", f->gpu_memory_utilization,
                  "Override engine.gpu_memory_utilization");
  cmd->add_option("--block-size", f->block_size, "Override engine.block_size");
  f->prefix_caching_opt =
      cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", f->prefix_caching,
                    "Automatic prefix caching on or off (default: profile)");
  f->chunked_prefill_opt =
      cmd->add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", f->chunked_prefill,
                    "Chunked prefill on or off (default: profile / vLLM)");
  cmd->add_option("--scheduling-policy", f->scheduling_policy, "fcfs or priority");
  cmd->add_option("--eos", f->eos,
                  "How outputs end without ignore_eos: none (run to max_tokens), uniform, "
                  "geometric (default: profile)");
  cmd->add_option("--eos-min-fraction", f->eos_min_fraction,
                  "uniform: shortest natural length as a fraction of max_tokens");
  cmd->add_option("--eos-max-fraction", f->eos_max_fraction,
                  "uniform: longest natural length as a fraction of max_tokens");
  cmd->add_option("--eos-mean-tokens", f->eos_mean_tokens, "geometric: mean natural length");
  cmd->add_option("--fail-rate", f->fail_rate,
                  "Fault: answer this fraction of generation requests with a 500 (chosen "
                  "from --seed and the request order)")
      ->capture_default_str();
  cmd->add_option("--die-after", f->die_after,
                  "Fault: exit abruptly (_exit(1)) once the N-th request has had output "
                  "written, mid-stream (0: never)")
      ->capture_default_str();
  cmd->add_option("--metrics-delay-ms", f->metrics_delay_ms,
                  "Fault: answer /metrics after this many wall milliseconds")
      ->capture_default_str();
  cmd->add_option("--metrics-mode", f->metrics_mode,
                  "Fault: /metrics answers ok, error (500), garbage (unparsable) or hang "
                  "(never)")
      ->capture_default_str();
  cmd->add_flag("--refuse-connections", f->refuse_connections,
                "Fault: reset every connection right after accepting it");
  cmd->callback([&run, f] { run = [f] { return RunSim(*f); }; });
}

}  // namespace infergate::cli
