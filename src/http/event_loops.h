// One Asio event loop per thread, and listeners that accept on every loop.
//
// Each loop is an io_context run by exactly one thread, so state confined to a loop
// (connection pools, sessions) needs no locks. A listener opens one acceptor per loop on
// the same address with SO_REUSEPORT, and the kernel spreads new connections across them.
//
// Thread-safety: Listen and Stop may be called from any thread; loop(i) returns a
// reference that stays valid for the object's lifetime. Loops run with locking of socket
// operations disabled: a socket must only be used on its own loop (post to reach it).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "http/beast.h"

namespace infergate::http {

// Handles one accepted connection; runs on the loop that accepted it.
using SessionHandler = std::function<asio::awaitable<void>(tcp::socket)>;

class Listener;

class EventLoops {
 public:
  // Requires n >= 1.
  explicit EventLoops(int n);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  int size() const { return static_cast<int>(loops_.size()); }
  asio::io_context& loop(int i) { return *loops_[i]; }

  // Binds address:port (port 0 picks a free port) on every loop and accepts connections,
  // calling `handler` for each on the accepting loop. The listener accepts until it is
  // stopped or destroyed. Returns a clear error if the address cannot be bound.
  Result<std::shared_ptr<Listener>> Listen(const std::string& address, unsigned short port,
                                           SessionHandler handler);
  // As Listen, but accepts only on loop `loop_index`, so every session of this listener
  // runs on that loop (for state confined to one loop, such as a simulated engine).
  Result<std::shared_ptr<Listener>> ListenOn(int loop_index, const std::string& address,
                                             unsigned short port, SessionHandler handler);

  // Runs every loop on its own thread and returns when all loops have stopped.
  void Run();
  // Starts the loops on background threads and returns at once (for tests and embedding).
  void Start();
  // Stops every loop; Run returns / the background threads end. Safe from any thread.
  void Stop();
  // Joins the background threads started by Start.
  void Join();

 private:
  Result<std::shared_ptr<Listener>> Bind(const std::vector<asio::io_context*>& loops,
                                         const std::string& address, unsigned short port,
                                         SessionHandler handler);

  std::vector<std::unique_ptr<asio::io_context>> loops_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;  // Stop may race with itself (a signal handler and a destructor)
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // The bound address (with the real port when 0 was asked for).
  const tcp::endpoint& endpoint() const { return endpoint_; }
  // Stops accepting (connections already accepted are unaffected). Safe from any thread.
  void Stop();

 private:
  friend class EventLoops;
  struct Acceptor {
    asio::io_context* loop;
    std::unique_ptr<tcp::acceptor> acceptor;
  };
  void StartAccepting();

  tcp::endpoint endpoint_;
  std::vector<Acceptor> acceptors_;
  SessionHandler handler_;
};

}  // namespace infergate::http
