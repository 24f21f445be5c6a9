// Gateway API Inference Extension objects: InferencePool (v1alpha1, v1alpha2, v1),
// InferenceModel (v1alpha1, v1alpha2), EndpointPickerConfig, and llm-d's
// InferenceObjective and InferenceModelRewrite (llm-d.ai/v1alpha2, or the older
// inference.networking.x-k8s.io/v1alpha2).
#include <fmt/format.h>

#include <charconv>
#include <map>
#include <set>

#include "config/decode.h"

namespace infergate::config {
namespace {

constexpr std::size_t kMaxTargetModels = 10;
constexpr std::size_t kMaxTargetPorts = 8;
constexpr std::int64_t kMaxModelWeight = 1'000'000;
constexpr int kDefaultPickerPort = 9002;

std::optional<FailureMode> DecodeFailureMode(const YamlField& f) {
  auto mode = f.OneOf({"FailClose", "FailOpen"});
  if (!mode) return std::nullopt;
  return *mode == "FailOpen" ? FailureMode::kFailOpen : FailureMode::kFailClose;
}

Labels DecodeSelector(const YamlField& f) {
  if (!f.present()) {
    f.Error("is required");
    return {};
  }
  auto labels = f.StringMap();
  if (labels && labels->empty()) f.Error("must name at least one label");
  return labels.value_or(Labels{});
}

// matchExpressions: [{key, operator: In|NotIn|Exists|DoesNotExist, values}], validated as
// the API server validates a LabelSelector (values for In/NotIn, none for the others).
std::vector<LabelRequirement> DecodeMatchExpressions(const YamlField& f) {
  std::vector<LabelRequirement> out;
  f.ForEach([&](const YamlField& item) {
    if (!item.ExpectMap()) return;
    LabelRequirement r;
    auto key = item["key"].RequiredString();
    YamlField op_field = item["operator"];
    std::optional<std::string> op;
    if (!op_field.present()) {
      op_field.Error("is required");
    } else {
      op = op_field.OneOf({"In", "NotIn", "Exists", "DoesNotExist"});
    }
    YamlField values = item["values"];
    values.ForEach([&](const YamlField& v) {
      if (auto text = v.String()) r.values.push_back(*text);
    });
    if (!key || !op) return;
    r.key = *key;
    if (*op == "In" || *op == "NotIn") {
      r.op = *op == "In" ? SelectorOperator::kIn : SelectorOperator::kNotIn;
      if (r.values.empty() && (!values.present() || values.IsSequence())) {
        values.Error(fmt::format("must list at least one value for operator {}", *op));
        return;
      }
    } else {
      r.op = *op == "Exists" ? SelectorOperator::kExists : SelectorOperator::kDoesNotExist;
      if (values.present() && values.IsSequence() && values.size() > 0) {
        values.Error(fmt::format("must be empty for operator {}", *op));
        return;
      }
    }
    out.push_back(std::move(r));
  });
  return out;
}

// The annotation's value is itself YAML: a map {name, port[, namespace][, sectionName]}.
std::optional<AttachTo> DecodeAttachTo(const YamlField& annotation, const ObjectMeta& pool) {
  auto text = annotation.String();
  if (!text) return std::nullopt;
  YAML::Node doc;
  try {
    doc = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    annotation.Error(fmt::format("is not valid YAML: {}", e.msg));
    return std::nullopt;
  }
  // A block scalar's text starts on the line after the key; a flow one on the key's line.
  int base = text->find('\n') != std::string::npos ? annotation.line() : annotation.line() - 1;
  YamlField value(annotation.context(), doc, annotation.path(), annotation.line(), base);
  if (!value.IsMap()) {
    annotation.Error(
        "must be a YAML map with name and port (and optionally namespace and "
        "sectionName)");
    return std::nullopt;
  }
  AttachTo attach;
  attach.origin = {annotation.path(), annotation.line()};
  attach.namespace_name = pool.namespace_name;
  auto name = value["name"].RequiredString();
  auto port = value["port"].RequiredInteger(1, 65535);
  if (!name || !ValidateObjectName(value["name"], *name) || !port) return std::nullopt;
  attach.gateway = *name;
  attach.port = static_cast<int>(*port);
  if (auto ns = value["namespace"].String()) {
    if (!ValidateObjectName(value["namespace"], *ns)) return std::nullopt;
    attach.namespace_name = *ns;
  }
  attach.section_name = value["sectionName"].String().value_or("");
  return attach;
}

// Flattens plugin parameters: scalars as they are written, maps as "a.b", lists as "a.0".
// Stops 64 levels down: CheckDuplicateKeys has already reported such nesting (or an alias
// that contains itself, which would otherwise recurse without end).
void FlattenParameters(const YAML::Node& node, const std::string& prefix,
                       std::map<std::string, std::string>* out, int depth = 0) {
  if (depth > 64) return;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
      FlattenParameters(it->second, prefix.empty() ? key : prefix + "." + key, out, depth + 1);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      FlattenParameters(node[i], fmt::format("{}.{}", prefix, i), out, depth + 1);
    }
  } else if (node.IsScalar()) {
    (*out)[prefix] = node.Scalar();
  } else {
    (*out)[prefix] = "";
  }
}

