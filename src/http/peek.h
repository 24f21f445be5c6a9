// What a socket has to read, asked without taking it: one non-blocking MSG_PEEK.
//
// For watching a peer while nothing is expected from it (a queued client, an idle
// upstream connection, an upstream that has not answered yet): pending bytes stay in the
// socket for whoever parses them next.
//
// Thread-safety: as the socket.
#pragma once

#include <sys/socket.h>

#include <cerrno>

#include "http/beast.h"

namespace infergate::http {

enum class Peeked : std::uint8_t {
  kData,     // bytes are waiting
  kNothing,  // open, nothing to read now
  kClosed,   // orderly close, reset or another error: the next read reports which
};

inline Peeked PeekSocket(asio::ip::tcp::socket& s) {
  char c;
  const ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return Peeked::kData;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return Peeked::kNothing;
  }
  return Peeked::kClosed;
}

}  // namespace infergate::http
