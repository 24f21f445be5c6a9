#include "config/report.h"

#include <fmt/format.h>

#include "config/units.h"

namespace infergate::config {
namespace {

using nlohmann::json;

std::string JoinLabels(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}={}", k, v);
  }
  return out;
}

// [{"key", "operator", "values"}], the manifest's form.
json MatchExpressionsJson(const std::vector<LabelRequirement>& expressions) {
  json out = json::array();
  for (const auto& r : expressions) {
    static constexpr const char* kNames[] = {"In", "NotIn", "Exists", "DoesNotExist"};
    out.push_back(
        {{"key", r.key}, {"operator", kNames[static_cast<int>(r.op)]}, {"values", r.values}});
  }
  return out;
}

std::string DescribeTimeout(TimeNs t) { return t == 0 ? "none" : FormatDuration(t); }

std::string DescribeMatch(const RouteMatch& m) {
  std::string out = fmt::format("{} {}", ToString(m.path.type), m.path.value);
  if (!m.method.empty()) out += fmt::format(", method {}", m.method);
  for (const auto& h : m.headers) {
    out += fmt::format(", header {} {} {}", h.name, h.type == ValueMatchType::kExact ? "=" : "~",
                       h.value);
  }
  for (const auto& q : m.query_params) {
    out += fmt::format(", query {} {} {}", q.name, q.type == ValueMatchType::kExact ? "=" : "~",
                       q.value);
  }
  return out;
}

std::string DescribePath(const PathModifier& p) {
  return fmt::format(
      "{} {}",
      p.type == PathModifierType::kReplaceFullPath ? "ReplaceFullPath" : "ReplacePrefixMatch",
      p.value);
}

json HeaderModifierJson(const HeaderModifier& mod) {
  json set = json::array(), add = json::array();
  for (const auto& h : mod.set) set.push_back({{"name", h.name}, {"value", h.value}});
  for (const auto& h : mod.add) add.push_back({{"name", h.name}, {"value", h.value}});
  return {{"set", set}, {"add", add}, {"remove", mod.remove}};
}

json PathJson(const PathModifier& p) {
  return {{"type",
           p.type == PathModifierType::kReplaceFullPath ? "ReplaceFullPath" : "ReplacePrefixMatch"},
          {"value", p.value}};
}

std::string Percent(std::uint64_t part, std::uint64_t total) {
  if (total == 0) return "0%";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(total));
}

void DescribeEndpoints(const Backend& b, const std::string& indent, std::string* out) {
  for (const auto& e : b.endpoints) {
    *out += fmt::format("{}endpoint {}  pod {}/{}  {}\n", indent, e.id, e.pod_namespace, e.pod_name,
                        e.ready ? "ready" : "not ready");
  }
  for (const auto& u : b.unavailable) {
    *out += fmt::format("{}not routable: pod {}: {}\n", indent, u.pod, u.reason);
  }
  if (b.endpoints.empty() && b.unavailable.empty()) {
    *out += fmt::format("{}(no Pod matches the selector)\n", indent);
  }
}