// spec.poolRef {group, kind, name}: an InferencePool of either group, `default_group`
// when the group is left out.
void DecodePoolRef(const YamlField& pool_ref, std::string_view default_group, PoolRef* out) {
  if (!pool_ref.present()) {
    pool_ref.Error("is required");
    return;
  }
  if (!pool_ref.ExpectMap()) return;
  out->origin = {pool_ref.path(), pool_ref.line()};
  out->group = pool_ref["group"].String().value_or(std::string(default_group));
  out->kind = pool_ref["kind"].String().value_or("InferencePool");
  if (out->kind != "InferencePool") {
    pool_ref["kind"].Error(fmt::format("must be InferencePool, got {}", Quote(out->kind)));
  }
  if (out->group != kInferenceAlphaGroup && out->group != kInferenceGroup) {
    pool_ref["group"].Error(fmt::format("must be {} or {}, got {}", kInferenceAlphaGroup,
                                        kInferenceGroup, Quote(out->group)));
  }
  if (auto name = pool_ref["name"].RequiredString()) {
    if (ValidateObjectName(pool_ref["name"], *name)) out->name = *name;
  }
}

// The group a poolRef without one means: the InferencePool group of the object's era.
std::string_view DefaultPoolGroup(std::string_view api_version) {
  return api_version.starts_with(kLlmdGroup) ? kInferenceGroup : kInferenceAlphaGroup;
}

}  // namespace

