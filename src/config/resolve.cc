#include "config/resolve.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "config/decode.h"
#include "config/units.h"

namespace infergate::config {
namespace {

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

bool Selects(const Labels& selector, const Labels& labels) {
  if (selector.empty()) return false;
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

std::string EndpointId(const std::string& ip, int port) {
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

bool IsWildcardAddress(std::string_view a) { return a == "0.0.0.0" || a == "::"; }

// Resolution state: indexes over the loaded objects and the backends built so far.
class Resolver {
 public:
  Resolver(const std::set<std::string>& incomplete, ConfigSnapshot* snapshot, Diagnostics* diag)
      : incomplete_(incomplete), snap_(snapshot), objects_(snapshot->objects), diag_(diag) {}

  void Run() {
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

 private:
  void Error(const ObjectMeta& meta, std::string_view kind, std::string_view path, int line,
             std::string_view message) {
    diag_->Error(FormatProblem(meta.source, ObjectLabel(kind, meta.namespace_name, meta.name), path,
                               line, message));
  }
  void Warning(const ObjectMeta& meta, std::string_view kind, std::string_view path, int line,
               std::string_view message) {
    diag_->Warning(FormatProblem(meta.source, ObjectLabel(kind, meta.namespace_name, meta.name),
                                 path, line, message));
  }
  bool Incomplete(std::string_view kind, const ObjectMeta& meta) const {
    return incomplete_.count(IncompleteKey(kind, meta)) != 0;
  }

  // Indexes a list by key, reporting later duplicates.
  template <class T>
  std::map<std::string, const T*> Index(const std::vector<T>& list, std::string_view kind,
                                        bool by_name_only = false) {
    std::map<std::string, const T*> index;
    for (const auto& object : list) {
      std::string key = by_name_only ? object.meta.name : object.meta.Key();
      auto [it, inserted] = index.emplace(key, &object);
      if (!inserted) {
        Error(object.meta, kind, "metadata.name", object.meta.source.line,
              fmt::format("{} {} is defined twice; first at {}", kind, Quote(key),
                          Where(it->second->meta.source)));
      }
    }
    return index;
  }

  void IndexObjects() {
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
  }

  void BuildGateways() {
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
              IsWildcardAddress(other.gateway->bind_address) ||
              IsWildcardAddress(gw.bind_address)) {
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

  // Fills listener->certificates from the Secrets tls.certificateRefs name. A reference
  // that cannot be used leaves the listener not served (a warning, as a controller reports
  // ResolvedRefs=False on the listener) rather than failing the whole configuration.
  void ResolveCertificates(const Gateway& gw, const Listener& l, ResolvedListener* listener) {
    for (const auto& ref : l.certificate_refs) {
      std::string problem;
      std::string key = ref.namespace_name + "/" + ref.name;
      auto it = secrets_.find(key);
      if (ref.namespace_name != gw.meta.namespace_name) {
        problem = fmt::format(
            "Secret {} is in another namespace; that needs a ReferenceGrant, which infergate "
            "does not read",
            Quote(key));
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
        listener->certificates.clear();
        return;
      }
      listener->certificates.push_back({key, it->second->tls_crt, it->second->tls_key});
    }
  }

  ResolvedGateway* FindGateway(const std::string& key) {
    auto it = gateway_index_.find(key);
    return it == gateway_index_.end() ? nullptr : &snap_->gateways[it->second];
  }

  // Resolves a policy's targets to (gateway, listener or nullptr); reports bad ones.
  template <class Policy>
  std::vector<std::pair<ResolvedGateway*, ResolvedListener*>> PolicyTargets(const Policy& policy,
                                                                            std::string_view kind) {
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

  void ApplyPolicies() {
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
      if (auto it = timeouts.find({gw.id, ""}); it != timeouts.end())
        gw.request_timeout = it->second;
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

  // Pods of a namespace a selector picks, in (name) order.
  std::vector<const Pod*> SelectPods(const std::string& ns, const Labels& selector) const {
    std::vector<const Pod*> out;
    for (const auto& [key, pod] : pods_) {
      (void)key;
      if (pod->meta.namespace_name == ns && Selects(selector, pod->meta.labels)) {
        out.push_back(pod);
      }
    }
    return out;
  }

  // Why a Pod cannot receive requests at all, or "".
  static std::string Unroutable(const Pod& pod) {
    if (pod.phase == "Succeeded" || pod.phase == "Failed") {
      return fmt::format("phase {}", pod.phase);
    }
    if (pod.ip.empty()) return "no podIP";
    return "";
  }

  static void SortEndpoints(Backend* b) {
    std::sort(b->endpoints.begin(), b->endpoints.end(), [](const Endpoint& x, const Endpoint& y) {
      return std::tie(x.pod_namespace, x.pod_name, x.port) <
             std::tie(y.pod_namespace, y.pod_name, y.port);
    });
  }

  static Endpoint MakeEndpoint(const Pod& pod, int port) {
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

  void BuildPools() {
    for (const auto& [key, pool] : pools_) {
      auto b = std::make_shared<Backend>();
      b->kind = BackendKind::kInferencePool;
      b->id = key;
      b->namespace_name = pool->meta.namespace_name;
      b->name = pool->meta.name;
      PoolInfo& info = b->pool;
      info.api_version = pool->api_version;
      info.selector = pool->selector;
      for (int p : pool->target_ports) info.target_ports.push_back(static_cast<std::uint16_t>(p));
      info.endpoint_picker = pool->endpoint_picker;
      info.failure_mode = pool->endpoint_picker.failure_mode;
      info.scheduling_profile = pool->scheduling_profile;
      info.flow_control = pool->flow_control;
      info.pipeline_parallel_size = pool->pipeline_parallel_size;
      info.annotations = pool->meta.annotations;
      for (const Pod* pod : SelectPods(pool->meta.namespace_name, pool->selector)) {
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

  void AttachModels() {
    // (pool key, modelName) -> the model that claimed it first.
    std::map<std::pair<std::string, std::string>, const InferenceModel*> claimed;
    for (const auto& model : objects_.models) {
      if (models_[model.meta.Key()] != &model || model.pool_ref.name.empty()) continue;
      std::string pool_key = model.meta.namespace_name + "/" + model.pool_ref.name;
      auto it = pool_backends_.find(pool_key);
      if (it == pool_backends_.end()) {
        Error(model.meta, "InferenceModel", model.pool_ref.origin.path + ".name",
              model.pool_ref.origin.line,
              fmt::format("InferencePool {} not found in namespace {}", Quote(model.pool_ref.name),
                          Quote(model.meta.namespace_name)));
        continue;
      }
      if (model.model_name.empty()) continue;
      auto [c, inserted] = claimed.emplace(std::make_pair(pool_key, model.model_name), &model);
      if (!inserted) {
        Error(model.meta, "InferenceModel", "spec.modelName", model.meta.source.line,
              fmt::format("model {} is already served in InferencePool {} by {} ({})",
                          Quote(model.model_name), Quote(pool_key),
                          ObjectLabel("InferenceModel", c->second->meta.namespace_name,
                                      c->second->meta.name),
                          Where(c->second->meta.source)));
        continue;
      }
      ModelRoute route;
      route.object = model.meta.Key();
      route.model_name = model.model_name;
      route.criticality = model.criticality;
      route.priority = model.priority;
      route.targets = model.target_models;
      if (route.targets.empty()) route.targets.push_back({model.model_name, 1});
      for (const auto& t : route.targets) route.total_weight += t.weight;
      auto& pool = std::const_pointer_cast<Backend>(it->second)->pool;
      pool.models.push_back(std::move(route));
    }
    for (auto& [key, backend] : pool_backends_) {
      (void)key;
      auto& models = backend->pool.models;
      std::sort(models.begin(), models.end(), [](const ModelRoute& a, const ModelRoute& b) {
        return a.model_name < b.model_name;
      });
    }
  }

  // The pool an object's poolRef names (in the object's namespace), or nullptr after
  // reporting it missing.
  Backend* PoolOf(const ObjectMeta& meta, std::string_view kind, const PoolRef& ref) {
    auto it = pool_backends_.find(meta.namespace_name + "/" + ref.name);
    if (it != pool_backends_.end()) return std::const_pointer_cast<Backend>(it->second).get();
    Error(meta, kind, ref.origin.path + ".name", ref.origin.line,
          fmt::format("InferencePool {} not found in namespace {}", Quote(ref.name),
                      Quote(meta.namespace_name)));
    return nullptr;
  }

  void AttachObjectives() {
    for (const auto& objective : objectives_) {
      const InferenceObjective& o = *objective.second;
      if (o.pool_ref.name.empty() || Incomplete("InferenceObjective", o.meta)) continue;
      Backend* pool = PoolOf(o.meta, "InferenceObjective", o.pool_ref);
      if (!pool) continue;
      pool->pool.objectives.push_back({o.meta.Key(), o.meta.name, o.priority.value_or(0)});
    }
    for (auto& [key, backend] : pool_backends_) {
      (void)key;
      auto& objectives = backend->pool.objectives;
      std::sort(objectives.begin(), objectives.end(),
                [](const ObjectiveRoute& a, const ObjectiveRoute& b) { return a.name < b.name; });
    }
  }

  void AttachRewrites() {
    // Per pool: which rule claimed each exact model name, and the fallback rule.
    std::map<std::pair<std::string, std::string>, std::string> claimed;
    std::map<std::string, std::string> fallback;
    for (const auto& entry : rewrites_) {
      const InferenceModelRewrite& rw = *entry.second;
      if (rw.pool_ref.name.empty() || Incomplete("InferenceModelRewrite", rw.meta)) continue;
      Backend* pool = PoolOf(rw.meta, "InferenceModelRewrite", rw.pool_ref);
      if (!pool) continue;
      for (std::size_t i = 0; i < rw.rules.size(); ++i) {
        const ModelRewriteRule& rule = rw.rules[i];
        if (rule.targets.empty()) continue;
        const std::string where = fmt::format("{} rules[{}]", rw.meta.Key(), i);
        bool clash = false;
        if (rule.models.empty()) {
          auto [it, inserted] = fallback.emplace(pool->id, where);
          if (!inserted) {
            Error(rw.meta, "InferenceModelRewrite", rule.origin.path + ".matches", rule.origin.line,
                  fmt::format("InferencePool {} already has a rule for every other model ({})",
                              Quote(pool->id), it->second));
            clash = true;
          }
        }
        for (const auto& model : rule.models) {
          auto [it, inserted] = claimed.emplace(std::make_pair(pool->id, model), where);
          if (!inserted) {
            Error(rw.meta, "InferenceModelRewrite", rule.origin.path + ".matches", rule.origin.line,
                  fmt::format("model {} is already rewritten in InferencePool {} by {}",
                              Quote(model), Quote(pool->id), it->second));
            clash = true;
          }
        }
        if (clash) continue;
        RewriteRoute route;
        route.object = rw.meta.Key();
        route.rule = i;
        route.models = rule.models;
        for (const auto& t : rule.targets) {
          route.targets.push_back({t.model, t.weight});
          route.total_weight += t.weight;
        }
        pool->pool.rewrites.push_back(std::move(route));
      }
    }
  }

  // The backend a reference names, or nullptr after reporting why not.
  std::shared_ptr<const Backend> ResolveBackend(const BackendRef& ref, const ObjectMeta& owner,
                                                std::string_view owner_kind) {
    std::string key = ref.namespace_name + "/" + ref.name;
    if (ref.kind == BackendKind::kInferencePool) {
      auto it = pool_backends_.find(key);
      if (it == pool_backends_.end()) {
        Error(owner, owner_kind, ref.origin.path + ".name", ref.origin.line,
              fmt::format("InferencePool {} not found in namespace {}", Quote(ref.name),
                          Quote(ref.namespace_name)));
        return nullptr;
      }
      const auto& ports = it->second->pool.target_ports;
      if (ref.port && !ports.empty() &&
          std::find(ports.begin(), ports.end(), *ref.port) == ports.end() &&
          !Incomplete("InferencePool", pools_[key]->meta)) {
        std::vector<std::string> listed;
        for (auto p : ports) listed.push_back(std::to_string(p));
        Error(owner, owner_kind, ref.origin.path + ".port", ref.origin.line,
              fmt::format("InferencePool {} has no target port {} (target ports: {})", Quote(key),
                          *ref.port, Join(listed)));
        return nullptr;
      }
      return it->second;
    }

    auto sit = services_.find(key);
    if (sit == services_.end()) {
      Error(owner, owner_kind, ref.origin.path + ".name", ref.origin.line,
            fmt::format("Service {} not found in namespace {}", Quote(ref.name),
                        Quote(ref.namespace_name)));
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
        Error(owner, owner_kind, ref.origin.path + ".port", ref.origin.line,
              fmt::format("Service {} has no port {} (ports: {})", Quote(key), ref.port.value_or(0),
                          Join(listed)));
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
  void AddSliceEndpoints(const Service& svc, const ServicePort& port, Backend* b) const {
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

  // The route's hostnames usable on a listener: nullopt when none is (the route does not
  // attach there), empty when any host matches.
  static std::optional<std::vector<std::string>> IntersectHostnames(
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

  RouteRule MakeRule(const HTTPRoute& route, std::size_t index) {
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
      if (auto b = ResolveBackend(ref, route.meta, "HTTPRoute")) {
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

  void AttachRoutes() {
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

  void AttachToParent(const HTTPRoute& route, const ParentRef& parent,
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
        Error(
            route.meta, "HTTPRoute", parent.origin.path + ".sectionName", parent.origin.line,
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

  void AttachPoolsByAnnotation() {
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

  // A profile annotation "config/profile" must name an EndpointPickerConfig and one of its
  // profiles; a bare name is a builtin profile, checked by the scheduler.
  void CheckProfiles() {
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

  void Finish() {
    // Manifests meant for a cluster carry no Pods (serve --kubernetes watches them): one
    // note instead of a warning per backend.
    const bool no_pods = objects_.pods.empty();
    bool noted = false;
    for (auto& gw : snap_->gateways) {
      for (auto& l : gw.listeners) {
        std::stable_sort(l.rules.begin(), l.rules.end(),
                         [](const RouteRule& a, const RouteRule& b) {
                           auto key = [](const RouteRule& r) {
                             return std::make_tuple(r.synthesized, !r.route_created.has_value(),
                                                    r.route_created.value_or(0), r.route_namespace,
                                                    r.route_name, r.rule_index);
                           };
                           return key(a) < key(b);
                         });
        for (const auto& rule : l.rules) {
          if (rule.redirect || !rule.unsupported.empty()) continue;  // never proxied
          for (const auto& wb : rule.backends) {
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

  const std::set<std::string>& incomplete_;
  ConfigSnapshot* snap_;
  const LoadedObjects& objects_;
  Diagnostics* diag_;

  std::map<std::string, const Gateway*> gateways_;
  std::map<std::string, const HTTPRoute*> routes_;
  std::map<std::string, const Service*> services_;
  std::map<std::string, const Pod*> pods_;
  std::map<std::string, const InferencePool*> pools_;
  std::map<std::string, const InferenceModel*> models_;
  std::map<std::string, const InferenceObjective*> objectives_;
  std::map<std::string, const InferenceModelRewrite*> rewrites_;
  std::map<std::string, const EndpointPickerConfig*> configs_;
  std::map<std::string, const Secret*> secrets_;

  std::map<std::string, std::size_t> gateway_index_;
  std::map<std::string, std::shared_ptr<Backend>> pool_backends_;
  std::map<std::string, std::shared_ptr<const Backend>> service_backends_;
};

}  // namespace

bool HostnameCovers(std::string_view pattern, std::string_view host) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix &&
           host.front() != '*';
  }
  return pattern == host;
}

void Resolve(const std::set<std::string>& incomplete, ConfigSnapshot* snapshot, Diagnostics* diag) {
  Resolver(incomplete, snapshot, diag).Run();
}

}  // namespace infergate::config