void DescribeRule(const RouteRule& rule, std::string* out) {
  *out += fmt::format("    rule {}{}\n", rule.Id(),
                      rule.synthesized ? " (from the InferencePool's attach-to annotation)" : "");
  if (!rule.hostnames.empty()) {
    std::string hosts;
    for (const auto& h : rule.hostnames) hosts += (hosts.empty() ? "" : ", ") + h;
    *out += fmt::format("      hostnames {}\n", hosts);
  }
  for (const auto& m : rule.matches) *out += fmt::format("      match {}\n", DescribeMatch(m));
  if (rule.timeouts.request) {
    *out += fmt::format("      timeout request {}\n", DescribeTimeout(*rule.timeouts.request));
  }
  if (rule.timeouts.backend_request) {
    *out += fmt::format("      timeout backendRequest {}\n",
                        DescribeTimeout(*rule.timeouts.backend_request));
  }
  if (const auto& mod = rule.request_header_modifier) {
    for (const auto& h : mod->set)
      *out += fmt::format("      set header {}: {}\n", h.name, h.value);
    for (const auto& h : mod->add)
      *out += fmt::format("      add header {}: {}\n", h.name, h.value);
    for (const auto& h : mod->remove) *out += fmt::format("      remove header {}\n", h);
  }
  if (const auto& mod = rule.response_header_modifier) {
    for (const auto& h : mod->set)
      *out += fmt::format("      set response header {}: {}\n", h.name, h.value);
    for (const auto& h : mod->add)
      *out += fmt::format("      add response header {}: {}\n", h.name, h.value);
    for (const auto& h : mod->remove) *out += fmt::format("      remove response header {}\n", h);
  }
  if (const auto& rw = rule.url_rewrite) {
    if (rw->hostname) *out += fmt::format("      rewrite host {}\n", *rw->hostname);
    if (rw->path) *out += fmt::format("      rewrite path {}\n", DescribePath(*rw->path));
  }
  if (const auto& rd = rule.redirect) {
    std::string to;
    if (rd->scheme) to += " scheme " + *rd->scheme;
    if (rd->hostname) to += " host " + *rd->hostname;
    if (rd->port) to += fmt::format(" port {}", *rd->port);
    if (rd->path) to += " path " + DescribePath(*rd->path);
    *out += fmt::format("      redirect {}{}\n", rd->status_code, to);
  }
  for (const auto& u : rule.unsupported) {
    *out += fmt::format("      NOT SERVED (requests get 500): {}\n", u);
  }
  for (const auto& m : rule.mirrors) {
    *out += fmt::format("      mirror {}/{} of requests to {} {}\n", m.numerator, m.denominator,
                        ToString(m.backend->kind), m.backend->id);
  }
  std::uint64_t total = 0;
  for (const auto& wb : rule.backends) total += wb.weight;
  if ((rule.backends.empty() || total == 0) && !rule.redirect && rule.unsupported.empty()) {
    *out += "      no backend can receive requests: they get 500\n";
  }
  std::size_t unresolved = 0;
  for (const auto& wb : rule.backends) {
    if (!wb.backend) {
      const std::size_t i = unresolved++;
      *out += fmt::format("      backend unresolved ({})  weight {} ({}): requests get 500\n",
                          i < rule.unresolved_backends.size() ? rule.unresolved_backends[i] : "",
                          wb.weight, Percent(wb.weight, total));
      continue;
    }
    const Backend& b = *wb.backend;
    std::string port =
        b.kind == BackendKind::kService ? fmt::format(" port {}", b.service_port) : "";
    *out += fmt::format("      backend {} {}{}  weight {} ({})\n", ToString(b.kind), b.id, port,
                        wb.weight, Percent(wb.weight, total));
    DescribeEndpoints(b, "        ", out);
  }
}

void DescribePool(const Backend& b, std::string* out) {
  const PoolInfo& p = b.pool;
  *out += fmt::format("InferencePool {}  ({})\n", b.id, p.api_version);
  std::string selector = JoinLabels(p.selector);
  for (const auto& r : p.match_expressions) {
    selector += (selector.empty() ? "" : ", ") + ToString(r);
  }
  *out += fmt::format("  selector {}\n", selector);
  std::string ports;
  for (auto port : p.target_ports) ports += (ports.empty() ? "" : ", ") + std::to_string(port);
  *out += fmt::format("  target ports {}\n", ports);
  if (p.endpoint_picker.present) {
    *out += fmt::format("  endpoint picker {} {} port {}\n", p.endpoint_picker.kind,
                        p.endpoint_picker.name, p.endpoint_picker.port);
  }
  *out += fmt::format("  failure mode {}\n", ToString(p.failure_mode));
  *out += fmt::format("  scheduling profile {}\n", p.scheduling_profile);
  if (p.flow_control) {
    *out += fmt::format("  gateway queue {} (annotation)\n", *p.flow_control ? "on" : "off");
  }
  if (p.pipeline_parallel_size) {
    *out += fmt::format("  pipeline parallel size {} (annotation)\n", *p.pipeline_parallel_size);
  }
  std::size_t ready = 0;
  for (const auto& e : b.endpoints) ready += e.ready ? 1 : 0;
  *out += fmt::format("  endpoints {} ({} ready)\n", b.endpoints.size(), ready);
  DescribeEndpoints(b, "    ", out);
  if (p.models.empty() && p.rewrites.empty()) {
    *out += "  models: none (requests keep their model name)\n";
  }
  for (const auto& m : p.models) {
    std::string priority = m.priority ? fmt::format(", priority {}", *m.priority) : "";
    *out += fmt::format("  model {}  {}{}  (InferenceModel {})\n", m.model_name,
                        ToString(m.criticality), priority, m.object);
    for (const auto& t : m.targets) {
      *out += fmt::format("    target {}  weight {} ({})\n", t.name, t.weight,
                          Percent(t.weight, m.total_weight));
    }
  }
  for (const auto& r : p.rewrites) {
    std::string models;
    for (const auto& m : r.models) models += (models.empty() ? "" : ", ") + m;
    *out += fmt::format("  rewrite {}  (InferenceModelRewrite {} rules[{}])\n",
                        models.empty() ? "every other model" : models, r.object, r.rule);
    for (const auto& t : r.targets) {
      *out += fmt::format("    target {}  weight {} ({})\n", t.name, t.weight,
                          Percent(t.weight, r.total_weight));
    }
  }
  for (const auto& o : p.objectives) {
    *out += fmt::format("  objective {}  priority {}{}  (InferenceObjective {})\n", o.name,
                        o.priority, o.priority < 0 ? " (sheddable)" : "", o.object);
  }
}

