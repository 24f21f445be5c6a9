#include "sim/server/sim_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <functional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "http/beast.h"
#include "http/event_loops.h"
#include "http/wire.h"
#include "sim/engine/engine.h"
#include "sim/engine/output_model.h"
#include "sim/server/lateness_recorder.h"
#include "sim/server/openai_request.h"
#include "sim/server/openai_response.h"
#include "sim/server/sim_clock.h"

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::uint64_t kBodyLimit = 64ull * 1024 * 1024;
// Exchanges flushed per turn of the loop (see Replica::FlushDirty).
constexpr std::size_t kFlushSlice = 64;
// Finished requests /sim/requests remembers per replica.
constexpr std::size_t kRequestLog = 65536;
// Pipelined bytes a response's disconnect watch buffers before it stops watching.
constexpr std::size_t kWatchLimit = 64 * 1024;
constexpr auto kShutdownGrace = 3s;

TimeNs WallNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::time_point ToTimePoint(TimeNs wall) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(wall));
}

void AppendHex64(std::string& out, std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kDigits[(v >> shift) & 0xF];
}

// What every replica shares; immutable after start except the atomic counter.
struct Shared {
  SimServerOptions options;
  SimClock clock{0, 1.0};
  std::vector<std::string> served;  // served model names; served[0] labels metrics
  std::vector<ModelCard> cards;
  int max_model_len = 0;
  std::atomic<std::int64_t> streamed_requests{0};  // requests with output written
};

std::string StatusLine(int status) {
  std::string s = "HTTP/1.1 ";
  s += std::to_string(status);
  s += ' ';
  s += std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
  s += "\r\n";
  return s;
}

