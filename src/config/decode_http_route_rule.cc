// HTTPRoute rules (spec.rules[i]): their matches, filters and backendRefs.
#include <fmt/format.h>

#include <map>
#include <regex>

#include "config/decode.h"

namespace infergate::config {
namespace {

constexpr std::int64_t kMaxWeight = 1'000'000;

// Compiles pattern the way the router will (ECMAScript); records an error if it does not.
void ValidateRegex(const YamlField& field, const std::string& pattern) {
  try {
    std::regex re(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    field.Error(fmt::format("invalid regular expression {}: {}", Quote(pattern), e.what()));
  }
}

// Exact and PathPrefix values: absolute, no empty segments, no query or fragment.
void ValidateMatchPath(const YamlField& field, std::string_view value) {
  if (value.empty() || value.front() != '/') {
    field.Error(fmt::format("must start with \"/\", got {}", Quote(value)));
  } else if (value.find("//") != std::string_view::npos) {
    field.Error(fmt::format("must not contain \"//\", got {}", Quote(value)));
  } else if (value.find_first_of("?#") != std::string_view::npos) {
    field.Error(fmt::format("must not contain \"?\" or \"#\", got {}", Quote(value)));
  } else if (value.size() > 1024) {
    field.Error("must be at most 1024 characters");
  }
}

std::optional<BackendRef> DecodeBackendRef(const YamlField& f, const ObjectMeta& owner,
                                           bool with_weight) {
  if (!f.ExpectMap()) return std::nullopt;
  BackendRef ref;
  ref.origin = {f.path(), f.line()};
  bool ok = true;
  ref.group = f["group"].String().value_or("");
  std::string kind = f["kind"].String().value_or("Service");
  if (kind == "Service") {
    ref.kind = BackendKind::kService;
    if (!ref.group.empty() && ref.group != "core") {
      f["group"].Error(fmt::format("must be \"\" (the core API group) for kind Service, got {}",
                                   Quote(ref.group)));
      ok = false;
    }
  } else if (kind == "InferencePool") {
    ref.kind = BackendKind::kInferencePool;
    if (ref.group != kInferenceAlphaGroup && ref.group != kInferenceGroup) {
      f["group"].Error(fmt::format("must be {} or {} for kind InferencePool, got {}",
                                   kInferenceAlphaGroup, kInferenceGroup, Quote(ref.group)));
      ok = false;
    }
  } else {
    f["kind"].Error(fmt::format("must be Service or InferencePool, got {}", Quote(kind)));
    ok = false;
  }
  if (auto name = f["name"].RequiredString()) {
    ok &= ValidateObjectName(f["name"], *name);
    ref.name = *name;
  } else {
    ok = false;
  }
  ref.namespace_name = owner.namespace_name;
  if (auto ns = f["namespace"].String()) {
    ok &= ValidateObjectName(f["namespace"], *ns);
    ref.namespace_name = *ns;
  }
  YamlField port = f["port"];
  if (port.present()) {
    if (auto p = port.Integer(1, 65535)) {
      ref.port = static_cast<int>(*p);
    } else {
      ok = false;
    }
  } else if (ref.kind == BackendKind::kService && kind == "Service") {
    port.Error("is required for a Service backend");
    ok = false;
  }
  if (with_weight) {
    if (auto w = f["weight"].Integer(0, kMaxWeight)) ref.weight = static_cast<std::uint32_t>(*w);
  }
  if (!ok) return std::nullopt;
  return ref;
}

std::optional<ValueMatch> DecodeValueMatch(const YamlField& f, bool is_header) {
  if (!f.ExpectMap()) return std::nullopt;
  ValueMatch m;
  bool ok = true;
  if (auto type = f["type"].OneOf({"Exact", "RegularExpression"})) {
    m.type = *type == "Exact" ? ValueMatchType::kExact : ValueMatchType::kRegularExpression;
  } else if (f["type"].present()) {
    ok = false;
  }
  if (auto name = f["name"].RequiredString()) {
    if (is_header) {
      ok &= ValidateHeaderName(f["name"], *name);
      m.name = ToLower(*name);
    } else {
      m.name = *name;
    }
  } else {
    ok = false;
  }
  if (auto value = f["value"].String()) {
    m.value = *value;
    if (m.type == ValueMatchType::kRegularExpression) ValidateRegex(f["value"], m.value);
  } else {
    f["value"].Error("is required");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return m;
}

// Appends the matches of list to out, keeping only the first match per name (the Gateway
// API says later ones with an equivalent name are ignored).
void DecodeValueMatches(const YamlField& list, bool is_header, std::vector<ValueMatch>* out) {
  list.ForEach([&](const YamlField& item) {
    auto m = DecodeValueMatch(item, is_header);
    if (!m) return;
    for (const auto& seen : *out) {
      if (seen.name == m->name) {
        item.Warning(fmt::format("{} {} is matched earlier in this list; this entry is ignored",
                                 is_header ? "header" : "query parameter", Quote(m->name)));
        return;
      }
    }
    out->push_back(std::move(*m));
  });
}

RouteMatch DecodeMatch(const YamlField& m) {
  RouteMatch match;
  if (!m.ExpectMap()) return match;
  YamlField path = m["path"];
  if (path.ExpectMap()) {
    if (auto type = path["type"].OneOf({"PathPrefix", "Exact", "RegularExpression"})) {
      if (*type == "Exact") {
        match.path.type = PathMatchType::kExact;
      } else if (*type == "RegularExpression") {
        match.path.type = PathMatchType::kRegularExpression;
      }
    }
    if (auto value = path["value"].String()) match.path.value = *value;
    if (match.path.type == PathMatchType::kRegularExpression) {
      ValidateRegex(path["value"], match.path.value);
    } else {
      ValidateMatchPath(path["value"], match.path.value);
    }
  }
  DecodeValueMatches(m["headers"], /*is_header=*/true, &match.headers);
  DecodeValueMatches(m["queryParams"], /*is_header=*/false, &match.query_params);
  if (auto method = m["method"].OneOf(
          {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})) {
    match.method = *method;
  }
  return match;
}

std::optional<HeaderModifier> DecodeHeaderModifier(const YamlField& f, std::string_view type) {
  if (!f.present()) {
    f.Error(fmt::format("is required for a {} filter", type));
    return std::nullopt;
  }
  if (!f.ExpectMap()) return std::nullopt;
  HeaderModifier mod;
  std::map<std::string, std::string> seen;  // lower-case name -> path of first use
  auto claim = [&](const YamlField& field, const std::string& name) {
    auto [it, inserted] = seen.emplace(ToLower(name), field.path());
    if (!inserted) {
      field.Error(fmt::format("header {} is already modified by {}", Quote(name), it->second));
    }
  };
  auto decode_values = [&](const YamlField& list, std::vector<HeaderValue>* out) {
    list.ForEach([&](const YamlField& item) {
      if (!item.ExpectMap()) return;
      auto name = item["name"].RequiredString();
      auto value = item["value"].String();
      if (!value) item["value"].Error("is required");
      if (!name || !value || !ValidateHeaderName(item["name"], *name)) return;
      claim(item["name"], *name);
      out->push_back({*name, *value});
    });
  };
  decode_values(f["set"], &mod.set);
  decode_values(f["add"], &mod.add);
  f["remove"].ForEach([&](const YamlField& item) {
    auto name = item.String();
    if (!name || !ValidateHeaderName(item, *name)) return;
    claim(item, *name);
    mod.remove.push_back(*name);
  });
  return mod;
}

std::optional<RequestMirror> DecodeMirror(const YamlField& f, const ObjectMeta& owner) {
  if (!f.present()) {
    f.Error("is required for a RequestMirror filter");
    return std::nullopt;
  }
  if (!f.ExpectMap()) return std::nullopt;
  RequestMirror mirror;
  YamlField backend = f["backendRef"];
  if (!backend.present()) {
    backend.Error("is required");
    return std::nullopt;
  }
  auto ref = DecodeBackendRef(backend, owner, /*with_weight=*/false);
  if (!ref) return std::nullopt;
  mirror.backend = std::move(*ref);
  YamlField percent = f["percent"];
  YamlField fraction = f["fraction"];
  if (percent.present() && fraction.present()) {
    fraction.Error("percent and fraction are mutually exclusive");
    return std::nullopt;
  }
  if (percent.present()) {
    auto p = percent.Integer(0, 100);
    if (!p) return std::nullopt;
    mirror.numerator = static_cast<std::uint32_t>(*p);
    mirror.denominator = 100;
  } else if (fraction.ExpectMap()) {
    auto numerator = fraction["numerator"].RequiredInteger(0, INT32_MAX);
    auto denominator = fraction["denominator"].Integer(1, INT32_MAX);
    if (!numerator || (fraction["denominator"].present() && !denominator)) return std::nullopt;
    mirror.numerator = static_cast<std::uint32_t>(*numerator);
    mirror.denominator = static_cast<std::uint32_t>(denominator.value_or(100));
    if (mirror.numerator > mirror.denominator) {
      fraction["numerator"].Error(fmt::format("must not exceed the denominator ({}), got {}",
                                              mirror.denominator, mirror.numerator));
      return std::nullopt;
    }
  }
  return mirror;
}

// URLRewrite / RequestRedirect spec.path.
std::optional<PathModifier> DecodePathModifier(const YamlField& f) {
  if (!f.ExpectMap()) return std::nullopt;
  auto type = f["type"].OneOf({"ReplaceFullPath", "ReplacePrefixMatch"});
  if (!type) {
    if (!f["type"].present()) f["type"].Error("is required");
    return std::nullopt;
  }
  PathModifier mod;
  mod.type = *type == "ReplaceFullPath" ? PathModifierType::kReplaceFullPath
                                        : PathModifierType::kReplacePrefixMatch;
  const char* key = *type == "ReplaceFullPath" ? "replaceFullPath" : "replacePrefixMatch";
  YamlField value = f[key];
  auto v = value.String();
  if (!v) {
    value.Error(fmt::format("is required for type {}", *type));
    return std::nullopt;
  }
  ValidateMatchPath(value, *v);
  mod.value = *v;
  return mod;
}

std::optional<URLRewrite> DecodeUrlRewrite(const YamlField& f) {
  if (!f.present()) {
    f.Error("is required for a URLRewrite filter");
    return std::nullopt;
  }
  if (!f.ExpectMap()) return std::nullopt;
  URLRewrite rw;
  if (auto host = f["hostname"].String()) {
    if (host->find('*') != std::string::npos) {
      f["hostname"].Error(fmt::format("must be a hostname without wildcard, got {}", Quote(*host)));
    } else if (ValidateHostname(f["hostname"], *host)) {
      rw.hostname = ToLower(*host);
    }
  }
  if (f["path"].present()) rw.path = DecodePathModifier(f["path"]);
  return rw;
}

std::optional<RequestRedirect> DecodeRedirect(const YamlField& f) {
  if (!f.present()) {
    f.Error("is required for a RequestRedirect filter");
    return std::nullopt;
  }
  if (!f.ExpectMap()) return std::nullopt;
  RequestRedirect rd;
  if (auto scheme = f["scheme"].OneOf({"http", "https"})) rd.scheme = *scheme;
  if (auto host = f["hostname"].String()) {
    if (host->find('*') != std::string::npos) {
      f["hostname"].Error(fmt::format("must be a hostname without wildcard, got {}", Quote(*host)));
    } else if (ValidateHostname(f["hostname"], *host)) {
      rd.hostname = ToLower(*host);
    }
  }
  if (f["path"].present()) rd.path = DecodePathModifier(f["path"]);
  if (auto port = f["port"].Integer(1, 65535)) rd.port = static_cast<int>(*port);
  YamlField code = f["statusCode"];
  if (code.present()) {
    if (auto c = code.Integer(300, 399)) {
      if (*c == 301 || *c == 302 || *c == 303 || *c == 307 || *c == 308) {
        rd.status_code = static_cast<int>(*c);
      } else {
        code.Error(fmt::format("must be 301, 302, 303, 307 or 308, got {}", *c));
      }
    }
  }
  return rd;
}

}  // namespace

HTTPRouteRule DecodeHTTPRouteRule(const YamlField& r, const ObjectMeta& owner) {
  HTTPRouteRule rule;
  if (!r.ExpectMap()) {
    rule.matches.emplace_back();
    return rule;
  }
  r["matches"].ForEach([&](const YamlField& m) { rule.matches.push_back(DecodeMatch(m)); });
  if (rule.matches.empty()) rule.matches.emplace_back();  // PathPrefix "/"

  // Something the rule asks for that infergate does not do: the rule is not served (its
  // requests get a 500) and the rest of the configuration loads.
  auto unsupported = [&](const YamlField& field, std::string message) {
    field.Warning(message + "; the rule is not served (its requests get 500)");
    rule.unsupported.push_back(fmt::format("{}: {}", field.path(), message));
  };
  auto once = [&](const YamlField& f, bool already, std::string_view type) {
    if (already) f["type"].Error(fmt::format("only one {} filter is allowed per rule", type));
    return !already;
  };
  r["filters"].ForEach([&](const YamlField& f) {
    if (!f.ExpectMap()) return;
    auto type = f["type"].RequiredString();
    if (!type) return;
    if (*type == "RequestHeaderModifier") {
      if (!once(f, rule.request_header_modifier.has_value(), *type)) return;
      if (auto mod = DecodeHeaderModifier(f["requestHeaderModifier"], *type)) {
        rule.request_header_modifier = std::move(*mod);
      }
    } else if (*type == "ResponseHeaderModifier") {
      if (!once(f, rule.response_header_modifier.has_value(), *type)) return;
      if (auto mod = DecodeHeaderModifier(f["responseHeaderModifier"], *type)) {
        rule.response_header_modifier = std::move(*mod);
      }
    } else if (*type == "URLRewrite") {
      if (!once(f, rule.url_rewrite.has_value(), *type)) return;
      if (auto rw = DecodeUrlRewrite(f["urlRewrite"])) rule.url_rewrite = std::move(*rw);
    } else if (*type == "RequestRedirect") {
      if (!once(f, rule.redirect.has_value(), *type)) return;
      if (auto rd = DecodeRedirect(f["requestRedirect"])) rule.redirect = std::move(*rd);
    } else if (*type == "RequestMirror") {
      if (auto mirror = DecodeMirror(f["requestMirror"], owner)) {
        rule.mirrors.push_back(std::move(*mirror));
      }
    } else {
      unsupported(f["type"],
                  fmt::format("filter type {} is not supported (supported: RequestHeaderModifier, "
                              "ResponseHeaderModifier, URLRewrite, RequestRedirect, RequestMirror)",
                              Quote(*type)));
    }
  });
  if (rule.url_rewrite && rule.redirect) {
    r["filters"].Error("URLRewrite and RequestRedirect cannot be used in the same rule");
  }
  auto prefix_only = [&](const std::optional<PathModifier>& path, std::string_view filter) {
    if (!path || path->type != PathModifierType::kReplacePrefixMatch) return;
    for (const auto& m : rule.matches) {
      if (m.path.type != PathMatchType::kPathPrefix) {
        r["filters"].Error(fmt::format(
            "{} with ReplacePrefixMatch requires every match of the rule to be a PathPrefix",
            filter));
        return;
      }
    }
  };
  if (rule.url_rewrite) prefix_only(rule.url_rewrite->path, "URLRewrite");
  if (rule.redirect) prefix_only(rule.redirect->path, "RequestRedirect");

  r["backendRefs"].ForEach([&](const YamlField& b) {
    if (b.IsMap() && b["filters"].IsSequence() && b["filters"].size() > 0) {
      unsupported(b["filters"], "per-backend filters are not supported (put them on the rule)");
    }
    if (auto ref = DecodeBackendRef(b, owner, /*with_weight=*/true)) {
      rule.backends.push_back(std::move(*ref));
    }
  });

  YamlField timeouts = r["timeouts"];
  if (timeouts.ExpectMap()) {
    rule.timeouts.request = timeouts["request"].Duration();
    rule.timeouts.backend_request = timeouts["backendRequest"].Duration();
    const auto& req = rule.timeouts.request;
    const auto& backend = rule.timeouts.backend_request;
    if (req && backend && *req > 0 && (*backend == 0 || *backend > *req)) {
      timeouts["backendRequest"].Error(fmt::format("must not exceed timeouts.request ({})",
                                                   timeouts["request"].node().Scalar()));
    }
  }
  return rule;
}

}  // namespace infergate::config
