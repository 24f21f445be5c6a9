#include "config/yaml_field.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <set>

#include "config/units.h"

namespace infergate::config {
namespace {

std::string_view ShapeName(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "a scalar";
}

}  // namespace

std::string FormatProblem(const SourceLocation& where, std::string_view object,
                          std::string_view path, int line, std::string_view message) {
  std::string out = where.file;
  if (line > 0) out += fmt::format(":{}", line);
  out += ": ";
  if (where.document > 0) out += fmt::format("document {}: ", where.document);
  if (!object.empty()) out += fmt::format("{}: ", object);
  if (!path.empty()) out += fmt::format("{}: ", path);
  out += message;
  return out;
}

std::string Quote(std::string_view value) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < kMax; ++i) {
    char c = value[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  if (value.size() > kMax) out += "...";
  out += '"';
  return out;
}

void ObjectContext::Error(std::string_view path, int line, std::string_view message) {
  failed_ = true;
  diag_->Error(FormatProblem(where_, object_, path, line, message));
}

void ObjectContext::Warning(std::string_view path, int line, std::string_view message) {
  diag_->Warning(FormatProblem(where_, object_, path, line, message));
}

std::string YamlField::JoinKey(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return fmt::format("{}.{}", path_, key);
}

YamlField YamlField::operator[](std::string_view key) const { return Child(key, {}); }

YamlField YamlField::Child(std::string_view key, std::string_view path_segment) const {
  std::string path = path_segment.empty() ? JoinKey(key) : path_ + std::string(path_segment);
  if (IsMap()) {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == key) {
        return YamlField(ctx_, it->second, std::move(path), line_base_ + it->first.Mark().line + 1,
                         line_base_);
      }
    }
  }
  return YamlField(ctx_, YAML::Node(YAML::NodeType::Undefined), std::move(path), line_, line_base_);
}

YamlField YamlField::Item(std::size_t i) const {
  std::string path = fmt::format("{}[{}]", path_, i);
  if (!IsSequence() || i >= node_.size()) {
    return YamlField(ctx_, YAML::Node(YAML::NodeType::Undefined), std::move(path), line_,
                     line_base_);
  }
  YAML::Node item = node_[i];
  int line = item.Mark().line >= 0 ? line_base_ + item.Mark().line + 1 : line_;
  return YamlField(ctx_, item, std::move(path), line, line_base_);
}

bool YamlField::ExpectMap() const {
  if (!present()) return false;
  if (node_.IsMap()) return true;
  Error(fmt::format("must be a map, got {}", ShapeName(node_)));
  return false;
}

bool YamlField::ExpectSequence() const {
  if (!present()) return false;
  if (node_.IsSequence()) return true;
  Error(fmt::format("must be a list, got {}", ShapeName(node_)));
  return false;
}

std::optional<std::string> YamlField::String() const {
  if (!present()) return std::nullopt;
  if (!node_.IsScalar()) {
    Error(fmt::format("must be a string, got {}", ShapeName(node_)));
    return std::nullopt;
  }
  return node_.Scalar();
}

std::optional<std::string> YamlField::RequiredString() const {
  if (!present()) {
    Error("is required");
    return std::nullopt;
  }
  auto s = String();
  if (s && s->empty()) {
    Error("must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t> YamlField::Integer(std::int64_t lo, std::int64_t hi) const {
  if (!present()) return std::nullopt;
  auto fail = [&](std::string_view got) {
    Error(fmt::format("must be an integer between {} and {}, got {}", lo, hi, got));
    return std::nullopt;
  };
  if (!node_.IsScalar()) return fail(ShapeName(node_));
  const std::string& text = node_.Scalar();
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || v < lo ||
      v > hi) {
    return fail(Quote(text));
  }
  return v;
}

std::optional<std::int64_t> YamlField::RequiredInteger(std::int64_t lo, std::int64_t hi) const {
  if (!present()) {
    Error("is required");
    return std::nullopt;
  }
  return Integer(lo, hi);
}

std::optional<double> YamlField::Number(double lo, double hi) const {
  if (!present()) return std::nullopt;
  auto fail = [&](std::string_view got) {
    Error(fmt::format("must be a number between {} and {}, got {}", lo, hi, got));
    return std::nullopt;
  };
  if (!node_.IsScalar()) return fail(ShapeName(node_));
  const std::string& text = node_.Scalar();
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) ||
      v < lo || v > hi) {
    return fail(Quote(text));
  }
  return v;
}

std::optional<TimeNs> YamlField::Duration() const {
  auto s = String();
  if (!s) return std::nullopt;
  auto d = ParseDuration(*s);
  if (!d) {
    Error(fmt::format("must be a duration such as \"10s\", \"500ms\" or \"1h30m\", got {}",
                      Quote(*s)));
  }
  return d;
}

std::optional<std::uint64_t> YamlField::Quantity() const {
  auto s = String();
  if (!s) return std::nullopt;
  auto q = ParseQuantity(*s);
  if (!q) {
    Error(fmt::format("must be a byte quantity such as \"20Mi\", \"1G\" or \"4096\", got {}",
                      Quote(*s)));
  }
  return q;
}

std::optional<std::string> YamlField::OneOf(std::initializer_list<std::string_view> allowed) const {
  auto s = String();
  if (!s) return std::nullopt;
  for (auto a : allowed) {
    if (*s == a) return s;
  }
  std::string list;
  for (auto a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  Error(fmt::format("must be one of {}; got {}", list, Quote(*s)));
  return std::nullopt;
}

std::optional<Labels> YamlField::StringMap() const {
  if (!ExpectMap()) return std::nullopt;
  Labels out;
  bool ok = true;
  ForEachEntry([&](const std::string& key, const YamlField& value) {
    if (key.empty()) {
      value.Error("keys must be non-empty strings");
      ok = false;
      return;
    }
    if (!value.present()) {
      out[key] = "";
      return;
    }
    auto v = value.String();
    if (!v) {
      ok = false;
      return;
    }
    out[key] = *v;
  });
  if (!ok) return std::nullopt;
  return out;
}

namespace {

// Kubernetes objects nest a few levels; deeper is a mistake, or an alias that contains
// itself ("a: &x [*x]"), which yaml-cpp resolves into a cycle. The walk stops there
// with an error instead of recursing until the stack overflows.
constexpr int kMaxDepth = 64;

void CheckDuplicateKeys(ObjectContext* ctx, const YAML::Node& node, const std::string& path,
                        int line_base, int depth) {
  if (depth > kMaxDepth) {
    ctx->Error(path, line_base + node.Mark().line + 1,
               fmt::format("nested more than {} levels deep (or an alias that contains itself)",
                           kMaxDepth));
    return;
  }
  if (node.IsMap()) {
    std::set<std::string, std::less<>> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("?");
      std::string child = path.empty() ? key : path + "." + key;
      if (!seen.insert(key).second) {
        ctx->Error(child, line_base + it->first.Mark().line + 1, "duplicate key");
      }
      CheckDuplicateKeys(ctx, it->second, child, line_base, depth + 1);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      CheckDuplicateKeys(ctx, node[i], fmt::format("{}[{}]", path, i), line_base, depth + 1);
    }
  }
}

}  // namespace

void CheckDuplicateKeys(const YamlField& field) {
  CheckDuplicateKeys(field.context(), field.node(), field.path(), field.line_base(), 0);
}

}  // namespace infergate::config
