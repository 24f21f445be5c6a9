// The gateway binary against real upstreams on loopback: nginx from Debian and the
// controllable test upstream (tests/support/test_upstream.cc).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Upstream {
  std::string address;
  int port = 0;
  ChildProcess process;
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    gw_address_ = UniqueLoopbackAddress();
  }

  // Starts the test upstream on its own loopback address and `port` (0: any).
  std::unique_ptr<Upstream> StartUpstream(const std::string& name, int port = 0) {
    auto u = std::make_unique<Upstream>();
    u->address = UniqueLoopbackAddress();
    EXPECT_TRUE(u->process.Start({TEST_UPSTREAM_BIN, "--address", u->address, "--port",
                                  std::to_string(port), "--name", name}));
    auto line = u->process.WaitForLine("listening", 10s);
    EXPECT_TRUE(line.has_value());
    if (line) u->port = std::stoi(line->substr(line->rfind(':') + 1));
    return u;
  }

  // A Gateway (one listener, port 0, on this test's address), an HTTPRoute to Service
  // "svc" port 80 -> target_port, and one Pod per address.
  std::string ServiceConfig(const std::vector<std::string>& pod_ips, int target_port,
                            const std::string& extra_route = "",
                            const std::string& extra_docs = "") {
    std::string y =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
        "  annotations:\n    infergate.io/bind-address: \"" +
        gw_address_ +
        "\"\nspec:\n  gatewayClassName: x\n  listeners:\n  - name: web\n    protocol: HTTP\n"
        "    port: 0\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
        "spec:\n  parentRefs:\n  - name: gw\n    sectionName: web\n  rules:\n" +
        extra_route +
        "  - backendRefs:\n    - name: svc\n      port: 80\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  selector:\n"
        "    app: up\n  ports:\n  - port: 80\n    targetPort: " +
        std::to_string(target_port) + "\n";
    for (std::size_t i = 0; i < pod_ips.size(); ++i) {
      y += "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: up-" + std::to_string(i) +
           "\n  labels:\n    app: up\nstatus:\n  podIP: " + pod_ips[i] + "\n";
    }
    return y + extra_docs;
  }

  void WriteConfig(const std::string& yaml) { std::ofstream(dir_ + "/config.yaml") << yaml; }

  // Starts `infergate serve` on dir_; fills port_ and admin_port_.
  void StartGateway(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        INFERGATE_BIN,     "--log-level",     "warn", "serve", "-f", dir_,
        "--admin-address", gw_address_ + ":0"};
    if (std::find(extra.begin(), extra.end(), "--workers") == extra.end()) {
      extra.insert(extra.end(), {"--workers", "2"});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(gateway_.Start(argv));
    auto line = gateway_.WaitForLine("listening default/gw/web", 10s);
    ASSERT_TRUE(line.has_value()) << gateway_.output();
    port_ = std::stoi(line->substr(line->rfind(':') + 1));
    auto admin = gateway_.WaitForLine("admin ", 10s);
    ASSERT_TRUE(admin.has_value());
    admin_port_ = std::stoi(admin->substr(admin->rfind(':') + 1));
  }

  HttpResponse Get(const std::string& target, const std::map<std::string, std::string>& h = {}) {
    return HttpRequest(gw_address_, port_, "GET", target, "", h);
  }

  std::string dir_, gw_address_;
  ChildProcess gateway_;
  int port_ = 0, admin_port_ = 0;
};

TEST_F(GatewayTest, ServiceRoundRobinsOverNginxPods) {
  std::vector<std::string> ips = {UniqueLoopbackAddress(), UniqueLoopbackAddress(),
                                  UniqueLoopbackAddress()};
  int port = FreePort(ips[0]);
  std::string block;
  for (std::size_t i = 0; i < ips.size(); ++i) {
    block += "  server { listen " + ips[i] + ":" + std::to_string(port) +
             "; location / { return 200 \"pod" + std::to_string(i) + "\"; } }\n";
  }
  Nginx nginx;
  ASSERT_TRUE(nginx.Start(block, ips[2], port)) << nginx.error_log();
  WriteConfig(ServiceConfig(ips, port));
  StartGateway();
  std::map<std::string, int> seen;
  for (int i = 0; i < 30; ++i) {
    auto r = Get("/anything");
    ASSERT_EQ(r.status, 200) << r.error << r.body;
    ++seen[r.body];
  }
  EXPECT_EQ(seen, (std::map<std::string, int>{{"pod0", 10}, {"pod1", 10}, {"pod2", 10}}));
}

