// `infergate bench`: a load generator compatible with vLLM's benchmark_serving, and
// `infergate bench compare` for side-by-side results and an HTML report.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/workload_flags.h"
#include "cluster/experiment.h"
#include "loadgen/arrivals.h"
#include "loadgen/compare.h"
#include "loadgen/dataset.h"
#include "loadgen/html_report.h"
#include "loadgen/load_client.h"
#include "loadgen/report.h"
#include "loadgen/request.h"
#include "loadgen/result.h"

namespace infergate::cli {
namespace {

using namespace infergate::loadgen;

struct BenchFlags {
  std::string backend;
  std::string base_url;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string endpoint;
  std::string model;
  std::string served_model_name;
  std::string tokenizer;
  bool trust_remote_code = false;
  std::string dataset_name = "sharegpt";
  std::string dataset_path;
  WorkloadFlags workload;  // random and shared-prefix knobs, arrivals, seed
  MetricFlags metrics;
  std::vector<std::string> goodput;
  bool save_result = false;
  std::string result_dir;
  std::string result_filename;
  std::vector<std::string> headers;
  std::vector<std::string> metadata;
  bool disable_tqdm = false;
  double time_scale = 1.0;
  double timeout = 0;
  bool skip_test_request = false;
  bool no_text = false;
  int sharegpt_output_len = 0;
};

struct CompareFlags {
  std::vector<std::string> files;
  std::vector<std::string> names;
  std::string html;
  std::string title = "infergate benchmark comparison";
  bool markdown = false;
};

// A float as Python prints it (benchmark_serving's messages): 20 -> "20.0".
std::string PythonFloat(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e16) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "infergate bench: %s\n", message.c_str());
  return kExitUsage;
}

Result<std::vector<std::pair<std::string, std::string>>> ParsePairs(
    const std::vector<std::string>& items, const char* flag) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& item : items) {
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error{fmt::format("{}: '{}' is not KEY=VALUE", flag, item)};
    }
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
      return s;
    };
    out.emplace_back(trim(item.substr(0, eq)), trim(item.substr(eq + 1)));
  }
  return out;
}

// Progress on stderr: a redrawn bar on a terminal, a line every 10 s otherwise.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool tty) : tty_(tty) {}
  void operator()(const LoadProgress& p) {
    const double rate = p.elapsed_s > 0 ? p.done / p.elapsed_s : 0;
    if (tty_) {
      const int width = 30;
      const int filled = p.total > 0 ? p.done * width / p.total : width;
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.resize(width, ' ');
      std::fprintf(stderr, "\r%3d%%|%s| %d/%d [%.1fs, %.2f req/s, %d failed]",
                   p.total > 0 ? p.done * 100 / p.total : 100, bar.c_str(), p.done, p.total,
                   p.elapsed_s, rate, p.failed);
      if (p.done == p.total) std::fputc('\n', stderr);
      std::fflush(stderr);
      return;
    }
    std::fprintf(stderr, "bench: %d/%d done, %d failed, %.1f s, %.2f req/s\n", p.done, p.total,
                 p.failed, p.elapsed_s, rate);
  }

 private:
  bool tty_;
};

