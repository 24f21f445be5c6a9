// The access log writer: lines from many threads all arrive whole, sampling is exact,
// a full buffer drops and counts instead of blocking, bad paths are clear errors.
#include "telemetry/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "telemetry/json_out.h"

namespace infergate::telemetry {
namespace {

// The files a test wrote, removed when the test program ends.
std::vector<std::string>& WrittenPaths() {
  static std::vector<std::string> paths;
  return paths;
}
class RemoveWrittenFiles : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const std::string& p : WrittenPaths()) ::unlink(p.c_str());
  }
};
[[maybe_unused]] const auto* const kRemoveWrittenFiles =
    ::testing::AddGlobalTestEnvironment(new RemoveWrittenFiles);

std::string TempPath(const std::string& name) {
  std::string path =
      ::testing::TempDir() + "/access_log_test_" + std::to_string(::getpid()) + "_" + name;
  WrittenPaths().push_back(path);
  return path;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(AccessLog, LinesFromManyThreadsArriveWhole) {
  const std::string path = TempPath("threads");
  ::unlink(path.c_str());
  {
    auto log = AccessLog::Open({.path = path, .flush_interval = kNanosPerSecond / 1000});
    ASSERT_TRUE(log.ok()) << log.error().message;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 2500; ++i) {
          (*log)->Write("{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}");
        }
      });
    }
    for (auto& th : threads) th.join();
    (*log)->Close();
    EXPECT_EQ((*log)->lines_written(), 10000u);
    EXPECT_EQ((*log)->lines_dropped(), 0u);
  }
  const auto lines = Lines(path);
  ASSERT_EQ(lines.size(), 10000u);
  std::vector<int> next(4, 0);
  for (const auto& l : lines) {
    int t = -1, i = -1;
    ASSERT_EQ(std::sscanf(l.c_str(), "{\"t\":%d,\"i\":%d}", &t, &i), 2) << l;
    ASSERT_GE(t, 0);
    ASSERT_LT(t, 4);
    EXPECT_EQ(i, next[t]++);  // each thread's lines stay in order
  }
}

TEST(AccessLog, SamplingIsExactAndSpread) {
  auto log = AccessLog::Open({.path = TempPath("sample"), .sample_rate = 0.25});
  ASSERT_TRUE(log.ok());
  int kept = 0, run = 0, longest_gap = 0;
  for (int i = 0; i < 1000; ++i) {
    if ((*log)->Sample()) {
      ++kept;
      run = 0;
    } else {
      longest_gap = std::max(longest_gap, ++run);
    }
  }
  EXPECT_EQ(kept, 250);
  EXPECT_LE(longest_gap, 3);
  auto none = AccessLog::Open({.path = TempPath("none"), .sample_rate = 0});
  ASSERT_TRUE(none.ok());
  for (int i = 0; i < 100; ++i) EXPECT_FALSE((*none)->Sample());
}

TEST(AccessLog, FullBufferDropsAndCounts) {
  // A long flush interval: nothing leaves the buffer during the test.
  auto log = AccessLog::Open({.path = TempPath("full"),
                              .flush_interval = 3600 * kNanosPerSecond,
                              .max_buffer_bytes = 100});
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 20; ++i) (*log)->Write("0123456789");  // 11 bytes each with newline
  (*log)->Close();
  EXPECT_EQ((*log)->lines_written(), 9u);
  EXPECT_EQ((*log)->lines_dropped(), 11u);
}

TEST(AccessLog, BadOptionsAreErrors) {
  auto missing = AccessLog::Open({.path = "/nonexistent-dir/x/access.log"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent-dir/x/access.log"), std::string::npos);
  EXPECT_FALSE(AccessLog::Open({.path = TempPath("rate"), .sample_rate = 1.5}).ok());
  EXPECT_FALSE(AccessLog::Open({.path = ""}).ok());
}

TEST(AccessLog, FormatsUtcMillis) {
  EXPECT_EQ(FormatUtcMillis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatUtcMillis(1796011811123), "2026-11-30T04:10:11.123Z");
  // Appending (the hot path: the second's prefix is cached per thread).
  std::string out = "t=";
  AppendUtcMillis(out, 1796011811123);
  AppendUtcMillis(out, 1796011811999);
  AppendUtcMillis(out, 1796011812007);
  EXPECT_EQ(out, "t=2026-11-30T04:10:11.123Z2026-11-30T04:10:11.999Z2026-11-30T04:10:12.007Z");
  EXPECT_EQ(FormatUtcMillis(-1), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace infergate::telemetry
