#include "core/tokenizer.h"

#include <gtest/gtest.h>

#include <string>

namespace infergate {
namespace {

TEST(Tokenizer, SplitsWordsWithLeadingSpaceAndCapsWordLength) {
  // " hell", "o", " worl", "d", "!", "\n"
  EXPECT_EQ(Tokenizer::Count(" hello world!\n"), 6u);
  EXPECT_EQ(Tokenizer::Count(""), 0u);
  EXPECT_EQ(Tokenizer::Count("  a"), 2u);  // lone space, then " a"
  EXPECT_EQ(Tokenizer::Count("abcd"), 1u);
  EXPECT_EQ(Tokenizer::Count("abcde"), 2u);
}

TEST(Tokenizer, EqualPiecesGetEqualIds) {
  auto a = Tokenizer::Encode(" the cat the");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], a[2]);
  EXPECT_NE(a[0], a[1]);
  for (auto id : a) EXPECT_LT(id, Tokenizer::kVocabSize);
}

TEST(Tokenizer, PrefixStable) {
  std::string text = "System: you are a helpful assistant.\nUser: explain prefix caching, please";
  auto full = Tokenizer::Encode(text);
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    auto part = Tokenizer::Encode(std::string_view(text).substr(0, cut));
    ASSERT_LE(part.size(), full.size());
    // Every token but the last of the prefix equals the full text's token.
    for (std::size_t i = 0; i + 1 < part.size(); ++i) ASSERT_EQ(part[i], full[i]) << cut;
  }
}

TEST(Tokenizer, WordsAreOneTokenEachWhenConcatenated) {
  std::string s;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    std::string w = Tokenizer::Word(i);
    EXPECT_EQ(Tokenizer::Count(w), 1u) << w;
    s += w;
  }
  EXPECT_EQ(Tokenizer::Count(s), 1000u);
  EXPECT_EQ(Tokenizer::Word(7), Tokenizer::Word(7));
}

}  // namespace
}  // namespace infergate
