// Header rules a proxy must apply (RFC 9110 §7.6.1): hop-by-hop fields are consumed by
// each hop and never forwarded; so are the fields a Connection header names.
#pragma once

#include <string_view>

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

}  // namespace infergate::http
