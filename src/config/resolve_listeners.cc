// Resolution of Gateways: listeners, their certificates and the policies that target them.
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

void Resolver::BuildGateways() {
  struct Bound {
    const Gateway* gateway;
    const Listener* listener;
  };
  std::vector<Bound> bound;
  for (const auto& gw : objects_.gateways) {
    if (gateways_[gw.meta.Key()] != &gw) continue;  // a duplicate, reported already
    ResolvedGateway out;
    out.id = gw.meta.Key();
    out.namespace_name = gw.meta.namespace_name;
    out.name = gw.meta.name;
    out.bind_address = gw.bind_address;
    for (const auto& l : gw.listeners) {
      ResolvedListener rl;
      rl.gateway = out.id;
      rl.name = l.name;
      rl.bind_address = gw.bind_address;
      rl.port = static_cast<std::uint16_t>(l.port);
      rl.hostname = l.hostname;
      rl.protocol = l.protocol;
      rl.not_served = l.unsupported;
      if (l.protocol == "HTTPS" && rl.not_served.empty()) ResolveCertificates(gw, l, &rl);
      out.listeners.push_back(std::move(rl));
      if (l.port == 0) continue;
      // Two Gateways may not bind the same port on overlapping addresses.
      for (const auto& other : bound) {
        if (other.listener->port != l.port) continue;
        if (other.gateway->bind_address == gw.bind_address ||
            IsWildcardAddress(other.gateway->bind_address) || IsWildcardAddress(gw.bind_address)) {
          Error(gw.meta, "Gateway", l.origin.path + ".port", l.origin.line,
                fmt::format("port {} on {} is also bound by Gateway {} listener {} on {}", l.port,
                            gw.bind_address, Quote(other.gateway->meta.Key()),
                            Quote(other.listener->name), other.gateway->bind_address));
        }
      }
    }
    for (const auto& l : gw.listeners) {
      if (l.port != 0) bound.push_back({&gw, &l});
    }
    gateway_index_[out.id] = snap_->gateways.size();
    snap_->gateways.push_back(std::move(out));
  }
}

bool Resolver::ReferencePermitted(std::string_view from_group, std::string_view from_kind,
                                  const std::string& from_ns, std::string_view to_group,
                                  std::string_view to_kind, const std::string& to_ns,
                                  const std::string& to_name) const {
  if (from_ns == to_ns) return true;
  for (const auto& grant : objects_.reference_grants) {
    // A grant that decoded with errors opens nothing.
    if (grant.meta.namespace_name != to_ns || Incomplete("ReferenceGrant", grant.meta)) continue;
    const bool from_ok = std::any_of(grant.from.begin(), grant.from.end(), [&](const auto& f) {
      return f.group == from_group && f.kind == from_kind && f.namespace_name == from_ns;
    });
    if (!from_ok) continue;
    const bool to_ok = std::any_of(grant.to.begin(), grant.to.end(), [&](const auto& t) {
      return t.group == to_group && t.kind == to_kind && (t.name.empty() || t.name == to_name);
    });
    if (to_ok) return true;
  }
  return false;
}

std::string Resolver::NotPermittedMessage(std::string_view from_kind, const std::string& from_ns,
                                          std::string_view to_kind, const std::string& to_ns,
                                          const std::string& to_name) {
  return fmt::format(
      "{} {} is in another namespace and no ReferenceGrant in namespace {} allows {} "
      "references from namespace {} to it",
      to_kind, Quote(to_ns + "/" + to_name), Quote(to_ns), from_kind, Quote(from_ns));
}

// Fills listener->certificates from the Secrets tls.certificateRefs name. A reference
// that cannot be used leaves the listener not served (a warning, as a controller reports
// ResolvedRefs=False on the listener) rather than failing the whole configuration. A
// Secret in another namespace needs a ReferenceGrant there.
void Resolver::ResolveCertificates(const Gateway& gw, const Listener& l,
                                   ResolvedListener* listener) {
  for (const auto& ref : l.certificate_refs) {
    std::string problem;
    std::string reason(kInvalidCertificateRef);
    std::string key = ref.namespace_name + "/" + ref.name;
    auto it = secrets_.find(key);
    if (!ReferencePermitted(kGatewayApiGroup, "Gateway", gw.meta.namespace_name, "", "Secret",
                            ref.namespace_name, ref.name)) {
      problem = NotPermittedMessage("Gateway", gw.meta.namespace_name, "Secret", ref.namespace_name,
                                    ref.name);
      reason = kRefNotPermitted;
    } else if (it == secrets_.end()) {
      problem = fmt::format("Secret {} not found", Quote(key));
    } else if (it->second->type != "kubernetes.io/tls") {
      problem = fmt::format("Secret {} has type {}, not kubernetes.io/tls", Quote(key),
                            Quote(it->second->type));
    } else if (Incomplete("Secret", it->second->meta)) {
      problem = fmt::format("Secret {} is invalid", Quote(key));
    }
    if (!problem.empty()) {
      Warning(gw.meta, "Gateway", ref.origin.path, ref.origin.line,
              problem + "; the listener is not served");
      listener->not_served = problem;
      listener->refs_reason = reason;
      listener->certificates.clear();
      return;
    }
    listener->certificates.push_back({key, it->second->tls_crt, it->second->tls_key});
  }
}

