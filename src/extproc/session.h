// One ext_proc stream of the endpoint picker: the message state machine of GIE's
// endpoint-picker protocol over Envoy's ExternalProcessor API, without gRPC or I/O.
//
// A stream carries one HTTP request. Envoy sends the request headers, then (body mode
// FULL_DUPLEX_STREAMED) the body in chunks until end_of_stream; the session answers
// nothing until the body is complete, then asks its Picker to admit and pick (Step.admit:
// the caller calls Admit). The decision comes back through OnDecision, possibly much
// later (a held request keeps its stream open: late binding) and from another thread.
// The answer is the request-headers reply (x-gateway-destination-endpoint set as a header,
// the primary then the fallbacks in dynamic metadata "envoy.lb", clear_route_cache, the
// body's Content-Length), then the body streamed back in chunks of at most 62,000 bytes;
// or an ImmediateResponse (429 shed, 503 no endpoint, 400 bad body) with
// x-llm-d-request-dropped-reason. The response side follows: its headers (the endpoint
// that served, from "envoy.lb" metadata; the status), its body chunks (first byte, usage,
// model-name rewriting, each chunk answered at once) and its end; the PickTicket tells the
// pool each of these, and Abandon when the stream ends early.
//
// Protocol errors (a message out of order, a second request on one stream, a message
// after the exchange ended) end the stream with a StreamError instead of a reply.
//
// Thread-safety: none; the caller serialises all calls on one session (the gRPC reactor
// holds a lock). Picker implementations may call the DecisionCallback from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "envoy/service/ext_proc/v3/external_processor.pb.h"

namespace infergate::extproc {

namespace pb = ::envoy::service::ext_proc::v3;

inline constexpr std::size_t kMaxBodyChunk = 62'000;
inline constexpr std::string_view kDestinationKey = "x-gateway-destination-endpoint";
inline constexpr std::string_view kServedKey = "x-gateway-destination-endpoint-served";
inline constexpr std::string_view kLbNamespace = "envoy.lb";
inline constexpr std::string_view kSubsetNamespace = "envoy.lb.subset_hint";
inline constexpr std::string_view kSubsetKey = "x-gateway-destination-endpoint-subset";
inline constexpr std::string_view kDroppedReasonHeader = "x-llm-d-request-dropped-reason";

// The request as the picker sees it once its body is complete.
struct RequestHead {
  std::vector<std::pair<std::string, std::string>> headers;  // keys lower-case
  std::vector<std::string> subset;  // the subset hint: allowed "ip:port"s; empty = any
  bool has_body = true;             // false: the headers ended the request
  // The first value of header `key` (lower-case), if present.
  std::optional<std::string_view> Find(std::string_view key) const;
};

struct PickDecision {
  int status = 200;                    // 200: routed to endpoints; otherwise an ImmediateResponse
  std::string reason;                  // x-llm-d-request-dropped-reason (non-200)
  std::string message;                 // the client's error message (non-200)
  std::vector<std::string> endpoints;  // primary first, then fallbacks (200)
  std::string_view body;               // the body to forward; valid while the ticket lives (200)
};

// The pool's handle on one admitted request. Every method may be called after the
// request has ended (then it does nothing); Finish and Abandon end it.
class PickTicket {
 public:
  virtual ~PickTicket() = default;
  // The endpoint Envoy reports as the one that served (maybe a fallback).
  virtual void Served(std::string_view endpoint) = 0;
  // The response's status (from :status).
  virtual void ResponseStarted(int status) = 0;
  // True when ResponseBody may change the body's length (Content-Length is removed).
  virtual bool RewritesResponseBody() const = 0;
  // A response body piece; appends what the client should get to `out`.
  virtual void ResponseBody(std::string_view piece, bool last, std::string& out) = 0;
  // The response ended (success: a complete 2xx).
  virtual void Finish(bool success) = 0;
  // The stream ended before the response did (client gone, reset, protocol error):
  // releases the queue slot or ledger entry the request holds.
  virtual void Abandon() = 0;
};

using DecisionCallback = std::function<void(PickDecision)>;

class Picker {
 public:
  virtual ~Picker() = default;
  // Classifies, admits and picks. Calls `done` exactly once, now or later, from any
  // thread, unless the ticket is abandoned first (then maybe never). The ticket owns
  // the body.
  virtual std::shared_ptr<PickTicket> Admit(RequestHead head, std::string body,
                                            DecisionCallback done) = 0;
};

struct StreamError {
  int grpc_code = 3;  // grpc::StatusCode (3: INVALID_ARGUMENT)
  std::string message;
};

struct SessionOptions {
  std::size_t max_body_bytes = 64u << 20;  // larger request bodies get a 413
  std::size_t chunk_bytes = kMaxBodyChunk;
};

class Session {
 public:
  struct Step {
    std::vector<pb::ProcessingResponse> replies;
    bool admit = false;                // the request is complete: call Admit
    std::optional<StreamError> error;  // end the stream with this status
    bool done = false;                 // the exchange is over: nothing more is expected
  };

  explicit Session(SessionOptions options = {}) : options_(options) {}
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Step OnRequest(const pb::ProcessingRequest& message);
  // After a Step with admit: hands the request to the picker. `done` is passed through
  // (the caller routes it to OnDecision under its lock).
  void Admit(Picker& picker, DecisionCallback done);
  Step OnDecision(PickDecision decision);
  // The stream ended (Envoy closed it or it was cancelled): abandons what is pending.
  void OnStreamEnd();

  bool done() const { return state_ == State::kDone || state_ == State::kFailed; }
  bool deciding() const { return state_ == State::kDeciding; }

 private:
  enum class State : std::uint8_t {
    kRequestHeaders,
    kRequestBody,
    kDeciding,
    kAwaitingResponse,
    kResponseBody,
    kDone,
    kFailed,
  };
  Step Fail(std::string message);
  Step ImmediateReply(int status, std::string_view reason, std::string_view message);
  void AppendBodyChunks(std::string_view body, bool end_of_stream, bool request_side,
                        std::vector<pb::ProcessingResponse>& out) const;
  void FinishResponse();

  SessionOptions options_;
  State state_ = State::kRequestHeaders;
  RequestHead head_;
  std::string body_;
  bool body_ended_by_trailers_ = false;
  bool request_has_body_ = true;
  std::shared_ptr<PickTicket> ticket_;
  int response_status_ = 0;
  bool finished_ = false;  // Finish or Abandon called on the ticket
};

}  // namespace infergate::extproc
