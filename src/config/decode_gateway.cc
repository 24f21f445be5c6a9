// Gateway API objects (Gateway, HTTPRoute, ReferenceGrant; an HTTPRoute's rules are in
// decode_http_route_rule.cc), Secrets and the Envoy Gateway policies.
#include <fmt/format.h>

#include <map>

#include "config/decode.h"

namespace infergate::config {
namespace {

std::vector<PolicyTargetRef> DecodePolicyTargets(const YamlField& spec) {
  std::vector<PolicyTargetRef> targets;
  auto decode = [&](const YamlField& t) {
    if (!t.ExpectMap()) return;
    PolicyTargetRef ref;
    ref.origin = {t.path(), t.line()};
    ref.group = t["group"].String().value_or("");
    auto kind = t["kind"].RequiredString();
    auto name = t["name"].RequiredString();
    if (!kind || !name) return;
    ref.kind = *kind;
    ref.name = *name;
    ref.section_name = t["sectionName"].String().value_or("");
    targets.push_back(std::move(ref));
  };
  YamlField single = spec["targetRef"];
  if (single.present()) decode(single);
  spec["targetRefs"].ForEach(decode);
  if (!single.present() && !spec["targetRefs"].present()) {
    spec["targetRefs"].Error("is required (or targetRef)");
  }
  return targets;
}

YamlField RequiredSpec(const YamlField& root) {
  YamlField spec = root["spec"];
  if (!spec.present()) {
    spec.Error("is required");
  } else {
    spec.ExpectMap();
  }
  return spec;
}

template <class T>
void Store(ObjectContext* ctx, DecodeSink* sink, std::string_view kind, bool named, T&& object,
           std::vector<std::decay_t<T>>* list) {
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey(kind, object.meta));
  list->push_back(std::forward<T>(object));
}

}  // namespace

YamlField Annotation(const YamlField& root, std::string_view key) {
  return root["metadata"]["annotations"].Child(key, fmt::format("[\"{}\"]", key));
}

void DecodeGateway(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  Gateway gw;
  bool named = DecodeMeta(root, "Gateway", ctx, &gw.meta);
  YamlField bind = Annotation(root, kBindAddressAnnotation);
  if (auto addr = bind.String()) {
    if (ValidateIpAddress(bind, *addr)) gw.bind_address = *addr;
  }
  YamlField spec = RequiredSpec(root);
  gw.gateway_class = spec["gatewayClassName"].String().value_or("");
  YamlField listeners = spec["listeners"];
  if (!listeners.present()) {
    if (spec.present()) listeners.Error("is required");
  } else if (listeners.IsSequence() && listeners.size() == 0) {
    listeners.Error("must list at least one listener");
  }
  std::map<std::string, std::string> names;  // name -> path
  listeners.ForEach([&](const YamlField& l) {
    if (!l.ExpectMap()) return;
    Listener listener;
    listener.origin = {l.path(), l.line()};
    if (auto name = l["name"].RequiredString(); name && ValidateObjectName(l["name"], *name)) {
      listener.name = *name;
      auto [it, inserted] = names.emplace(*name, l.path());
      if (!inserted) {
        l["name"].Error(
            fmt::format("listener name {} is already used by {}", Quote(*name), it->second));
      }
    }
    if (auto port = l["port"].RequiredInteger(0, 65535)) listener.port = static_cast<int>(*port);
    if (auto protocol = l["protocol"].RequiredString()) {
      listener.protocol = *protocol;
      if (*protocol != "HTTP" && *protocol != "HTTPS") {
        listener.unsupported =
            fmt::format("protocol {} is not supported (HTTP and HTTPS are)", *protocol);
        l["protocol"].Warning(listener.unsupported + "; the listener is not served");
      }
    }
    if (auto hostname = l["hostname"].String()) {
      if (ValidateHostname(l["hostname"], *hostname)) listener.hostname = ToLower(*hostname);
    }
    YamlField tls = l["tls"];
    if (listener.protocol == "HTTPS") {
      if (!tls.present()) {
        tls.Error("is required for an HTTPS listener");
      } else if (tls.ExpectMap()) {
        auto mode = tls["mode"].OneOf({"Terminate", "Passthrough"});
        if (mode == "Passthrough") {
          listener.unsupported = "TLS mode Passthrough is not supported (Terminate is)";
          tls["mode"].Warning(listener.unsupported + "; the listener is not served");
        }
        YamlField refs = tls["certificateRefs"];
        refs.ForEach([&](const YamlField& c) {
          if (!c.ExpectMap()) return;
          std::string group = c["group"].String().value_or("");
          std::string kind = c["kind"].String().value_or("Secret");
          if ((!group.empty() && group != "core") || kind != "Secret") {
            c["kind"].Error(fmt::format("must be a core Secret, got {}/{}",
                                        group.empty() ? "core" : group, kind));
            return;
          }
          CertificateRef ref;
          ref.origin = {c.path(), c.line()};
          auto name = c["name"].RequiredString();
          if (!name || !ValidateObjectName(c["name"], *name)) return;
          ref.name = *name;
          ref.namespace_name = gw.meta.namespace_name;
          if (auto ns = c["namespace"].String()) {
            if (!ValidateObjectName(c["namespace"], *ns)) return;
            ref.namespace_name = *ns;
          }
          listener.certificate_refs.push_back(std::move(ref));
        });
        if (mode != "Passthrough" && (!refs.IsSequence() || refs.size() == 0)) {
          refs.Error("must name at least one Secret for TLS mode Terminate");
        }
      }
    } else if (tls.present() && listener.unsupported.empty()) {
      tls.Error(fmt::format("is only allowed on HTTPS listeners, not {}", listener.protocol));
    }
    // Listeners share a port only as HTTPS listeners with different hostnames (the
    // connection's SNI name picks one).
    if (listener.port != 0) {
      for (const auto& other : gw.listeners) {
        if (other.port != listener.port) continue;
        bool shared_ok = listener.protocol == "HTTPS" && other.protocol == "HTTPS" &&
                         other.hostname != listener.hostname;
        if (!shared_ok) {
          l["port"].Error(fmt::format(
              "port {} is already used by listener {} (listeners share a port only as HTTPS "
              "listeners with different hostnames)",
              listener.port, Quote(other.name)));
          break;
        }
      }
    }
    YamlField from = l["allowedRoutes"]["namespaces"]["from"];
    if (auto f = from.OneOf({"Same", "All", "Selector"})) {
      if (*f == "Selector") from.Error("Selector is not supported; use Same or All");
      listener.routes_from_all_namespaces = *f == "All";
    }
    gw.listeners.push_back(std::move(listener));
  });
  Store(ctx, sink, "Gateway", named, std::move(gw), &sink->objects->gateways);
}

