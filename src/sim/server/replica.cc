#include "sim/server/replica.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/ascii.h"
#include "sim/engine/output_model.h"

namespace infergate::sim {
namespace {

constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::uint64_t kBodyLimit = 64ull * 1024 * 1024;
// Exchanges flushed per turn of the loop (see Replica::FlushDirty).
constexpr std::size_t kFlushSlice = 64;
// Finished requests /sim/requests remembers per replica.
constexpr std::size_t kRequestLog = 65536;

}  // namespace

void Replica::Pump() {
  engine_->AdvanceTo(SimNow(), sink_);
  FlushDirty();
  Rearm();
}

void Replica::FlushDirty() {
  // A step of a large batch produces thousands of chunks at once. They go out in slices,
  // letting the loop read new requests (and notice closed connections) in between, so
  // admission does not wait for the whole burst.
  const std::size_t end = std::min(dirty_.size(), dirty_head_ + kFlushSlice);
  for (; dirty_head_ < end; ++dirty_head_) {
    Exchange* ex = dirty_[dirty_head_];
    ex->dirty = false;  // an exchange completes only once it is off this list
    ex->Flush();
    ex->MaybeComplete();
  }
  if (dirty_head_ == dirty_.size()) {
    dirty_.clear();
    dirty_head_ = 0;
    return;
  }
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(loop_, [this] {
    flush_posted_ = false;
    FlushDirty();
  });
}

void Replica::Rearm() {
  const TimeNs next = engine_->NextEventTime();
  if (next == kNever) {
    if (armed_ != kNever) {
      armed_ = kNever;
      timer_.cancel();
    }
    return;
  }
  const TimeNs wall = shared_.clock.ToWall(next);
  if (wall == armed_) return;
  armed_ = wall;
  timer_.expires_at(ToTimePoint(wall));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed or cancelled
    armed_ = kNever;
    Pump();
  });
}

bool Replica::FailThisRequest() {
  const double rate = shared_.options.faults.fail_rate;
  const std::uint64_t k = generation_requests_++;
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  const std::uint64_t h =
      Mix64(Mix64(shared_.options.seed ^ 0x6661696CULL) ^
            Mix64(static_cast<std::uint64_t>(index_) + 1) ^ (k * 0x9E3779B97F4A7C15ULL));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < rate;
}

asio::awaitable<void> Replica::Session(tcp::socket socket) {
  boost::system::error_code ec;
  if (shared_.options.faults.refuse_connections) {
    socket.set_option(asio::socket_base::linger(true, 0), ec);  // close sends a reset
    socket.close(ec);
    co_return;
  }
  SessionState state;
  state.socket = &socket;
  sessions_.insert(&state);
  beast::flat_buffer buffer;
  try {
    while (!shutting_down_) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(kBodyLimit);
      std::tie(ec, std::ignore) = co_await bhttp::async_read_header(
          socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        auto expect = parser.get()[bhttp::field::expect];
        if (!expect.empty() && IEquals(expect, "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          std::tie(ec, std::ignore) = co_await asio::async_write(
              socket, asio::buffer(kContinue), asio::as_tuple(asio::use_awaitable));
        }
      }
      if (!ec && !parser.is_done()) {
        std::tie(ec, std::ignore) =
            co_await bhttp::async_read(socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      }
      if (ec) {
        int status = 0;
        std::string detail;
        if (ec == bhttp::error::header_limit) {
          status = 431;
          detail = "request header fields too large";
        } else if (ec == bhttp::error::body_limit) {
          status = 413;
          detail = "request body larger than " + std::to_string(kBodyLimit) + " bytes";
        } else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                   ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
                   ec != asio::error::bad_descriptor) {
          status = 400;
          detail = "malformed HTTP request: " + ec.message();
        }
        if (status != 0 && !shutting_down_) {
          const std::string res =
              SizedResponse(status, kJson, "{\"detail\":\"" + detail + "\"}", false);
          co_await asio::async_write(socket, asio::buffer(res),
                                     asio::as_tuple(asio::use_awaitable));
        }
        break;
      }
      if (!co_await Handle(socket, buffer, parser.get(), state)) break;
    }
  } catch (const std::exception& e) {
    spdlog::error("sim replica {}: session: {}", index_, e.what());
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
  sessions_.erase(&state);
  SessionEnded();
}

