// Resolution of backends: InferencePools and Services into endpoints from Pods or
// EndpointSlices.
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

// Pods of a namespace a selector picks, in (name) order.
std::vector<const Pod*> Resolver::SelectPods(
    const std::string& ns, const Labels& selector,
    const std::vector<LabelRequirement>& expressions) const {
  std::vector<const Pod*> out;
  for (const auto& [key, pod] : pods_) {
    (void)key;
    if (pod->meta.namespace_name == ns &&
        SelectorMatches(selector, expressions, pod->meta.labels)) {
      out.push_back(pod);
    }
  }
  return out;
}

// Why a Pod cannot receive requests at all, or "".
std::string Resolver::Unroutable(const Pod& pod) {
  if (pod.phase == "Succeeded" || pod.phase == "Failed") {
    return fmt::format("phase {}", pod.phase);
  }
  if (pod.ip.empty()) return "no podIP";
  return "";
}

void Resolver::SortEndpoints(Backend* b) {
  std::sort(b->endpoints.begin(), b->endpoints.end(), [](const Endpoint& x, const Endpoint& y) {
    return std::tie(x.pod_namespace, x.pod_name, x.port) <
           std::tie(y.pod_namespace, y.pod_name, y.port);
  });
}

Endpoint Resolver::MakeEndpoint(const Pod& pod, int port) {
  Endpoint e;
  e.id = EndpointId(pod.ip, port);
  e.pod_namespace = pod.meta.namespace_name;
  e.pod_name = pod.meta.name;
  e.ip = pod.ip;
  e.port = static_cast<std::uint16_t>(port);
  e.ready = pod.ready;
  e.labels = pod.meta.labels;
  return e;
}

void Resolver::BuildPools() {
  for (const auto& [key, pool] : pools_) {
    auto b = std::make_shared<Backend>();
    b->kind = BackendKind::kInferencePool;
    b->id = key;
    b->namespace_name = pool->meta.namespace_name;
    b->name = pool->meta.name;
    PoolInfo& info = b->pool;
    info.api_version = pool->api_version;
    info.selector = pool->selector;
    info.match_expressions = pool->match_expressions;
    for (int p : pool->target_ports) info.target_ports.push_back(static_cast<std::uint16_t>(p));
    info.endpoint_picker = pool->endpoint_picker;
    info.failure_mode = pool->endpoint_picker.failure_mode;
    info.scheduling_profile = pool->scheduling_profile;
    info.flow_control = pool->flow_control;
    info.pipeline_parallel_size = pool->pipeline_parallel_size;
    info.annotations = pool->meta.annotations;
    for (const Pod* pod :
         SelectPods(pool->meta.namespace_name, pool->selector, pool->match_expressions)) {
      if (auto why = Unroutable(*pod); !why.empty()) {
        b->unavailable.push_back({pod->meta.Key(), why});
        continue;
      }
      for (int port : pool->target_ports) b->endpoints.push_back(MakeEndpoint(*pod, port));
    }
    SortEndpoints(b.get());
    pool_backends_[key] = std::move(b);
  }
}

