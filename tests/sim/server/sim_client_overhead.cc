// ig_sim_client_overhead: what the benchmark client adds to TTFT, measured against a
// running `infergate sim` (not a test; numbers for docs/benchmarks.md).
//
// For each concurrency level N (default 1 100 2000) it sends requests under
// --max-concurrency N with the benchmark client's own code (loadgen::RunLoad): by default a
// burst (N = 1: 200 requests one after another; else N requests at once, so N streams are
// open together); with --rate R (requests per simulated second) an open-loop stream of
// --requests K requests (default 3N) evenly spaced, so about N streams stay open when
// R ≈ N / (stream length). Then it
// then reads the engine's timing of every request from the server's /sim/requests. Each
// client outcome is paired with its engine request by its generated text (output token i
// of engine request `id` is a word determined by the engine seed, id and i), and the
// difference (client TTFT − engine TTFT) is what the client and the HTTP path add: client
// send, the server reading and admitting the request, the server writing the first chunk
// after the step that produced it, and the client receiving it. Both TTFTs are simulated
// seconds; the tool prints the difference in wall milliseconds (÷ time scale), and splits
// it using the steady clock both processes share: client send → the engine's arrival
// (client write, kernel, server read, parse and admission), the server's lateness writing
// the first chunk (from /sim/requests), and the rest (server write → client timestamp).
// The client's own part is its send path (send time → request written) plus that rest.
//
//   infergate sim --profile tiny --port 8000 ... &
//   ig_sim_client_overhead --host 127.0.0.1 --port 8000 --time-scale 1 1 100 2000
//   ig_sim_client_overhead ... --rate 125 --requests 6000 2000
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "loadgen/dataset.h"
#include "loadgen/load_client.h"
#include "loadgen/request.h"
#include "loadgen/statistics.h"
#include "sim/engine/output_model.h"
#include "tests/support/process.h"

using namespace infergate;
using nlohmann::json;