// A complete response with a sized body.
std::string SizedResponse(int status, std::string_view content_type, std::string_view body,
                          bool keep_alive) {
  std::string out = StatusLine(status);
  if (!content_type.empty()) {
    out += "content-type: ";
    out += content_type;
    out += "\r\n";
  }
  out += "content-length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  if (!keep_alive) out += "connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

constexpr std::string_view kJson = "application/json";

std::string ErrorResponse(int status, std::string_view message, bool keep_alive) {
  std::string body;
  AppendErrorJson(body, status, message);
  return SizedResponse(status, kJson, body, keep_alive);
}

class Replica;

// Per-connection state the replica can reach during shutdown.
struct SessionState {
  tcp::socket* socket = nullptr;
  bool in_exchange = false;  // a generation request owns the connection
};

// One generation request from admission to the end of its response. Lives in the session
// coroutine's frame; the coroutine waits (on `done`) until no operation refers to it.
class Exchange {
 public:
  Exchange(Replica& replica, tcp::socket& socket, beast::flat_buffer& buffer, RequestId id,
           ResponseFormat format, const GenerationRequest& req, int prompt_tokens, bool keep_alive,
           bool chunked, TimeNs arrival)
      : replica_(replica),
        socket_(socket),
        buffer_(buffer),
        id_(id),
        format_(std::move(format)),
        stream_(req.stream),
        include_usage_(req.include_usage),
        continuous_(req.continuous_usage),
        keep_alive_(keep_alive),
        chunked_(chunked),
        arrival_(arrival),
        prompt_tokens_(prompt_tokens),
        done_(socket.get_executor(), std::chrono::steady_clock::time_point::max()) {}

  RequestId id() const { return id_; }
  const FinishedEvent& finished_event() const { return finished_event_; }
  TimeNs first_write_late() const { return first_write_late_; }
  bool complete() const { return complete_; }
  bool client_gone() const { return client_gone_; }
  bool keep_alive() const { return keep_alive_ && !failed_; }
  asio::steady_timer& done() { return done_; }

  // Admitted: a stream's head goes out now; the disconnect watch starts.
  void Start();
  // Engine events (during AdvanceTo; output is flushed afterwards).
  void OnToken(const TokenEvent& t);
  void OnFinished(const FinishedEvent& f);
  // The server is shutting down: end the response with an error now.
  void EndWithShutdownError();
  // Writes whatever is pending, if no write is in flight.
  void Flush();
  // Wakes the session once nothing refers to this exchange any more.
  void MaybeComplete();

  bool dirty = false;  // queued for Flush after the current AdvanceTo

 private:
  void AppendToken(const TokenEvent& t, const char* finish_reason);
  // The bytes of out_ are all written.
  void AfterWrite();
  void Watch();
  void OnRead(const boost::system::error_code& ec, std::size_t n);
  void ClientGone();

  Replica& replica_;
  tcp::socket& socket_;
  beast::flat_buffer& buffer_;
  RequestId id_;
  ResponseFormat format_;
  bool stream_, include_usage_, continuous_, keep_alive_, chunked_;
  TimeNs arrival_;
  int prompt_tokens_;
  int tokens_ = 0;  // output tokens produced
  TimeNs last_token_time_ = -1;
  std::optional<TokenEvent> last_token_;  // held until OnFinished gives the reason

  int status_ = 200;           // non-streamed response status
  bool head_written_ = false;  // (stream) the head is in `out_` or on the wire
  std::string body_;           // stream: SSE events not yet written; else the response body
  std::string text_;           // non-stream: the output text so far
  std::string piece_;          // scratch for one token's text
  std::vector<TimeNs> due_;    // engine times of the tokens in body_
  std::string out_;            // bytes of the write in flight
  std::vector<TimeNs> out_due_;
  std::int64_t tokens_written_ = 0;
  TimeNs first_write_late_ = -1;  // wall ns: the first output write after its engine time
  FinishedEvent finished_event_;

  bool final_queued_ = false;  // the response's last bytes are in body_ (or out_)
  bool final_written_ = false;
  bool finished_ = false;  // the engine has finished the request
  bool client_gone_ = false;
  bool failed_ = false;  // the connection cannot be reused
  bool write_in_flight_ = false;
  bool read_in_flight_ = false;
  bool counted_ = false;  // counted towards --die-after
  bool complete_ = false;
  asio::steady_timer done_;
};

class Replica {
 public:
  Replica(int index, asio::io_context& loop, std::unique_ptr<Engine> engine, Shared& shared)
      : index_(index),
        loop_(loop),
        engine_(std::move(engine)),
        shared_(shared),
        timer_(loop),
        sink_(*this),
        requests_(shared.options.metrics_version, engine_->config().max_model_len) {
    page_info_.version = shared.options.metrics_version;
    page_info_.model_name = shared.served.front();
    page_info_.num_gpu_blocks_override = engine_->profile().engine.num_gpu_blocks;
  }

  int index() const { return index_; }
  asio::io_context& loop() { return loop_; }
  Shared& shared() { return shared_; }
  LatenessRecorder& lateness() { return lateness_; }
  const LatenessRecorder& lateness() const { return lateness_; }
  void set_listener(std::shared_ptr<http::Listener> l) { listener_ = std::move(l); }

  TimeNs SimNow() const { return shared_.clock.ToSim(WallNow()); }

  asio::awaitable<void> Session(tcp::socket socket);

  // Advances the engine to now, flushes the output of every request with new events, and
  // re-arms the timer for the engine's next event.
  void Pump();
  // Runs Pump soon (once for any number of calls before it runs).
  void Kick() {
    if (pump_posted_) return;
    pump_posted_ = true;
    asio::post(loop_, [this] {
      pump_posted_ = false;
      Pump();
    });
  }
  void MarkDirty(Exchange* ex) {
    if (ex->dirty) return;
    ex->dirty = true;
    dirty_.push_back(ex);
  }
  void Abort(RequestId id) {
    engine_->Abort(id, SimNow());
    Kick();
  }
  // A request wrote output for the first time (--die-after).
  void CountStreamed() {
    const std::int64_t n = ++shared_.streamed_requests;
    if (shared_.options.faults.die_after > 0 && n == shared_.options.faults.die_after) {
      static constexpr char kMsg[] = "infergate sim: --die-after reached; exiting abruptly\n";
      [[maybe_unused]] auto w = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
      ::_exit(1);
    }
  }
  void RecordLateness(const std::vector<TimeNs>& due) {
    if (due.empty()) return;
    const TimeNs now = WallNow();
    for (TimeNs t : due) lateness_.Record(now - shared_.clock.ToWall(t));
  }

  // Starts the shutdown; calls `drained` (on this loop) once every session has ended.
  void BeginShutdown(std::function<void()> drained);

 private:
  class Sink : public EventSink {
   public:
    explicit Sink(Replica& r) : r_(r) {}
    void OnToken(const TokenEvent& t) override {
      auto it = r_.live_.find(t.id);
      if (it != r_.live_.end()) it->second->OnToken(t);
    }
    void OnFinished(const FinishedEvent& f) override {
      r_.requests_.ObserveFinished(f);
      auto it = r_.live_.find(f.id);
      if (it == r_.live_.end()) return;
      Exchange* ex = it->second;
      r_.live_.erase(it);
      ex->OnFinished(f);
    }

   private:
    Replica& r_;
  };
  friend class Exchange;

  void Rearm();
  // Flushes up to kFlushSlice exchanges of dirty_ and posts the rest.
  void FlushDirty();
  asio::awaitable<bool> Handle(tcp::socket& socket, beast::flat_buffer& buffer,
                               bhttp::request<bhttp::string_body>& req, SessionState& state);
  asio::awaitable<bool> Generate(tcp::socket& socket, beast::flat_buffer& buffer,
                                 bhttp::request<bhttp::string_body>& req, ApiKind api,
                                 bool keep_alive, SessionState& state);
  asio::awaitable<bool> Metrics(tcp::socket& socket, beast::flat_buffer& buffer, bool keep_alive);
  std::string MetricsPage();
  std::string StatsJson();
  std::string RequestsJson();
  void LogRequest(const Exchange& ex);
  bool FailThisRequest();
  void SessionEnded();

  int index_;
  asio::io_context& loop_;
  std::unique_ptr<Engine> engine_;
  Shared& shared_;
  asio::steady_timer timer_;
  TimeNs armed_ = kNever;  // wall time the timer is armed for
  bool pump_posted_ = false;
  Sink sink_;
  RequestMetrics requests_;
  LoraInfoHistory lora_history_;
  MetricsPageInfo page_info_;
  LatenessRecorder lateness_;
  std::unordered_map<RequestId, Exchange*> live_;
  std::vector<Exchange*> dirty_;  // exchanges with output to flush, from dirty_head_ on
  std::size_t dirty_head_ = 0;
  bool flush_posted_ = false;
  struct LoggedRequest {
    FinishedEvent finished;
    TimeNs first_write_late = -1;  // wall ns from the engine's time to the first write
  };
  std::deque<LoggedRequest> finished_log_;
  RequestId next_id_ = 1;
  std::uint64_t generation_requests_ = 0;  // order of arrival, for --fail-rate
  std::unordered_set<SessionState*> sessions_;
  std::shared_ptr<http::Listener> listener_;
  bool shutting_down_ = false;
  std::function<void()> drained_;
};

// ---------------------------------------------------------------------------------------
// Exchange

void Exchange::Start() {
  if (stream_) {
    // The head goes out at admission, as vLLM's StreamingResponse does; tokens follow.
    std::string head = StatusLine(200);
    head += "content-type: text/event-stream; charset=utf-8\r\n";
    if (chunked_) head += "transfer-encoding: chunked\r\n";
    if (!keep_alive_ || !chunked_) head += "connection: close\r\n";
    head += "\r\n";
    body_.swap(head);  // Flush treats the first bytes as the head
    Flush();
  }
  Watch();
}

void Exchange::AppendToken(const TokenEvent& t, const char* finish_reason) {
  piece_.clear();
  AppendOutputText(t.piece_key, t.eos, piece_);
  if (!stream_) {
    text_ += piece_;
    return;
  }
  if (t.index == 0 && format_.api() == ApiKind::kChat) {
    // vLLM sends the role delta with the first output, not at admission.
    const Usage u{prompt_tokens_, 0};
    format_.AppendRoleChunk(body_, continuous_ ? &u : nullptr);
  }
  const Usage u{prompt_tokens_, t.index + 1};
  format_.AppendTokenChunk(body_, piece_, finish_reason, continuous_ ? &u : nullptr);
  due_.push_back(t.time);
}

void Exchange::OnToken(const TokenEvent& t) {
  if (t.index == 0) {
    replica_.requests_.ObserveFirstToken(ToSeconds(t.time - arrival_));
  } else if (last_token_time_ >= 0) {
    replica_.requests_.ObserveInterToken(ToSeconds(t.time - last_token_time_));
  }
  last_token_time_ = t.time;
  tokens_ = t.index + 1;
  if (client_gone_ || final_queued_) return;
  if (t.last) {
    last_token_ = t;  // its chunk carries the finish reason OnFinished brings
    return;
  }
  AppendToken(t, nullptr);
  replica_.MarkDirty(this);
}

void Exchange::OnFinished(const FinishedEvent& f) {
  finished_ = true;
  finished_event_ = f;
  if (client_gone_ || final_queued_ || f.reason == FinishReason::kAbort) {
    replica_.MarkDirty(this);
    return;
  }
  const char* reason = ToString(f.reason);
  if (last_token_) AppendToken(*last_token_, reason);
  if (stream_) {
    if (include_usage_) format_.AppendUsageChunk(body_, {prompt_tokens_, tokens_});
    body_ += kDoneEvent;
  } else {
    format_.AppendResponse(body_, text_, reason, {prompt_tokens_, tokens_});
    due_.push_back(f.timing.finished);
  }
  final_queued_ = true;
  replica_.MarkDirty(this);
}

void Exchange::EndWithShutdownError() {
  if (final_queued_ || client_gone_) return;
  static constexpr std::string_view kMessage = "The server is shutting down.";
  if (stream_) {
    AppendStreamErrorEvent(body_, 503, kMessage);
    body_ += kDoneEvent;
  } else {
    status_ = 503;
    body_.clear();
    AppendErrorJson(body_, 503, kMessage);
  }
  final_queued_ = true;
  failed_ = true;
  if (!finished_) replica_.Abort(id_);
  Flush();
}

void Exchange::Flush() {
  if (write_in_flight_ || client_gone_) return;
  out_.clear();
  if (stream_) {
    if (!head_written_) {
      // body_ holds just the head (Start put it there before any event).
      out_.swap(body_);
      head_written_ = true;
    } else if (!body_.empty()) {
      if (chunked_) http::AppendChunkHeader(out_, body_.size());
      out_ += body_;
      if (chunked_) out_ += http::kCrlf;
      body_.clear();
    }
    if (final_queued_ && !final_written_ && body_.empty()) {
      if (chunked_) out_ += http::kLastChunk;
      final_written_ = true;
    }
  } else if (final_queued_ && !final_written_) {
    const bool keep = keep_alive_ && !failed_;
    out_ = SizedResponse(status_, kJson, body_, keep);
    body_.clear();
    final_written_ = true;
  }
  if (out_.empty()) return;
  out_due_.swap(due_);
  due_.clear();
  if (first_write_late_ < 0 && !out_due_.empty()) {
    first_write_late_ =
        std::max<TimeNs>(0, WallNow() - replica_.shared().clock.ToWall(out_due_.front()));
  }
  replica_.RecordLateness(out_due_);
  tokens_written_ += static_cast<std::int64_t>(out_due_.size());
  // Almost always the socket takes the whole chunk at once: write it now, without the
  // cost of an asynchronous operation and its completion; only the rest, if any, waits.
  const ssize_t sent =
      ::send(socket_.native_handle(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    ClientGone();
    return;
  }
  const std::size_t n = sent < 0 ? 0 : static_cast<std::size_t>(sent);
  if (n == out_.size()) {
    AfterWrite();
    return;
  }
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(out_.data() + n, out_.size() - n),
                    [this](const boost::system::error_code& ec, std::size_t) {
                      write_in_flight_ = false;
                      if (ec) {
                        ClientGone();
                        return;
                      }
                      AfterWrite();
                    });
}

void Exchange::AfterWrite() {
  if (!counted_ && tokens_written_ > 0) {
    counted_ = true;
    replica_.CountStreamed();
  }
  // More may have come while a slow write was in flight.
  if (!body_.empty() || (final_queued_ && !final_written_)) {
    Flush();
    if (write_in_flight_) return;
  }
  MaybeComplete();
}

void Exchange::Watch() {
  if (buffer_.size() >= kWatchLimit) return;  // a client pipelining this much is not closing
  read_in_flight_ = true;
  socket_.async_read_some(buffer_.prepare(4096), [this](const boost::system::error_code& ec,
                                                        std::size_t n) { OnRead(ec, n); });
}

void Exchange::OnRead(const boost::system::error_code& ec, std::size_t n) {
  read_in_flight_ = false;
  if (!ec) {
    buffer_.commit(n);  // a pipelined request: kept for the session's next parse
    if (!(finished_ && final_written_)) {
      Watch();
      return;
    }
  } else if (ec != asio::error::operation_aborted) {
    ClientGone();
    return;
  }
  MaybeComplete();
}

void Exchange::ClientGone() {
  if (!client_gone_) {
    client_gone_ = true;
    failed_ = true;
    body_.clear();
    due_.clear();
    if (!finished_) replica_.Abort(id_);
  }
  MaybeComplete();
}

void Exchange::MaybeComplete() {
  if (complete_ || dirty || write_in_flight_ || !finished_) return;
  if (!client_gone_ && !(final_queued_ && final_written_)) return;
  if (read_in_flight_) {
    boost::system::error_code ignored;
    socket_.cancel(ignored);  // OnRead comes back here
    return;
  }
  complete_ = true;
  done_.cancel();
}

// ---------------------------------------------------------------------------------------
// Replica

void Replica::Pump() {
  engine_->AdvanceTo(SimNow(), sink_);
  FlushDirty();
  Rearm();
}

void Replica::FlushDirty() {
  // A step of a large batch produces thousands of chunks at once. They go out in slices,
  // letting the loop read new requests (and notice closed connections) in between, so
  // admission does not wait for the whole burst.
  const std::size_t end = std::min(dirty_.size(), dirty_head_ + kFlushSlice);
  for (; dirty_head_ < end; ++dirty_head_) {
    Exchange* ex = dirty_[dirty_head_];
    ex->dirty = false;  // an exchange completes only once it is off this list
    ex->Flush();
    ex->MaybeComplete();
  }
  if (dirty_head_ == dirty_.size()) {
    dirty_.clear();
    dirty_head_ = 0;
    return;
  }
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(loop_, [this] {
    flush_posted_ = false;
    FlushDirty();
  });
}

void Replica::Rearm() {
  const TimeNs next = engine_->NextEventTime();
  if (next == kNever) {
    if (armed_ != kNever) {
      armed_ = kNever;
      timer_.cancel();
    }
    return;
  }
  const TimeNs wall = shared_.clock.ToWall(next);
  if (wall == armed_) return;
  armed_ = wall;
  timer_.expires_at(ToTimePoint(wall));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed or cancelled
    armed_ = kNever;
    Pump();
  });
}

