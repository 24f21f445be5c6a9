// ig_loadgen_client_overhead: how much the benchmark client adds to measured TTFT.
//
// Runs the scripted SSE server (first chunk exactly --first-chunk-ms after a request has
// been read) on one thread and the client on this one, sharing steady_clock, then splits
// each request's reported TTFT into: client send (send time → request written to the
// socket: connect and write), server read (written → server has read and parsed it),
// server lateness (first chunk written −
// scheduled time), receive path (server wrote the first chunk → client timestamped it).
// Prints mean and P99 of each, and of the total excess (reported TTFT − first-chunk-ms),
// for each concurrency level given (default 1 100 2000), in two shapes:
//   burst:  3·N requests (200 for N = 1) under --max-concurrency N, all due at time 0, so
//           N requests start together and each completion starts the next;
//   steady: N streams kept open: requests arrive evenly at N / (stream length) per second,
//           each streams --tokens tokens (10) --interval-ms apart (100), open loop, for 3 stream
//           lengths.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "loadgen/load_client.h"
#include "loadgen/statistics.h"
#include "tests/loadgen/sse_test_server.h"

using namespace infergate;
using namespace infergate::loadgen;

namespace {

std::string Stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return fmt::format("mean {:7.3f}  p50 {:7.3f}  p99 {:7.3f}", Mean(v), MedianOfSorted(v),
                     PercentileOfSorted(v, 99));
}

}  // namespace

int main(int argc, char** argv) {
  double first_ms = 50;
  int tokens = 10;
  double interval_ms = 100;   // about the seed's ITL
  std::string mode = "both";  // burst | steady | both
  std::vector<int> levels;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--first-chunk-ms" && i + 1 < argc) {
      first_ms = std::atof(argv[++i]);
    } else if (std::string(argv[i]) == "--mode" && i + 1 < argc) {
      mode = argv[++i];
    } else if (std::string(argv[i]) == "--interval-ms" && i + 1 < argc) {
      interval_ms = std::atof(argv[++i]);
    } else if (std::string(argv[i]) == "--tokens" && i + 1 < argc) {
      tokens = std::atoi(argv[++i]);
    } else {
      levels.push_back(std::atoi(argv[i]));
    }
  }
  if (levels.empty()) levels = {1, 100, 2000};
  loadgen::RaiseOpenFileLimit();
  // max_tokens selects the stream length: 2 tokens for burst runs, `tokens` for steady.
  testing::ScriptedSseServer server([first_ms, interval_ms](const testing::ReceivedRequest&) {
    testing::StreamScript s;
    s.first_chunk_delay_s = first_ms / 1000;
    s.chunk_interval_s = interval_ms / 1000;
    return s;
  });
  fmt::print("first chunk scheduled {} ms after the request is read; times in ms\n", first_ms);
  std::size_t seen = 0;
  for (int c : levels) {
    for (const bool steady : {false, true}) {
      if ((steady && mode == "burst") || (!steady && mode == "steady")) continue;
      const double stream_s = first_ms / 1000 + interval_ms / 1000 * (tokens - 1);
      const int n = steady ? std::max(30, 3 * c) : (c == 1 ? 200 : 3 * c);
      const double rate = c / stream_s;
      std::vector<PreparedRequest> reqs;
      std::vector<double> offsets;
      std::string prompt;
      for (int k = 0; k < 100; ++k) Tokenizer::AppendWord(static_cast<std::uint64_t>(k), prompt);
      for (int i = 0; i < n; ++i) {
        // The model name carries the request index so server records can be matched.
        reqs.push_back(
            {fmt::format(
                 R"({{"model":"r{}","prompt":"{}","max_tokens":{},"stream":true,"stream_options":{{"include_usage":true}}}})",
                 i, prompt, steady ? tokens : 2),
             100});
        offsets.push_back(steady ? i / rate : 0.0);
      }
      LoadOptions lo;
      lo.target = *MakeTarget("", "127.0.0.1", server.port(), "/v1/completions");
      if (!steady) lo.max_concurrency = c;
      lo.keep_text = false;
      auto run = RunLoad(lo, reqs, offsets);
      if (!run) {
        fmt::print(stderr, "{}\n", run.error().message);
        return 1;
      }
      const auto recs = server.Records();
      std::vector<double> excess, send, read, late, recv, excess_warm;
      int failed = 0;
      for (std::size_t k = seen; k < recs.size(); ++k) {
        const auto& r = recs[k];
        const int i = std::atoi(r.model.c_str() + 1);
        const RequestOutcome& o = run->outcomes[static_cast<std::size_t>(i)];
        if (!o.success) {
          ++failed;
          continue;
        }
        const double sent_ms = (run->start_steady_ns / 1e6) + o.send_time * 1e3;
        const double got_ms = sent_ms + o.ttft * 1e3;
        excess.push_back(o.ttft * 1e3 - first_ms);
        if (i >= c) excess_warm.push_back(o.ttft * 1e3 - first_ms);
        send.push_back(o.request_written * 1e3);
        read.push_back(r.arrived_ns / 1e6 - sent_ms - o.request_written * 1e3);
        late.push_back((r.first_chunk_ns - r.arrived_ns) / 1e6 - first_ms);
        recv.push_back(got_ms - r.first_chunk_ns / 1e6);
      }
      seen = recs.size();
      fmt::print("  server connections so far: {}\n", server.connections());
      fmt::print("\n{} concurrency {:5}  requests {:5}  failed {}  duration {:.2f} s\n",
                 steady ? "steady" : "burst ", c, n, failed, run->duration_s);
      fmt::print("  TTFT excess (all)       {}\n", Stats(excess));
      if (!excess_warm.empty()) fmt::print("  TTFT excess (reused)    {}\n", Stats(excess_warm));
      fmt::print("  client send             {}\n", Stats(send));
      fmt::print("  server read             {}\n", Stats(read));
      fmt::print("  server lateness         {}\n", Stats(late));
      fmt::print("  receive path            {}\n", Stats(recv));
    }
  }
  return 0;
}
