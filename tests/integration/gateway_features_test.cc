// Gateway API features through the real binary: HTTPS listeners (certificates from
// Secrets, several on one port told apart by SNI), the URLRewrite / RequestRedirect /
// ResponseHeaderModifier filters, unsupported filters answered with 500 while the rest
// serves, backendRequest timeouts (504 with an OpenAI-style error, also on an inference
// route), and SIGTERM with a shutdown grace period (readiness fails first, traffic is
// served on, then the drain, then exit 0).
//
// Certificates are made at test time with the openssl command into a temporary directory;
// requests over TLS go through curl (--resolve pins the name to the test's address).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class GatewayFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    config_dir_ = dir_ + "/config";
    std::filesystem::create_directories(config_dir_);
    gw_address_ = UniqueLoopbackAddress();
  }

  void StartUpstream() {
    up_address_ = UniqueLoopbackAddress();
    ASSERT_TRUE(upstream_.Start(
        {TEST_UPSTREAM_BIN, "--address", up_address_, "--port", "0", "--name", "up"}));
    auto line = upstream_.WaitForLine("listening", 10s);
    ASSERT_TRUE(line.has_value());
    up_port_ = std::stoi(line->substr(line->rfind(':') + 1));
  }

  // A self-signed certificate for `name` (also its subjectAltName) in dir_/<file>.crt/.key.
  void MakeCertificate(const std::string& file, const std::string& name) {
    auto r = RunCommand(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
         "-keyout", file + ".key", "-out", file + ".crt"},
        dir_, 30s);
    ASSERT_EQ(r.code, 0) << r.err;
  }

  // A kubernetes.io/tls Secret with the PEM files as stringData.
  std::string TlsSecret(const std::string& name, const std::string& file) {
    auto indent = [](const std::string& pem) {
      std::string out;
      std::size_t start = 0;
      while (start < pem.size()) {
        auto end = pem.find('\n', start);
        if (end == std::string::npos) end = pem.size();
        out += "    " + pem.substr(start, end - start) + "\n";
        start = end + 1;
      }
      return out;
    };
    return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name +
           "\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n" +
           indent(ReadFile(dir_ + "/" + file + ".crt")) + "  tls.key: |\n" +
           indent(ReadFile(dir_ + "/" + file + ".key")) + "---\n";
  }

  std::string GatewayHead(const std::string& listeners) {
    return "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
           "  annotations:\n    infergate.io/bind-address: \"" +
           gw_address_ + "\"\nspec:\n  gatewayClassName: x\n  listeners:\n" + listeners + "---\n";
  }

  // Service "svc" port 80 -> the upstream, with its Pod.
  std::string ServiceAndPod() {
    return "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  selector:\n"
           "    app: up\n  ports:\n  - port: 80\n    targetPort: " +
           std::to_string(up_port_) +
           "\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: up-0\n  labels:\n    app: up\n"
           "status:\n  podIP: " +
           up_address_ + "\n---\n";
  }

  void WriteConfig(const std::string& yaml) { std::ofstream(config_dir_ + "/config.yaml") << yaml; }

  // Starts `infergate serve`; returns the port of each listener named in `listeners`.
  std::map<std::string, int> StartGateway(const std::vector<std::string>& listeners,
                                          std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        INFERGATE_BIN, "--log-level", "warn", "serve",           "-f",
        config_dir_,   "--workers",   "2",    "--admin-address", gw_address_ + ":0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::map<std::string, int> ports;
    EXPECT_TRUE(gateway_.Start(argv));
    // The admin line comes after every listener's (listeners print in no set order).
    auto admin = gateway_.WaitForLine("admin ", 10s);
    EXPECT_TRUE(admin.has_value()) << gateway_.output();
    if (admin) admin_port_ = std::stoi(admin->substr(admin->rfind(':') + 1));
    const std::string& out = gateway_.output();
    for (const auto& l : listeners) {
      const std::string needle = "listening default/gw/" + l + " ";
      const auto at = out.find(needle);
      EXPECT_NE(at, std::string::npos) << out;
      if (at == std::string::npos) continue;
      const auto end = out.find('\n', at);
      const std::string line = out.substr(at, end - at);
      ports[l] = std::stoi(line.substr(line.rfind(':') + 1));
    }
    return ports;
  }

  // curl over HTTPS to https://<name>:<port><path>, trusting only `ca_file`. Returns the
  // exit code and "<status>\n<body>" (or curl's error).
  CommandOutcome Curl(const std::string& name, int port, const std::string& path,
                      const std::string& ca_file) {
    const std::string p = std::to_string(port);
    return RunCommand(
        {"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", dir_ + "/" + ca_file + ".crt",
         "--resolve", name + ":" + p + ":" + gw_address_, "-w", "\n%{http_code}",
         "https://" + name + ":" + p + path},
        dir_, 20s);
  }

  std::string dir_, config_dir_, gw_address_, up_address_;
  int up_port_ = 0, admin_port_ = 0;
  ChildProcess upstream_, gateway_;
};

