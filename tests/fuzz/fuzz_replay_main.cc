// Replays a fuzz target's corpus (seeds and crash regressions) through its entry point in
// a normal unit test, so every CI build, gcc included, runs every target without a
// fuzzing engine. The directories come from IG_FUZZ_CORPORA ('|'-separated), set by
// ig_fuzz_target (CMakeLists.txt).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::filesystem::path> Seeds() {
  std::vector<std::filesystem::path> out;
  std::string_view dirs = IG_FUZZ_CORPORA;
  while (!dirs.empty()) {
    const auto bar = dirs.find('|');
    const std::filesystem::path dir(std::string(dirs.substr(0, bar)));
    dirs = bar == std::string_view::npos ? std::string_view() : dirs.substr(bar + 1);
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int RunInput(const std::string& data, std::size_t size) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), size);
}

TEST(FuzzCorpus, EverySeedRunsClean) {
  const std::vector<std::filesystem::path> seeds = Seeds();
  ASSERT_GE(seeds.size(), static_cast<std::size_t>(IG_FUZZ_MIN_SEEDS));
  for (const auto& path : seeds) {
    std::ifstream in(path, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(path.string());
    EXPECT_EQ(RunInput(data, data.size()), 0);
    // Every prefix of a seed is an input too (truncated input happens).
    for (std::size_t cut = 0; cut < data.size(); cut += 1 + data.size() / 64) RunInput(data, cut);
  }
}

}  // namespace
