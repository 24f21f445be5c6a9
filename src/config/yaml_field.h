// Internal to ig_config: reading YAML fields with their path and line, and collecting
// problems in the loader's error format.
//
// A YamlField is a YAML node plus where it sits ("spec.rules[0].matches[1]", YAML line).
// Its accessors never throw: a field of the wrong shape records an error naming the path
// and returns nothing, so a decoder reads an object top to bottom and reports every
// problem in it. Not thread-safe (one per decoding thread).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/resources.h"

namespace infergate::config {

// Formats one problem: "file[:line]: [document N: ][object: ][path: ]message".
std::string FormatProblem(const SourceLocation& where, std::string_view object,
                          std::string_view path, int line, std::string_view message);

// Errors and warnings of one load, already formatted.
class Diagnostics {
 public:
  void Error(std::string message) { errors_.push_back(std::move(message)); }
  void Warning(std::string message) { warnings_.push_back(std::move(message)); }
  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

// The object being decoded: where it is and how errors name it ("HTTPRoute/plain").
class ObjectContext {
 public:
  ObjectContext(Diagnostics* diag, SourceLocation where, std::string object)
      : diag_(diag), where_(std::move(where)), object_(std::move(object)) {}

  void Error(std::string_view path, int line, std::string_view message);
  void Warning(std::string_view path, int line, std::string_view message);
  // Renames the object once its kind and name are known.
  void set_object(std::string object) { object_ = std::move(object); }
  const std::string& object() const { return object_; }
  const SourceLocation& where() const { return where_; }
  // True when Error was called at least once.
  bool failed() const { return failed_; }

 private:
  Diagnostics* diag_;
  SourceLocation where_;
  std::string object_;
  bool failed_ = false;
};

class YamlField {
 public:
  // line_base is added to the YAML marks of descendants: non-zero for a YAML text embedded
  // in a string (an annotation), whose marks count from the string's start.
  YamlField(ObjectContext* ctx, YAML::Node node, std::string path, int line, int line_base = 0)
      : ctx_(ctx),
        node_(std::move(node)),
        path_(std::move(path)),
        line_(line),
        line_base_(line_base) {}
  YamlField(const YamlField&) = default;
  // Assigning a YAML::Node writes into the node it refers to; never do that by accident.
  YamlField& operator=(const YamlField&) = delete;

  // Defined and not null (`key:` and `key: ~` count as absent).
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  bool IsMap() const { return present() && node_.IsMap(); }
  bool IsSequence() const { return present() && node_.IsSequence(); }
  bool IsScalar() const { return present() && node_.IsScalar(); }

  // The child at key of a map (absent if this is not a map or has no such key). Its line is
  // the key's line.
  YamlField operator[](std::string_view key) const;
  // A child with an explicit path segment, for keys that contain dots or slashes:
  // Child("infergate.io/x", "[\"infergate.io/x\"]").
  YamlField Child(std::string_view key, std::string_view path_segment) const;
  // Number of items of a sequence (0 otherwise) and the i-th item.
  std::size_t size() const { return IsSequence() ? node_.size() : 0; }
  YamlField Item(std::size_t i) const;

  const std::string& path() const { return path_; }
  int line() const { return line_; }
  int line_base() const { return line_base_; }
  const YAML::Node& node() const { return node_; }
  ObjectContext* context() const { return ctx_; }

  void Error(std::string_view message) const { ctx_->Error(path_, line_, message); }
  void Warning(std::string_view message) const { ctx_->Warning(path_, line_, message); }

  // Shape checks: false when absent (silently) or of another shape (with an error).
  bool ExpectMap() const;
  bool ExpectSequence() const;

  // Scalar readers. Absent -> nullopt without error; wrong shape or value -> error and
  // nullopt. The Required* forms also report absence ("is required").
  std::optional<std::string> String() const;
  std::optional<std::string> RequiredString() const;  // also rejects ""
  std::optional<std::int64_t> Integer(std::int64_t lo, std::int64_t hi) const;
  std::optional<std::int64_t> RequiredInteger(std::int64_t lo, std::int64_t hi) const;
  std::optional<double> Number(double lo, double hi) const;
  std::optional<TimeNs> Duration() const;
  std::optional<std::uint64_t> Quantity() const;
  // One of the allowed spellings (case-sensitive, as Kubernetes enums are).
  std::optional<std::string> OneOf(std::initializer_list<std::string_view> allowed) const;
  // A map of scalar values (labels, selectors, annotations).
  std::optional<Labels> StringMap() const;

  // Calls f(YamlField item) for each item of a sequence (error if present and not one).
  template <class F>
  void ForEach(F&& f) const {
    if (!ExpectSequence()) return;
    for (std::size_t i = 0; i < node_.size(); ++i) f(Item(i));
  }
  // Calls f(const std::string& key, YamlField value) for each entry of a map.
  template <class F>
  void ForEachEntry(F&& f) const {
    if (!ExpectMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string();
      f(key, YamlField(ctx_, it->second, JoinKey(key), line_base_ + it->first.Mark().line + 1,
                       line_base_));
    }
  }

 private:
  std::string JoinKey(std::string_view key) const;

  ObjectContext* ctx_;
  YAML::Node node_;
  std::string path_;
  int line_;
  int line_base_;
};

// Reports every duplicated key in the maps under field (kubectl rejects them; yaml-cpp
// keeps the first silently).
void CheckDuplicateKeys(const YamlField& field);

// Quotes a value for an error message, shortening long ones.
std::string Quote(std::string_view value);

}  // namespace infergate::config
