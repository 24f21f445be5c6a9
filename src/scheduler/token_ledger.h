// The gateway's own account of the work it has sent to each endpoint and not yet seen
// finish: requests and tokens, updated at once on dispatch, first token and completion.
//
// Scraped metrics lag (a scrape every 50 ms plus its round trip), so a burst of requests
// arriving between two scrapes would all see the same "idle" endpoint and herd onto it.
// The ledger closes that gap. Each in-flight request is in one of two states:
//   awaiting  dispatched, no response byte yet: its prompt tokens await prefill;
//   decoding  first byte seen (prefill done): its prompt occupies KV, tokens stream.
//
// Combining with scrapes. Every endpoint's counters are kept relative to the time T of
// its last scrape (Rebase). For each in-flight request the ledger knows whether at T it
// was not yet dispatched ("new"), awaiting, or decoding, and what happened since:
//   new_awaiting / new_decoding    dispatched after T: invisible to the scrape, add them;
//   left_waiting                   awaiting at T, since started or gone: remove from the
//                                  scraped waiting count;
//   joined_running (+tokens)       awaiting at T, decoding now: add to running and KV;
//   left_running (+freed_tokens)   decoding at T, finished since: remove from running and
//                                  free their prompt + output tokens of KV.
// Requests that finish between T and the Rebase call (one scrape round trip) are taken as
// already reflected in the scrape. scheduler/endpoint_view.h turns these into estimates;
// docs/scheduling.md gives the formulas.
//
// Calibration: prompt token counts are usually estimates (characters / 4). When a server
// reports usage on completion, the ledger learns the ratio actual/estimated, the mean
// output length and the mean time per output token (first token to completion over the
// tokens after the first), which the scheduler applies to later requests. Each is the plain
// mean of its first 1/ewma_alpha observations and an EWMA after: the prior (ratio 1, the
// default output) counts for nothing once one real observation exists, which matters most
// behind several gateway replicas, where each sees only its share of the completions.
//
// Pipeline-parallel virtual engines. vLLM V0 with pipeline parallelism P runs P virtual
// engines per server, each with its own scheduler and 1/P of the KV blocks, and gives each
// new request to the one with the fewest unfinished requests (ties: the lowest index). A
// server's metrics do not show the split, but the ledger knows which of its requests are
// unfinished and in what order they arrived, so with Options::virtual_engines = P it
// replays the rule: each dispatch is tagged with the virtual engine it lands in, and the
// tag is released when the request finishes or fails. Requests the ledger did not send
// are unknown to it; where they skew the counts the replay is an approximation. With
// P = 1 every request is in virtual engine 0.
//
// Behind several gateway replicas, a peer's dispatch or completion arrives a sync hop
// after it happened, dated (DispatchRemote, Finish). The server placed every request
// that arrived in between knowing it; so the ledger keeps the requests that finished in
// the last Options::replay_window and, on a dated event earlier than its latest one,
// replays the rule over the endpoint's requests in time order from that date and re-tags
// them: one late event no longer leaves a request tagged with the wrong virtual engine
// for the rest of its life (minutes of decoding, in which every estimate of both virtual
// engines is off).
//
// Handles are generation-checked: a handle of a finished request, or of an endpoint that
// was removed, is rejected (the call returns false) rather than corrupting counts.
//
// Thread-safety: not synchronised; the scheduler's owner serialises access.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "scheduler/request.h"

namespace infergate {

struct LedgerCounts {
  // Totals over the endpoint's in-flight requests.
  std::int32_t inflight = 0;
  std::int32_t awaiting = 0;
  std::int64_t awaiting_tokens = 0;  // prompt tokens awaiting prefill
  // Of those, the tokens not expected to be in the endpoint's prefix cache (what its
  // prefill will compute); equal to awaiting_tokens when the dispatcher did not say.
  std::int64_t awaiting_uncached_tokens = 0;
  std::int32_t decoding = 0;
  std::int64_t decoding_tokens = 0;         // prompt tokens of decoding requests
  std::int64_t expected_output_tokens = 0;  // Σ expected output of in-flight requests

  // Relative to the last scrape (see the file comment).
  std::int32_t new_awaiting = 0;
  std::int64_t new_awaiting_tokens = 0;
  std::int32_t new_decoding = 0;
  std::int64_t new_decoding_tokens = 0;
  std::int32_t left_waiting = 0;
  std::int32_t joined_running = 0;
  std::int64_t joined_running_tokens = 0;
  std::int32_t left_running = 0;
  std::int64_t freed_tokens = 0;

