// The HTTPRoute filters that change where a request goes: URLRewrite (path and Host) and
// RequestRedirect (the Location of a redirect), as pure functions of the request's parts.
//
// Path modifiers follow the Gateway API:
//   ReplaceFullPath "/x"       any path becomes "/x";
//   ReplacePrefixMatch "/x"    the part the rule's PathPrefix matched is replaced, whole
//                              path elements only: prefix "/foo" with "/bar" makes "/foo"
//                              "/bar", "/foo/" "/bar/" and "/foo/a" "/bar/a"; with "/" it
//                              makes "/foo/a" "/a" and "/foo" "/".
// A redirect keeps what the filter does not set: the request's scheme, its Host (without
// port) and path; the query is kept. Its port is the filter's, else the well-known port
// of a scheme the filter sets, else the port the client used (the Host header's, or the
// scheme's default); ports 80 for http and 443 for https are left out of the Location.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "config/snapshot.h"

namespace infergate::routing {

// The longest PathPrefix value among rule's matches that matches path by whole elements
// ("" for "/"), without its trailing '/'. Empty when none does.
std::string_view MatchedPrefix(const config::RouteRule& rule, std::string_view path);

// path (without query) after mod; matched_prefix as MatchedPrefix returns it.
std::string RewritePath(const config::PathModifier& mod, std::string_view path,
                        std::string_view matched_prefix);

// The Location header of the redirect rd makes of a request. scheme is the listener's
// ("http" or "https"); host is the Host header as sent (it may carry a port).
std::string RedirectLocation(const config::RequestRedirect& rd, std::string_view scheme,
                             std::string_view host, std::string_view path, std::string_view query,
                             std::string_view matched_prefix);

}  // namespace infergate::routing
