#include "routing/filters.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace infergate::routing {
namespace {

std::string_view WithoutTrailingSlash(std::string_view p) {
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return p;
}

// Whether prefix (without trailing '/') matches path by whole elements.
bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/' || prefix.empty();
}

// Host without ":port" (IPv6 literals keep their brackets), and the port when one is given.
std::pair<std::string_view, std::string_view> SplitHost(std::string_view host) {
  const auto colon = host.rfind(':');
  const auto bracket = host.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    return {host, {}};
  }
  return {host.substr(0, colon), host.substr(colon + 1)};
}

}  // namespace

std::string_view MatchedPrefix(const config::RouteRule& rule, std::string_view path) {
  std::string_view best;
  bool found = false;
  for (const auto& m : rule.matches) {
    if (m.path.type != config::PathMatchType::kPathPrefix) continue;
    const std::string_view prefix = WithoutTrailingSlash(m.path.value);
    if (PrefixMatches(prefix, path) && (!found || prefix.size() > best.size())) {
      best = prefix;
      found = true;
    }
  }
  return best;
}

std::string RewritePath(const config::PathModifier& mod, std::string_view path,
                        std::string_view matched_prefix) {
  if (mod.type == config::PathModifierType::kReplaceFullPath) return mod.value;
  std::string_view rest = path.substr(std::min(matched_prefix.size(), path.size()));
  std::string out(WithoutTrailingSlash(mod.value));
  out += rest;
  if (out.empty()) out.push_back('/');  // (not = "/": GCC 12 -Wrestrict false positive)
  return out;
}

std::string RedirectLocation(const config::RequestRedirect& rd, std::string_view scheme,
                             std::string_view host, std::string_view path, std::string_view query,
                             std::string_view matched_prefix) {
  const std::string_view to_scheme = rd.scheme ? std::string_view(*rd.scheme) : scheme;
  auto [request_host, request_port] = SplitHost(host);
  const std::string_view to_host = rd.hostname ? std::string_view(*rd.hostname) : request_host;
  int port = 0;
  if (rd.port) {
    port = *rd.port;
  } else if (rd.scheme) {
    port = *rd.scheme == "https" ? 443 : 80;
  } else if (!request_port.empty()) {
    std::from_chars(request_port.data(), request_port.data() + request_port.size(), port);
  }
  const bool default_port =
      port == 0 || (to_scheme == "http" && port == 80) || (to_scheme == "https" && port == 443);
  std::string out;
  out.reserve(to_scheme.size() + to_host.size() + path.size() + query.size() + 16);
  out += to_scheme;
  out += "://";
  out += to_host;
  if (!default_port) {
    out += ':';
    out += std::to_string(port);
  }
  out += rd.path ? RewritePath(*rd.path, path, matched_prefix) : std::string(path);
  if (!query.empty()) {
    out += '?';
    out += query;
  }
  return out;
}

}  // namespace infergate::routing
