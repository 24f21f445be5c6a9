#include "kube/status.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace infergate::kube {
namespace {

using json = nlohmann::json;

constexpr std::string_view kGatewayGroup = "gateway.networking.k8s.io";

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t Generation(const json& obj) {
  const json& meta = obj.value("metadata", json::object());
  auto it = meta.find("generation");
  return it != meta.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

std::string Ns(const json& obj) {
  std::string ns = Str(obj.value("metadata", json::object()), "namespace");
  return ns.empty() ? "default" : ns;
}
std::string Name(const json& obj) { return Str(obj.value("metadata", json::object()), "name"); }

// The problem text without the "source:line: document 1: Kind/name: " prefix.
std::string Bare(const std::string& error) {
  auto pos = error.find("document 1: ");
  std::string rest = pos == std::string::npos ? error : error.substr(pos + 12);
  // "Kind/name: " or "Kind/ns/name: "
  if (auto colon = rest.find(": ");
      colon != std::string::npos && rest.substr(0, colon).find(' ') == std::string::npos) {
    rest = rest.substr(colon + 2);
  }
  return rest;
}

std::string JoinErrors(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "; ";
    out += Bare(e);
  }
  if (out.size() > 1000) out = out.substr(0, 1000) + "...";
  return out;
}

class ConditionWriter {
 public:
  ConditionWriter(const json& previous, std::int64_t generation, std::string now)
      : previous_(previous), generation_(generation), now_(std::move(now)) {}
  json Make(std::string_view type, bool status, std::string_view reason,
            std::string_view message) const {
    std::string s = status ? "True" : "False";
    std::string when = now_;
    if (previous_.is_array()) {
      for (const auto& c : previous_) {
        if (Str(c, "type") == type && Str(c, "status") == s &&
            !Str(c, "lastTransitionTime").empty()) {
          when = Str(c, "lastTransitionTime");
        }
      }
    }
    return json{{"type", type},
                {"status", s},
                {"reason", reason},
                {"message", message},
                {"observedGeneration", generation_},
                {"lastTransitionTime", when}};
  }

