// Reading a vLLM/OpenAI streaming response: an incremental Server-Sent Events parser and
// a decoder for the JSON of one completions or chat chunk.
//
// SseParser takes the response body in whatever pieces TCP delivers (an event may be split
// at any byte, lines may end in \n or \r\n) and yields each event's data once the blank
// line that ends the event arrives. Multiple data lines are joined with \n; comments and
// other fields (event:, id:, retry:) are ignored. Only the unfinished tail of the input is
// buffered.
//
// StreamChunkDecoder classifies one event's data with simdjson (on-demand): "[DONE]"; a
// chunk whose "choices" is non-empty (the unit benchmark_serving times), with the first
// choice's text (completions "text" or chat "delta.content"); a usage report
// ("usage.completion_tokens", "usage.prompt_tokens"); or an error event
// (`{"error": {...}}` or `{"object": "error", ...}`), which fails the request.
//
// Thread-safety: instances are not synchronised; use one per connection or per thread.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace infergate::loadgen {

class SseParser {
 public:
  // Parses `bytes`, calling on_data(std::string_view data) for every event completed by
  // them; the view is valid only during the call.
  template <class F>
  void Feed(std::string_view bytes, F&& on_data);
  // Forgets any partial event (for a new response).
  void Reset() {
    line_.clear();
    data_.clear();
    has_data_ = false;
  }

 private:
  template <class F>
  void Line(std::string_view line, F& on_data);

  std::string line_;  // an unfinished line carried over from the previous Feed
  std::string data_;  // data of the event being read
  bool has_data_ = false;
};

struct StreamChunk {
  enum class Kind {
    kDone,       // data: [DONE]
    kChoices,    // non-empty "choices"
    kNoChoices,  // valid JSON with empty or no "choices" (e.g. the final usage chunk)
    kError,      // an error event
    kInvalid,    // not JSON
  };
  Kind kind = Kind::kInvalid;
  std::string_view text;                // first choice's text; valid until the next Decode
  std::int64_t completion_tokens = -1;  // from "usage", -1 if absent
  std::int64_t prompt_tokens = -1;      // from "usage", -1 if absent
  std::string error;                    // message for kError / kInvalid
};

class StreamChunkDecoder {
 public:
  // Decodes one event's data into `out` (all fields reset first).
  void Decode(std::string_view data, StreamChunk& out);

 private:
  simdjson::ondemand::parser parser_;
  std::string padded_;
};

// ---- implementation of the template members ----

template <class F>
void SseParser::Feed(std::string_view bytes, F&& on_data) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) {
      line_.append(bytes.substr(pos));
      return;
    }
    if (line_.empty()) {
      Line(bytes.substr(pos, nl - pos), on_data);
    } else {
      line_.append(bytes.substr(pos, nl - pos));
      Line(line_, on_data);
      line_.clear();
    }
    pos = nl + 1;
  }
}

template <class F>
void SseParser::Line(std::string_view line, F& on_data) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    if (has_data_) {
      on_data(std::string_view(data_));
      data_.clear();
      has_data_ = false;
    }
    return;
  }
  if (line.substr(0, 5) != "data:") return;  // comment or another field
  std::string_view value = line.substr(5);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

}  // namespace infergate::loadgen
