// Writing HTTP/1.1 message heads for a proxy, in one pass and one buffer.
//
// A proxy forwards most of a message's header fields unchanged but must drop hop-by-hop
// fields (RFC 9110 §7.6.1: Connection, the fields Connection names, Keep-Alive,
// Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE, Trailer, Upgrade), set
// its own framing (Content-Length or Transfer-Encoding) and apply route filters.
// Editing a parsed Beast message field by field costs an ordered-set lookup and an
// allocation per change; instead these functions walk the parsed fields once and append
// the head to be sent to a flat string that goes out in a single gather write with the
// body.
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/beast.h"
#include "http/response_head.h"

namespace infergate::http {

struct HeaderEdit {
  std::string_view name;
  std::string_view value;
};

// How the forwarded request's head differs from the client's.
struct RequestHeadEdits {
  // Fields whose name starts with this prefix are dropped (case-insensitive); the
  // gateway's own routing headers are never taken from a client.
  std::string_view drop_prefix = "x-gateway-";
  std::span<const std::string> remove;  // names to drop (RequestHeaderModifier.remove)
  std::span<const HeaderEdit> set;      // replace any field of that name
  std::span<const HeaderEdit> add;      // append
  std::string_view forwarded_for;       // appended to X-Forwarded-For (empty: none)
};

// How the response's head differs from the upstream's (ResponseHeaderModifier).
struct ResponseHeadEdits {
  std::span<const std::string> remove;
  std::span<const HeaderEdit> set;
  std::span<const HeaderEdit> add;
};

// Appends the head of `req` as it goes upstream: HTTP/1.1, keep-alive, Content-Length of
// `body_size` (when the method carries a body or body_size > 0), hop-by-hop fields,
// Expect and client framing dropped, edits applied. Ends with the blank line.
void AppendUpstreamRequestHead(std::string& out, const bhttp::request_header<>& req,
                               std::size_t body_size, const RequestHeadEdits& edits);

enum class BodyFraming { kNone, kContentLength, kChunked, kUntilClose };

// Appends the head of an upstream response as it goes to the client: `version` (10 or
// 11), hop-by-hop and framing fields dropped and replaced by `framing` (with
// content_length for kContentLength), and Connection: close or keep-alive as needed;
// edits applied (framing and hop-by-hop fields are not theirs to change).
void AppendClientResponseHead(std::string& out, const ResponseHead& res, unsigned version,
                              BodyFraming framing, std::uint64_t content_length, bool keep_alive,
                              const ResponseHeadEdits& edits = {});

// "<hex size>\r\n" for a chunk of `size` bytes (size > 0).
void AppendChunkHeader(std::string& out, std::size_t size);
inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// True when `f` is hop-by-hop by itself (not counting fields named by Connection).
bool IsHopByHop(bhttp::field f);

}  // namespace infergate::http
