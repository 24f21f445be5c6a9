// Field lookups by scan agree with Beast's ordered lookups on the heads a proxy sees.
#include "http/headers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace infergate::http {
namespace {

bhttp::request<bhttp::empty_body> ParseRequest(const std::string& head) {
  bhttp::request_parser<bhttp::empty_body> parser;
  boost::system::error_code ec;
  parser.put(asio::buffer(head), ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << head;
  return parser.release();
}

TEST(HeadersTest, KeepAliveAgreesWithBeastOnEveryConnectionForm) {
  const std::vector<std::string> heads = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "GET / HTTP/1.1\r\nConnection: keep-alive, CLOSE\r\n\r\n",
      "GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: x-foo, keep-alive\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: close\r\n\r\n",
  };
  const std::vector<bool> expected = {true, false, false, true, false, true, true, false};
  for (std::size_t i = 0; i < heads.size(); ++i) {
    const auto req = ParseRequest(heads[i]);
    EXPECT_EQ(KeepAlive(req), expected[i]) << heads[i];
    EXPECT_EQ(KeepAlive(req), req.keep_alive()) << heads[i];
  }
}

TEST(HeadersTest, FindFieldReturnsTheFirstFieldByIdOrByNameInAnyCase) {
  const auto req = ParseRequest(
      "POST /v1/completions HTTP/1.1\r\nHost: pool.local\r\nX-Session-Id: s1\r\n"
      "x-session-id: s2\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(FindField(req, bhttp::field::host), "pool.local");
  EXPECT_EQ(FieldOr(req, bhttp::field::host), "pool.local");
  EXPECT_EQ(FindField(req, bhttp::field::expect), std::nullopt);
  EXPECT_EQ(FieldOr(req, bhttp::field::expect), "");
  EXPECT_EQ(FindField(req, std::string_view("X-SESSION-ID")), "s1");
  EXPECT_EQ(FindField(req, std::string_view("x-missing")), std::nullopt);
}

}  // namespace
}  // namespace infergate::http
