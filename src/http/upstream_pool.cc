#include "http/upstream_pool.h"

#include <functional>

#include "http/peek.h"

namespace infergate::http {

using namespace asio::experimental::awaitable_operators;

std::size_t UpstreamPool::EndpointHash::operator()(const tcp::endpoint& ep) const {
  std::size_t h = ep.port();
  if (ep.address().is_v4()) {
    h ^= std::hash<std::uint32_t>()(ep.address().to_v4().to_uint()) * 31;
  } else {
    auto b = ep.address().to_v6().to_bytes();
    for (auto c : b) h = h * 131 + c;
  }
  return h;
}

UpstreamPool::UpstreamPool(asio::io_context& loop, UpstreamPoolOptions options)
    : loop_(loop), options_(options) {}

namespace {
constexpr TimeNs kPeekAfterIdle = kNanosPerSecond;

// True when the peer has closed (or reset) an idle connection, or sent unexpected bytes.
bool IdleConnectionIsDead(tcp::socket& s) {
  return PeekSocket(s) != Peeked::kNothing;  // closed, reset, or stray bytes: unusable
}
}  // namespace

std::unique_ptr<UpstreamConnection> UpstreamPool::TakeIdle(const tcp::endpoint& ep) {
  auto it = idle_.find(ep);
  if (it == idle_.end()) return nullptr;
  const TimeNs now = clock_.Now();
  auto& list = it->second;
  while (!list.empty()) {
    auto conn = std::move(list.back());
    list.pop_back();
    const TimeNs idle = now - conn->idle_since;
    // A connection idle for a moment is almost surely alive, and a failure on a reused
    // connection is retried on a new one anyway: skip the peek's syscall for those.
    if (idle > options_.idle_timeout ||
        (idle > kPeekAfterIdle && IdleConnectionIsDead(conn->socket))) {
      continue;  // dropped: the unique_ptr closes the socket
    }
    return conn;
  }
  return nullptr;
}

asio::awaitable<Result<std::unique_ptr<UpstreamConnection>>> UpstreamPool::Acquire(
    const tcp::endpoint& ep, bool allow_idle) {
  if (allow_idle) {
    if (auto conn = TakeIdle(ep)) co_return std::move(conn);
  }
  auto conn = std::make_unique<UpstreamConnection>(loop_.get_executor());
  conn->endpoint = ep;
  ++connects_;
  asio::steady_timer timer(loop_, std::chrono::nanoseconds(options_.connect_timeout));
  auto result = co_await (conn->socket.async_connect(ep, asio::as_tuple(asio::use_awaitable)) ||
                          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  auto where = ep.address().to_string() + ":" + std::to_string(ep.port());
  if (result.index() == 1) co_return Error{"connect to " + where + " timed out"};
  auto [ec] = std::get<0>(result);
  if (ec) co_return Error{"connect to " + where + ": " + ec.message()};
  boost::system::error_code ignored;
  conn->socket.set_option(tcp::no_delay(true), ignored);
  conn->socket.non_blocking(true, ignored);  // writes try a direct send first
  co_return std::move(conn);
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConnection> conn, bool reusable) {
  if (!reusable || !conn->socket.is_open() || conn->buffer.size() != 0) return;
  auto& list = idle_[conn->endpoint];
  if (static_cast<int>(list.size()) >= options_.max_idle_per_endpoint) return;
  conn->idle_since = clock_.Now();
  list.push_back(std::move(conn));
}

std::size_t UpstreamPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [ep, list] : idle_) n += list.size();
  return n;
}

void UpstreamPool::Clear() { idle_.clear(); }

}  // namespace infergate::http