// Resolves a policy's targets to (gateway, listener or nullptr); reports bad ones.
template <class Policy>
std::vector<std::pair<ResolvedGateway*, ResolvedListener*>> Resolver::PolicyTargets(
    const Policy& policy, std::string_view kind) {
  std::vector<std::pair<ResolvedGateway*, ResolvedListener*>> out;
  for (const auto& t : policy.targets) {
    if (t.kind != "Gateway" || (t.group != kGatewayApiGroup && !t.group.empty())) {
      Warning(policy.meta, kind, t.origin.path, t.origin.line,
              fmt::format("only Gateway targets are applied; {}/{} ignored", t.kind, t.name));
      continue;
    }
    ResolvedGateway* gw = FindGateway(policy.meta.namespace_name + "/" + t.name);
    if (!gw) {
      Error(policy.meta, kind, t.origin.path + ".name", t.origin.line,
            fmt::format("Gateway {} not found in namespace {}", Quote(t.name),
                        Quote(policy.meta.namespace_name)));
      continue;
    }
    ResolvedListener* listener = nullptr;
    if (!t.section_name.empty()) {
      for (auto& l : gw->listeners) {
        if (l.name == t.section_name) listener = &l;
      }
      if (!listener) {
        Error(policy.meta, kind, t.origin.path + ".sectionName", t.origin.line,
              fmt::format("Gateway {} has no listener {}", Quote(gw->id), Quote(t.section_name)));
        continue;
      }
    }
    out.emplace_back(gw, listener);
  }
  return out;
}

void Resolver::ApplyPolicies() {
  // (gateway id, listener name or "") -> the policy that set the value first.
  std::map<std::pair<std::string, std::string>, std::string> timeout_owner, limit_owner;
  std::map<std::pair<std::string, std::string>, TimeNs> timeouts;
  std::map<std::pair<std::string, std::string>, std::uint64_t> limits;
  for (const auto& p : objects_.backend_policies) {
    auto targets = PolicyTargets(p, "BackendTrafficPolicy");
    if (!p.request_timeout) continue;
    for (auto [gw, listener] : targets) {
      auto key = std::make_pair(gw->id, listener ? listener->name : std::string());
      auto label = ObjectLabel("BackendTrafficPolicy", p.meta.namespace_name, p.meta.name);
      auto [it, inserted] = timeout_owner.emplace(key, label);
      if (!inserted) {
        Error(p.meta, "BackendTrafficPolicy", "spec.timeout.http.requestTimeout",
              p.meta.source.line,
              fmt::format("conflicts with {}, which also sets the request timeout of {}",
                          it->second, Quote(gw->id)));
        continue;
      }
      timeouts[key] = *p.request_timeout;
    }
  }
  for (const auto& p : objects_.client_policies) {
    auto targets = PolicyTargets(p, "ClientTrafficPolicy");
    if (!p.buffer_limit) continue;
    for (auto [gw, listener] : targets) {
      auto key = std::make_pair(gw->id, listener ? listener->name : std::string());
      auto label = ObjectLabel("ClientTrafficPolicy", p.meta.namespace_name, p.meta.name);
      auto [it, inserted] = limit_owner.emplace(key, label);
      if (!inserted) {
        Error(p.meta, "ClientTrafficPolicy", "spec.connection.bufferLimit", p.meta.source.line,
              fmt::format("conflicts with {}, which also sets the body limit of {}", it->second,
                          Quote(gw->id)));
        continue;
      }
      limits[key] = *p.buffer_limit;
    }
  }
  for (auto& gw : snap_->gateways) {
    if (auto it = timeouts.find({gw.id, ""}); it != timeouts.end()) gw.request_timeout = it->second;
    if (auto it = limits.find({gw.id, ""}); it != limits.end()) gw.body_limit = it->second;
    for (auto& l : gw.listeners) {
      l.request_timeout = gw.request_timeout;
      l.body_limit = gw.body_limit;
      if (auto it = timeouts.find({gw.id, l.name}); it != timeouts.end()) {
        l.request_timeout = it->second;
      }
      if (auto it = limits.find({gw.id, l.name}); it != limits.end()) l.body_limit = it->second;
    }
  }
}

}  // namespace infergate::config::resolve_internal
