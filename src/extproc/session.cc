#include "extproc/session.h"

#include <algorithm>
#include <charconv>

#include <simdjson.h>

#include "http/openai_error.h"

namespace infergate::extproc {
namespace {

namespace core = ::envoy::config::core::v3;

// Spare bytes kept after the body: the picker parses it in place with simdjson, which reads
// up to this far past the end (gateway::ParseOpenAIRequest reserves them, copying the body
// when they are missing).
constexpr std::size_t kParsePadding = simdjson::SIMDJSON_PADDING;
// The most reserved for a body from its Content-Length alone (1 MiB: a 100k-token prompt).
constexpr std::size_t kMaxUpfrontReserve = std::size_t{1} << 20;

std::string_view HeaderValueOf(const core::HeaderValue& h) {
  // Envoy's ext_proc filter sends raw_value; value is the older form.
  return h.raw_value().empty() ? std::string_view(h.value()) : std::string_view(h.raw_value());
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

const google::protobuf::Value* MetadataField(const pb::ProcessingRequest& m, std::string_view ns,
                                             std::string_view key) {
  if (!m.has_metadata_context()) return nullptr;
  const auto& fm = m.metadata_context().filter_metadata();
  auto it = fm.find(std::string(ns));
  if (it == fm.end()) return nullptr;
  auto f = it->second.fields().find(std::string(key));
  return f == it->second.fields().end() ? nullptr : &f->second;
}

// "a,b , c" → {"a","b","c"}
void SplitList(std::string_view s, std::vector<std::string>& out) {
  while (!s.empty()) {
    auto comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
}

void SetHeader(pb::HeaderMutation* mutation, std::string_view key, std::string_view value) {
  auto* opt = mutation->add_set_headers();
  opt->set_append_action(core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  opt->mutable_header()->set_key(std::string(key));
  opt->mutable_header()->set_raw_value(std::string(value));
}

}  // namespace

std::optional<std::string_view> RequestHead::Find(std::string_view key) const {
  for (const auto& [k, v] : headers) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

Session::~Session() { OnStreamEnd(); }

Session::Step Session::Fail(std::string message) {
  OnStreamEnd();
  state_ = State::kFailed;
  Step step;
  step.error = StreamError{3, std::move(message)};
  step.done = true;
  return step;
}

Session::Step Session::ImmediateReply(int status, std::string_view reason,
                                      std::string_view message) {
  Step step;
  auto& reply = step.replies.emplace_back();
  auto* ir = reply.mutable_immediate_response();
  ir->mutable_status()->set_code(status);
  SetHeader(ir->mutable_headers(), "content-type", "application/json");
  if (!reason.empty()) SetHeader(ir->mutable_headers(), kDroppedReasonHeader, reason);
  if (status == 429) SetHeader(ir->mutable_headers(), "retry-after", "1");
  ir->set_body(http::OpenAIErrorBody(status, message));
  ir->set_details(std::string(reason));
  OnStreamEnd();
  state_ = State::kDone;
  step.done = true;
  return step;
}

void Session::AppendBodyChunks(std::string_view body, bool end_of_stream, bool request_side,
                               std::vector<pb::ProcessingResponse>& out) const {
  // An empty body with end_of_stream still needs one (empty) chunk to end the stream.
  std::size_t offset = 0;
  do {
    const std::size_t n = std::min(options_.chunk_bytes, body.size() - offset);
    auto& reply = out.emplace_back();
    pb::BodyResponse* br =
        request_side ? reply.mutable_request_body() : reply.mutable_response_body();
    auto* streamed = br->mutable_response()->mutable_body_mutation()->mutable_streamed_response();
    // One copy per chunk, straight from the buffer into the message.
    streamed->mutable_body()->assign(body.data() + offset, n);
    offset += n;
    streamed->set_end_of_stream(end_of_stream && offset == body.size());
  } while (offset < body.size());
}

Session::Step Session::OnRequest(const pb::ProcessingRequest& m) {
  using R = pb::ProcessingRequest;
  switch (m.request_case()) {
    case R::kRequestHeaders: {
      if (state_ != State::kRequestHeaders) return Fail("request_headers out of order");
      for (const auto& h : m.request_headers().headers().headers()) {
        head_.headers.emplace_back(Lower(h.key()), std::string(HeaderValueOf(h)));
      }
      // The body is gathered once into a buffer of its final size plus the parser's
      // padding, so neither growth nor parsing copies it again.
      if (auto cl = head_.Find("content-length")) {
        std::size_t n = 0;
        const auto r = std::from_chars(cl->data(), cl->data() + cl->size(), n);
        if (r.ec == std::errc() && n > 0) {
          // At most kMaxUpfrontReserve on the client's word: a declared length is not
          // memory to hand out before the bytes arrive (larger bodies grow as they come).
          body_.reserve(std::min({n, options_.max_body_bytes, kMaxUpfrontReserve}) + kParsePadding);
        }
      }
      if (const auto* v = MetadataField(m, kSubsetNamespace, kSubsetKey)) {
        if (v->has_list_value()) {
          for (const auto& item : v->list_value().values()) {
            if (item.has_string_value()) SplitList(item.string_value(), head_.subset);
          }
        } else if (v->has_string_value()) {
          SplitList(v->string_value(), head_.subset);
        }
      }
      Step step;
      if (m.request_headers().end_of_stream()) {
        head_.has_body = false;
        state_ = State::kDeciding;
        step.admit = true;
      } else {
        state_ = State::kRequestBody;
      }
      return step;
    }
    case R::kRequestBody: {
      if (state_ != State::kRequestBody) return Fail("request_body out of order");
      const auto& chunk = m.request_body().body();
      if (body_.size() + chunk.size() > options_.max_body_bytes) {
        return ImmediateReply(413, "request_too_large",
                              "the request body is larger than " +
                                  std::to_string(options_.max_body_bytes) + " bytes");
      }
      if (body_.capacity() < body_.size() + chunk.size() + kParsePadding) {
        // No (or a wrong) Content-Length: grow geometrically, padding included.
        body_.reserve(std::max(2 * body_.capacity(), body_.size() + chunk.size() + kParsePadding));
      }
      body_.append(chunk);
      Step step;
      if (m.request_body().end_of_stream()) {
        state_ = State::kDeciding;
        step.admit = true;
      }
      return step;
    }
    case R::kRequestTrailers: {
      // Trailers end a body that did not say end_of_stream; they are answered (unchanged)
      // after the body is streamed back.
      if (state_ != State::kRequestBody) return Fail("request_trailers out of order");
      body_ended_by_trailers_ = true;
      state_ = State::kDeciding;
      Step step;
      step.admit = true;
      return step;
    }
    case R::kResponseHeaders: {
      if (state_ != State::kAwaitingResponse) return Fail("response_headers out of order");
      if (const auto* v = MetadataField(m, kLbNamespace, kServedKey)) {
        if (v->has_string_value() && ticket_) ticket_->Served(v->string_value());
      }
      for (const auto& h : m.response_headers().headers().headers()) {
        if (h.key() != ":status") continue;
        const std::string_view s = HeaderValueOf(h);
        std::from_chars(s.data(), s.data() + s.size(), response_status_);
      }
      if (ticket_) ticket_->ResponseStarted(response_status_);
      Step step;
      auto* common = step.replies.emplace_back().mutable_response_headers()->mutable_response();
      if (ticket_ && ticket_->RewritesResponseBody()) {
        common->mutable_header_mutation()->add_remove_headers("content-length");
      }
      if (m.response_headers().end_of_stream()) {
        FinishResponse();
        step.done = true;
      } else {
        state_ = State::kResponseBody;
      }
      return step;
    }
    case R::kResponseBody: {
      if (state_ != State::kResponseBody) return Fail("response_body out of order");
      const bool last = m.response_body().end_of_stream();
      std::string out;
      if (ticket_) {
        ticket_->ResponseBody(m.response_body().body(), last, out);
      } else {
        out = m.response_body().body();
      }
      Step step;
      AppendBodyChunks(out, last, /*request_side=*/false, step.replies);
      if (last) {
        FinishResponse();
        step.done = true;
      }
      return step;
    }
    case R::kResponseTrailers: {
      if (state_ != State::kResponseBody && state_ != State::kAwaitingResponse) {
        return Fail("response_trailers out of order");
      }
      Step step;
      step.replies.emplace_back().mutable_response_trailers();
      FinishResponse();
      step.done = true;
      return step;
    }
    case R::REQUEST_NOT_SET:
      break;
  }
  return Fail("a ProcessingRequest without a request phase");
}

void Session::Admit(Picker& picker, DecisionCallback done) {
  request_has_body_ = head_.has_body;
  ticket_ = picker.Admit(std::move(head_), std::move(body_), std::move(done));
  head_ = RequestHead{};
  body_.clear();
}

Session::Step Session::OnDecision(PickDecision d) {
  if (state_ != State::kDeciding) return Step{};  // the stream ended meanwhile
  if (d.status != 200 || d.endpoints.empty()) {
    const int status = d.status == 200 ? 503 : d.status;
    return ImmediateReply(status, d.reason, d.message);
  }
  Step step;
  auto& reply = step.replies.emplace_back();
  auto* common = reply.mutable_request_headers()->mutable_response();
  common->set_clear_route_cache(true);
  auto* mutation = common->mutable_header_mutation();
  SetHeader(mutation, kDestinationKey, d.endpoints.front());
  const bool has_body = request_has_body_;
  if (has_body) SetHeader(mutation, "content-length", std::to_string(d.body.size()));
  std::string list;
  for (const auto& e : d.endpoints) {
    if (!list.empty()) list += ',';
    list += e;
  }
  auto& lb = (*reply.mutable_dynamic_metadata()->mutable_fields())[std::string(kLbNamespace)];
  (*lb.mutable_struct_value()->mutable_fields())[std::string(kDestinationKey)].set_string_value(
      std::move(list));
  if (has_body) {
    AppendBodyChunks(d.body, !body_ended_by_trailers_, /*request_side=*/true, step.replies);
  }
  if (body_ended_by_trailers_) step.replies.emplace_back().mutable_request_trailers();
  state_ = State::kAwaitingResponse;
  return step;
}

void Session::FinishResponse() {
  if (ticket_ && !finished_) {
    ticket_->Finish(response_status_ / 100 == 2);
    finished_ = true;
  }
  state_ = State::kDone;
}

void Session::OnStreamEnd() {
  if (ticket_ && !finished_) {
    ticket_->Abandon();
    finished_ = true;
  }
}

}  // namespace infergate::extproc
