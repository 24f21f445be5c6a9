// Runs every seed of the fuzz corpora through the fuzz targets' entry points, so each CI
// build exercises them without a fuzzing engine.
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

std::vector<std::filesystem::path> Seeds() {
  std::vector<std::filesystem::path> out;
  for (const char* dir : {IG_PROMETHEUS_CORPUS, IG_DATALAYER_TESTDATA}) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(PrometheusFuzzCorpus, EverySeedRunsClean) {
  const std::vector<std::filesystem::path> seeds = Seeds();
  ASSERT_GE(seeds.size(), 15u);
  for (const auto& path : seeds) {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(path.string());
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()), 0);
    // Every prefix of a seed is an input too (truncated scrapes happen).
    for (std::size_t cut = 0; cut < data.size(); cut += 1 + data.size() / 64) {
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), cut);
    }
  }
}

}  // namespace
