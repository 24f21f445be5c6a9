#include "loadgen/load_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <limits>

#include "core/tokenizer.h"
#include "http/beast.h"
#include "loadgen/dataset.h"
#include "tests/loadgen/client_checks.h"
#include "tests/loadgen/sse_test_server.h"

namespace infergate::loadgen {
namespace {

using testing::ReceivedRequest;
using testing::ScriptedSseServer;
using testing::StreamScript;

constexpr double kMs = 1e-3;

std::vector<PreparedRequest> Requests(int n, int max_tokens, ApiKind api = ApiKind::kCompletions) {
  std::vector<PreparedRequest> out;
  for (int i = 0; i < n; ++i) {
    SampleRequest s;
    for (int k = 0; k < 10 + i; ++k)
      Tokenizer::AppendWord(static_cast<std::uint64_t>(i * 1000 + k), s.prompt);
    s.prompt_len = 10 + i;
    s.expected_output_len = max_tokens;
    out.push_back({RequestBody(api, "m", s, false), s.prompt_len});
  }
  return out;
}

LoadOptions Options(std::uint16_t port, ApiKind api = ApiKind::kCompletions) {
  LoadOptions lo;
  lo.target = *MakeTarget("", "127.0.0.1", port,
                          api == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions");
  lo.timeout_s = 30;
  return lo;
}

TEST(BenchClientTest, ExactCountsOnCompletions) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.first_chunk_delay_s = 0.002;
    s.chunk_interval_s = 0.001;
    return s;
  });
  testing::ExpectExactCounts(server.port(), ApiKind::kCompletions, 24, 6);
  // The request bodies and the keep-alive reuse as the server saw them.
  const auto recs = server.Records();
  ASSERT_EQ(recs.size(), 24u);
  for (const auto& r : recs) {
    EXPECT_EQ(r.target, "/v1/completions");
    EXPECT_EQ(r.model, "test-model");
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_TRUE(r.ignore_eos);
  }
  EXPECT_LE(server.connections(), 6);
}

TEST(BenchClientTest, ExactCountsOnChat) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.chunk_interval_s = 0.001;
    return s;
  });
  testing::ExpectExactCounts(server.port(), ApiKind::kChat, 10, 10);
  EXPECT_EQ(server.Records()[0].target, "/v1/chat/completions");
}

TEST(BenchClientTest, TtftItlAndLatencyFollowKnownTimings) {
  // First chunk 50 ms after the request is read, then a token every 20 ms, 6 tokens. The
  // server records, on the same steady_clock, when it began and finished writing each
  // chunk; the arrival times the client derives (send + TTFT, then + each ITL; send +
  // latency for the last) must fall inside those windows, and TTFT can never be below the
  // scripted 50 ms.
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.first_chunk_delay_s = 0.050;
    s.chunk_interval_s = 0.020;
    s.tokens = 6;
    return s;
  });
  auto reqs = Requests(3, 6);
  LoadOptions lo = Options(server.port());
  lo.max_concurrency = 1;
  auto run = RunLoad(lo, reqs, std::vector<double>(3, 0.0));
  ASSERT_TRUE(run.ok());
  const auto recs = server.Records();
  ASSERT_EQ(recs.size(), 3u);           // in send order under the cap of 1
  constexpr double kSlack = 0.5 * kMs;  // clock reads: nothing arrives before it is sent
  // A busy machine may run the client's reader late, but not by a chunk interval (20 ms):
  // each arrival is still attributed to its own chunk.
  constexpr double kLateSlack = 5 * kMs;
  for (std::size_t i = 0; i < 3; ++i) {
    const RequestOutcome& o = run->outcomes[i];
    ASSERT_TRUE(o.success) << o.error;
    const auto& begun = recs[i].chunk_ns;
    const auto& written = recs[i].chunk_written_ns;
    ASSERT_EQ(begun.size(), 6u);
    ASSERT_EQ(written.size(), 6u);
    ASSERT_EQ(o.itl.size(), 5u);
    EXPECT_GE(o.ttft, 50 * kMs);
    const double sent = ToSeconds(run->start_steady_ns) + o.send_time;
    double arrival = sent + o.ttft;
    for (std::size_t k = 0; k < 6; ++k) {
      if (k > 0) arrival += o.itl[k - 1];
      EXPECT_GE(arrival, ToSeconds(begun[k]) - kSlack) << "chunk " << k;
      EXPECT_LE(arrival, ToSeconds(written[k]) + kLateSlack) << "chunk " << k;
    }
    EXPECT_NEAR(sent + o.latency, arrival, 1e-9);  // latency ends at the last chunk
    EXPECT_GE(o.latency, 150 * kMs);
    EXPECT_EQ(o.output_tokens, 6);
    EXPECT_EQ(o.prompt_len, static_cast<int>(10 + i));
    // TPOT by definition: (latency − TTFT) / (tokens − 1).
    const BenchmarkResult one = ComputeResult(RunInfo{}, MetricOptions{}, {o}, run->duration_s);
    EXPECT_NEAR(one.tpot_ms.mean, (o.latency - o.ttft) / 5 * 1000, 1e-9);
  }
  // Sequential under the cap of 1: the duration covers the three requests.
  EXPECT_GE(run->duration_s, 3 * 150 * kMs);
  EXPECT_EQ(server.connections(), 1);  // keep-alive reuse
}

