// Exchange: one generation request of a simulated replica, from admission to the end of
// its response (streamed as SSE chunks, or one sized body). It turns the engine's token
// events into bytes, writes them as soon as the step that produced them ends, and watches
// the client's socket so a client that leaves has its request aborted at once.
//
// Thread-safety: lives on its replica's event loop, in the session coroutine's frame.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "http/beast.h"
#include "sim/engine/engine.h"
#include "sim/server/openai_request.h"
#include "sim/server/openai_response.h"

namespace infergate::sim {

class Replica;

// Pipelined bytes a response's disconnect watch buffers before it stops watching.
inline constexpr std::size_t kWatchLimit = 64 * 1024;

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

}  // namespace infergate::sim