TEST_F(GatewayTest, StreamingChunksKeepTheirSpacing) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway();
  int fd = ConnectTcp(gw_address_, port_, 10s);
  ASSERT_GE(fd, 0);
  std::string req = "GET /sse?chunks=5&interval_ms=200 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::vector<Clock::time_point> arrivals;
  std::string seen;
  char buf[4096];
  auto start = Clock::now();
  while (arrivals.size() < 5 && Clock::now() - start < 10s) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    auto now = Clock::now();
    std::string piece(buf, n);
    for (std::size_t p = piece.find("data:"); p != std::string::npos;
         p = piece.find("data:", p + 1)) {
      arrivals.push_back(now);
    }
    seen += piece;
  }
  ::close(fd);
  ASSERT_EQ(arrivals.size(), 5u) << seen;
  for (std::size_t i = 1; i < arrivals.size(); ++i) {
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(arrivals[i] - arrivals[i - 1]);
    EXPECT_GE(gap.count(), 150) << "event " << i << " was buffered";
  }
  EXPECT_NE(seen.find("text/event-stream"), std::string::npos);
  // The relayed chunked encoding is intact: a client decoding it sees every event and
  // the end of the body only after the last one.
  auto whole = Get("/sse?chunks=5&interval_ms=5");
  ASSERT_EQ(whole.status, 200) << whole.error;
  EXPECT_EQ(whole.body,
            "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\ndata: {\"i\":3}\n\n"
            "data: {\"i\":4}\n\n");
}

TEST_F(GatewayTest, RejectsOversizedBodyAndHeadersAndAmbiguousFraming) {
  auto up = StartUpstream("a");
  std::string policy =
      "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\n"
      "metadata:\n  name: limit\nspec:\n  connection:\n    bufferLimit: 1Ki\n  targetRefs:\n"
      "  - group: gateway.networking.k8s.io\n    kind: Gateway\n    name: gw\n";
  WriteConfig(ServiceConfig({up->address}, up->port, "", policy));
  StartGateway();

  auto ok = HttpRequest(gw_address_, port_, "POST", "/echo", std::string(1000, 'a'));
  EXPECT_EQ(ok.status, 200);
  auto big = HttpRequest(gw_address_, port_, "POST", "/echo", std::string(2000, 'a'));
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("\"type\":\"request_too_large\""), std::string::npos) << big.body;

  auto huge_header = Get("/echo", {{"x-big", std::string(70000, 'h')}});
  EXPECT_EQ(huge_header.status, 431) << huge_header.error;

  std::string smuggle =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n";
  auto raw = RawExchange(gw_address_, port_, smuggle);
  EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;

  auto garbage = RawExchange(gw_address_, port_, "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
  EXPECT_NE(garbage.find("\"error\""), std::string::npos);
}

TEST_F(GatewayTest, RetriesTheNextEndpointWhenOneRefuses) {
  auto up = StartUpstream("alive");
  std::string dead = UniqueLoopbackAddress();  // nothing listens there: connection refused
  WriteConfig(ServiceConfig({dead, up->address}, up->port));
  StartGateway();
  for (int i = 0; i < 10; ++i) {
    auto r = Get("/x");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "alive");
  }
  auto m = HttpRequest(gw_address_, admin_port_, "GET", "/metrics");
  EXPECT_NE(m.body.find("infergate_upstream_connect_errors_total{backend=\"default/svc\","
                        "endpoint=\"" +
                        dead + ":" + std::to_string(up->port) + "\"} 5"),
            std::string::npos)
      << m.body;
}

