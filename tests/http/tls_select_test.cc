// Which certificate of an HTTPS listener a server name selects (SelectTlsCertificate):
// exact names before wildcards, a wildcard covering one label, the first certificate as
// the default. The names themselves come from real certificates in tls_sni_test.
#include <gtest/gtest.h>

#include "http/tls_server.h"

namespace infergate::http {
namespace {

TEST(SelectTlsCertificate, ExactNameThenOneLabelWildcardThenTheFirst) {
  const std::vector<std::vector<std::string>> names = {
      {"a.example.com"},
      {"*.example.com", "b.example.com"},
      {"c.example.com", "*.c.example.com"},
  };
  EXPECT_EQ(SelectTlsCertificate(names, "a.example.com"), 0u);
  EXPECT_EQ(SelectTlsCertificate(names, "b.example.com"), 1u);
  // An exact name wins over an earlier certificate's wildcard.
  EXPECT_EQ(SelectTlsCertificate(names, "c.example.com"), 2u);
  EXPECT_EQ(SelectTlsCertificate(names, "x.example.com"), 1u);
  EXPECT_EQ(SelectTlsCertificate(names, "x.c.example.com"), 2u);
  // A wildcard covers exactly one label, never the bare parent.
  EXPECT_EQ(SelectTlsCertificate(names, "x.y.example.com"), 0u);
  EXPECT_EQ(SelectTlsCertificate(names, "example.com"), 0u);
  // Nothing matches, or no SNI: the first.
  EXPECT_EQ(SelectTlsCertificate(names, "other.test"), 0u);
  EXPECT_EQ(SelectTlsCertificate(names, ""), 0u);
  EXPECT_EQ(SelectTlsCertificate(names, "."), 0u);
  EXPECT_EQ(SelectTlsCertificate({{"*.example.com"}}, ".example.com"), 0u);
}

TEST(SelectTlsCertificate, TheFirstOfSeveralMatchesWins) {
  const std::vector<std::vector<std::string>> names = {
      {"z.test"}, {"*.example.com"}, {"*.example.com"}, {"a.example.com"}, {"a.example.com"}};
  EXPECT_EQ(SelectTlsCertificate(names, "a.example.com"), 3u);
  EXPECT_EQ(SelectTlsCertificate(names, "q.example.com"), 1u);
}

TEST(TlsCertificateNames, TextThatIsNotACertificateHasNoNames) {
  EXPECT_TRUE(TlsCertificateNames("").empty());
  EXPECT_TRUE(TlsCertificateNames("-----BEGIN CERTIFICATE-----\nnot base64\n").empty());
}

}  // namespace
}  // namespace infergate::http
