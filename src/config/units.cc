#include "config/units.h"

#include <fmt/format.h>

namespace infergate::config {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly n digits at text[pos]; returns false if any is not a digit.
bool ReadFixedDigits(std::string_view text, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = text[pos + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

std::optional<TimeNs> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  TimeNs total = 0;
  int groups = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (++groups > 4) return std::nullopt;
    std::int64_t n = 0;
    std::size_t digits = 0;
    while (i < text.size() && IsDigit(text[i])) {
      n = n * 10 + (text[i] - '0');
      ++i;
      if (++digits > 5) return std::nullopt;
    }
    if (digits == 0 || i == text.size()) return std::nullopt;
    TimeNs unit;
    if (text[i] == 'h') {
      unit = 3600 * kNanosPerSecond;
      ++i;
    } else if (text[i] == 'm' && i + 1 < text.size() && text[i + 1] == 's') {
      unit = kNanosPerMilli;
      i += 2;
    } else if (text[i] == 'm') {
      unit = 60 * kNanosPerSecond;
      ++i;
    } else if (text[i] == 's') {
      unit = kNanosPerSecond;
      ++i;
    } else {
      return std::nullopt;
    }
    total += n * unit;
  }
  return total;
}

std::string FormatDuration(TimeNs d) {
  if (d == 0) return "0s";
  std::string out;
  if (d < 0) {
    out = "-";
    d = -d;
  }
  const TimeNs hour = 3600 * kNanosPerSecond;
  const TimeNs minute = 60 * kNanosPerSecond;
  if (d >= hour) out += fmt::format("{}h", d / hour), d %= hour;
  if (d >= minute) out += fmt::format("{}m", d / minute), d %= minute;
  if (d >= kNanosPerSecond) out += fmt::format("{}s", d / kNanosPerSecond), d %= kNanosPerSecond;
  if (d >= kNanosPerMilli) out += fmt::format("{}ms", d / kNanosPerMilli), d %= kNanosPerMilli;
  if (d > 0) out += fmt::format("{}ns", d);
  return out;
}

std::optional<std::uint64_t> ParseQuantity(std::string_view text) {
  using u128 = unsigned __int128;
  std::size_t i = 0;
  if (i < text.size() && text[i] == '+') ++i;
  u128 mantissa = 0;
  int int_digits = 0;
  int frac_digits = 0;
  while (i < text.size() && IsDigit(text[i])) {
    if (++int_digits > 19) return std::nullopt;
    mantissa = mantissa * 10 + static_cast<unsigned>(text[i] - '0');
    ++i;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && IsDigit(text[i])) {
      if (++frac_digits > 18) return std::nullopt;
      mantissa = mantissa * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
  }
  if (int_digits + frac_digits == 0) return std::nullopt;

  // value = mantissa * num / den, all exact.
  u128 num = 1;
  u128 den = 1;
  for (int k = 0; k < frac_digits; ++k) den *= 10;
  std::string_view suffix = text.substr(i);
  auto pow = [](u128 base, int n) {
    u128 r = 1;
    for (int k = 0; k < n; ++k) r *= base;
    return r;
  };
  if (suffix.empty()) {
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBinary = "KMGTPE";
    auto pos = kBinary.find(suffix[0]);
    if (pos == std::string_view::npos) return std::nullopt;
    num = pow(1024, static_cast<int>(pos) + 1);
  } else if (suffix.size() == 1 && suffix[0] == 'm') {
    den *= 1000;
  } else if (suffix.size() == 1 &&
             std::string_view("kMGTPE").find(suffix[0]) != std::string_view::npos) {
    num = pow(1000, static_cast<int>(std::string_view("kMGTPE").find(suffix[0])) + 1);
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::size_t j = 1;
    bool negative = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) negative = suffix[j++] == '-';
    int exp = 0;
    int exp_digits = 0;
    for (; j < suffix.size(); ++j) {
      if (!IsDigit(suffix[j]) || ++exp_digits > 2) return std::nullopt;
      exp = exp * 10 + (suffix[j] - '0');
    }
    if (exp_digits == 0 || exp > 18) return std::nullopt;
    (negative ? den : num) *= pow(10, exp);
  } else {
    return std::nullopt;
  }
  // mantissa < 10^37 and num <= 1024^6 < 2^60: the product can overflow 128 bits only for
  // absurd inputs; bound the mantissa first.
  const u128 kLimit = static_cast<u128>(1) << 63;
  if (mantissa / den > kLimit) return std::nullopt;
  u128 scaled_num = mantissa;
  if (num > 1) {
    if (scaled_num != 0 && num > (~static_cast<u128>(0)) / scaled_num) return std::nullopt;
    scaled_num *= num;
  }
  u128 value = (scaled_num + den - 1) / den;
  if (value >= kLimit) return std::nullopt;
  return static_cast<std::uint64_t>(value);
}

std::string FormatBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  int unit = -1;
  std::uint64_t v = bytes;
  while (v != 0 && v % 1024 == 0 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  if (unit < 0) return fmt::format("{} B", bytes);
  return fmt::format("{} {}", v, kUnits[unit]);
}

std::optional<std::int64_t> ParseTimestamp(std::string_view text) {
  int year, month, day, hour, minute, second;
  if (!ReadFixedDigits(text, 0, 4, &year) || text.size() < 20 || text[4] != '-' ||
      !ReadFixedDigits(text, 5, 2, &month) || text[7] != '-' ||
      !ReadFixedDigits(text, 8, 2, &day) || (text[10] != 'T' && text[10] != 't') ||
      !ReadFixedDigits(text, 11, 2, &hour) || text[13] != ':' ||
      !ReadFixedDigits(text, 14, 2, &minute) || text[16] != ':' ||
      !ReadFixedDigits(text, 17, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::size_t start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == start) return std::nullopt;
  }
  std::int64_t offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh, om;
    if (!ReadFixedDigits(text, i + 1, 2, &oh) || i + 3 >= text.size() || text[i + 3] != ':' ||
        !ReadFixedDigits(text, i + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (text[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  std::int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return days * 86400 + hour * 3600 + minute * 60 + second - offset;
}

}  // namespace infergate::config