TEST(BenchClientTest, BodyDelimitedByConnectionClose) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.chunk_interval_s = 0.001;
    s.chunked = false;
    return s;
  });
  auto run = RunLoad(Options(server.port()), Requests(3, 4), std::vector<double>(3, 0.0));
  ASSERT_TRUE(run.ok());
  for (const RequestOutcome& o : run->outcomes) {
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.output_tokens, 4);
  }
  EXPECT_EQ(server.connections(), 3);  // closed connections are not reused
}

TEST(BenchClientTest, ChatCountsTheRoleChunkAsFirstLikeBenchmarkServing) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.first_chunk_delay_s = 0.030;
    s.chunk_interval_s = 0.010;
    s.tokens = 4;
    return s;
  });
  auto run = RunLoad(Options(server.port(), ApiKind::kChat), Requests(1, 4, ApiKind::kChat),
                     std::vector<double>{0.0});
  ASSERT_TRUE(run.ok());
  const RequestOutcome& o = run->outcomes[0];
  ASSERT_TRUE(o.success) << o.error;
  EXPECT_GE(o.ttft, 30 * kMs);
  ASSERT_EQ(o.itl.size(), 4u);   // role chunk + 4 content chunks
  EXPECT_LT(o.itl[0], 2 * kMs);  // the first token came with the role chunk
  EXPECT_EQ(o.output_tokens, 4);
  std::string want;
  for (int k = 1; k <= 4; ++k) want += Tokenizer::Word(static_cast<std::uint64_t>(k));
  EXPECT_EQ(o.generated_text, want);
}

TEST(BenchClientTest, EventsSplitAcrossReadsWithCrlf) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.chunk_interval_s = 0.001;
    s.split_bytes = 7;
    s.crlf = true;
    return s;
  });
  auto run = RunLoad(Options(server.port()), Requests(4, 5), std::vector<double>(4, 0.0));
  ASSERT_TRUE(run.ok());
  for (const RequestOutcome& o : run->outcomes) {
    ASSERT_TRUE(o.success) << o.error;
    EXPECT_EQ(o.output_tokens, 5);
    EXPECT_EQ(o.itl.size(), 4u);
    EXPECT_EQ(Tokenizer::Count(o.generated_text), 5u);
  }
}

TEST(BenchClientTest, FailuresAreCountedWithTheirErrors) {
  // By max_tokens: 1 → HTTP 500; 2 → error event after one token; 3 → no usage chunk
  // (output tokens fall back to the chunk count); 4 → no choices at all; 5 → hangs
  // (timeout); 6 → normal.
  ScriptedSseServer server([](const ReceivedRequest& r) {
    StreamScript s;
    s.chunk_interval_s = 0.001;
    switch (r.max_tokens) {
      case 1:
        s.status = 500;
        break;
      case 2:
        s.error_after_tokens = 1;
        break;
      case 3:
        s.usage = false;
        break;
      case 4:
        s.tokens = 0;
        break;
      case 5:
        s.never_respond = true;
        break;
      default:
        break;
    }
    return s;
  });
  std::vector<PreparedRequest> reqs;
  for (int t = 1; t <= 6; ++t) reqs.push_back(Requests(1, t)[0]);
  LoadOptions lo = Options(server.port());
  lo.timeout_s = 0.3;
  auto run = RunLoad(lo, reqs, std::vector<double>(reqs.size(), 0.0));
  ASSERT_TRUE(run.ok());
  const auto& o = run->outcomes;
  EXPECT_FALSE(o[0].success);
  EXPECT_NE(o[0].error.find("HTTP 500"), std::string::npos) << o[0].error;
  EXPECT_NE(o[0].error.find("scripted failure"), std::string::npos) << o[0].error;
  EXPECT_FALSE(o[1].success);
  EXPECT_EQ(o[1].error, "scripted mid-stream error");
  EXPECT_TRUE(o[2].success) << o[2].error;
  EXPECT_EQ(o[2].output_tokens, 3);
  EXPECT_FALSE(o[3].success);
  EXPECT_EQ(o[3].error, "Never received a valid chunk to calculate TTFT.");
  EXPECT_FALSE(o[4].success);
  EXPECT_NE(o[4].error.find("timeout"), std::string::npos) << o[4].error;
  EXPECT_TRUE(o[5].success) << o[5].error;
  const BenchmarkResult r = ComputeResult(RunInfo{}, MetricOptions{}, o, run->duration_s);
  EXPECT_EQ(r.completed, 2);
  EXPECT_EQ(r.failed, 4);
  EXPECT_NE(r.first_error.find("HTTP 500"), std::string::npos);
}

