// Replica: one simulated server (one sim::Engine) behind its own listener, and Shared, what
// every replica of a SimServer shares. A replica answers the HTTP API (sim_server.h lists
// it), keeps one timer armed at the engine's next event and pushes each step's output
// straight into the waiting Exchanges (exchange.h).
//
// Thread-safety: everything about a replica lives on its event loop; nothing is locked.
// Shared is immutable once serving starts, except its atomic counter.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "http/beast.h"
#include "http/event_loops.h"
#include "sim/engine/engine.h"
#include "sim/server/exchange.h"
#include "sim/server/lateness_recorder.h"
#include "sim/server/openai_response.h"
#include "sim/server/response_bytes.h"
#include "sim/server/sim_clock.h"
#include "sim/server/sim_server.h"
#include "sim/server/vllm_metrics.h"

namespace infergate::sim {

// What every replica shares; immutable after start except the atomic counter.
struct Shared {
  SimServerOptions options;
  SimClock clock{0, 1.0};
  std::vector<std::string> served;  // served model names; served[0] labels metrics
  std::vector<ModelCard> cards;
  int max_model_len = 0;
  std::atomic<std::int64_t> streamed_requests{0};  // requests with output written
};

class Replica {
 public:
  Replica(int index, asio::io_context& loop, std::unique_ptr<Engine> engine, Shared& shared)
      : index_(index),
        loop_(loop),
        engine_(std::move(engine)),
        shared_(shared),
        timer_(loop),
        sink_(*this),
        requests_(shared.options.metrics_version, engine_->config().max_model_len) {
    page_info_.version = shared.options.metrics_version;
    page_info_.model_name = shared.served.front();
    page_info_.num_gpu_blocks_override = engine_->profile().engine.num_gpu_blocks;
  }

  int index() const { return index_; }
  asio::io_context& loop() { return loop_; }
  Shared& shared() { return shared_; }
  LatenessRecorder& lateness() { return lateness_; }
  const LatenessRecorder& lateness() const { return lateness_; }
  void set_listener(std::shared_ptr<http::Listener> l) { listener_ = std::move(l); }

  TimeNs SimNow() const { return shared_.clock.ToSim(WallNow()); }

  asio::awaitable<void> Session(tcp::socket socket);

  // Advances the engine to now, flushes the output of every request with new events, and
  // re-arms the timer for the engine's next event.
  void Pump();
  // Runs Pump soon (once for any number of calls before it runs).
  void Kick() {
    if (pump_posted_) return;
    pump_posted_ = true;
    asio::post(loop_, [this] {
      pump_posted_ = false;
      Pump();
    });
  }
  void MarkDirty(Exchange* ex) {
    if (ex->dirty) return;
    ex->dirty = true;
    dirty_.push_back(ex);
  }
  void Abort(RequestId id) {
    engine_->Abort(id, SimNow());
    Kick();
  }
  // A request wrote output for the first time (--die-after).
  void CountStreamed() {
    const std::int64_t n = ++shared_.streamed_requests;
    if (shared_.options.faults.die_after > 0 && n == shared_.options.faults.die_after) {
      static constexpr char kMsg[] = "infergate sim: --die-after reached; exiting abruptly\n";
      [[maybe_unused]] auto w = ::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
      ::_exit(1);
    }
  }
  void RecordLateness(const std::vector<TimeNs>& due) {
    if (due.empty()) return;
    const TimeNs now = WallNow();
    for (TimeNs t : due) lateness_.Record(now - shared_.clock.ToWall(t));
  }

  // Starts the shutdown; calls `drained` (on this loop) once every session has ended.
  void BeginShutdown(std::function<void()> drained);

 private:
  class Sink : public EventSink {
   public:
    explicit Sink(Replica& r) : r_(r) {}
    void OnToken(const TokenEvent& t) override {
      auto it = r_.live_.find(t.id);
      if (it != r_.live_.end()) it->second->OnToken(t);
    }
    void OnFinished(const FinishedEvent& f) override {
      r_.requests_.ObserveFinished(f);
      auto it = r_.live_.find(f.id);
      if (it == r_.live_.end()) return;
      Exchange* ex = it->second;
      r_.live_.erase(it);
      ex->OnFinished(f);
    }

   private:
    Replica& r_;
  };
  friend class Exchange;

  void Rearm();
  // Flushes up to kFlushSlice exchanges of dirty_ and posts the rest.
  void FlushDirty();
  asio::awaitable<bool> Handle(tcp::socket& socket, beast::flat_buffer& buffer,
                               bhttp::request<bhttp::string_body>& req, SessionState& state);
  asio::awaitable<bool> Generate(tcp::socket& socket, beast::flat_buffer& buffer,
                                 bhttp::request<bhttp::string_body>& req, ApiKind api,
                                 bool keep_alive, SessionState& state);
  asio::awaitable<bool> Metrics(tcp::socket& socket, beast::flat_buffer& buffer, bool keep_alive);
  std::string MetricsPage();
  std::string StatsJson();
  std::string RequestsJson();
  void LogRequest(const Exchange& ex);
  bool FailThisRequest();
  void SessionEnded();

  int index_;
  asio::io_context& loop_;
  std::unique_ptr<Engine> engine_;
  Shared& shared_;
  asio::steady_timer timer_;
  TimeNs armed_ = kNever;  // wall time the timer is armed for
  bool pump_posted_ = false;
  Sink sink_;
  RequestMetrics requests_;
  LoraInfoHistory lora_history_;
  MetricsPageInfo page_info_;
  LlamacppKvHighWater kv_high_water_;
  LatenessRecorder lateness_;
  std::unordered_map<RequestId, Exchange*> live_;
  std::vector<Exchange*> dirty_;  // exchanges with output to flush, from dirty_head_ on
  std::size_t dirty_head_ = 0;
  bool flush_posted_ = false;
  struct LoggedRequest {
    FinishedEvent finished;
    TimeNs first_write_late = -1;  // wall ns from the engine's time to the first write
  };
  std::deque<LoggedRequest> finished_log_;
  RequestId next_id_ = 1;
  std::uint64_t generation_requests_ = 0;  // order of arrival, for --fail-rate
  std::unordered_set<SessionState*> sessions_;
  std::shared_ptr<http::Listener> listener_;
  bool shutting_down_ = false;
  std::function<void()> drained_;
};

}  // namespace infergate::sim
