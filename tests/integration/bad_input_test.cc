// Malformed client input against a running gateway, over raw sockets: each case gets the
// status nginx 1.22 gives as a reverse proxy (or an OpenAI-style JSON error on the
// inference route), the connection is closed or kept as nginx would, and the gateway
// keeps serving. docs/hardening.md has the table (case, nginx's answer, infergate's) and
// scripts/bad_input_table.sh measures both sides.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace infergate::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBody = R"({"model":"qwq","prompt":"hello","max_tokens":2})";

std::string Post(const std::string& body, const std::string& extra = "") {
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Chunked(const std::string& chunks) {
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks;
}

// A string literal with its embedded NULs.
template <std::size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

std::string Hex(std::size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", n);
  return buf;
}

struct Outcome {
  std::vector<int> statuses;
  bool closed = false;       // the gateway closed the connection
  bool serves_next = false;  // (when open) a follow-up request on it was answered
  std::string bytes;
};

// Sends `bytes`, reads until the peer closes or stays quiet for `quiet` after answering
// (or `stall_for` passes when the case stalls on purpose), then tries one more request on
// a connection left open.
Outcome Exchange(const std::string& address, int port, const std::string& bytes,
                 std::chrono::milliseconds stall_for = 0ms) {
  Outcome out;
  const int fd = ConnectTcp(address, port, 10s);
  if (fd < 0) return out;
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, 100);
    const auto now = std::chrono::steady_clock::now();
    if (r > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        out.closed = true;
        break;
      }
      out.bytes.append(buf, static_cast<std::size_t>(n));
      last = now;
      continue;
    }
    if (now - start > 15s) break;
    if (now - start < stall_for) continue;
    if (!out.bytes.empty() && now - last > 500ms) break;
    if (out.bytes.empty() && stall_for == 0ms && now - start > 5s) break;
  }
  if (!out.closed) {
    const std::string next = Post(kBody);
    ::send(fd, next.data(), next.size(), MSG_NOSIGNAL);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      out.serves_next =
          n > 0 && std::string_view(buf, static_cast<std::size_t>(n)).starts_with("HTTP/1.1 200");
    }
  }
  ::close(fd);
  static const std::regex status_line("HTTP/1\\.[01] (\\d{3}) ");
  for (std::sregex_iterator it(out.bytes.begin(), out.bytes.end(), status_line), end; it != end;
       ++it) {
    out.statuses.push_back(std::stoi((*it)[1]));
  }
  return out;
}

struct Case {
  std::string name;
  std::string bytes;
  std::vector<int> statuses;  // expected, in order
  bool closes;                // the gateway closes the connection after answering
  bool json_error = false;    // the answer is an OpenAI-style error body
  std::chrono::milliseconds stall_for = 0ms;
};

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    address_ = UniqueLoopbackAddress();
    server_address_ = UniqueLoopbackAddress();
    ASSERT_TRUE(server_.Start({TEST_UPSTREAM_BIN, "--address", server_address_, "--port", "0",
                               "--name", "s0", "--models", "qwq"}));
    auto line = server_.WaitForLine("listening", 10s);
    ASSERT_TRUE(line.has_value());
    const int server_port = std::stoi(line->substr(line->rfind(':') + 1));
    // A 64 KiB body limit (ClientTrafficPolicy), the default 64 KiB head limit.
    std::ofstream(dir_ + "/config.yaml")
        << "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n"
           "  annotations:\n    infergate.io/bind-address: \""
        << address_
        << "\"\nspec:\n  gatewayClassName: x\n  listeners:\n  - name: llm\n    protocol: HTTP\n"
           "    port: 0\n---\n"
           "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
           "spec:\n  parentRefs:\n  - name: gw\n  rules:\n  - backendRefs:\n"
           "    - group: inference.networking.x-k8s.io\n      kind: InferencePool\n"
           "      name: pool\n---\n"
           "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata:\n  name: pool\nspec:\n  selector:\n    app: llm\n  targetPortNumber: "
        << server_port
        << "\n---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
           "metadata:\n  name: qwq\nspec:\n  modelName: qwq\n  poolRef:\n    name: pool\n---\n"
           "apiVersion: v1\nkind: Pod\nmetadata:\n  name: llm-0\n  labels:\n    app: llm\n"
           "status:\n  podIP: "
        << server_address_
        << "\n---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\n"
           "metadata:\n  name: limit\nspec:\n  connection:\n    bufferLimit: 64Ki\n"
           "  targetRefs:\n  - group: gateway.networking.k8s.io\n    kind: Gateway\n"
           "    name: gw\n";
    ASSERT_TRUE(
        gateway_.Start({INFERGATE_BIN, "--log-level", "error", "serve", "-f", dir_, "--workers",
                        "2", "--admin-address", address_ + ":0", "--scrape-interval", "0.05",
                        "--read-timeout", "1", "--idle-timeout", "1"}));
    auto listening = gateway_.WaitForLine("listening default/gw/llm", 10s);
    ASSERT_TRUE(listening.has_value()) << gateway_.output();
    port_ = std::stoi(listening->substr(listening->rfind(':') + 1));
    // Wait for the first answer from the pool (its endpoint scraped).
    for (int i = 0; i < 200; ++i) {
      if (HttpRequest(address_, port_, "POST", "/v1/completions", kBody).status == 200) return;
      std::this_thread::sleep_for(25ms);
    }
    FAIL() << "the gateway never answered a valid request";
  }

  std::string dir_, address_, server_address_;
  ChildProcess server_, gateway_;
  int port_ = 0;
};

