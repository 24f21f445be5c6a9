// The ext_proc message state machine against a scripted picker: what Envoy gets back at
// each phase (GIE's endpoint-picker protocol), body chunking, the subset hint, the served
// endpoint, response following, early ends and messages out of order.
#include "extproc/session.h"

#include <gtest/gtest.h>

#include <simdjson.h>

namespace infergate::extproc {
namespace {

struct FakeTicket final : PickTicket {
  std::string served;
  int status = 0;
  std::string response;
  int finished = 0;  // 1 success, -1 failure
  int abandoned = 0;
  bool rewrite = false;
  void Served(std::string_view e) override { served = e; }
  void ResponseStarted(int s) override { status = s; }
  bool RewritesResponseBody() const override { return rewrite; }
  void ResponseBody(std::string_view piece, bool, std::string& out) override {
    response += piece;
    out.append(piece);
    if (rewrite) out.append("!");
  }
  void Finish(bool success) override { finished = success ? 1 : -1; }
  void Abandon() override { ++abandoned; }
};

struct FakePicker final : Picker {
  RequestHead head;
  std::string body;
  DecisionCallback done;
  std::shared_ptr<FakeTicket> ticket = std::make_shared<FakeTicket>();
  std::shared_ptr<PickTicket> Admit(RequestHead h, std::string b, DecisionCallback d) override {
    head = std::move(h);
    body = std::move(b);
    done = std::move(d);
    return ticket;
  }
};

pb::ProcessingRequest Headers(std::vector<std::pair<std::string, std::string>> hs, bool eos) {
  pb::ProcessingRequest m;
  for (auto& [k, v] : hs) {
    auto* h = m.mutable_request_headers()->mutable_headers()->add_headers();
    h->set_key(k);
    h->set_raw_value(v);
  }
  m.mutable_request_headers()->set_end_of_stream(eos);
  return m;
}

pb::ProcessingRequest Body(std::string b, bool eos, bool response = false) {
  pb::ProcessingRequest m;
  auto* body = response ? m.mutable_response_body() : m.mutable_request_body();
  body->set_body(std::move(b));
  body->set_end_of_stream(eos);
  return m;
}

pb::ProcessingRequest ResponseHeaders(std::string status, std::string served = "") {
  pb::ProcessingRequest m;
  auto* h = m.mutable_response_headers()->mutable_headers()->add_headers();
  h->set_key(":status");
  h->set_raw_value(status);
  if (!served.empty()) {
    auto& lb = (*m.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb"];
    (*lb.mutable_fields())["x-gateway-destination-endpoint-served"].set_string_value(served);
  }
  return m;
}

std::string HeaderOf(const pb::HeaderMutation& m, std::string_view key) {
  for (const auto& o : m.set_headers()) {
    if (o.header().key() == key) return o.header().raw_value();
  }
  return "<none>";
}

// Drives headers + body (split into `pieces`) and returns the admit step's session.
void SendRequest(Session& s, FakePicker& p, const std::vector<std::string>& pieces) {
  auto st = s.OnRequest(Headers({{":path", "/v1/completions"}, {"X-Session-Id", "abc"}}, false));
  ASSERT_FALSE(st.error);
  ASSERT_TRUE(st.replies.empty());  // nothing until the body is complete
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    st = s.OnRequest(Body(pieces[i], i + 1 == pieces.size()));
    ASSERT_FALSE(st.error) << st.error->message;
    ASSERT_TRUE(st.replies.empty());
    ASSERT_EQ(st.admit, i + 1 == pieces.size());
  }
  s.Admit(p, [](PickDecision) {});
}

TEST(ExtProcSession, RoutedRequestGetsDestinationMetadataAndItsBodyBackInChunks) {
  SessionOptions o;
  o.chunk_bytes = 10;  // small chunks make the split visible
  Session s(o);
  FakePicker p;
  const std::string body = R"({"model":"m","prompt":"héllo wörld, a longer prompt"})";
  // Split mid-UTF-8 sequence and mid-token.
  SendRequest(s, p, {body.substr(0, 1), body.substr(1, 15), body.substr(16, 1), body.substr(17)});
  EXPECT_EQ(p.body, body);
  EXPECT_EQ(*p.head.Find("x-session-id"), "abc");  // keys lower-cased

  PickDecision d;
  d.endpoints = {"10.0.0.1:8000", "10.0.0.2:8000"};
  const std::string rewritten = R"({"model":"target","prompt":"héllo wörld, a longer prompt"})";
  d.body = rewritten;
  auto st = s.OnDecision(d);
  ASSERT_FALSE(st.error);
  ASSERT_GE(st.replies.size(), 2u);
  const auto& hr = st.replies[0];
  ASSERT_TRUE(hr.has_request_headers());
  const auto& common = hr.request_headers().response();
  EXPECT_TRUE(common.clear_route_cache());
  EXPECT_EQ(HeaderOf(common.header_mutation(), "x-gateway-destination-endpoint"), "10.0.0.1:8000");
  EXPECT_EQ(HeaderOf(common.header_mutation(), "content-length"), std::to_string(rewritten.size()));
  const auto& lb = hr.dynamic_metadata().fields().at("envoy.lb").struct_value();
  EXPECT_EQ(lb.fields().at("x-gateway-destination-endpoint").string_value(),
            "10.0.0.1:8000,10.0.0.2:8000");
  std::string echoed;
  for (std::size_t i = 1; i < st.replies.size(); ++i) {
    ASSERT_TRUE(st.replies[i].has_request_body());
    const auto& sr = st.replies[i].request_body().response().body_mutation().streamed_response();
    EXPECT_LE(sr.body().size(), 10u);
    EXPECT_EQ(sr.end_of_stream(), i + 1 == st.replies.size());
    echoed += sr.body();
  }
  EXPECT_EQ(echoed, rewritten);

  // The response: a fallback served; the body is followed and answered piece by piece.
  st = s.OnRequest(ResponseHeaders("200", "10.0.0.2:8000"));
  ASSERT_EQ(st.replies.size(), 1u);
  EXPECT_TRUE(st.replies[0].has_response_headers());
  EXPECT_EQ(p.ticket->served, "10.0.0.2:8000");
  EXPECT_EQ(p.ticket->status, 200);
  st = s.OnRequest(Body("data: 1\n\n", false, true));
  ASSERT_EQ(st.replies.size(), 1u);
  EXPECT_EQ(st.replies[0].response_body().response().body_mutation().streamed_response().body(),
            "data: 1\n\n");
  EXPECT_FALSE(st.done);
  st = s.OnRequest(Body("data: [DONE]\n\n", true, true));
  EXPECT_TRUE(st.done);
  ASSERT_EQ(st.replies.size(), 2u);  // 14 bytes in chunks of 10
  EXPECT_FALSE(
      st.replies[0].response_body().response().body_mutation().streamed_response().end_of_stream());
  EXPECT_TRUE(
      st.replies[1].response_body().response().body_mutation().streamed_response().end_of_stream());
  EXPECT_EQ(p.ticket->finished, 1);
  EXPECT_EQ(p.ticket->abandoned, 0);
  // Anything more is a protocol error.
  st = s.OnRequest(Body("x", true, true));
  ASSERT_TRUE(st.error);
}

TEST(ExtProcSession, LargeBodiesComeBackInChunksOfAtMost62000Bytes) {
  Session s;
  FakePicker p;
  std::string body(400 * 1024, 'a');
  SendRequest(s, p, {body.substr(0, 65536), body.substr(65536)});
  PickDecision d;
  d.endpoints = {"a:1"};
  d.body = p.body;
  auto st = s.OnDecision(d);
  std::size_t total = 0;
  for (std::size_t i = 1; i < st.replies.size(); ++i) {
    const auto& sr = st.replies[i].request_body().response().body_mutation().streamed_response();
    EXPECT_LE(sr.body().size(), kMaxBodyChunk);
    total += sr.body().size();
  }
  EXPECT_EQ(total, body.size());
  EXPECT_EQ(st.replies.size(), 1 + (body.size() + kMaxBodyChunk - 1) / kMaxBodyChunk);
}

// The picker parses the body in place: it must arrive whole, with the parser's padding
// spare after it, whatever Content-Length said (right, absent, too small or too large).
TEST(ExtProcSession, BodyArrivesWholeWithRoomToParseInPlace) {
  std::string body(300 * 1024, 'x');
  for (std::size_t i = 0; i < body.size(); i += 97) body[i] = static_cast<char>('a' + i % 26);
  const std::vector<std::string> pieces = {body.substr(0, 16384), body.substr(16384, 1),
                                           body.substr(16385)};
  for (const std::string& cl : {std::to_string(body.size()), std::string(), std::string("100"),
                                std::to_string(body.size() * 3), std::string("junk")}) {
    SCOPED_TRACE("content-length " + cl);
    Session s;
    FakePicker p;
    std::vector<std::pair<std::string, std::string>> hs = {{":path", "/v1/completions"}};
    if (!cl.empty()) hs.emplace_back("content-length", cl);
    ASSERT_FALSE(s.OnRequest(Headers(hs, false)).error);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      ASSERT_FALSE(s.OnRequest(Body(pieces[i], i + 1 == pieces.size())).error);
    }
    s.Admit(p, [](PickDecision) {});
    EXPECT_EQ(p.body, body);
    EXPECT_GE(p.body.capacity(), p.body.size() + simdjson::SIMDJSON_PADDING);
  }
}

TEST(ExtProcSession, RefusalsAreImmediateResponsesWithTheDroppedReason) {
  for (int status : {400, 429, 503}) {
    Session s;
    FakePicker p;
    SendRequest(s, p, {"{}"});
    PickDecision d;
    d.status = status;
    d.reason = "why";
    d.message = "because";
    auto st = s.OnDecision(d);
    ASSERT_EQ(st.replies.size(), 1u);
    ASSERT_TRUE(st.replies[0].has_immediate_response());
    const auto& ir = st.replies[0].immediate_response();
    EXPECT_EQ(ir.status().code(), status);
    EXPECT_EQ(HeaderOf(ir.headers(), "x-llm-d-request-dropped-reason"), "why");
    EXPECT_NE(ir.body().find("because"), std::string::npos);
    EXPECT_TRUE(st.done);
  }
}

TEST(ExtProcSession, SubsetHintIsPassedToThePicker) {
  Session s;
  FakePicker p;
  auto m = Headers({}, false);
  auto& hint = (*m.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"];
  auto* list =
      (*hint.mutable_fields())["x-gateway-destination-endpoint-subset"].mutable_list_value();
  list->add_values()->set_string_value("10.0.0.3:8000");
  list->add_values()->set_string_value("10.0.0.4:8000");
  ASSERT_FALSE(s.OnRequest(m).error);
  ASSERT_TRUE(s.OnRequest(Body("{}", true)).admit);
  s.Admit(p, [](PickDecision) {});
  EXPECT_EQ(p.head.subset, (std::vector<std::string>{"10.0.0.3:8000", "10.0.0.4:8000"}));
}

TEST(ExtProcSession, HeadersOnlyRequestIsDecidedAtOnceWithoutABody) {
  Session s;
  FakePicker p;
  auto st = s.OnRequest(Headers({{":method", "GET"}}, true));
  ASSERT_TRUE(st.admit);
  s.Admit(p, [](PickDecision) {});
  EXPECT_FALSE(p.head.has_body);
  PickDecision d;
  d.endpoints = {"a:1"};
  st = s.OnDecision(d);
  ASSERT_EQ(st.replies.size(), 1u);  // headers reply only
  EXPECT_EQ(
      HeaderOf(st.replies[0].request_headers().response().header_mutation(), "content-length"),
      "<none>");
}

TEST(ExtProcSession, MessagesOutOfOrderEndTheStreamWithAnError) {
  {
    Session s;
    auto st = s.OnRequest(Body("x", true));  // body before headers
    ASSERT_TRUE(st.error);
    EXPECT_EQ(st.error->grpc_code, 3);
  }
  {
    Session s;
    ASSERT_FALSE(s.OnRequest(Headers({}, false)).error);
    EXPECT_TRUE(s.OnRequest(Headers({}, false)).error);  // second request on one stream
  }
  {
    Session s;
    FakePicker p;
    SendRequest(s, p, {"{}"});
    EXPECT_TRUE(s.OnRequest(ResponseHeaders("200")).error);  // response before the decision
    EXPECT_EQ(p.ticket->abandoned, 1);                       // and the pool is told
  }
  {
    Session s;
    EXPECT_TRUE(s.OnRequest(pb::ProcessingRequest()).error);  // no phase at all
  }
}

TEST(ExtProcSession, StreamEndingEarlyAbandonsTheRequestOnce) {
  Session s;
  FakePicker p;
  SendRequest(s, p, {"{}"});
  PickDecision d;
  d.endpoints = {"a:1"};
  d.body = p.body;
  s.OnDecision(d);
  ASSERT_FALSE(s.OnRequest(ResponseHeaders("200")).error);
  s.OnStreamEnd();  // the client went away mid-response
  s.OnStreamEnd();
  EXPECT_EQ(p.ticket->abandoned, 1);
  EXPECT_EQ(p.ticket->finished, 0);
  // A decision arriving after the stream is gone changes nothing.
  Session s2;
  FakePicker p2;
  SendRequest(s2, p2, {"{}"});
  s2.OnStreamEnd();
  EXPECT_EQ(p2.ticket->abandoned, 1);
}

TEST(ExtProcSession, ErrorStatusResponseFinishesAsFailure) {
  Session s;
  FakePicker p;
  p.ticket->rewrite = true;
  SendRequest(s, p, {"{}"});
  PickDecision d;
  d.endpoints = {"a:1"};
  d.body = p.body;
  s.OnDecision(d);
  auto st = s.OnRequest(ResponseHeaders("500"));
  // A response whose body may change length loses its Content-Length.
  ASSERT_EQ(st.replies[0].response_headers().response().header_mutation().remove_headers_size(), 1);
  st = s.OnRequest(Body("oops", true, true));
  EXPECT_EQ(st.replies[0].response_body().response().body_mutation().streamed_response().body(),
            "oops!");
  EXPECT_EQ(p.ticket->finished, -1);
}

TEST(ExtProcSession, OversizedBodyIsRefusedWith413) {
  SessionOptions o;
  o.max_body_bytes = 8;
  Session s(o);
  ASSERT_FALSE(s.OnRequest(Headers({}, false)).error);
  ASSERT_FALSE(s.OnRequest(Body("12345", false)).error);
  auto st = s.OnRequest(Body("67890", false));
  ASSERT_EQ(st.replies.size(), 1u);
  EXPECT_EQ(st.replies[0].immediate_response().status().code(), 413);
  EXPECT_TRUE(st.done);
}

TEST(ExtProcSession, RequestTrailersEndTheBodyAndAreAnsweredAfterIt) {
  Session s;
  FakePicker p;
  ASSERT_FALSE(s.OnRequest(Headers({}, false)).error);
  ASSERT_FALSE(s.OnRequest(Body("{}", false)).error);
  pb::ProcessingRequest t;
  t.mutable_request_trailers();
  ASSERT_TRUE(s.OnRequest(t).admit);
  s.Admit(p, [](PickDecision) {});
  PickDecision d;
  d.endpoints = {"a:1"};
  d.body = p.body;
  auto st = s.OnDecision(d);
  ASSERT_EQ(st.replies.size(), 3u);
  EXPECT_FALSE(
      st.replies[1].request_body().response().body_mutation().streamed_response().end_of_stream());
  EXPECT_TRUE(st.replies[2].has_request_trailers());
}

}  // namespace
}  // namespace infergate::extproc