void DecodeInferencePool(const YamlField& root, std::string_view api_version, ObjectContext* ctx,
                         DecodeSink* sink) {
  InferencePool pool;
  pool.api_version = std::string(api_version);
  bool named = DecodeMeta(root, "InferencePool", ctx, &pool.meta);
  YamlField spec = root["spec"];
  if (!spec.present()) {
    spec.Error("is required");
  } else {
    spec.ExpectMap();
  }
  const bool v1 =
      api_version.substr(0, kInferenceGroup.size() + 1) == std::string(kInferenceGroup) + "/";
  if (v1) {
    YamlField selector = spec["selector"];
    if (!selector.present()) {
      selector.Error("is required");
    } else if (selector.ExpectMap()) {
      YamlField labels = selector["matchLabels"];
      YamlField expressions = selector["matchExpressions"];
      if (!expressions.present()) {
        pool.selector = DecodeSelector(labels);
      } else {
        if (labels.present()) pool.selector = labels.StringMap().value_or(Labels{});
        pool.match_expressions = DecodeMatchExpressions(expressions);
        if (pool.selector.empty() && expressions.IsSequence() && expressions.size() == 0) {
          selector.Error("must name at least one label or expression");
        }
      }
    }
    YamlField ports = spec["targetPorts"];
    if (!ports.present()) {
      ports.Error("is required");
    } else if (ports.IsSequence() && (ports.size() == 0 || ports.size() > kMaxTargetPorts)) {
      ports.Error(fmt::format("must list 1 to {} ports, got {}", kMaxTargetPorts, ports.size()));
    }
    ports.ForEach([&](const YamlField& p) {
      if (!p.ExpectMap()) return;
      auto number = p["number"].RequiredInteger(1, 65535);
      if (!number) return;
      for (int seen : pool.target_ports) {
        if (seen == *number) {
          p["number"].Error(fmt::format("port {} is listed twice", *number));
          return;
        }
      }
      pool.target_ports.push_back(static_cast<int>(*number));
    });
    YamlField ref = spec["endpointPickerRef"];
    if (ref.ExpectMap()) {
      pool.endpoint_picker.present = true;
      pool.endpoint_picker.group = ref["group"].String().value_or("");
      pool.endpoint_picker.kind = ref["kind"].String().value_or("Service");
      pool.endpoint_picker.name = ref["name"].RequiredString().value_or("");
      if (auto port = ref["port"]["number"].Integer(1, 65535)) {
        pool.endpoint_picker.port = static_cast<int>(*port);
      }
      if (auto mode = DecodeFailureMode(ref["failureMode"])) {
        pool.endpoint_picker.failure_mode = *mode;
      }
    }
  } else {
    pool.selector = DecodeSelector(spec["selector"]);
    if (auto port = spec["targetPortNumber"].RequiredInteger(1, 65535)) {
      pool.target_ports.push_back(static_cast<int>(*port));
    }
    YamlField ref = spec["extensionRef"];
    if (ref.ExpectMap()) {
      pool.endpoint_picker.present = true;
      pool.endpoint_picker.group = ref["group"].String().value_or("");
      pool.endpoint_picker.kind = ref["kind"].String().value_or("Service");
      pool.endpoint_picker.name = ref["name"].RequiredString().value_or("");
      // v1alpha2 calls the port portNumber; v1alpha1 called it targetPortNumber.
      YamlField port = ref["portNumber"].present() ? ref["portNumber"] : ref["targetPortNumber"];
      pool.endpoint_picker.port =
          static_cast<int>(port.Integer(1, 65535).value_or(kDefaultPickerPort));
      if (auto mode = DecodeFailureMode(ref["failureMode"])) {
        pool.endpoint_picker.failure_mode = *mode;
      }
    }
  }

  YamlField attach = Annotation(root, kAttachToAnnotation);
  if (attach.present()) pool.attach_to = DecodeAttachTo(attach, pool.meta);
  YamlField profile = Annotation(root, kSchedulingProfileAnnotation);
  if (auto p = profile.String()) {
    if (p->empty()) {
      profile.Error("must not be empty");
    } else {
      pool.scheduling_profile = *p;
    }
  }
  YamlField queue = Annotation(root, kFlowControlAnnotation);
  if (auto v = queue.String()) {
    if (*v == "true" || *v == "false") {
      pool.flow_control = *v == "true";
    } else {
      queue.Error(fmt::format("must be \"true\" or \"false\", got \"{}\"", *v));
    }
  }
  YamlField pp = Annotation(root, kPipelineParallelAnnotation);
  if (auto v = pp.String()) {
    int n = 0;
    const auto [end, err] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (err != std::errc() || end != v->data() + v->size() || n < 1 || n > 16) {
      pp.Error(fmt::format("must be an integer from 1 to 16, got \"{}\"", *v));
    } else {
      pool.pipeline_parallel_size = n;
    }
  }
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey("InferencePool", pool.meta));
  sink->objects->pools.push_back(std::move(pool));
}

