// `infergate simulate` as a user runs it: exit codes, the printed tables, determinism, the
// result JSON (read back with bench's reader, as `infergate bench compare` does) and the
// HTML report. Runs the executable (path from INFERGATE_BIN in the environment, else the
// build's).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "loadgen/compare.h"
#include "loadgen/report.h"
#include "tests/support/process.h"

namespace infergate::cluster {
namespace {

namespace fs = std::filesystem;

using Outcome = ::infergate::testing::CommandOutcome;

std::string Slurp(const fs::path& p) { return ::infergate::testing::ReadFile(p.string()); }

class SimulateCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = ::infergate::testing::TempDir(); }

  Outcome Run(std::vector<std::string> args) {
    const char* env = std::getenv("INFERGATE_BIN");
    args.insert(args.begin(), env != nullptr ? env : INFERGATE_BIN);
    args.insert(args.begin() + 1, "simulate");
    Outcome r = ::infergate::testing::RunCommand(args, dir_.string(), std::chrono::seconds(120));
    EXPECT_FALSE(r.timed_out) << "infergate did not finish in 120 s";
    return r;
  }

  fs::path dir_;
};

const std::vector<std::string> kSmallSeed = {
    "--workload", "seed", "--num-prompts", "45", "--policies", "round-robin,gie-v0,infergate"};

TEST_F(SimulateCliTest, PrintsTablesWritesJsonAndHtmlAndIsDeterministic) {
  auto args = kSmallSeed;
  for (const char* a : {"--json", "results", "--html", "report.html"}) args.emplace_back(a);
  const Outcome a = Run(args);
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find("============ Serving Benchmark Result ============"), std::string::npos);
  EXPECT_NE(a.out.find("Policy: infergate (gateway queue)"), std::string::npos);
  EXPECT_NE(a.out.find("Comparison (ratios to round-robin)"), std::string::npos);
  EXPECT_NE(a.out.find("TTFT/floor"), std::string::npos);
  EXPECT_NE(a.out.find("Successful requests:                     45"), std::string::npos);

  // Same flags, same numbers.
  const Outcome b = Run(args);
  ASSERT_EQ(b.code, 0);
  EXPECT_EQ(a.out, b.out);

  // One JSON per policy, readable by bench's reader and comparable.
  std::vector<loadgen::NamedResult> runs;
  for (const char* name : {"round-robin", "gie-v0", "infergate"}) {
    const fs::path p = dir_ / "results" / (std::string(name) + "-seed-seed0.json");
    ASSERT_TRUE(fs::exists(p)) << p;
    auto r = loadgen::LoadResultFile(p.string());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->completed, 45);
    EXPECT_EQ(r->info.max_concurrency, 30);
    EXPECT_EQ(r->requests.size(), 45u);
    runs.push_back({name, std::move(*r)});
  }
  const std::string table = loadgen::FormatComparison(runs, false);
  EXPECT_NE(table.find("Mean TTFT (ms)"), std::string::npos);
  const std::string html = Slurp(dir_ / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("infergate"), std::string::npos);
}