// The backend a reference names, or nullptr after reporting why not: an error, or, when
// unresolved is given, a warning with the reason also written to *unresolved.
std::shared_ptr<const Backend> Resolver::ResolveBackend(const BackendRef& ref,
                                                        const ObjectMeta& owner,
                                                        std::string_view owner_kind,
                                                        std::string* unresolved,
                                                        std::string* reason) {
  if (reason) *reason = kBackendNotFound;
  auto report = [&](const std::string& path, const std::string& message) {
    if (unresolved) {
      *unresolved = message;
      Warning(owner, owner_kind, path, ref.origin.line,
              message + "; requests for this backend get 500");
    } else {
      Error(owner, owner_kind, path, ref.origin.line, message);
    }
  };
  std::string key = ref.namespace_name + "/" + ref.name;
  // A backend in another namespace needs a ReferenceGrant there (checked before whether
  // it exists, so a missing grant is what is reported).
  const std::string_view to_kind = ToString(ref.kind);
  const std::string to_group = ref.group == "core" ? std::string() : ref.group;
  if (!ReferencePermitted(kGatewayApiGroup, owner_kind, owner.namespace_name, to_group, to_kind,
                          ref.namespace_name, ref.name)) {
    if (reason) *reason = kRefNotPermitted;
    report(ref.origin.path + ".namespace",
           NotPermittedMessage(owner_kind, owner.namespace_name, to_kind, ref.namespace_name,
                               ref.name));
    return nullptr;
  }
  if (ref.kind == BackendKind::kInferencePool) {
    auto it = pool_backends_.find(key);
    if (it == pool_backends_.end()) {
      report(ref.origin.path + ".name", fmt::format("InferencePool {} not found in namespace {}",
                                                    Quote(ref.name), Quote(ref.namespace_name)));
      return nullptr;
    }
    const auto& ports = it->second->pool.target_ports;
    if (ref.port && !ports.empty() &&
        std::find(ports.begin(), ports.end(), *ref.port) == ports.end() &&
        !Incomplete("InferencePool", pools_[key]->meta)) {
      std::vector<std::string> listed;
      for (auto p : ports) listed.push_back(std::to_string(p));
      report(ref.origin.path + ".port",
             fmt::format("InferencePool {} has no target port {} (target ports: {})", Quote(key),
                         *ref.port, Join(listed)));
      return nullptr;
    }
    return it->second;
  }

  auto sit = services_.find(key);
  if (sit == services_.end()) {
    report(ref.origin.path + ".name", fmt::format("Service {} not found in namespace {}",
                                                  Quote(ref.name), Quote(ref.namespace_name)));
    return nullptr;
  }
  const Service& svc = *sit->second;
  const ServicePort* port = nullptr;
  for (const auto& p : svc.ports) {
    if (ref.port && p.port == *ref.port) port = &p;
  }
  if (!port) {
    if (!Incomplete("Service", svc.meta)) {
      std::vector<std::string> listed;
      for (const auto& p : svc.ports) listed.push_back(std::to_string(p.port));
      report(ref.origin.path + ".port",
             fmt::format("Service {} has no port {} (ports: {})", Quote(key), ref.port.value_or(0),
                         Join(listed)));
    } else if (unresolved) {
      *unresolved = fmt::format("Service {} is invalid", Quote(key));
    }
    return nullptr;
  }
  std::string cache_key = fmt::format("{}:{}", key, port->port);
  if (auto c = service_backends_.find(cache_key); c != service_backends_.end()) return c->second;

  auto b = std::make_shared<Backend>();
  b->kind = BackendKind::kService;
  b->id = key;
  b->namespace_name = svc.meta.namespace_name;
  b->name = svc.meta.name;
  b->service_port = static_cast<std::uint16_t>(port->port);
  if (snap_->service_endpoints_from_slices) {
    AddSliceEndpoints(svc, *port, b.get());
  } else if (svc.selector) {
    for (const Pod* pod : SelectPods(svc.meta.namespace_name, *svc.selector)) {
      std::string why = Unroutable(*pod);
      int target = port->target_port;
      if (why.empty() && !port->target_port_name.empty()) {
        target = 0;
        for (const auto& cp : pod->container_ports) {
          if (cp.name == port->target_port_name) target = cp.port;
        }
        if (target == 0)
          why = fmt::format("no container port named {}", Quote(port->target_port_name));
      }
      if (why.empty() && !pod->ready) why = "not ready";
      if (!why.empty()) {
        b->unavailable.push_back({pod->meta.Key(), why});
        continue;
      }
      b->endpoints.push_back(MakeEndpoint(*pod, target));
    }
  }
  SortEndpoints(b.get());
  service_backends_[cache_key] = b;
  return b;
}

// A Service port's endpoints from the EndpointSlices labelled with the Service's name:
// the slice port with the Service port's name (the resolved target port), each ready,
// not terminating address once.
void Resolver::AddSliceEndpoints(const Service& svc, const ServicePort& port, Backend* b) const {
  std::set<std::string> seen;
  for (const auto& slice : objects_.endpoint_slices) {
    if (slice.meta.namespace_name != svc.meta.namespace_name ||
        slice.service_name != svc.meta.name) {
      continue;
    }
    int target = 0;
    for (const auto& sp : slice.ports) {
      if (sp.name == port.name) target = sp.port;
    }
    for (const auto& ep : slice.endpoints) {
      std::string pod =
          ep.pod_name.empty() ? slice.meta.Key() : ep.pod_namespace + "/" + ep.pod_name;
      std::string why;
      if (target == 0) {
        why = fmt::format("EndpointSlice {} has no port named {}", Quote(slice.meta.name),
                          Quote(port.name));
      } else if (ep.terminating) {
        why = "terminating";
      } else if (!ep.ready) {
        why = "not ready";
      } else if (ep.addresses.empty()) {
        why = "no address";
      }
      if (!why.empty()) {
        b->unavailable.push_back({pod, why});
        continue;
      }
      const std::string& ip = ep.addresses.front();
      if (!seen.insert(EndpointId(ip, target)).second) continue;
      Endpoint e;
      e.id = EndpointId(ip, target);
      e.pod_namespace = ep.pod_name.empty() ? slice.meta.namespace_name : ep.pod_namespace;
      e.pod_name = ep.pod_name.empty() ? slice.meta.name : ep.pod_name;
      e.ip = ip;
      e.port = static_cast<std::uint16_t>(target);
      if (auto it = pods_.find(e.pod_namespace + "/" + e.pod_name); it != pods_.end()) {
        e.labels = it->second->meta.labels;
      }
      b->endpoints.push_back(std::move(e));
    }
  }
}

}  // namespace infergate::config::resolve_internal
