#include "core/ascii.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace infergate {
namespace {

TEST(Ascii, IEqualsIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(IEquals("Content-Length", "content-length"));
  EXPECT_TRUE(IEquals("", ""));
  EXPECT_FALSE(IEquals("close", "closed"));
  EXPECT_FALSE(IEquals("keep-alive", "keep_alive"));
  // Only A-Z fold: '@' and '`' sit next to them and must not match each other or letters.
  EXPECT_FALSE(IEquals("@", "`"));
  EXPECT_FALSE(IEquals("[", "{"));
  EXPECT_FALSE(IEquals("\xc4", "\xe4")) << "bytes past ASCII are compared as they are";
  EXPECT_TRUE(IStartsWith("Text/Event-Stream; charset=utf-8", "text/event-stream"));
  EXPECT_FALSE(IStartsWith("text/event", "text/event-stream"));
}

// A string that ends at its allocation's end, differing from the other in case: the
// comparison reads nothing past either (the address sanitizer builds check this; Boost
// 1.81's beast::iequals read one byte beyond).
TEST(Ascii, IEqualsReadsOnlyWhatItCompares) {
  auto exact = std::make_unique<char[]>(7);
  std::string("Http://").copy(exact.get(), 7);
  const std::string_view target(exact.get(), 7);
  EXPECT_TRUE(IEquals(target, "http://"));
  EXPECT_TRUE(IStartsWith(target, "HTTP://"));
  EXPECT_FALSE(IStartsWith(target, "https://"));
}

}  // namespace
}  // namespace infergate
