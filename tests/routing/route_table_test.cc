#include "routing/route_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "config/loader.h"

namespace infergate::routing {
namespace {

using config::PathMatchType;
using config::RouteMatch;
using config::RouteRule;
using config::ValueMatchType;
using ::testing::ElementsAre;

// ------------------------------------------------------------------ builders

RouteMatch Path(PathMatchType type, std::string value) {
  RouteMatch m;
  m.path.type = type;
  m.path.value = std::move(value);
  return m;
}
RouteMatch Prefix(std::string v) { return Path(PathMatchType::kPathPrefix, std::move(v)); }
RouteMatch Exact(std::string v) { return Path(PathMatchType::kExact, std::move(v)); }
RouteMatch Regex(std::string v) { return Path(PathMatchType::kRegularExpression, std::move(v)); }

RouteMatch WithHeader(RouteMatch m, std::string name, std::string value,
                      ValueMatchType type = ValueMatchType::kExact) {
  m.headers.push_back({type, std::move(name), std::move(value)});
  return m;
}
RouteMatch WithQuery(RouteMatch m, std::string name, std::string value,
                     ValueMatchType type = ValueMatchType::kExact) {
  m.query_params.push_back({type, std::move(name), std::move(value)});
  return m;
}
RouteMatch WithMethod(RouteMatch m, std::string method) {
  m.method = std::move(method);
  return m;
}

std::shared_ptr<const config::Backend> MakeBackend(std::string id) {
  auto b = std::make_shared<config::Backend>();
  b->id = std::move(id);
  return b;
}

// A rule of route "default/<name>" (rule index `index`) with the given matches.
RouteRule Rule(std::string name, std::vector<RouteMatch> matches, std::size_t index = 0) {
  RouteRule r;
  r.route_namespace = "default";
  r.route_name = name;
  r.route = "default/" + name;
  r.rule_index = index;
  r.matches = std::move(matches);
  r.backends.push_back({MakeBackend(name), 1});
  return r;
}

// A request with headers from a map (keys lower-case).
class Request {
 public:
  explicit Request(std::string path, std::string method = "GET") {
    auto q = path.find('?');
    path_ = path.substr(0, q);
    query_ = q == std::string::npos ? "" : path.substr(q + 1);
    method_ = std::move(method);
  }
  Request& Host(std::string h) {
    host_ = std::move(h);
    return *this;
  }
  Request& Header(std::string name, std::string value) {
    headers_[std::move(name)] = std::move(value);
    return *this;
  }
  // The name of the route of the rule that matches, "404" for none, plus "#<rule>" when
  // the rule index is not 0.
  std::string RouteOf(const RouteTable& table) const {
    auto lookup = [this](std::string_view name) -> std::optional<std::string_view> {
      auto it = headers_.find(std::string(name));
      if (it == headers_.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    RequestView view{method_, path_, query_, host_, HeaderLookup(lookup)};
    const Route* r = table.Match(view);
    if (!r) return "404";
    std::string out = r->rule().route_name;
    if (r->rule().rule_index != 0) out += "#" + std::to_string(r->rule().rule_index);
    return out;
  }

 private:
  std::string method_, path_, query_, host_ = "example.com";
  std::map<std::string, std::string> headers_;
};

std::string RouteFor(const RouteTable& t, const std::string& path,
                     const std::string& method = "GET") {
  return Request(path, method).RouteOf(t);
}

// ------------------------------------------------------------------ paths

TEST(RoutingRouteTable, PathPrefixMatchesWholeSegments) {
  RouteTable t(
      std::vector<RouteRule>{Rule("v1", {Prefix("/v1")}), Rule("slash", {Prefix("/v2/")})});
  EXPECT_EQ(RouteFor(t, "/v1"), "v1");
  EXPECT_EQ(RouteFor(t, "/v1/"), "v1");
  EXPECT_EQ(RouteFor(t, "/v1/completions"), "v1");
  EXPECT_EQ(RouteFor(t, "/v1x"), "404");
  EXPECT_EQ(RouteFor(t, "/v"), "404");
  EXPECT_EQ(RouteFor(t, "/"), "404");
  // A trailing '/' on the prefix is ignored.
  EXPECT_EQ(RouteFor(t, "/v2"), "slash");
  EXPECT_EQ(RouteFor(t, "/v2/x"), "slash");
  EXPECT_EQ(RouteFor(t, "/v2x"), "404");
}

TEST(RoutingRouteTable, RootPrefixMatchesEverything) {
  RouteTable t(std::vector<RouteRule>{Rule("root", {Prefix("/")})});
  EXPECT_EQ(RouteFor(t, "/"), "root");
  EXPECT_EQ(RouteFor(t, "/anything/at/all"), "root");
  EXPECT_EQ(RouteFor(t, "/health?x=1"), "root");
}

TEST(RoutingRouteTable, ExactBeatsPrefixAndLongestPrefixWins) {
  // Given in the worst order: precedence does not depend on it.
  RouteTable t(std::vector<RouteRule>{Rule("root", {Prefix("/")}), Rule("v1", {Prefix("/v1")}),
                                      Rule("chat", {Prefix("/v1/chat")}),
                                      Rule("exact", {Exact("/v1/chat/completions")})});
  EXPECT_EQ(RouteFor(t, "/v1/chat/completions"), "exact");
  EXPECT_EQ(RouteFor(t, "/v1/chat/completions/x"), "chat");
  EXPECT_EQ(RouteFor(t, "/v1/chat"), "chat");
  EXPECT_EQ(RouteFor(t, "/v1/models"), "v1");
  EXPECT_EQ(RouteFor(t, "/metrics"), "root");
  // Exact means exact: no trailing slash tolerance.
  EXPECT_EQ(RouteFor(t, "/v1/chat/completions/"), "chat");
}

TEST(RoutingRouteTable, RegularExpressionRanksBetweenExactAndPrefix) {
  RouteTable t(std::vector<RouteRule>{Rule("prefix", {Prefix("/v1/chat")}),
                                      Rule("regex", {Regex("/v1/[a-z]+/completions")}),
                                      Rule("exact", {Exact("/v1/chat/completions")})});
  EXPECT_EQ(RouteFor(t, "/v1/chat/completions"), "exact");
  EXPECT_EQ(RouteFor(t, "/v1/text/completions"), "regex");
  EXPECT_EQ(RouteFor(t, "/v1/chat/x"), "prefix");
  // The expression must match the whole path.
  EXPECT_EQ(RouteFor(t, "/v1/text/completions/extra"), "404");
}

// ------------------------------------------------------------------ other criteria

TEST(RoutingRouteTable, MethodThenHeadersThenQueryParams) {
  RouteTable t(std::vector<RouteRule>{
      Rule("any", {Prefix("/")}),
      Rule("post", {WithMethod(Prefix("/"), "POST")}),
      Rule("one-header", {WithHeader(Prefix("/"), "x-a", "1")}),
      Rule("two-headers", {WithHeader(WithHeader(Prefix("/"), "x-a", "1"), "x-b", "2")}),
      Rule("query", {WithQuery(Prefix("/"), "debug", "1")}),
  });
  EXPECT_EQ(Request("/").RouteOf(t), "any");
  EXPECT_EQ(Request("/", "POST").RouteOf(t), "post");
  // Method outranks headers.
  EXPECT_EQ(Request("/", "POST").Header("x-a", "1").Header("x-b", "2").RouteOf(t), "post");
  EXPECT_EQ(Request("/").Header("x-a", "1").RouteOf(t), "one-header");
  EXPECT_EQ(Request("/").Header("x-a", "1").Header("x-b", "2").RouteOf(t), "two-headers");
  EXPECT_EQ(Request("/").Header("x-a", "2").Header("x-b", "2").RouteOf(t), "any");
  // Headers outrank query parameters.
  EXPECT_EQ(Request("/?debug=1").Header("x-a", "1").RouteOf(t), "one-header");
  EXPECT_EQ(Request("/?debug=1").RouteOf(t), "query");
  // Path specificity outranks them all.
  RouteTable u(std::vector<RouteRule>{Rule("long", {Prefix("/v1")}),
                                      Rule("method", {WithMethod(Prefix("/"), "POST")})});
  EXPECT_EQ(Request("/v1/x", "POST").RouteOf(u), "long");
}

TEST(RoutingRouteTable, HeaderAndQueryMatching) {
  RouteTable t(std::vector<RouteRule>{
      Rule("re-header",
           {WithHeader(Prefix("/h"), "X-Version", "v[0-9]+", ValueMatchType::kRegularExpression)}),
      Rule("exact-query", {WithQuery(Prefix("/q"), "model", "qwq")}),
      Rule("re-query",
           {WithQuery(Prefix("/r"), "n", "[0-9]{2}", ValueMatchType::kRegularExpression)}),
  });
  // The configured name is looked up lower-case (lookups are case-insensitive).
  EXPECT_EQ(Request("/h").Header("x-version", "v12").RouteOf(t), "re-header");
  EXPECT_EQ(Request("/h").Header("x-version", "v12a").RouteOf(t), "404");
  EXPECT_EQ(Request("/h").RouteOf(t), "404");
  EXPECT_EQ(Request("/q?model=qwq").RouteOf(t), "exact-query");
  EXPECT_EQ(Request("/q?a=1&model=qwq&b").RouteOf(t), "exact-query");
  EXPECT_EQ(Request("/q?model=qwq2").RouteOf(t), "404");
  EXPECT_EQ(Request("/q?Model=qwq").RouteOf(t), "404");              // names are case-sensitive
  EXPECT_EQ(Request("/q?model=other&model=qwq").RouteOf(t), "404");  // first occurrence
  EXPECT_EQ(Request("/q?model").RouteOf(t), "404");
  EXPECT_EQ(Request("/r?n=42").RouteOf(t), "re-query");
  EXPECT_EQ(Request("/r?n=421").RouteOf(t), "404");
}

TEST(RoutingRouteTable, AnyMatchOfARuleSelectsIt) {
  RouteTable t(std::vector<RouteRule>{Rule("either", {Exact("/a"), Exact("/b")})});
  EXPECT_EQ(RouteFor(t, "/a"), "either");
  EXPECT_EQ(RouteFor(t, "/b"), "either");
  EXPECT_EQ(RouteFor(t, "/c"), "404");
}

// ------------------------------------------------------------------ ties

TEST(RoutingRouteTable, TiesGoToTheOldestRouteThenByName) {
  auto rule = [](std::string name, std::optional<std::int64_t> created) {
    RouteRule r = Rule(std::move(name), {Prefix("/")});
    r.route_created = created;
    return r;
  };
  EXPECT_EQ(
      RouteFor(RouteTable(std::vector<RouteRule>{rule("b", std::nullopt), rule("a", std::nullopt)}),
               "/"),
      "a");
  EXPECT_EQ(RouteFor(RouteTable(std::vector<RouteRule>{rule("a", 200), rule("z", 100)}), "/"), "z");
  // A route with a timestamp beats one without.
  EXPECT_EQ(
      RouteFor(RouteTable(std::vector<RouteRule>{rule("a", std::nullopt), rule("z", 100)}), "/"),
      "z");
  // Namespace comes before name.
  RouteRule other_ns = rule("a", std::nullopt);
  other_ns.route_namespace = "zzz";
  RouteRule b = rule("b", std::nullopt);
  EXPECT_EQ(RouteFor(RouteTable(std::vector<RouteRule>{other_ns, b}), "/"), "b");
}

TEST(RoutingRouteTable, SynthesisedRulesLoseTies) {
  RouteRule attach = Rule("aaa-pool", {Prefix("/")});
  attach.synthesized = true;
  attach.route_created = 1;  // even an older one
  RouteTable t(std::vector<RouteRule>{attach, Rule("zzz-route", {Prefix("/")}),
                                      Rule("models", {Exact("/v1/models")})});
  EXPECT_EQ(RouteFor(t, "/v1/completions"), "zzz-route");
  EXPECT_EQ(RouteFor(t, "/v1/models"), "models");
  // Without an explicit rule for the path, the synthesised one serves it.
  RouteTable u(std::vector<RouteRule>{attach, Rule("models", {Exact("/v1/models")})});
  EXPECT_EQ(RouteFor(u, "/v1/completions"), "aaa-pool");
}

TEST(RoutingRouteTable, FirstRuleOfARouteWinsTies) {
  RouteTable t(std::vector<RouteRule>{Rule("r", {Prefix("/")}, 1), Rule("r", {Prefix("/")}, 0)});
  EXPECT_EQ(RouteFor(t, "/"), "r");
  RouteTable u(std::vector<RouteRule>{Rule("r", {Prefix("/x")}, 0), Rule("r", {Prefix("/")}, 1)});
  EXPECT_EQ(RouteFor(u, "/y"), "r#1");
}

// ------------------------------------------------------------------ hostnames

TEST(RoutingRouteTable, Hostnames) {
  auto with_hosts = [](RouteRule r, std::vector<std::string> hosts) {
    r.hostnames = std::move(hosts);
    return r;
  };
  RouteTable t(std::vector<RouteRule>{
      Rule("any", {Exact("/x")}),
      with_hosts(Rule("wild", {Prefix("/")}), {"*.example.com"}),
      with_hosts(Rule("deep-wild", {Prefix("/")}), {"*.api.example.com"}),
      with_hosts(Rule("exact", {Prefix("/")}), {"foo.example.com", "other.org"}),
  });
  EXPECT_EQ(Request("/").Host("foo.example.com").RouteOf(t), "exact");
  EXPECT_EQ(Request("/").Host("FOO.Example.COM:8080").RouteOf(t), "exact");  // case, port
  EXPECT_EQ(Request("/").Host("other.org").RouteOf(t), "exact");
  EXPECT_EQ(Request("/").Host("bar.example.com").RouteOf(t), "wild");
  EXPECT_EQ(Request("/").Host("a.b.example.com").RouteOf(t), "wild");          // several labels
  EXPECT_EQ(Request("/").Host("v1.api.example.com").RouteOf(t), "deep-wild");  // longer wildcard
  EXPECT_EQ(Request("/").Host("example.com").RouteOf(t), "404");         // not the bare domain
  EXPECT_EQ(Request("/").Host("foo.example.com.").RouteOf(t), "exact");  // trailing dot
  // Hostname specificity outranks path specificity: an exact path on a route without
  // hostnames loses to a catch-all path on a route whose hostname matches.
  EXPECT_EQ(Request("/x").Host("foo.example.com").RouteOf(t), "exact");
  EXPECT_EQ(Request("/x").Host("unrelated.net").RouteOf(t), "any");
  EXPECT_EQ(Request("/y").Host("unrelated.net").RouteOf(t), "404");
  EXPECT_EQ(Request("/x").Host("").RouteOf(t), "any");
  // When the matching hostname's route does not match the path, others still can.
  RouteTable u(std::vector<RouteRule>{with_hosts(Rule("host-a", {Prefix("/a")}), {"h.com"}),
                                      Rule("fallback", {Prefix("/")})});
  EXPECT_EQ(Request("/b").Host("h.com").RouteOf(u), "fallback");
  EXPECT_EQ(Request("/a").Host("h.com").RouteOf(u), "host-a");
}

// ------------------------------------------------------------------ backends and filters

TEST(RoutingRouteTable, WeightedBackendsAndFilters) {
  RouteRule r = Rule("split", {Prefix("/")});
  r.backends = {{MakeBackend("a"), 3}, {MakeBackend("b"), 1}, {MakeBackend("never"), 0}};
  config::HeaderModifier mod;
  mod.set.push_back({"x-set", "1"});
  r.request_header_modifier = mod;
  r.mirrors.push_back({MakeBackend("shadow"), 1, 10});
  RouteTable t(std::vector<RouteRule>{r});
  RequestView req{"GET", "/", "", "h", HeaderLookup()};
  const Route* route = t.Match(req);
  ASSERT_NE(route, nullptr);
  std::map<std::string, int> counts;
  for (int i = 0; i < 400; ++i) counts[route->PickBackend()->id]++;
  EXPECT_EQ(counts["a"], 300);
  EXPECT_EQ(counts["b"], 100);
  EXPECT_EQ(counts.count("never"), 0u);
  ASSERT_NE(route->request_header_modifier(), nullptr);
  EXPECT_EQ(route->request_header_modifier()->set[0].name, "x-set");
  ASSERT_EQ(route->mirrors().size(), 1u);
  EXPECT_EQ(route->mirrors()[0].backend->id, "shadow");
  EXPECT_EQ(route->mirrors()[0].denominator, 10u);

  RouteRule none = Rule("none", {Prefix("/")});
  none.backends = {{MakeBackend("zero"), 0}};
  RouteTable z(std::vector<RouteRule>{none});
  ASSERT_NE(z.Match(req), nullptr);
  EXPECT_EQ(z.Match(req)->PickBackend(), nullptr);  // the gateway answers 500
  EXPECT_EQ(z.Match(req)->request_header_modifier(), nullptr);
  RouteRule empty = Rule("empty", {Prefix("/")});
  empty.backends.clear();
  EXPECT_EQ(RouteTable(std::vector<RouteRule>{empty}).Match(req)->PickBackend(), nullptr);
}

TEST(RoutingRouteTable, EmptyTableMatchesNothing) {
  RouteTable t;
  EXPECT_EQ(RouteFor(t, "/"), "404");
}

TEST(RoutingRouteTable, ConcurrentMatchAndPick) {
  RouteRule r = Rule("split", {Prefix("/v1")});
  r.backends = {{MakeBackend("a"), 1}, {MakeBackend("b"), 1}};
  RouteTable t(std::vector<RouteRule>{r, Rule("other", {Exact("/other")})});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  std::vector<int> a(kThreads, 0), b(kThreads, 0), misses(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kPerThread; ++k) {
        RequestView req{"POST", "/v1/completions", "", "h", HeaderLookup()};
        const Route* route = t.Match(req);
        if (!route) {
          ++misses[i];
          continue;
        }
        (route->PickBackend()->id == "a" ? a : b)[i]++;
      }
    });
  }
  for (auto& th : threads) th.join();
  int total_a = 0, total_b = 0;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(misses[i], 0);
    total_a += a[i];
    total_b += b[i];
  }
  EXPECT_EQ(total_a, kThreads * kPerThread / 2);
  EXPECT_EQ(total_b, kThreads * kPerThread / 2);
}

