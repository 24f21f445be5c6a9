// The gateway's reading of a client request, as decisions separate from the socket.
//
// The session (gateway.cc) reads a request head into a Beast parser with the listener's
// limits, answers Expect, reads the body and turns a read error into a status. Those
// decisions live here so that the session and the request fuzz target (tests/fuzz) run
// the same code: the session feeds bytes from a socket, the fuzz target from memory
// (ParseBufferedRequest, which puts bytes into the parser exactly as ReadMessage does).
//
// Framing rules enforced by Beast's parser (1.81) and relied on here: Content-Length with
// Transfer-Encoding is rejected (request smuggling), as are differing repeated
// Content-Length values and malformed chunk sizes; a NUL or other control byte in a field
// value is a bad value. Beast accepts more than nginx does; the gateway refuses, as nginx
// does, what Beast lets through (AnswerHead, HeadHasObsFold): repeated Content-Length
// fields even with equal values, a Transfer-Encoding other than chunked, obsolete line
// folding, an HTTP/1.1 request without Host.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/beast.h"

namespace infergate::http {

using RequestParser = bhttp::request_parser<bhttp::string_body>;

struct IntakeLimits {
  std::uint32_t header_bytes = 16 * 1024;      // GatewayOptions::max_header_bytes
  std::uint64_t body_bytes = 4 * 1024 * 1024;  // the listener's body limit
};

void ApplyIntakeLimits(RequestParser& parser, const IntakeLimits& limits);

// True when a raw request head continues a line with obsolete line folding (a line that
// starts with a space or tab): refused with 400, as nginx does (Beast would join it).
bool HeadHasObsFold(std::string_view head);

// The longest request line accepted ("METHOD target HTTP/1.1"), as nginx's default
// (large_client_header_buffers 8k); longer gets 414.
inline constexpr std::size_t kMaxRequestLine = 8 * 1024;

// What to do once the head is read, before the body:
// - a request line over kMaxRequestLine (414);
// - repeated or list-valued Content-Length (400) and an HTTP/1.1 request without Host
//   (400, RFC 9112 §3.2), as nginx;
// - a Transfer-Encoding whose last coding is not chunked leaves the body length unknown
//   (RFC 9112 §6.3): refused with 501, as nginx does (Beast would read such a request as
//   having no body, or take a Content-Length that followed it);
// - Expect: 100-continue with a declared body over the limit gets 413 at once (the client
//   need not send it); otherwise 100 Continue is sent; other expectations are ignored,
//   as nginx does.
struct HeadAnswer {
  int reject = 0;  // a status, or 0
  std::string message;
  bool send_continue = false;
};
HeadAnswer AnswerHead(const RequestParser& parser, std::uint64_t body_limit);

// Turns an absolute-form target ("http://authority/path?query", RFC 9112 §3.2.2) into
// origin-form, with the authority (without userinfo) as the Host field, which a server
// must prefer to the Host the client sent; nginx routes such requests the same way.
void NormalizeAbsoluteForm(bhttp::request<bhttp::string_body>& req);

// The status for a failed read of a request: 414 (`buffered`, the bytes the parser left,
// still begin with the request line and hold no line end within `header_limit`), 431 (head
// too large), 413 (body too large), 400 (malformed), or 0 when the connection ended or timed
// out (the caller decides between closing quietly and 408).
int RejectStatusForReadError(const boost::system::error_code& ec, std::string_view buffered,
                             std::size_t header_limit);

// The client-facing message for a rejected request.
std::string RejectMessage(int status, const boost::system::error_code& ec,
                          std::uint64_t body_limit);

// A whole request read from bytes already in memory, as the session would read it from
// a socket that delivers `data` in pieces of `piece` bytes (0: all at once) and then
// closes (`eof`). Used by the fuzz target and tests.
struct BufferedIntake {
  int reject = 0;                // as the session would answer (0: request complete)
  bool complete = false;         // a whole request was read
  bool sent_continue = false;    // the session would have sent 100 Continue
  std::size_t consumed = 0;      // bytes of data the request used (the rest is pipelined)
  boost::system::error_code ec;  // the read error, if any
};
BufferedIntake ParseBufferedRequest(RequestParser& parser, std::string_view data,
                                    const IntakeLimits& limits, std::size_t piece, bool eof);

}  // namespace infergate::http
