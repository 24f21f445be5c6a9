// Reading HTTP messages into Beast's parsers, without Beast's composed read operations.
//
// bhttp::async_read_header / async_read_some wrap the socket read in two composed
// operations (read_op over read_some_op), each moving its handler with an executor work
// guard, and complete through a post even when the bytes were already buffered. On the
// proxy's hot path (a request head, a response head and one body read per request) that
// was ~3k of ~25k instructions per proxied request. ReadMessage parses what is buffered
// first, reads the socket directly when it may hold bytes, and otherwise queues one read
// for the next readiness event, which costs no syscall until the bytes are there (see
// read_readiness.h): one recv per read where the peer answers later, as nginx does.
//
#pragma once

#include <algorithm>
#include <string_view>
#include <tuple>

#include "http/beast.h"
#include "http/head_guard.h"
#include "http/read_readiness.h"

namespace infergate::http {

enum class ReadUntil : std::uint8_t {
  kHeader,    // the parser has the whole header (bhttp::async_read_header)
  kProgress,  // the parser consumed something (bhttp::async_read_some)
};

// `refuse_head` and `head_limit` (0: none) apply to the whole head, request line
// included, however many reads it took (HeadGuard, head_guard.h): a refused head ends the
// read with `bhttp::error::bad_value`, one over the limit with `bhttp::error::header_limit`.

template <class Parser>
asio::awaitable<boost::system::error_code> ReadMessage(tcp::socket& socket,
                                                       beast::flat_buffer& buffer, Parser& parser,
                                                       ReadUntil until,
                                                       HeadCheck refuse_head = nullptr,
                                                       std::size_t head_limit = 0) {
  boost::system::error_code ec;
  if (until == ReadUntil::kHeader && parser.is_header_done()) co_return ec;
  HeadGuard head(refuse_head, head_limit);
  for (;;) {
    if (buffer.size() > 0) {
      const bool had_header = parser.is_header_done();
      const std::size_t used = parser.put(buffer.data(), ec);
      if (!had_header) {
        const std::string_view taken(static_cast<const char*>(buffer.data().data()), used);
        if (auto refused = head.OnStep(taken, parser.is_header_done())) co_return refused;
      }
      buffer.consume(used);
      if (ec != bhttp::error::need_more) {
        if (ec || until == ReadUntil::kProgress || parser.is_header_done()) co_return ec;
        if (used > 0) continue;  // the rest of the buffer may complete the header
      }
      ec = {};
    }
    // The parser needs more bytes than are buffered: read (as much as Beast would).
    const std::size_t room = buffer.max_size() - buffer.size();
    if (room == 0) co_return bhttp::error::buffer_overflow;
    const std::size_t want =
        std::min<std::size_t>(std::max<std::size_t>(512, buffer.capacity() - buffer.size()),
                              std::min<std::size_t>(65536, room));
    std::size_t n = 0;
    bool waited = true;
    if (ReadMayBeReady(socket)) {
      n = socket.read_some(buffer.prepare(want), ec);
      waited = ec == asio::error::would_block || ec == asio::error::try_again;
      if (waited) MarkReadDrained(socket);
    }
    if (waited) {
      // Not speculative here (the flag is clear): the reactor performs this read on the
      // next event and completes it inline, so a short read still means drained.
      std::tie(ec, n) = co_await socket.async_read_some(buffer.prepare(want),
                                                        asio::as_tuple(asio::use_awaitable));
    }
    if (!ec && n > 0 && n < want) MarkReadDrained(socket);
    if (ec == asio::error::eof) {
      if (!parser.got_some()) co_return bhttp::error::end_of_stream;
      ec = {};
      parser.put_eof(ec);  // complete for a body that ends with the connection
      co_return ec;
    }
    if (ec) co_return ec;
    buffer.commit(n);
  }
}

}  // namespace infergate::http