bool Replica::FailThisRequest() {
  const double rate = shared_.options.faults.fail_rate;
  const std::uint64_t k = generation_requests_++;
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  const std::uint64_t h =
      Mix64(Mix64(shared_.options.seed ^ 0x6661696CULL) ^
            Mix64(static_cast<std::uint64_t>(index_) + 1) ^ (k * 0x9E3779B97F4A7C15ULL));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < rate;
}

asio::awaitable<void> Replica::Session(tcp::socket socket) {
  boost::system::error_code ec;
  if (shared_.options.faults.refuse_connections) {
    socket.set_option(asio::socket_base::linger(true, 0), ec);  // close sends a reset
    socket.close(ec);
    co_return;
  }
  SessionState state;
  state.socket = &socket;
  sessions_.insert(&state);
  beast::flat_buffer buffer;
  try {
    while (!shutting_down_) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(kBodyLimit);
      std::tie(ec, std::ignore) = co_await bhttp::async_read_header(
          socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        auto expect = parser.get()[bhttp::field::expect];
        if (!expect.empty() && beast::iequals(expect, "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          std::tie(ec, std::ignore) = co_await asio::async_write(
              socket, asio::buffer(kContinue), asio::as_tuple(asio::use_awaitable));
        }
      }
      if (!ec && !parser.is_done()) {
        std::tie(ec, std::ignore) =
            co_await bhttp::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      }
      if (ec) {
        int status = 0;
        std::string detail;
        if (ec == bhttp::error::header_limit) {
          status = 431;
          detail = "request header fields too large";
        } else if (ec == bhttp::error::body_limit) {
          status = 413;
          detail = "request body larger than " + std::to_string(kBodyLimit) + " bytes";
        } else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                   ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
                   ec != asio::error::bad_descriptor) {
          status = 400;
          detail = "malformed HTTP request: " + ec.message();
        }
        if (status != 0 && !shutting_down_) {
          const std::string res =
              SizedResponse(status, kJson, "{\"detail\":\"" + detail + "\"}", false);
          co_await asio::async_write(socket, asio::buffer(res),
                                     asio::as_tuple(asio::use_awaitable));
        }
        break;
      }
      if (!co_await Handle(socket, buffer, parser.get(), state)) break;
    }
  } catch (const std::exception& e) {
    spdlog::error("sim replica {}: session: {}", index_, e.what());
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
  sessions_.erase(&state);
  SessionEnded();
}

