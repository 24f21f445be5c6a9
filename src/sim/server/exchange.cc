#include "sim/server/exchange.h"

#include "http/wire.h"
#include "sim/server/replica.h"

namespace infergate::sim {

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
}  // namespace infergate::sim
