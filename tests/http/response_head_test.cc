// UpstreamResponseParser keeps the head as flat fields and relays the body into the
// caller's buffer (need_buffer when full) or a string; AppendClientResponseHead writes the
// head on with hop-by-hop fields and upstream framing replaced.
#include "http/response_head.h"

#include <gtest/gtest.h>

#include <string>

#include "http/wire.h"

namespace infergate::http {
namespace {

// Feeds `wire` to the parser in one piece; returns the bytes consumed.
std::size_t Put(UpstreamResponseParser& p, std::string_view wire, boost::system::error_code& ec) {
  return p.put(asio::buffer(wire.data(), wire.size()), ec);
}

TEST(ResponseHeadTest, KeepsStatusReasonAndFieldsInOrder) {
  UpstreamResponseParser p;
  boost::system::error_code ec;
  const std::string wire =
      "HTTP/1.1 201 Created Here\r\nContent-Type: text/event-stream\r\nX-Thing: a b\r\n"
      "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n";
  std::string input = wire;
  Put(p, input, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(p.is_header_done());
  input.assign(input.size(), '#');  // the head must not point into the input any more
  const ResponseHead h = p.head();
  EXPECT_EQ(h.status, 201);
  EXPECT_EQ(h.reason, "Created Here");
  EXPECT_EQ(h.version, 11u);
  ASSERT_EQ(h.fields.size(), 5u);
  EXPECT_EQ(h.fields[0].name(), bhttp::field::content_type);
  EXPECT_EQ(h.fields[0].name_string(), "Content-Type");
  EXPECT_EQ(h.fields[0].value(), "text/event-stream");
  EXPECT_EQ(h.fields[1].name(), bhttp::field::unknown);
  EXPECT_EQ(h.fields[1].name_string(), "X-Thing");
  EXPECT_EQ(h.fields[1].value(), "a b");
  EXPECT_TRUE(p.keep_alive());
  EXPECT_TRUE(p.is_done());

  std::string out;
  AppendClientResponseHead(out, h, 11, BodyFraming::kChunked, 0, true);
  EXPECT_EQ(out,
            "HTTP/1.1 201 Created Here\r\nContent-Type: text/event-stream\r\nX-Thing: a b\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
  out.clear();
  AppendClientResponseHead(out, h, 10, BodyFraming::kContentLength, 7, true);
  EXPECT_EQ(out,
            "HTTP/1.0 201 Created Here\r\nContent-Type: text/event-stream\r\nX-Thing: a b\r\n"
            "Content-Length: 7\r\nConnection: keep-alive\r\n\r\n");
}

TEST(ResponseHeadTest, ChunkedBodyFillsTheBufferThenAsksForAnother) {
  UpstreamResponseParser p;
  boost::system::error_code ec;
  std::string wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a\r\n0123456789\r\n5\r\nabcde\r\n0\r\n\r\n";
  std::size_t used = Put(p, wire, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(p.is_header_done());
  std::string_view rest = std::string_view(wire).substr(used);

  // Without a buffer the parser stops; with a 4-byte one it fills it and stops again.
  std::string got;
  char buf[4];
  while (!p.is_done()) {
    p.set_body_buffer(buf, sizeof buf);
    ec = {};
    used = Put(p, rest, ec);
    ASSERT_TRUE(!ec || ec == bhttp::error::need_buffer) << ec.message();
    got.append(buf, sizeof buf - p.body_room());
    rest.remove_prefix(used);
    ASSERT_LE(got.size(), 15u);
  }
  EXPECT_EQ(got, "0123456789abcde");
  EXPECT_TRUE(rest.empty());
}

TEST(ResponseHeadTest, AWholeBodyGoesToAString) {
  UpstreamResponseParser p;
  boost::system::error_code ec;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
  std::size_t used = Put(p, head, ec);
  ASSERT_EQ(used, head.size());
  std::string body;
  p.set_body_string(&body);
  Put(p, "hello", ec);
  ASSERT_FALSE(ec);
  Put(p, " world", ec);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(body, "hello world");
}

TEST(ResponseHeadTest, AnEmptyReasonAndAnEmptyValueSurviveTheCopy) {
  UpstreamResponseParser p;
  boost::system::error_code ec;
  std::string wire = "HTTP/1.1 204 \r\nX-Empty:\r\nServer: up\r\n\r\n";
  Put(p, wire, ec);
  ASSERT_FALSE(ec) << ec.message();
  wire.assign(wire.size(), '#');  // the head must not point into the input any more
  const ResponseHead h = p.head();
  EXPECT_EQ(h.status, 204);
  EXPECT_EQ(h.reason, "");
  ASSERT_EQ(h.fields.size(), 2u);
  EXPECT_EQ(h.fields[0].name_string(), "X-Empty");
  EXPECT_EQ(h.fields[0].value(), "");
  EXPECT_EQ(h.fields[1].name_string(), "Server");
  EXPECT_EQ(h.fields[1].value(), "up");
}

TEST(ResponseHeadTest, BeastsFramingErrorsStayBeasts) {
  UpstreamResponseParser p;
  boost::system::error_code ec;
  Put(p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", ec);
  EXPECT_EQ(ec, bhttp::error::multiple_content_length);
}

}  // namespace
}  // namespace infergate::http