  // Of `inflight`, the requests other gateway replicas dispatched (DispatchRemote).
  std::int32_t remote_inflight = 0;
  // Prefill progress, from the responses alone: the oldest awaiting request's prefill
  // started no later than `prefill_since`, the later of its dispatch and the endpoint's
  // latest first token (the request before it ended its prefill then); `prefill_head_tokens`
  // is its uncached tokens. kNever and 0 while nothing awaits. The time since is work the
  // endpoint has already done on its queue, which no scrape shows (a llama.cpp page is
  // late precisely while it prefills).
  TimeNs prefill_since = kNever;
  std::int64_t prefill_head_tokens = 0;
};

class TokenLedger {
 public:
  using Handle = std::uint64_t;
  static constexpr Handle kInvalidHandle = 0;
  // The most virtual engines per endpoint the replay tracks (pipeline sizes beyond this
  // are clamped).
  static constexpr int kMaxVirtualEngines = 16;

  struct Options {
    // Weight of each new observation in the calibration averages.
    double ewma_alpha = 0.05;
    // Expected output of a request without max_tokens before any usage was seen.
    std::int64_t default_output_tokens = 256;
    // Mean prompt size assumed before any dispatch (for load the ledger did not send).
    std::int64_t default_prompt_tokens = 1024;
    // Virtual engines per endpoint (vLLM V0's pipeline-parallel size; 1: none), clamped
    // to [1, kMaxVirtualEngines].
    int virtual_engines = 1;
    // How far back a dated event (a peer replica's, learned a sync hop late) replays the
    // virtual-engine rule: finished requests are remembered this long for it.
    TimeNs replay_window = 2 * kNanosPerSecond;
  };

  TokenLedger() : TokenLedger(Options{}) {}
  explicit TokenLedger(Options options);

  // Records a request sent to endpoint `slot` at `now`. `prompt_tokens` is what the
  // scheduler accounts (already calibrated); `raw_estimate` is the uncalibrated
  // characters/4 estimate it came from, or -1 when the count was exact;
  // `uncached_tokens` the part of the prompt the endpoint is expected to compute (-1: all).
  Handle Dispatch(std::uint32_t slot, TimeNs now, std::int64_t prompt_tokens,
                  std::int64_t expected_output_tokens, std::int64_t raw_estimate = -1,
                  std::int64_t uncached_tokens = -1);
  // Records a request another gateway replica sent to endpoint `slot` (learned from its
  // routing events, applied at `now`). It counts like a local dispatch in every estimate,
  // but it is kept apart for calibration: its first token and completion, seen late and
  // second hand, never move the prompt ratio, the means or the prefill fit, so the local
  // accounting stays what this replica measured. `uncached_tokens` as in Dispatch.
  Handle DispatchRemote(std::uint32_t slot, TimeNs now, std::int64_t prompt_tokens,
                        std::int64_t expected_output_tokens, std::int64_t uncached_tokens = -1);
  // Whether a live handle is a remote entry (false for an unknown handle).
  bool IsRemote(Handle h) const;

  // The first response byte arrived: prefill is done. False for an unknown handle or a
  // request already decoding.
  //
  // FirstToken and Finish take the time the event happened. A local event happens now; a
  // peer replica's is learned a sync hop late, and may be dated before the endpoint's last
  // scrape: the scrape then already shows it (the request running, or gone with its KV
  // blocks), and the counters relative to the scrape are recomputed instead of adjusted,
  // so a peer's completion never frees its tokens a second time.
  bool FirstToken(Handle h, TimeNs now);
  // The request finished (completion, failure or cancellation); `usage` when the server
  // reported it. False for an unknown handle.
  bool Finish(Handle h, TimeNs now, const Usage* usage = nullptr);

  // A scrape of `slot` taken at `scrape_time` was recorded: recompute the relative
  // counters against it. O(in-flight requests of the endpoint).
  void Rebase(std::uint32_t slot, TimeNs scrape_time);
  // Forgets the endpoint's in-flight requests; their handles become invalid.
  void RemoveEndpoint(std::uint32_t slot);

