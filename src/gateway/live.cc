// The gateway's self-description: decision records for the live page, the metrics GIE's
// EPP has that need the request path (sizes, NTPOT, prefix hits), per-endpoint gauges
// (scraped, ledger, predicted) and the live page's JSON state (admin `/api/live`).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <random>

#include "core/json_escape.h"
#include "gateway/gateway_impl.h"
#include "gateway/visibility.h"
#include "http/headers.h"
#include "telemetry/json_out.h"

namespace infergate::gateway {

namespace {

std::string_view ShortName(std::string_view id) {
  auto slash = id.find('/');
  return slash == std::string_view::npos ? id : id.substr(slash + 1);
}

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The request the per-endpoint predicted TTFT gauge is computed for: a prompt of this many
// tokens that no endpoint holds in its prefix cache, with this many output tokens.
constexpr std::int64_t kReferencePromptTokens = 1000;
constexpr std::int64_t kReferenceOutputTokens = 200;

}  // namespace

std::string ModelLabel(bool configured, const PoolState* pool, std::string_view name) {
  if (configured || (pool && pool->Lists(name))) return std::string(name);
  return "other";
}

DecisionRecord Gateway::Impl::BeginDecision(const config::Backend& backend, PoolState& pool,
                                            std::string model_label, std::string target_label,
                                            const RequestInfo& info, const PickResult& pick,
                                            std::size_t prompt_blocks, TimeNs decide_start) {
  const TimeNs now = clock_.Now();
  DecisionRecord d;
  d.wall_ms = WallMs();
  d.pool = backend.id;
  d.model = std::move(model_label);
  d.target = std::move(target_label);
  d.priority = std::to_string(info.priority);
  d.reason = PickReasonName(pick.reason);
  d.decided_by = pick.decided_by;
  d.endpoints = pick.endpoints;
  d.prefix_blocks = pick.prefix_blocks;
  d.prompt_blocks = static_cast<std::uint32_t>(prompt_blocks);
  d.decide_s = ToSeconds(now - decide_start);
  auto& v = visibility.metrics;
  v.scheduler_attempts.With({pick.picked() ? "success" : "failure"}).Inc();
  v.decisions.With({backend.id, d.reason}).Inc();
  if (pick.picked() && pick.prefix_matched && prompt_blocks > 0) {
    v.prefix_hit_ratio.Observe(static_cast<double>(pick.prefix_blocks) /
                               static_cast<double>(prompt_blocks));
    v.prefix_hit_bytes.Observe(static_cast<double>(pick.prefix_blocks) *
                               static_cast<double>(pool.prefix_options().block_chars));
  }
  if (visibility.ShouldSamplePredictions(now)) {
    auto predictions = pool.WithScheduler([&](Scheduler& s) { return s.PredictTtft(info); });
    for (auto& p : predictions) {
      d.candidates.push_back(
          CandidateView{std::move(p.endpoint), p.prediction.ttft_s, p.prediction.kv_fits});
    }
  }
  return d;
}

void Gateway::Impl::FinishDecision(DecisionRecord&& d, int status, std::string_view served_by,
                                   std::size_t request_bytes, const http::ExchangeOutcome* out,
                                   TimeNs dispatched_at, const std::optional<Usage>& usage,
                                   double seconds, AccessEntry* access) {
  auto& v = visibility.metrics;
  if (access) {
    access->pool = access->backend;
    access->queue_wait_s = d.decide_s;
    if (status >= 400 && !out) access->dropped = d.reason;
    if (out) {
      access->bytes_out = out->body_bytes;
      access->attempts = out->attempts;
      access->redirects = out->redirects;
      if (out->first_byte > 0) access->ttfb_s = ToSeconds(out->first_byte - access->arrival);
      access->tried.assign(
          d.endpoints.begin(),
          d.endpoints.begin() +
              std::min<std::ptrdiff_t>(std::max(out->attempts, 1),
                                       static_cast<std::ptrdiff_t>(d.endpoints.size())));
      if (!served_by.empty() && (access->tried.empty() || access->tried.back() != served_by)) {
        access->tried.emplace_back(served_by);
      }
    }
    if (usage) {
      access->prompt_tokens = usage->prompt_tokens;
      access->output_tokens = usage->completion_tokens;
    }
  }
  v.request_sizes.With({d.model, d.target}).Observe(static_cast<double>(request_bytes));
  d.status = status;
  d.served_by = served_by;
  d.duration_s = seconds;
  if (out) {
    v.response_sizes.With({d.model, d.target}).Observe(static_cast<double>(out->body_bytes));
    if (out->first_byte > 0 && dispatched_at > 0 && out->first_byte >= dispatched_at) {
      d.ttft_s = ToSeconds(out->first_byte - dispatched_at);
      visibility.ObserveTtft(d.pool, out->first_byte, d.ttft_s);
    }
  }
  if (usage && usage->completion_tokens > 0 && status / 100 == 2) {
    v.ntpot.With({d.model, d.target})
        .Observe(seconds / static_cast<double>(usage->completion_tokens));
  }
  visibility.RecordDecision(std::move(d));
}

void Gateway::Impl::CollectEndpointMetrics(telemetry::MetricWriter& w) {
  auto rt = runtime();
  if (!rt || rt->pools.empty()) return;
  struct Row {
    std::string pool, endpoint;
    EndpointStatus status;
    double predicted_ttft = -1;
  };
  std::vector<Row> rows;
  std::vector<std::pair<std::string, double>> index_sizes;
  for (const auto& [backend, state] : rt->pools) {
    const std::string name(ShortName(backend->id));
    std::vector<EndpointStatus> endpoints;
    std::vector<EndpointPrediction> predictions;
    RequestInfo reference;
    reference.prompt_tokens = kReferencePromptTokens;
    reference.max_tokens = kReferenceOutputTokens;
    state->WithScheduler([&](Scheduler& s) {
      endpoints = s.Endpoints();
      predictions = s.PredictTtft(reference);
      return 0;
    });
    double index_size = 0;
    for (auto& e : endpoints) {
      index_size += static_cast<double>(e.prefix_entries);
      Row row{name, e.id, std::move(e), -1};
      for (const auto& p : predictions) {
        if (p.endpoint == row.endpoint) row.predicted_ttft = p.prediction.ttft_s;
      }
      rows.push_back(std::move(row));
    }
    index_sizes.emplace_back(name, index_size);
  }
  auto family = [&](std::string_view metric, std::string_view help, auto value) {
    w.Header(metric, help, "gauge");
    for (const auto& r : rows) {
      const double x = value(r);
      if (x >= 0) w.Sample(metric, {{"name", r.pool}, {"endpoint", r.endpoint}}, x);
    }
  };
  family("infergate_pool_endpoint_waiting_requests",
         "Requests waiting at the endpoint, as last scraped.",
         [](const Row& r) { return r.status.waiting; });
  family("infergate_pool_endpoint_running_requests",
         "Requests running at the endpoint, as last scraped.",
         [](const Row& r) { return r.status.running; });
  family("infergate_pool_endpoint_kv_cache_utilization",
         "KV cache use of the endpoint (0..1), as last scraped.",
         [](const Row& r) { return r.status.kv_usage; });
  family("infergate_pool_endpoint_estimated_waiting_requests",
         "Waiting requests the scheduler estimates now (scrape plus what the ledger saw since).",
         [](const Row& r) { return r.status.load.waiting_est; });
  family("infergate_pool_endpoint_estimated_kv_cache_utilization",
         "KV cache use the scheduler estimates now (scrape plus what the ledger saw since).",
         [](const Row& r) { return r.status.load.kv_usage_est; });
  family("infergate_pool_endpoint_ledger_inflight_requests",
         "Requests this gateway sent to the endpoint that have not finished (the ledger).",
         [](const Row& r) { return static_cast<double>(r.status.ledger.inflight); });
  family("infergate_pool_endpoint_ledger_awaiting_requests",
         "Of the ledger's requests, those still awaiting their first token.",
         [](const Row& r) { return static_cast<double>(r.status.ledger.awaiting); });
  family("infergate_pool_endpoint_ready", "1 when the endpoint is ready (Pod readiness).",
         [](const Row& r) { return r.status.ready ? 1.0 : 0.0; });
  family("infergate_pool_endpoint_metrics_fresh",
         "1 when the endpoint's scraped metrics are recent enough to schedule with.",
         [](const Row& r) { return r.status.fresh ? 1.0 : 0.0; });
  family("infergate_pool_endpoint_predicted_ttft_seconds",
         "TTFT the cost model predicts at the endpoint now for a reference request (1000 "
         "uncached prompt tokens, 200 output tokens).",
         [](const Row& r) { return r.predicted_ttft; });
  w.Header("inference_extension_prefix_indexer_size",
           "Entries in the pool's prefix index (blocks, summed over endpoints).", "gauge");
  for (const auto& [name, size] : index_sizes) {
    w.Sample("inference_extension_prefix_indexer_size", {{"name", name}}, size);
  }
}

std::string Gateway::Impl::LiveJson() {
  const TimeNs now = clock_.Now();
  visibility.MarkViewed(now);
  std::string s;
  s.reserve(16384);
  telemetry::JsonOut j(s);
  j.BeginObject();
  j.Field("now_ms", WallMs());
  j.Field("active_requests", metrics.active_requests.Value());
  j.Key("pools").BeginArray();
  auto rt = runtime();
  if (rt) {
    for (const auto& [backend, state] : rt->pools) {
      std::vector<EndpointStatus> endpoints;
      PoolStatus summary;
      std::string profile;
      state->WithScheduler([&](Scheduler& sch) {
        endpoints = sch.Endpoints();
        summary = sch.Summary();
        profile = state->settings().profile;
        return 0;
      });
      std::map<int, std::size_t> bands;
      state->ForEachQueuedFlow(
          [&](int priority, std::string_view, std::size_t n) { bands[priority] += n; });
      j.BeginObject();
      j.Field("id", backend->id);
      j.Field("profile", profile);
      j.Field("saturated", summary.saturated);
      j.Field("ready", summary.ready);
      j.Field("fresh", summary.fresh);
      j.Field("inflight", static_cast<std::int64_t>(summary.inflight));
      j.Key("queue").BeginArray();
      for (auto it = bands.rbegin(); it != bands.rend(); ++it) {
        j.BeginObject().Field("priority", it->first);
        j.Field("queued", static_cast<std::int64_t>(it->second)).EndObject();
      }
      j.EndArray();
      const telemetry::WindowSummary ttft = visibility.TtftSummary(backend->id, now);
      j.Key("ttft_1m").BeginObject();
      j.Field("count", static_cast<std::int64_t>(ttft.count));
      if (ttft.count > 0) {
        j.Field("p50", ttft.p50).Field("p90", ttft.p90).Field("p99", ttft.p99);
        j.Field("max", ttft.max);
      }
      j.EndObject();
      j.Key("endpoints").BeginArray();
      for (const auto& e : endpoints) {
        std::string_view pod;
        for (const auto& ep : backend->endpoints) {
          if (ep.id == e.id) pod = ep.pod_name;
        }
        j.BeginObject();
        j.Field("id", e.id).Field("pod", pod);
        j.Field("ready", e.ready).Field("fresh", e.fresh);
        if (e.metrics_age != kNever) j.Field("age_s", ToSeconds(e.metrics_age));
        j.Field("failures", e.consecutive_failures);
        j.Key("scraped").BeginObject();
        j.Field("waiting", e.waiting).Field("running", e.running).Field("kv", e.kv_usage);
        j.EndObject();
        j.Key("ledger").BeginObject();
        j.Field("inflight", e.ledger.inflight).Field("awaiting", e.ledger.awaiting);
        j.Field("decoding", e.ledger.decoding);
        j.Field("awaiting_tokens", e.ledger.awaiting_tokens);
        j.EndObject();
        j.Key("estimate").BeginObject();
        j.Field("waiting", e.load.waiting_est).Field("running", e.load.running_est);
        j.Field("kv", e.load.kv_usage_est);
        j.EndObject();
        j.Field("prefix_entries", static_cast<std::int64_t>(e.prefix_entries));
        j.EndObject();
      }
      j.EndArray();
      j.EndObject();
    }
  }
  j.EndArray();
  j.Key("decisions").BeginArray();
  const auto decisions = visibility.RecentDecisions();
  for (auto it = decisions.rbegin(); it != decisions.rend(); ++it) {
    const DecisionRecord& d = *it;
    j.BeginObject();
    j.Field("t_ms", d.wall_ms).Field("pool", d.pool).Field("model", d.model);
    j.Field("target", d.target).Field("priority", d.priority).Field("reason", d.reason);
    if (!d.decided_by.empty()) j.Field("decided_by", d.decided_by);
    j.Key("endpoints").BeginArray();
    for (const auto& e : d.endpoints) j.String(e);
    j.EndArray();
    j.Field("served_by", d.served_by);
    j.Field("prefix_blocks", static_cast<std::int64_t>(d.prefix_blocks));
    j.Field("prompt_blocks", static_cast<std::int64_t>(d.prompt_blocks));
    j.Field("decide_s", d.decide_s);
    if (d.ttft_s >= 0) j.Field("ttft_s", d.ttft_s);
    if (d.duration_s >= 0) j.Field("duration_s", d.duration_s);
    j.Field("status", d.status);
    if (!d.candidates.empty()) {
      j.Key("candidates").BeginArray();
      for (const auto& c : d.candidates) {
        j.BeginObject().Field("endpoint", c.endpoint).Field("predicted_ttft_s", c.predicted_ttft_s);
        j.Field("kv_fits", c.kv_fits).EndObject();
      }
      j.EndArray();
    }
    j.EndObject();
  }
  j.EndArray();
  j.EndObject();
  return s;
}

}  // namespace infergate::gateway

