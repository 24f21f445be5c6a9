// Core objects: Service, Pod and EndpointSlice.
#include <fmt/format.h>

#include <map>

#include "config/decode.h"

namespace infergate::config {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// IANA service name, as Kubernetes requires of named ports: at most 15 characters of
// a-z, 0-9 and '-', at least one letter, no leading, trailing or double '-'.
bool IsPortName(std::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-' ||
      s.find("--") != std::string_view::npos) {
    return false;
  }
  bool letter = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (!((c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return letter;
}

}  // namespace

void DecodeService(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  Service svc;
  bool named = DecodeMeta(root, "Service", ctx, &svc.meta);
  YamlField spec = root["spec"];
  if (!spec.present()) {
    spec.Error("is required");
  } else {
    spec.ExpectMap();
  }
  YamlField selector = spec["selector"];
  if (auto labels = selector.StringMap(); labels && !labels->empty()) {
    svc.selector = std::move(*labels);
  } else if (!selector.present() || (labels && labels->empty())) {
    selector.Warning("the Service has no selector, so it has no endpoints");
  }

  YamlField ports = spec["ports"];
  if (!ports.present()) ports.Error("is required");
  std::map<int, std::string> numbers;
  std::map<std::string, std::string> names;
  const bool several = ports.size() > 1;
  ports.ForEach([&](const YamlField& p) {
    if (!p.ExpectMap()) return;
    ServicePort port;
    if (auto name = p["name"].String()) {
      port.name = *name;
      if (!IsPortName(*name) && !ValidateObjectName(p["name"], *name)) return;
      auto [it, inserted] = names.emplace(*name, p.path());
      if (!inserted) {
        p["name"].Error(
            fmt::format("port name {} is already used by {}", Quote(*name), it->second));
      }
    } else if (several) {
      p["name"].Error("is required when the Service has more than one port");
    }
    auto number = p["port"].RequiredInteger(1, 65535);
    if (!number) return;
    port.port = static_cast<int>(*number);
    auto [it, inserted] = numbers.emplace(port.port, p.path());
    if (!inserted) {
      p["port"].Error(fmt::format("port {} is already defined by {}", port.port, it->second));
    }
    port.target_port = port.port;
    YamlField target = p["targetPort"];
    if (auto t = target.String()) {
      if (AllDigits(*t)) {
        auto n = target.Integer(1, 65535);
        if (!n) return;
        port.target_port = static_cast<int>(*n);
      } else if (IsPortName(*t)) {
        port.target_port = 0;
        port.target_port_name = *t;
      } else {
        target.Error(fmt::format(
            "must be a port number (1..65535) or a container port name, got {}", Quote(*t)));
        return;
      }
    }
    if (auto protocol = p["protocol"].String(); protocol && *protocol != "TCP") {
      p["protocol"].Error(fmt::format("only TCP is supported, got {}", Quote(*protocol)));
    }
    svc.ports.push_back(std::move(port));
  });
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey("Service", svc.meta));
  sink->objects->services.push_back(std::move(svc));
}

void DecodePod(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  Pod pod;
  bool named = DecodeMeta(root, "Pod", ctx, &pod.meta);
  YamlField spec = root["spec"];
  spec["containers"].ForEach([&](const YamlField& c) {
    if (!c.ExpectMap()) return;
    c["ports"].ForEach([&](const YamlField& p) {
      if (!p.ExpectMap()) return;
      ContainerPort port;
      port.name = p["name"].String().value_or("");
      auto number = p["containerPort"].RequiredInteger(1, 65535);
      if (!number) return;
      port.port = static_cast<int>(*number);
      pod.container_ports.push_back(std::move(port));
    });
  });

  YamlField status = root["status"];
  if (status.ExpectMap()) {
    YamlField ip = status["podIP"];
    if (auto v = ip.String(); v && !v->empty()) {
      if (ValidateIpAddress(ip, *v)) pod.ip = *v;
    } else {
      YamlField first = status["podIPs"].Item(0)["ip"];
      if (auto v2 = first.String(); v2 && !v2->empty()) {
        if (ValidateIpAddress(first, *v2)) pod.ip = *v2;
      }
    }
    pod.phase = status["phase"].String().value_or("");
    status["conditions"].ForEach([&](const YamlField& c) {
      if (!c.ExpectMap()) return;
      if (c["type"].String().value_or("") != "Ready") return;
      pod.ready = c["status"].String().value_or("") == "True";
    });
  }
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey("Pod", pod.meta));
  sink->objects->pods.push_back(std::move(pod));
}

void DecodeEndpointSlice(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  EndpointSlice slice;
  bool named = DecodeMeta(root, "EndpointSlice", ctx, &slice.meta);
  if (auto it = slice.meta.labels.find("kubernetes.io/service-name");
      it != slice.meta.labels.end()) {
    slice.service_name = it->second;
  }
  if (auto type = root["addressType"].String(); type && *type != "IPv4" && *type != "IPv6") {
    // FQDN slices name hosts, not addresses: nothing here can be dialled by IP.
    return;
  }
  root["ports"].ForEach([&](const YamlField& p) {
    if (!p.ExpectMap()) return;
    EndpointSlicePort port;
    port.name = p["name"].String().value_or("");
    auto number = p["port"].Integer(1, 65535);
    if (!number) return;
    port.port = static_cast<int>(*number);
    if (auto protocol = p["protocol"].String(); protocol && *protocol != "TCP") return;
    slice.ports.push_back(std::move(port));
  });
  root["endpoints"].ForEach([&](const YamlField& e) {
    if (!e.ExpectMap()) return;
    SliceEndpoint ep;
    e["addresses"].ForEach([&](const YamlField& a) {
      if (auto v = a.String(); v && ValidateIpAddress(a, *v)) ep.addresses.push_back(*v);
    });
    YamlField conditions = e["conditions"];
    if (auto ready = conditions["ready"].String()) ep.ready = *ready == "true";
    if (auto term = conditions["terminating"].String()) ep.terminating = *term == "true";
    YamlField ref = e["targetRef"];
    if (ref["kind"].String().value_or("") == "Pod") {
      ep.pod_name = ref["name"].String().value_or("");
      ep.pod_namespace = ref["namespace"].String().value_or(slice.meta.namespace_name);
    }
    slice.endpoints.push_back(std::move(ep));
  });
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey("EndpointSlice", slice.meta));
  sink->objects->endpoint_slices.push_back(std::move(slice));
}

}  // namespace infergate::config
