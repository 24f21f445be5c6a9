// Resolution of HTTPRoutes (and pools attached by annotation) onto Gateway listeners.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "config/decode.h"
#include "config/resolver.h"
#include "config/units.h"

namespace infergate::config::resolve_internal {

// The route's hostnames usable on a listener: nullopt when none is (the route does not
// attach there), empty when any host matches.
std::optional<std::vector<std::string>> Resolver::IntersectHostnames(
    const std::string& listener_host, const std::vector<std::string>& route_hosts) {
  if (listener_host.empty()) return route_hosts;
  if (route_hosts.empty()) return std::vector<std::string>{listener_host};
  std::vector<std::string> out;
  auto add = [&](const std::string& h) {
    if (std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
  };
  auto wildcard = [](const std::string& h) { return h.size() > 2 && h[0] == '*'; };
  const std::string& l = listener_host;
  for (const auto& h : route_hosts) {
    if (h == l) {
      add(h);
    } else if (!wildcard(h) && HostnameCovers(l, h)) {
      add(h);
    } else if (!wildcard(l) && HostnameCovers(h, l)) {
      add(l);
    } else if (wildcard(h) && wildcard(l)) {
      // The narrower wildcard is the intersection.
      if (HostnameCovers(l, h.substr(2))) {
        add(h);
      } else if (HostnameCovers(h, l.substr(2))) {
        add(l);
      }
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

RouteRule Resolver::MakeRule(const HTTPRoute& route, std::size_t index) {
  const HTTPRouteRule& spec = route.rules[index];
  RouteRule rule;
  rule.route = route.meta.Key();
  rule.route_namespace = route.meta.namespace_name;
  rule.route_name = route.meta.name;
  rule.rule_index = index;
  rule.route_created = route.meta.creation_timestamp;
  rule.matches = spec.matches;
  rule.request_header_modifier = spec.request_header_modifier;
  rule.response_header_modifier = spec.response_header_modifier;
  rule.url_rewrite = spec.url_rewrite;
  rule.redirect = spec.redirect;
  rule.unsupported = spec.unsupported;
  rule.timeouts = spec.timeouts;
  for (const auto& ref : spec.backends) {
    if (snap_->unresolved_backends_answer_500) {
      // Gateway API: an invalid backendRef keeps its share of the rule's requests, each
      // answered 500, rather than the rule going away.
      std::string unresolved, reason;
      auto b = ResolveBackend(ref, route.meta, "HTTPRoute", &unresolved, &reason);
      if (!b && unresolved.empty()) continue;
      if (!b) {
        rule.unresolved_backends.push_back(unresolved);
        rule.unresolved_reasons.push_back(reason);
      }
      rule.backends.push_back({std::move(b), ref.weight});
    } else if (auto b = ResolveBackend(ref, route.meta, "HTTPRoute")) {
      rule.backends.push_back({std::move(b), ref.weight});
    }
  }
  for (const auto& m : spec.mirrors) {
    if (auto b = ResolveBackend(m.backend, route.meta, "HTTPRoute")) {
      rule.mirrors.push_back({std::move(b), m.numerator, m.denominator});
    }
  }
  return rule;
}

void Resolver::AttachRoutes() {
  for (const auto& route : objects_.routes) {
    if (routes_[route.meta.Key()] != &route) continue;
    // Rules are resolved once per route (errors once), then copied to each listener.
    std::vector<RouteRule> rules;
    for (std::size_t i = 0; i < route.rules.size(); ++i) rules.push_back(MakeRule(route, i));
    std::set<const ResolvedListener*> attached;
    for (const auto& parent : route.parents) {
      AttachToParent(route, parent, rules, &attached);
    }
  }
}

void Resolver::AttachToParent(const HTTPRoute& route, const ParentRef& parent,
                              const std::vector<RouteRule>& rules,
                              std::set<const ResolvedListener*>* attached) {
  std::string gw_key = parent.namespace_name + "/" + parent.name;
  ResolvedGateway* gw = FindGateway(gw_key);
  if (!gw) {
    Error(route.meta, "HTTPRoute", parent.origin.path + ".name", parent.origin.line,
          fmt::format("Gateway {} not found in namespace {}", Quote(parent.name),
                      Quote(parent.namespace_name)));
    return;
  }
  const Gateway& gw_object = *gateways_[gw_key];
  std::vector<std::string> names;
  for (const auto& l : gw->listeners) names.push_back(l.name);
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < gw->listeners.size(); ++i) {
    const auto& l = gw->listeners[i];
    if (!parent.section_name.empty() && l.name != parent.section_name) continue;
    if (parent.port && l.port != *parent.port) continue;
    candidates.push_back(i);
  }
  if (candidates.empty()) {
    if (!parent.section_name.empty()) {
      Error(route.meta, "HTTPRoute", parent.origin.path + ".sectionName", parent.origin.line,
            fmt::format("Gateway {} has no listener {}{} (listeners: {})", Quote(gw_key),
                        Quote(parent.section_name),
                        parent.port ? fmt::format(" on port {}", *parent.port) : "", Join(names)));
    } else {
      Error(route.meta, "HTTPRoute", parent.origin.path + ".port", parent.origin.line,
            fmt::format("Gateway {} has no listener on port {}", Quote(gw_key),
                        parent.port.value_or(0)));
    }
    return;
  }
  std::vector<std::string> refused;
  bool any = false;
  for (std::size_t i : candidates) {
    ResolvedListener& listener = gw->listeners[i];
    const Listener& spec = gw_object.listeners[i];
    if (route.meta.namespace_name != gw->namespace_name && !spec.routes_from_all_namespaces) {
      refused.push_back(fmt::format(
          "listener {} accepts routes from namespace {} only (allowedRoutes.namespaces.from: "
          "Same)",
          Quote(listener.name), Quote(gw->namespace_name)));
      continue;
    }
    auto hosts = IntersectHostnames(listener.hostname, route.hostnames);
    if (!hosts) {
      refused.push_back(fmt::format("no route hostname matches listener {} hostname {}",
                                    Quote(listener.name), Quote(listener.hostname)));
      continue;
    }
    any = true;
    if (!attached->insert(&listener).second) continue;  // via another parentRef already
    for (const auto& rule : rules) {
      RouteRule copy = rule;
      copy.hostnames = *hosts;
      listener.rules.push_back(std::move(copy));
    }
  }
  if (!any) {
    Error(route.meta, "HTTPRoute", parent.origin.path, parent.origin.line,
          fmt::format("the route cannot attach to Gateway {}: {}", Quote(gw_key), Join(refused)));
  }
}

void Resolver::AttachPoolsByAnnotation() {
  for (const auto& pool : objects_.pools) {
    if (!pool.attach_to || pools_[pool.meta.Key()] != &pool) continue;
    const AttachTo& a = *pool.attach_to;
    std::string gw_key = a.namespace_name + "/" + a.gateway;
    ResolvedGateway* gw = FindGateway(gw_key);
    if (!gw) {
      Error(pool.meta, "InferencePool", a.origin.path, a.origin.line,
            fmt::format("Gateway {} not found in namespace {}", Quote(a.gateway),
                        Quote(a.namespace_name)));
      continue;
    }
    std::vector<std::string> listeners;
    bool found = false;
    for (auto& l : gw->listeners) {
      listeners.push_back(fmt::format("{}:{}", l.name, l.port));
      if (l.port != a.port || (!a.section_name.empty() && l.name != a.section_name)) continue;
      found = true;
      RouteRule rule;
      rule.route = pool.meta.Key();
      rule.route_namespace = pool.meta.namespace_name;
      rule.route_name = pool.meta.name;
      rule.synthesized = true;
      if (!l.hostname.empty()) rule.hostnames.push_back(l.hostname);
      rule.matches.emplace_back();  // PathPrefix "/"
      rule.backends.push_back({pool_backends_[pool.meta.Key()], 1});
      l.rules.push_back(std::move(rule));
    }
    if (!found) {
      Error(pool.meta, "InferencePool", a.origin.path, a.origin.line,
            fmt::format(
                "Gateway {} has no listener on port {}{} (listeners: {})", Quote(gw_key), a.port,
                a.section_name.empty() ? "" : fmt::format(" named {}", Quote(a.section_name)),
                Join(listeners)));
    }
  }
}

}  // namespace infergate::config::resolve_internal
