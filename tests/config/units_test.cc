#include "config/units.h"

#include <gtest/gtest.h>

namespace infergate::config {
namespace {

constexpr TimeNs kSecond = kNanosPerSecond;

TEST(ConfigParseDuration, AcceptsGatewayApiFormat) {
  EXPECT_EQ(ParseDuration("1h"), 3600 * kSecond);
  EXPECT_EQ(ParseDuration("30m"), 1800 * kSecond);
  EXPECT_EQ(ParseDuration("10s"), 10 * kSecond);
  EXPECT_EQ(ParseDuration("500ms"), 500 * kNanosPerMilli);
  EXPECT_EQ(ParseDuration("1h30m"), 5400 * kSecond);
  EXPECT_EQ(ParseDuration("24h"), 86400 * kSecond);
  EXPECT_EQ(ParseDuration("0s"), 0);
  EXPECT_EQ(ParseDuration("1h1m1s1ms"), 3661 * kSecond + kNanosPerMilli);
  EXPECT_EQ(ParseDuration("99999h"), 99999LL * 3600 * kSecond);
  EXPECT_EQ(ParseDuration("1m5s"), 65 * kSecond);  // 'm' followed by a digit is minutes
}

TEST(ConfigParseDuration, RejectsOtherFormats) {
  for (const char* bad : {"", "1", "h", "1.5s", "-1s", "1d", "123456s", "1h1h1h1h1h", " 1s", "1s ",
                          "1H", "1us", "ms", "1m s"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(ConfigFormatDuration, WritesShortestGatewayForm) {
  EXPECT_EQ(FormatDuration(86400 * kSecond), "24h");
  EXPECT_EQ(FormatDuration(5400 * kSecond), "1h30m");
  EXPECT_EQ(FormatDuration(500 * kNanosPerMilli), "500ms");
  EXPECT_EQ(FormatDuration(1500 * kNanosPerMilli), "1s500ms");
  EXPECT_EQ(FormatDuration(0), "0s");
  for (const char* text : {"1h", "30m", "10s", "1h30m", "2h0m5s"}) {
    auto d = ParseDuration(text);
    ASSERT_TRUE(d);
    EXPECT_EQ(ParseDuration(FormatDuration(*d)), d) << text;
  }
}

TEST(ConfigParseQuantity, AcceptsKubernetesQuantities) {
  EXPECT_EQ(ParseQuantity("20Mi"), 20ull << 20);
  EXPECT_EQ(ParseQuantity("512Ki"), 512ull << 10);
  EXPECT_EQ(ParseQuantity("1G"), 1'000'000'000ull);
  EXPECT_EQ(ParseQuantity("1000"), 1000ull);
  EXPECT_EQ(ParseQuantity("1.5Gi"), 1610612736ull);
  EXPECT_EQ(ParseQuantity("0.5Ki"), 512ull);
  EXPECT_EQ(ParseQuantity("1k"), 1000ull);
  EXPECT_EQ(ParseQuantity("2Ti"), 2ull << 40);
  EXPECT_EQ(ParseQuantity("1e3"), 1000ull);
  EXPECT_EQ(ParseQuantity("1E6"), 1'000'000ull);
  EXPECT_EQ(ParseQuantity("+4096"), 4096ull);
  EXPECT_EQ(ParseQuantity("7Ei"), 7ull << 60);
  // Fractions of a byte round up, as Kubernetes does.
  EXPECT_EQ(ParseQuantity("100m"), 1ull);
  EXPECT_EQ(ParseQuantity("0.1"), 1ull);
  EXPECT_EQ(ParseQuantity("1.0001k"), 1001ull);
}

TEST(ConfigParseQuantity, RejectsMalformedOrHuge) {
  for (const char* bad : {"", "Mi", "-1", "1.2.3", "20MB", "1K", "1e19", "8Ei", "1 Mi", "Mi20",
                          "1e", "0x10", "99999999999999999999"}) {
    EXPECT_FALSE(ParseQuantity(bad).has_value()) << bad;
  }
}

TEST(ConfigFormatBytes, UsesExactBinaryUnits) {
  EXPECT_EQ(FormatBytes(20ull << 20), "20 MiB");
  EXPECT_EQ(FormatBytes(4ull << 20), "4 MiB");
  EXPECT_EQ(FormatBytes(512ull << 10), "512 KiB");
  EXPECT_EQ(FormatBytes(1ull << 30), "1 GiB");
  EXPECT_EQ(FormatBytes(1000), "1000 B");
  EXPECT_EQ(FormatBytes(1536), "1536 B");  // not a whole number of KiB
}

TEST(ConfigParseTimestamp, ReadsRfc3339) {
  EXPECT_EQ(ParseTimestamp("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseTimestamp("2024-05-01T12:00:00Z"), 1714564800);
  EXPECT_EQ(ParseTimestamp("2024-05-01T12:00:00.123456Z"), 1714564800);
  EXPECT_EQ(ParseTimestamp("2024-05-01T14:00:00+02:00"), 1714564800);
  EXPECT_EQ(ParseTimestamp("2024-05-01T10:30:00-01:30"), 1714564800);
  EXPECT_EQ(ParseTimestamp("2024-02-29T00:00:00Z"), 1709164800);
  for (const char* bad : {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
                          "2024-05-01 12:00:00Z", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z",
                          "2024-05-01T25:00:00Z", "2024-05-01T12:00:00Zjunk", "yesterday"}) {
    EXPECT_FALSE(ParseTimestamp(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace infergate::config