// ------------------------------------------------------------------ access log

namespace infergate::gateway {

namespace {

constexpr std::string_view kRequestIdHeader = "x-request-id";

// Generated request ids: 32 hex digits, a random per-process prefix (64 bits drawn once)
// then a counter, so ids are unique within the process and, with overwhelming odds,
// across processes and restarts; no random draw per request.
struct RequestIdSource {
  std::array<char, 16> prefix;
  std::atomic<std::uint64_t> counter{0};
  RequestIdSource() {
    std::random_device rd;
    std::uint64_t seed =
        (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    // The counter starts at a random point too: two processes seeded alike still differ.
    counter.store(seed * 0x9e3779b97f4a7c15ull, std::memory_order_relaxed);
    AppendHex(seed ^ 0x632be59bd9b4e019ull, prefix.data());
  }
  static void AppendHex(std::uint64_t v, char* out) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kHex[v & 15];
  }
  void Next(std::array<char, 32>& id) {
    std::copy(prefix.begin(), prefix.end(), id.begin());
    AppendHex(counter.fetch_add(1, std::memory_order_relaxed), id.data() + 16);
  }
};

RequestIdSource& RequestIds() {
  static RequestIdSource ids;
  return ids;
}

}  // namespace

AccessEntry* Gateway::Impl::BeginAccess(AccessEntry& e, http::Request& req,
                                        const ListenerRuntime& lr, const config::RouteRule* rule,
                                        const config::Backend* backend, TimeNs arrival,
                                        const std::string& client_ip) {
  if (!access_log) return nullptr;
  if (auto v = http::FindField(req, kRequestIdHeader); v && !v->empty() && v->size() <= 200) {
    if (!access_log->Sample()) return nullptr;
    e.request_id.assign(*v);
  } else {
    std::array<char, 32> id;
    RequestIds().Next(id);
    const std::string_view view(id.data(), id.size());
    req.set(kRequestIdHeader, view);
    if (!access_log->Sample()) return nullptr;
    e.request_id.assign(view);
  }
  e.arrival = arrival;
  e.listener = lr.key;
  if (rule) e.route = rule->Id();
  if (backend) e.backend = backend->id;
  e.client = client_ip;
  e.method = req.method_string();
  // The path only: a query string may carry credentials.
  e.path = req.target();
  e.path = e.path.substr(0, e.path.find('?'));
  e.bytes_in = req.body().size();
  return &e;
}

void Gateway::Impl::AccessOutcome(AccessEntry& e, const http::ExchangeOutcome& out,
                                  std::span<const http::UpstreamCandidate> candidates) {
  e.bytes_out = out.body_bytes;
  e.attempts = out.attempts;
  e.redirects = out.redirects;
  if (out.first_byte > 0) e.ttfb_s = ToSeconds(out.first_byte - e.arrival);
  if (e.tried.empty()) {
    const int n = std::min<int>(out.attempts, static_cast<int>(candidates.size()));
    for (int i = 0; i < n; ++i) e.tried.emplace_back(candidates[i].id);
  }
}

void Gateway::Impl::EmitAccess(const AccessEntry& e, int status) {
  const TimeNs now = clock_.Now();
  const double duration = ToSeconds(now - e.arrival);
  const std::int64_t start_ms = WallMs() - static_cast<std::int64_t>(duration * 1000.0 + 0.5);
  // Built in a buffer the thread keeps (no allocation once it has grown), then copied
  // once into the thread's log buffer. Keys are literals written with their punctuation
  // in one piece; values are escaped (the same bytes JsonOut writes).
  thread_local std::string line;
  line.clear();
  auto text = [](std::string_view key_and_quote, std::string_view v) {
    line += key_and_quote;
    AppendJsonEscaped(line, v);
    line += '"';
  };
  auto integer = [](std::string_view key, std::int64_t v) {
    line += key;
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    line.append(buf, r.ptr);
  };
  auto number = [](std::string_view key, double v) {
    line += key;
    if (!std::isfinite(v)) {
      line += "null";
      return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
    line.append(buf, r.ptr);
  };
  line += "{\"time\":\"";
  telemetry::AppendUtcMillis(line, start_ms);
  line += '"';
  text(",\"request_id\":\"", e.request_id);
  text(",\"listener\":\"", e.listener);
  text(",\"route\":\"", e.route);
  text(",\"backend\":\"", e.backend);
  text(",\"client\":\"", e.client);
  text(",\"method\":\"", e.method);
  text(",\"path\":\"", e.path);
  if (!e.model.empty()) text(",\"model\":\"", e.model);
  if (!e.served_model.empty()) text(",\"served_model\":\"", e.served_model);
  if (!e.pool.empty()) text(",\"pool\":\"", e.pool);
  if (!e.tried.empty()) {
    text(",\"endpoint\":\"", e.tried.back());
    line += ",\"tried\":[";
    for (std::size_t i = 0; i < e.tried.size(); ++i) {
      text(i == 0 ? "\"" : ",\"", e.tried[i]);
    }
    line += ']';
  }
  integer(",\"status\":", status);
  if (!e.dropped.empty()) text(",\"dropped\":\"", e.dropped);
  integer(",\"bytes_in\":", static_cast<std::int64_t>(e.bytes_in));
  integer(",\"bytes_out\":", static_cast<std::int64_t>(e.bytes_out));
  if (e.queue_wait_s >= 0) number(",\"queue_wait_s\":", e.queue_wait_s);
  if (e.ttfb_s >= 0) number(",\"ttfb_s\":", e.ttfb_s);
  number(",\"duration_s\":", duration);
  if (e.prompt_tokens >= 0) integer(",\"prompt_tokens\":", e.prompt_tokens);
  if (e.output_tokens >= 0) integer(",\"output_tokens\":", e.output_tokens);
  integer(",\"retries\":", std::max(0, e.attempts - 1));
  integer(",\"redispatches\":", e.redirects);
  line += '}';
  access_log->Write(line);
}

}  // namespace infergate::gateway
