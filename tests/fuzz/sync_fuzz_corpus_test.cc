// Runs every seed of the replica-sync fuzz corpus (and every prefix of it) through the
// fuzz target's entry point, so each CI build exercises it without a fuzzing engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(SyncFuzzCorpus, EverySeedRunsClean) {
  std::vector<std::filesystem::path> seeds;
  for (const auto& e : std::filesystem::directory_iterator(IG_SYNC_CORPUS)) {
    if (e.is_regular_file()) seeds.push_back(e.path());
  }
  std::sort(seeds.begin(), seeds.end());
  ASSERT_GE(seeds.size(), 6u);
  for (const auto& path : seeds) {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(path.string());
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()), 0);
    for (std::size_t cut = 0; cut < data.size(); cut += 1 + data.size() / 64) {
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), cut);
    }
  }
}

}  // namespace