 private:
  const json& previous_;
  std::int64_t generation_;
  std::string now_;
};

const json& Field(const json& obj, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

const std::vector<std::string>* RejectedErrors(const StatusInputs& in, const std::string& source) {
  for (const auto& r : in.rejected) {
    if (r.name == source) return &r.errors;
  }
  return nullptr;
}

bool Mentions(const std::vector<std::string>& errors, std::string_view a, std::string_view b) {
  for (const auto& e : errors) {
    if (e.find(a) != std::string::npos && e.find(b) != std::string::npos) return true;
  }
  return false;
}

// The parentRefs of a route naming a Gateway (defaults applied), as JSON and as ns/name.
struct RouteParent {
  json ref;
  std::string gateway;  // "ns/name"
  std::string section;
};

std::vector<RouteParent> RouteParents(const json& route) {
  std::vector<RouteParent> out;
  const json& refs = Field(route, {"spec", "parentRefs"});
  if (!refs.is_array()) return out;
  for (const auto& r : refs) {
    if (!r.is_object()) continue;
    std::string group = r.contains("group") ? Str(r, "group") : std::string(kGatewayGroup);
    std::string kind = r.contains("kind") ? Str(r, "kind") : "Gateway";
    if (group != kGatewayGroup || kind != "Gateway") continue;
    RouteParent p;
    std::string ns = Str(r, "namespace");
    if (ns.empty()) ns = Ns(route);
    p.gateway = ns + "/" + Str(r, "name");
    p.section = Str(r, "sectionName");
    p.ref = json{{"group", group}, {"kind", kind}, {"namespace", ns}, {"name", Str(r, "name")}};
    if (!p.section.empty()) p.ref["sectionName"] = p.section;
    if (r.contains("port")) p.ref["port"] = r["port"];
    out.push_back(std::move(p));
  }
  return out;
}

void Push(std::vector<StatusUpdate>* out, const json& obj, json status) {
  // Only what changed is written.
  const json& current = obj.value("status", json::object());
  bool same = current.is_object();
  if (same) {
    for (auto it = status.begin(); it != status.end(); ++it) {
      auto c = current.find(it.key());
      if (c == current.end() || *c != it.value()) {
        same = false;
        break;
      }
    }
  }
  if (same) return;
  out->push_back({Str(obj, "kind"), Str(obj, "apiVersion"), Ns(obj), Name(obj), std::move(status)});
}

}  // namespace

std::vector<StatusUpdate> ComputeStatusUpdates(const StatusInputs& in) {
  std::vector<StatusUpdate> out;
  std::set<std::string> ours;
  for (const auto& g : in.gateways) ours.insert(Ns(g.object) + "/" + Name(g.object));

  // Which routes attached where, and which pools each Gateway sends to, from the snapshot.
  std::map<std::string, std::set<std::string>> route_gateways;  // route -> gateways
  std::map<std::string, std::set<std::string>> pool_gateways;   // pool -> gateways
  // route -> why its unresolved backendRefs did not resolve (their requests get 500)
  std::map<std::string, std::vector<std::string>> route_unresolved;
  // routes with a backendRef into another namespace that no ReferenceGrant opens
  std::set<std::string> route_not_permitted;
  std::map<std::string, std::map<std::string, std::set<std::string>>> listener_routes;
  if (in.snapshot) {
    for (const auto& gw : in.snapshot->gateways) {
      for (const auto& l : gw.listeners) {
        for (const auto& rule : l.rules) {
          if (!rule.synthesized) {
            route_gateways[rule.route].insert(gw.id);
            listener_routes[gw.id][l.name].insert(rule.route);
          }
          for (std::size_t i = 0; i < rule.unresolved_backends.size(); ++i) {
            const auto& why = rule.unresolved_backends[i];
            auto& list = route_unresolved[rule.route];
            if (std::find(list.begin(), list.end(), why) == list.end()) list.push_back(why);
            if (i < rule.unresolved_reasons.size() &&
                rule.unresolved_reasons[i] == config::kRefNotPermitted) {
              route_not_permitted.insert(rule.route);
            }
          }
          for (const auto& wb : rule.backends) {
            if (wb.backend && wb.backend->kind == config::BackendKind::kInferencePool) {
              pool_gateways[wb.backend->id].insert(gw.id);
            }
          }
        }
      }
    }
  }

  // ---------------------------------------------------------------- Gateways
  for (const auto& g : in.gateways) {
    const json& obj = g.object;
    std::string key = Ns(obj) + "/" + Name(obj);
    const json& prev = Field(obj, {"status", "conditions"});
    ConditionWriter cw(prev, Generation(obj), in.now);
    json status = json::object();
    json addresses = json::array();
    for (const auto& a : in.addresses) {
      bool ip = a.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
                (a.find('.') != std::string::npos || a.find(':') != std::string::npos);
      addresses.push_back(json{{"type", ip ? "IPAddress" : "Hostname"}, {"value", a}});
    }
    status["addresses"] = addresses;
    const auto* errors = RejectedErrors(in, g.source);
    const config::ResolvedGateway* resolved =
        in.snapshot ? in.snapshot->FindGateway(Ns(obj), Name(obj)) : nullptr;
    json listeners = json::array();
    if (errors || !resolved) {
      std::string msg =
          errors ? JoinErrors(*errors) : "the Gateway is not part of the configuration";
      status["conditions"] = json::array({cw.Make("Accepted", false, "Invalid", msg),
                                          cw.Make("Programmed", false, "Invalid", msg)});
    } else {
      bool programmed = in.apply_error.empty();
      status["conditions"] =
          json::array({cw.Make("Accepted", true, "Accepted", "accepted by " + in.controller_name),
                       programmed ? cw.Make("Programmed", true, "Programmed", "serving")
                                  : cw.Make("Programmed", false, "Invalid", in.apply_error)});
      const json& prev_listeners = Field(obj, {"status", "listeners"});
      for (const auto& l : resolved->listeners) {
        json lprev = json::array();
        if (prev_listeners.is_array()) {
          for (const auto& pl : prev_listeners) {
            if (Str(pl, "name") == l.name && pl.contains("conditions")) lprev = pl["conditions"];
          }
        }
        ConditionWriter lw(lprev, Generation(obj), in.now);
        auto attached = listener_routes[key][l.name].size();
        // A certificateRef that did not resolve (missing, not TLS, or in another namespace
        // without a ReferenceGrant): the listener is not served.
        const bool refs_ok = l.refs_reason.empty();
        json programmed_condition = !refs_ok ? lw.Make("Programmed", false, "Invalid", l.not_served)
                                    : programmed
                                        ? lw.Make("Programmed", true, "Programmed", "")
                                        : lw.Make("Programmed", false, "Invalid", in.apply_error);
        listeners.push_back(json{
            {"name", l.name},
            {"attachedRoutes", attached},
            {"supportedKinds",
             json::array({json{{"group", kGatewayGroup}, {"kind", "HTTPRoute"}}})},
            {"conditions",
             json::array({lw.Make("Accepted", true, "Accepted", ""), programmed_condition,
                          refs_ok ? lw.Make("ResolvedRefs", true, "ResolvedRefs", "")
                                  : lw.Make("ResolvedRefs", false, l.refs_reason, l.not_served),
                          lw.Make("Conflicted", false, "NoConflicts", "")})}});
      }
    }
    status["listeners"] = listeners;
    Push(&out, obj, std::move(status));
  }

  // ---------------------------------------------------------------- HTTPRoutes
  for (const auto& r : in.routes) {
    const json& obj = r.object;
    std::string key = Ns(obj) + "/" + Name(obj);
    const auto* errors = RejectedErrors(in, r.source);
    json parents = json::array();
    const json& prev_parents = Field(obj, {"status", "parents"});
    if (prev_parents.is_array()) {
      for (const auto& p : prev_parents) {
        if (Str(p, "controllerName") != in.controller_name) parents.push_back(p);
      }
    }
    for (const auto& parent : RouteParents(obj)) {
      if (!ours.count(parent.gateway)) continue;
      json prev = json::array();
      if (prev_parents.is_array()) {
        for (const auto& p : prev_parents) {
          if (Str(p, "controllerName") == in.controller_name &&
              p.value("parentRef", json()) == parent.ref) {
            prev = p.value("conditions", json::array());
          }
        }
      }
      ConditionWriter cw(prev, Generation(obj), in.now);
      json conditions;
      if (errors) {
        std::string msg = JoinErrors(*errors);
        bool backend_missing = Mentions(*errors, "InferencePool", "not found") ||
                               Mentions(*errors, "Service", "not found") ||
                               Mentions(*errors, "has no target port", "") ||
                               Mentions(*errors, "has no port", "");
        bool parent_missing = Mentions(*errors, "parentRefs", "not found");
        bool not_permitted = Mentions(*errors, "no ReferenceGrant", "");
        if (parent_missing) {
          conditions = json::array({cw.Make("Accepted", false, "NoMatchingParent", msg),
                                    cw.Make("ResolvedRefs", true, "ResolvedRefs", "")});
        } else if (not_permitted) {
          conditions = json::array({cw.Make("Accepted", true, "Accepted", ""),
                                    cw.Make("ResolvedRefs", false, "RefNotPermitted", msg)});
        } else if (backend_missing) {
          conditions = json::array({cw.Make("Accepted", true, "Accepted", ""),
                                    cw.Make("ResolvedRefs", false, "BackendNotFound", msg)});
        } else {
          conditions = json::array({cw.Make("Accepted", false, "UnsupportedValue", msg),
                                    cw.Make("ResolvedRefs", true, "ResolvedRefs", "")});
        }
      } else if (route_gateways[key].count(parent.gateway) && route_unresolved.count(key)) {
        // Gateway API: the route is accepted and its rules served; the requests for an
        // invalid backendRef get 500.
        conditions = json::array(
            {cw.Make("Accepted", true, "Accepted", ""),
             cw.Make("ResolvedRefs", false,
                     route_not_permitted.count(key) ? "RefNotPermitted" : "BackendNotFound",
                     JoinErrors(route_unresolved[key]) + " (requests for it get 500)")});
      } else if (route_gateways[key].count(parent.gateway)) {
        conditions = json::array({cw.Make("Accepted", true, "Accepted", ""),
                                  cw.Make("ResolvedRefs", true, "ResolvedRefs", "")});
      } else {
        conditions =
            json::array({cw.Make("Accepted", false, "NotAllowedByListeners",
                                 "no listener of the Gateway accepts the route (sectionName, port, "
                                 "hostnames or allowedRoutes)"),
                         cw.Make("ResolvedRefs", true, "ResolvedRefs", "")});
      }
      parents.push_back(json{{"parentRef", parent.ref},
                             {"controllerName", in.controller_name},
                             {"conditions", conditions}});
    }
    Push(&out, obj, json{{"parents", parents}});
  }

  // ---------------------------------------------------------------- InferencePools
  std::set<std::string> service_keys;
  for (const auto& s : in.services) service_keys.insert(Ns(s.object) + "/" + Name(s.object));
  // Pools that our routes name, for rejected pools (absent from the snapshot).
  std::map<std::string, std::set<std::string>> named_by_routes;
  for (const auto& r : in.routes) {
    const json& rules = Field(r.object, {"spec", "rules"});
    if (!rules.is_array()) continue;
    for (const auto& rule : rules) {
      const json& refs = rule.value("backendRefs", json::array());
      if (!refs.is_array()) continue;
      for (const auto& b : refs) {
        if (Str(b, "kind") != "InferencePool") continue;
        std::string ns = Str(b, "namespace").empty() ? Ns(r.object) : Str(b, "namespace");
        for (const auto& parent : RouteParents(r.object)) {
          if (ours.count(parent.gateway))
            named_by_routes[ns + "/" + Str(b, "name")].insert(parent.gateway);
        }
      }
    }
  }
  for (const auto& p : in.pools) {
    const json& obj = p.object;
    std::string key = Ns(obj) + "/" + Name(obj);
    const auto* errors = RejectedErrors(in, p.source);
    std::set<std::string> gateways = errors ? named_by_routes[key] : pool_gateways[key];
    const bool v1 = Str(obj, "apiVersion").rfind("inference.networking.k8s.io/", 0) == 0;
    const char* list_key = v1 ? "parents" : "parent";
    const json& prev_list = Field(obj, {"status", list_key});
    json parents = json::array();
    auto gateway_of = [](const json& entry) {
      const json& ref = entry.value("parentRef", json::object());
      return (Str(ref, "namespace").empty() ? std::string("default") : Str(ref, "namespace")) +
             "/" + Str(ref, "name");
    };
    if (prev_list.is_array()) {
      for (const auto& e : prev_list) {
        if (!ours.count(gateway_of(e))) parents.push_back(e);  // another controller's
      }
    }
    if (gateways.empty() && (!prev_list.is_array() || prev_list.empty())) continue;
    // The endpoint picker reference (v1 endpointPickerRef, v1alpha2 extensionRef).
    const json& spec = obj.value("spec", json::object());
    json epp = spec.contains("endpointPickerRef") ? spec["endpointPickerRef"]
                                                  : spec.value("extensionRef", json());
    bool epp_missing = false;
    std::string epp_name;
    if (epp.is_object() && (Str(epp, "kind").empty() || Str(epp, "kind") == "Service")) {
      epp_name = Str(epp, "name");
      epp_missing = !epp_name.empty() && !service_keys.count(Ns(obj) + "/" + epp_name);
    }
    for (const auto& gw : gateways) {
      auto slash = gw.find('/');
      json ref = {{"group", kGatewayGroup},
                  {"kind", "Gateway"},
                  {"namespace", gw.substr(0, slash)},
                  {"name", gw.substr(slash + 1)}};
      json prev = json::array();
      if (prev_list.is_array()) {
        for (const auto& e : prev_list) {
          if (gateway_of(e) == gw) prev = e.value("conditions", json::array());
        }
      }
      ConditionWriter cw(prev, Generation(obj), in.now);
      json conditions = json::array();
      if (errors) {
        conditions.push_back(
            cw.Make("Accepted", false, "HTTPRouteNotAccepted", JoinErrors(*errors)));
      } else {
        conditions.push_back(cw.Make("Accepted", true, "Accepted", ""));
      }
      if (epp_missing) {
        conditions.push_back(cw.Make("ResolvedRefs", false, "InvalidExtensionRef",
                                     fmt::format("Service \"{}\" not found", epp_name)));
      } else {
        conditions.push_back(cw.Make("ResolvedRefs", true, "ResolvedRefs", ""));
      }
      json entry = {{"parentRef", ref}, {"conditions", conditions}};
      if (v1) entry["controllerName"] = in.controller_name;
      parents.push_back(std::move(entry));
    }
    Push(&out, obj, json{{list_key, parents}});
  }
  return out;
}

}  // namespace infergate::kube
