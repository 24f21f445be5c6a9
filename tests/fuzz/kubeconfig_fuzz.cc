// libFuzzer target for the kubeconfig reader (kube/cluster_access.h): ParseKubeconfig on
// the bytes after the first, and DecodeBase64 (the *-data fields) on the same bytes.
// File references (certificate-authority, client-key, ...) read from a fake reader: the
// first byte says whether it finds them, so no real file is touched.
//
// Invariants (a violation aborts): nothing throws; a parsed access has scheme http or
// https, a host and a port, and a client certificate only with its key; a base64 decode
// yields at most 3 bytes per 4 symbols, and its output encoded again decodes to itself.
// The same entry point runs every seed in a unit test (kubeconfig_fuzz_corpus_test).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../support/base64.h"
#include "fuzz_check.h"
#include "kube/cluster_access.h"

namespace {

using infergate::testing::EncodeBase64;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool files_exist = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto decoded = infergate::kube::DecodeBase64(text);
  if (decoded.ok()) {
    std::size_t symbols = 0;
    for (char c : text) {
      if (c != '=' && c != ' ' && c != '\n' && c != '\r' && c != '\t') ++symbols;
    }
    IG_FUZZ_CHECK(decoded->size() <= symbols * 3 / 4);
    auto again = infergate::kube::DecodeBase64(EncodeBase64(*decoded));
    IG_FUZZ_CHECK(again.ok() && *again == *decoded);
  }

  auto reader = [files_exist](const std::string& path) -> infergate::Result<std::string> {
    if (!files_exist) return infergate::Error{"cannot read " + path};
    return std::string("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
  };
  auto access = infergate::kube::ParseKubeconfig(text, "/fuzz/kubeconfig", "", reader);
  if (access.ok()) {
    IG_FUZZ_CHECK(access->scheme == "https" || access->scheme == "http");
    IG_FUZZ_CHECK(!access->host.empty());
    IG_FUZZ_CHECK(!access->port.empty());
    IG_FUZZ_CHECK(access->client_cert_pem.empty() == access->client_key_pem.empty());
  } else {
    IG_FUZZ_CHECK(access.error().message.find("/fuzz/kubeconfig") != std::string::npos);
  }
  return 0;
}