// ------------------------------------------------------------------ from a configuration

TEST(RoutingRouteTable, FromTheSeedsPoolListenerWithAnExplicitRoute) {
  std::string yaml = R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{name: llm, protocol: HTTP, port: 8081}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: InferencePool
metadata:
  name: pool
  annotations:
    inference.networking.x-k8s.io/attach-to: |
      name: gw
      port: 8081
spec:
  selector: {app: llm}
  targetPortNumber: 8000
---
apiVersion: v1
kind: Service
metadata: {name: models}
spec: {selector: {app: llm}, ports: [{port: 8000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: list-models}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /v1/models}, method: GET}]
    backendRefs: [{name: models, port: 8000}]
)";
  config::LoadOptions options;
  options.log_notices = false;
  auto snap = config::LoadConfigFromString(yaml, "test.yaml", options);
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  RouteTable t((*snap)->gateways[0].listeners[0].rules);
  ASSERT_EQ(t.routes().size(), 2u);
  EXPECT_EQ(RouteFor(t, "/v1/models"), "list-models");
  EXPECT_EQ(RouteFor(t, "/v1/models", "POST"), "pool");
  EXPECT_EQ(RouteFor(t, "/v1/completions", "POST"), "pool");
  RequestView req{"POST", "/v1/completions", "", "", HeaderLookup()};
  const config::Backend* backend = t.Match(req)->PickBackend();
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->kind, config::BackendKind::kInferencePool);
  EXPECT_EQ(backend->id, "default/pool");
}

}  // namespace
}  // namespace infergate::routing