void DecodeHTTPRoute(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  HTTPRoute route;
  bool named = DecodeMeta(root, "HTTPRoute", ctx, &route.meta);
  YamlField spec = RequiredSpec(root);

  YamlField parents = spec["parentRefs"];
  parents.ForEach([&](const YamlField& p) {
    if (!p.ExpectMap()) return;
    ParentRef parent;
    parent.origin = {p.path(), p.line()};
    std::string group = p["group"].String().value_or(std::string(kGatewayApiGroup));
    std::string kind = p["kind"].String().value_or("Gateway");
    if (group != kGatewayApiGroup || kind != "Gateway") {
      p["kind"].Error(fmt::format("only Gateway parents ({}) are supported, got {}/{}",
                                  kGatewayApiGroup, group, kind));
      return;
    }
    auto name = p["name"].RequiredString();
    if (!name || !ValidateObjectName(p["name"], *name)) return;
    parent.name = *name;
    parent.namespace_name = route.meta.namespace_name;
    if (auto ns = p["namespace"].String()) {
      if (!ValidateObjectName(p["namespace"], *ns)) return;
      parent.namespace_name = *ns;
    }
    parent.section_name = p["sectionName"].String().value_or("");
    if (auto port = p["port"].Integer(1, 65535)) parent.port = static_cast<int>(*port);
    route.parents.push_back(std::move(parent));
  });
  if (!parents.present() || (parents.IsSequence() && parents.size() == 0)) {
    parents.Warning("no parentRefs: the route is not attached to any Gateway");
  }

  spec["hostnames"].ForEach([&](const YamlField& h) {
    if (auto hostname = h.String()) {
      if (ValidateHostname(h, *hostname)) route.hostnames.push_back(ToLower(*hostname));
    }
  });

  YamlField rules = spec["rules"];
  rules.ForEach(
      [&](const YamlField& r) { route.rules.push_back(DecodeHTTPRouteRule(r, route.meta)); });
  if (route.rules.empty()) {
    route.rules.emplace_back();
    route.rules.back().matches.emplace_back();
  }
  Store(ctx, sink, "HTTPRoute", named, std::move(route), &sink->objects->routes);
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  int digits = 0;
  int padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;  // folded YAML scalars
    if (c == '=') {
      ++padding;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding > 0) return std::nullopt;  // a digit after padding, or not base64
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    ++digits;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Complete groups of four, or an unpadded tail of 2 or 3 digits; never a lone digit.
  if (digits % 4 == 1 || padding > 2 || (padding > 0 && (digits + padding) % 4 != 0)) {
    return std::nullopt;
  }
  return out;
}

