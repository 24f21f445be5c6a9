// A gRPC load client for the endpoint picker: plays Envoy's ext_proc filter for many
// requests (headers, the body in Envoy-sized chunks, a short response) and reports
// requests/s, the latency the picker adds (from the request headers sent to the last
// body chunk back: what Envoy waits before it can forward), and, given the picker's pid,
// its CPU time per request from /proc.
//
//   epp_load --target 127.0.0.1:9002 --prompt-bytes 409600 --requests 400
//            --concurrency 8 --pid PID
//
// Prints one line: key=value pairs (scripts/bench_epp.sh collects them).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/extproc/envoy_client.h"

namespace {

using namespace infergate::extproc::testing;
using Clock = std::chrono::steady_clock;

// utime + stime of `pid` in seconds.
double CpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gRPC load client for infergate epp"};
  std::string target = "127.0.0.1:9002";
  std::size_t prompt_bytes = 4096;
  int requests = 1000, concurrency = 4, pid = 0, warmup = 20, prefixes = 8;
  std::size_t chunk = 16384;
  app.add_option("--target", target);
  app.add_option("--prompt-bytes", prompt_bytes);
  app.add_option("--requests", requests);
  app.add_option("--concurrency", concurrency);
  app.add_option("--chunk", chunk, "request body bytes per ext_proc message");
  app.add_option("--pid", pid, "the picker's pid, for its CPU time");
  app.add_option("--warmup", warmup);
  app.add_option("--prefixes", prefixes, "distinct prompt prefixes (prefix-cache affinity)");
  CLI11_PARSE(app, argc, argv);

  auto stub = ConnectEpp(target);
  auto make_body = [&](int i) {
    std::string prompt = "system prompt " + std::to_string(i % prefixes) + ": ";
    const std::string words = "the quick brown fox jumps over the lazy dog ";
    while (prompt.size() + words.size() < prompt_bytes) prompt += words;
    prompt += "question " + std::to_string(i);
    return R"({"model":"base","max_tokens":16,"stream":true,"prompt":")" + prompt + "\"}";
  };
  const std::string response =
      "data: {\"choices\":[{\"text\":\"hi\"}],\"model\":\"base\"}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":16}}\n\n"
      "data: [DONE]\n\n";
  auto one = [&](int i, double* added_us) -> bool {
    const std::string body = make_body(i);
    std::vector<std::size_t> pieces(body.size() / chunk + 1, chunk);
    EnvoyStream stream(*stub);
    const auto start = Clock::now();
    Routed routed = stream.RouteRequest(body, {}, pieces);
    const auto routed_at = Clock::now();
    if (routed.status != 200) return false;
    auto relayed = stream.RelayResponse(200, response, "", 4096);
    stream.CloseSend();
    if (!stream.Finish().ok() || !relayed) return false;
    *added_us = std::chrono::duration<double, std::micro>(routed_at - start).count();
    return true;
  };
  double ignored;
  for (int i = 0; i < warmup; ++i) one(i, &ignored);

  std::vector<double> latencies(static_cast<std::size_t>(requests), 0);
  std::atomic<int> next{0}, failed{0};
  const double cpu0 = pid ? CpuSeconds(pid) : 0;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < requests;) {
        if (!one(i, &latencies[static_cast<std::size_t>(i)])) failed++;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = pid ? CpuSeconds(pid) - cpu0 : 0;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies[std::min(latencies.size() - 1,
                              static_cast<std::size_t>(p * latencies.size()))];
  };
  double mean = 0;
  for (double l : latencies) mean += l;
  mean /= static_cast<double>(latencies.size());
  std::printf(
      "prompt_bytes=%zu requests=%d concurrency=%d failed=%d rps=%.0f added_mean_us=%.0f "
      "added_p50_us=%.0f added_p99_us=%.0f epp_cpu_us_per_request=%.0f\n",
      prompt_bytes, requests, concurrency, failed.load(), requests / wall, mean, pct(0.5),
      pct(0.99), pid ? cpu * 1e6 / requests : 0.0);
  return failed.load() == 0 ? 0 : 1;
}
