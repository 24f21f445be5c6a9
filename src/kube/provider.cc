#include "kube/provider.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "kube/status.h"

namespace infergate::kube {
namespace {

using json = nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string ObjectKey(const json& obj) {
  const json& meta = obj.value("metadata", json::object());
  std::string ns = Str(meta, "namespace");
  return ns.empty() ? Str(meta, "name") : ns + "/" + Str(meta, "name");
}

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Whether a route names one of `gateways` ("ns/name") in its parentRefs.
bool RouteNamesAny(const json& route, const std::set<std::string>& gateways) {
  const json& spec = route.value("spec", json::object());
  auto refs = spec.find("parentRefs");
  if (refs == spec.end() || !refs->is_array()) return false;
  std::string route_ns = Str(route.value("metadata", json::object()), "namespace");
  if (route_ns.empty()) route_ns = "default";
  for (const auto& r : *refs) {
    if (!r.is_object()) continue;
    if (r.contains("kind") && Str(r, "kind") != "Gateway") continue;
    std::string ns = Str(r, "namespace").empty() ? route_ns : Str(r, "namespace");
    if (gateways.count(ns + "/" + Str(r, "name"))) return true;
  }
  return false;
}

}  // namespace

std::vector<ResourceType> WatchedResourceTypes() {
  return {
      {"gateway.networking.k8s.io", "v1", "gatewayclasses", "GatewayClass", false},
      {"gateway.networking.k8s.io", "v1", "gateways", "Gateway", true},
      {"gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", true},
      // Cross-namespace certificateRefs and backendRefs are allowed by these.
      {"gateway.networking.k8s.io", "v1beta1", "referencegrants", "ReferenceGrant", true},
      {"", "v1", "services", "Service", true},
      {"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true},
      {"", "v1", "pods", "Pod", true},
      // The certificates of HTTPS listeners (kubernetes.io/tls Secrets, tls.certificateRefs).
      {"", "v1", "secrets", "Secret", true},
      {"inference.networking.k8s.io", "v1", "inferencepools", "InferencePool", true},
      {"inference.networking.x-k8s.io", "v1alpha2", "inferencepools", "InferencePool", true},
      {"llm-d.ai", "v1alpha2", "inferenceobjectives", "InferenceObjective", true},
      {"inference.networking.x-k8s.io", "v1alpha2", "inferenceobjectives", "InferenceObjective",
       true},
      {"llm-d.ai", "v1alpha2", "inferencemodelrewrites", "InferenceModelRewrite", true},
      {"inference.networking.x-k8s.io", "v1alpha2", "inferencemodels", "InferenceModel", true},
      {"gateway.envoyproxy.io", "v1alpha1", "clienttrafficpolicies", "ClientTrafficPolicy", true},
      {"gateway.envoyproxy.io", "v1alpha1", "backendtrafficpolicies", "BackendTrafficPolicy", true},
  };
}

bool TrimObject(const ResourceType& type, json* o) {
  if (!o->is_object()) return false;
  json& meta = (*o)["metadata"];
  if (!meta.is_object()) return false;
  for (const char* k : {"managedFields", "resourceVersion", "uid", "selfLink", "generation",
                        "ownerReferences", "finalizers", "generateName"}) {
    meta.erase(k);
  }
  if (auto a = meta.find("annotations"); a != meta.end() && a->is_object()) {
    a->erase("kubectl.kubernetes.io/last-applied-configuration");
  }
  if (type.kind == "Pod") {
    // A terminating Pod gets no new requests, whatever its readiness still says.
    if (meta.contains("deletionTimestamp")) return false;
    json spec = json::object();
    json containers = json::array();
    const json& old_spec = o->value("spec", json::object());
    if (auto cs = old_spec.find("containers"); cs != old_spec.end() && cs->is_array()) {
      for (const auto& c : *cs) {
        if (!c.is_object() || !c.contains("ports")) continue;
        json ports = json::array();
        if (c["ports"].is_array()) {
          for (const auto& p : c["ports"]) {
            if (!p.is_object()) continue;
            json port = json::object();
            if (p.contains("name")) port["name"] = p["name"];
            if (p.contains("containerPort")) port["containerPort"] = p["containerPort"];
            ports.push_back(std::move(port));
          }
        }
        containers.push_back(json{{"name", c.value("name", json("c"))}, {"ports", ports}});
      }
    }
    spec["containers"] = containers;
    json status = json::object();
    const json& old_status = o->value("status", json::object());
    for (const char* k : {"podIP", "podIPs", "phase"}) {
      if (old_status.is_object() && old_status.contains(k)) status[k] = old_status[k];
    }
    if (old_status.is_object()) {
      if (auto cs = old_status.find("conditions"); cs != old_status.end() && cs->is_array()) {
        json conditions = json::array();
        for (const auto& c : *cs) {
          if (Str(c, "type") == "Ready") {
            conditions.push_back(json{{"type", "Ready"}, {"status", Str(c, "status")}});
          }
        }
        status["conditions"] = conditions;
      }
    }
    (*o)["spec"] = std::move(spec);
    (*o)["status"] = std::move(status);
  } else {
    o->erase("status");
  }
  return true;
}

Result<std::unique_ptr<KubernetesProvider>> KubernetesProvider::Create(ProviderOptions options) {
  std::unique_ptr<KubernetesProvider> p(new KubernetesProvider(std::move(options)));
  auto client = ApiClient::Create(p->options_.access);
  if (!client.ok()) return client.error();
  p->client_ = std::move(*client);
  return p;
}

KubernetesProvider::~KubernetesProvider() { Stop(); }

void KubernetesProvider::MarkDirty() {
  dirty_ = true;
  cv_.notify_all();
}

void KubernetesProvider::Replace(const Reflector& from, std::vector<json> items) {
  std::map<std::string, Stored> fresh;
  for (auto& item : items) {
    json trimmed = item;
    if (!TrimObject(from.type(), &trimmed)) continue;
    std::string key = ObjectKey(item);
    fresh[key] = Stored{std::move(item), trimmed.dump()};
  }
  std::lock_guard lock(mu_);
  auto& current = objects_[&from];
  bool changed = current.size() != fresh.size();
  for (auto it = fresh.begin(), jt = current.begin(); !changed && it != fresh.end(); ++it, ++jt) {
    changed = it->first != jt->first || it->second.text != jt->second.text;
  }
  current = std::move(fresh);
  synced_.insert(&from);
  ++listed_ok_;
  if (changed) MarkDirty();
  cv_.notify_all();
}

void KubernetesProvider::Upsert(const Reflector& from, json object) {
  json trimmed = object;
  std::string key = ObjectKey(object);
  std::lock_guard lock(mu_);
  auto& current = objects_[&from];
  if (!TrimObject(from.type(), &trimmed)) {
    if (current.erase(key)) MarkDirty();
    return;
  }
  std::string text = trimmed.dump();
  auto it = current.find(key);
  if (it != current.end() && it->second.text == text) {
    it->second.object = std::move(object);  // a status or metadata-only change
    return;
  }
  current[key] = Stored{std::move(object), std::move(text)};
  MarkDirty();
}

void KubernetesProvider::Remove(const Reflector& from, const json& object) {
  std::lock_guard lock(mu_);
  if (objects_[&from].erase(ObjectKey(object))) MarkDirty();
}

void KubernetesProvider::ListFailed(const Reflector& from) {
  std::lock_guard lock(mu_);
  synced_.insert(&from);
  cv_.notify_all();
}

Result<KubernetesProvider::Built> KubernetesProvider::BuildLocked() {
  std::set<std::string> classes;
  std::set<std::string> gateways;
  for (const auto& r : reflectors_) {
    if (r->type().kind != "GatewayClass") continue;
    for (const auto& [key, s] : objects_[r.get()]) {
      if (Str(s.object.value("spec", json::object()), "controllerName") ==
          options_.controller_name) {
        classes.insert(key);
      }
    }
  }
  for (const auto& r : reflectors_) {
    if (r->type().kind != "Gateway") continue;
    for (const auto& [key, s] : objects_[r.get()]) {
      if (classes.count(Str(s.object.value("spec", json::object()), "gatewayClassName"))) {
        gateways.insert(key);
      }
    }
  }
  std::vector<config::ConfigSource> sources;
  for (const auto& r : reflectors_) {
    const std::string& kind = r->type().kind;
    if (kind == "GatewayClass") continue;
    for (const auto& [key, s] : objects_[r.get()]) {
      if (kind == "Gateway" && !gateways.count(key)) continue;
      if (kind == "HTTPRoute" && !RouteNamesAny(s.object, gateways)) continue;
      sources.push_back({"kube:" + r->type().Id() + "/" + key, s.text});
    }
  }
  std::sort(sources.begin(), sources.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  config::LoadOptions lo;
  lo.log_notices = false;
  lo.service_endpoints_from_slices = true;
  lo.unresolved_backends_answer_500 = true;
  auto load = config::LoadConfigSkippingInvalid(std::move(sources), lo);
  if (!load.ok()) return load.error();
  builds_.fetch_add(1);
  std::set<std::string> now;
  for (const auto& r : load->rejected) {
    for (const auto& e : r.errors) {
      now.insert(e);
      if (!reported_.count(e)) spdlog::warn("kubernetes: left out of the configuration: {}", e);
    }
  }
  reported_ = std::move(now);
  return Built{load->snapshot, std::move(load->rejected)};
}

Result<std::shared_ptr<const config::ConfigSnapshot>> KubernetesProvider::Start() {
  for (const auto& type : WatchedResourceTypes()) {
    if (!options_.kinds.empty() && !options_.kinds.count(type.kind)) continue;
    if (!type.namespaced || options_.namespaces.empty()) {
      reflectors_.push_back(
          std::make_unique<Reflector>(client_.get(), type, "", this, options_.reflector));
    } else {
      for (const auto& ns : options_.namespaces) {
        reflectors_.push_back(
            std::make_unique<Reflector>(client_.get(), type, ns, this, options_.reflector));
      }
    }
  }
  spdlog::info("kubernetes: watching {} from {} ({})",
               options_.namespaces.empty()
                   ? std::string("all namespaces")
                   : fmt::format("namespaces {}", fmt::join(options_.namespaces, ", ")),
               client_->access().ServerUrl(), client_->access().description);
  for (auto& r : reflectors_) threads_.emplace_back([r = r.get()] { r->Run(); });
  std::unique_lock lock(mu_);
  bool done = cv_.wait_for(lock, std::chrono::nanoseconds(options_.initial_sync_timeout), [&] {
    return stopping_ || (synced_.size() == reflectors_.size() && listed_ok_ > 0);
  });
  if (stopping_) return Error{"stopped"};
  if (listed_ok_ == 0) {
    return Error{
        fmt::format("kubernetes: nothing could be listed from {} within {:.0f}s (see the "
                    "errors above)",
                    client_->access().ServerUrl(), ToSeconds(options_.initial_sync_timeout))};
  }
  if (!done) {
    spdlog::warn(
        "kubernetes: not every resource could be listed within {:.0f}s; starting with "
        "what is known",
        ToSeconds(options_.initial_sync_timeout));
  }
  dirty_ = false;
  auto built = BuildLocked();
  if (!built.ok()) return built.error();
  first_ = *built;
  return first_.snapshot;
}

void KubernetesProvider::Follow(ApplyFn apply) {
  apply_ = std::move(apply);
  rebuild_thread_ = std::thread([this] { RebuildLoop(); });
}

void KubernetesProvider::RebuildLoop() {
  WriteStatus(first_, "");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait(lock, [&] { return stopping_ || dirty_; });
    if (stopping_) return;
    // Debounce: a burst of changes (a rollout) makes one snapshot.
    cv_.wait_for(lock, std::chrono::nanoseconds(options_.debounce), [&] { return stopping_; });
    if (stopping_) return;
    dirty_ = false;
    auto built = BuildLocked();
    lock.unlock();
    if (!built.ok()) {
      spdlog::error("kubernetes: configuration not built: {}", built.error().message);
    } else {
      Status st = apply_(built->snapshot);
      WriteStatus(*built, st.ok() ? "" : st.error().message);
    }
    lock.lock();
  }
}

void KubernetesProvider::WriteStatus(const Built& built, const std::string& apply_error) {
  if (!options_.write_status) return;
  StatusInputs in;
  in.controller_name = options_.controller_name;
  in.addresses = options_.status_addresses;
  in.now = NowRfc3339();
  in.snapshot = built.snapshot.get();
  in.rejected = built.rejected;
  in.apply_error = apply_error;
  std::map<std::string, const ResourceType*> types;  // "apiVersion kind" -> type
  {
    std::lock_guard lock(mu_);
    std::set<std::string> classes, gateways;
    for (const auto& r : reflectors_) {
      if (r->type().kind != "GatewayClass") continue;
      for (const auto& [key, s] : objects_[r.get()]) {
        if (Str(s.object.value("spec", json::object()), "controllerName") ==
            options_.controller_name)
          classes.insert(key);
      }
    }
    for (const auto& r : reflectors_) {
      const ResourceType& t = r->type();
      types[t.ApiVersion() + " " + t.kind] = &t;
      for (const auto& [key, s] : objects_[r.get()]) {
        WatchedObject w{"kube:" + t.Id() + "/" + key, s.object};
        if (t.kind == "Gateway") {
          if (classes.count(Str(s.object.value("spec", json::object()), "gatewayClassName"))) {
            gateways.insert(key);
            in.gateways.push_back(std::move(w));
          }
        } else if (t.kind == "HTTPRoute") {
          in.routes.push_back(std::move(w));
        } else if (t.kind == "InferencePool") {
          in.pools.push_back(std::move(w));
        } else if (t.kind == "Service") {
          in.services.push_back(std::move(w));
        }
      }
    }
    std::erase_if(in.routes,
                  [&](const WatchedObject& w) { return !RouteNamesAny(w.object, gateways); });
  }
  for (const auto& u : ComputeStatusUpdates(in)) {
    auto t = types.find(u.api_version + " " + u.kind);
    if (t == types.end()) continue;
    std::string path = t->second->ObjectPath(u.namespace_name, u.name) + "/status";
    json body = {{"status", u.status}};
    ApiResponse r = client_->Request("PATCH", path, body.dump(), "application/merge-patch+json");
    if (client_->shut_down()) return;  // stopping: the rest is written by the next run
    if (r.status == 200 || r.status == 201) {
      spdlog::debug("kubernetes: status of {} {}/{} written", u.kind, u.namespace_name, u.name);
      std::lock_guard lock(mu_);
      status_denied_.erase(t->second->Id());
    } else if (r.status == 401 || r.status == 403) {
      std::lock_guard lock(mu_);
      if (status_denied_.insert(t->second->Id()).second) {
        ResourceType status_type = *t->second;
        status_type.plural += "/status";
        spdlog::error(
            "kubernetes: cannot patch the status of {} {}/{}: {} ({}). The service "
            "account needs the RBAC rule {}",
            u.kind, u.namespace_name, u.name, r.status, StatusMessage(r.body),
            RbacRule(status_type, "\"patch\", \"update\""));
      }
    } else if (r.status != 404) {
      spdlog::warn(
          "kubernetes: patch status of {} {}/{}: {}", u.kind, u.namespace_name, u.name,
          r.status == 0 ? r.error : fmt::format("HTTP {}: {}", r.status, StatusMessage(r.body)));
    }
  }
}

void KubernetesProvider::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty() && !rebuild_thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  // Every request in flight ends now (a LIST or status PATCH waiting for a server that
  // does not answer, a TLS handshake, a watch), so the joins below do not wait for the
  // 30 s read timeout.
  if (client_) client_->Shutdown();
  for (auto& r : reflectors_) r->Stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
}

}  // namespace infergate::kube
