#include "datalayer/prometheus_text.h"

#include <array>
#include <charconv>
#include <cstring>
#include <limits>

namespace infergate {
namespace {

constexpr std::array<bool, 256> MakeTable(bool allow_digits, bool allow_colon) {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  t['_'] = true;
  if (allow_colon) t[':'] = true;
  if (allow_digits) {
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
  }
  return t;
}

constexpr std::array<bool, 256> kMetricFirst = MakeTable(false, true);
constexpr std::array<bool, 256> kMetricRest = MakeTable(true, true);
constexpr std::array<bool, 256> kLabelFirst = MakeTable(false, false);
constexpr std::array<bool, 256> kLabelRest = MakeTable(true, false);

inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }
inline unsigned char U(char c) { return static_cast<unsigned char>(c); }

inline const char* SkipBlanks(const char* p, const char* end) {
  while (p < end && IsBlank(*p)) ++p;
  return p;
}

// Scans an identifier starting at p; returns its end (== p when there is none).
inline const char* ScanName(const char* p, const char* end, const std::array<bool, 256>& first,
                            const std::array<bool, 256>& rest) {
  if (p >= end || !first[U(*p)]) return p;
  ++p;
  while (p < end && rest[U(*p)]) ++p;
  return p;
}

// p points at an opening quote. Scans to the closing quote; returns a pointer to it, or
// nullptr when the string is unterminated. Sets *escaped when a backslash was seen.
inline const char* ScanQuoted(const char* p, const char* end, bool* escaped) {
  for (++p; p < end; ++p) {
    if (*p == '\\') {
      *escaped = true;
      if (++p == end) return nullptr;
    } else if (*p == '"') {
      return p;
    }
  }
  return nullptr;
}

inline const char* TokenEnd(const char* p, const char* end) {
  while (p < end && !IsBlank(*p)) ++p;
  return p;
}

bool ParseTimestamp(std::string_view text, std::int64_t* out) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (b < e && *b == '+') ++b;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || ptr != e || b == e) return false;
  *out = v;
  return true;
}

}  // namespace

std::string PromLabel::UnescapedValue() const {
  if (!escaped) return std::string(value);
  std::string out;
  AppendUnescaped(value, out);
  return out;
}

const PromLabel* PromSample::FindLabel(std::string_view label_name) const {
  for (const PromLabel& l : labels) {
    if (l.name == label_name) return &l;
  }
  return nullptr;
}

void AppendUnescaped(std::string_view raw, std::string& out) {
  out.reserve(out.size() + raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 == raw.size()) {
      out.push_back(c);
      continue;
    }
    char n = raw[++i];
    switch (n) {
      case '\\':
        out.push_back('\\');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'n':
        out.push_back('\n');
        break;
      default:
        out.push_back('\\');
        out.push_back(n);
        break;
    }
  }
}

bool ParsePromFloat(std::string_view text, double* out) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (b == e) return false;
  if (*b == '+') {
    ++b;
    // "+-1" and "++1" are not numbers; from_chars would accept the second sign.
    if (b == e || *b == '-' || *b == '+') return false;
  }
  double v = 0;
  auto [ptr, ec] = std::from_chars(b, e, v, std::chars_format::general);
  if (ec == std::errc::result_out_of_range && ptr == e) {
    // Go's ParseFloat, which Prometheus uses, saturates to ±Inf (or 0 for a tiny
    // magnitude) instead of failing; do the same.
    const char* exp = b;
    while (exp < e && *exp != 'e' && *exp != 'E') ++exp;
    bool tiny = exp + 1 < e && exp[1] == '-';
    v = tiny ? 0.0 : std::numeric_limits<double>::infinity();
    if (*b == '-') v = -v;
  } else if (ec != std::errc()) {
    return false;
  }
  if (ptr != e) return false;
  *out = v;
  return true;
}

