#include "http/wire.h"

#include <charconv>

#include "http/headers.h"

namespace infergate::http {
namespace {

// Names listed by a Connection field (besides close / keep-alive), which are hop-by-hop.
struct ConnectionTokens {
  std::array<std::string_view, 8> names;
  std::size_t count = 0;
  bool Contains(std::string_view name) const {
    for (std::size_t i = 0; i < count; ++i) {
      if (IEquals(names[i], name)) return true;
    }
    return false;
  }
};

template <class Fields>
ConnectionTokens ReadConnectionTokens(const Fields& fields) {
  ConnectionTokens t;
  const auto connection = FindField(fields, bhttp::field::connection);
  if (!connection) return t;
  for (auto token : bhttp::token_list(*connection)) {
    if (IEquals(token, "close") || IEquals(token, "keep-alive")) continue;
    if (t.count < t.names.size()) t.names[t.count++] = token;
  }
  return t;
}

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void AppendNumber(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Whether a field named `name` is removed or replaced by the edits (its original is then
// not copied).
bool ReplacedByEdits(std::span<const std::string> remove, std::span<const HeaderEdit> set,
                     std::string_view name) {
  for (const auto& r : remove) {
    if (IEquals(name, r)) return true;
  }
  for (const auto& e : set) {
    if (IEquals(name, e.name)) return true;
  }
  return false;
}

}  // namespace

bool IsHopByHop(bhttp::field f) {
  switch (f) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::proxy_authorization:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::upgrade:
      return true;
    default:
      return false;
  }
}

void AppendUpstreamRequestHead(std::string& out, const bhttp::request_header<>& req,
                               std::size_t body_size, const RequestHeadEdits& edits) {
  const ConnectionTokens listed = ReadConnectionTokens(req);
  out += req.method_string();
  out += ' ';
  out += req.target();
  out += " HTTP/1.1\r\n";
  std::string_view xff;
  for (const auto& f : req) {
    const bhttp::field id = f.name();
    if (IsHopByHop(id) || id == bhttp::field::content_length ||
        id == bhttp::field::transfer_encoding || id == bhttp::field::expect) {
      continue;
    }
    const std::string_view name = f.name_string();
    if (id == bhttp::field::unknown) {
      if (!edits.drop_prefix.empty() && StartsWithNoCase(name, edits.drop_prefix)) continue;
      // llm-d's request headers (x-llm-d-inference-objective, ...) are read by the
      // gateway, never passed on or obeyed as routing outputs, as x-gateway-* are.
      if (!edits.drop_prefix.empty() && StartsWithNoCase(name, "x-llm-d-")) continue;
      if (listed.count && listed.Contains(name)) continue;
    } else if (listed.count && listed.Contains(name)) {
      continue;
    }
    if (!edits.forwarded_for.empty() && IEquals(name, "x-forwarded-for")) {
      if (xff.empty()) xff = f.value();
      continue;
    }
    if (ReplacedByEdits(edits.remove, edits.set, name)) continue;
    AppendField(out, name, f.value());
  }
  for (const auto& s : edits.set) AppendField(out, s.name, s.value);
  for (const auto& a : edits.add) AppendField(out, a.name, a.value);
  if (!edits.forwarded_for.empty()) {
    out += "X-Forwarded-For: ";
    if (!xff.empty()) {
      out += xff;
      out += ", ";
    }
    out += edits.forwarded_for;
    out += "\r\n";
  }
  const auto m = req.method();
  if (body_size > 0 || m == bhttp::verb::post || m == bhttp::verb::put || m == bhttp::verb::patch) {
    out += "Content-Length: ";
    AppendNumber(out, body_size);
    out += "\r\n";
  }
  out += "\r\n";
}

void AppendClientResponseHead(std::string& out, const ResponseHead& res, unsigned version,
                              BodyFraming framing, std::uint64_t content_length, bool keep_alive,
                              const ResponseHeadEdits& edits) {
  const ConnectionTokens listed = ReadConnectionTokens(res.fields);
  out += version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
  AppendNumber(out, static_cast<std::uint64_t>(res.status));
  out += ' ';
  out += res.reason;
  out += "\r\n";
  for (const ResponseField& f : res.fields) {
    const bhttp::field id = f.name();
    if (IsHopByHop(id) || id == bhttp::field::content_length ||
        id == bhttp::field::transfer_encoding) {
      continue;
    }
    if (listed.count && listed.Contains(f.name_string())) continue;
    if (ReplacedByEdits(edits.remove, edits.set, f.name_string())) continue;
    AppendField(out, f.name_string(), f.value());
  }
  for (const auto& s : edits.set) AppendField(out, s.name, s.value);
  for (const auto& a : edits.add) AppendField(out, a.name, a.value);
  switch (framing) {
    case BodyFraming::kContentLength:
      out += "Content-Length: ";
      AppendNumber(out, content_length);
      out += "\r\n";
      break;
    case BodyFraming::kChunked:
      out += "Transfer-Encoding: chunked\r\n";
      break;
    case BodyFraming::kNone:
    case BodyFraming::kUntilClose:
      break;
  }
  if (version >= 11) {
    if (!keep_alive) out += "Connection: close\r\n";
  } else if (keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

void AppendChunkHeader(std::string& out, std::size_t size) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, size, 16);
  out.append(buf, r.ptr);
  out += "\r\n";
}

}  // namespace infergate::http
