#include "http/event_loops.h"

#include <spdlog/spdlog.h>

#include <boost/asio/detail/socket_option.hpp>

namespace infergate::http {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

EventLoops::EventLoops(int n) {
  for (int i = 0; i < n; ++i) {
    // One thread per loop and every socket operation on its own loop: the reactor's
    // per-descriptor locking can go. Posting from other threads stays safe (the
    // scheduler keeps its lock).
    loops_.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    guards_.push_back(asio::make_work_guard(*loops_.back()));
  }
}

EventLoops::~EventLoops() {
  Stop();
  Join();
}

Result<std::shared_ptr<Listener>> EventLoops::Listen(const std::string& address,
                                                     unsigned short port, SessionHandler handler) {
  std::vector<asio::io_context*> all;
  for (auto& l : loops_) all.push_back(l.get());
  return Bind(all, address, port, std::move(handler));
}

Result<std::shared_ptr<Listener>> EventLoops::ListenOn(int loop_index, const std::string& address,
                                                       unsigned short port,
                                                       SessionHandler handler) {
  if (loop_index < 0 || loop_index >= size())
    return Error{"no event loop " + std::to_string(loop_index)};
  return Bind({loops_[loop_index].get()}, address, port, std::move(handler));
}

Result<std::shared_ptr<Listener>> EventLoops::Bind(const std::vector<asio::io_context*>& loops,
                                                   const std::string& address, unsigned short port,
                                                   SessionHandler handler) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) return Error{"invalid listen address '" + address + "': " + ec.message()};
  auto listener = std::shared_ptr<Listener>(new Listener());
  listener->handler_ = std::move(handler);
  tcp::endpoint ep(addr, port);
  for (auto* loop : loops) {
    auto acc = std::make_unique<tcp::acceptor>(*loop);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc->set_option(ReusePort(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error{"cannot listen on " + address + ":" + std::to_string(ep.port()) + ": " +
                   ec.message()};
    }
    // With port 0 the first acceptor picks the port; the others join it.
    ep = acc->local_endpoint();
    listener->acceptors_.push_back({loop, std::move(acc)});
  }
  listener->endpoint_ = ep;
  listener->StartAccepting();
  return listener;
}

void Listener::StartAccepting() {
  for (auto& a : acceptors_) {
    asio::co_spawn(
        *a.loop,
        [self = shared_from_this(), acc = a.acceptor.get()]() -> asio::awaitable<void> {
          for (;;) {
            auto [ec, socket] = co_await acc->async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::operation_aborted || !acc->is_open()) co_return;
            if (ec) {
              // Out of descriptors or a connection reset before accept: keep serving.
              spdlog::warn("accept on {}: {}", self->endpoint_.port(), ec.message());
              asio::steady_timer t(acc->get_executor(), std::chrono::milliseconds(50));
              co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
              continue;
            }
            socket.set_option(tcp::no_delay(true), ec);
            asio::co_spawn(acc->get_executor(), self->handler_(std::move(socket)), asio::detached);
          }
        },
        asio::detached);
  }
}

void Listener::Stop() {
  for (auto& a : acceptors_) {
    asio::post(*a.loop, [acc = a.acceptor.get(), self = shared_from_this()] {
      boost::system::error_code ec;
      acc->close(ec);
    });
  }
}

void EventLoops::Run() {
  Start();
  Join();
}

void EventLoops::Start() {
  for (auto& loop : loops_) {
    threads_.emplace_back([l = loop.get()] { l->run(); });
  }
}

void EventLoops::Stop() {
  std::lock_guard lock(stop_mu_);
  for (auto& g : guards_) g.reset();
  for (auto& loop : loops_) loop->stop();
}

void EventLoops::Join() {
  for (auto& t : threads_) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
  threads_.clear();
}

}  // namespace infergate::http