void DecodeInferenceModel(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  InferenceModel model;
  bool named = DecodeMeta(root, "InferenceModel", ctx, &model.meta);
  YamlField spec = root["spec"];
  if (!spec.present()) {
    spec.Error("is required");
  } else {
    spec.ExpectMap();
  }
  model.model_name = spec["modelName"].RequiredString().value_or("");
  if (auto c = spec["criticality"].OneOf({"Critical", "Standard", "Sheddable"})) {
    model.criticality = *c == "Critical"   ? Criticality::kCritical
                        : *c == "Standard" ? Criticality::kStandard
                                           : Criticality::kSheddable;
  }
  if (auto priority = spec["priority"].Integer(INT32_MIN, INT32_MAX)) {
    model.priority = static_cast<int>(*priority);
  }

  YamlField targets = spec["targetModels"];
  if (targets.size() > kMaxTargetModels) {
    targets.Error(
        fmt::format("must list at most {} models, got {}", kMaxTargetModels, targets.size()));
  }
  std::size_t with_weight = 0;
  std::set<std::string> target_names;
  targets.ForEach([&](const YamlField& t) {
    if (!t.ExpectMap()) return;
    TargetModel target;
    auto name = t["name"].RequiredString();
    if (!name) return;
    target.name = *name;
    if (!target_names.insert(*name).second) {
      t["name"].Error(fmt::format("target model {} is listed twice", Quote(*name)));
    }
    if (t["weight"].present()) {
      ++with_weight;
      target.weight =
          static_cast<std::uint32_t>(t["weight"].Integer(1, kMaxModelWeight).value_or(1));
    }
    model.target_models.push_back(std::move(target));
  });
  if (with_weight != 0 && with_weight != targets.size()) {
    targets.Error(
        fmt::format("weights must be set on all targetModels or on none ({} of {} have one)",
                    with_weight, targets.size()));
  }

  DecodePoolRef(spec["poolRef"], kInferenceAlphaGroup, &model.pool_ref);
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey("InferenceModel", model.meta));
  sink->objects->models.push_back(std::move(model));
}

void DecodeInferenceObjective(const YamlField& root, std::string_view api_version,
                              ObjectContext* ctx, DecodeSink* sink) {
  InferenceObjective objective;
  bool named = DecodeMeta(root, "InferenceObjective", ctx, &objective.meta);
  YamlField spec = root["spec"];
  if (!spec.present()) {
    spec.Error("is required");
  } else {
    spec.ExpectMap();
  }
  if (auto priority = spec["priority"].Integer(INT32_MIN, INT32_MAX)) {
    objective.priority = static_cast<int>(*priority);
  }
  DecodePoolRef(spec["poolRef"], DefaultPoolGroup(api_version), &objective.pool_ref);
  if (!named) return;
  if (ctx->failed()) {
    sink->incomplete->insert(IncompleteKey("InferenceObjective", objective.meta));
  }
  sink->objects->objectives.push_back(std::move(objective));
}

void DecodeInferenceModelRewrite(const YamlField& root, std::string_view api_version,
                                 ObjectContext* ctx, DecodeSink* sink) {
  InferenceModelRewrite rewrite;
  bool named = DecodeMeta(root, "InferenceModelRewrite", ctx, &rewrite.meta);
  YamlField spec = root["spec"];
  if (!spec.present()) {
    spec.Error("is required");
  } else {
    spec.ExpectMap();
  }
  DecodePoolRef(spec["poolRef"], DefaultPoolGroup(api_version), &rewrite.pool_ref);
  YamlField rules = spec["rules"];
  if (!rules.present() || rules.size() == 0) rules.Error("must list at least one rule");
  std::size_t fallbacks = 0;
  rules.ForEach([&](const YamlField& r) {
    if (!r.ExpectMap()) return;
    ModelRewriteRule rule;
    rule.origin = {r.path(), r.line()};
    r["matches"].ForEach([&](const YamlField& m) {
      if (!m.ExpectMap()) return;
      YamlField model = m["model"];
      if (!model.present()) {
        model.Error("is required");
        return;
      }
      if (!model.ExpectMap()) return;
      if (model["type"].present()) {
        if (!model["type"].OneOf({"Exact"})) return;
      }
      auto value = model["value"].RequiredString();
      if (!value) return;
      if (value->empty()) {
        model["value"].Error("must not be empty");
        return;
      }
      rule.models.push_back(*value);
    });
    // A rule without matches applies to every request no other rule matched.
    const bool fallback = r["matches"].size() == 0;
    if (fallback && ++fallbacks > 1) {
      r["matches"].Error(
          "a second rule without matches: only one rule may apply to every other request");
    }
    YamlField targets = r["targets"];
    if (!targets.present() || targets.size() == 0) {
      targets.Error("must list at least one target");
    }
    if (targets.size() > kMaxTargetModels) {
      targets.Error(
          fmt::format("must list at most {} targets, got {}", kMaxTargetModels, targets.size()));
    }
    std::size_t with_weight = 0;
    std::set<std::string> names;
    targets.ForEach([&](const YamlField& t) {
      if (!t.ExpectMap()) return;
      ModelRewriteTarget target;
      auto name = t["modelRewrite"].RequiredString();
      if (!name) return;
      if (name->empty()) {
        t["modelRewrite"].Error("must not be empty");
        return;
      }
      target.model = *name;
      if (!names.insert(*name).second) {
        t["modelRewrite"].Error(fmt::format("target {} is listed twice", Quote(*name)));
      }
      if (t["weight"].present()) {
        ++with_weight;
        target.weight =
            static_cast<std::uint32_t>(t["weight"].Integer(1, kMaxModelWeight).value_or(1));
      }
      rule.targets.push_back(std::move(target));
    });
    if (with_weight != 0 && with_weight != targets.size()) {
      targets.Error(fmt::format("weights must be set on all targets or on none ({} of {} have one)",
                                with_weight, targets.size()));
    }
    rewrite.rules.push_back(std::move(rule));
  });
  if (!named) return;
  if (ctx->failed()) {
    sink->incomplete->insert(IncompleteKey("InferenceModelRewrite", rewrite.meta));
  }
  sink->objects->rewrites.push_back(std::move(rewrite));
}

