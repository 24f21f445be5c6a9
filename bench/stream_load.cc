// stream_load: many concurrent server-sent-event streams on one thread, and the delay each
// chunk takes from its server to its client.
//
//   stream_load upstream --listen HOST:PORT [--listen ...] --chunks N --interval-ms MS
//       A slow streaming model server: every POST is answered with an OpenAI completions
//       event stream of N chunks, one every MS milliseconds, each stamped with the wall
//       clock (CLOCK_REALTIME, ns) just before it is written. GET /metrics answers vLLM's
//       gauges (the open streams as running requests, a large idle KV cache), so it can
//       stand behind an InferencePool; GET /v1/models lists --model. Prints
//       "listening HOST:PORT" per listener; runs until SIGINT/SIGTERM.
//   stream_load client --target HOST:PORT --streams N [--ramp-s S] [--timeout-s T]
//       Opens N streaming requests (spread evenly over S seconds) and reads them all on
//       one thread. A chunk's delay is the kernel's receive timestamp of the read that
//       completed it (SO_TIMESTAMPNS, the same clock) minus the server's stamp, so a busy
//       client loop does not add to it. Prints one JSON object: streams completed and
//       failed (with the kinds of failure), chunks, the delay's percentiles in ms, and the
//       most streams open at once. Exits 1 when a stream failed.
//
// Run it once straight against the upstreams and once through the gateway: the difference
// of the two delay distributions is what the gateway adds per chunk (scripts/
// bench_streams.py does this). One process per role; each is single-threaded, so it does
// not compete with the gateway for more than one core.
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/beast.h"

namespace infergate::streamload {
namespace {

std::int64_t WallNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::chrono::nanoseconds Seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

void RaiseOpenFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

bool SplitHostPort(std::string_view s, std::string& host, unsigned short& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = std::string(s.substr(0, colon));
  const auto digits = s.substr(colon + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return ec == std::errc() && p == digits.data() + digits.size() && !host.empty();
}

// ------------------------------------------------------------------------ upstream

struct UpstreamOptions {
  std::vector<std::string> listen;
  int chunks = 20;
  int interval_ms = 1000;
  std::string model = "m";
};

struct UpstreamState {
  UpstreamOptions options;
  long open_streams = 0;
};

std::string MetricsPage(const UpstreamState& st) {
  // vLLM 0.7's names: the open streams run, nothing waits, a KV cache of 16M tokens.
  std::string m;
  m += "# TYPE vllm:num_requests_running gauge\n";
  m += "vllm:num_requests_running{model_name=\"" + st.options.model + "\"} " +
       std::to_string(st.open_streams) + "\n";
  m += "# TYPE vllm:num_requests_waiting gauge\n";
  m += "vllm:num_requests_waiting{model_name=\"" + st.options.model + "\"} 0\n";
  m += "# TYPE vllm:gpu_cache_usage_perc gauge\n";
  m += "vllm:gpu_cache_usage_perc{model_name=\"" + st.options.model + "\"} 0.01\n";
  m += "# TYPE vllm:cache_config_info gauge\n";
  m += "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1048576\"} 1\n";
  return m;
}

std::string Response(std::string_view status, std::string_view type, const std::string& body) {
  std::string r = "HTTP/1.1 ";
  r += status;
  r += "\r\nContent-Type: ";
  r += type;
  r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  r += body;
  return r;
}

void AppendChunk(std::string& out, std::string_view payload) {
  char size[20];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
  out.append(size, static_cast<std::size_t>(n));
  out += payload;
  out += "\r\n";
}

asio::awaitable<void> ServeConnection(tcp::socket socket, UpstreamState& st) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::string in;
  char buf[16384];
  asio::steady_timer timer(socket.get_executor());
  for (;;) {
    // One request: its head, then a Content-Length body (the gateway always sends one).
    std::size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      auto [rec, n] =
          co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (rec) co_return;
      in.append(buf, n);
      if (in.size() > (1 << 20)) co_return;
    }
    const std::string head = in.substr(0, head_end);
    std::size_t length = 0;
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (auto at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
      length = std::strtoul(lower.c_str() + at + 17, nullptr, 10);
    }
    while (in.size() < head_end + 4 + length) {
      auto [rec, n] =
          co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (rec) co_return;
      in.append(buf, n);
    }
    in.erase(0, head_end + 4 + length);
    const bool post = head.rfind("POST ", 0) == 0;
    std::string out;
    if (!post) {
      if (head.find(" /metrics") != std::string::npos) {
        out = Response("200 OK", "text/plain; version=0.0.4", MetricsPage(st));
      } else if (head.find(" /v1/models") != std::string::npos) {
        out = Response("200 OK", "application/json",
                       R"({"object":"list","data":[{"id":")" + st.options.model +
                           R"(","object":"model","owned_by":"stream_load"}]})");
      } else {
        out = Response("200 OK", "text/plain", "ok");
      }
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(out),
                                                  asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
      continue;
    }
    ++st.open_streams;
    out =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    auto [hec, hn] =
        co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
    out.clear();
    bool failed = static_cast<bool>(hec);
    const auto interval = std::chrono::milliseconds(st.options.interval_ms);
    auto next = std::chrono::steady_clock::now();
    for (int i = 0; i < st.options.chunks && !failed; ++i) {
      next += interval;
      timer.expires_at(next);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      const bool last = i + 1 == st.options.chunks;
      char payload[384];
      const int n = std::snprintf(
          payload, sizeof payload,
          "data: {\"id\":\"cmpl-s\",\"object\":\"text_completion\",\"created\":0,\"model\":\"%s\","
          "\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,\"finish_reason\":%s}],"
          "\"t_ns\":%lld}\n\n",
          st.options.model.c_str(), last ? "\"length\"" : "null", static_cast<long long>(WallNs()));
      AppendChunk(out, std::string_view(payload, static_cast<std::size_t>(n)));
      if (last) {
        AppendChunk(out, "data: [DONE]\n\n");
        out += "0\r\n\r\n";
      }
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(out),
                                                  asio::as_tuple(asio::use_awaitable));
      failed = static_cast<bool>(wec);
      out.clear();
    }
    --st.open_streams;
    if (failed) co_return;
  }
}

