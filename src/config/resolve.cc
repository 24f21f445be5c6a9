#include "config/resolve.h"

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

std::string Where(const SourceLocation& s) {
  std::string out = s.file;
  if (s.line > 0) out += fmt::format(":{}", s.line);
  if (s.document > 0) out += fmt::format(" (document {})", s.document);
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out.empty() ? "none" : out;
}

std::string EndpointId(const std::string& ip, int port) {
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

bool IsWildcardAddress(std::string_view a) { return a == "0.0.0.0" || a == "::"; }

void Resolver::Run() {
  IndexObjects();
  BuildGateways();
  ApplyPolicies();
  BuildPools();
  AttachModels();
  AttachObjectives();
  AttachRewrites();
  AttachRoutes();
  AttachPoolsByAnnotation();
  CheckProfiles();
  Finish();
}

void Resolver::IndexObjects() {
  gateways_ = Index(objects_.gateways, "Gateway");
  routes_ = Index(objects_.routes, "HTTPRoute");
  services_ = Index(objects_.services, "Service");
  pods_ = Index(objects_.pods, "Pod");
  pools_ = Index(objects_.pools, "InferencePool");
  models_ = Index(objects_.models, "InferenceModel");
  secrets_ = Index(objects_.secrets, "Secret");
  objectives_ = Index(objects_.objectives, "InferenceObjective");
  rewrites_ = Index(objects_.rewrites, "InferenceModelRewrite");
  configs_ = Index(objects_.picker_configs, "EndpointPickerConfig", /*by_name_only=*/true);
  Index(objects_.backend_policies, "BackendTrafficPolicy");
  Index(objects_.client_policies, "ClientTrafficPolicy");
  Index(objects_.endpoint_slices, "EndpointSlice");
  Index(objects_.reference_grants, "ReferenceGrant");
}

// A profile annotation "config/profile" must name an EndpointPickerConfig and one of its
// profiles; a bare name is a builtin profile, checked by the scheduler.
void Resolver::CheckProfiles() {
  for (const auto& pool : objects_.pools) {
    const std::string& profile = pool.scheduling_profile;
    auto slash = profile.find('/');
    if (slash == std::string::npos) continue;
    std::string config = profile.substr(0, slash);
    std::string name = profile.substr(slash + 1);
    std::string path = fmt::format("metadata.annotations[\"{}\"]", kSchedulingProfileAnnotation);
    auto it = configs_.find(config);
    if (it == configs_.end()) {
      Error(pool.meta, "InferencePool", path, pool.meta.source.line,
            fmt::format("EndpointPickerConfig {} not found", Quote(config)));
      continue;
    }
    bool found = false;
    std::vector<std::string> names;
    for (const auto& p : it->second->profiles) {
      names.push_back(p.name);
      found |= p.name == name;
    }
    if (!found) {
      Error(pool.meta, "InferencePool", path, pool.meta.source.line,
            fmt::format("EndpointPickerConfig {} has no scheduling profile {} (profiles: {})",
                        Quote(config), Quote(name), Join(names)));
    }
  }
}

void Resolver::Finish() {
  // Manifests meant for a cluster carry no Pods (serve --kubernetes watches them): one
  // note instead of a warning per backend.
  const bool no_pods = objects_.pods.empty();
  bool noted = false;
  for (auto& gw : snap_->gateways) {
    for (auto& l : gw.listeners) {
      std::stable_sort(l.rules.begin(), l.rules.end(), [](const RouteRule& a, const RouteRule& b) {
        auto key = [](const RouteRule& r) {
          return std::make_tuple(r.synthesized, !r.route_created.has_value(),
                                 r.route_created.value_or(0), r.route_namespace, r.route_name,
                                 r.rule_index);
        };
        return key(a) < key(b);
      });
      for (const auto& rule : l.rules) {
        if (rule.redirect || !rule.unsupported.empty()) continue;  // never proxied
        for (const auto& wb : rule.backends) {
          if (!wb.backend) continue;  // unresolved: warned about already
          if (wb.weight > 0 && wb.backend->endpoints.empty() && no_pods) {
            if (!noted) {
              diag_->Warning(
                  "no Pod objects in the configuration: no backend has endpoints (in a "
                  "cluster, serve --kubernetes finds them at run time)");
            }
            noted = true;
          } else if (wb.weight > 0 && wb.backend->endpoints.empty()) {
            diag_->Warning(fmt::format("listener {}/{}: {}: backend {} has no endpoints", gw.id,
                                       l.name, rule.Id(), wb.backend->id));
          }
        }
      }
    }
  }
  for (auto& [key, b] : pool_backends_) {
    (void)key;
    snap_->pools.push_back(b);
  }
}

}  // namespace infergate::config::resolve_internal

namespace infergate::config {

bool HostnameCovers(std::string_view pattern, std::string_view host) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix &&
           host.front() != '*';
  }
  return pattern == host;
}

void Resolve(const std::set<std::string>& incomplete, ConfigSnapshot* snapshot, Diagnostics* diag) {
  resolve_internal::Resolver(incomplete, snapshot, diag).Run();
}

}  // namespace infergate::config