int RunBench(const BenchFlags& f) {
  // ---- validate flags ----
  if (f.model.empty()) return UsageError("--model is required");
  std::string backend = f.backend;
  std::string endpoint = f.endpoint;
  if (backend.empty()) {
    backend =
        endpoint.size() >= 16 && endpoint.ends_with("chat/completions") ? "openai-chat" : "vllm";
  }
  if (backend != "vllm" && backend != "openai" && backend != "openai-chat") {
    return UsageError(
        fmt::format("--backend must be vllm, openai or openai-chat (got '{}')", backend));
  }
  const ApiKind api = backend == "openai-chat" ? ApiKind::kChat : ApiKind::kCompletions;
  if (endpoint.empty())
    endpoint = api == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions";
  if (api == ApiKind::kChat && !endpoint.ends_with("chat/completions")) {
    return UsageError("--backend openai-chat needs an --endpoint ending in chat/completions");
  }
  if (api == ApiKind::kCompletions && endpoint.ends_with("chat/completions")) {
    return UsageError(
        fmt::format("--backend {} sends completions bodies; use --backend openai-chat for {}",
                    backend, endpoint));
  }
  auto target = MakeTarget(f.base_url, f.host, f.port, endpoint);
  if (!target) return UsageError(target.error().message);
  if (f.dataset_name != "random" && f.dataset_name != "sharegpt" &&
      f.dataset_name != "shared-prefix") {
    return UsageError(fmt::format(
        "--dataset-name must be random, sharegpt or shared-prefix (got '{}')", f.dataset_name));
  }
  // benchmark_serving's defaults under the flags (ShareGPT counts its prompts as random does).
  cluster::WorkloadSpec defaults;
  if (f.dataset_name == "shared-prefix") defaults.dataset = cluster::DatasetKind::kSharedPrefix;
  auto w = ApplyWorkloadFlags(f.workload, defaults);
  if (!w) return UsageError(w.error().message);
  const int num_prompts = w->num_prompts();
  if (!(f.time_scale > 0) || std::isinf(f.time_scale)) {
    return UsageError(fmt::format("--time-scale must be > 0 (got {})", f.time_scale));
  }
  if (f.timeout < 0) return UsageError("--timeout must be >= 0");
  auto metrics = ParseMetricFlags(f.metrics);
  if (!metrics) return UsageError(metrics.error().message);
  auto goodput = ParseGoodput(f.goodput);
  if (!goodput) return UsageError(goodput.error().message);
  metrics->goodput_slo_ms = *goodput;
  auto headers = ParsePairs(f.headers, "--header");
  if (!headers) return UsageError(headers.error().message);
  auto metadata = ParsePairs(f.metadata, "--metadata");
  if (!metadata) return UsageError(metadata.error().message);

  // ---- dataset and arrivals (one numpy stream, as benchmark_serving) ----
  NumpyRandomState rng(w->seed);
  Result<std::vector<SampleRequest>> dataset = Error{""};
  if (f.dataset_name == "random") {
    dataset = SampleRandom(w->random, rng);
  } else if (f.dataset_name == "sharegpt") {
    if (f.dataset_path.empty()) {
      return UsageError("--dataset-path is required for --dataset-name sharegpt");
    }
    ShareGptOptions o;
    o.path = f.dataset_path;
    o.num_prompts = num_prompts;
    o.fixed_output_len = f.sharegpt_output_len;
    o.seed = w->seed;
    dataset = SampleShareGpt(o);
  } else {
    dataset = SampleSharedPrefix(w->shared_prefix, rng);
  }
  if (!dataset) return UsageError(dataset.error().message);
  const int warmup = w->warmup_prompts;
  if (dataset->size() <= static_cast<std::size_t>(warmup)) {
    return UsageError(
        fmt::format("--warmup-prompts {} leaves nothing to measure: the dataset gave {} prompts",
                    warmup, dataset->size()));
  }
  if (dataset->size() < static_cast<std::size_t>(num_prompts)) {
    std::fprintf(stderr, "infergate bench: only %zu prompts available (asked for %d)\n",
                 dataset->size(), num_prompts);
  }
  const double rate = w->request_rate;
  auto offsets = ArrivalOffsets(static_cast<int>(dataset->size()), rate, w->burstiness, rng);
  if (!offsets) return UsageError(offsets.error().message);

  const std::string served = f.served_model_name.empty() ? f.model : f.served_model_name;
  std::vector<PreparedRequest> prepared;
  prepared.reserve(dataset->size());
  for (const SampleRequest& s : *dataset) {
    prepared.push_back({RequestBody(api, served, s, w->ignore_eos), s.prompt_len});
  }
  dataset->clear();
  dataset->shrink_to_fit();

  // ---- run ----
  const long nofile = RaiseOpenFileLimit();
  const int concurrency =
      w->max_concurrency > 0 ? w->max_concurrency : static_cast<int>(prepared.size());
  if (nofile > 0 && concurrency + 64 > nofile) {
    std::fprintf(stderr,
                 "infergate bench: warning: open-file limit %ld is below the %d connections "
                 "this run may open\n",
                 nofile, concurrency);
  }
  LoadOptions lo;
  lo.target = *target;
  lo.headers = *headers;
  if (w->max_concurrency > 0) lo.max_concurrency = w->max_concurrency;
  lo.timeout_s = f.timeout;
  lo.time_scale = f.time_scale;
  lo.keep_text = !f.no_text;

  if (!f.skip_test_request) {
    std::printf("Starting initial single prompt test run...\n");
    std::fflush(stdout);
    const double zero = 0;
    auto test = RunLoad(lo, std::span(prepared.data(), 1), std::span(&zero, 1));
    if (!test) {
      std::fprintf(stderr, "infergate bench: %s\n", test.error().message.c_str());
      return kExitRuntime;
    }
    if (!test->outcomes[0].success) {
      std::fprintf(stderr,
                   "infergate bench: initial test run failed - check the benchmark arguments. "
                   "Error: %s\n",
                   test->outcomes[0].error.c_str());
      return kExitRuntime;
    }
    std::printf("Initial test run completed. Starting main benchmark run...\n");
  }
  std::printf("Traffic request rate: %s\n", PythonFloat(rate).c_str());
  std::printf("Burstiness factor: %s (%s)\n", PythonFloat(w->burstiness).c_str(),
              w->burstiness == 1.0 ? "Poisson process" : "Gamma distribution");
  std::printf("Maximum request concurrency: %s\n",
              w->max_concurrency > 0 ? std::to_string(w->max_concurrency).c_str() : "None");
  if (warmup > 0) {
    std::printf("Warm-up: the first %d requests are served but not measured\n", warmup);
  }
  std::fflush(stdout);

  if (!f.disable_tqdm) {
    const bool tty = isatty(STDERR_FILENO) == 1;
    lo.on_progress = ProgressPrinter(tty);
    lo.progress_interval_s = tty ? 0.1 : 10.0;
  }
  auto run = RunLoad(lo, prepared, *offsets);
  if (!run) {
    std::fprintf(stderr, "infergate bench: %s\n", run.error().message.c_str());
    return kExitRuntime;
  }

  RunInfo info;
  info.date = loadgen::LocalDate();
  info.backend = backend;
  info.model_id = f.model;
  info.tokenizer_id = f.tokenizer.empty() ? f.model : f.tokenizer;
  info.num_prompts = num_prompts - warmup;
  info.request_rate = rate;
  info.burstiness = w->burstiness;
  if (w->max_concurrency > 0) info.max_concurrency = w->max_concurrency;
  info.time_scale = f.time_scale;
  info.metadata = *metadata;
  double duration = run->duration_s;
  std::vector<RequestOutcome> measured =
      DropWarmup(std::move(run->outcomes), static_cast<std::size_t>(warmup), &duration);
  if (!(duration > 0)) duration = 1e-9;
  BenchmarkResult result = ComputeResult(info, *metrics, std::move(measured), duration);

  if (result.failed > 0) {
    std::fprintf(stderr, "infergate bench: %d of %zu requests failed; first error: %s\n",
                 result.failed, result.requests.size(), result.first_error.c_str());
  }
  std::fputs(FormatResultTable(result).c_str(), stdout);
  std::fflush(stdout);
  if (f.save_result) {
    auto path = SaveResult(result, f.result_dir, f.result_filename);
    if (!path) {
      std::fprintf(stderr, "infergate bench: %s\n", path.error().message.c_str());
      return kExitRuntime;
    }
    std::fprintf(stderr, "infergate bench: saved %s\n", path->c_str());
  }
  return result.completed == 0 ? kExitRuntime : kExitOk;
}