void Replica::SessionEnded() {
  if (shutting_down_ && sessions_.empty() && drained_) {
    auto cb = std::move(drained_);
    drained_ = nullptr;
    cb();
  }
}

asio::awaitable<bool> Replica::Handle(tcp::socket& socket, beast::flat_buffer& buffer,
                                      bhttp::request<bhttp::string_body>& req,
                                      SessionState& state) {
  bool keep_alive = req.keep_alive() && !shutting_down_;
  std::string_view target = req.target();
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  const bool get = req.method() == bhttp::verb::get;
  const bool post = req.method() == bhttp::verb::post;

  std::string res;
  if (target == "/v1/completions" || target == "/v1/chat/completions") {
    if (post) {
      co_return co_await Generate(
          socket, buffer, req, target == "/v1/completions" ? ApiKind::kCompletions : ApiKind::kChat,
          keep_alive, state);
    }
    res = SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
  } else if (target == "/metrics") {
    if (get) co_return co_await Metrics(socket, buffer, keep_alive);
    res = SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
  } else if (target == "/health") {
    res = get ? SizedResponse(200, {}, {}, keep_alive)
              : SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
  } else if (target == "/v1/models") {
    if (get) {
      std::string body;
      AppendModelList(body, shared_.cards, static_cast<std::int64_t>(std::time(nullptr)));
      res = SizedResponse(200, kJson, body, keep_alive);
    } else {
      res = SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
    }
  } else if (target == "/sim/stats" && get) {
    res = SizedResponse(200, kJson, StatsJson(), keep_alive);
    // ?reset=1 starts a new measurement (e.g. after a warm-up).
    if (query == "reset=1") lateness_ = LatenessRecorder();
  } else if (target == "/sim/requests" && get) {
    res = SizedResponse(200, kJson, RequestsJson(), keep_alive);
  } else {
    res = SizedResponse(404, kJson, R"({"detail":"Not Found"})", keep_alive);
  }
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(res), asio::as_tuple(asio::use_awaitable));
  co_return !ec && keep_alive;
}