TEST_F(SimulateCliTest, SweepReportsTheCapacityAndPlotsIt) {
  const Outcome r =
      Run({"--workload", "shared-prefix", "--num-prompts", "200", "--sweep-rates", "2,6", "--seeds",
           "0", "--policies", "round-robin,infergate", "--html", "sweep.html"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("SLO capacity"), std::string::npos);
  EXPECT_NE(r.out.find("Saturation rate"), std::string::npos);
  EXPECT_NE(r.out.find("round-robin's saturation"), std::string::npos);
  EXPECT_NE(r.out.find("P90 TTFT"), std::string::npos);
  // No gie-default in the sweep: the knee is the first policy's.
  EXPECT_NE(r.out.find("Knee of round-robin: light-load P90 TTFT"), std::string::npos) << r.out;
  const std::string html = Slurp(dir_ / "sweep.html");
  EXPECT_NE(html.find("P90 TTFT vs request rate"), std::string::npos);
}

TEST_F(SimulateCliTest, SweepSummaryInMarkdown) {
  const Outcome r = Run({"--workload", "shared-prefix", "--num-prompts", "60", "--sweep-rates", "4",
                         "--policies", "round-robin,gie-default", "--markdown",
                         "--sp-active-sessions", "5", "--trace", "traces"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| policy | SLO capacity | saturation rate |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| round-robin | "), std::string::npos);
  EXPECT_NE(r.out.find("| gie-default | "), std::string::npos);
  EXPECT_NE(r.out.find("Knee of gie-default: light-load P90 TTFT"), std::string::npos) << r.out;
  // --trace: one CSV per run, a header and a line per request.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_ / "traces")) {
    ++files;
    EXPECT_EQ(entry.path().extension(), ".csv");
    std::istringstream in(Slurp(entry.path()));
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) ++lines;
    EXPECT_EQ(lines, 61) << entry.path();
  }
  EXPECT_EQ(files, 2);
}

TEST_F(SimulateCliTest, BadFlagsExitWithTwoAndSayWhy) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--workload", "sonnet"}, "--workload"},
      {{"--policies", "least-loaded"}, "least-loaded"},
      {{"--policies", "infergate:maybe"}, "queue or direct"},
      {{"--eos", "sometimes"}, "--eos"},
      {{"--sweep-rates", "0,2"}, "--sweep-rates"},
      {{"--sweep-rates", "1:2"}, "--sweep-rates"},
      {{"--scrape-interval", "0"}, "--scrape-interval"},
      {{"--scrape-latency", "60"}, "--scrape-latency"},
      {{"--seeds", "1,x"}, "--seeds"},
      {{"--profile", "no-such-profile"}, "--profile"},
      {{"--criticality", "VeryHigh"}, "--criticality"},
      {{"--param", "infergate/x=1"}, "--param"},
      {{"--random-range-ratio", "3"}, "range-ratio"},
      {{"--workload", "shared-prefix", "--sp-active-sessions", "-2"}, "--sp-active-sessions"},
      {{"--workload", "shared-prefix", "--sp-answers", "echo"}, "--sp-answers"},
      {{"--num-prompts", "10", "--warmup-prompts", "10"}, "--warmup-prompts"},
      {{"--policies", "gie-default", "--knee-of", "infergate"}, "--knee-of"},
      {{"--knee-factor", "1"}, "--knee-factor"},
      {{"--redirect-after", "-1"}, "--redirect-after"},
      {{"--sync-order-wait", "-1"}, "--sync-order-wait"},
      {{"--warmup-prompts", "-1"}, "--warmup-prompts"},
      // The workload flags bench shares, with bench's checks.
      {{"--request-rate", "0"}, "--request-rate"},
      {{"--request-rate", "fast"}, "--request-rate"},
      {{"--burstiness", "0"}, "--burstiness"},
      {{"--max-concurrency", "-1"}, "--max-concurrency"},
      {{"--seed", "-1"}, "--seed"},
      {{"--percentile-metrics", "ttft,foo"}, "foo"},
      {{"--no-such-flag"}, "no-such-flag"},
  };
  for (const Case& c : cases) {
    const Outcome r = Run(c.args);
    EXPECT_EQ(r.code, 2) << c.args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args[0] << ": " << r.err;
  }
}

TEST_F(SimulateCliTest, ATraceDirectoryThatCannotBeMadeIsAnError) {
  // A plain file where the directory should go: the run fails and names the path.
  { std::ofstream(dir_ / "blocker") << "x"; }
  const Outcome r = Run({"--workload", "seed", "--num-prompts", "5", "--policies", "round-robin",
                         "--trace", "blocker/traces"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("--trace: cannot create blocker/traces"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace infergate::cluster
