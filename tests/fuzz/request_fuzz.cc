// libFuzzer target for the client request path as the gateway reads it: request heads
// and bodies through Beast's parser with the gateway's limits and Expect handling
// (http/request_intake.h, the same functions the session calls), pipelined requests on
// one connection, the routing decision (gateway/request_view.h + routing::RouteTable over
// a configuration with every kind of match), and the OpenAI body parser for what routes
// to an inference path.
//
// Input: the first byte picks how the bytes arrive (all at once, or pieces of 1..127
// bytes); the rest is what a client sends before closing.
//
// Properties:
// - reading does not depend on how the bytes arrive: the same requests accepted or refused
//   (and for accepted ones the same method, target and body) in pieces as in one read;
// - an accepted request obeys the smuggling rules: never both Content-Length and
//   Transfer-Encoding, never differing Content-Length values, a Transfer-Encoding only
//   when its last coding is chunked, and a body within the limit;
// - a rejected request gets 400, 413, 414, 431 or 501, and nothing after it is read;
// - a matched route has a backend (every rule in the table has one).
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"
#include "fuzz_check.h"
#include "gateway/openai_request.h"
#include "gateway/request_view.h"
#include "http/request_intake.h"
#include "routing/route_table.h"

namespace {

using namespace infergate;
using Request = bhttp::request<bhttp::string_body>;

constexpr const char* kConfig = R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, annotations: {infergate.io/bind-address: 127.0.0.1}}
spec:
  listeners:
  - {name: http, protocol: HTTP, port: 8080}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["api.example.com", "*.example.org"]
  rules:
  - matches:
    - path: {type: Exact, value: /v1/completions}
      method: POST
      headers:
      - {name: X-Tenant, value: a}
      - {type: RegularExpression, name: x-version, value: "v[0-9]+"}
      queryParams:
      - {name: debug, value: "1"}
    - path: {type: RegularExpression, value: "/v1/chat/.*"}
    backendRefs: [{name: svc, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: any}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /v1}
    backendRefs: [{name: svc, port: 80, weight: 3}, {name: svc, port: 80, weight: 1}]
  - matches:
    - path: {type: Exact, value: /healthz}
      method: GET
    backendRefs: [{name: svc, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: srv}}
spec:
  containers:
  - name: c
    ports: [{name: http, containerPort: 8000}]
status: {podIP: 127.0.0.2}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: srv}
  ports: [{port: 80, targetPort: 8000}]
)";

const routing::RouteTable& Table() {
  static const routing::RouteTable* table = [] {
    spdlog::set_level(spdlog::level::off);
    config::LoadOptions options;
    options.log_notices = false;
    auto snapshot = config::LoadConfigFromString(kConfig, "request_fuzz.yaml", options);
    if (!snapshot.ok()) {
      std::fprintf(stderr, "%s\n", snapshot.error().message.c_str());
      std::abort();
    }
    return new routing::RouteTable((*snapshot)->gateways.at(0).listeners.at(0).rules);
  }();
  return *table;
}

// Small limits, so that oversize heads and bodies are reachable.
constexpr http::IntakeLimits kLimits{1024, 2048};

struct Read {
  int reject = 0;
  bool complete = false;
  std::string method, target, body;
  std::size_t consumed = 0;
  bool keep_alive = false;
};

Read ReadOne(std::string_view data, std::size_t piece) {
  http::RequestParser parser;
  const http::BufferedIntake in = http::ParseBufferedRequest(parser, data, kLimits, piece, true);
  Read r;
  r.reject = in.reject;
  r.complete = in.complete;
  r.consumed = in.consumed;
  if (!in.complete) return r;
  const Request& req = parser.get();
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.body = req.body();
  r.keep_alive = http::KeepAlive(req);

  // Smuggling rules hold for every request the gateway accepts.
  int content_lengths = 0, transfer_encodings = 0;
  std::string_view first_length;
  for (const auto& f : req) {
    if (f.name() == bhttp::field::content_length) {
      if (content_lengths++ == 0) first_length = f.value();
      IG_FUZZ_CHECK(f.value() == first_length);
    } else if (f.name() == bhttp::field::transfer_encoding) {
      ++transfer_encodings;
    }
  }
  IG_FUZZ_CHECK(content_lengths == 0 || transfer_encodings == 0);
  if (transfer_encodings > 0) IG_FUZZ_CHECK(parser.chunked());
  IG_FUZZ_CHECK(r.body.size() <= kLimits.body_bytes);

  // The routing decision, as the session makes it.
  const gateway::RequestHeaderGetter<Request> header{&req};
  const routing::RequestView view = gateway::MakeRequestView(req, header);
  if (const routing::Route* route = Table().Match(view)) {
    IG_FUZZ_CHECK(route->PickBackend() != nullptr);
    if (req.method() == bhttp::verb::post) {
      std::string body = req.body();
      (void)gateway::ParseOpenAIRequest(body);
    }
  }
  return r;
}

// Every request on the connection, until one is rejected, incomplete or closes it.
std::vector<Read> ReadAll(std::string_view data, std::size_t piece) {
  std::vector<Read> out;
  while (!data.empty() && out.size() < 16) {
    Read r = ReadOne(data, piece);
    IG_FUZZ_CHECK(r.consumed <= data.size());
    const bool go_on = r.complete && r.keep_alive && r.consumed > 0;
    if (r.reject) {
      IG_FUZZ_CHECK(r.reject == 400 || r.reject == 413 || r.reject == 414 || r.reject == 431 ||
                    r.reject == 501);
    }
    data.remove_prefix(r.consumed);
    out.push_back(std::move(r));
    if (!go_on) break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = data[0] & 0x7f;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<Read> whole = ReadAll(bytes, 0);
  if (piece == 0) return 0;
  const std::vector<Read> pieces = ReadAll(bytes, piece);
  IG_FUZZ_CHECK(pieces.size() == whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    // Whether a request is refused must not depend on how it arrived; which status it
    // gets may: Beast checks the head limit before parsing fields when the head arrives
    // in pieces, so a head both too large and malformed gets 431 in pieces and 400 at once.
    IG_FUZZ_CHECK((pieces[i].reject != 0) == (whole[i].reject != 0));
    IG_FUZZ_CHECK(pieces[i].complete == whole[i].complete);
    IG_FUZZ_CHECK(pieces[i].method == whole[i].method);
    IG_FUZZ_CHECK(pieces[i].target == whole[i].target);
    IG_FUZZ_CHECK(pieces[i].body == whole[i].body);
  }
  return 0;
}
