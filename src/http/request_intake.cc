#include "http/request_intake.h"

#include <algorithm>

#include "http/head_guard.h"
#include "http/headers.h"

namespace infergate::http {

void ApplyIntakeLimits(RequestParser& parser, const IntakeLimits& limits) {
  parser.header_limit(limits.header_bytes);
  parser.body_limit(limits.body_bytes);
}

bool HeadHasObsFold(std::string_view head) {
  for (std::size_t i = head.find('\n'); i != std::string_view::npos && i + 1 < head.size();
       i = head.find('\n', i + 1)) {
    if (head[i + 1] == ' ' || head[i + 1] == '\t') return true;
  }
  return false;
}

HeadAnswer AnswerHead(const RequestParser& parser, std::uint64_t body_limit) {
  HeadAnswer answer;
  const auto& req = parser.get();
  int content_lengths = 0;
  bool host = false, transfer_encoding = false;
  for (const auto& f : req) {
    if (f.name() == bhttp::field::content_length) {
      content_lengths += f.value().find(',') == std::string_view::npos ? 1 : 2;
    } else if (f.name() == bhttp::field::host) {
      host = true;
    } else if (f.name() == bhttp::field::transfer_encoding) {
      transfer_encoding = true;
    }
  }
  if (req.method_string().size() + req.target().size() + 10 > kMaxRequestLine) {
    answer.reject = 414;
    answer.message = "request line longer than " + std::to_string(kMaxRequestLine) + " bytes";
    return answer;
  }
  if (content_lengths > 1 || (content_lengths > 0 && transfer_encoding)) {
    answer.reject = 400;
    answer.message = "malformed request: repeated Content-Length, or with Transfer-Encoding";
    return answer;
  }
  if (!host && req.version() >= 11) {
    answer.reject = 400;
    answer.message = "malformed request: HTTP/1.1 request without Host";
    return answer;
  }
  if (transfer_encoding && !parser.chunked()) {
    answer.reject = 501;
    answer.message = "unsupported Transfer-Encoding (only chunked is accepted)";
    return answer;
  }
  // Expectations other than 100-continue are ignored, as nginx does (RFC 9110 §10.1.1
  // allows a 417; the field is not forwarded either way).
  const std::string_view expect = FieldOr(req, bhttp::field::expect);
  if (!IEquals(expect, "100-continue")) return answer;
  if (parser.content_length() && *parser.content_length() > body_limit) {
    answer.reject = 413;
  } else {
    answer.send_continue = true;
  }
  return answer;
}

void NormalizeAbsoluteForm(bhttp::request<bhttp::string_body>& req) {
  const std::string_view target = req.target();
  std::size_t scheme = 0;
  if (IStartsWith(target, "http://")) {
    scheme = 7;
  } else if (IStartsWith(target, "https://")) {
    scheme = 8;
  } else {
    return;
  }
  const std::string_view rest = target.substr(scheme);
  const std::size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string path;
  if (end == std::string_view::npos || rest[end] == '?') path = "/";
  if (end != std::string_view::npos) path.append(rest.substr(end));
  const std::string host(authority);
  req.set(bhttp::field::host, host);
  req.target(path);
}

int RejectStatusForReadError(const boost::system::error_code& ec, std::string_view buffered,
                             std::size_t header_limit) {
  if (!ec) return 0;
  if (ec == bhttp::error::header_limit) {
    // Beast consumes the request line once it is whole, so the unparsed bytes begin either
    // with the request line (a method token, then a space) or with a field (a name token,
    // then a colon). A request line that does not end within the limit gets 414.
    const std::size_t token_end = buffered.find_first_of(" :\n");
    const bool in_request_line = token_end != std::string_view::npos && buffered[token_end] == ' ';
    return in_request_line && buffered.substr(0, header_limit).find('\n') == std::string_view::npos
               ? 414
               : 431;
  }
  if (ec == bhttp::error::body_limit) return 413;
  if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
      ec == asio::error::connection_reset || ec == asio::error::eof) {
    return 0;
  }
  // Beast reports an incomplete message at end of input as partial_message.
  return 400;
}

std::string RejectMessage(int status, const boost::system::error_code& ec,
                          std::uint64_t body_limit) {
  switch (status) {
    case 414:
      return "request line too long";
    case 431:
      return "request header fields too large";
    case 413:
      return "request body larger than the limit of " + std::to_string(body_limit) + " bytes";
    case 408:
      return "request timeout";
    case 400:
      return "malformed request: " + ec.message();
    default:
      return "request refused";
  }
}

BufferedIntake ParseBufferedRequest(RequestParser& parser, std::string_view data,
                                    const IntakeLimits& limits, std::size_t piece, bool eof) {
  BufferedIntake out;
  std::string buffer;  // what the session's flat_buffer holds
  std::size_t next = 0;
  // Moves the next piece of data into the buffer; false when data is exhausted.
  auto receive = [&]() {
    if (next >= data.size()) return false;
    const std::size_t n = piece == 0 ? data.size() - next : std::min(piece, data.size() - next);
    buffer.append(data.substr(next, n));
    next += n;
    return true;
  };
  // Puts the buffered bytes into the parser until it wants more or is done with `phase`.
  HeadGuard head(&HeadHasObsFold, limits.header_bytes);
  auto read = [&](bool header_only) -> boost::system::error_code {
    boost::system::error_code ec;
    for (;;) {
      if (header_only && parser.is_header_done()) return ec;
      if (!header_only && parser.is_done()) return ec;
      if (!buffer.empty()) {
        const bool had_header = parser.is_header_done();
        const std::size_t used = parser.put(asio::buffer(buffer), ec);
        if (!had_header) {
          const std::string_view taken = std::string_view(buffer).substr(0, used);
          if (auto refused = head.OnStep(taken, parser.is_header_done())) return refused;
        }
        buffer.erase(0, used);
        if (ec != bhttp::error::need_more) {
          if (ec) return ec;
          if (used > 0) continue;
        }
        ec = {};
      }
      if (!receive()) {
        if (!eof) return bhttp::error::need_more;
        if (!parser.got_some()) return bhttp::error::end_of_stream;
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        return ec;
      }
    }
  };
  ApplyIntakeLimits(parser, limits);
  out.ec = read(true);
  if (!out.ec) {
    const HeadAnswer expect = AnswerHead(parser, limits.body_bytes);
    out.reject = expect.reject;
    out.sent_continue = expect.send_continue;
    if (!out.reject) NormalizeAbsoluteForm(parser.get());
    if (!out.reject) out.ec = read(false);
  }
  if (out.ec && !out.reject)
    out.reject = RejectStatusForReadError(out.ec, buffer, limits.header_bytes);
  out.complete = !out.ec && !out.reject && parser.is_done();
  out.consumed = next - buffer.size();
  return out;
}

}  // namespace infergate::http