asio::awaitable<bool> Replica::Generate(tcp::socket& socket, beast::flat_buffer& buffer,
                                        bhttp::request<bhttp::string_body>& req, ApiKind api,
                                        bool keep_alive, SessionState& state) {
  const TimeNs arrival = SimNow();
  // HTTP/1.0 has no chunked encoding: a stream's end is the connection's.
  const bool chunked = req.version() >= 11;
  auto write = [&](const std::string& res) -> asio::awaitable<bool> {
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(res), asio::as_tuple(asio::use_awaitable));
    co_return !ec && keep_alive;
  };

  auto parsed = ParseGenerationRequest(api, req.body());
  if (!parsed) co_return co_await write(ErrorResponse(400, parsed.error().message, keep_alive));
  GenerationRequest& g = *parsed;
  if (g.stream && !chunked) keep_alive = false;
  if (shutting_down_) {
    co_return co_await write(ErrorResponse(503, "The server is shutting down.", false));
  }

  // The model: a served name (or none: the first) is the base model; a LoRA adapter's
  // name runs with that adapter.
  std::string model_name;
  EngineRequest er;
  if (!g.model) {
    model_name = shared_.served.front();
  } else if (std::find(shared_.served.begin(), shared_.served.end(), *g.model) !=
             shared_.served.end()) {
    model_name = *g.model;
  } else {
    const auto& loras = shared_.options.lora_modules;
    auto it = std::find_if(loras.begin(), loras.end(),
                           [&](const LoraModule& m) { return m.name == *g.model; });
    if (it == loras.end()) {
      co_return co_await write(
          ErrorResponse(404, "The model `" + *g.model + "` does not exist.", keep_alive));
    }
    model_name = it->name;
    er.lora = it->name;
  }

  if (FailThisRequest()) {
    co_return co_await write(ErrorResponse(500,
                                           "Simulated server failure (--fail-rate " +
                                               std::to_string(shared_.options.faults.fail_rate) +
                                               ")",
                                           keep_alive));
  }

  const RequestId id = next_id_++;
  er.id = id;
  er.prompt = std::move(g.prompt);
  er.max_tokens = g.max_tokens;
  er.min_tokens = g.min_tokens;
  er.ignore_eos = g.ignore_eos;
  er.priority = g.priority;
  const int prompt_tokens = static_cast<int>(er.prompt.size());
  auto admitted = engine_->Submit(std::move(er), arrival);
  if (!admitted) {
    co_return co_await write(ErrorResponse(400, admitted.error().message, keep_alive));
  }
  std::string rid = api == ApiKind::kChat ? "chatcmpl-" : "cmpl-";
  const std::uint64_t key = Mix64(shared_.options.seed ^ Mix64(static_cast<std::uint64_t>(index_)));
  AppendHex64(rid, Mix64(key ^ id));
  AppendHex64(rid, Mix64(key + id));
  Exchange ex(*this, socket, buffer, id,
              ResponseFormat(api, rid, static_cast<std::int64_t>(std::time(nullptr)), model_name),
              g, prompt_tokens, keep_alive, chunked, arrival);
  live_.emplace(id, &ex);
  state.in_exchange = true;
  ex.Start();
  Kick();
  while (!ex.complete()) {
    co_await ex.done().async_wait(asio::as_tuple(asio::use_awaitable));
  }
  state.in_exchange = false;
  LogRequest(ex);
  co_return ex.keep_alive() && !ex.client_gone() && !shutting_down_;
}