namespace {

std::string Stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return fmt::format("mean {:8.3f}  p50 {:8.3f}  p99 {:8.3f}  max {:8.3f}", loadgen::Mean(v),
                     loadgen::MedianOfSorted(v), loadgen::PercentileOfSorted(v, 99), v.back());
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", model = "test-model";
  int port = 8000, input_len = 32, output_len = 8;
  double time_scale = 1.0, rate = 0;
  int requests = 0;
  std::vector<int> levels;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--host") {
      host = next();
    } else if (a == "--port") {
      port = std::atoi(next().c_str());
    } else if (a == "--model") {
      model = next();
    } else if (a == "--time-scale") {
      time_scale = std::atof(next().c_str());
    } else if (a == "--input-len") {
      input_len = std::atoi(next().c_str());
    } else if (a == "--rate") {
      rate = std::atof(next().c_str());
    } else if (a == "--requests") {
      requests = std::atoi(next().c_str());
    } else if (a == "--output-len") {
      output_len = std::atoi(next().c_str());
    } else {
      levels.push_back(std::atoi(a.c_str()));
    }
  }
  if (levels.empty()) levels = {1, 100, 2000};
  loadgen::RaiseOpenFileLimit();

  auto stats = testing::HttpRequest(host, port, "GET", "/sim/stats");
  if (stats.status != 200) {
    fmt::print(stderr, "cannot read {}:{}/sim/stats: {}\n", host, port, stats.error);
    return 1;
  }
  const json stats_json = json::parse(stats.body);
  const std::uint64_t seed = stats_json["seed"];
  const double wall_origin_ns = stats_json["wall_origin_ns"];
  fmt::print("server {}:{}  time scale {}  prompt {} tokens  output {} tokens  {}; wall ms\n", host,
             port, time_scale, input_len, output_len,
             rate > 0 ? fmt::format("{} req/s (simulated)", rate) : std::string("burst"));

  std::uint64_t salt = 0;
  std::uint64_t seen_id = 0;
  for (int c : levels) {
    const int n = rate > 0 ? (requests > 0 ? requests : 3 * c) : (c == 1 ? 200 : c);
    std::vector<loadgen::PreparedRequest> reqs;
    for (int k = 0; k < n; ++k) {
      loadgen::SampleRequest s;
      for (int t = 0; t < input_len; ++t) Tokenizer::AppendWord(++salt * 7919, s.prompt);
      s.prompt_len = input_len;
      s.expected_output_len = output_len;
      reqs.push_back(
          {loadgen::RequestBody(loadgen::ApiKind::kCompletions, model, s, true), input_len});
    }
    std::vector<double> offsets(reqs.size(), 0.0);
    if (rate > 0) {
      for (std::size_t k = 0; k < offsets.size(); ++k) offsets[k] = static_cast<double>(k) / rate;
    }
    loadgen::LoadOptions lo;
    auto target = loadgen::MakeTarget("", host, port, "/v1/completions");
    if (!target.ok()) return 1;
    lo.target = *target;
    lo.max_concurrency = c;
    lo.time_scale = time_scale;
    lo.timeout_s = 600 * time_scale;
    auto run = loadgen::RunLoad(lo, reqs, offsets);
    if (!run.ok()) {
      fmt::print(stderr, "{}\n", run.error().message);
      return 1;
    }
    // The engine's TTFT of every request it finished since the last level, by output text.
    auto log =
        testing::HttpRequest(host, port, "GET", "/sim/requests", "", {}, std::chrono::seconds(30));
    if (log.status != 200) return 1;
    struct EngineSide {
      double ttft = 0;              // simulated s
      double arrival = 0;           // simulated s
      double first_write_late = 0;  // wall µs
    };
    std::map<std::string, EngineSide> engine;
    const json parsed = json::parse(log.body);
    for (const json& r : parsed["requests"]) {
      const std::uint64_t id = r["id"];
      if (id <= seen_id || r["first_token"].is_null()) continue;
      std::string text;
      for (int i = 0; i < r["output_tokens"].get<int>(); ++i) {
        sim::AppendOutputText(sim::OutputPieceKey(seed, id, i), false, text);
      }
      const double arrival = r["arrival"];
      engine[text] = {
          r["first_token"].get<double>() - arrival, arrival,
          r["first_write_late_us"].is_null() ? 0.0 : r["first_write_late_us"].get<double>()};
      seen_id = std::max(seen_id, id);
    }
    std::vector<double> excess_ms, client_ms, engine_ms, written_ms, to_server_ms, server_late_ms,
        back_ms, client_part_ms;
    int failed = 0, unpaired = 0;
    for (const auto& o : run->outcomes) {
      if (!o.success) {
        ++failed;
        continue;
      }
      auto it = engine.find(o.generated_text);
      if (it == engine.end()) {
        ++unpaired;
        continue;
      }
      const EngineSide& e = it->second;
      const double excess = (o.ttft - e.ttft) / time_scale * 1000;
      excess_ms.push_back(excess);
      client_ms.push_back(o.ttft / time_scale * 1000);
      engine_ms.push_back(e.ttft / time_scale * 1000);
      // Steady-clock times (ms) of the client's send and the engine's arrival.
      const double send =
          (static_cast<double>(run->start_steady_ns) + o.send_time / time_scale * 1e9) / 1e6;
      const double arrive = (wall_origin_ns + e.arrival / time_scale * 1e9) / 1e6;
      const double written = o.request_written / time_scale * 1000;
      const double back = excess - (arrive - send) - e.first_write_late / 1000;
      written_ms.push_back(written);
      to_server_ms.push_back(arrive - send - written);
      server_late_ms.push_back(e.first_write_late / 1000);
      back_ms.push_back(back);
      client_part_ms.push_back(written + back);
    }
    fmt::print("concurrency {:5}  requests {:5}  failed {}  unpaired {}\n", c, n, failed, unpaired);
    if (excess_ms.empty()) continue;
    fmt::print("  client TTFT − engine TTFT  {}\n", Stats(excess_ms));
    fmt::print("    client: send → written   {}\n", Stats(written_ms));
    fmt::print("    written → engine arrival {}\n", Stats(to_server_ms));
    fmt::print("    server first-write late  {}\n", Stats(server_late_ms));
    fmt::print("    server write → client    {}\n", Stats(back_ms));
    fmt::print("    client's part (1st + 4th){}\n", Stats(client_part_ms));
    fmt::print("  client TTFT                {}\n", Stats(client_ms));
    fmt::print("  engine TTFT                {}\n", Stats(engine_ms));
  }
  return 0;
}
