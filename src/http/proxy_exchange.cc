#include "http/proxy_exchange.h"

#include <array>
#include <optional>

#include "http/deadline_list.h"
#include "http/headers.h"
#include "http/message_read.h"
#include "http/openai_error.h"
#include "http/peek.h"

namespace infergate::http {
namespace {

constexpr std::size_t kUpstreamHeaderLimit = 64 * 1024;
constexpr std::size_t kRelayBufferBytes = 16 * 1024;

// Cancellation sources of one exchange: the request timeout and the client going away.
// Both only flip flags and cancel socket operations; the exchange coroutine sees the
// cancelled operation and decides what the client gets. The state lives in the
// coroutine's frame; the deadlines are entries of the loop's DeadlineList.
struct ExchangeState;

// Shared with the client-watch completion handler, which may run after the exchange.
struct ClientWatch {
  ExchangeState* state = nullptr;  // null once the exchange is over
};

struct ExchangeState {
  ExchangeState(tcp::socket& c, DeadlineList& d) : client(&c), deadlines(d) {}
  tcp::socket* client;
  DeadlineList& deadlines;
  tcp::socket* upstream = nullptr;
  bool timed_out = false;
  bool client_gone = false;
  std::shared_ptr<ClientWatch> watch;

  void CancelUpstream() {
    boost::system::error_code ec;
    if (upstream) upstream->cancel(ec);
  }
  void OnTimeout() {
    timed_out = true;
    CancelUpstream();
    boost::system::error_code ignored;
    client->cancel(ignored);  // unblocks a write to a client that stopped reading
  }
  // Requests that finish within a tick never pay for watching the client.
  void OnWatchDue() {
    watch = std::make_shared<ClientWatch>();
    watch->state = this;
    WatchClient(watch);
  }
  // Waits for the client socket to become readable without consuming anything: readable
  // with nothing to read means the client closed. Bytes of a pipelined next request are
  // left in the socket for the session's next parse, and watching stops.
  static void WatchClient(const std::shared_ptr<ClientWatch>& w) {
    w->state->client->async_wait(tcp::socket::wait_read, [w](const boost::system::error_code& ec) {
      if (ec || !w->state) return;
      const Peeked p = PeekSocket(*w->state->client);
      if (p == Peeked::kData) return;
      if (p == Peeked::kNothing) {
        WatchClient(w);
        return;
      }
      w->state->client_gone = true;
      w->state->CancelUpstream();
    });
  }
  DeadlineEntry<ExchangeState, &ExchangeState::OnTimeout> timeout_entry{this};
  DeadlineEntry<ExchangeState, &ExchangeState::OnWatchDue> watch_entry{this};

