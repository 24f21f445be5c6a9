// Matching a request allocates nothing (outside RegularExpression matches). This binary
// replaces the global operator new to count allocations made while a flag is set.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "routing/route_table.h"

namespace {
thread_local bool counting = false;
thread_local long allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (counting) ++allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept {
  return operator new(n, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace infergate::routing {
namespace {

config::RouteRule Rule(std::string name, config::RouteMatch match,
                       std::vector<std::string> hosts = {}) {
  config::RouteRule r;
  r.route_namespace = "default";
  r.route_name = name;
  r.route = "default/" + name;
  r.matches.push_back(std::move(match));
  r.hostnames = std::move(hosts);
  auto b = std::make_shared<config::Backend>();
  b->id = name;
  r.backends.push_back({b, 3});
  r.backends.push_back({b, 1});
  return r;
}

TEST(RoutingRouteTableAllocations, MatchAndPickDoNotAllocate) {
  config::RouteMatch exact;
  exact.path = {config::PathMatchType::kExact, "/v1/models"};
  config::RouteMatch prefix;
  prefix.path = {config::PathMatchType::kPathPrefix, "/v1"};
  prefix.method = "POST";
  prefix.headers.push_back({config::ValueMatchType::kExact, "x-tenant", "a"});
  prefix.query_params.push_back({config::ValueMatchType::kExact, "debug", "1"});
  config::RouteMatch root;
  RouteTable table(std::vector<config::RouteRule>{
      Rule("exact", exact), Rule("prefix", prefix, {"*.example.com"}), Rule("root", root)});

  auto headers = [](std::string_view name) -> std::optional<std::string_view> {
    if (name == "x-tenant") return std::string_view("a");
    return std::nullopt;
  };
  RequestView a{"POST", "/v1/completions", "x=2&debug=1", "api.example.com:8080",
                HeaderLookup(headers)};
  RequestView b{"GET", "/v1/models", "", "other.org", HeaderLookup(headers)};
  RequestView c{"GET", "/metrics", "", "", HeaderLookup()};

  // The counter sees allocations (so a zero below means something).
  counting = true;
  auto probe = std::make_unique<std::string>(100, 'x');
  counting = false;
  ASSERT_GE(allocations, 1);
  allocations = 0;

  counting = true;
  const Route* ra = table.Match(a);
  const Route* rb = table.Match(b);
  const Route* rc = table.Match(c);
  const config::Backend* picked = ra ? ra->PickBackend() : nullptr;
  counting = false;

  EXPECT_EQ(allocations, 0);
  ASSERT_TRUE(ra && rb && rc && picked);
  EXPECT_EQ(ra->rule().route_name, "prefix");
  EXPECT_EQ(rb->rule().route_name, "exact");
  EXPECT_EQ(rc->rule().route_name, "root");
}

}  // namespace
}  // namespace infergate::routing
