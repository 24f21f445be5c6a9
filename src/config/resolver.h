// Internal to ig_config: the Resolver behind config::Resolve (resolve.h). One Resolver
// resolves one snapshot: it indexes the loaded objects, builds the Gateways' listeners,
// the pools' and Services' backends, attaches models, objectives, rewrites and routes, and
// reports every unresolvable reference to the Diagnostics. Its steps live in
// resolve_listeners.cc, resolve_backends.cc, resolve_models.cc and resolve_routes.cc;
// resolve.cc runs them. Not thread-safe; used once, on the loading thread.
#pragma once

#include <fmt/format.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/decode.h"
#include "config/resolve.h"
#include "config/snapshot.h"

namespace infergate::config::resolve_internal {

// "file:line (document n)".
std::string Where(const SourceLocation& s);
// "a, b, c", or "none".
std::string Join(const std::vector<std::string>& items);
// "ip:port", bracketed for IPv6.
std::string EndpointId(const std::string& ip, int port);
bool IsWildcardAddress(std::string_view a);

class Resolver {
 public:
  Resolver(const std::set<std::string>& incomplete, ConfigSnapshot* snapshot, Diagnostics* diag)
      : incomplete_(incomplete), snap_(snapshot), objects_(snapshot->objects), diag_(diag) {}

  void Run();

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

  ResolvedGateway* FindGateway(const std::string& key) {
    auto it = gateway_index_.find(key);
    return it == gateway_index_.end() ? nullptr : &snap_->gateways[it->second];
  }

  // resolve.cc
  void IndexObjects();
  void CheckProfiles();
  void Finish();

  // resolve_listeners.cc
  // Whether an object of (from_group, from_kind) in namespace from_ns may refer to the
  // object (to_group, to_kind) to_ns/to_name: always within one namespace; across
  // namespaces when a ReferenceGrant in to_ns allows it.
  bool ReferencePermitted(std::string_view from_group, std::string_view from_kind,
                          const std::string& from_ns, std::string_view to_group,
                          std::string_view to_kind, const std::string& to_ns,
                          const std::string& to_name) const;
  // Why such a reference is refused, for messages.
  static std::string NotPermittedMessage(std::string_view from_kind, const std::string& from_ns,
                                         std::string_view to_kind, const std::string& to_ns,
                                         const std::string& to_name);
  void BuildGateways();
  void ResolveCertificates(const Gateway& gw, const Listener& l, ResolvedListener* listener);
  template <class Policy>
  std::vector<std::pair<ResolvedGateway*, ResolvedListener*>> PolicyTargets(const Policy& policy,
                                                                            std::string_view kind);
  void ApplyPolicies();

  // resolve_backends.cc
  // Pods of namespace ns that carry every label of selector and satisfy every expression.
  std::vector<const Pod*> SelectPods(const std::string& ns, const Labels& selector,
                                     const std::vector<LabelRequirement>& expressions = {}) const;
  static std::string Unroutable(const Pod& pod);
  static void SortEndpoints(Backend* b);
  static Endpoint MakeEndpoint(const Pod& pod, int port);
  void BuildPools();
  std::shared_ptr<const Backend> ResolveBackend(const BackendRef& ref, const ObjectMeta& owner,
                                                std::string_view owner_kind,
                                                std::string* unresolved = nullptr,
                                                std::string* reason = nullptr);
  void AddSliceEndpoints(const Service& svc, const ServicePort& port, Backend* b) const;

  // resolve_models.cc
  void AttachModels();
  Backend* PoolOf(const ObjectMeta& meta, std::string_view kind, const PoolRef& ref);
  void AttachObjectives();
  void AttachRewrites();

  // resolve_routes.cc
  static std::optional<std::vector<std::string>> IntersectHostnames(
      const std::string& listener_host, const std::vector<std::string>& route_hosts);
  RouteRule MakeRule(const HTTPRoute& route, std::size_t index);
  void AttachRoutes();
  void AttachToParent(const HTTPRoute& route, const ParentRef& parent,
                      const std::vector<RouteRule>& rules,
                      std::set<const ResolvedListener*>* attached);
  void AttachPoolsByAnnotation();

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

}  // namespace infergate::config::resolve_internal