std::string Replica::MetricsPage() {
  Pump();  // the page shows the engine as of now
  const EngineStats stats = engine_->Stats();
  const double unix_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  lora_history_.Update(stats, unix_time);
  std::string page;
  page.reserve(16 * 1024);
  AppendVllmMetrics(page, page_info_, engine_->config(), stats, requests_, lora_history_);
  return page;
}

std::string Replica::StatsJson() {
  Pump();
  const EngineStats s = engine_->Stats();
  const TokenLateness l = lateness_.Summary();
  std::string out = "{\"replica\":" + std::to_string(index_);
  out += ",\"seed\":" + std::to_string(engine_->seed());
  out += ",\"wall_origin_ns\":" + std::to_string(shared_.clock.wall_origin());
  out += ",\"sim_time_s\":" + std::to_string(ToSeconds(engine_->now()));
  out += ",\"time_scale\":" + std::to_string(shared_.clock.scale());
  out += ",\"running\":" + std::to_string(s.num_running);
  out += ",\"waiting\":" + std::to_string(s.num_waiting);
  out += ",\"free_blocks\":" + std::to_string(s.num_free_blocks);
  out += ",\"gpu_blocks\":" + std::to_string(s.num_gpu_blocks);
  out += ",\"live_requests\":" + std::to_string(live_.size());
  out += ",\"token_lateness_us\":{\"tokens\":" + std::to_string(l.tokens);
  out += ",\"p50\":" + std::to_string(l.p50_us);
  out += ",\"p99\":" + std::to_string(l.p99_us);
  out += ",\"max\":" + std::to_string(l.max_us) + "}}";
  return out;
}

void Replica::LogRequest(const Exchange& ex) {
  if (finished_log_.size() == kRequestLog) finished_log_.pop_front();
  finished_log_.push_back({ex.finished_event(), ex.first_write_late()});
}

std::string Replica::RequestsJson() {
  Pump();
  std::string out = "{\"requests\":[";
  char buf[64];
  auto time = [&](TimeNs t) {
    if (t < 0) {
      out += "null";
    } else {
      std::snprintf(buf, sizeof buf, "%.9f", ToSeconds(t));
      out += buf;
    }
  };
  bool first = true;
  for (const LoggedRequest& logged : finished_log_) {
    const FinishedEvent& f = logged.finished;
    if (!first) out += ',';
    first = false;
    const RequestTiming& t = f.timing;
    out += "{\"id\":" + std::to_string(f.id);
    out += ",\"reason\":\"";
    out += ToString(f.reason);
    out += "\",\"arrival\":";
    time(t.arrival);
    out += ",\"first_scheduled\":";
    time(t.first_scheduled);
    out += ",\"first_token\":";
    time(t.first_token);
    out += ",\"finished\":";
    time(t.finished);
    out += ",\"prompt_tokens\":" + std::to_string(t.prompt_tokens);
    out += ",\"output_tokens\":" + std::to_string(t.output_tokens);
    out += ",\"cached_prompt_tokens\":" + std::to_string(t.cached_prompt_tokens);
    out += ",\"preemptions\":" + std::to_string(t.preemptions);
    out += ",\"first_write_late_us\":";
    if (logged.first_write_late < 0) {
      out += "null";
    } else {
      std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(logged.first_write_late) / 1e3);
      out += buf;
    }
    out += '}';
  }
  out += "]}";
  return out;
}

