// ScriptedSseServer: a loopback HTTP server that answers /v1/completions and
// /v1/chat/completions with vLLM-shaped SSE streams at controlled times, for testing the
// benchmark client's measurements against known timings.
//
// For each request a StreamScript (chosen by a callback from what the request asked for)
// fixes the status, when the first chunk goes out (after the request has been read), the
// interval between later chunks, how many tokens are streamed, whether a usage chunk and
// [DONE] follow, an error event mid-stream, \r\n line endings and splitting every event
// into small writes so the client must reassemble events across TCP reads. Completions
// chunks carry one Tokenizer::Word per chunk; chat streams start with vLLM's role chunk
// (delta {"role":"assistant","content":""}) sent together with the first token. The usage
// chunk reports prompt_tokens = Tokenizer::Count of the prompt (chat: of all message
// contents) and completion_tokens = tokens streamed. Responses use chunked transfer
// encoding like uvicorn, or (chunked = false) a body delimited by closing the connection.
//
// The server runs on its own thread and io_context; Records() may be read from any
// thread. Times are steady_clock nanoseconds, the same clock the client uses.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"

namespace infergate::testing {

struct StreamScript {
  int status = 200;                 // non-200: a JSON error body, no stream
  double first_chunk_delay_s = 0;   // request fully read → first chunk
  double chunk_interval_s = 0.005;  // between later chunks
  int tokens = -1;                  // content chunks; -1 = the request's max tokens
  bool usage = true;                // send the final usage chunk
  bool done = true;                 // send data: [DONE]
  int error_after_tokens = -1;      // >= 0: send an error event after this many tokens
  bool crlf = false;                // \r\n line endings
  int split_bytes = 0;              // > 0: write each event in pieces of this many bytes
  bool keep_alive = true;
  bool never_respond = false;  // read the request and hang (timeout tests)
  bool chunked = true;         // false: no Transfer-Encoding; the body ends at close
};

struct ReceivedRequest {
  std::string target;                          // path
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string model;
  int max_tokens = 0;
  bool ignore_eos = false;
  bool stream = false;
  bool include_usage = false;
  int prompt_tokens = 0;
  TimeNs arrived_ns = 0;      // request fully read
  TimeNs first_chunk_ns = 0;  // first chunk handed to the socket
  // For every choices chunk: just before it was handed to the socket, and once the write
  // had completed; the chunk reached the client's kernel in between.
  std::vector<TimeNs> chunk_ns;
  std::vector<TimeNs> chunk_written_ns;
  int connection = 0;  // index of the TCP connection it came on
};

class ScriptedSseServer {
 public:
  using ScriptFn = std::function<StreamScript(const ReceivedRequest&)>;

  // Binds 127.0.0.1:0 and starts serving on a new thread.
  explicit ScriptedSseServer(ScriptFn script);
  ~ScriptedSseServer();  // stops the thread; open streams are dropped
  ScriptedSseServer(const ScriptedSseServer&) = delete;
  ScriptedSseServer& operator=(const ScriptedSseServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::vector<ReceivedRequest> Records() const;
  int connections() const { return connections_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<ReceivedRequest> records_;
  ScriptFn script_;
  std::thread thread_;
  friend struct Impl;
};

}  // namespace infergate::testing
