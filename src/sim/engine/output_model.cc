#include "sim/engine/output_model.h"

#include <algorithm>
#include <cmath>

namespace infergate::sim {

const char* ToString(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
  }
  return "unknown";
}

std::uint64_t Mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::uint64_t OutputPieceKey(std::uint64_t seed, RequestId id, int index) {
  return Mix64(Mix64(seed ^ 0x6F7574707574ULL) ^
               (Mix64(id) * 31 + static_cast<std::uint64_t>(index)));
}

TokenId OutputTokenId(std::uint64_t piece_key, bool eos) {
  static const TokenId kEosId = Tokenizer::IdOf(kEosPiece);
  if (eos) return kEosId;
  // A word is at most 5 bytes, so this string stays in its small-string buffer.
  std::string word;
  Tokenizer::AppendWord(piece_key, word);
  return Tokenizer::IdOf(word);
}

void AppendOutputText(std::uint64_t piece_key, bool eos, std::string& out) {
  if (!eos) Tokenizer::AppendWord(piece_key, out);
}

OutputPlan PlanOutput(const EosSpec& eos, std::uint64_t seed, RequestId id, int max_tokens,
                      int min_tokens, bool ignore_eos) {
  if (ignore_eos || eos.model == EosModel::kNone) return {max_tokens, FinishReason::kLength};
  // A uniform draw in [0, 1) from (seed, id) only.
  const double u = static_cast<double>(Mix64(Mix64(seed ^ 0x656F73ULL) ^ id) >> 11) * 0x1.0p-53;
  double natural = 0;
  if (eos.model == EosModel::kUniform) {
    natural =
        std::ceil(max_tokens * (eos.min_fraction + (eos.max_fraction - eos.min_fraction) * u));
  } else {
    // Geometric on {1, 2, ...} with the given mean.
    const double p = 1.0 / eos.mean_tokens;
    natural = p >= 1 ? 1 : 1 + std::floor(std::log1p(-u) / std::log1p(-p));
  }
  const double end = std::max({natural, 1.0, static_cast<double>(min_tokens)});
  if (end <= max_tokens) return {static_cast<int>(end), FinishReason::kStop};
  return {max_tokens, FinishReason::kLength};
}

}  // namespace infergate::sim