asio::awaitable<bool> Replica::Metrics(tcp::socket& socket, beast::flat_buffer& buffer,
                                       bool keep_alive) {
  const FaultOptions& f = shared_.options.faults;
  boost::system::error_code ec;
  if (f.metrics_delay_ms > 0) {
    asio::steady_timer delay(loop_, std::chrono::milliseconds(f.metrics_delay_ms));
    std::tie(ec) = co_await delay.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::string res;
  switch (f.metrics_mode) {
    case MetricsMode::kHang: {
      // Never answer; end when the client gives up (or the server shuts down).
      for (;;) {
        std::size_t n = 0;
        std::tie(ec, n) = co_await socket.async_read_some(buffer.prepare(4096),
                                                          asio::as_tuple(asio::use_awaitable));
        if (ec) co_return false;
        buffer.commit(n);
        if (buffer.size() > kWatchLimit) buffer.consume(buffer.size());
      }
    }
    case MetricsMode::kError:
      res = SizedResponse(500, "text/plain; charset=utf-8", "Internal Server Error", keep_alive);
      break;
    case MetricsMode::kGarbage:
      res = SizedResponse(200, "text/plain; version=0.0.4; charset=utf-8",
                          "<html><body>502 {{{ not\x01 a metrics page\x7f }}} </body>\n"
                          "requests running = many\n",
                          keep_alive);
      break;
    case MetricsMode::kOk:
      res =
          SizedResponse(200, "text/plain; version=0.0.4; charset=utf-8", MetricsPage(), keep_alive);
      break;
  }
  std::size_t n = 0;
  std::tie(ec, n) =
      co_await asio::async_write(socket, asio::buffer(res), asio::as_tuple(asio::use_awaitable));
  co_return !ec && keep_alive;
}

void Replica::BeginShutdown(std::function<void()> drained) {
  shutting_down_ = true;
  drained_ = std::move(drained);
  if (listener_) listener_->Stop();
  std::vector<Exchange*> live;
  for (auto& [id, ex] : live_) live.push_back(ex);
  for (Exchange* ex : live) ex->EndWithShutdownError();
  // Connections without a request in progress close now; the others once their response
  // has ended.
  for (SessionState* s : sessions_) {
    if (!s->in_exchange) {
      boost::system::error_code ec;
      s->socket->close(ec);
    }
  }
  SessionEnded();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// SimServer

struct SimServer::Impl {
  std::unique_ptr<Shared> shared;
  std::unique_ptr<http::EventLoops> loops;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  std::atomic<bool> shutdown_started{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<int> draining{0};
  std::unique_ptr<asio::steady_timer> grace;
  std::unique_ptr<asio::signal_set> signals;

  // Stops the loops once, whichever of the drain and the grace timer comes first.
  void StopLoops() {
    if (!stop_requested.exchange(true)) loops->Stop();
  }

  ~Impl() {
    if (loops) {
      loops->Stop();
      loops->Join();
    }
    // Replicas hold timers of the loops: they go first; the loops then destroy whatever
    // handlers and session frames are left (which no longer touch the replicas).
    signals.reset();
    grace.reset();
    replicas.clear();
    loops.reset();
  }
};

SimServer::SimServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimServer::~SimServer() = default;

Result<std::unique_ptr<SimServer>> SimServer::Create(const Profile& profile,
                                                     SimServerOptions options) {
  if (options.replicas < 1) return Error{"--replicas must be at least 1"};
  if (options.workers < 0) return Error{"--workers must be at least 1"};
  if (!(options.time_scale > 0) || !std::isfinite(options.time_scale)) {
    return Error{"--time-scale must be a positive number"};
  }
  const FaultOptions& f = options.faults;
  if (!(f.fail_rate >= 0 && f.fail_rate <= 1)) return Error{"--fail-rate must be in [0, 1]"};
  if (f.die_after < 0) return Error{"--die-after must be at least 0"};
  if (f.metrics_delay_ms < 0 || f.metrics_delay_ms > 3'600'000) {
    return Error{"--metrics-delay-ms must be in [0, 3600000]"};
  }
  if (options.model.empty()) options.model = profile.model.name;
  if (options.served_model_names.empty()) options.served_model_names = {options.model};
  for (const auto& m : options.lora_modules) {
    if (m.name.empty()) return Error{"--lora-modules: an adapter needs a name"};
    if (std::find(options.served_model_names.begin(), options.served_model_names.end(), m.name) !=
        options.served_model_names.end()) {
      return Error{"--lora-modules: '" + m.name + "' is also a served model name"};
    }
  }
  if (!options.lora_modules.empty() && profile.engine.max_loras <= 0) {
    return Error{
        "--lora-modules needs LoRA slots: set --max-loras (profile field engine.max_loras)"};
  }

  // Replica addresses: host, host + 1, ...
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options.host, ec);
  if (ec) return Error{"--host: invalid address '" + options.host + "'"};
  std::vector<std::string> addresses;
  if (options.replicas == 1) {
    addresses.push_back(options.host);
  } else {
    if (!addr.is_v4() || addr.to_v4().to_uint() == 0) {
      return Error{"--replicas > 1 needs an IPv4 --host to count addresses from (e.g. 127.0.0.2)"};
    }
    const std::uint64_t first = addr.to_v4().to_uint();
    if (first + static_cast<std::uint64_t>(options.replicas) - 1 > 0xFFFFFFFFull) {
      return Error{"--replicas: the addresses run past 255.255.255.255"};
    }
    for (int i = 0; i < options.replicas; ++i) {
      addresses.push_back(
          asio::ip::address_v4(static_cast<std::uint32_t>(first + static_cast<std::uint64_t>(i)))
              .to_string());
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->addresses = std::move(addresses);
  impl->shared = std::make_unique<Shared>();
  Shared& shared = *impl->shared;
  shared.options = std::move(options);
  const SimServerOptions& o = shared.options;
  shared.served = o.served_model_names;

  int workers = o.workers;
  if (workers == 0) {
    workers = std::max(
        1, std::min<int>(o.replicas, static_cast<int>(std::thread::hardware_concurrency())));
  }
  impl->loops = std::make_unique<http::EventLoops>(workers);

  std::vector<std::unique_ptr<Engine>> engines;
  for (int i = 0; i < o.replicas; ++i) {
    auto engine = Engine::Create(profile, o.seed + static_cast<std::uint64_t>(i));
    if (!engine) return Error{engine.error().message};
    engines.push_back(std::move(*engine));
  }
  shared.max_model_len = engines.front()->config().max_model_len;
  // /v1/models: every served name, then every adapter.
  std::uint64_t perm = Mix64(o.seed ^ 0x7065726DULL);
  auto perm_id = [&perm] {
    std::string s = "modelperm-";
    AppendHex64(s, perm = Mix64(perm));
    AppendHex64(s, perm = Mix64(perm));
    return s;
  };
  for (const auto& name : shared.served) {
    shared.cards.push_back({name, o.model, std::nullopt, shared.max_model_len, perm_id()});
  }
  for (const auto& m : o.lora_modules) {
    shared.cards.push_back(
        {m.name, m.path.empty() ? m.name : m.path, shared.served.front(), std::nullopt, perm_id()});
  }
  for (int i = 0; i < o.replicas; ++i) {
    impl->replicas.push_back(
        std::make_unique<Replica>(i, impl->loops->loop(i % workers),
                                  std::move(engines[static_cast<std::size_t>(i)]), shared));
  }
  return std::unique_ptr<SimServer>(new SimServer(std::move(impl)));
}

Result<std::vector<std::string>> SimServer::Listen() {
  Impl& impl = *impl_;
  std::vector<std::string> bound;
  const int workers = impl.loops->size();
  for (std::size_t i = 0; i < impl.replicas.size(); ++i) {
    Replica* r = impl.replicas[i].get();
    auto listener = impl.loops->ListenOn(static_cast<int>(i) % workers, impl.addresses[i],
                                         impl.shared->options.port,
                                         [r](tcp::socket s) { return r->Session(std::move(s)); });
    if (!listener) return Error{listener.error().message};
    const auto& ep = (*listener)->endpoint();
    r->set_listener(*listener);
    bound.push_back(ep.address().to_string() + ":" + std::to_string(ep.port()));
  }
  return bound;
}

void SimServer::HandleSignals() {
  Impl& impl = *impl_;
  if (impl.signals) return;
  impl.signals = std::make_unique<asio::signal_set>(impl.loops->loop(0), SIGINT, SIGTERM);
  impl.signals->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("infergate sim: signal {}: shutting down", sig);
    Shutdown();
  });
}

void SimServer::Run() {
  Impl& impl = *impl_;
  // Simulated time starts now: time 0 of every engine.
  impl.shared->clock = SimClock(WallNow(), impl.shared->options.time_scale);
  impl.loops->Run();
}

void SimServer::Shutdown() {
  Impl& impl = *impl_;
  if (impl.shutdown_started.exchange(true)) return;
  impl.draining = static_cast<int>(impl.replicas.size());
  asio::post(impl.loops->loop(0), [&impl] {
    impl.grace = std::make_unique<asio::steady_timer>(impl.loops->loop(0), kShutdownGrace);
    impl.grace->async_wait([&impl](const boost::system::error_code& ec) {
      if (!ec) impl.StopLoops();
    });
  });
  for (auto& r : impl.replicas) {
    asio::post(r->loop(), [&impl, rp = r.get()] {
      rp->BeginShutdown([&impl] {
        if (--impl.draining == 0) impl.StopLoops();
      });
    });
  }
}

TokenLateness SimServer::Lateness() const {
  LatenessRecorder all;
  for (const auto& r : impl_->replicas) all.Merge(r->lateness());
  return all.Summary();
}

}  // namespace infergate::sim
