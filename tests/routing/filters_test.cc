#include "routing/filters.h"

#include <gtest/gtest.h>

namespace infergate::routing {
namespace {

using config::PathModifier;
using config::PathModifierType;

config::RouteRule RuleWithPrefixes(std::initializer_list<const char*> prefixes) {
  config::RouteRule rule;
  for (const char* p : prefixes) {
    config::RouteMatch m;
    m.path.value = p;
    rule.matches.push_back(m);
  }
  return rule;
}

TEST(MatchedPrefixTest, LongestWholeElementPrefixWins) {
  auto rule = RuleWithPrefixes({"/", "/v1", "/v1/chat/"});
  EXPECT_EQ(MatchedPrefix(rule, "/v1/chat/completions"), "/v1/chat");
  EXPECT_EQ(MatchedPrefix(rule, "/v1/models"), "/v1");
  EXPECT_EQ(MatchedPrefix(rule, "/v1x"), "");  // "/v1" does not match "/v1x"; "/" does
  EXPECT_EQ(MatchedPrefix(rule, "/v1"), "/v1");
}

TEST(RewritePathTest, ReplacePrefixMatchKeepsTheRest) {
  const PathModifier to_bar{PathModifierType::kReplacePrefixMatch, "/bar"};
  EXPECT_EQ(RewritePath(to_bar, "/foo", "/foo"), "/bar");
  EXPECT_EQ(RewritePath(to_bar, "/foo/", "/foo"), "/bar/");
  EXPECT_EQ(RewritePath(to_bar, "/foo/a/b", "/foo"), "/bar/a/b");
  const PathModifier to_root{PathModifierType::kReplacePrefixMatch, "/"};
  EXPECT_EQ(RewritePath(to_root, "/foo/a", "/foo"), "/a");
  EXPECT_EQ(RewritePath(to_root, "/foo", "/foo"), "/");
  const PathModifier to_slashed{PathModifierType::kReplacePrefixMatch, "/bar/"};
  EXPECT_EQ(RewritePath(to_slashed, "/foo/a", "/foo"), "/bar/a");
  // Prefix "/" (matched prefix ""): the replacement goes in front.
  EXPECT_EQ(RewritePath(to_bar, "/a", ""), "/bar/a");
}

TEST(RewritePathTest, ReplaceFullPath) {
  const PathModifier full{PathModifierType::kReplaceFullPath, "/v1/completions"};
  EXPECT_EQ(RewritePath(full, "/anything/else", "/anything"), "/v1/completions");
}

TEST(RedirectLocationTest, KeepsWhatTheFilterDoesNotSet) {
  config::RequestRedirect rd;
  EXPECT_EQ(RedirectLocation(rd, "http", "example.com:8080", "/a", "x=1", ""),
            "http://example.com:8080/a?x=1");
  EXPECT_EQ(RedirectLocation(rd, "http", "example.com", "/a", "", ""), "http://example.com/a");
}

TEST(RedirectLocationTest, SchemeChangeUsesItsWellKnownPort) {
  config::RequestRedirect rd;
  rd.scheme = "https";
  // The client's port 8080 is not carried over to https; 443 is left out.
  EXPECT_EQ(RedirectLocation(rd, "http", "example.com:8080", "/a", "", ""),
            "https://example.com/a");
  rd.port = 8443;
  EXPECT_EQ(RedirectLocation(rd, "http", "example.com:8080", "/a", "", ""),
            "https://example.com:8443/a");
  config::RequestRedirect to_http;
  to_http.scheme = "http";
  to_http.port = 80;
  EXPECT_EQ(RedirectLocation(to_http, "https", "example.com", "/", "", ""), "http://example.com/");
}

TEST(RedirectLocationTest, HostnameAndPrefixRewrite) {
  config::RequestRedirect rd;
  rd.hostname = "new.example.com";
  rd.path = PathModifier{PathModifierType::kReplacePrefixMatch, "/v2"};
  rd.status_code = 301;
  EXPECT_EQ(RedirectLocation(rd, "http", "old.example.com:81", "/v1/models", "a=b", "/v1"),
            "http://new.example.com:81/v2/models?a=b");
  // IPv6 literal Host keeps its brackets.
  config::RequestRedirect keep;
  EXPECT_EQ(RedirectLocation(keep, "http", "[::1]:8080", "/", "", ""), "http://[::1]:8080/");
  EXPECT_EQ(RedirectLocation(keep, "http", "[::1]", "/", "", ""), "http://[::1]/");
}

}  // namespace
}  // namespace infergate::routing