void DecodeEndpointPickerConfig(const YamlField& root, ObjectContext* ctx, DecodeSink* sink) {
  EndpointPickerConfig config;
  bool named = DecodeMeta(root, "EndpointPickerConfig", ctx, &config.meta,
                          /*name_required=*/false, "default");
  // GIE writes plugins and schedulingProfiles at the top level; accept them under spec too.
  YamlField body =
      root["plugins"].present() || root["schedulingProfiles"].present() ? root : root["spec"];
  std::set<std::string> plugin_names;
  body["plugins"].ForEach([&](const YamlField& p) {
    if (!p.ExpectMap()) return;
    PluginSpec plugin;
    auto type = p["type"].RequiredString();
    if (!type) return;
    plugin.type = *type;
    plugin.name = p["name"].String().value_or(*type);
    if (!plugin_names.insert(plugin.name).second) {
      p["name"].Error(fmt::format("plugin name {} is used twice", Quote(plugin.name)));
      return;
    }
    YamlField params = p["parameters"];
    if (params.ExpectMap()) FlattenParameters(params.node(), "", &plugin.parameters);
    config.plugins.push_back(std::move(plugin));
  });
  std::set<std::string> profile_names;
  body["schedulingProfiles"].ForEach([&](const YamlField& s) {
    if (!s.ExpectMap()) return;
    SchedulingProfile profile;
    auto name = s["name"].RequiredString();
    if (!name) return;
    profile.name = *name;
    if (!profile_names.insert(*name).second) {
      s["name"].Error(fmt::format("profile name {} is used twice", Quote(*name)));
    }
    s["plugins"].ForEach([&](const YamlField& r) {
      if (!r.ExpectMap()) return;
      ProfilePlugin ref;
      auto plugin = r["pluginRef"].RequiredString();
      if (!plugin) return;
      if (!plugin_names.count(*plugin)) {
        r["pluginRef"].Error(fmt::format("names no plugin of this config: {}", Quote(*plugin)));
      }
      ref.plugin_ref = *plugin;
      ref.weight = r["weight"].Number(0, 1e9).value_or(1.0);
      profile.plugins.push_back(std::move(ref));
    });
    config.profiles.push_back(std::move(profile));
  });
  if (!named) return;
  if (ctx->failed()) sink->incomplete->insert(IncompleteKey("EndpointPickerConfig", config.meta));
  sink->objects->picker_configs.push_back(std::move(config));
}

}  // namespace infergate::config
