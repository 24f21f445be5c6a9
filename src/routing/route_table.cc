#include "routing/route_table.h"

#include <algorithm>
#include <tuple>

namespace infergate::routing {
namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// a equals b ignoring ASCII case; b is already lower-case.
bool EqualsLower(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != lower[i]) return false;
  }
  return true;
}

// The Host header without port, brackets kept for IPv6 literals, without a trailing dot.
std::string_view HostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  auto colon = host.find(':');
  if (colon != std::string_view::npos) host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

// The raw value of the first query parameter called name, or nullopt.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool ValueMatches(std::string_view value, const std::string& expected,
                  const std::shared_ptr<const std::regex>& regex) {
  if (regex) return std::regex_match(value.begin(), value.end(), *regex);
  return value == expected;
}

std::shared_ptr<const std::regex> Compile(const std::string& pattern) {
  try {
    return std::make_shared<const std::regex>(pattern,
                                              std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error&) {
    // The loader rejects invalid patterns; if one gets here it matches nothing.
    return std::make_shared<const std::regex>("$^");
  }
}

std::vector<std::uint32_t> Weights(const config::RouteRule& rule) {
  std::vector<std::uint32_t> weights;
  for (const auto& b : rule.backends) weights.push_back(b.weight);
  return weights;
}

// The rank of a route hostname that matches: exact hostnames by length, above wildcards
// by length.
template <class Pattern>
int PatternScore(const Pattern& p) {
  return p.wildcard ? static_cast<int>(p.text.size()) + 1  // + the '*'
                    : static_cast<int>(p.text.size()) * 1024;
}

// The rank of the route hostname that covers host; 0 for a route without hostnames; -1
// when none covers host.
template <class Patterns>
int HostScore(const Patterns& patterns, std::string_view host) {
  if (patterns.empty()) return 0;
  int best = -1;
  for (const auto& p : patterns) {
    bool covers = p.wildcard ? host.size() > p.text.size() &&
                                   EqualsLower(host.substr(host.size() - p.text.size()), p.text)
                             : EqualsLower(host, p.text);
    if (covers) best = std::max(best, PatternScore(p));
  }
  return best;
}

}  // namespace

Route::Route(config::RouteRule rule) : rule_(std::move(rule)), chooser_(Weights(rule_)) {
  for (const auto& h : rule_.hostnames) {
    HostPattern p;
    p.wildcard = h.size() > 2 && h[0] == '*' && h[1] == '.';
    p.text = p.wildcard ? h.substr(1) : h;
    for (char& c : p.text) c = Lower(c);
    hosts_.push_back(std::move(p));
  }
}

const config::Backend* Route::PickBackend() const {
  int i = chooser_.Next();
  if (i < 0) return nullptr;
  return rule_.backends[static_cast<std::size_t>(i)].backend.get();
}

RouteTable::RouteTable(std::vector<config::RouteRule> rules) {
  struct Keyed {
    Entry entry;
    // Sort key: smaller sorts first (wins).
    std::tuple<int, int, int, int, int, bool, bool, std::int64_t, std::string, std::string,
               std::size_t, std::size_t>
        key;
  };
  std::vector<Keyed> keyed;
  for (auto& rule : rules) {
    routes_.push_back(std::make_unique<Route>(std::move(rule)));
    const Route* route = routes_.back().get();
    const config::RouteRule& r = route->rule();
    for (std::size_t m = 0; m < r.matches.size(); ++m) {
      const config::RouteMatch& match = r.matches[m];
      Entry e;
      e.route = route;
      e.path_type = match.path.type;
      int path_rank = 0;
      switch (match.path.type) {
        case config::PathMatchType::kExact:
          e.path = match.path.value;
          path_rank = 0;
          break;
        case config::PathMatchType::kRegularExpression:
          e.path = match.path.value;
          e.path_regex = Compile(match.path.value);
          path_rank = 1;
          break;
        case config::PathMatchType::kPathPrefix:
          e.path = match.path.value;
          while (!e.path.empty() && e.path.back() == '/') e.path.pop_back();
          path_rank = 2;
          break;
      }
      e.method = match.method;
      for (const auto& h : match.headers) {
        ValueMatcher v{h.name, h.value, nullptr};
        for (char& c : v.name) c = Lower(c);
        if (h.type == config::ValueMatchType::kRegularExpression) v.regex = Compile(h.value);
        e.headers.push_back(std::move(v));
      }
      for (const auto& q : match.query_params) {
        ValueMatcher v{q.name, q.value, nullptr};
        if (q.type == config::ValueMatchType::kRegularExpression) v.regex = Compile(q.value);
        e.query_params.push_back(std::move(v));
      }
      Keyed k;
      k.key = std::make_tuple(path_rank, -static_cast<int>(e.path.size()), e.method.empty() ? 1 : 0,
                              -static_cast<int>(e.headers.size()),
                              -static_cast<int>(e.query_params.size()), r.synthesized,
                              !r.route_created.has_value(), r.route_created.value_or(0),
                              r.route_namespace, r.route_name, r.rule_index, m);
      k.entry = std::move(e);
      keyed.push_back(std::move(k));
    }
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const Keyed& a, const Keyed& b) { return a.key < b.key; });
  for (const auto& route : routes_) {
    for (const auto& h : route->hosts_)
      max_host_score_ = std::max(max_host_score_, PatternScore(h));
  }
  entries_.reserve(keyed.size());
  for (auto& k : keyed) entries_.push_back(std::move(k.entry));
}

bool RouteTable::Matches(const Entry& e, const RequestView& request) {
  if (!e.method.empty() && request.method != e.method) return false;
  switch (e.path_type) {
    case config::PathMatchType::kExact:
      if (request.path != e.path) return false;
      break;
    case config::PathMatchType::kPathPrefix: {
      std::string_view path = request.path;
      if (path.size() < e.path.size() || path.compare(0, e.path.size(), e.path) != 0) return false;
      if (path.size() > e.path.size() && path[e.path.size()] != '/') return false;
      break;
    }
    case config::PathMatchType::kRegularExpression:
      if (!std::regex_match(request.path.begin(), request.path.end(), *e.path_regex)) return false;
      break;
  }
  for (const auto& h : e.headers) {
    auto value = request.headers(h.name);
    if (!value || !ValueMatches(*value, h.value, h.regex)) return false;
  }
  for (const auto& q : e.query_params) {
    auto value = QueryParam(request.query, q.name);
    if (!value || !ValueMatches(*value, q.value, q.regex)) return false;
  }
  return true;
}

const Route* RouteTable::Match(const RequestView& request) const {
  std::string_view host = HostWithoutPort(request.host);
  const Route* best = nullptr;
  int best_score = -1;
  for (const auto& e : entries_) {
    // Entries are in precedence order except for hostnames, which rank first: a later
    // entry wins only with a strictly better hostname.
    int score = HostScore(e.route->hosts_, host);
    if (score <= best_score) continue;
    if (!Matches(e, request)) continue;
    best = e.route;
    best_score = score;
    if (best_score >= max_host_score_) break;  // nothing later can outrank it
  }
  return best;
}

}  // namespace infergate::routing