  // Counts of `slot` (all zero for an unknown slot).
  const LedgerCounts& Counts(std::uint32_t slot) const;

  // One in-flight request, as ForEachInflight shows it.
  struct InflightRequest {
    TimeNs dispatched = 0;
    TimeNs first_token = kNever;  // kNever while awaiting its first token
    std::int64_t prompt_tokens = 0;
    std::int64_t uncached_tokens = 0;  // the part not expected in the prefix cache
    std::int64_t expected_output = 0;
    int virtual_engine = 0;  // the virtual engine the replay put it in
  };
  // Changes whenever endpoint `slot`'s in-flight requests do (a dispatch, a first token, a
  // finish, removal), so derived per-endpoint data can be cached. 0 for an unknown slot.
  std::uint64_t Version(std::uint32_t slot) const {
    return slot < endpoints_.size() ? endpoints_[slot].version : 0;
  }
  // Calls fn(const InflightRequest&) for every in-flight request of endpoint `slot`, most
  // recently dispatched first. O(in-flight requests of the endpoint).
  template <class Fn>
  void ForEachInflight(std::uint32_t slot, Fn&& fn) const {
    if (slot >= endpoints_.size()) return;
    for (std::uint32_t i = endpoints_[slot].head; i != kNil; i = records_[i].next) {
      const Record& r = records_[i];
      fn(InflightRequest{r.dispatched, r.state == State::kDecoding ? r.first_token : kNever,
                         r.prompt_tokens, r.uncached, r.expected_output, r.virtual_engine});
    }
  }
  // The endpoint a live handle was dispatched to.
  std::optional<std::uint32_t> SlotOf(Handle h) const;

  // Virtual engines per endpoint (Options::virtual_engines after clamping).
  int virtual_engines() const { return virtual_engines_; }
  // The virtual engine a live handle was put in.
  std::optional<int> VirtualEngineOf(Handle h) const;
  // A live handle's request as ForEachInflight reports it; nothing for an unknown or
  // finished handle.
  std::optional<InflightRequest> Inflight(Handle h) const;
  // How many requests of a live handle's endpoint that were dispatched before it await
  // their first token in its virtual engine (the prefills it queues behind); -1 for an
  // unknown handle or one no longer awaiting. O(in-flight requests of the endpoint).
  int AwaitingAhead(Handle h) const;
  // The virtual engine the next request dispatched to `slot` would be put in: the one
  // with the fewest unfinished requests, ties to the lowest index. O(virtual engines).
  int NextVirtualEngine(std::uint32_t slot) const {
    if (slot >= endpoints_.size()) return 0;
    const auto& n = endpoints_[slot].unfinished;
    int best = 0;
    for (int v = 1; v < virtual_engines_; ++v) {
      if (n[static_cast<std::size_t>(v)] < n[static_cast<std::size_t>(best)]) best = v;
    }
    return best;
  }
  // Unfinished requests of `slot` in virtual engine `ve` (0 when either is unknown).
  std::int32_t VirtualEngineUnfinished(std::uint32_t slot, int ve) const {
    if (slot >= endpoints_.size() || ve < 0 || ve >= virtual_engines_) return 0;
    return endpoints_[slot].unfinished[static_cast<std::size_t>(ve)];
  }
  std::size_t inflight() const { return live_; }

  // Calibration.
  double prompt_token_ratio() const { return prompt_ratio_; }
  double mean_prompt_tokens() const { return mean_prompt_; }
  double mean_output_tokens() const { return mean_output_; }
  // Mean seconds per output token after the first, learned from completions with usage;
  // 0 until one was seen.
  double mean_tpot_s() const { return mean_tpot_s_; }

  // Time to first token as a line in the tokens a prefill computes, fitted (least squares
  // with exponential forgetting, weight ewma_alpha per sample) to requests that were
  // dispatched while nothing else awaited its first token on their endpoint, so the time is
  // the prefill and not a queue: ttft ≈ base_s + per_token_s · uncached tokens.
  struct PrefillFit {
    double base_s = 0;
    double per_token_s = 0;
    int samples = 0;  // observations so far (the fit is used from a few on)
  };
  const PrefillFit& prefill_fit() const { return prefill_fit_; }
  // The prompt tokens to account for an estimated count.
  std::int64_t CalibratedPromptTokens(std::int64_t estimate) const;
  // max_tokens when given, else the learned mean output.
  std::int64_t ExpectedOutputTokens(std::optional<std::int64_t> max_tokens) const;