void Replica::SessionEnded() {
  if (shutting_down_ && sessions_.empty() && drained_) {
    auto cb = std::move(drained_);
    drained_ = nullptr;
    cb();
  }
}

asio::awaitable<bool> Replica::Handle(tcp::socket& socket, beast::flat_buffer& buffer,
                                      bhttp::request<bhttp::string_body>& req,
                                      SessionState& state) {
  bool keep_alive = req.keep_alive() && !shutting_down_;
  std::string_view target = req.target();
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  const bool get = req.method() == bhttp::verb::get;
  const bool post = req.method() == bhttp::verb::post;

  std::string res;
  if (target == "/v1/completions" || target == "/v1/chat/completions") {
    if (post) {
      co_return co_await Generate(
          socket, buffer, req, target == "/v1/completions" ? ApiKind::kCompletions : ApiKind::kChat,
          keep_alive, state);
    }
    res = SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
  } else if (target == "/metrics") {
    if (get) co_return co_await Metrics(socket, buffer, keep_alive);
    res = SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
  } else if (target == "/health") {
    res = get ? SizedResponse(200, {}, {}, keep_alive)
              : SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
  } else if (target == "/v1/models") {
    if (get) {
      std::string body;
      AppendEngineModelList(body, shared_.options.engine_api, shared_.cards,
                            static_cast<std::int64_t>(std::time(nullptr)));
      res = SizedResponse(200, kJson, body, keep_alive);
    } else {
      res = SizedResponse(405, kJson, R"({"detail":"Method Not Allowed"})", keep_alive);
    }
  } else if (shared_.options.engine_api == EngineApi::kLlamacpp && get &&
             (target == "/props" || target == "/slots")) {
    std::string body;
    if (target == "/props") {
      AppendLlamacppProps(body, shared_.served.front(), engine_->config());
    } else {
      Pump();
      AppendLlamacppSlots(body, engine_->config(), engine_->Stats());
    }
    res = SizedResponse(200, kJson, body, keep_alive);
  } else if (target == "/sim/stats" && get) {
    res = SizedResponse(200, kJson, StatsJson(), keep_alive);
    // ?reset=1 starts a new measurement (e.g. after a warm-up).
    if (query == "reset=1") lateness_ = LatenessRecorder();
  } else if (target == "/sim/requests" && get) {
    res = SizedResponse(200, kJson, RequestsJson(), keep_alive);
  } else {
    res = SizedResponse(404, kJson, R"({"detail":"Not Found"})", keep_alive);
  }
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(res), asio::as_tuple(asio::use_awaitable));
  co_return !ec && keep_alive;
}

