// Route matching and weighted backend choice: the per-request cost of the routing module.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "routing/route_table.h"

namespace {

using infergate::config::PathMatchType;
using infergate::config::RouteMatch;
using infergate::config::RouteRule;
using infergate::routing::HeaderLookup;
using infergate::routing::RequestView;
using infergate::routing::RouteTable;

RouteRule Rule(const std::string& name, PathMatchType type, const std::string& path) {
  RouteRule r;
  r.route_namespace = "default";
  r.route_name = name;
  r.route = "default/" + name;
  RouteMatch m;
  m.path = {type, path};
  r.matches.push_back(m);
  auto a = std::make_shared<infergate::config::Backend>();
  auto b = std::make_shared<infergate::config::Backend>();
  r.backends = {{a, 90}, {b, 10}};
  return r;
}

// A listener with n prefix routes, one exact route, one with a header match, and "/".
RouteTable Table(int n) {
  std::vector<RouteRule> rules;
  for (int i = 0; i < n; ++i) {
    rules.push_back(
        Rule("r" + std::to_string(i), PathMatchType::kPathPrefix, "/api/v" + std::to_string(i)));
  }
  rules.push_back(Rule("models", PathMatchType::kExact, "/v1/models"));
  RouteRule tenant = Rule("tenant", PathMatchType::kPathPrefix, "/v1");
  tenant.matches[0].headers.push_back({infergate::config::ValueMatchType::kExact, "x-tenant", "a"});
  rules.push_back(tenant);
  rules.push_back(Rule("root", PathMatchType::kPathPrefix, "/"));
  return RouteTable(std::move(rules));
}

void BM_MatchAndPick(benchmark::State& state) {
  RouteTable table = Table(static_cast<int>(state.range(0)));
  auto headers = [](std::string_view name) -> std::optional<std::string_view> {
    if (name == "x-tenant") return std::string_view("b");
    return std::nullopt;
  };
  RequestView req{"POST", "/v1/completions", "", "gateway.local:8081", HeaderLookup(headers)};
  for (auto _ : state) {
    const auto* route = table.Match(req);
    benchmark::DoNotOptimize(route->PickBackend());
  }
}
BENCHMARK(BM_MatchAndPick)->Arg(1)->Arg(16)->Arg(128);

void BM_PickBackendContended(benchmark::State& state) {
  static RouteTable table = Table(1);
  RequestView req{"GET", "/", "", "", HeaderLookup()};
  const auto* route = table.Match(req);
  for (auto _ : state) benchmark::DoNotOptimize(route->PickBackend());
}
BENCHMARK(BM_PickBackendContended)->Threads(1)->Threads(2);

}  // namespace
