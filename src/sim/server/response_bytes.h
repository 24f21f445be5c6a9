// Bytes and clocks the simulator's HTTP front shares: status lines, sized responses,
// OpenAI-style errors, the steady wall clock and hex ids.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "http/beast.h"
#include "sim/server/openai_response.h"

namespace infergate::sim {

inline constexpr std::string_view kJson = "application/json";

inline TimeNs WallNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline std::chrono::steady_clock::time_point ToTimePoint(TimeNs wall) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(wall));
}

inline void AppendHex64(std::string& out, std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kDigits[(v >> shift) & 0xF];
}

inline std::string StatusLine(int status) {
  std::string s = "HTTP/1.1 ";
  s += std::to_string(status);
  s += ' ';
  s += std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
  s += "\r\n";
  return s;
}

// A complete response with a sized body.
inline std::string SizedResponse(int status, std::string_view content_type, std::string_view body,
                                 bool keep_alive) {
  std::string out = StatusLine(status);
  if (!content_type.empty()) {
    out += "content-type: ";
    out += content_type;
    out += "\r\n";
  }
  out += "content-length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  if (!keep_alive) out += "connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

inline std::string ErrorResponse(int status, std::string_view message, bool keep_alive) {
  std::string body;
  AppendErrorJson(body, status, message);
  return SizedResponse(status, kJson, body, keep_alive);
}

}  // namespace infergate::sim