asio::awaitable<bool> Replica::Generate(tcp::socket& socket, beast::flat_buffer& buffer,
                                        bhttp::request<bhttp::string_body>& req, ApiKind api,
                                        bool keep_alive, SessionState& state) {
  const TimeNs arrival = SimNow();
  // HTTP/1.0 has no chunked encoding: a stream's end is the connection's.
  const bool chunked = req.version() >= 11;
  auto write = [&](const std::string& res) -> asio::awaitable<bool> {
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(res), asio::as_tuple(asio::use_awaitable));
    co_return !ec && keep_alive;
  };

  auto parsed = ParseGenerationRequest(api, req.body());
  if (!parsed) co_return co_await write(ErrorResponse(400, parsed.error().message, keep_alive));
  GenerationRequest& g = *parsed;
  if (g.stream && !chunked) keep_alive = false;
  if (shutting_down_) {
    co_return co_await write(ErrorResponse(503, "The server is shutting down.", false));
  }

  // The model: a served name (or none: the first) is the base model; a LoRA adapter's
  // name runs with that adapter.
  std::string model_name;
  EngineRequest er;
  if (!g.model) {
    model_name = shared_.served.front();
  } else if (std::find(shared_.served.begin(), shared_.served.end(), *g.model) !=
             shared_.served.end()) {
    model_name = *g.model;
  } else {
    const auto& loras = shared_.options.lora_modules;
    auto it = std::find_if(loras.begin(), loras.end(),
                           [&](const LoraModule& m) { return m.name == *g.model; });
    if (it == loras.end()) {
      co_return co_await write(
          ErrorResponse(404, "The model `" + *g.model + "` does not exist.", keep_alive));
    }
    model_name = it->name;
    er.lora = it->name;
  }

  if (FailThisRequest()) {
    co_return co_await write(ErrorResponse(500,
                                           "Simulated server failure (--fail-rate " +
                                               std::to_string(shared_.options.faults.fail_rate) +
                                               ")",
                                           keep_alive));
  }

  const RequestId id = next_id_++;
  er.id = id;
  er.prompt = std::move(g.prompt);
  er.max_tokens = g.max_tokens;
  er.min_tokens = g.min_tokens;
  er.ignore_eos = g.ignore_eos;
  er.priority = g.priority;
  const int prompt_tokens = static_cast<int>(er.prompt.size());
  auto admitted = engine_->Submit(std::move(er), arrival);
  if (!admitted) {
    co_return co_await write(ErrorResponse(400, admitted.error().message, keep_alive));
  }
  std::string rid = api == ApiKind::kChat ? "chatcmpl-" : "cmpl-";
  const std::uint64_t key = Mix64(shared_.options.seed ^ Mix64(static_cast<std::uint64_t>(index_)));
  AppendHex64(rid, Mix64(key ^ id));
  AppendHex64(rid, Mix64(key + id));
  Exchange ex(*this, socket, buffer, id,
              ResponseFormat(api, rid, static_cast<std::int64_t>(std::time(nullptr)), model_name),
              g, prompt_tokens, keep_alive, chunked, arrival);
  live_.emplace(id, &ex);
  state.in_exchange = true;
  ex.Start();
  Kick();
  while (!ex.complete()) {
    co_await ex.done().async_wait(asio::as_tuple(asio::use_awaitable));
  }
  state.in_exchange = false;
  LogRequest(ex);
  co_return ex.keep_alive() && !ex.client_gone() && !shutting_down_;
}

std::string Replica::MetricsPage() {
  Pump();  // the page shows the engine as of now
  const EngineStats stats = engine_->Stats();
  const double unix_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  lora_history_.Update(stats, unix_time);
  std::string page;
  page.reserve(16 * 1024);
  switch (shared_.options.engine_api) {
    case EngineApi::kVllm:
      AppendVllmMetrics(page, page_info_, engine_->config(), stats, requests_, lora_history_);
      break;
    case EngineApi::kLlamacpp:
      AppendLlamacppMetrics(page, engine_->config(), stats, kv_high_water_);
      break;
    case EngineApi::kSglang:
      AppendSglangMetrics(page, page_info_.model_name, engine_->config(), stats);
      break;
  }
  return page;
}

std::string Replica::StatsJson() {
  Pump();
  const EngineStats s = engine_->Stats();
  const TokenLateness l = lateness_.Summary();
  std::string out = "{\"replica\":" + std::to_string(index_);
  out += ",\"seed\":" + std::to_string(engine_->seed());
  out += ",\"wall_origin_ns\":" + std::to_string(shared_.clock.wall_origin());
  out += ",\"sim_time_s\":" + std::to_string(ToSeconds(engine_->now()));
  out += ",\"time_scale\":" + std::to_string(shared_.clock.scale());
  out += ",\"running\":" + std::to_string(s.num_running);
  out += ",\"waiting\":" + std::to_string(s.num_waiting);
  out += ",\"free_blocks\":" + std::to_string(s.num_free_blocks);
  out += ",\"gpu_blocks\":" + std::to_string(s.num_gpu_blocks);
  out += ",\"live_requests\":" + std::to_string(live_.size());
  out += ",\"token_lateness_us\":{\"tokens\":" + std::to_string(l.tokens);
  out += ",\"p50\":" + std::to_string(l.p50_us);
  out += ",\"p99\":" + std::to_string(l.p99_us);
  out += ",\"max\":" + std::to_string(l.max_us) + "}}";
  return out;
}

void Replica::LogRequest(const Exchange& ex) {
  if (finished_log_.size() == kRequestLog) finished_log_.pop_front();
  finished_log_.push_back({ex.finished_event(), ex.first_write_late()});
}

