// Forwarding one HTTP request to an upstream and relaying its response to the client.
//
// ProxyExchange tries the candidates in order: a connection that cannot be made, or that
// fails before any response byte arrives, moves on to the next candidate (a failed reused
// keep-alive connection is first retried once on a fresh connection to the same
// endpoint), up to max_attempts. The response is streamed to the client as it arrives:
// each upstream read is written out at once, so server-sent events keep their timing.
//
// Failure rules: the client always gets exactly one response. Before a response has
// started the gateway answers with an OpenAI-style JSON error (502 upstream failure, 503
// no candidate, 504 timeout). After it has started, a failure ends the client's stream:
// an event stream gets an error event and a proper end, anything else has its connection
// closed. A client that disconnects cancels the upstream request at once (its connection
// is closed, which makes a model server abort the request and free its KV cache).
//
// Re-dispatch (options.stall_check > 0): an attempt whose response has sent no body byte
// stall_check after it began is offered to hooks.on_stall, and again every stall_recheck
// while it stays silent. When the hook names another upstream, the attempt's connection is
// closed (a model server then aborts the request and frees its KV cache) and the request
// is sent there instead, at most once per exchange. Nothing of the abandoned attempt
// reaches the client: its response head is held until the first body byte arrives.
//
// Requires: the client socket in non-blocking mode (socket.non_blocking(true)); writes
// try a direct send before falling back to an asynchronous one.
// Thread-safety: runs on the event loop that owns both sockets and the pool.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "core/clock.h"
#include "http/beast.h"
#include "http/deadline_list.h"
#include "http/response_head.h"
#include "http/upstream_pool.h"
#include "http/wire.h"

namespace infergate::http {

struct UpstreamCandidate {
  tcp::endpoint endpoint;
  // "ip:port", for logs and metrics; the text must outlive the exchange (it points into
  // the configuration the request was routed by).
  std::string_view id;
};

using Request = bhttp::request<bhttp::string_body>;

// Optional hooks into an exchange; every member may be empty.
struct ExchangeHooks {
  // Called when a candidate is tried (attempt index, candidate index).
  std::function<void(int candidate)> on_attempt;
  // Called once per failed attempt with a description; `connect` tells a connection that
  // could not be made from one that failed after it was made.
  std::function<void(int candidate, const std::string& error, bool connect)> on_attempt_failed;
  // Called with the upstream's response header before it is forwarded.
  std::function<void(const ResponseHead&)> on_response_header;
  // Called with each piece of upstream body as it arrives (before any rewrite).
  std::function<void(std::string_view)> on_body;
  // Rewrites response body bytes: called with each piece and last=true at the end;
  // appends what to send to `out`. Pieces may be held back between calls.
  std::function<void(std::string_view in, bool last, std::string& out)> rewrite_body;
  // Re-dispatch (with options.stall_check): the upstream to move a silent attempt to, or
  // nothing to keep waiting. The caller accounts the move (the exchange calls neither
  // on_attempt nor on_attempt_failed for it; a failure of the new attempt is reported with
  // candidate -1). The candidate's id must outlive the exchange.
  std::function<std::optional<UpstreamCandidate>()> on_stall;
};

struct ExchangeOptions {
  // How the forwarded head differs from the client's (hop-by-hop fields and the client's
  // framing are always dropped).
  RequestHeadEdits edits;
  // How the head relayed to the client differs from the upstream's.
  ResponseHeadEdits response_edits;
  TimeNs timeout = 0;  // whole exchange; 0 = none
  int max_attempts = 3;
  bool client_keep_alive = true;
  // Largest Content-Length body buffered whole when rewrite_body is set (bigger ones are
  // streamed untouched).
  std::size_t max_rewrite_body = 16 << 20;
  // Re-dispatch of a silent attempt (see above): 0 = off. stall_recheck: how often a
  // silent attempt is offered again after the first check (0: once).
  TimeNs stall_check = 0;
  TimeNs stall_recheck = 0;
};

struct ExchangeOutcome {
  int status = 0;                 // status the client received (0: client gone first)
  bool gateway_error = false;     // the status was produced by the gateway itself
  bool response_started = false;  // a response header reached the client
  bool completed = false;         // the response reached its end normally
  bool client_gone = false;
  bool timed_out = false;
  bool keep_client_alive = false;  // the client connection may serve another request
  int attempts = 0;
  int connect_failures = 0;
  int redirects = 0;  // silent attempts abandoned for another upstream (0 or 1)
  // Index of the candidate that answered, kRedirectTarget when the upstream on_stall named
  // did, -1 when none did.
  int candidate = -1;
  static constexpr int kRedirectTarget = -2;
  TimeNs first_byte = 0;         // steady time of the first body byte from upstream
  std::uint64_t body_bytes = 0;  // bytes of body received from upstream
  std::string error;             // what went wrong, for logs
};

// Writes a gateway-generated JSON error response. Returns false if the write failed.
asio::awaitable<bool> WriteErrorResponse(
    tcp::socket& client, int status, std::string_view message, unsigned version, bool keep_alive,
    std::span<const std::pair<std::string, std::string>> extra_headers = {});

// Forwards `req` (as parsed from the client; its head is rewritten on the way out by
// options.edits) and relays the response.
// Requires a non-empty candidate list unless the caller wants a 503.
// `deadlines` is the loop's list (request timeout, delayed client watch).
asio::awaitable<ExchangeOutcome> ProxyExchange(tcp::socket& client, Request& req,
                                               std::span<const UpstreamCandidate> candidates,
                                               UpstreamPool& pool, DeadlineList& deadlines,
                                               const ExchangeOptions& options,
                                               const ExchangeHooks& hooks);

}  // namespace infergate::http