int RunCompare(const CompareFlags& f) {
  if (!f.names.empty() && f.names.size() != f.files.size()) {
    return UsageError(
        fmt::format("compare: {} --name values for {} files", f.names.size(), f.files.size()));
  }
  std::vector<NamedResult> runs;
  for (std::size_t i = 0; i < f.files.size(); ++i) {
    auto r = LoadResultFile(f.files[i]);
    if (!r) return UsageError(fmt::format("compare: {}", r.error().message));
    const std::string name =
        f.names.empty() ? std::filesystem::path(f.files[i]).stem().string() : f.names[i];
    runs.push_back({name, std::move(*r)});
  }
  std::fputs(FormatComparison(runs, f.markdown).c_str(), stdout);
  if (!f.html.empty()) {
    HtmlReport report;
    report.title = f.title;
    report.runs = std::move(runs);
    if (auto s = WriteHtmlReport(report, f.html); !s) {
      std::fprintf(stderr, "infergate bench compare: %s\n", s.error().message.c_str());
      return kExitRuntime;
    }
    std::fprintf(stderr, "infergate bench compare: wrote %s\n", f.html.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddBenchCommand(CLI::App& root, Runner& run) {
  auto* cmd = root.add_subcommand(
      "bench",
      "Benchmark an OpenAI-compatible server the way vLLM's benchmark_serving does (same "
      "flags, results table and result JSON).\n"
      "Metrics: TTFT = send -> first streamed chunk with non-empty choices; ITL = gaps "
      "between such chunks (pooled); TPOT = (latency - TTFT)/(output tokens - 1); E2EL = "
      "send -> last such chunk; output tokens from usage.completion_tokens.\n"
      "Exit codes: 0 ok, 1 every request failed (or runtime error), 2 bad flags.");
  auto f = std::make_shared<BenchFlags>();
  cmd->add_option("--backend", f->backend,
                  "vllm | openai (completions bodies) | openai-chat (chat bodies); default: "
                  "from --endpoint, else vllm");
  cmd->add_option("--base-url", f->base_url,
                  "Server base URL http://host:port[/prefix]; overrides --host/--port");
  cmd->add_option("--host", f->host, "Server host")->capture_default_str();
  cmd->add_option("--port", f->port, "Server port")->capture_default_str();
  cmd->add_option("--endpoint", f->endpoint,
                  "API path: /v1/completions (default) or /v1/chat/completions");
  cmd->add_option("--model", f->model,
                  "Model name (recorded as model_id; sent unless "
                  "--served-model-name is given). Required to run.");
  cmd->add_option("--served-model-name", f->served_model_name,
                  "The \"model\" sent in requests (default: --model)");
  cmd->add_option("--tokenizer", f->tokenizer,
                  "Accepted for compatibility and ignored (prompts use the simulator's "
                  "tokenizer; only recorded as tokenizer_id)");
  cmd->add_flag("--trust-remote-code", f->trust_remote_code,
                "Accepted for compatibility and ignored");
  cmd->add_option("--dataset-name", f->dataset_name, "random | sharegpt | shared-prefix")
      ->capture_default_str();
  cmd->add_option("--dataset-path", f->dataset_path, "ShareGPT JSON file (sharegpt dataset)");
  const cluster::WorkloadSpec defaults;  // benchmark_serving's
  AddWorkloadFlags(*cmd, f->workload, &defaults);
  AddMetricFlags(*cmd, f->metrics);
  cmd->add_option("--goodput", f->goodput,
                  "SLOs KEY:ms (keys ttft, tpot, e2el), e.g. --goodput ttft:500 tpot:50")
      ->expected(1, -1);
  cmd->add_flag("--save-result", f->save_result, "Write the result JSON");
  cmd->add_option("--result-dir", f->result_dir, "Directory for the result JSON");
  cmd->add_option("--result-filename", f->result_filename,
                  "File name (default {backend}-{rate}qps[-concurrency{N}]-{model}-{date}.json)");
  cmd->add_option("--header", f->headers, "Extra request header K=V (repeatable)")
      ->take_all()
      ->expected(1)
      ->allow_extra_args(false);
  cmd->add_option("--metadata", f->metadata, "KEY=VALUE pairs recorded in the result JSON")
      ->expected(1, -1);
  cmd->add_flag("--disable-tqdm", f->disable_tqdm, "No progress output");
  cmd->add_option("--time-scale", f->time_scale,
                  "The server (e.g. infergate sim) runs X times faster than the wall clock: "
                  "measured durations are multiplied by X and reported as simulated time; "
                  "--request-rate and --timeout are in simulated time")
      ->capture_default_str();
  cmd->add_option("--timeout", f->timeout, "Per-request limit in (simulated) seconds; 0 = none")
      ->capture_default_str();
  cmd->add_flag("--skip-test-request", f->skip_test_request,
                "Skip benchmark_serving's initial single-prompt test request");
  cmd->add_flag("--no-text", f->no_text, "Do not keep generated text (saves memory)");
  cmd->add_option("--sharegpt-output-len", f->sharegpt_output_len,
                  "ShareGPT: fixed output length instead of the second turn's");

  auto c = std::make_shared<CompareFlags>();
  auto* compare = cmd->add_subcommand(
      "compare",
      "Compare result JSON files side by side (ratios to the first) and optionally "
      "write an HTML report");
  compare->add_option("results", c->files, "Result JSON files (ours or benchmark_serving's)")
      ->required()
      ->check(CLI::ExistingFile);
  compare->add_option("--name", c->names, "Display name per file, in order (default: stem)")
      ->take_all()
      ->expected(1)
      ->allow_extra_args(false);
  compare->add_option("--html", c->html, "Write a self-contained HTML report here");
  compare->add_option("--title", c->title, "HTML report title")->capture_default_str();
  compare->add_flag("--markdown", c->markdown, "Print a Markdown table");

  cmd->callback([&run, f, c, compare] {
    if (compare->parsed()) {
      run = [c] { return RunCompare(*c); };
    } else {
      run = [f] { return RunBench(*f); };
    }
  });
}

}  // namespace infergate::cli
