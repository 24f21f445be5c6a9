// RouteTable: which rule of a listener serves a request, by Gateway API precedence.
//
// A table is compiled once from a listener's rules (config::ResolvedListener::rules) and
// then answers Match() for every request. Among the rules whose hostnames, path, method,
// headers and query parameters all match, the winner is the one with, in order:
//   1. the most specific matching route hostname: most characters of an exactly matching
//      hostname, then most characters of a matching wildcard ("*.example.com"); a rule
//      without hostnames matches any host and ranks last;
//   2. an Exact path, then a RegularExpression path (implementation-specific in the
//      Gateway API; here ranked between the two core types, longer pattern first), then
//      the longest PathPrefix;
//   3. a method match;
//   4. the most header matches;
//   5. the most query-parameter matches;
//   6. the oldest route by creationTimestamp (routes without one after those with one;
//      rules synthesised from an InferencePool's attach-to annotation after every
//      HTTPRoute), then "namespace/name" alphabetically;
//   7. the first rule of the route, then the first match of the rule.
// PathPrefix matches whole path elements: "/v1" (or "/v1/") matches "/v1", "/v1/" and
// "/v1/x", not "/v1x". Hostnames compare case-insensitively, without the Host header's
// port. Header names compare case-insensitively, values exactly; query parameters compare
// name and raw (not percent-decoded) value exactly; the first occurrence of a repeated
// header or parameter is the one matched. Regular expressions are ECMAScript (std::regex)
// and must match the whole value.
//
// Cost: Match scans the compiled matches once, in precedence order, with no allocation
// unless a RegularExpression match has to be evaluated (std::regex allocates).
//
// Thread-safe: immutable after construction; Match() and Route::PickBackend() may be
// called from any number of threads.
#pragma once

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/snapshot.h"
#include "routing/weighted_chooser.h"

namespace infergate::routing {

// A non-owning reference to a header getter: called with a lower-case header name, it
// returns the header's (first) value or nullopt. The callable must outlive the lookup
// and must compare names case-insensitively.
class HeaderLookup {
 public:
  HeaderLookup() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, HeaderLookup>>>
  explicit HeaderLookup(const F& getter) : object_(&getter), call_(&Call<F>) {}

  std::optional<std::string_view> operator()(std::string_view lower_name) const {
    if (call_ == nullptr) return std::nullopt;
    return call_(object_, lower_name);
  }

 private:
  template <class F>
  static std::optional<std::string_view> Call(const void* object, std::string_view name) {
    return (*static_cast<const F*>(object))(name);
  }

  const void* object_ = nullptr;
  std::optional<std::string_view> (*call_)(const void*, std::string_view) = nullptr;
};

// What matching needs of a request. All views must stay valid during Match().
struct RequestView {
  std::string_view method;  // "GET", "POST", ...
  std::string_view path;    // without the query, e.g. "/v1/completions"
  std::string_view query;   // after '?', without it; empty when none
  std::string_view host;    // Host header as sent (a ":port" suffix is ignored)
  HeaderLookup headers;
};

// One compiled rule: the configuration rule plus its backend chooser.
class Route {
 public:
  explicit Route(config::RouteRule rule);

  const config::RouteRule& rule() const { return rule_; }
  // The backend for the next request, by the rule's weights (smooth weighted round-robin),
  // or nullptr when no backend has a weight above 0: the gateway then answers 500, as the
  // Gateway API requires.
  const config::Backend* PickBackend() const;
  // The rule's RequestHeaderModifier filter, or nullptr.
  const config::HeaderModifier* request_header_modifier() const {
    return rule_.request_header_modifier ? &*rule_.request_header_modifier : nullptr;
  }
  // The rule's RequestMirror filters (possibly empty).
  const std::vector<config::ResolvedMirror>& mirrors() const { return rule_.mirrors; }

 private:
  friend class RouteTable;
  struct HostPattern {
    bool wildcard = false;
    std::string text;  // the hostname, or the wildcard's suffix with its dot (".example.com")
  };

  config::RouteRule rule_;
  WeightedChooser chooser_;
  std::vector<HostPattern> hosts_;
};

class RouteTable {
 public:
  RouteTable() = default;
  // Compiles rules (in any order: precedence is computed here).
  explicit RouteTable(std::vector<config::RouteRule> rules);
  RouteTable(RouteTable&&) noexcept = default;
  RouteTable& operator=(RouteTable&&) noexcept = default;

  // The winning rule for request, or nullptr when none matches (the gateway answers 404).
  const Route* Match(const RequestView& request) const;

  // The compiled rules, in the order given to the constructor.
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  struct ValueMatcher {
    std::string name;
    std::string value;
    std::shared_ptr<const std::regex> regex;  // set for RegularExpression matches
  };
  struct Entry {
    const Route* route = nullptr;
    config::PathMatchType path_type = config::PathMatchType::kPathPrefix;
    // Exact: the path. PathPrefix: the prefix without trailing '/' ("" for "/").
    std::string path;
    std::shared_ptr<const std::regex> path_regex;
    std::string method;
    std::vector<ValueMatcher> headers;
    std::vector<ValueMatcher> query_params;
  };

  static bool Matches(const Entry& entry, const RequestView& request);

  std::vector<std::unique_ptr<Route>> routes_;
  std::vector<Entry> entries_;  // in precedence order, hostnames aside
  int max_host_score_ = 0;      // the best hostname score any request could get
};

}  // namespace infergate::routing
