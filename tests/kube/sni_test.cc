// Several certificates on one HTTPS listener, chosen by SNI, through the real binary in
// file mode (`serve -f`, Secrets in YAML) and in Kubernetes mode (`serve --kubeconfig`
// against the fake API server, Secrets with base64 data). The listener's certificateRefs
// are [alpha, beta, gamma]: alpha's subjectAltName is alpha.example.test, beta's
// beta.example.test and *.beta.example.test, gamma has no subjectAltName and the CN
// gamma.example.test. A second listener on the same port with hostname delta.example.test
// has its own certificate (the per-listener choice stays as it was).
//
// The client is OpenSSL in this process: it sends the SNI (or none), completes the
// handshake without verifying, and reports the subject CN of the certificate it got;
// then one HTTP request on the connection shows the listener serves over it.
// Certificates are made at run time with the openssl command (no key is committed).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/kube/kube_fixture.h"
#include "tests/support/base64.h"
#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

struct Handshake {
  std::string subject_cn;  // of the server's certificate; "" when the handshake failed
  std::string http_status_line;
  std::string error;
};

// Connects to address:port, handshakes with `sni` (none when empty), reads the server
// certificate's CN and sends one request.
Handshake TlsHello(const std::string& address, int port, const std::string& sni) {
  Handshake out;
  int fd = ConnectTcp(address, port, 5s);
  if (fd < 0) {
    out.error = "connect failed";
    return out;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  if (SSL_connect(ssl) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    out.error = std::string("handshake: ") + buf;
  } else if (X509* peer = SSL_get1_peer_certificate(ssl)) {
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    out.subject_cn = cn;
    X509_free(peer);
    const std::string req = "GET /none HTTP/1.1\r\nHost: " + (sni.empty() ? address : sni) +
                            "\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) > 0) {
      char buf[512];
      int n = SSL_read(ssl, buf, sizeof buf - 1);
      if (n > 0) {
        std::string text(buf, static_cast<std::size_t>(n));
        out.http_status_line = text.substr(0, text.find("\r\n"));
      }
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return out;
}

class SniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    gw_address_ = UniqueLoopbackAddress();
    MakeCertificate("alpha", "/CN=alpha-cert", "DNS:alpha.example.test");
    MakeCertificate("beta", "/CN=beta-cert", "DNS:beta.example.test,DNS:*.beta.example.test");
    MakeCertificate("gamma", "/CN=gamma.example.test", "");
    MakeCertificate("delta", "/CN=delta-cert", "DNS:delta.example.test");
  }

  void MakeCertificate(const std::string& file, const std::string& subject,
                       const std::string& san) {
    std::vector<std::string> argv = {"/usr/bin/openssl",
                                     "req",
                                     "-x509",
                                     "-newkey",
                                     "ec",
                                     "-pkeyopt",
                                     "ec_paramgen_curve:P-256",
                                     "-nodes",
                                     "-days",
                                     "2",
                                     "-subj",
                                     subject,
                                     "-keyout",
                                     file + ".key",
                                     "-out",
                                     file + ".crt"};
    if (!san.empty()) {
      argv.push_back("-addext");
      argv.push_back("subjectAltName=" + san);
    }
    auto r = RunCommand(argv, dir_, 30s);
    ASSERT_EQ(r.code, 0) << r.err;
  }

  // The listeners: "multi" (no hostname; alpha, beta, gamma) and "delta" (its hostname,
  // its certificate), both HTTPS on `port`.
  json GatewayJson(int port) const {
    json gw = {{"apiVersion", "gateway.networking.k8s.io/v1"},
               {"kind", "Gateway"},
               {"metadata",
                {{"name", "gw"},
                 {"namespace", "default"},
                 {"annotations", {{"infergate.io/bind-address", gw_address_}}}}},
               {"spec", {{"gatewayClassName", "infergate"}, {"listeners", json::array()}}}};
    auto refs = [](std::initializer_list<const char*> names) {
      json out = json::array();
      for (const char* n : names) out.push_back({{"name", n}});
      return out;
    };
    gw["spec"]["listeners"].push_back(
        {{"name", "multi"},
         {"protocol", "HTTPS"},
         {"port", port},
         {"tls", {{"certificateRefs", refs({"alpha-cert", "beta-cert", "gamma-cert"})}}}});
    gw["spec"]["listeners"].push_back({{"name", "delta"},
                                       {"protocol", "HTTPS"},
                                       {"port", port},
                                       {"hostname", "delta.example.test"},
                                       {"tls", {{"certificateRefs", refs({"delta-cert"})}}}});
    return gw;
  }

  // A kubernetes.io/tls Secret as the API server holds it (data, base64).
  json SecretJson(const std::string& file) const {
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata", {{"name", file + "-cert"}, {"namespace", "default"}}},
            {"type", "kubernetes.io/tls"},
            {"data",
             {{"tls.crt", EncodeBase64(ReadFile(dir_ + "/" + file + ".crt"))},
              {"tls.key", EncodeBase64(ReadFile(dir_ + "/" + file + ".key"))}}}};
  }

  // Every case, against the port both listeners share.
  void ExpectCertificatesBySni(int port) {
    struct Case {
      std::string sni, cn;
    } cases[] = {
        {"alpha.example.test", "alpha-cert"},
        {"beta.example.test", "beta-cert"},
        {"x.beta.example.test", "beta-cert"},          // beta's wildcard
        {"a.b.beta.example.test", "alpha-cert"},       // a wildcard covers one label only
        {"GAMMA.example.test", "gamma.example.test"},  // CN (no subjectAltName), any case
        {"unknown.example.test", "alpha-cert"},        // nothing matches: the first
        {"", "alpha-cert"},                            // no SNI: the first
        {"delta.example.test", "delta-cert"},          // the other listener, by its hostname
    };
    for (const auto& c : cases) {
      auto h = TlsHello(gw_address_, port, c.sni);
      EXPECT_EQ(h.subject_cn, c.cn) << "SNI '" << c.sni << "': " << h.error;
      // No route matches: the listener answers 404 over the chosen certificate.
      EXPECT_EQ(h.http_status_line.rfind("HTTP/1.1 404", 0), 0u)
          << "SNI '" << c.sni << "': " << h.http_status_line;
    }
  }

  std::string dir_, gw_address_;
};

