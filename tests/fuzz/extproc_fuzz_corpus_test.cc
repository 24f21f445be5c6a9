// Runs the ext_proc fuzz target's seeds (tests/fuzz/corpus/extproc) and the exchanges
// they were made from through its entry point, so every build exercises it without a
// fuzzing engine. IG_WRITE_EXTPROC_SEEDS=DIR writes the built seeds to DIR.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "extproc/session.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace pb = infergate::extproc::pb;

void Record(std::string& out, std::uint8_t op, const std::string& payload) {
  out.push_back(static_cast<char>(op));
  out.push_back(static_cast<char>(payload.size() & 0xff));
  out.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
  out += payload;
}

std::string Message(const pb::ProcessingRequest& m) { return m.SerializeAsString(); }

pb::ProcessingRequest Headers(bool eos) {
  pb::ProcessingRequest m;
  auto* h = m.mutable_request_headers()->mutable_headers()->add_headers();
  h->set_key(":path");
  h->set_raw_value("/v1/completions");
  m.mutable_request_headers()->set_end_of_stream(eos);
  auto& hint = (*m.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"];
  (*hint.mutable_fields())["x-gateway-destination-endpoint-subset"].set_string_value(
      "10.0.0.1:8000");
  return m;
}

pb::ProcessingRequest Body(const std::string& b, bool eos, bool response) {
  pb::ProcessingRequest m;
  auto* body = response ? m.mutable_response_body() : m.mutable_request_body();
  body->set_body(b);
  body->set_end_of_stream(eos);
  return m;
}

pb::ProcessingRequest ResponseHeaders(const std::string& served) {
  pb::ProcessingRequest m;
  auto* h = m.mutable_response_headers()->mutable_headers()->add_headers();
  h->set_key(":status");
  h->set_raw_value("200");
  auto& lb = (*m.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb"];
  (*lb.mutable_fields())["x-gateway-destination-endpoint-served"].set_string_value(served);
  return m;
}

std::vector<std::pair<std::string, std::string>> BuiltSeeds() {
  std::vector<std::pair<std::string, std::string>> seeds;
  const std::string body = R"({"model":"m","prompt":")" + std::string(150, 'x') + R"("})";
  {  // The whole protocol, decision later.
    std::string s;
    Record(s, 0, Message(Headers(false)));
    Record(s, 0, Message(Body(body.substr(0, 40), false, false)));
    Record(s, 0, Message(Body(body.substr(40), true, false)));
    Record(s, 1, std::string("\x00", 1) + "10.0.0.1:8000");
    Record(s, 0, Message(ResponseHeaders("10.0.0.2:8000")));
    Record(s, 0, Message(Body("data: {}\n\n", false, true)));
    Record(s, 0, Message(Body("data: [DONE]\n\n", true, true)));
    seeds.emplace_back("routed", s);
  }
  {  // Synchronous refusal.
    std::string s;
    Record(s, 3, "");
    Record(s, 0, Message(Headers(false)));
    Record(s, 0, Message(Body(body, true, false)));
    Record(s, 0, Message(ResponseHeaders("")));
    seeds.emplace_back("synchronous", s);
  }
  {  // Stream ends while deciding; then a late decision.
    std::string s;
    Record(s, 0, Message(Headers(false)));
    Record(s, 0, Message(Body(body, true, false)));
    Record(s, 2, "");
    Record(s, 1, std::string("\x02", 1));
    seeds.emplace_back("early_end", s);
  }
  {  // Out of order, trailers, headers-only.
    std::string s;
    Record(s, 0, Message(Body(body, true, false)));
    Record(s, 0, Message(Headers(true)));
    seeds.emplace_back("out_of_order", s);
    std::string t;
    pb::ProcessingRequest trailers;
    trailers.mutable_request_trailers();
    Record(t, 0, Message(Headers(false)));
    Record(t, 0, Message(Body(body, false, false)));
    Record(t, 0, Message(trailers));
    Record(t, 1, std::string("\x00", 1) + "a:1");
    seeds.emplace_back("trailers", t);
    std::string h;
    Record(h, 0, Message(Headers(true)));
    Record(h, 1, std::string("\x03", 1));
    seeds.emplace_back("headers_only", h);
  }
  return seeds;
}

void RunInput(const std::string& data) {
  EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()),
            0);
  for (std::size_t cut = 0; cut < data.size(); cut += 1 + data.size() / 64) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), cut);
  }
}

TEST(ExtProcFuzzCorpus, EverySeedRunsClean) {
  const auto built = BuiltSeeds();
  if (const char* dir = std::getenv("IG_WRITE_EXTPROC_SEEDS")) {
    for (const auto& [name, data] : built) {
      std::ofstream(std::string(dir) + "/" + name, std::ios::binary) << data;
    }
  }
  for (const auto& [name, data] : built) {
    SCOPED_TRACE(name);
    RunInput(data);
  }
  std::size_t on_disk = 0;
  for (const auto& e : std::filesystem::directory_iterator(IG_EXTPROC_CORPUS)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(e.path().string());
    RunInput(data);
    ++on_disk;
  }
  EXPECT_GE(on_disk, built.size());
}

}  // namespace