asio::awaitable<void> Accept(tcp::acceptor& acceptor, UpstreamState& st) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors: wait a little rather than spin.
      asio::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(20));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), ServeConnection(std::move(socket), st), asio::detached);
  }
}

int RunUpstream(const UpstreamOptions& options) {
  asio::io_context io(1);
  UpstreamState st{options};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  for (const auto& l : options.listen) {
    std::string host;
    unsigned short port = 0;
    if (!SplitHostPort(l, host, port)) {
      std::fprintf(stderr, "stream_load upstream: --listen %s: expected HOST:PORT\n", l.c_str());
      return 2;
    }
    boost::system::error_code ec;
    const tcp::endpoint ep(asio::ip::make_address(host, ec), port);
    if (ec) {
      std::fprintf(stderr, "stream_load upstream: bad address %s\n", host.c_str());
      return 2;
    }
    auto acc = std::make_unique<tcp::acceptor>(io);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::fprintf(stderr, "stream_load upstream: listen %s: %s\n", l.c_str(),
                   ec.message().c_str());
      return 1;
    }
    const auto bound = acc->local_endpoint();
    std::printf("listening %s:%u\n", bound.address().to_string().c_str(), bound.port());
    asio::co_spawn(io, Accept(*acc, st), asio::detached);
    acceptors.push_back(std::move(acc));
  }
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  io.run();
  return 0;
}

// ------------------------------------------------------------------------ client

struct ClientOptions {
  std::string target;
  int streams = 100;
  double ramp_s = 1;
  double timeout_s = 120;
  std::string path = "/v1/completions";
  std::string model = "m";
};

struct ClientTotals {
  int completed = 0;
  int failed = 0;
  int open = 0;
  int most_open = 0;
  std::uint64_t chunks = 0;
  std::map<std::string, int> failures;
  std::vector<std::int64_t> delays_ns;
};

