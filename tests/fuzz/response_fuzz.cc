// libFuzzer target for the response-side edits of the inference path
// (src/gateway/response_rewrite.h): the model-name rewrite and the usage scan, over SSE
// and JSON bodies.
//
// Input: the first byte picks the (target, requested) names: a fixed pair, or with its high
// bit set two names read from the input's first two lines; the rest is the body.
//
// Properties: for every way the body can be cut in two pieces (every boundary for bodies
// up to 256 bytes, else 31 spread boundaries) and for one-byte pieces (61-byte ones past
// 1 KiB), the rewritten output
// and the usage read are the same as for the body in one piece; a body without the target
// pattern comes out unchanged.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gateway/response_rewrite.h"
#include "http/openai_error.h"

namespace {

using infergate::Usage;
using infergate::gateway::ModelNameRewriter;
using infergate::gateway::UsageScanner;

struct Names {
  std::string_view target, requested;
};
constexpr Names kPairs[] = {
    {"meta-llama/Llama-3.1-8B-Instruct", "llama"},
    {"a", "b"},
    {"m", "much-longer-requested-name"},
    {"q\"uote", "back\\slash"},
    {"x", "x"},
    {"\"model\":\"", "y"},
};

bool SameUsage(const std::optional<Usage>& a, const std::optional<Usage>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a ||
         (a->prompt_tokens == b->prompt_tokens && a->completion_tokens == b->completion_tokens);
}

// The rewrite and usage of `body` delivered as the pieces cut at `cuts` (ascending).
template <class Cuts>
std::pair<std::string, std::optional<Usage>> Run(const Names& names, std::string_view body,
                                                 const Cuts& cuts) {
  ModelNameRewriter rewriter(names.target, names.requested);
  UsageScanner usage;
  std::string out;
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    const std::string_view piece = body.substr(at, cut - at);
    rewriter.Rewrite(piece, false, out);
    usage.Feed(piece);
    at = cut;
  }
  rewriter.Rewrite(body.substr(at), true, out);
  usage.Feed(body.substr(at));
  return {std::move(out), usage.Result()};
}

struct OneCut {
  std::size_t cut;
  const std::size_t* begin() const { return &cut; }
  const std::size_t* end() const { return &cut + 1; }
};
struct NoCut {
  const std::size_t* begin() const { return nullptr; }
  const std::size_t* end() const { return nullptr; }
};
// Cuts every `piece` bytes.
struct EveryPiece {
  std::size_t n, piece;
  struct It {
    std::size_t i, step;
    std::size_t operator*() const { return i; }
    It& operator++() {
      i += step;
      return *this;
    }
    bool operator!=(const It& o) const { return i < o.i; }
  };
  It begin() const { return {piece, piece}; }
  It end() const { return {n, piece}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Names names = kPairs[data[0] % (sizeof(kPairs) / sizeof(kPairs[0]))];
  if (data[0] & 0x80) {
    const auto nl1 = input.find('\n');
    if (nl1 == std::string_view::npos) return 0;
    const auto nl2 = input.find('\n', nl1 + 1);
    if (nl2 == std::string_view::npos) return 0;
    names = {input.substr(0, nl1), input.substr(nl1 + 1, nl2 - nl1 - 1)};
    if (names.target.empty()) return 0;
    input.remove_prefix(nl2 + 1);
  }
  const auto whole = Run(names, input, NoCut{});

  std::string escaped;
  infergate::http::AppendJsonEscaped(escaped, names.target);
  if (input.find("\"model\":\"" + escaped + "\"") == std::string_view::npos &&
      input.find("\"model\": \"" + escaped + "\"") == std::string_view::npos) {
    IG_FUZZ_CHECK(whole.first == input);
  }

  // Every boundary of short bodies (where the patterns are), spread ones beyond: the
  // work per input stays linear in its size.
  const std::size_t step = input.size() <= 256 ? 1 : input.size() / 31;
  for (std::size_t cut = 0; cut <= input.size(); cut += step) {
    const auto split = Run(names, input, OneCut{cut});
    IG_FUZZ_CHECK(split.first == whole.first);
    IG_FUZZ_CHECK(SameUsage(split.second, whole.second));
  }
  // One-byte pieces (bytes of a large body in 61-byte pieces: libFuzzer's comparison
  // hooks make a call per byte slow, and the hold-back is at most one pattern long).
  const auto bytes = Run(names, input, EveryPiece{input.size(), input.size() <= 1024 ? 1u : 61u});
  IG_FUZZ_CHECK(bytes.first == whole.first);
  IG_FUZZ_CHECK(SameUsage(bytes.second, whole.second));
  return 0;
}
