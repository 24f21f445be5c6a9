// ASCII case-insensitive comparison for protocol tokens (HTTP field names and values,
// schemes). Boost 1.81's beast::iequals reads one byte past the end of both strings
// after a difference in case (its slow loop loads the next byte before it tests the
// count), which AddressSanitizer reports when a string ends at its allocation's end, as
// a request target does; this one reads only what it compares.
#pragma once

#include <cstddef>
#include <string_view>

namespace infergate {

constexpr char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

constexpr bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// Whether `s` begins with `prefix`, ignoring ASCII case.
constexpr bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

}  // namespace infergate