json EndpointsJson(const Backend& b) {
  json endpoints = json::array();
  for (const auto& e : b.endpoints) {
    endpoints.push_back({{"id", e.id},
                         {"ip", e.ip},
                         {"port", e.port},
                         {"pod", e.pod_namespace + "/" + e.pod_name},
                         {"ready", e.ready},
                         {"labels", e.labels}});
  }
  return endpoints;
}

json UnavailableJson(const Backend& b) {
  json out = json::array();
  for (const auto& u : b.unavailable) out.push_back({{"pod", u.pod}, {"reason", u.reason}});
  return out;
}

json ValueMatchesJson(const std::vector<ValueMatch>& list) {
  json out = json::array();
  for (const auto& m : list) {
    out.push_back({{"type", ToString(m.type)}, {"name", m.name}, {"value", m.value}});
  }
  return out;
}

json TimeoutJson(TimeNs t) { return {{"value", FormatDuration(t)}, {"seconds", ToSeconds(t)}}; }

json PoolJson(const Backend& b) {
  const PoolInfo& p = b.pool;
  json models = json::array();
  for (const auto& m : p.models) {
    json targets = json::array();
    for (const auto& t : m.targets) targets.push_back({{"name", t.name}, {"weight", t.weight}});
    json model = {{"object", m.object},
                  {"model_name", m.model_name},
                  {"criticality", ToString(m.criticality)},
                  {"targets", targets}};
    if (m.priority) model["priority"] = *m.priority;
    models.push_back(std::move(model));
  }
  json objectives = json::array();
  for (const auto& o : p.objectives) {
    objectives.push_back({{"name", o.name}, {"object", o.object}, {"priority", o.priority}});
  }
  json rewrites = json::array();
  for (const auto& r : p.rewrites) {
    json targets = json::array();
    for (const auto& t : r.targets) targets.push_back({{"model", t.name}, {"weight", t.weight}});
    rewrites.push_back(
        {{"object", r.object}, {"rule", r.rule}, {"models", r.models}, {"targets", targets}});
  }
  json picker = nullptr;
  if (p.endpoint_picker.present) {
    picker = {{"group", p.endpoint_picker.group},
              {"kind", p.endpoint_picker.kind},
              {"name", p.endpoint_picker.name},
              {"port", p.endpoint_picker.port}};
  }
  return {{"id", b.id},
          {"api_version", p.api_version},
          {"selector", p.selector},
          {"match_expressions", MatchExpressionsJson(p.match_expressions)},
          {"target_ports", p.target_ports},
          {"failure_mode", ToString(p.failure_mode)},
          {"scheduling_profile", p.scheduling_profile},
          {"flow_control", p.flow_control ? nlohmann::json(*p.flow_control) : nlohmann::json()},
          {"pipeline_parallel_size",
           p.pipeline_parallel_size ? nlohmann::json(*p.pipeline_parallel_size) : nlohmann::json()},
          {"endpoint_picker", picker},
          {"annotations", p.annotations},
          {"endpoints", EndpointsJson(b)},
          {"unavailable", UnavailableJson(b)},
          {"models", models},
          {"objectives", objectives},
          {"rewrites", rewrites}};
}

