// A controllable HTTP upstream for the gateway's integration tests.
//
//   test_upstream --address 127.0.0.1 --port 0 --name a
// prints "listening <address>:<port>" and serves:
//   /sse?chunks=N&interval_ms=M&die_after=K  text/event-stream, N events M ms apart; with
//                                            die_after, the connection is reset after K
//   /echo                                    JSON with method, target, headers and body
//   /hold                                    never answers; counts client disconnects
//   /slow?ms=M                               answers after M ms
//   /big?bytes=N                             N bytes of body
//   /stats                                   {"name","requests","connections","disconnects",
//                                            "completions"}
//   /metrics                                 a vLLM V0 metrics page with the values below
//   /control?waiting=W&running=R&kv=K&metrics=ok|error
//                                            sets what /metrics reports
//   /control?stall=N&first_delay_ms=M        the next N streaming completions send their
//                                            head and then nothing until the client leaves
//                                            (counted in "disconnects"); completions wait M
//                                            ms before their first body byte
//   /v1/models                               {"data":[{"id":<each --models name>}]}
//   /v1/completions, /v1/chat/completions    echoes the request's model and this server's
//                                            name as the text; SSE when "stream":true, with a
//                                            usage chunk; honours max_tokens
//   anything else                            200 with body "<name>"
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "http/beast.h"
#include "http/openai_error.h"

using namespace infergate;