// The response as it arrives: head, chunked framing, then event lines. Only what is
// needed to find each event's stamp and the end of the stream.
class StreamReader {
 public:
  // Feeds received bytes; `at_ns` is their receive time. Returns false on a protocol error
  // (error() says what).
  bool Feed(std::string_view bytes, std::int64_t at_ns, ClientTotals& totals) {
    while (!bytes.empty() && !done_) {
      if (state_ == State::kHead) {
        head_.append(bytes.data(), bytes.size());
        bytes = {};
        const auto end = head_.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (head_.size() > 65536) return Fail("response head too large");
          continue;
        }
        if (head_.size() < 12) return Fail("bad status line");
        if (head_.rfind("HTTP/1.1 200", 0) != 0) return Fail("status " + head_.substr(9, 3));
        std::string rest = head_.substr(end + 4);
        head_.resize(end);
        std::transform(head_.begin(), head_.end(), head_.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (head_.find("transfer-encoding: chunked") == std::string::npos) {
          return Fail("not chunked");
        }
        state_ = State::kSize;
        rest_ = std::move(rest);
        bytes = rest_;
        continue;
      }
      if (state_ == State::kSize) {
        const auto nl = bytes.find('\n');
        size_line_.append(bytes.data(), nl == std::string_view::npos ? bytes.size() : nl + 1);
        if (nl == std::string_view::npos) {
          bytes = {};
          continue;
        }
        bytes.remove_prefix(nl + 1);
        std::size_t size = 0;
        auto [p, ec] =
            std::from_chars(size_line_.data(), size_line_.data() + size_line_.size(), size, 16);
        if (ec != std::errc()) return Fail("bad chunk size");
        size_line_.clear();
        if (size == 0) {
          done_ = true;
          break;
        }
        remaining_ = size;
        state_ = State::kData;
        continue;
      }
      if (state_ == State::kData) {
        const std::size_t take = std::min(remaining_, bytes.size());
        if (!Lines(bytes.substr(0, take), at_ns, totals)) return false;
        bytes.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) {
          state_ = State::kCrlf;
          crlf_ = 2;
        }
        continue;
      }
      // kCrlf
      const std::size_t take = std::min<std::size_t>(crlf_, bytes.size());
      bytes.remove_prefix(take);
      crlf_ -= static_cast<int>(take);
      if (crlf_ == 0) state_ = State::kSize;
    }
    return true;
  }
  bool done() const { return done_; }
  bool saw_done_event() const { return saw_done_event_; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kHead, kSize, kData, kCrlf };
  bool Fail(std::string e) {
    error_ = std::move(e);
    return false;
  }
  bool Lines(std::string_view data, std::int64_t at_ns, ClientTotals& totals) {
    while (!data.empty()) {
      const auto nl = data.find('\n');
      line_.append(data.data(), nl == std::string_view::npos ? data.size() : nl);
      if (nl == std::string_view::npos) return true;
      data.remove_prefix(nl + 1);
      std::string_view line = line_;
      if (line.rfind("data: ", 0) == 0) {
        line.remove_prefix(6);
        if (line == "[DONE]") {
          saw_done_event_ = true;
        } else if (line.find("\"error\"") != std::string_view::npos) {
          line_.clear();
          return Fail("error event");
        } else if (auto at = line.find("\"t_ns\":"); at != std::string_view::npos) {
          std::int64_t stamp = 0;
          const char* b = line.data() + at + 7;
          std::from_chars(b, line.data() + line.size(), stamp);
          totals.delays_ns.push_back(at_ns - stamp);
          ++totals.chunks;
        }
      }
      line_.clear();
    }
    return true;
  }

  State state_ = State::kHead;
  std::string head_, rest_, size_line_, line_;
  std::size_t remaining_ = 0;
  int crlf_ = 0;
  bool done_ = false;
  bool saw_done_event_ = false;
  std::string error_;
};

// One read with its kernel receive time (the read's own time when none is given).
ssize_t ReadStamped(int fd, char* buf, std::size_t size, std::int64_t& at_ns) {
  iovec iov{buf, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  at_ns = 0;
  if (n > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        at_ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
      }
    }
    if (at_ns == 0) at_ns = WallNs();
  }
  return n;
}

asio::awaitable<void> OneStream(const ClientOptions& o, const tcp::endpoint& target, int index,
                                const std::string& request, ClientTotals& totals,
                                std::vector<char>& buffer) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  timer.expires_after(Seconds(o.ramp_s * index / std::max(1, o.streams)));
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  auto fail = [&](const std::string& kind) {
    ++totals.failed;
    ++totals.failures[kind];
  };
  tcp::socket socket(ex);
  auto [cec] = co_await socket.async_connect(target, asio::as_tuple(asio::use_awaitable));
  if (cec) {
    fail("connect: " + cec.message());
    co_return;
  }
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  const int on = 1;
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request),
                                              asio::as_tuple(asio::use_awaitable));
  if (wec) {
    fail("write: " + wec.message());
    co_return;
  }
  ++totals.open;
  totals.most_open = std::max(totals.most_open, totals.open);
  struct Close {
    ClientTotals& t;
    ~Close() { --t.open; }
  } close{totals};
  // The whole stream is bounded by the timeout: the timer closes the socket.
  bool timed_out = false;
  timer.expires_after(Seconds(o.timeout_s));
  timer.async_wait([&](const boost::system::error_code& e) {
    if (e) return;
    timed_out = true;
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  StreamReader reader;
  for (;;) {
    auto [rec] =
        co_await socket.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (rec || timed_out) {
      fail(timed_out ? "timeout" : "wait: " + rec.message());
      break;
    }
    std::int64_t at = 0;
    const ssize_t n = ReadStamped(socket.native_handle(), buffer.data(), buffer.size(), at);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) {
      fail(std::string("read: ") + std::strerror(errno));
      break;
    }
    if (n == 0) {
      fail("closed before the end");
      break;
    }
    if (!reader.Feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), at, totals)) {
      fail(reader.error());
      break;
    }
    if (reader.done()) {
      if (reader.saw_done_event()) {
        ++totals.completed;
      } else {
        fail("no [DONE]");
      }
      break;
    }
  }
  timer.cancel();
  co_await asio::post(ex, asio::use_awaitable);  // let the cancelled timer's handler run
}

double Percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1e6;
}

int RunClient(const ClientOptions& o) {
  std::string host;
  unsigned short port = 0;
  if (!SplitHostPort(o.target, host, port)) {
    std::fprintf(stderr, "stream_load client: --target: expected HOST:PORT\n");
    return 2;
  }
  boost::system::error_code ec;
  const tcp::endpoint target(asio::ip::make_address(host, ec), port);
  if (ec) {
    std::fprintf(stderr, "stream_load client: bad address %s\n", host.c_str());
    return 2;
  }
  const std::string body =
      R"({"model":")" + o.model + R"(","prompt":"stream load","max_tokens":1000,"stream":true})";
  const std::string request =
      "POST " + o.path + " HTTP/1.1\r\nHost: " + o.target +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  asio::io_context io(1);
  ClientTotals totals;
  totals.delays_ns.reserve(1 << 20);
  std::vector<char> buffer(64 * 1024);  // one thread: every read goes through it
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < o.streams; ++i) {
    asio::co_spawn(io, OneStream(o, target, i, request, totals, buffer), asio::detached);
  }
  io.run();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string kinds;
  for (const auto& [k, n] : totals.failures) {
    if (!kinds.empty()) kinds += ",";
    kinds += "\"" + k + "\":" + std::to_string(n);
  }
  auto& d = totals.delays_ns;
  const double p50 = Percentile(d, 0.5), p90 = Percentile(d, 0.9), p99 = Percentile(d, 0.99),
               p999 = Percentile(d, 0.999);
  const double max =
      d.empty() ? 0 : static_cast<double>(*std::max_element(d.begin(), d.end())) / 1e6;
  std::printf(
      "{\"streams\":%d,\"completed\":%d,\"failed\":%d,\"failures\":{%s},\"chunks\":%llu,"
      "\"most_open\":%d,\"elapsed_s\":%.2f,\"delay_ms\":{\"p50\":%.3f,\"p90\":%.3f,"
      "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}\n",
      o.streams, totals.completed, totals.failed, kinds.c_str(),
      static_cast<unsigned long long>(totals.chunks), totals.most_open, elapsed, p50, p90, p99,
      p999, max);
  return totals.failed == 0 && totals.completed == o.streams ? 0 : 1;
}

int Usage() {
  std::fprintf(stderr,
               "usage: stream_load upstream --listen HOST:PORT [--listen ...] [--chunks N] "
               "[--interval-ms MS] [--model NAME]\n"
               "       stream_load client --target HOST:PORT [--streams N] [--ramp-s S] "
               "[--timeout-s T] [--path P] [--model NAME]\n");
  return 2;
}

}  // namespace
}  // namespace infergate::streamload

int main(int argc, char** argv) {
  using namespace infergate::streamload;
  if (argc < 2) return Usage();
  RaiseOpenFileLimit();
  const std::string role = argv[1];
  std::map<std::string, std::vector<std::string>> flags;
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) return Usage();
    flags[k.substr(2)].push_back(argv[++i]);
  }
  auto one = [&](const std::string& k) -> std::optional<std::string> {
    auto it = flags.find(k);
    if (it == flags.end()) return std::nullopt;
    return it->second.back();
  };
  try {
    if (role == "upstream") {
      UpstreamOptions o;
      if (flags.count("listen")) o.listen = flags["listen"];
      if (auto v = one("chunks")) o.chunks = std::stoi(*v);
      if (auto v = one("interval-ms")) o.interval_ms = std::stoi(*v);
      if (auto v = one("model")) o.model = *v;
      if (o.listen.empty() || o.chunks < 1 || o.interval_ms < 0) return Usage();
      return RunUpstream(o);
    }
    if (role == "client") {
      ClientOptions o;
      if (auto v = one("target")) o.target = *v;
      if (auto v = one("streams")) o.streams = std::stoi(*v);
      if (auto v = one("ramp-s")) o.ramp_s = std::stod(*v);
      if (auto v = one("timeout-s")) o.timeout_s = std::stod(*v);
      if (auto v = one("path")) o.path = *v;
      if (auto v = one("model")) o.model = *v;
      if (o.target.empty() || o.streams < 1) return Usage();
      return RunClient(o);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stream_load: %s\n", e.what());
    return 2;
  }
  return Usage();
}
