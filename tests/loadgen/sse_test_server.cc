#include "tests/loadgen/sse_test_server.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/tokenizer.h"
#include "http/beast.h"

namespace infergate::testing {
namespace {

using asio::awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

TimeNs NowNs() { return SteadyClock().Now(); }

std::chrono::steady_clock::time_point At(TimeNs t) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

struct ScriptedSseServer::Impl {
  explicit Impl(ScriptedSseServer& owner)
      : owner(owner), acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}

  awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) co_return;
      socket.set_option(tcp::no_delay(true));
      const int id = owner.connections_.fetch_add(1);
      asio::co_spawn(ioc, Serve(std::move(socket), id), asio::detached);
    }
  }

  // Writes `data` as one HTTP chunk (or several, when split).
  awaitable<bool> WriteEvent(tcp::socket& s, const std::string& data, int split, bool chunked) {
    std::size_t pos = 0;
    do {
      const std::size_t n =
          split > 0 ? std::min<std::size_t>(static_cast<std::size_t>(split), data.size() - pos)
                    : data.size() - pos;
      std::string frame = chunked ? fmt::format("{:x}\r\n", n) : std::string();
      frame.append(data, pos, n);
      if (chunked) frame += "\r\n";
      auto [ec, w] = co_await asio::async_write(s, asio::buffer(frame), kTuple);
      if (ec) co_return false;
      pos += n;
      if (split > 0 && pos < data.size()) {
        // Give each piece its own TCP segment.
        asio::steady_timer t(ioc);
        t.expires_after(std::chrono::microseconds(300));
        co_await t.async_wait(kTuple);
      }
    } while (pos < data.size());
    co_return true;
  }

  awaitable<void> Serve(tcp::socket socket, int connection) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(socket, buffer, req, kTuple);
      if (ec) co_return;
      ReceivedRequest rec;
      rec.arrived_ns = NowNs();
      rec.connection = connection;
      rec.target = std::string(req.target());
      for (const auto& h : req) {
        rec.headers[Lower(std::string(h.name_string()))] = std::string(h.value());
      }
      rec.body = req.body();
      const bool chat = rec.target.ends_with("chat/completions");
      auto j = nlohmann::json::parse(rec.body, nullptr, false);
      if (j.is_object()) {
        rec.model = j.value("model", "");
        rec.max_tokens = j.value(chat ? "max_completion_tokens" : "max_tokens", 0);
        rec.ignore_eos = j.value("ignore_eos", false);
        rec.stream = j.value("stream", false);
        if (j.contains("stream_options") && j["stream_options"].is_object()) {
          rec.include_usage = j["stream_options"].value("include_usage", false);
        }
        if (chat && j.contains("messages")) {
          for (const auto& m : j["messages"]) {
            rec.prompt_tokens += static_cast<int>(Tokenizer::Count(m.value("content", "")));
          }
        } else if (j.contains("prompt") && j["prompt"].is_string()) {
          rec.prompt_tokens = static_cast<int>(Tokenizer::Count(j["prompt"].get<std::string>()));
        }
      }
      const StreamScript script = owner.script_(rec);
      std::size_t index;
      {
        std::lock_guard lock(owner.mu_);
        index = owner.records_.size();
        owner.records_.push_back(rec);
      }
      if (script.never_respond) {
        asio::steady_timer t(ioc);
        t.expires_after(std::chrono::hours(1));
        co_await t.async_wait(kTuple);
        co_return;
      }
      if (script.status != 200) {
        const std::string body = fmt::format(
            R"({{"object":"error","message":"scripted failure {}","type":"BadRequestError","param":null,"code":{}}})",
            script.status, script.status);
        std::string resp = fmt::format(
            "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: "
            "{}\r\n{}\r\n{}",
            script.status, body.size(), script.keep_alive ? "" : "Connection: close\r\n", body);
        auto [wec, w] = co_await asio::async_write(socket, asio::buffer(resp), kTuple);
        if (wec || !script.keep_alive) co_return;
        continue;
      }
      std::string head =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
          "";
      if (script.chunked) head += "Transfer-Encoding: chunked\r\n";
      if (!script.keep_alive || !script.chunked) head += "Connection: close\r\n";
      head += "\r\n";
      auto [hec, hw] = co_await asio::async_write(socket, asio::buffer(head), kTuple);
      if (hec) co_return;

      const std::string nl = script.crlf ? "\r\n" : "\n";
      const auto event = [&](const std::string& data) { return "data: " + data + nl + nl; };
      const int tokens = script.tokens >= 0 ? script.tokens : rec.max_tokens;
      const std::string id = fmt::format("cmpl-{}", index);
      asio::steady_timer timer(ioc);
      bool alive = true;
      for (int k = 0; k < tokens && alive; ++k) {
        const TimeNs due = rec.arrived_ns + FromSeconds(script.first_chunk_delay_s) +
                           FromSeconds(script.chunk_interval_s) * k;
        timer.expires_at(At(due));
        co_await timer.async_wait(kTuple);
        if (k == script.error_after_tokens) {
          alive = co_await WriteEvent(
              socket,
              event(
                  R"({"error":{"object":"error","message":"scripted mid-stream error","type":"InternalServerError","code":500}})"),
              script.split_bytes, script.chunked);
          break;
        }
        const std::string word = Tokenizer::Word(static_cast<std::uint64_t>(k) + 1);
        const char* finish = k + 1 == tokens ? "\"length\"" : "null";
        std::string data;
        if (chat) {
          if (k == 0) {
            data += event(fmt::format(
                R"({{"id":"chat{}","object":"chat.completion.chunk","created":1,"model":"{}","choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}})",
                id, rec.model));
          }
          data += event(fmt::format(
              R"({{"id":"chat{}","object":"chat.completion.chunk","created":1,"model":"{}","choices":[{{"index":0,"delta":{{"content":"{}"}},"logprobs":null,"finish_reason":{}}}]}})",
              id, rec.model, word, finish));
        } else {
          data = event(fmt::format(
              R"({{"id":"{}","object":"text_completion","created":1,"model":"{}","choices":[{{"index":0,"text":"{}","logprobs":null,"finish_reason":{},"stop_reason":null}}],"usage":null}})",
              id, rec.model, word, finish));
        }
        {
          std::lock_guard lock(owner.mu_);
          const TimeNs now = NowNs();
          auto& rec_now = owner.records_[index];
          if (k == 0) rec_now.first_chunk_ns = now;
          rec_now.chunk_ns.push_back(now);
          if (chat && k == 0) rec_now.chunk_ns.push_back(now);  // role chunk + first token
        }
        alive = co_await WriteEvent(socket, data, script.split_bytes, script.chunked);
        {
          std::lock_guard lock(owner.mu_);
          const TimeNs now = NowNs();
          auto& rec_now = owner.records_[index];
          rec_now.chunk_written_ns.push_back(now);
          if (chat && k == 0) rec_now.chunk_written_ns.push_back(now);
        }
      }
      if (!alive) co_return;
      if (script.usage && script.error_after_tokens < 0) {
        const std::string usage = fmt::format(
            R"({{"id":"{}","object":"{}","created":1,"model":"{}","choices":[],"usage":{{"prompt_tokens":{},"total_tokens":{},"completion_tokens":{}}}}})",
            id, chat ? "chat.completion.chunk" : "text_completion", rec.model, rec.prompt_tokens,
            rec.prompt_tokens + tokens, tokens);
        if (!co_await WriteEvent(socket, event(usage), script.split_bytes, script.chunked))
          co_return;
      }
      if (script.done) {
        if (!co_await WriteEvent(socket, event("[DONE]"), script.split_bytes, script.chunked))
          co_return;
      }
      if (!script.chunked) co_return;  // closing the socket ends the body
      auto [eec, ew] = co_await asio::async_write(socket, asio::buffer("0\r\n\r\n", 5), kTuple);
      if (eec || !script.keep_alive) co_return;
    }
  }

  ScriptedSseServer& owner;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
};

ScriptedSseServer::ScriptedSseServer(ScriptFn script) : script_(std::move(script)) {
  impl_ = std::make_unique<Impl>(*this);
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->ioc, impl_->Accept(), asio::detached);
  thread_ = std::thread([this] { impl_->ioc.run(); });
}

ScriptedSseServer::~ScriptedSseServer() {
  impl_->ioc.stop();
  thread_.join();
}

std::vector<ReceivedRequest> ScriptedSseServer::Records() const {
  std::lock_guard lock(mu_);
  return records_;
}

}  // namespace infergate::testing