namespace {

struct Stats {
  std::string name = "upstream";
  long requests = 0, connections = 0, disconnects = 0, completions = 0;
  // What /metrics reports.
  double waiting = 0, running = 0, kv = 0;
  bool metrics_ok = true;
  long stalls = 0;              // streaming completions still to stall
  long first_delay_ms = 0;      // before a completion's first body byte
  std::string models = "base";  // comma-separated, for /v1/models
};
Stats g_stats;

std::map<std::string, std::string> Query(std::string_view target) {
  std::map<std::string, std::string> q;
  auto pos = target.find('?');
  if (pos == std::string_view::npos) return q;
  std::string_view rest = target.substr(pos + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto kv = rest.substr(0, amp);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) q[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return q;
}

double Real(const std::map<std::string, std::string>& q, const std::string& k, double def) {
  auto it = q.find(k);
  return it == q.end() ? def : std::atof(it->second.c_str());
}

// The value of a top-level string field of a small JSON body (test inputs only).
std::string JsonField(const std::string& body, const std::string& key) {
  auto p = body.find("\"" + key + "\"");
  if (p == std::string::npos) return "";
  p = body.find(':', p);
  if (p == std::string::npos) return "";
  p = body.find_first_not_of(" ", p + 1);
  if (p == std::string::npos) return "";
  if (body[p] == '"') {
    auto e = body.find('"', p + 1);
    return body.substr(p + 1, e - p - 1);
  }
  auto e = body.find_first_of(",}", p);
  return body.substr(p, e - p);
}

std::string MetricsPage() {
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "# HELP vllm:num_requests_running Number of requests running.\n"
                "# TYPE vllm:num_requests_running gauge\n"
                "vllm:num_requests_running{model_name=\"base\"} %g\n"
                "# TYPE vllm:num_requests_waiting gauge\n"
                "vllm:num_requests_waiting{model_name=\"base\"} %g\n"
                "# TYPE vllm:gpu_cache_usage_perc gauge\n"
                "vllm:gpu_cache_usage_perc{model_name=\"base\"} %g\n"
                "# TYPE vllm:cache_config_info gauge\n"
                "vllm:cache_config_info{block_size=\"16\",enable_prefix_caching=\"False\","
                "num_gpu_blocks=\"1000\"} 1.0\n",
                g_stats.running, g_stats.waiting, g_stats.kv);
  return buf;
}

long Num(const std::map<std::string, std::string>& q, const std::string& k, long def) {
  auto it = q.find(k);
  return it == q.end() ? def : std::atol(it->second.c_str());
}

void Reset(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

asio::awaitable<void> Session(tcp::socket s) {
  ++g_stats.connections;
  beast::flat_buffer buf;
  for (;;) {
    bhttp::request<bhttp::string_body> req;
    auto [ec, n] = co_await bhttp::async_read(s, buf, req, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    ++g_stats.requests;
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    auto q = Query(target);
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    if (path == "/sse") {
      bhttp::response<bhttp::empty_body> head{bhttp::status::ok, req.version()};
      head.set(bhttp::field::content_type, "text/event-stream");
      head.chunked(true);
      head.keep_alive(req.keep_alive());
      bhttp::response_serializer<bhttp::empty_body> sr{head};
      auto [hec, hn] =
          co_await bhttp::async_write_header(s, sr, asio::as_tuple(asio::use_awaitable));
      if (hec) co_return;
      long chunks = Num(q, "chunks", 5), interval = Num(q, "interval_ms", 100);
      long die_after = Num(q, "die_after", -1);
      asio::steady_timer t(s.get_executor());
      for (long i = 0; i < chunks; ++i) {
        if (i > 0 || Num(q, "first_delay_ms", 0) > 0) {
          t.expires_after(
              std::chrono::milliseconds(i > 0 ? interval : Num(q, "first_delay_ms", 0)));
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (die_after >= 0 && i == die_after) {
          Reset(s);
          co_return;
        }
        std::string ev = "data: {\"i\":" + std::to_string(i) + "}\n\n";
        auto chunk = bhttp::make_chunk(asio::buffer(ev));
        auto [wec, wn] = co_await asio::async_write(s, chunk, asio::as_tuple(asio::use_awaitable));
        if (wec) co_return;
      }
      auto last = bhttp::make_chunk_last();
      auto [lec, ln] = co_await asio::async_write(s, last, asio::as_tuple(asio::use_awaitable));
      if (lec || !req.keep_alive()) co_return;
      continue;
    }
    if ((path == "/v1/completions" || path == "/v1/chat/completions") &&
        req.method() == bhttp::verb::post) {
      ++g_stats.completions;
      const std::string model = JsonField(req.body(), "model");
      const bool stream = JsonField(req.body(), "stream") == "true";
      std::string max = JsonField(req.body(), "max_tokens");
      const long tokens = max.empty() ? 1 : std::max(1L, std::atol(max.c_str()));
      const bool chat = path == "/v1/chat/completions";
      auto choice = [&](bool last) {
        std::string c = chat ? R"({"index":0,"delta":{"content":")" + g_stats.name + R"("},)"
                             : R"({"index":0,"text":")" + g_stats.name + R"(",)";
        return c + (last ? R"("finish_reason":"length"})" : R"("finish_reason":null})");
      };
      const std::string head = std::string(R"({"id":"cmpl-1","object":")") +
                               (chat ? "chat.completion.chunk" : "text_completion") +
                               R"(","created":1,"model":")" + model + R"(","choices":[)";
      const std::string usage = R"({"prompt_tokens":5,"completion_tokens":)" +
                                std::to_string(tokens) + R"(,"total_tokens":)" +
                                std::to_string(tokens + 5) + "}";
      if (g_stats.first_delay_ms > 0 && !(stream && g_stats.stalls > 0)) {
        asio::steady_timer t(s.get_executor(), std::chrono::milliseconds(g_stats.first_delay_ms));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (!stream) {
        res.set(bhttp::field::content_type, "application/json");
        res.body() = head + choice(true) + R"(],"usage":)" + usage + "}";
      } else {
        bhttp::response<bhttp::empty_body> sh{bhttp::status::ok, req.version()};
        sh.set(bhttp::field::content_type, "text/event-stream");
        sh.chunked(true);
        sh.keep_alive(req.keep_alive());
        bhttp::response_serializer<bhttp::empty_body> sr{sh};
        auto [hec, hn] =
            co_await bhttp::async_write_header(s, sr, asio::as_tuple(asio::use_awaitable));
        if (hec) co_return;
        if (g_stats.stalls > 0) {
          // Silent after the head, as a server whose request waits for KV space.
          --g_stats.stalls;
          char c;
          auto [rec, rn] =
              co_await s.async_read_some(asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
          if (rec) ++g_stats.disconnects;
          co_return;
        }
        std::string events;
        for (long i = 0; i < tokens; ++i) {
          events += "data: " + head + choice(i + 1 == tokens) + "]}\n\n";
        }
        events += "data: " + head + R"(],"usage":)" + usage + "}\n\ndata: [DONE]\n\n";
        auto chunk = bhttp::make_chunk(asio::buffer(events));
        auto [wec, wn] = co_await asio::async_write(s, chunk, asio::as_tuple(asio::use_awaitable));
        if (wec) co_return;
        auto last = bhttp::make_chunk_last();
        auto [lec, ln] = co_await asio::async_write(s, last, asio::as_tuple(asio::use_awaitable));
        if (lec || !req.keep_alive()) co_return;
        continue;
      }
    } else if (path == "/metrics") {
      if (!g_stats.metrics_ok) {
        res.result(bhttp::status::internal_server_error);
        res.body() = "metrics unavailable";
      } else {
        res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
        res.body() = MetricsPage();
      }
    } else if (path == "/control") {
      g_stats.waiting = Real(q, "waiting", g_stats.waiting);
      g_stats.running = Real(q, "running", g_stats.running);
      g_stats.kv = Real(q, "kv", g_stats.kv);
      if (q.count("metrics")) g_stats.metrics_ok = q["metrics"] == "ok";
      g_stats.stalls = Num(q, "stall", g_stats.stalls);
      g_stats.first_delay_ms = Num(q, "first_delay_ms", g_stats.first_delay_ms);
      res.body() = "ok";
    } else if (path == "/v1/models") {
      res.set(bhttp::field::content_type, "application/json");
      std::string j = R"({"object":"list","data":[)";
      std::size_t start = 0;
      bool first = true;
      while (start <= g_stats.models.size()) {
        auto comma = g_stats.models.find(',', start);
        std::string m = g_stats.models.substr(
            start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!m.empty()) {
          j += std::string(first ? "" : ",") + R"({"id":")" + m + R"(","object":"model"})";
          first = false;
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      res.body() = j + "]}";
    } else if (path == "/hold") {
      // Wait until the client goes away.
      char c;
      auto [rec, rn] =
          co_await s.async_read_some(asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
      if (rec) ++g_stats.disconnects;
      co_return;
    }
    if (!res.body().empty() || res.result_int() != 200) {
      // answered above
    } else if (path == "/slow") {
      asio::steady_timer t(s.get_executor(), std::chrono::milliseconds(Num(q, "ms", 100)));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      res.body() = g_stats.name;
    } else if (path == "/echo") {
      std::string j = "{\"method\":\"" + std::string(req.method_string()) + "\",\"target\":\"";
      http::AppendJsonEscaped(j, req.target());
      j += "\",\"headers\":{";
      bool first = true;
      for (const auto& f : req) {
        if (!first) j += ",";
        first = false;
        j += "\"";
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        http::AppendJsonEscaped(j, name);
        j += "\":\"";
        http::AppendJsonEscaped(j, f.value());
        j += "\"";
      }
      j += "},\"body\":\"";
      http::AppendJsonEscaped(j, req.body());
      j += "\"}";
      res.set(bhttp::field::content_type, "application/json");
      res.body() = j;
    } else if (path == "/big") {
      res.body().assign(static_cast<std::size_t>(Num(q, "bytes", 1 << 20)), 'x');
    } else if (path == "/stats") {
      res.set(bhttp::field::content_type, "application/json");
      res.body() = "{\"name\":\"" + g_stats.name +
                   "\",\"requests\":" + std::to_string(g_stats.requests) +
                   ",\"connections\":" + std::to_string(g_stats.connections) +
                   ",\"disconnects\":" + std::to_string(g_stats.disconnects) +
                   ",\"completions\":" + std::to_string(g_stats.completions) + "}";
    } else {
      res.body() = g_stats.name;
    }
    res.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(s, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !req.keep_alive()) co_return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  unsigned short port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--address") address = argv[i + 1];
    if (k == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    if (k == "--name") g_stats.name = argv[i + 1];
    if (k == "--models") g_stats.models = argv[i + 1];
    if (k == "--waiting") g_stats.waiting = std::atof(argv[i + 1]);
    if (k == "--kv") g_stats.kv = std::atof(argv[i + 1]);
  }
  asio::io_context io(1);
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address(address), port));
  std::printf("listening %s:%d\n", address.c_str(), acc.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, s] = co_await acc.async_accept(asio::as_tuple(asio::use_awaitable));
          if (ec) continue;
          s.set_option(tcp::no_delay(true), ec);
          asio::co_spawn(io, Session(std::move(s)), asio::detached);
        }
      },
      asio::detached);
  asio::signal_set sigs(io, SIGTERM, SIGINT);
  sigs.async_wait([&](auto, int) { io.stop(); });
  io.run();
  return 0;
}