TEST_F(GatewayFeaturesTest, HttpsListenersShareAPortAndPickTheCertificateBySni) {
  StartUpstream();
  MakeCertificate("a", "a.example.test");
  MakeCertificate("any", "fallback.example.test");
  const int port = FreePort(gw_address_);
  const std::string p = std::to_string(port);
  WriteConfig(TlsSecret("a-cert", "a") + TlsSecret("any-cert", "any") +
              GatewayHead("  - name: a\n    protocol: HTTPS\n    port: " + p +
                          "\n    hostname: a.example.test\n    tls:\n      certificateRefs:\n"
                          "      - name: a-cert\n"
                          "  - name: any\n    protocol: HTTPS\n    port: " +
                          p +
                          "\n    tls:\n      certificateRefs:\n      - name: any-cert\n"
                          "  - name: plain\n    protocol: HTTP\n    port: 0\n") +
              ServiceAndPod() +
              "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
              "spec:\n  parentRefs:\n  - name: gw\n  rules:\n  - backendRefs:\n"
              "    - name: svc\n      port: 80\n");
  auto ports = StartGateway({"a", "any", "plain"});
  ASSERT_EQ(ports["a"], port);
  ASSERT_EQ(ports["any"], port);

  // SNI a.example.test: the a certificate, and the request reaches the upstream marked
  // as forwarded from https.
  auto a = Curl("a.example.test", port, "/echo", "a");
  ASSERT_EQ(a.code, 0) << a.err << a.out;
  EXPECT_NE(a.out.find("\"x-forwarded-proto\":\"https\""), std::string::npos) << a.out;
  EXPECT_EQ(a.out.substr(a.out.rfind('\n') + 1), "200");
  // Another name falls to the listener without hostname and its certificate: trusting
  // only a's certificate fails the handshake, trusting the fallback's succeeds.
  auto wrong = Curl("fallback.example.test", port, "/", "a");
  EXPECT_NE(wrong.code, 0) << wrong.out;
  auto other = Curl("fallback.example.test", port, "/", "any");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_EQ(other.out, "up\n200");
  // Keep-alive over TLS: two requests on one connection (curl reuses it).
  auto two = RunCommand(
      {"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", dir_ + "/a.crt", "--resolve",
       "a.example.test:" + p + ":" + gw_address_, "https://a.example.test:" + p + "/one",
       "https://a.example.test:" + p + "/two", "-w", "%{num_connects}\n"},
      dir_, 20s);
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_EQ(two.out, "up1\nup0\n");
  // The plain listener is unaffected.
  auto plain = HttpRequest(gw_address_, ports["plain"], "GET", "/echo");
  EXPECT_EQ(plain.status, 200);
  EXPECT_NE(plain.body.find("\"x-forwarded-proto\":\"http\""), std::string::npos) << plain.body;
  // A client speaking plain HTTP to the TLS port gets no response and no crash.
  auto raw = RawExchange(gw_address_, port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
  EXPECT_EQ(raw.find("HTTP/1.1 200"), std::string::npos);
  EXPECT_TRUE(gateway_.running());
}

TEST_F(GatewayFeaturesTest, RewriteRedirectResponseHeadersAndUnsupportedFilters) {
  StartUpstream();
  WriteConfig(GatewayHead("  - name: web\n    protocol: HTTP\n    port: 0\n") + ServiceAndPod() +
              R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  parentRefs:
  - name: gw
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: backend.internal
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /echo}
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: Content-Type, value: text/x-test}]
        add: [{name: X-Served-By, value: infergate}]
    backendRefs: [{name: svc, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        statusCode: 301
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
  - matches: [{path: {type: PathPrefix, value: /secure}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https}
  - matches: [{path: {type: PathPrefix, value: /ext}}]
    filters:
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Auth, name: a}
    backendRefs: [{name: svc, port: 80}]
  - backendRefs: [{name: svc, port: 80}]
)");
  auto ports = StartGateway({"web"});
  const int port = ports["web"];

  // (The test upstream echoes on exactly /echo: /api becomes /echo, the query stays.)
  auto rewritten = HttpRequest(gw_address_, port, "GET", "/api?q=1");
  ASSERT_EQ(rewritten.status, 200) << rewritten.body;
  EXPECT_NE(rewritten.body.find("\"target\":\"/echo?q=1\""), std::string::npos) << rewritten.body;
  EXPECT_NE(rewritten.body.find("\"host\":\"backend.internal\""), std::string::npos)
      << rewritten.body;
  EXPECT_EQ(rewritten.headers["content-type"], "text/x-test");
  EXPECT_EQ(rewritten.headers["x-served-by"], "infergate");

  // (Raw requests: the Host header is the test's, with its port.)
  auto moved = RawExchange(gw_address_, port,
                           "GET /old/page?x=2 HTTP/1.1\r\nHost: site.example:8080\r\n"
                           "Connection: close\r\n\r\n");
  EXPECT_EQ(moved.rfind("HTTP/1.1 301 ", 0), 0u) << moved;
  EXPECT_NE(moved.find("Location: http://site.example:8080/new/page?x=2\r\n"), std::string::npos)
      << moved;
  auto secure = RawExchange(gw_address_, port,
                            "GET /secure HTTP/1.1\r\nHost: site.example:8080\r\n"
                            "Connection: close\r\n\r\n");
  EXPECT_EQ(secure.rfind("HTTP/1.1 302 ", 0), 0u) << secure;
  EXPECT_NE(secure.find("Location: https://site.example/secure\r\n"), std::string::npos) << secure;

  // The rule with an unsupported filter answers 500 (never reaching the upstream without
  // the filter); the other rules serve.
  auto ext = HttpRequest(gw_address_, port, "GET", "/ext/x");
  EXPECT_EQ(ext.status, 500);
  EXPECT_NE(ext.body.find("\"code\":500"), std::string::npos) << ext.body;
  EXPECT_NE(ext.body.find("ExtensionRef"), std::string::npos) << ext.body;
  auto rest = HttpRequest(gw_address_, port, "GET", "/other");
  EXPECT_EQ(rest.status, 200);
  EXPECT_EQ(rest.body, "up");
}

