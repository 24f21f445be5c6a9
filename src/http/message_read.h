// Reading HTTP messages into Beast's parsers, without Beast's composed read operations.
//
// bhttp::async_read_header / async_read_some wrap the socket read in two composed
// operations (read_op over read_some_op), each moving its handler with an executor work
// guard, and complete through a post even when the bytes were already buffered. On the
// proxy's hot path (a request head, a response head and one body read per request) that
// was ~3k of ~25k instructions per proxied request. ReadMessage parses what is buffered
// first, reads the socket directly (it must be in non-blocking mode), and waits for
// readability only when there is nothing to read: the same syscalls, one completion.
//
// Errors are Beast's: bhttp::error::end_of_stream when the peer closed before any byte of
// the message, partial_message when it closed inside one, buffer_overflow when `buffer`
// reached its max_size, the parser's (header_limit, body_limit, bad_*, need_buffer when a
// buffer_body is full), and the socket's (operation_aborted when cancelled).
//
// Thread-safety: as the socket; use on the socket's own loop.
#pragma once

#include <algorithm>
#include <tuple>

#include "http/beast.h"

namespace infergate::http {

enum class ReadUntil : std::uint8_t {
  kHeader,    // the parser has the whole header (bhttp::async_read_header)
  kProgress,  // the parser consumed something (bhttp::async_read_some)
};

template <class Parser>
asio::awaitable<boost::system::error_code> ReadMessage(tcp::socket& socket,
                                                       beast::flat_buffer& buffer, Parser& parser,
                                                       ReadUntil until) {
  boost::system::error_code ec;
  if (until == ReadUntil::kHeader && parser.is_header_done()) co_return ec;
  for (;;) {
    if (buffer.size() > 0) {
      const std::size_t used = parser.put(buffer.data(), ec);
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
    std::size_t n = socket.read_some(buffer.prepare(want), ec);
    while (ec == asio::error::would_block || ec == asio::error::try_again) {
      std::tie(ec) =
          co_await socket.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return ec;
      n = socket.read_some(buffer.prepare(want), ec);
    }
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
