// The simulated model's output: which tokens it produces and when it stops.
//
// Output token `index` of request `id` is a one-token word chosen by
// OutputPieceKey(seed, id, index), so a replay with the same seed produces the same text,
// and the HTTP front can render any token from the key alone (AppendOutputText). When the
// EOS model ends a request, its last token is the end-of-sequence token: it counts as an
// output token (as in vLLM's usage.completion_tokens) and renders as no text.
//
// The natural output length drawn by the EOS model depends only on (seed, request id), so
// it does not change with arrival order, routing or batching.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "sim/engine/profile.h"
#include "sim/engine/request.h"

namespace infergate::sim {

// The piece text of the end-of-sequence token (rendered as nothing).
inline constexpr const char* kEosPiece = "<|endoftext|>";

// SplitMix64's finalizer: a bijective 64-bit mix.
std::uint64_t Mix64(std::uint64_t x);

std::uint64_t OutputPieceKey(std::uint64_t seed, RequestId id, int index);

// Token id of the piece with this key (Tokenizer::IdOf(Tokenizer::Word(key))), or of the
// EOS piece.
TokenId OutputTokenId(std::uint64_t piece_key, bool eos);

// Appends the text of an output token: Tokenizer::Word(piece_key), or nothing for EOS.
void AppendOutputText(std::uint64_t piece_key, bool eos, std::string& out);

struct OutputPlan {
  int length = 0;  // output tokens the request will produce
  FinishReason reason = FinishReason::kLength;
};

// How long request `id` runs. Requires 1 <= max_tokens and 0 <= min_tokens <= max_tokens.
// With ignore_eos or the `none` model: max_tokens, "length". Otherwise the natural length
// n from the model; the output ends at max(n, min_tokens) with "stop" when that is within
// max_tokens (EOS is checked before the length limit, as in vLLM), else at max_tokens with
// "length".
OutputPlan PlanOutput(const EosSpec& eos, std::uint64_t seed, RequestId id, int max_tokens,
                      int min_tokens, bool ignore_eos);

}  // namespace infergate::sim
