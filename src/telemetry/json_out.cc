#include "telemetry/json_out.h"

#include <charconv>
#include <cmath>

#include "core/json_escape.h"

namespace infergate::telemetry {

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

JsonOut& JsonOut::Open(char c) {
  Separate();
  out_ += c;
  need_comma_ = false;
  return *this;
}

JsonOut& JsonOut::Close(char c) {
  out_ += c;
  need_comma_ = true;
  return *this;
}

JsonOut& JsonOut::Key(std::string_view key) {
  Separate();
  AppendJsonString(out_, key);
  out_ += ':';
  after_key_ = true;
  return *this;
}

JsonOut& JsonOut::String(std::string_view v) {
  Separate();
  AppendJsonString(out_, v);
  need_comma_ = true;
  return *this;
}

JsonOut& JsonOut::Int(std::int64_t v) {
  Separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  need_comma_ = true;
  return *this;
}

JsonOut& JsonOut::Number(double v) {
  if (!std::isfinite(v)) return Null();
  Separate();
  char buf[32];
  // Six significant digits are plenty for latencies, loads and ratios; shorter lines.
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  out_.append(buf, r.ptr);
  need_comma_ = true;
  return *this;
}

JsonOut& JsonOut::Bool(bool v) {
  Separate();
  out_ += v ? "true" : "false";
  need_comma_ = true;
  return *this;
}

JsonOut& JsonOut::Null() {
  Separate();
  out_ += "null";
  need_comma_ = true;
  return *this;
}

}  // namespace infergate::telemetry
