// Header rules a proxy must apply (RFC 9110 §7.6.1): hop-by-hop fields are consumed by
// each hop and never forwarded; so are the fields a Connection header names.
#pragma once

#include <optional>
#include <string_view>

#include "core/ascii.h"
#include "http/beast.h"

namespace infergate::http {

// Removes hop-by-hop fields (Connection and every field it lists, Keep-Alive,
// Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE, Trailer, Upgrade) from
// `fields`. Transfer-Encoding and Content-Length are left for the caller, which owns the
// message framing.
void StripHopByHop(bhttp::fields& fields);

// Removes every field whose name starts with `prefix` (case-insensitive). Returns how many.
int EraseFieldsWithPrefix(bhttp::fields& fields, std::string_view prefix);

// Case-insensitive ASCII prefix test.
bool StartsWithNoCase(std::string_view s, std::string_view prefix);

// Field lookups for a parsed message head, by a scan of its fields in arrival order.
// basic_fields' own find() searches an ordered set with case-insensitive string
// comparisons (after turning the field id back into its name); a head has a handful of
// fields, and comparing their ids is several times cheaper. That was ~9% of the
// instructions of a proxied request.

// The value of the first field `f` (a known field, not bhttp::field::unknown), or
// nullopt when there is none.
template <class Fields>
std::optional<std::string_view> FindField(const Fields& fields, bhttp::field f) {
  for (const auto& field : fields) {
    if (field.name() == f) return field.value();
  }
  return std::nullopt;
}

// As FindField, but "" when absent (like basic_fields::operator[]).
template <class Fields>
std::string_view FieldOr(const Fields& fields, bhttp::field f) {
  return FindField(fields, f).value_or(std::string_view());
}

// The value of the first field named `name` (case-insensitive), or nullopt.
template <class Fields>
std::optional<std::string_view> FindField(const Fields& fields, std::string_view name) {
  for (const auto& field : fields) {
    if (IEquals(field.name_string(), name)) return field.value();
  }
  return std::nullopt;
}

// Whether the connection persists after this message (RFC 9112 §9.3): HTTP/1.1 unless a
// Connection field says "close", HTTP/1.0 only if it says "keep-alive". As
// bhttp::header::keep_alive(), without the ordered lookup.
template <bool isRequest, class Fields>
bool KeepAlive(const bhttp::header<isRequest, Fields>& head) {
  const auto connection = FindField(head, bhttp::field::connection);
  if (head.version() >= 11) {
    if (!connection) return true;
    for (auto token : bhttp::token_list(*connection)) {
      if (IEquals(token, "close")) return false;
    }
    return true;
  }
  if (!connection) return false;
  for (auto token : bhttp::token_list(*connection)) {
    if (IEquals(token, "keep-alive")) return true;
  }
  return false;
}

}  // namespace infergate::http