TEST_F(GatewayTest, UpstreamDyingMidStreamEndsTheStreamWithAnErrorEvent) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway();
  auto r = Get("/sse?chunks=10&interval_ms=20&die_after=3");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.body.find("{\"i\":2}"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("{\"i\":3}"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: {\"error\":"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  // The gateway still serves afterwards.
  EXPECT_EQ(Get("/x").status, 200);
}

TEST_F(GatewayTest, ClientDisconnectClosesTheUpstreamRequest) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway();
  int fd = ConnectTcp(gw_address_, port_, 5s);
  ASSERT_GE(fd, 0);
  std::string req = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  // Wait until the upstream has the request, then go away.
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    auto s = HttpRequest(up->address, up->port, "GET", "/stats");
    if (s.body.find("\"requests\":2") != std::string::npos) break;  // /hold + this one
    std::this_thread::sleep_for(20ms);
  }
  ::close(fd);
  bool closed = false;
  deadline = Clock::now() + 5s;
  while (!closed && Clock::now() < deadline) {
    auto s = HttpRequest(up->address, up->port, "GET", "/stats");
    closed = s.body.find("\"disconnects\":1") != std::string::npos;
    if (!closed) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(closed);
}

TEST_F(GatewayTest, StripsHopByHopAndRoutingHeadersAndAddsForwardedFor) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway();
  auto r = Get("/echo", {{"Connection", "X-Secret"},
                         {"X-Secret", "1"},
                         {"Keep-Alive", "timeout=5"},
                         {"TE", "trailers"},
                         {"x-gateway-destination-endpoint", "10.0.0.1:80"},
                         {"X-Gateway-Model-Name-Rewrite", "evil"},
                         {"X-Keep", "yes"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("x-secret"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("keep-alive\":\"timeout"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("\"te\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("x-gateway-"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"x-keep\":\"yes\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"x-forwarded-for\":\"127."), std::string::npos) << r.body;
}

TEST_F(GatewayTest, NoRouteIs404AndRequestTimeoutIs504) {
  auto up = StartUpstream("a");
  std::string timed =
      "  - matches:\n    - path:\n        type: PathPrefix\n        value: /slow\n"
      "    timeouts:\n      request: 300ms\n    backendRefs:\n    - name: svc\n      port: 80\n";
  WriteConfig(ServiceConfig({up->address}, up->port, timed));
  StartGateway();
  auto slow = Get("/slow?ms=3000");
  EXPECT_EQ(slow.status, 504) << slow.body;
  EXPECT_NE(slow.body.find("\"code\":504"), std::string::npos) << slow.body;
  auto fast = Get("/slow?ms=10");
  EXPECT_EQ(fast.status, 200);
}

TEST_F(GatewayTest, DrainsInFlightRequestsOnSigterm) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway();
  auto pending = std::async(std::launch::async, [&] { return Get("/slow?ms=1000"); });
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(gateway_.Signal(SIGTERM));
  std::this_thread::sleep_for(100ms);
  // No new connections once draining.
  EXPECT_LT(ConnectTcp(gw_address_, port_, 500ms), 0);
  auto r = pending.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "a");
  auto code = gateway_.Wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

TEST_F(GatewayTest, BadReloadKeepsServingAndGoodReloadTakesEffect) {
  auto a = StartUpstream("a");
  auto b = StartUpstream("b", a->port);
  WriteConfig(ServiceConfig({a->address}, a->port));
  StartGateway({"--reload-interval", "0"});
  EXPECT_EQ(Get("/x").body, "a");

  WriteConfig(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
      "  name: broken\nspec:\n  rules: [ this is not valid\n");
  ASSERT_TRUE(gateway_.Signal(SIGHUP));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Get("/x").body, "a");
  auto m = HttpRequest(gw_address_, admin_port_, "GET", "/metrics");
  EXPECT_NE(m.body.find("infergate_config_reloads_total{result=\"failure\"} 1"), std::string::npos);

  WriteConfig(ServiceConfig({b->address}, b->port));
  ASSERT_TRUE(gateway_.Signal(SIGHUP));
  auto deadline = Clock::now() + 5s;
  std::string body;
  while (Clock::now() < deadline && (body = Get("/x").body) != "b") {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(body, "b");
}

TEST_F(GatewayTest, ReloadsWhenTheConfigFileChanges) {
  auto a = StartUpstream("a");
  auto b = StartUpstream("b", a->port);
  WriteConfig(ServiceConfig({a->address}, a->port));
  StartGateway({"--reload-interval", "0.1"});
  EXPECT_EQ(Get("/x").body, "a");
  std::this_thread::sleep_for(1100ms);  // a different mtime second even on coarse clocks
  WriteConfig(ServiceConfig({b->address}, b->port));
  auto deadline = Clock::now() + 5s;
  std::string body;
  while (Clock::now() < deadline && (body = Get("/x").body) != "b") {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(body, "b");
}

TEST_F(GatewayTest, KeepAliveReusesClientAndUpstreamConnections) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway({"--workers", "1"});
  int fd = ConnectTcp(gw_address_, port_, 5s);
  ASSERT_GE(fd, 0);
  std::string req = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    std::string got;
    char buf[1024];
    while (got.find("\r\n\r\na") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      ASSERT_GT(n, 0) << "request " << i;
      got.append(buf, n);
    }
  }
  ::close(fd);
  auto s = HttpRequest(up->address, up->port, "GET", "/stats");
  // One upstream connection served all 20 requests (plus this direct /stats one).
  EXPECT_NE(s.body.find("\"connections\":2"), std::string::npos) << s.body;
}

TEST_F(GatewayTest, AdminMetricsPassPromtool) {
  auto up = StartUpstream("a");
  WriteConfig(ServiceConfig({up->address}, up->port));
  StartGateway();
  Get("/x");
  Get("/missing-is-routed-anyway");
  auto m = HttpRequest(gw_address_, admin_port_, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  std::string file = dir_ + "/metrics.txt";
  std::ofstream(file) << m.body;
  std::string cmd = "promtool check metrics < " + file + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
  EXPECT_EQ(HttpRequest(gw_address_, admin_port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(HttpRequest(gw_address_, admin_port_, "GET", "/readyz").status, 200);
}

}  // namespace
}  // namespace infergate::testing