TEST_F(SniTest, FileModeServesTheCertificateWhoseNamesMatchTheSni) {
  const std::string config_dir = dir_ + "/config";
  std::filesystem::create_directories(config_dir);
  const int port = FreePort(gw_address_);
  // JSON documents are YAML: one file per object.
  std::ofstream(config_dir + "/gateway.yaml") << GatewayJson(port).dump(2);
  for (const char* f : {"alpha", "beta", "gamma", "delta"}) {
    std::ofstream(config_dir + "/" + f + ".yaml") << SecretJson(f).dump(2);
  }
  ChildProcess gateway;
  ASSERT_TRUE(gateway.Start({INFERGATE_BIN, "--log-level", "warn", "serve", "-f", config_dir,
                             "--workers", "1", "--admin-address", gw_address_ + ":0"}));
  ASSERT_TRUE(gateway.WaitForLine("admin ", 15s).has_value()) << gateway.output();
  ExpectCertificatesBySni(port);
  EXPECT_TRUE(gateway.running());
}

TEST_F(SniTest, KubernetesModeServesTheCertificateWhoseNamesMatchTheSni) {
  FakeApiServer api;
  RegisterWatchedTypes(api);
  api.AddType("v1", "Secret", "secrets");
  api.RequireToken("sni-t0ken");
  ASSERT_TRUE(api.Start());
  const int port = FreePort(gw_address_);
  api.Apply(GatewayClassObject());
  api.Apply(GatewayJson(port));
  for (const char* f : {"alpha", "beta", "gamma", "delta"}) api.Apply(SecretJson(f));

  ChildProcess gateway;
  const std::string kubeconfig = WriteKubeconfig(dir_, api.url(), "sni-t0ken");
  ASSERT_TRUE(gateway.Start({INFERGATE_BIN, "--log-level", "warn", "serve", "--kubeconfig",
                             kubeconfig, "--workers", "1", "--admin-address", gw_address_ + ":0",
                             "--status-address", "192.0.2.9"}));
  ASSERT_TRUE(gateway.WaitForLine("admin ", 15s).has_value()) << gateway.output();
  ExpectCertificatesBySni(port);
  EXPECT_TRUE(gateway.running());
  gateway.Stop();
}

}  // namespace
}  // namespace infergate::testing
