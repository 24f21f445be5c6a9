// A small append-only JSON writer for hot paths (access log lines, the live page's state):
// no allocation beyond the output string, no DOM. The caller writes well-formed structure
// (Begin/End pairs); keys and string values are escaped here.
//
// Thread-safety: one writer per thread; it only appends to the string it was given.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace infergate::telemetry {

// Appends `s` as a JSON string (quotes included), escaping control characters, quotes and
// backslashes; bytes that are not valid UTF-8 are replaced by U+FFFD so every line parses.
void AppendJsonString(std::string& out, std::string_view s);

// Appends "2026-12-07T04:10:11.123Z" for a Unix time in milliseconds (the access log's
// time stamps; defined with the log, which also offers FormatUtcMillis).
void AppendUtcMillis(std::string& out, std::int64_t unix_ms);

class JsonOut {
 public:
  explicit JsonOut(std::string& out) : out_(out) {}

  JsonOut& BeginObject() { return Open('{'); }
  JsonOut& EndObject() { return Close('}'); }
  JsonOut& BeginArray() { return Open('['); }
  JsonOut& EndArray() { return Close(']'); }
  // Starts a member "key": inside an object; the next value call writes its value.
  JsonOut& Key(std::string_view key);

  JsonOut& String(std::string_view v);
  JsonOut& Int(std::int64_t v);
  // Non-finite values are written as null (JSON has no NaN).
  JsonOut& Number(double v);
  JsonOut& Bool(bool v);
  JsonOut& Null();

  // Shorthands for Key(k).Value(v).
  JsonOut& Field(std::string_view k, std::string_view v) { return Key(k).String(v); }
  JsonOut& Field(std::string_view k, const char* v) { return Key(k).String(v); }
  JsonOut& Field(std::string_view k, std::int64_t v) { return Key(k).Int(v); }
  JsonOut& Field(std::string_view k, int v) { return Key(k).Int(v); }
  JsonOut& Field(std::string_view k, double v) { return Key(k).Number(v); }
  JsonOut& Field(std::string_view k, bool v) { return Key(k).Bool(v); }

 private:
  JsonOut& Open(char c);
  JsonOut& Close(char c);
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (need_comma_) out_ += ',';
  }

  std::string& out_;
  bool need_comma_ = false;
  bool after_key_ = false;
};

}  // namespace infergate::telemetry