TEST(BenchClientTest, ConcurrencyCapIsASemaphoreAroundEachRequest) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.first_chunk_delay_s = 0.020;
    s.chunk_interval_s = 0.010;
    s.tokens = 3;
    return s;
  });
  LoadOptions lo = Options(server.port());
  lo.max_concurrency = 3;
  auto run = RunLoad(lo, Requests(9, 3), std::vector<double>(9, 0.0));
  ASSERT_TRUE(run.ok());
  // Sweep the [send, send + latency] intervals: never more than 3 at once, and 3 reached.
  std::vector<std::pair<double, int>> edges;
  for (const RequestOutcome& o : run->outcomes) {
    ASSERT_TRUE(o.success) << o.error;
    edges.emplace_back(o.send_time, +1);
    edges.emplace_back(o.send_time + o.latency, -1);
  }
  std::sort(edges.begin(), edges.end());
  int live = 0, peak = 0;
  for (const auto& [t, d] : edges) peak = std::max(peak, live += d);
  EXPECT_EQ(peak, 3);
  EXPECT_LE(server.connections(), 3);
  // Three waves of ~40 ms.
  EXPECT_GE(run->duration_s, 0.12);
}

TEST(BenchClientTest, ArrivalsFollowTheOffsetsAndTimeScaleScalesEverything) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.first_chunk_delay_s = 0.020;
    s.chunk_interval_s = 0.010;
    s.tokens = 2;
    return s;
  });
  // Simulated offsets 0, 0.5, 1.0 s at time scale 10 → wall 0, 50, 100 ms.
  LoadOptions lo = Options(server.port());
  lo.time_scale = 10;
  auto run = RunLoad(lo, Requests(3, 2), std::vector<double>{0.0, 0.5, 1.0});
  ASSERT_TRUE(run.ok());
  const auto& o = run->outcomes;
  const auto recs = server.Records();
  ASSERT_EQ(recs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(o[i].success) << o[i].error;
    EXPECT_GE(o[i].send_time, 0.5 * i);  // simulated seconds; timers never fire early
    EXPECT_LT(o[i].send_time, 0.5 * i + 0.3);
    // 20 ms of wall time is 200 ms of simulated time; every time is scaled by 10.
    EXPECT_GE(o[i].ttft, 0.200);
    const double sent_wall = ToSeconds(run->start_steady_ns) + o[i].send_time / 10;
    const double first_wall = sent_wall + o[i].ttft / 10;
    EXPECT_GE(first_wall, ToSeconds(recs[i].chunk_ns[0]) - 0.5 * kMs);
    EXPECT_LE(first_wall, ToSeconds(recs[i].chunk_written_ns[0]) + 0.5 * kMs);
  }
  EXPECT_GE(run->duration_s, 1.0 + 0.3);
  // The run ends when the last response has been read completely (usage, [DONE]).
  EXPECT_GE(run->duration_s, o[2].send_time + o[2].latency);
  EXPECT_LT(run->duration_s, o[2].send_time + o[2].latency + 0.2);
}

TEST(BenchClientTest, HeadersAreSentAndRefusedConnectionsFail) {
  ScriptedSseServer server([](const ReceivedRequest&) {
    StreamScript s;
    s.chunk_interval_s = 0.001;
    return s;
  });
  LoadOptions lo = Options(server.port());
  lo.headers = {{"X-Tenant", "t1"}, {"Authorization", "Bearer abc"}};
  auto ok = RunLoad(lo, Requests(1, 2), std::vector<double>{0.0});
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(server.Records().size(), 1u);
  EXPECT_EQ(server.Records()[0].headers.at("x-tenant"), "t1");
  EXPECT_EQ(server.Records()[0].headers.at("authorization"), "Bearer abc");

  // A port with nothing listening.
  std::uint16_t closed;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed = a.local_endpoint().port();
  }
  auto refused = RunLoad(Options(closed), Requests(2, 2), std::vector<double>(2, 0.0));
  ASSERT_TRUE(refused.ok());
  for (const RequestOutcome& o : refused->outcomes) {
    EXPECT_FALSE(o.success);
    EXPECT_NE(o.error.find("connect"), std::string::npos) << o.error;
  }
  LoadOptions bad = Options(server.port());
  bad.target.host = "no-such-host.invalid";
  EXPECT_FALSE(RunLoad(bad, Requests(1, 1), std::vector<double>{0.0}).ok());
}

}  // namespace
}  // namespace infergate::loadgen
