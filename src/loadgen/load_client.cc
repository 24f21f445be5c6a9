#include "loadgen/load_client.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/ascii.h"
#include "core/clock.h"
#include "http/beast.h"
#include "loadgen/sse_stream.h"

namespace infergate::loadgen {
namespace {

using asio::awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kBodyBufferBytes = 16 * 1024;
constexpr std::size_t kReadBytes = 16 * 1024;

TimeNs Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::time_point ToTimePoint(TimeNs t) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t));
}

// One keep-alive connection with its read buffers, reused across requests.
struct Connection {
  explicit Connection(asio::any_io_executor ex) : socket(ex), body(new char[kBodyBufferBytes]) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
  std::unique_ptr<char[]> body;
  SseParser sse;
};

class LoadClient {
 public:
  LoadClient(const LoadOptions& options, std::span<const PreparedRequest> requests,
             std::span<const double> offsets)
      : options_(options),
        requests_(requests),
        offsets_(offsets),
        dispatch_timer_(ioc_),
        slot_timer_(ioc_),
        sweep_timer_(ioc_),
        progress_timer_(ioc_),
        outcomes_(requests.size()),
        deadlines_(requests.size(), kNever),
        sockets_(requests.size(), nullptr),
        timed_out_(requests.size(), false) {
    header_prefix_ = fmt::format(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n"
        "Accept: text/event-stream\r\nUser-Agent: infergate-bench\r\n",
        options.target.path, options.target.host_header);
    bool has_auth = false;
    for (const auto& [k, v] : options.headers) {
      header_prefix_ += fmt::format("{}: {}\r\n", k, v);
      if (IEquals(k, "authorization")) has_auth = true;
    }
    // benchmark_serving's OpenAI backends send the key from the environment.
    if (const char* key = std::getenv("OPENAI_API_KEY"); key != nullptr && !has_auth) {
      header_prefix_ += fmt::format("Authorization: Bearer {}\r\n", key);
    }
  }

  Result<LoadRun> Run() {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(options_.target.host, std::to_string(options_.target.port), ec);
    if (ec) {
      return Error{fmt::format("cannot resolve {}: {}", options_.target.host, ec.message())};
    }
    for (const auto& r : results) endpoints_.push_back(r.endpoint());
    if (endpoints_.empty()) return Error{fmt::format("{} has no address", options_.target.host)};

    start_ = Now();
    last_completion_ = start_;
    if (requests_.empty()) return LoadRun{};
    asio::co_spawn(ioc_, Dispatch(), asio::detached);
    if (options_.timeout_s > 0) asio::co_spawn(ioc_, Sweep(), asio::detached);
    if (options_.on_progress) asio::co_spawn(ioc_, Progress(), asio::detached);
    ioc_.run();
    if (options_.on_progress) options_.on_progress(Snapshot());

    LoadRun run;
    run.outcomes = std::move(outcomes_);
    run.duration_s = ToSeconds(last_completion_ - start_) * options_.time_scale;
    run.start_steady_ns = start_;
    return run;
  }

 private:
  LoadProgress Snapshot() const {
    return LoadProgress{done_, failed_, static_cast<int>(requests_.size()),
                        ToSeconds(Now() - start_)};
  }