json RuleJson(const RouteRule& rule) {
  json matches = json::array();
  for (const auto& m : rule.matches) {
    json match = {{"path", {{"type", ToString(m.path.type)}, {"value", m.path.value}}},
                  {"headers", ValueMatchesJson(m.headers)},
                  {"query_params", ValueMatchesJson(m.query_params)}};
    if (!m.method.empty()) match["method"] = m.method;
    matches.push_back(std::move(match));
  }
  json backends = json::array();
  std::size_t unresolved = 0;
  for (const auto& wb : rule.backends) {
    if (!wb.backend) {
      const std::size_t i = unresolved++;
      backends.push_back(
          {{"unresolved", i < rule.unresolved_backends.size() ? rule.unresolved_backends[i] : ""},
           {"weight", wb.weight}});
      continue;
    }
    json backend = {{"kind", ToString(wb.backend->kind)},
                    {"id", wb.backend->id},
                    {"weight", wb.weight},
                    {"endpoints", EndpointsJson(*wb.backend)},
                    {"unavailable", UnavailableJson(*wb.backend)}};
    if (wb.backend->kind == BackendKind::kService) backend["port"] = wb.backend->service_port;
    backends.push_back(std::move(backend));
  }
  json out = {{"id", rule.Id()},
              {"route", rule.route},
              {"rule_index", rule.rule_index},
              {"synthesized", rule.synthesized},
              {"hostnames", rule.hostnames},
              {"matches", matches},
              {"backends", backends}};
  if (rule.timeouts.request) out["timeouts"]["request"] = TimeoutJson(*rule.timeouts.request);
  if (rule.timeouts.backend_request) {
    out["timeouts"]["backend_request"] = TimeoutJson(*rule.timeouts.backend_request);
  }
  if (const auto& mod = rule.request_header_modifier) {
    json set = json::array(), add = json::array();
    for (const auto& h : mod->set) set.push_back({{"name", h.name}, {"value", h.value}});
    for (const auto& h : mod->add) add.push_back({{"name", h.name}, {"value", h.value}});
    out["request_header_modifier"] = {{"set", set}, {"add", add}, {"remove", mod->remove}};
  }
  if (rule.response_header_modifier) {
    out["response_header_modifier"] = HeaderModifierJson(*rule.response_header_modifier);
  }
  if (const auto& rw = rule.url_rewrite) {
    json j = json::object();
    if (rw->hostname) j["hostname"] = *rw->hostname;
    if (rw->path) j["path"] = PathJson(*rw->path);
    out["url_rewrite"] = j;
  }
  if (const auto& rd = rule.redirect) {
    json j = {{"status_code", rd->status_code}};
    if (rd->scheme) j["scheme"] = *rd->scheme;
    if (rd->hostname) j["hostname"] = *rd->hostname;
    if (rd->port) j["port"] = *rd->port;
    if (rd->path) j["path"] = PathJson(*rd->path);
    out["redirect"] = j;
  }
  if (!rule.unsupported.empty()) out["unsupported"] = rule.unsupported;
  if (!rule.mirrors.empty()) {
    json mirrors = json::array();
    for (const auto& m : rule.mirrors) {
      mirrors.push_back({{"kind", ToString(m.backend->kind)},
                         {"id", m.backend->id},
                         {"numerator", m.numerator},
                         {"denominator", m.denominator}});
    }
    out["mirrors"] = mirrors;
  }
  return out;
}

}  // namespace

std::string DescribeSkipped(const SkippedObject& s) {
  std::string where = s.source.file;
  if (s.source.line > 0) where += fmt::format(":{}", s.source.line);
  if (s.source.document > 0) where += fmt::format(": document {}", s.source.document);
  std::string name = s.name.empty() ? "" : " " + s.name;
  return fmt::format("{}: skipped {}/{}{}: {}", where, s.api_version, s.kind, name, s.reason);
}

