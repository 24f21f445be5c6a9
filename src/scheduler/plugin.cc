#include "scheduler/plugin.h"

#include <charconv>
#include <cmath>
#include <memory>

namespace infergate {
namespace {

bool ParseDouble(std::string_view s, double* out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

const TtftPrediction& SchedulingContext::Predict(const EndpointView& endpoint) const {
  const auto i = static_cast<std::size_t>(&endpoint - endpoints.data());
  if (!prediction_known[i]) {
    PrepareKvOutlook(endpoint);
    // Built in place (a prvalue initialising the slot): copying the 128-byte prediction
    // through the stack stalls on store forwarding and costs a third of computing it.
    ::new (static_cast<void*>(&prediction_memo[i]))
        TtftPrediction(PredictTtft(*ttft, endpoint, shape, &prefill_timing));
    prediction_known[i] = 1;
  }
  return prediction_memo[i];
}

std::string_view PluginKindName(PluginKind kind) {
  switch (kind) {
    case PluginKind::kFilter:
      return "filter";
    case PluginKind::kScorer:
      return "scorer";
    case PluginKind::kPicker:
      return "picker";
  }
  return "plugin";
}

const std::string* PluginParams::Find(std::string_view key) {
  read_.emplace(key);
  auto it = values_.find(std::string(key));
  return it == values_.end() ? nullptr : &it->second;
}

void PluginParams::Fail(std::string_view key, const std::string& value, std::string_view expected) {
  if (!error_.empty()) return;
  error_ = "plugin '" + plugin_ + "': parameter " + std::string(key) + "='" + value +
           "': expected " + std::string(expected);
}

double PluginParams::Double(std::string_view key, double def, double min, double max) {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  double d = 0;
  if (!ParseDouble(*v, &d) || d < min || d > max) {
    Fail(key, *v, "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return def;
  }
  return d;
}

std::int64_t PluginParams::Int(std::string_view key, std::int64_t def, std::int64_t min,
                               std::int64_t max) {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  std::int64_t i = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), i);
  if (ec != std::errc() || ptr != v->data() + v->size() || i < min || i > max) {
    Fail(key, *v, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return def;
  }
  return i;
}

std::int64_t PluginParams::IntOrWord(std::string_view key, std::int64_t def, std::int64_t min,
                                     std::int64_t max, std::span<const Word> words) {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  for (const Word& w : words) {
    if (*v == w.text) return w.value;
  }
  std::int64_t i = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), i);
  if (ec != std::errc() || ptr != v->data() + v->size() || i < min || i > max) {
    std::string expected;
    for (const Word& w : words) expected += std::string(w.text) + ", ";
    Fail(key, *v,
         expected + "or an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return def;
  }
  return i;
}

bool PluginParams::Bool(std::string_view key, bool def) {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  if (*v == "true" || *v == "True" || *v == "1") return true;
  if (*v == "false" || *v == "False" || *v == "0") return false;
  Fail(key, *v, "true or false");
  return def;
}

TimeNs PluginParams::Duration(std::string_view key, TimeNs def) {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  std::string_view s(*v);
  struct Unit {
    std::string_view suffix;
    double ns;
  };
  static constexpr Unit kUnits[] = {{"ns", 1},  {"us", 1e3}, {"ms", 1e6},
                                    {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  double scale = 1e9;
  for (const Unit& u : kUnits) {
    if (s.size() > u.suffix.size() && s.ends_with(u.suffix)) {
      // "ms" also ends with "s": take the longest unit that leaves a number.
      double probe = 0;
      if (ParseDouble(s.substr(0, s.size() - u.suffix.size()), &probe)) {
        scale = u.ns;
        s = s.substr(0, s.size() - u.suffix.size());
        break;
      }
    }
  }
  double d = 0;
  if (!ParseDouble(s, &d) || d < 0) {
    Fail(key, *v, "a duration such as 200ms or 2s");
    return def;
  }
  return static_cast<TimeNs>(std::llround(d * scale));
}

Status PluginParams::Check() const {
  if (!error_.empty()) return Error{error_};
  for (const auto& [key, value] : values_) {
    if (read_.count(key) == 0) {
      std::string known;
      for (const std::string& k : read_) known += (known.empty() ? "" : ", ") + k;
      return Error{"plugin '" + plugin_ + "': unknown parameter '" + key + "'" +
                   (known.empty() ? std::string(" (it takes none)") : " (known: " + known + ")")};
    }
  }
  return Ok();
}

}  // namespace infergate
