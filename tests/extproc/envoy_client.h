// A stand-in for Envoy's ext_proc filter, for tests and the benchmark: one gRPC stream
// per HTTP request, playing the phases Envoy sends with the processing mode GIE's
// deployments use (headers SEND, bodies FULL_DUPLEX_STREAMED) and collecting what the
// endpoint picker answers.
//
// Thread-safety: one EnvoyStream per thread; the stub may be shared.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"

namespace infergate::extproc::testing {

namespace pb = ::envoy::service::ext_proc::v3;

inline std::unique_ptr<pb::ExternalProcessor::Stub> ConnectEpp(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return pb::ExternalProcessor::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
}

// What the request phase produced.
struct Routed {
  int status = 0;            // 200 when routed; the ImmediateResponse's code otherwise
  std::string endpoint;      // the x-gateway-destination-endpoint header
  std::string lb_endpoints;  // envoy.lb metadata: primary then fallbacks
  std::string content_length;
  bool clear_route_cache = false;
  std::string body;  // the body streamed back (routed) or the error body
  std::map<std::string, std::string> immediate_headers;
  std::vector<std::size_t> chunk_sizes;  // of the streamed-back body
  std::string error;                     // set when the exchange broke
};

class EnvoyStream {
 public:
  explicit EnvoyStream(pb::ExternalProcessor::Stub& stub,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + timeout);
    stream_ = stub.Process(&ctx_);
  }

  bool Send(const pb::ProcessingRequest& m) { return stream_->Write(m); }
  std::optional<pb::ProcessingResponse> Read() {
    pb::ProcessingResponse r;
    if (!stream_->Read(&r)) return std::nullopt;
    return r;
  }
  void CloseSend() { stream_->WritesDone(); }
  grpc::Status Finish() { return stream_->Finish(); }
  void Cancel() { ctx_.TryCancel(); }

  // Request headers (plus :method/:path) and the body in pieces of the given sizes (the
  // rest in one piece); reads until the body is back or an ImmediateResponse arrives.
  Routed RouteRequest(const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers = {},
                      const std::vector<std::size_t>& pieces = {},
                      const std::vector<std::string>& subset = {}) {
    Routed out;
    pb::ProcessingRequest h;
    auto add = [&](const std::string& k, const std::string& v) {
      auto* hv = h.mutable_request_headers()->mutable_headers()->add_headers();
      hv->set_key(k);
      hv->set_raw_value(v);
    };
    add(":method", body.empty() ? "GET" : "POST");
    add(":path", "/v1/completions");
    add("content-type", "application/json");
    if (!body.empty()) add("content-length", std::to_string(body.size()));
    for (const auto& [k, v] : headers) add(k, v);
    h.mutable_request_headers()->set_end_of_stream(body.empty());
    if (!subset.empty()) {
      auto& hint =
          (*h.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"];
      auto* list =
          (*hint.mutable_fields())["x-gateway-destination-endpoint-subset"].mutable_list_value();
      for (const auto& s : subset) list->add_values()->set_string_value(s);
    }
    if (!Send(h)) {
      out.error = "send headers";
      return out;
    }
    std::size_t offset = 0;
    for (std::size_t i = 0; !body.empty() && offset < body.size(); ++i) {
      const std::size_t n =
          i < pieces.size() ? std::min(pieces[i], body.size() - offset) : body.size() - offset;
      pb::ProcessingRequest b;
      b.mutable_request_body()->set_body(body.substr(offset, n));
      offset += n;
      b.mutable_request_body()->set_end_of_stream(offset == body.size());
      if (!Send(b)) {
        out.error = "send body";
        return out;
      }
    }
    bool headers_seen = false;
    while (true) {
      auto r = Read();
      if (!r) {
        out.error = "stream ended";
        return out;
      }
      if (r->has_immediate_response()) {
        const auto& ir = r->immediate_response();
        out.status = ir.status().code();
        out.body = ir.body();
        for (const auto& o : ir.headers().set_headers()) {
          out.immediate_headers[o.header().key()] = o.header().raw_value();
        }
        return out;
      }
      if (r->has_request_headers()) {
        headers_seen = true;
        out.status = 200;
        const auto& common = r->request_headers().response();
        out.clear_route_cache = common.clear_route_cache();
        for (const auto& o : common.header_mutation().set_headers()) {
          if (o.header().key() == "x-gateway-destination-endpoint") {
            out.endpoint = o.header().raw_value();
          }
          if (o.header().key() == "content-length") out.content_length = o.header().raw_value();
        }
        const auto& f = r->dynamic_metadata().fields();
        auto lb = f.find("envoy.lb");
        if (lb != f.end()) {
          auto e = lb->second.struct_value().fields().find("x-gateway-destination-endpoint");
          if (e != lb->second.struct_value().fields().end()) {
            out.lb_endpoints = e->second.string_value();
          }
        }
        if (body.empty()) return out;
        continue;
      }
      if (r->has_request_body() && headers_seen) {
        const auto& sr = r->request_body().response().body_mutation().streamed_response();
        out.body += sr.body();
        out.chunk_sizes.push_back(sr.body().size());
        if (sr.end_of_stream()) return out;
        continue;
      }
      out.error = "unexpected reply " + r->ShortDebugString().substr(0, 200);
      return out;
    }
  }

  // The response phase: headers (with the served endpoint in envoy.lb metadata when
  // given) and the body in pieces of at most `piece` bytes. Returns the body the client
  // would get, or nullopt when the exchange broke.
  std::optional<std::string> RelayResponse(int status, const std::string& body,
                                           const std::string& served = "",
                                           std::size_t piece = 1024) {
    pb::ProcessingRequest h;
    auto* hv = h.mutable_response_headers()->mutable_headers()->add_headers();
    hv->set_key(":status");
    hv->set_raw_value(std::to_string(status));
    if (!served.empty()) {
      auto& lb = (*h.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb"];
      (*lb.mutable_fields())["x-gateway-destination-endpoint-served"].set_string_value(served);
    }
    h.mutable_response_headers()->set_end_of_stream(body.empty());
    if (!Send(h)) return std::nullopt;
    auto r = Read();
    if (!r || !r->has_response_headers()) return std::nullopt;
    if (body.empty()) return std::string();
    std::string out;
    for (std::size_t offset = 0; offset < body.size();) {
      const std::size_t n = std::min(piece, body.size() - offset);
      pb::ProcessingRequest b;
      b.mutable_response_body()->set_body(body.substr(offset, n));
      offset += n;
      const bool last = offset == body.size();
      b.mutable_response_body()->set_end_of_stream(last);
      if (!Send(b)) return std::nullopt;
      // Each piece is answered (possibly split) before the next one goes.
      while (true) {
        auto br = Read();
        if (!br || !br->has_response_body()) return std::nullopt;
        const auto& sr = br->response_body().response().body_mutation().streamed_response();
        out += sr.body();
        if (!last || sr.end_of_stream()) break;
      }
    }
    return out;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::ProcessingRequest, pb::ProcessingResponse>> stream_;
};

}  // namespace infergate::extproc::testing