std::string DescribeSnapshot(const ConfigSnapshot& snapshot) {
  std::string out;
  for (const auto& gw : snapshot.gateways) {
    out += fmt::format("Gateway {}  bind {}  request timeout {}  body limit {}\n", gw.id,
                       gw.bind_address, DescribeTimeout(gw.request_timeout),
                       FormatBytes(gw.body_limit));
    for (const auto& l : gw.listeners) {
      std::string port = l.port == 0 ? "0 (any free port)" : std::to_string(l.port);
      out += fmt::format("  listener {}  {}:{}  {}{}", l.name, l.bind_address, port, l.protocol,
                         l.hostname.empty() ? "" : "  hostname " + l.hostname);
      for (const auto& c : l.certificates) out += fmt::format("  certificate {}", c.secret);
      if (!l.not_served.empty()) out += fmt::format("  NOT SERVED: {}", l.not_served);
      if (l.request_timeout != gw.request_timeout) {
        out += fmt::format("  request timeout {}", DescribeTimeout(l.request_timeout));
      }
      if (l.body_limit != gw.body_limit) {
        out += fmt::format("  body limit {}", FormatBytes(l.body_limit));
      }
      out += "\n";
      if (l.rules.empty()) out += "    no routes: requests get 404\n";
      for (const auto& rule : l.rules) DescribeRule(rule, &out);
    }
    out += "\n";
  }
  if (snapshot.gateways.empty()) out += "No Gateway: nothing will listen.\n\n";
  for (const auto& pool : snapshot.pools) {
    DescribePool(*pool, &out);
    out += "\n";
  }
  for (const auto& c : snapshot.objects.picker_configs) {
    out += fmt::format("EndpointPickerConfig {}\n", c.meta.name);
    for (const auto& p : c.plugins) {
      std::string params;
      for (const auto& [k, v] : p.parameters) params += fmt::format("  {}={}", k, v);
      out += fmt::format("  plugin {} (type {}){}\n", p.name, p.type, params);
    }
    for (const auto& s : c.profiles) {
      std::string plugins;
      for (const auto& p : s.plugins) {
        plugins += fmt::format("{}{} x{}", plugins.empty() ? "" : ", ", p.plugin_ref, p.weight);
      }
      out += fmt::format("  profile {}: {}\n", s.name, plugins);
    }
    out += "\n";
  }
  if (!snapshot.skipped.empty()) {
    out += fmt::format("Skipped {} object(s):\n", snapshot.skipped.size());
    for (const auto& s : snapshot.skipped) out += fmt::format("  {}\n", DescribeSkipped(s));
    out += "\n";
  }
  if (!snapshot.warnings.empty()) {
    out += fmt::format("Warnings ({}):\n", snapshot.warnings.size());
    for (const auto& w : snapshot.warnings) out += fmt::format("  {}\n", w);
    out += "\n";
  }
  return out;
}

json SnapshotToJson(const ConfigSnapshot& snapshot) {
  json gateways = json::array();
  for (const auto& gw : snapshot.gateways) {
    json listeners = json::array();
    for (const auto& l : gw.listeners) {
      json rules = json::array();
      for (const auto& r : l.rules) rules.push_back(RuleJson(r));
      json certificates = json::array();
      for (const auto& c : l.certificates) certificates.push_back(c.secret);
      json listener = {{"name", l.name},
                       {"bind_address", l.bind_address},
                       {"port", l.port},
                       {"protocol", l.protocol},
                       {"hostname", l.hostname},
                       {"request_timeout", TimeoutJson(l.request_timeout)},
                       {"body_limit_bytes", l.body_limit},
                       {"rules", rules}};
      if (l.protocol == "HTTPS") listener["certificates"] = certificates;
      if (!l.not_served.empty()) listener["not_served"] = l.not_served;
      listeners.push_back(std::move(listener));
    }
    gateways.push_back({{"id", gw.id},
                        {"bind_address", gw.bind_address},
                        {"request_timeout", TimeoutJson(gw.request_timeout)},
                        {"body_limit_bytes", gw.body_limit},
                        {"listeners", listeners}});
  }
  json pools = json::array();
  for (const auto& p : snapshot.pools) pools.push_back(PoolJson(*p));
  json configs = json::array();
  for (const auto& c : snapshot.objects.picker_configs) {
    json plugins = json::array(), profiles = json::array();
    for (const auto& p : c.plugins) {
      plugins.push_back({{"type", p.type}, {"name", p.name}, {"parameters", p.parameters}});
    }
    for (const auto& s : c.profiles) {
      json refs = json::array();
      for (const auto& p : s.plugins)
        refs.push_back({{"plugin_ref", p.plugin_ref}, {"weight", p.weight}});
      profiles.push_back({{"name", s.name}, {"plugins", refs}});
    }
    configs.push_back(
        {{"name", c.meta.name}, {"plugins", plugins}, {"scheduling_profiles", profiles}});
  }
  json skipped = json::array();
  for (const auto& s : snapshot.skipped) {
    skipped.push_back({{"file", s.source.file},
                       {"document", s.source.document},
                       {"line", s.source.line},
                       {"api_version", s.api_version},
                       {"kind", s.kind},
                       {"name", s.name},
                       {"reason", s.reason}});
  }
  return {{"valid", true},
          {"files", snapshot.files},
          {"gateways", gateways},
          {"pools", pools},
          {"endpoint_picker_configs", configs},
          {"skipped", skipped},
          {"warnings", snapshot.warnings}};
}

}  // namespace infergate::config
