// ReadMessage over real loopback sockets: messages that arrive whole, in pieces, later,
// pipelined, or larger than one read all complete, and the socket is noted as drained
// exactly when its receive queue was empty (so the next wait costs no syscall).
#include "http/message_read.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "http/read_readiness.h"

namespace infergate::http {
namespace {

using namespace std::chrono_literals;

class MessageReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer_.connect(acceptor.local_endpoint());
    acceptor.accept(socket_);
    socket_.non_blocking(true);
    peer_.set_option(tcp::no_delay(true));
  }

  // Runs `body` as a coroutine on the loop; fails the test instead of hanging.
  template <class F>
  void Run(F body, std::chrono::milliseconds limit = 5s) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await body();
          done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io_.run_for(limit);
    io_.restart();
    ASSERT_TRUE(done) << "the read did not complete within " << limit.count() << " ms";
  }

  // Writes `bytes` from the peer after `delay`, from another thread.
  std::thread SendLater(std::string bytes, std::chrono::milliseconds delay) {
    return std::thread([this, bytes = std::move(bytes), delay] {
      std::this_thread::sleep_for(delay);
      asio::write(peer_, asio::buffer(bytes));
    });
  }

  asio::awaitable<boost::system::error_code> ReadRequest(
      bhttp::request_parser<bhttp::string_body>& parser) {
    co_return co_await ReadMessage(socket_, buffer_, parser, ReadUntil::kHeader);
  }

  asio::io_context io_;
  tcp::socket socket_{io_};
  tcp::socket peer_{io_};
  beast::flat_buffer buffer_;
};

constexpr std::string_view kGet = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

TEST_F(MessageReadTest, ReadsAHeadThatIsAlreadyThere) {
  asio::write(peer_, asio::buffer(kGet));
  bhttp::request_parser<bhttp::string_body> parser;
  boost::system::error_code ec;
  bool may_be_ready = true;
  Run([&]() -> asio::awaitable<void> {
    ec = co_await ReadRequest(parser);
    may_be_ready = ReadMayBeReady(socket_);
  });
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get().target(), "/a");
  if (INFERGATE_READ_READINESS) {
    EXPECT_FALSE(may_be_ready) << "a short read leaves the socket noted as drained";
  }
}

TEST_F(MessageReadTest, WaitsForBytesThatComeLaterInPieces) {
  bhttp::request_parser<bhttp::string_body> parser;
  boost::system::error_code ec;
  std::thread first = SendLater("GET /late HTTP/1.1\r\nHo", 30ms);
  std::thread second = SendLater("st: x\r\n\r\n", 80ms);
  Run([&]() -> asio::awaitable<void> { ec = co_await ReadRequest(parser); });
  first.join();
  second.join();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get().target(), "/late");
}

TEST_F(MessageReadTest, KeepAliveRequestsOneAfterAnotherNeverStall) {
  // Each request arrives after the previous one was read and the socket noted as drained:
  // the readiness event of the new bytes must wake the next read every time.
  for (int i = 0; i < 20; ++i) {
    bhttp::request_parser<bhttp::string_body> parser;
    boost::system::error_code ec;
    const std::string target = "/r" + std::to_string(i);
    std::thread sender = SendLater("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n",
                                   std::chrono::milliseconds(i % 3));
    Run([&]() -> asio::awaitable<void> { ec = co_await ReadRequest(parser); });
    sender.join();
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(parser.get().target(), target);
  }
}

TEST_F(MessageReadTest, PipelinedRequestsComeFromTheBuffer) {
  const std::string two = std::string(kGet).append("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  asio::write(peer_, asio::buffer(two));
  for (std::string_view want : {"/a", "/b"}) {
    bhttp::request_parser<bhttp::string_body> parser;
    boost::system::error_code ec;
    Run([&]() -> asio::awaitable<void> { ec = co_await ReadRequest(parser); });
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(parser.get().target(), want);
  }
}

TEST_F(MessageReadTest, ABodyLargerThanOneReadArrivesWhole) {
  // More than one read's worth (64 KiB) is buffered: a full read says nothing about
  // whether the socket is drained, so the next read must still look.
  const std::string body(300 * 1024, 'x');
  std::thread sender =
      SendLater("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body,
                0ms);
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(1 << 20);
  boost::system::error_code ec;
  Run([&]() -> asio::awaitable<void> {
    ec = co_await ReadRequest(parser);
    while (!ec && !parser.is_done()) {
      ec = co_await ReadMessage(socket_, buffer_, parser, ReadUntil::kProgress);
    }
  });
  sender.join();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get().body().size(), body.size());
}

TEST_F(MessageReadTest, APeerThatClosesEndsTheRead) {
  std::thread closer([this] {
    std::this_thread::sleep_for(30ms);
    peer_.shutdown(tcp::socket::shutdown_send);
  });
  bhttp::request_parser<bhttp::string_body> parser;
  boost::system::error_code ec;
  Run([&]() -> asio::awaitable<void> { ec = co_await ReadRequest(parser); });
  closer.join();
  EXPECT_EQ(ec, bhttp::error::end_of_stream);
}

// The whole head is bounded, request line included, even when the request line is read
// (and taken by the parser) before the fields arrive.
TEST_F(MessageReadTest, AHeadLimitBoundsTheWholeHead) {
  const std::string line = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\n";
  const std::string fields = "Host: x\r\nX-Pad: " + std::string(300, 'b') + "\r\n\r\n";
  asio::write(peer_, asio::buffer(line));
  std::thread rest = SendLater(fields, 50ms);
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(512);  // each part fits Beast's limit alone, the head (536) does not
  boost::system::error_code ec;
  Run([&]() -> asio::awaitable<void> {
    ec = co_await ReadMessage(socket_, buffer_, parser, ReadUntil::kHeader, nullptr, 512);
  });
  rest.join();
  EXPECT_EQ(ec, bhttp::error::header_limit);
}

TEST_F(MessageReadTest, ANewEventClearsTheDrainedNote) {
  if (!INFERGATE_READ_READINESS) GTEST_SKIP() << "no reactor flag with this Boost release";
  bhttp::request_parser<bhttp::string_body> parser;
  asio::write(peer_, asio::buffer(kGet));
  boost::system::error_code ec;
  bool may_be_ready = true;
  Run([&]() -> asio::awaitable<void> {
    ec = co_await ReadRequest(parser);
    may_be_ready = ReadMayBeReady(socket_);
  });
  ASSERT_FALSE(ec);
  ASSERT_FALSE(may_be_ready);
  // New bytes raise an edge; once the loop has polled it (with nothing waiting on this
  // socket), a read may be tried at once.
  asio::write(peer_, asio::buffer(kGet));
  auto work = asio::make_work_guard(io_);
  for (int i = 0; i < 100 && !ReadMayBeReady(socket_); ++i) io_.run_for(10ms);
  EXPECT_TRUE(ReadMayBeReady(socket_));
}

}  // namespace
}  // namespace infergate::http