  void Finish() {
    deadlines.Remove(&timeout_entry);
    deadlines.Remove(&watch_entry);
    if (watch) {
      watch->state = nullptr;
      boost::system::error_code ignored;
      client->cancel(ignored);  // the pending watch
    }
  }
};

bool IsEventStream(const ResponseHead& h) {
  const std::string_view ct = FieldOr(h.fields, bhttp::field::content_type);
  return IStartsWith(ct, "text/event-stream");
}

// Writing a message completely: first with one non-blocking send (the common case on a
// socket with room: no completion to post, no coroutine frame, no trip through the event
// loop), and only what did not fit asynchronously. Requires the socket in non-blocking
// mode. Usage: `if (!WriteNow(s, b, sent, ec)) ec = co_await WriteRest(s, b, sent);`
template <class Buffers>
bool WriteNow(tcp::socket& socket, const Buffers& buffers, std::size_t& sent,
              boost::system::error_code& ec) {
  sent = socket.write_some(buffers, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    sent = 0;
    return false;
  }
  return ec || sent == asio::buffer_size(buffers);
}

// Writes what WriteNow left (`buffers` less its first `sent` bytes). `buffers` is taken by
// value: a coroutine keeps its reference parameters as references, and the caller's
// temporaries may be gone by the time it resumes.
template <class Buffers>
asio::awaitable<boost::system::error_code> WriteRest(tcp::socket& socket, Buffers buffers,
                                                     std::size_t sent) {
  beast::buffers_suffix<Buffers> rest(buffers);
  rest.consume(sent);
  auto [ec, n] = co_await asio::async_write(socket, rest, asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

// Sends (the response head if not sent yet, then) one piece of body in the client's
// framing, and the end of a chunked body when `last`:
//   if (!writer.SendNow(piece, last, ec)) ec = co_await writer.SendRest();
//   ec = writer.Sent(ec);
// The buffers live in the writer until the write completes (`piece` must too).
class ClientWriter {
 public:
  ClientWriter(tcp::socket& client, std::string head, BodyFraming framing)
      : client_(client), head_(std::move(head)), framing_(framing) {}

  // Writes what fits now; true when all of it went out or the write failed (`ec`).
  bool SendNow(std::string_view piece, bool last, boost::system::error_code& ec) {
    pending_ = Buffers(piece, last);
    return WriteNow(client_, pending_, sent_, ec);
  }
  // The rest of the last SendNow that returned false.
  asio::awaitable<boost::system::error_code> SendRest() {
    return WriteRest(client_, pending_, sent_);
  }
  // Records the outcome of the last send; returns its error.
  boost::system::error_code Sent(const boost::system::error_code& ec) {
    if (!ec) head_sent_ = true;
    return ec;
  }
  bool head_sent() const { return head_sent_; }

 private:
  std::span<const asio::const_buffer> Buffers(std::string_view piece, bool last) {
    std::size_t n = 0;
    if (!head_sent_) bufs_[n++] = asio::buffer(head_);
    chunk_header_.clear();
    if (!piece.empty()) {
      if (framing_ == BodyFraming::kChunked) {
        AppendChunkHeader(chunk_header_, piece.size());
        bufs_[n++] = asio::buffer(chunk_header_);
        bufs_[n++] = asio::buffer(piece);
        bufs_[n++] = asio::buffer(kCrlf);
      } else {
        bufs_[n++] = asio::buffer(piece);
      }
    }
    if (last && framing_ == BodyFraming::kChunked) bufs_[n++] = asio::buffer(kLastChunk);
    return {bufs_.data(), n};
  }

  tcp::socket& client_;
  std::string head_;
  std::string chunk_header_;
  std::array<asio::const_buffer, 5> bufs_;
  std::span<const asio::const_buffer> pending_;
  std::size_t sent_ = 0;
  BodyFraming framing_;
  bool head_sent_ = false;
};

// What waiting for an attempt's first bytes came to.
struct SilentWait {
  boost::system::error_code ec;               // the wait failed (cancelled, closed, ...)
  std::optional<UpstreamCandidate> redirect;  // on_stall named another upstream
};

// Waits until `upstream` has bytes to read, without reading them. Each time `timer`
// expires first (at `first_check`, then every `recheck`), on_stall may name another
// upstream, which ends the wait. `first_check` is absolute, on `clock`.
asio::awaitable<SilentWait> AwaitFirstBytes(tcp::socket& upstream, asio::steady_timer& timer,
                                            TimeNs first_check, TimeNs recheck,
                                            const SteadyClock& clock, const ExchangeHooks& hooks) {
  using namespace asio::experimental::awaitable_operators;
  TimeNs next = first_check;
  for (;;) {
    const TimeNs wait = next - clock.Now();
    if (wait > 0) {
      timer.expires_after(std::chrono::nanoseconds(wait));
      auto woke = co_await (
          upstream.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable)) ||
          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (woke.index() == 0) co_return SilentWait{std::get<0>(std::get<0>(woke)), std::nullopt};
      if (std::get<0>(std::get<1>(woke))) {
        // The timer was cancelled, which only happens with the exchange: stop waiting.
        co_return SilentWait{asio::error::operation_aborted, std::nullopt};
      }
    }
    // A wait_read that completed in the same turn as the timer is not lost: readiness is
    // polled again before asking.
    if (PeekSocket(upstream) != Peeked::kNothing) {
      co_return SilentWait{};  // bytes, or a close or error that the next read reports
    }
    if (std::optional<UpstreamCandidate> to = hooks.on_stall()) co_return SilentWait{{}, to};
    if (recheck <= 0) {
      auto [ec] =
          co_await upstream.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
      co_return SilentWait{ec, std::nullopt};
    }
    next = clock.Now() + recheck;
  }
}

}  // namespace

asio::awaitable<bool> WriteErrorResponse(
    tcp::socket& client, int status, std::string_view message, unsigned version, bool keep_alive,
    std::span<const std::pair<std::string, std::string>> extra_headers) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), version};
  res.set(bhttp::field::content_type, "application/json");
  for (const auto& [k, v] : extra_headers) res.set(k, v);
  res.body() = OpenAIErrorBody(status, message);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  auto [ec, n] = co_await bhttp::async_write(client, res, asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

asio::awaitable<ExchangeOutcome> ProxyExchange(tcp::socket& client, Request& req,
                                               std::span<const UpstreamCandidate> candidates,
                                               UpstreamPool& pool, DeadlineList& deadlines,
                                               const ExchangeOptions& options,
                                               const ExchangeHooks& hooks) {
  ExchangeOutcome out;
  SteadyClock clock;
  ExchangeState st(client, deadlines);
  const TimeNs start = deadlines.Now();
  if (options.timeout > 0) deadlines.Add(&st.timeout_entry, start + options.timeout);
  deadlines.Add(&st.watch_entry, start + 1);

  // The request as it goes upstream: a rewritten head and the body, in one write.
  std::string head;
  head.reserve(512);
  AppendUpstreamRequestHead(head, req.base(), req.body().size(), options.edits);
  const std::array<asio::const_buffer, 2> request_bytes{asio::buffer(head),
                                                        asio::buffer(req.body())};

  // Find a candidate that answers with a response header (and, while the attempt may still
  // be moved, with its first body byte).
  std::unique_ptr<UpstreamConnection> conn;
  std::optional<UpstreamResponseParser> parser;
  std::size_t idx = 0;
  bool fresh_retry = false;                   // the last attempt failed on a reused connection
  std::optional<UpstreamCandidate> moved_to;  // the upstream on_stall named, while tried
  bool may_move = options.stall_check > 0 && static_cast<bool>(hooks.on_stall);
  std::optional<asio::steady_timer> stall_timer;
  std::string last_error = candidates.empty() ? "no ready endpoint" : "";
  while ((moved_to || idx < candidates.size()) &&
         out.attempts < options.max_attempts + out.redirects && !st.client_gone && !st.timed_out) {
    const UpstreamCandidate& cand = moved_to ? *moved_to : candidates[idx];
    const int cand_index = moved_to ? -1 : static_cast<int>(idx);
    ++out.attempts;
    if (!moved_to && hooks.on_attempt) hooks.on_attempt(cand_index);
    const TimeNs attempt_start = may_move ? clock.Now() : 0;
    // Past the abandoned candidate when the upstream on_stall named fails too.
    auto next_candidate = [&] {
      fresh_retry = false;
      moved_to.reset();
      ++idx;
    };
    // A kept connection is taken without a coroutine; a new one is connected.
    // (No co_await inside a conditional expression: GCC 12 mishandles the temporaries.)
    std::unique_ptr<UpstreamConnection> idle;
    if (!fresh_retry) idle = pool.TakeIdle(cand.endpoint);
    Result<std::unique_ptr<UpstreamConnection>> acquired(std::move(idle));
    if (!acquired.value()) {
      acquired = co_await pool.Acquire(cand.endpoint, /*allow_idle=*/false);
    }
    if (!acquired.ok()) {
      ++out.connect_failures;
      last_error = acquired.error().message;
      if (hooks.on_attempt_failed) hooks.on_attempt_failed(cand_index, last_error, true);
      next_candidate();
      continue;
    }
    conn = std::move(*acquired);
    const bool reused = conn->requests > 0;
    ++conn->requests;
    st.upstream = &conn->socket;
    boost::system::error_code ec;
    std::size_t sent = 0;
    if (!WriteNow(conn->socket, request_bytes, sent, ec)) {
      ec = co_await WriteRest(conn->socket, request_bytes, sent);
    }
    // While the attempt may be moved: wait for its first bytes, then, if the head came
    // alone, for its first body byte.
    std::optional<UpstreamCandidate> move;
    if (may_move && !stall_timer) stall_timer.emplace(conn->socket.get_executor());
    auto await_silence = [&] {
      return AwaitFirstBytes(conn->socket, *stall_timer, attempt_start + options.stall_check,
                             options.stall_recheck, clock, hooks);
    };
    if (!ec && may_move && conn->buffer.size() == 0) {
      SilentWait w = co_await await_silence();
      ec = w.ec;
      move = std::move(w.redirect);
    }
    if (!ec && !move) {
      parser.emplace();
      parser->header_limit(kUpstreamHeaderLimit);
      parser->body_limit(boost::none);
      if (req.method() == bhttp::verb::head) parser->skip(true);
      ec = co_await ReadMessage(conn->socket, conn->buffer, *parser, ReadUntil::kHeader);
      if (!ec && may_move && !parser->is_done() && conn->buffer.size() == 0) {
        SilentWait w = co_await await_silence();
        ec = w.ec;
        move = std::move(w.redirect);
      }
    }
    if (move) {
      // Abandon this attempt: closing its connection aborts the request at the server.
      boost::system::error_code ignored;
      conn->socket.close(ignored);
      st.upstream = nullptr;
      conn.reset();
      parser.reset();
      ++out.redirects;
      may_move = false;
      fresh_retry = false;
      moved_to = std::move(move);
      continue;
    }
    if (!ec) {
      out.candidate = moved_to ? ExchangeOutcome::kRedirectTarget : cand_index;
      break;
    }
    st.upstream = nullptr;
    conn.reset();
    parser.reset();
    if (st.client_gone || st.timed_out) break;
    last_error = std::string(cand.id) + ": " + ec.message();
    if (hooks.on_attempt_failed) hooks.on_attempt_failed(cand_index, last_error, false);
    if (reused && !fresh_retry) {
      // The server may have closed a keep-alive connection just as it was reused; that
      // says nothing about the server, so try it again on a new connection.
      fresh_retry = true;
      --out.attempts;
      continue;
    }
    next_candidate();
  }

  if (out.candidate == -1) {
    st.Finish();
    if (st.client_gone) {
      out.client_gone = true;
      out.error = "client disconnected";
      co_return out;
    }
    out.timed_out = st.timed_out;
    out.status = st.timed_out ? 504 : candidates.empty() ? 503 : 502;
    out.gateway_error = true;
    out.error = st.timed_out ? "request timeout" : last_error;
    std::string message = st.timed_out         ? "upstream request timeout"
                          : candidates.empty() ? "no ready endpoint for this route"
                                               : "upstream unavailable: " + last_error;
    out.keep_client_alive = options.client_keep_alive;
    if (!co_await WriteErrorResponse(client, out.status, message, req.version(),
                                     options.client_keep_alive)) {
      out.keep_client_alive = false;
    }
    co_return out;
  }

  // Relay the response.
  const ResponseHead res = parser->head();
  const bool upstream_keep_alive = parser->keep_alive();
  bool client_keep = options.client_keep_alive;
  if (hooks.on_response_header) hooks.on_response_header(res);
  const bool event_stream = IsEventStream(res);
  const unsigned version = req.version() >= 11 ? 11 : 10;
  const int code = res.status;
  const bool bodyless =
      req.method() == bhttp::verb::head || code == 204 || code == 304 || code / 100 == 1;
  const auto content_length = parser->content_length();
  out.status = code;

  bool upstream_ok = true;
  std::string upstream_error;

  if (hooks.rewrite_body && !bodyless && content_length &&
      *content_length <= options.max_rewrite_body) {
    // A whole body of known length: read it, rewrite it, send it with its new length.
    std::string body;
    body.reserve(static_cast<std::size_t>(*content_length));
    parser->set_body_string(&body);
    boost::system::error_code ec;
    while (!ec && !parser->is_done()) {
      ec = co_await ReadMessage(conn->socket, conn->buffer, *parser, ReadUntil::kProgress);
    }
    // A client that left cancels the upstream read: that is the client's doing, not an
    // upstream failure, and nothing is to be written to it.
    if (st.client_gone) out.client_gone = true;
    if (ec) {
      upstream_ok = false;
      upstream_error = ec.message();
    } else {
      out.first_byte = clock.Now();
      out.body_bytes = body.size();
      if (hooks.on_body) hooks.on_body(body);
      std::string rewritten;
      hooks.rewrite_body(body, true, rewritten);
      std::string rhead;
      AppendClientResponseHead(rhead, res, version, BodyFraming::kContentLength, rewritten.size(),
                               client_keep, options.response_edits);
      ClientWriter writer(client, std::move(rhead), BodyFraming::kContentLength);
      if (!writer.SendNow(rewritten, true, ec)) ec = co_await writer.SendRest();
      ec = writer.Sent(ec);
      if (ec) {
        out.client_gone = !st.timed_out;
      } else {
        out.response_started = true;
        out.completed = true;
      }
    }
    st.upstream = nullptr;
    pool.Release(std::move(conn), upstream_ok && upstream_keep_alive);
    if (!upstream_ok && !out.client_gone) {
      out.status = st.timed_out ? 504 : 502;
      out.gateway_error = true;
      client_keep = false;
      co_await WriteErrorResponse(
          client, out.status,
          st.timed_out ? "upstream request timeout" : "upstream failed: " + upstream_error, version,
          false);
    }
  } else {
    BodyFraming framing;
    std::uint64_t length = 0;
    if (bodyless) {
      framing = content_length ? BodyFraming::kContentLength : BodyFraming::kNone;
      length = content_length.value_or(0);
    } else if (content_length && !hooks.rewrite_body) {
      framing = BodyFraming::kContentLength;
      length = *content_length;
    } else if (version >= 11) {
      // Chunked or close-delimited upstream bodies (and rewritten ones) go out chunked, so
      // the client connection survives.
      framing = BodyFraming::kChunked;
    } else {
      framing = BodyFraming::kUntilClose;
      client_keep = false;
    }
    std::string rhead;
    rhead.reserve(256);
    AppendClientResponseHead(rhead, res, version, framing, length, client_keep,
                             options.response_edits);
    ClientWriter writer(client, std::move(rhead), framing);
    if (!conn->relay_buffer) conn->relay_buffer.reset(new char[kRelayBufferBytes]);
    const std::span<char> buf(conn->relay_buffer.get(), kRelayBufferBytes);
    std::string rewritten;
    boost::system::error_code ec;
    // Send the head now unless body bytes are already buffered, in which case head and
    // the first body bytes leave in one write.
    if (!parser->is_done() && conn->buffer.size() == 0) {
      if (!writer.SendNow({}, false, ec)) ec = co_await writer.SendRest();
      ec = writer.Sent(ec);
      if (!ec) out.response_started = true;
    }
    while (!ec) {
      std::string_view piece;
      if (!parser->is_done()) {
        parser->set_body_buffer(buf.data(), buf.size());
        boost::system::error_code rec;
        rec = co_await ReadMessage(conn->socket, conn->buffer, *parser, ReadUntil::kProgress);
        if (rec == bhttp::error::need_buffer) rec = {};
        if (rec) {
          upstream_ok = false;
          upstream_error = rec.message();
          break;
        }
        const std::size_t got = buf.size() - parser->body_room();
        piece = std::string_view(buf.data(), got);
        if (got > 0) {
          if (out.first_byte == 0) out.first_byte = clock.Now();
          out.body_bytes += got;
          if (hooks.on_body) hooks.on_body(piece);
        }
        if (hooks.rewrite_body) {
          rewritten.clear();
          hooks.rewrite_body(piece, parser->is_done(), rewritten);
          piece = rewritten;
        }
        if (piece.empty() && !parser->is_done()) continue;  // only chunk framing was read
      }
      const bool last = parser->is_done();
      if (!writer.SendNow(piece, last, ec)) ec = co_await writer.SendRest();
      ec = writer.Sent(ec);
      if (ec) break;
      out.response_started = true;
      if (last) {
        out.completed = true;
        break;
      }
    }
    if (ec) out.client_gone = !st.timed_out;
    // A client that left cancels the upstream read (upstream_ok is then false): not an
    // upstream failure, and no error event is written to it.
    if (st.client_gone) out.client_gone = true;
    st.upstream = nullptr;
    pool.Release(std::move(conn), upstream_ok && parser->is_done() && upstream_keep_alive);

    if (!upstream_ok && !out.client_gone) {
      // The upstream failed (or was cut by the timeout) after its header arrived.
      const int error_code = st.timed_out ? 504 : 502;
      const std::string message =
          st.timed_out ? "upstream request timeout" : "upstream failed: " + upstream_error;
      client_keep = false;
      if (!writer.head_sent()) {
        out.status = error_code;
        out.gateway_error = true;
        co_await WriteErrorResponse(client, error_code, message, version, false);
      } else if (event_stream && framing == BodyFraming::kChunked) {
        // End the event stream properly with an error event the client can read.
        st.client_gone = false;
        const std::string event = OpenAIErrorEvent(error_code, message);
        boost::system::error_code wec;
        if (!writer.SendNow(event, true, wec)) wec = co_await writer.SendRest();
        writer.Sent(wec);
      }
    }
  }
  if (!upstream_ok) out.error = st.timed_out ? "request timeout" : upstream_error;
  if (out.client_gone) out.error = "client disconnected";
  out.timed_out = out.timed_out || st.timed_out;
  st.Finish();
  out.keep_client_alive = client_keep && out.completed && !out.client_gone && !out.timed_out;
  co_return out;
}

}  // namespace infergate::http
