// Keep-alive connections to upstream servers, reused across requests.
//
// One pool per event loop: connections never move between loops, so the pool needs no
// locks and a connection's socket is always used on the loop that owns it. Idle
// connections are kept per endpoint (bounded count and age); one the server closed while
// it sat idle is detected with a non-blocking peek and discarded before it is handed out.
//
// Thread-safety: not thread-safe; use only on the owning loop.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/beast.h"

namespace infergate::http {

struct UpstreamConnection {
  explicit UpstreamConnection(asio::any_io_executor ex) : socket(ex) {}
  tcp::socket socket;
  beast::flat_buffer buffer;  // bytes read past the last response (normally empty)
  tcp::endpoint endpoint;
  TimeNs idle_since = 0;
  int requests = 0;  // requests sent on this connection so far
  // Scratch for relaying response bodies, made on first use and kept with the connection
  // (a buffer in each request's coroutine frame would make every frame a large
  // allocation).
  std::unique_ptr<char[]> relay_buffer;
};

struct UpstreamPoolOptions {
  int max_idle_per_endpoint = 128;
  TimeNs idle_timeout = 60 * kNanosPerSecond;
  TimeNs connect_timeout = 2 * kNanosPerSecond;
};

class UpstreamPool {
 public:
  UpstreamPool(asio::io_context& loop, UpstreamPoolOptions options = {});

  // An idle connection to `ep` if one is usable, else a new one. A new connection that
  // cannot be made within the connect timeout yields an error (refused, unreachable,
  // timed out) whose message names the endpoint.
  // With allow_idle=false a new connection is always made.
  asio::awaitable<Result<std::unique_ptr<UpstreamConnection>>> Acquire(const tcp::endpoint& ep,
                                                                       bool allow_idle = true);

  // An idle connection to `ep` that is still usable, or nullptr.
  std::unique_ptr<UpstreamConnection> TakeIdle(const tcp::endpoint& ep);

  // Returns a connection after a complete exchange. Pass reusable=false when the response
  // was not read to its end or the server asked to close; the connection is then closed.
  void Release(std::unique_ptr<UpstreamConnection> conn, bool reusable);

  // Idle connections currently kept (all endpoints).
  std::size_t idle_count() const;
  // Connections opened since the pool was made (for tests and metrics).
  std::uint64_t connects() const { return connects_; }
  // Closes every idle connection.
  void Clear();

 private:
  struct EndpointHash {
    std::size_t operator()(const tcp::endpoint& ep) const;
  };
  asio::io_context& loop_;
  UpstreamPoolOptions options_;
  CoarseSteadyClock clock_;
  std::unordered_map<tcp::endpoint, std::vector<std::unique_ptr<UpstreamConnection>>, EndpointHash>
      idle_;
  std::uint64_t connects_ = 0;
};

}  // namespace infergate::http