  awaitable<void> Dispatch() {
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      const TimeNs due = start_ + FromSeconds(offsets_[i] / options_.time_scale);
      if (due > Now()) {
        dispatch_timer_.expires_at(ToTimePoint(due));
        co_await dispatch_timer_.async_wait(kTuple);
      }
      while (options_.max_concurrency && in_flight_ >= *options_.max_concurrency) {
        slot_timer_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await slot_timer_.async_wait(kTuple);
      }
      ++in_flight_;
      asio::co_spawn(ioc_, RunOne(i), asio::detached);
    }
  }

  // Closes the sockets of requests past their deadline; their reads then fail.
  awaitable<void> Sweep() {
    const auto period = std::chrono::milliseconds(std::clamp<long>(
        static_cast<long>(options_.timeout_s / options_.time_scale * 250), 1, 100));
    while (done_ < static_cast<int>(requests_.size())) {
      sweep_timer_.expires_after(period);
      co_await sweep_timer_.async_wait(kTuple);
      const TimeNs now = Now();
      for (std::size_t i = 0; i < deadlines_.size(); ++i) {
        if (deadlines_[i] <= now && sockets_[i] != nullptr && !timed_out_[i]) {
          timed_out_[i] = true;
          beast::error_code ignored;
          sockets_[i]->close(ignored);
        }
      }
    }
  }

  awaitable<void> Progress() {
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(std::max(options_.progress_interval_s, 0.01)));
    while (done_ < static_cast<int>(requests_.size())) {
      progress_timer_.expires_after(period);
      co_await progress_timer_.async_wait(kTuple);
      if (done_ < static_cast<int>(requests_.size())) options_.on_progress(Snapshot());
    }
  }

  void Finish(std::size_t i) {
    sockets_[i] = nullptr;
    deadlines_[i] = kNever;
    --in_flight_;
    ++done_;
    if (!outcomes_[i].success) ++failed_;
    last_completion_ = std::max(last_completion_, Now());
    slot_timer_.cancel();
    if (done_ == static_cast<int>(requests_.size())) {
      sweep_timer_.cancel();
      progress_timer_.cancel();
    }
  }

  // Connects `conn` for request i (whose deadline may close the socket meanwhile).
  awaitable<beast::error_code> Connect(Connection& conn, std::size_t i) {
    beast::error_code ec = asio::error::host_not_found;
    for (const tcp::endpoint& ep : endpoints_) {
      if (timed_out_[i]) break;
      beast::error_code ignored;
      conn.socket.close(ignored);
      auto [e] = co_await conn.socket.async_connect(ep, kTuple);
      ec = e;
      if (!ec) break;
    }
    if (!ec) conn.socket.set_option(tcp::no_delay(true), ec);
    if (!ec) conn.socket.non_blocking(true, ec);
    if (!ec) {
      // Kernel receive timestamps (see ReadSome); without them the read time is used.
      const int on = 1;
      ::setsockopt(conn.socket.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    }
    co_return ec;
  }

  awaitable<void> RunOne(std::size_t i) {
    RequestOutcome& out = outcomes_[i];
    const TimeNs st = Now();
    out.send_time = ToSeconds(st - start_) * options_.time_scale;
    out.prompt_len = requests_[i].prompt_len;
    if (options_.timeout_s > 0) {
      deadlines_[i] = st + FromSeconds(options_.timeout_s / options_.time_scale);
    }
    try {
      for (int attempt = 0; attempt < 2; ++attempt) {
        std::unique_ptr<Connection> conn;
        bool reused = false;
        if (!idle_.empty()) {
          conn = std::move(idle_.back());
          idle_.pop_back();
          reused = true;
        } else {
          conn = std::make_unique<Connection>(ioc_.get_executor());
          sockets_[i] = &conn->socket;
          const beast::error_code ec = co_await Connect(*conn, i);
          if (ec) {
            out.error = timed_out_[i] ? TimeoutMessage() : fmt::format("connect: {}", ec.message());
            break;
          }
        }
        sockets_[i] = &conn->socket;
        if (timed_out_[i]) {
          out.error = TimeoutMessage();
          break;
        }
        bool got_bytes = false;
        const bool keep = co_await Exchange(i, *conn, st, got_bytes);
        sockets_[i] = nullptr;
        if (keep) idle_.push_back(std::move(conn));
        if (!out.error.empty() && reused && !got_bytes && !timed_out_[i]) {
          out = RequestOutcome{};  // stale keep-alive connection: once more on a new one
          out.send_time = ToSeconds(st - start_) * options_.time_scale;
          out.prompt_len = requests_[i].prompt_len;
          continue;
        }
        break;
      }
    } catch (const std::exception& e) {
      out.success = false;
      out.error = fmt::format("client error: {}", e.what());
    }
    if (!out.error.empty()) out.success = false;
    Finish(i);
  }

  std::string TimeoutMessage() const {
    return fmt::format("timeout: no complete response within {} s", options_.timeout_s);
  }

  // Reads what the socket has (waiting for it if nothing), appending to conn.buffer.
  // Returns the bytes read and when they arrived: the kernel's receive timestamp
  // (SO_TIMESTAMPNS) mapped onto steady_clock, so a busy event loop does not delay the
  // times we record; the time of the read when the kernel gives none.
  struct ReadResult {
    std::size_t bytes = 0;
    TimeNs at = 0;
    beast::error_code ec;
  };
  awaitable<ReadResult> ReadSome(Connection& conn) {
    for (;;) {
      const auto space = conn.buffer.prepare(kReadBytes);
      iovec iov{space.data(), space.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(conn.socket.native_handle(), &msg, MSG_DONTWAIT);
      if (n > 0) {
        const TimeNs now = Now();
        TimeNs at = now;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts;
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            timespec real_now;
            ::clock_gettime(CLOCK_REALTIME, &real_now);
            const TimeNs age =
                (real_now.tv_sec - ts.tv_sec) * kNanosPerSecond + (real_now.tv_nsec - ts.tv_nsec);
            // A bound against a wall-clock step between the two readings.
            if (age >= 0 && age < 60 * kNanosPerSecond) at = now - age;
          }
        }
        conn.buffer.commit(static_cast<std::size_t>(n));
        co_return ReadResult{static_cast<std::size_t>(n), at, {}};
      }
      if (n == 0) co_return ReadResult{0, Now(), asio::error::eof};
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        co_return ReadResult{0, Now(), beast::error_code(errno, boost::system::system_category())};
      }
      auto [ec] = co_await conn.socket.async_wait(tcp::socket::wait_read, kTuple);
      if (ec) co_return ReadResult{0, Now(), ec};
    }
  }

  // Sends request i on `conn` and reads the response into outcomes_[i]. Returns whether
  // the connection may be reused.
  awaitable<bool> Exchange(std::size_t i, Connection& conn, TimeNs st, bool& got_bytes) {
    RequestOutcome& out = outcomes_[i];
    const PreparedRequest& req = requests_[i];
    std::string head = header_prefix_;
    fmt::format_to(std::back_inserter(head), "Content-Length: {}\r\n\r\n", req.body.size());
    // Write at once (a request fits the socket buffer in the common case), so the request
    // leaves right after its send time is taken; finish asynchronously only if the kernel
    // takes part of it.
    iovec iov[2] = {{head.data(), head.size()},
                    {const_cast<char*>(req.body.data()), req.body.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    const std::size_t total = head.size() + req.body.size();
    ssize_t sent = ::sendmsg(conn.socket.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) sent = 0;
    if (sent < 0) {
      out.error = fmt::format("send: {}", std::strerror(errno));
      co_return false;
    }
    if (static_cast<std::size_t>(sent) < total) {
      const std::size_t n = static_cast<std::size_t>(sent);
      std::array<asio::const_buffer, 2> rest = {
          n < head.size() ? asio::buffer(head.data() + n, head.size() - n) : asio::const_buffer(),
          n < head.size() ? asio::buffer(req.body)
                          : asio::buffer(req.body.data() + (n - head.size()),
                                         req.body.size() - (n - head.size()))};
      auto [wec, wn] = co_await asio::async_write(conn.socket, rest, kTuple);
      if (wec) {
        out.error = timed_out_[i] ? TimeoutMessage() : fmt::format("send: {}", wec.message());
        co_return false;
      }
    }
    out.request_written = ToSeconds(Now() - st) * options_.time_scale;

    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.eager(true);
    conn.buffer.clear();
    conn.sse.Reset();

    int status = 0;
    bool ok_status = false;
    std::string error_body;
    bool first = false;
    bool failed = false;
    TimeNs now = st;
    TimeNs last = st;
    int content_chunks = 0;
    std::int64_t completion_tokens = -1;
    char* buf = conn.body.get();
    auto on_event = [&](std::string_view data) {
      if (failed) return;
      decoder_.Decode(data, chunk_);
      switch (chunk_.kind) {
        case StreamChunk::Kind::kChoices:
          if (!first) {
            first = true;
            out.ttft = ToSeconds(now - st) * options_.time_scale;
          } else {
            out.itl.push_back(ToSeconds(now - last) * options_.time_scale);
          }
          last = now;
          ++content_chunks;
          if (options_.keep_text) out.generated_text.append(chunk_.text);
          break;
        case StreamChunk::Kind::kNoChoices:
        case StreamChunk::Kind::kDone:
          break;
        case StreamChunk::Kind::kError:
        case StreamChunk::Kind::kInvalid:
          failed = true;
          out.error = chunk_.error;
          break;
      }
      if (chunk_.completion_tokens >= 0) completion_tokens = chunk_.completion_tokens;
      if (chunk_.prompt_tokens >= 0) out.prompt_len = static_cast<int>(chunk_.prompt_tokens);
    };

    // Feed the parser what has been read; read more while it needs more.
    beast::error_code ec;
    while (!parser.is_done() && !failed) {
      while (conn.buffer.size() > 0 && !parser.is_done() && !failed) {
        parser.get().body().data = buf;
        parser.get().body().size = kBodyBufferBytes;
        const std::size_t used = parser.put(conn.buffer.data(), ec);
        conn.buffer.consume(used);
        const std::size_t got = kBodyBufferBytes - parser.get().body().size;
        if (parser.is_header_done() && status == 0) {
          status = parser.get().result_int();
          ok_status = status == 200;
        }
        if (got > 0) {
          if (ok_status) {
            conn.sse.Feed(std::string_view(buf, got), on_event);
          } else if (error_body.size() < 2048) {
            error_body.append(buf, std::min<std::size_t>(got, 2048 - error_body.size()));
          }
        }
        if (ec == bhttp::error::need_buffer) {
          ec = {};
          continue;
        }
        if (ec == bhttp::error::need_more) {
          ec = {};
          break;
        }
        if (ec || (used == 0 && got == 0)) break;
      }
      if (ec || parser.is_done() || failed) break;
      const ReadResult r = co_await ReadSome(conn);
      if (r.ec) {
        if (r.ec == asio::error::eof && parser.is_header_done()) {
          parser.put_eof(ec);  // a body delimited by the connection's end
          if (!ec && parser.is_done()) break;
        }
        ec = r.ec;
        break;
      }
      got_bytes = true;
      now = r.at;
    }

    if (ec || (!parser.is_header_done() && !failed)) {
      if (!ec) ec = asio::error::eof;
      out.error = timed_out_[i] ? TimeoutMessage() : fmt::format("read: {}", ec.message());
      co_return false;
    }
    if (!ok_status) {
      out.error = fmt::format("HTTP {} {}", status, std::string(parser.get().reason()));
      if (!error_body.empty()) out.error += ": " + error_body;
      co_return parser.is_done() && parser.keep_alive();
    }
    if (failed) co_return false;
    if (!first) {
      out.error = "Never received a valid chunk to calculate TTFT.";
      co_return parser.keep_alive();
    }
    out.success = true;
    out.latency = ToSeconds(last - st) * options_.time_scale;
    out.output_tokens =
        completion_tokens >= 0 ? static_cast<int>(completion_tokens) : content_chunks;
    co_return parser.keep_alive();
  }

  const LoadOptions& options_;
  std::span<const PreparedRequest> requests_;
  std::span<const double> offsets_;
  asio::io_context ioc_{1};
  asio::steady_timer dispatch_timer_, slot_timer_, sweep_timer_, progress_timer_;
  std::vector<tcp::endpoint> endpoints_;
  std::string header_prefix_;
  std::vector<RequestOutcome> outcomes_;
  std::vector<TimeNs> deadlines_;
  std::vector<tcp::socket*> sockets_;
  std::vector<bool> timed_out_;
  std::vector<std::unique_ptr<Connection>> idle_;
  StreamChunkDecoder decoder_;
  StreamChunk chunk_;
  TimeNs start_ = 0;
  TimeNs last_completion_ = 0;
  int in_flight_ = 0;
  int done_ = 0;
  int failed_ = 0;
};

}  // namespace

Result<LoadRun> RunLoad(const LoadOptions& options, std::span<const PreparedRequest> requests,
                        std::span<const double> send_offsets_s) {
  if (requests.size() != send_offsets_s.size()) {
    return Error{"RunLoad: requests and send offsets differ in length"};
  }
  if (!(options.time_scale > 0)) return Error{"--time-scale must be > 0"};
  LoadClient client(options, requests, send_offsets_s);
  return client.Run();
}

long RaiseOpenFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return static_cast<long>(lim.rlim_cur);
}

}  // namespace infergate::loadgen