 private:
  enum class State : std::uint8_t { kFree, kAwaiting, kDecoding };
  enum class AtScrape : std::uint8_t { kNew, kAwaiting, kDecoding };
  static constexpr std::uint32_t kNil = UINT32_MAX;
  static constexpr TimeNs kNoTime = INT64_MIN;

  struct Record {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;
    std::uint32_t prev = kNil, next = kNil;  // the endpoint's in-flight list
    State state = State::kFree;
    AtScrape at_scrape = AtScrape::kNew;
    TimeNs dispatched = 0;
    TimeNs first_token = kNoTime;
    std::int64_t prompt_tokens = 0;
    std::int64_t expected_output = 0;
    std::int64_t raw_estimate = -1;
    std::int64_t uncached = 0;
    bool alone = false;   // nothing else awaited on its endpoint when it was dispatched
    bool remote = false;  // another replica's request (DispatchRemote)
    std::uint8_t virtual_engine = 0;
    std::uint64_t order = 0;  // dispatch order (ties of equal dispatch times)
  };
  // A finished request, remembered for the virtual-engine replay.
  struct Gone {
    TimeNs dispatched = 0;
    TimeNs finished = 0;
    std::uint64_t order = 0;
    std::uint8_t virtual_engine = 0;
  };
  struct Endpoint {
    std::uint32_t head = kNil;
    TimeNs last_first_token = kNoTime;  // the latest first token of one of its requests
    TimeNs scrape_time = kNoTime;
    LedgerCounts counts;
    std::uint64_t version = 0;
    // In-flight requests per virtual engine.
    std::array<std::int32_t, kMaxVirtualEngines> unfinished{};
    // Virtual engines > 1: requests finished within the replay window, in the order their
    // finishes were recorded; the latest dispatch or finish time recorded; and the time
    // from which the remembered history is whole (finishes before it were forgotten).
    std::vector<Gone> gone;
    TimeNs latest = kNoTime;
    TimeNs history_from = kNoTime;
  };

  Record* Find(Handle h);
  const Record* Find(Handle h) const;
  Endpoint& EndpointOf(std::uint32_t slot);
  void Unlink(std::uint32_t index);
  void Release(std::uint32_t index);
  // Recomputes counts.prefill_since and prefill_head_tokens. O(in-flight requests).
  void UpdatePrefillHead(Endpoint& ep);
  // Recomputes the counters relative to ep.scrape_time from the in-flight requests (what
  // Rebase does). O(in-flight requests of the endpoint).
  void Recount(Endpoint& ep);
  // Virtual engines: an event at `t` was recorded at endpoint `ep`; when it is earlier
  // than the endpoint's latest, replays the placement rule from `t` (see the file
  // comment). O(n log n) in the endpoint's in-flight and remembered requests.
  void Dated(Endpoint& ep, TimeNs t);
  void ReplayVirtualEngines(Endpoint& ep, TimeNs from);
  // The weight of a calibration average's next observation, counting it in `samples`:
  // 1/n for the n-th (the plain mean of what was seen, so the prior is gone at the first
  // and a few samples already calibrate) until that falls to ewma_alpha, then ewma_alpha.
  double Weight(std::uint32_t& samples) {
    if (samples < UINT32_MAX) ++samples;
    return std::max(options_.ewma_alpha, 1.0 / static_cast<double>(samples));
  }

  Options options_;
  int virtual_engines_;
  std::vector<Record> records_;
  std::vector<std::uint32_t> free_;
  std::vector<Endpoint> endpoints_;
  std::size_t live_ = 0;
  std::uint64_t next_order_ = 0;
  double prompt_ratio_ = 1.0;
  double mean_prompt_;
  double mean_output_;
  double mean_tpot_s_ = 0;
  // Observations behind each average so far (Weight).
  std::uint32_t prompt_ratio_samples_ = 0, output_samples_ = 0, tpot_samples_ = 0;
  // Exponentially weighted sums for the prefill fit: weight, x, y, x², xy.
  double fit_w_ = 0, fit_x_ = 0, fit_y_ = 0, fit_xx_ = 0, fit_xy_ = 0;
  PrefillFit prefill_fit_;
};

}  // namespace infergate
