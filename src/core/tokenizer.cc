#include "core/tokenizer.h"

#include <xxhash.h>

namespace infergate {
namespace {

constexpr bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Calls f(piece) for each token of `text`.
template <class F>
void ForEachPiece(std::string_view text, F&& f) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t start = i;
    if (p[i] == ' ' && i + 1 < n && IsWordByte(p[i + 1])) {
      ++i;  // the leading space belongs to the word that follows
    }
    if (IsWordByte(p[i])) {
      std::size_t end = i;
      while (end < n && end - i < Tokenizer::kMaxWordBytes && IsWordByte(p[end])) ++end;
      i = end;
    } else {
      ++i;
    }
    f(text.substr(start, i - start));
  }
}

}  // namespace

TokenId Tokenizer::IdOf(std::string_view piece) {
  return static_cast<TokenId>(XXH3_64bits(piece.data(), piece.size()) % kVocabSize);
}

void Tokenizer::Encode(std::string_view text, std::vector<TokenId>& out) {
  out.reserve(out.size() + text.size() / 3 + 1);
  ForEachPiece(text, [&](std::string_view piece) { out.push_back(IdOf(piece)); });
}

std::vector<TokenId> Tokenizer::Encode(std::string_view text) {
  std::vector<TokenId> out;
  Encode(text, out);
  return out;
}

std::size_t Tokenizer::Count(std::string_view text) {
  std::size_t n = 0;
  ForEachPiece(text, [&](std::string_view) { ++n; });
  return n;
}

void Tokenizer::AppendWord(std::uint64_t h, std::string& out) {
  // Mix so that consecutive h give unrelated words.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  const int len = 1 + static_cast<int>(h % kMaxWordBytes);
  h /= kMaxWordBytes;
  out.push_back(' ');
  for (int k = 0; k < len; ++k) {
    out.push_back(static_cast<char>('a' + h % 26));
    h /= 26;
  }
}

std::string Tokenizer::Word(std::uint64_t h) {
  std::string s;
  AppendWord(h, s);
  return s;
}

}  // namespace infergate