void DecodeSecret(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  Secret secret;
  bool named = DecodeMeta(root, "Secret", ctx, &secret.meta);
  secret.type = root["type"].String().value_or("Opaque");
  if (secret.type == "kubernetes.io/tls") {
    auto read = [&](std::string_view key, std::string* out) {
      const std::string segment = fmt::format("[\"{}\"]", key);
      YamlField text = root["stringData"].Child(key, segment);
      if (auto v = text.String()) {
        *out = *v;
        return;
      }
      YamlField data = root["data"].Child(key, segment);
      if (auto v = data.String()) {
        if (auto decoded = DecodeBase64(*v)) {
          *out = std::move(*decoded);
        } else {
          data.Error("must be base64 (the Secret's data values are base64-encoded)");
        }
      } else if (!data.present()) {
        data.Error("is required for a Secret of type kubernetes.io/tls");
      }
    };
    read("tls.crt", &secret.tls_crt);
    read("tls.key", &secret.tls_key);
  }
  Store(ctx, sink, "Secret", named, std::move(secret), &sink->objects->secrets);
}

void DecodeReferenceGrant(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  ReferenceGrant grant;
  bool named = DecodeMeta(root, "ReferenceGrant", ctx, &grant.meta);
  YamlField spec = RequiredSpec(root);
  // The group is required but may be "" (the core group; "core" is read as that too).
  auto group_of = [](const YamlField& entry) -> std::optional<std::string> {
    YamlField group = entry["group"];
    if (!group.present()) {
      group.Error("is required (\"\" for the core group)");
      return std::nullopt;
    }
    auto value = group.String();
    if (!value) return std::nullopt;
    return *value == "core" ? std::string() : *value;
  };
  auto require_entries = [](const YamlField& list) {
    if (!list.present()) {
      list.Error("is required");
    } else if (list.IsSequence() && list.size() == 0) {
      list.Error("must have at least one entry");
    }
  };
  YamlField from = spec["from"];
  require_entries(from);
  from.ForEach([&](const YamlField& f) {
    if (!f.ExpectMap()) return;
    auto group = group_of(f);
    auto kind = f["kind"].RequiredString();
    auto ns = f["namespace"].RequiredString();
    if (ns && !ValidateObjectName(f["namespace"], *ns)) ns.reset();
    if (!group || !kind || !ns) return;
    grant.from.push_back({*group, *kind, *ns});
  });
  YamlField to = spec["to"];
  require_entries(to);
  to.ForEach([&](const YamlField& t) {
    if (!t.ExpectMap()) return;
    auto group = group_of(t);
    auto kind = t["kind"].RequiredString();
    std::string name;
    if (auto n = t["name"].String()) {
      if (!ValidateObjectName(t["name"], *n)) return;
      name = *n;
    }
    if (!group || !kind) return;
    grant.to.push_back({*group, *kind, name});
  });
  Store(ctx, sink, "ReferenceGrant", named, std::move(grant), &sink->objects->reference_grants);
}

void DecodeBackendTrafficPolicy(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  BackendTrafficPolicy policy;
  bool named = DecodeMeta(root, "BackendTrafficPolicy", ctx, &policy.meta);
  YamlField spec = RequiredSpec(root);
  policy.targets = DecodePolicyTargets(spec);
  policy.request_timeout = spec["timeout"]["http"]["requestTimeout"].Duration();
  Store(ctx, sink, "BackendTrafficPolicy", named, std::move(policy),
        &sink->objects->backend_policies);
}

void DecodeClientTrafficPolicy(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  ClientTrafficPolicy policy;
  bool named = DecodeMeta(root, "ClientTrafficPolicy", ctx, &policy.meta);
  YamlField spec = RequiredSpec(root);
  policy.targets = DecodePolicyTargets(spec);
  YamlField limit = spec["connection"]["bufferLimit"];
  policy.buffer_limit = limit.Quantity();
  if (policy.buffer_limit && *policy.buffer_limit == 0) {
    limit.Error("must be greater than 0");
    policy.buffer_limit.reset();
  }
  Store(ctx, sink, "ClientTrafficPolicy", named, std::move(policy),
        &sink->objects->client_policies);
}

}  // namespace infergate::config
