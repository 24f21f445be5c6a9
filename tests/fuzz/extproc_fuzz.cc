// libFuzzer target for the endpoint picker's ext_proc message state machine
// (extproc::Session), driven from protobuf bytes as they would come off a gRPC stream.
//
// Input: records of [op:1][length:2, little-endian][payload:length]. op % 4:
//   0  payload is a serialized ProcessingRequest (bytes that do not parse are dropped, as
//      gRPC drops them); it is fed to the session
//   1  the pending decision arrives: payload[0] picks 200/400/429/503, the rest names
//      endpoints
//   2  the stream ends (Envoy closed it or it was cancelled)
//   3  the picker's decision is made synchronously inside Admit from now on
// Seeds: tests/fuzz/corpus/extproc (written by extproc_fuzz_corpus_test with
// IG_WRITE_EXTPROC_SEEDS=DIR). Build and run as the other targets (docs/scheduling.md).
//
// Invariants (a violation aborts): streamed chunks never exceed the chunk size; the body
// streamed back to Envoy is exactly the body the picker returned; a session that ended
// answers nothing more; the ticket is finished or abandoned at most once, and exactly
// once when the stream ends after an admission.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "extproc/session.h"

namespace {

using namespace infergate::extproc;

void Require(bool ok) {
  if (!ok) std::abort();
}

struct Ticket final : PickTicket {
  int ends = 0;
  void Served(std::string_view) override {}
  void ResponseStarted(int) override {}
  bool RewritesResponseBody() const override { return false; }
  void ResponseBody(std::string_view piece, bool, std::string& out) override { out.append(piece); }
  void Finish(bool) override { ++ends; }
  void Abandon() override { ++ends; }
};

struct FuzzPicker final : Picker {
  bool synchronous = false;
  std::string body;
  DecisionCallback pending;
  std::shared_ptr<Ticket> ticket;
  PickDecision sync_decision;
  std::shared_ptr<PickTicket> Admit(RequestHead, std::string b, DecisionCallback done) override {
    body = std::move(b);
    ticket = std::make_shared<Ticket>();
    if (synchronous) {
      sync_decision.body = body;
      done(sync_decision);
    } else {
      pending = std::move(done);
    }
    return ticket;
  }
};

constexpr std::size_t kChunk = 64;

void CheckStep(const Session::Step& step, const FuzzPicker& picker, bool was_done,
               std::string* streamed) {
  if (was_done) Require(step.replies.empty());
  for (const auto& r : step.replies) {
    const infergate::extproc::pb::BodyResponse* br = nullptr;
    if (r.has_request_body()) br = &r.request_body();
    if (r.has_response_body()) br = &r.response_body();
    if (br == nullptr) continue;
    const auto& sr = br->response().body_mutation().streamed_response();
    Require(sr.body().size() <= kChunk);
    if (r.has_request_body()) {
      *streamed += sr.body();
      if (sr.end_of_stream()) Require(*streamed == picker.body);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  SessionOptions options;
  options.chunk_bytes = kChunk;
  options.max_body_bytes = 4096;
  FuzzPicker picker;
  std::string streamed;
  {
    Session session(options);
    bool admitted = false;
    std::size_t i = 0;
    while (i + 3 <= size) {
      const std::uint8_t op = data[i] % 4;
      const std::size_t len = std::min<std::size_t>(data[i + 1] | (data[i + 2] << 8), size - i - 3);
      const std::uint8_t* payload = data + i + 3;
      i += 3 + len;
      const bool was_done = session.done();
      switch (op) {
        case 0: {
          pb::ProcessingRequest m;
          if (!m.ParseFromArray(payload, static_cast<int>(len))) break;
          auto step = session.OnRequest(m);
          CheckStep(step, picker, was_done && !step.error, &streamed);
          if (step.admit) {
            Require(!admitted);
            admitted = true;
            session.Admit(picker, [&](PickDecision d) {
              CheckStep(session.OnDecision(std::move(d)), picker, false, &streamed);
            });
          }
          break;
        }
        case 1: {
          if (!picker.pending) break;
          PickDecision d;
          static constexpr int kStatus[] = {200, 400, 429, 503};
          d.status = len > 0 ? kStatus[payload[0] % 4] : 200;
          if (len > 1)
            d.endpoints.emplace_back(reinterpret_cast<const char*>(payload + 1), len - 1);
          d.reason = "fuzz";
          d.body = picker.body;
          auto done = std::move(picker.pending);
          picker.pending = nullptr;
          auto step = session.OnDecision(std::move(d));
          CheckStep(step, picker, was_done, &streamed);
          break;
        }
        case 2:
          session.OnStreamEnd();
          if (picker.ticket) Require(picker.ticket->ends == 1);
          break;
        case 3:
          picker.synchronous = true;
          picker.sync_decision.endpoints = {"10.0.0.1:8000", "10.0.0.2:8000"};
          break;
      }
      if (picker.ticket) Require(picker.ticket->ends <= 1);
    }
  }
  // The session is gone: whatever it admitted was ended exactly once.
  if (picker.ticket) Require(picker.ticket->ends == 1);
  return 0;
}