bool PrometheusTextReader::Next(PromSample* sample) {
  while (pos_ < body_.size()) {
    const char* line_begin = body_.data() + pos_;
    const char* body_end = body_.data() + body_.size();
    const void* nl = std::memchr(line_begin, '\n', static_cast<std::size_t>(body_end - line_begin));
    const char* line_end = nl ? static_cast<const char*>(nl) : body_end;
    pos_ = static_cast<std::size_t>(line_end - body_.data()) + (nl ? 1 : 0);
    ++line_no_;

    const char* e = line_end;
    while (e > line_begin && (e[-1] == '\r' || IsBlank(e[-1]))) --e;
    const char* b = SkipBlanks(line_begin, e);
    if (b == e || *b == '#') continue;  // blank line, comment, HELP, TYPE, EOF

    const char* error = ParseLine(std::string_view(b, static_cast<std::size_t>(e - b)), sample);
    if (error == nullptr) return true;
    ++malformed_;
    if (first_error_.empty()) {
      first_error_ = "line " + std::to_string(line_no_) + ": " + error;
    }
  }
  return false;
}

const char* PrometheusTextReader::ParseLine(std::string_view line, PromSample* sample) {
  const char* p = line.data();
  const char* end = p + line.size();
  labels_.clear();
  sample->name = {};
  sample->has_timestamp = false;
  sample->timestamp_ms = 0;

  bool braces = false;
  if (*p != '{') {
    const char* name_end = ScanName(p, end, kMetricFirst, kMetricRest);
    if (name_end == p) return "expected a metric name";
    sample->name = std::string_view(p, static_cast<std::size_t>(name_end - p));
    p = SkipBlanks(name_end, end);
    if (p == name_end && p < end && *p != '{') return "invalid character in metric name";
  }
  if (p < end && *p == '{') {
    braces = true;
    ++p;
    for (;;) {
      p = SkipBlanks(p, end);
      if (p == end) return "unterminated label set";
      if (*p == '}') {
        ++p;
        break;
      }
      std::string_view label_name;
      if (*p == '"') {
        bool escaped = false;
        const char* close = ScanQuoted(p, end, &escaped);
        if (close == nullptr) return "unterminated quoted name";
        std::string_view quoted(p + 1, static_cast<std::size_t>(close - p - 1));
        p = SkipBlanks(close + 1, end);
        if (p < end && *p == '=') {
          label_name = quoted;
        } else {
          // A quoted string on its own is the metric name (UTF-8 names).
          if (!sample->name.empty()) return "second metric name in label set";
          if (escaped) return "escaped metric name not supported";
          sample->name = quoted;
          if (p < end && *p == ',') ++p;
          continue;
        }
      } else {
        const char* name_end = ScanName(p, end, kLabelFirst, kLabelRest);
        if (name_end == p) return "invalid label name";
        label_name = std::string_view(p, static_cast<std::size_t>(name_end - p));
        p = SkipBlanks(name_end, end);
      }
      if (p == end || *p != '=') return "expected '=' after label name";
      p = SkipBlanks(p + 1, end);
      if (p == end || *p != '"') return "expected a quoted label value";
      bool escaped = false;
      const char* close = ScanQuoted(p, end, &escaped);
      if (close == nullptr) return "unterminated label value";
      labels_.push_back(PromLabel{
          label_name, std::string_view(p + 1, static_cast<std::size_t>(close - p - 1)), escaped});
      p = SkipBlanks(close + 1, end);
      if (p < end && *p == ',') {
        ++p;
      } else if (p < end && *p != '}') {
        return "expected ',' or '}' after label value";
      }
    }
  }
  if (sample->name.empty()) return "missing metric name";

  p = SkipBlanks(p, end);
  if (p == end) return "missing value";
  if (!braces && p > line.data() && !IsBlank(p[-1])) return "expected blank before value";
  const char* value_end = TokenEnd(p, end);
  if (!ParsePromFloat(std::string_view(p, static_cast<std::size_t>(value_end - p)),
                      &sample->value)) {
    return "invalid sample value";
  }
  p = SkipBlanks(value_end, end);
  if (p < end && *p != '#') {
    const char* ts_end = TokenEnd(p, end);
    if (!ParseTimestamp(std::string_view(p, static_cast<std::size_t>(ts_end - p)),
                        &sample->timestamp_ms)) {
      return "invalid timestamp";
    }
    sample->has_timestamp = true;
    p = SkipBlanks(ts_end, end);
  }
  // Anything left must be an OpenMetrics exemplar ("# {...} value"), which is ignored.
  if (p < end && *p != '#') return "unexpected text after sample";
  sample->labels = std::span<const PromLabel>(labels_.data(), labels_.size());
  return nullptr;
}

}  // namespace infergate