std::vector<Case> Cases() {
  const std::string big(100 * 1024, 'x');
  std::string big_chunks;
  for (int i = 0; i < 5; ++i) big_chunks += "5000\r\n" + std::string(0x5000, 'x') + "\r\n";
  const std::string body = kBody;
  return {
      {"valid request", Post(body), {200}, false},
      {"CL + TE",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       {400},
       true,
       true},
      {"TE + CL",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 5\r\n\r\n0\r\n\r\n",
       {400},
       true,
       true},
      {"duplicate CL, different",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
       "abcd",
       {400},
       true,
       true},
      {"duplicate CL, same",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n"
       "abcd",
       {400},
       true,
       true},
      {"TE not chunked",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
       {501},
       true,
       true},
      {"bad chunk size", Chunked("zz\r\nabc\r\n0\r\n\r\n"), {400}, true, true},
      {"chunk size overflow",
       Chunked("fffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
       {400},
       true,
       true},
      {"valid chunked body",
       Chunked(Hex(body.size()) + "\r\n" + body + "\r\n0\r\n\r\n"),
       {200},
       false},
      {"obsolete line folding", Post(body, "X-A: a\r\n  folded\r\n"), {400}, true, true},
      {"NUL in header value", Post(body, Bytes("X-A: a\0b\r\n")), {400}, true, true},
      {"NUL in target",
       Bytes("POST /v1/comp\0letions HTTP/1.1\r\nHost: x\r\n\r\n"),
       {400},
       true,
       true},
      {"absolute-form target",
       "POST http://x/v1/completions HTTP/1.1\r\nHost: y\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body,
       {200},
       false},
      {"request line 20 KB",
       "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       {414},
       true,
       true},
      {"header 70 KB", Post(body, "X-Big: " + std::string(70000, 'h') + "\r\n"), {431}, true, true},
      {"body over limit (Content-Length)", Post(big), {413}, true, true},
      {"body over limit (chunked)", Chunked(big_chunks + "0\r\n\r\n"), {413}, true, true},
      {"Expect: 100-continue", Post(body, "Expect: 100-continue\r\n"), {100, 200}, false},
      {"Expect: 100-continue, body over limit",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
       "Content-Length: 99999999\r\n\r\n",
       {413},
       true,
       true},
      {"Expect: other", Post(body, "Expect: teapot\r\n"), {200}, false},
      {"pipelined (3 requests)", Post(body) + Post(body) + Post(body), {200, 200, 200}, false},
      {"slowloris head",
       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-A: ",
       {408},
       true,
       true,
       3000ms},
      {"HTTP/1.0 without Host",
       "POST /v1/completions HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body,
       {200},
       true},
      {"HTTP/1.1 without Host",
       "POST /v1/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
       {400},
       true,
       true},
      {"garbage", "NOT HTTP AT ALL\r\n\r\n", {400}, true, true},
      {"invalid JSON", Post(R"({"model":)"), {400}, false, true},
      {"empty body", Post(""), {400}, false, true},
      {"JSON not an object", Post("[1,2]"), {400}, false, true},
      {"missing model", Post(R"({"prompt":"x"})"), {400}, false, true},
      {"wrong type (model)", Post(R"({"model":1,"prompt":"x"})"), {400}, false, true},
      {"wrong type (stream)",
       Post(R"({"model":"qwq","prompt":"x","stream":"yes"})"),
       {400},
       false,
       true},
      {"unknown model", Post(R"({"model":"no-such-model","prompt":"x"})"), {404}, false, true},
  };
}

TEST_F(BadInputTest, EveryCaseGetsNginxsStatusAndConnectionHandling) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Outcome out = Exchange(address_, port_, c.bytes, c.stall_for);
    EXPECT_EQ(out.statuses, c.statuses) << out.bytes.substr(0, 400);
    EXPECT_EQ(out.closed, c.closes) << out.bytes.substr(0, 400);
    if (!c.closes) {
      EXPECT_TRUE(out.serves_next) << "connection left open but not serving";
    }
    if (c.json_error) {
      EXPECT_NE(out.bytes.find("{\"error\":{"), std::string::npos) << out.bytes.substr(0, 400);
    }
    // The gateway keeps serving after every case.
    EXPECT_EQ(HttpRequest(address_, port_, "POST", "/v1/completions", kBody).status, 200);
  }
  EXPECT_TRUE(gateway_.running());
}

}  // namespace
}  // namespace infergate::testing
