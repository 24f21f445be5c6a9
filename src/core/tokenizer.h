// The simulator's tokenizer ("ig-words"): deterministic, documented and prefix-stable.
//
// A real model's BPE tokenizer is not available here, and the simulator only needs one
// with the properties that matter to serving: a stable token count for a text, roughly
// four characters per token on English-like text, and prefix stability (the tokens of a
// text prefix are a prefix of the text's tokens, except possibly the last one), so that
// automatic prefix caching behaves as it does in vLLM.
//
// Rules, applied left to right over the bytes of the text:
//   1. a space followed by a word byte starts a token: the space and up to 4 word bytes;
//   2. otherwise a word byte starts a token of up to 4 word bytes;
//   3. any other byte (punctuation, a space not followed by a word byte, newline, tab)
//      is a token of its own.
// Word bytes are ASCII letters and digits and every byte >= 0x80 (so UTF-8 text is split
// into byte groups, as byte-level BPE does). A token's extent depends only on its own
// bytes and the one after it, which gives prefix stability.
//
// Token ids are the xxh3 hash of the token's bytes reduced to kVocabSize; equal pieces get
// equal ids everywhere (simulator, benchmark client, tests).
//
// Thread-safety: all functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace infergate {

using TokenId = std::uint32_t;

class Tokenizer {
 public:
  // Qwen2.5's vocabulary size; ids are in [0, kVocabSize).
  static constexpr std::uint32_t kVocabSize = 152064;
  // The largest number of word bytes in one token.
  static constexpr int kMaxWordBytes = 4;

  // Appends the token ids of `text` to `out`.
  static void Encode(std::string_view text, std::vector<TokenId>& out);
  static std::vector<TokenId> Encode(std::string_view text);
  // Number of tokens Encode would produce, without allocating.
  static std::size_t Count(std::string_view text);
  // Id of one piece of text taken as a single token (the piece is not re-split).
  static TokenId IdOf(std::string_view piece);

  // A one-token piece " xxxx" (a space and 1..4 lowercase letters) chosen by `h`;
  // concatenations of such pieces tokenize to exactly one token per piece. The benchmark
  // client builds prompts of exact lengths from these, and the simulator its output text.
  static std::string Word(std::uint64_t h);
  static void AppendWord(std::uint64_t h, std::string& out);
};

}  // namespace infergate