std::string Replica::RequestsJson() {
  Pump();
  std::string out = "{\"requests\":[";
  char buf[64];
  auto time = [&](TimeNs t) {
    if (t < 0) {
      out += "null";
    } else {
      std::snprintf(buf, sizeof buf, "%.9f", ToSeconds(t));
      out += buf;
    }
  };
  bool first = true;
  for (const LoggedRequest& logged : finished_log_) {
    const FinishedEvent& f = logged.finished;
    if (!first) out += ',';
    first = false;
    const RequestTiming& t = f.timing;
    out += "{\"id\":" + std::to_string(f.id);
    out += ",\"reason\":\"";
    out += ToString(f.reason);
    out += "\",\"arrival\":";
    time(t.arrival);
    out += ",\"first_scheduled\":";
    time(t.first_scheduled);
    out += ",\"first_token\":";
    time(t.first_token);
    out += ",\"finished\":";
    time(t.finished);
    out += ",\"prompt_tokens\":" + std::to_string(t.prompt_tokens);
    out += ",\"output_tokens\":" + std::to_string(t.output_tokens);
    out += ",\"cached_prompt_tokens\":" + std::to_string(t.cached_prompt_tokens);
    out += ",\"preemptions\":" + std::to_string(t.preemptions);
    out += ",\"first_write_late_us\":";
    if (logged.first_write_late < 0) {
      out += "null";
    } else {
      std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(logged.first_write_late) / 1e3);
      out += buf;
    }
    out += '}';
  }
  out += "]}";
  return out;
}

asio::awaitable<bool> Replica::Metrics(tcp::socket& socket, beast::flat_buffer& buffer,
                                       bool keep_alive) {
  const FaultOptions& f = shared_.options.faults;
  boost::system::error_code ec;
  if (f.metrics_delay_ms > 0) {
    asio::steady_timer delay(loop_, std::chrono::milliseconds(f.metrics_delay_ms));
    std::tie(ec) = co_await delay.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (shared_.options.metrics_in_engine_loop && !shutting_down_) {
    // As llama.cpp's server loop: the page is made between steps, so a scrape arriving
    // during a step (a long prefill) waits for that step's end.
    Pump();
    const TimeNs next = engine_->NextEventTime();
    const EngineStats s = engine_->Stats();
    if (next != kNever && (s.num_running > 0 || s.num_waiting > 0)) {
      const TimeNs wall = shared_.clock.ToWall(next);
      if (wall > WallNow()) {
        asio::steady_timer step_end(loop_, ToTimePoint(wall));
        std::tie(ec) = co_await step_end.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
  }
  std::string res;
  switch (f.metrics_mode) {
    case MetricsMode::kHang: {
      // Never answer; end when the client gives up (or the server shuts down).
      for (;;) {
        std::size_t n = 0;
        std::tie(ec, n) = co_await socket.async_read_some(buffer.prepare(4096),
                                                          asio::as_tuple(asio::use_awaitable));
        if (ec) co_return false;
        buffer.commit(n);
        if (buffer.size() > kWatchLimit) buffer.consume(buffer.size());
      }
    }
    case MetricsMode::kError:
      res = SizedResponse(500, "text/plain; charset=utf-8", "Internal Server Error", keep_alive);
      break;
    case MetricsMode::kGarbage:
      res = SizedResponse(200, "text/plain; version=0.0.4; charset=utf-8",
                          "<html><body>502 {{{ not\x01 a metrics page\x7f }}} </body>\n"
                          "requests running = many\n",
                          keep_alive);
      break;
    case MetricsMode::kOk:
      res =
          SizedResponse(200, "text/plain; version=0.0.4; charset=utf-8", MetricsPage(), keep_alive);
      break;
  }
  std::size_t n = 0;
  std::tie(ec, n) =
      co_await asio::async_write(socket, asio::buffer(res), asio::as_tuple(asio::use_awaitable));
  co_return !ec && keep_alive;
}

void Replica::BeginShutdown(std::function<void()> drained) {
  shutting_down_ = true;
  drained_ = std::move(drained);
  if (listener_) listener_->Stop();
  std::vector<Exchange*> live;
  for (auto& [id, ex] : live_) live.push_back(ex);
  for (Exchange* ex : live) ex->EndWithShutdownError();
  // Connections without a request in progress close now; the others once their response
  // has ended.
  for (SessionState* s : sessions_) {
    if (!s->in_exchange) {
      boost::system::error_code ec;
      s->socket->close(ec);
    }
  }
  SessionEnded();
}

}  // namespace infergate::sim