TEST_F(GatewayFeaturesTest, BackendRequestTimeoutIs504OnServiceAndInferenceRoutes) {
  StartUpstream();
  WriteConfig(GatewayHead("  - name: web\n    protocol: HTTP\n    port: 0\n") + ServiceAndPod() +
              R"(apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata:
  name: pool
  annotations: {infergate.io/flow-control: "false"}
spec:
  selector: {app: up}
  targetPortNumber: )" +
              std::to_string(up_port_) +
              R"(
  extensionRef: {name: epp, failureMode: FailOpen}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  parentRefs:
  - name: gw
  rules:
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: pool}]
    timeouts: {request: 10s, backendRequest: 400ms}
  - backendRefs: [{name: svc, port: 80}]
    timeouts: {backendRequest: 300ms}
)");
  auto ports = StartGateway({"web"});
  const int port = ports["web"];
  auto slow = HttpRequest(gw_address_, port, "GET", "/slow?ms=3000");
  EXPECT_EQ(slow.status, 504) << slow.body;
  EXPECT_NE(slow.body.find("\"code\":504"), std::string::npos) << slow.body;
  EXPECT_EQ(HttpRequest(gw_address_, port, "GET", "/slow?ms=10").status, 200);

  const std::string body = R"({"model":"base","prompt":"hello","max_tokens":2})";
  auto fast = HttpRequest(gw_address_, port, "POST", "/v1/completions", body);
  EXPECT_EQ(fast.status, 200) << fast.body;
  auto control = HttpRequest(up_address_, up_port_, "GET", "/control?first_delay_ms=5000");
  ASSERT_EQ(control.status, 200);
  const auto start = Clock::now();
  auto late = HttpRequest(gw_address_, port, "POST", "/v1/completions", body);
  EXPECT_EQ(late.status, 504) << late.body;
  EXPECT_NE(late.body.find("{\"error\":{\"message\":\"upstream request timeout\""),
            std::string::npos)
      << late.body;
  EXPECT_NE(late.body.find("\"code\":504"), std::string::npos) << late.body;
  EXPECT_LT(Clock::now() - start, 4s);  // the server would take 5 s
}

TEST_F(GatewayFeaturesTest, SigtermFailsReadinessServesThroughTheGraceThenDrainsAndExits) {
  StartUpstream();
  WriteConfig(GatewayHead("  - name: web\n    protocol: HTTP\n    port: 0\n") + ServiceAndPod() +
              "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
              "spec:\n  parentRefs:\n  - name: gw\n  rules:\n  - backendRefs:\n"
              "    - name: svc\n      port: 80\n");
  auto ports = StartGateway({"web"}, {"--shutdown-grace", "1.5", "--drain-timeout", "5"});
  const int port = ports["web"];
  // Ready once started (the admin line is printed just before).
  int ready = 0;
  for (auto until = Clock::now() + 5s; ready != 200 && Clock::now() < until;) {
    ready = HttpRequest(gw_address_, admin_port_, "GET", "/readyz").status;
    if (ready != 200) std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(ready, 200);

  const auto signalled = Clock::now();
  ASSERT_TRUE(gateway_.Signal(SIGTERM));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(HttpRequest(gw_address_, admin_port_, "GET", "/readyz").status, 503);
  // A request that starts in the grace period and outlasts it is drained, not cut.
  auto pending = std::async(std::launch::async, [&] {
    return HttpRequest(gw_address_, port, "GET", "/slow?ms=2500", "", {}, 10s);
  });
  // During the grace period new connections are still served.
  int served = 0;
  while (Clock::now() - signalled < 1200ms) {
    auto r = HttpRequest(gw_address_, port, "GET", "/", "", {}, 2s);
    EXPECT_EQ(r.status, 200) << r.error;
    served += r.status == 200;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(served, 3);
  auto r = pending.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "up");
  // After the grace period: no new connections, then exit 0.
  EXPECT_LT(ConnectTcp(gw_address_, port, 500ms), 0);
  auto code = gateway_.Wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_GE(Clock::now() - signalled, 1500ms);
}

}  // namespace
}  // namespace infergate::testing
