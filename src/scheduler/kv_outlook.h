// KvOutlook: one endpoint's KV cache projected forward from what this gateway sent it.
//
// The scrape says how full the cache is now; it cannot say how full it will be. The
// ledger knows every request in flight on the endpoint: its prompt, its max_tokens, and
// when its first token came back. With the time per output token (TPOT) that is enough
// to project the cache forward: each decoding request holds its prompt plus the tokens
// generated so far, grows by one token per TPOT, and releases everything when it reaches
// its expected output; requests still awaiting their prefill hold their prompt as soon as
// the engine admits them (they are ahead of any new request). Tokens the ledger cannot
// explain (other gateways, requests it lost track of) are taken as constant.
//
// With t the time from now, τ the TPOT and each in-flight request i holding c_i tokens
// now and finishing at T_i:
//   H(t) = other + Σ_{i: T_i > t} (c_i + t/τ)          tokens held at time t
// and for a new request of p prompt tokens and m output tokens admitted now:
//   D(t) = H(t) + p + t/τ,  t in [0, m·τ]             demand with it
// Two questions follow:
//   SecondsUntilFree(need)  the earliest t with capacity − H(t) >= need: how long a new
//                           prompt would wait for KV space (0 when it fits now);
//   PeakDemand(p, m)        max D(t): whether admitting it now will overflow the cache
//                           before it finishes (vLLM then preempts and recomputes).
// Expected outputs are max_tokens, so both lean pessimistic when outputs end early; the
// scrape corrects `other` and the current holdings every interval.
//
// Virtual engines. A vLLM V0 server with pipeline parallelism P runs P virtual engines,
// each with 1/P of the blocks, and a new request lands in the one with the fewest
// unfinished requests (TokenLedger replays the rule). A request's room is then its
// virtual engine's, not the server's: the scheduler builds the outlook of that virtual
// engine only, with capacity C/P, the in-flight requests the ledger put in it, and 1/P
// of the tokens it cannot explain (spread evenly: it cannot tell where they are).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/clock.h"

namespace infergate {

struct KvOutlook {
  double capacity = 0;  // tokens; 0 when unknown (then nothing else is meaningful)
  double tpot_s = 0.1;  // seconds per output token used for the projection
  double other = 0;     // tokens held that the ledger cannot explain, taken as constant
  struct Inflight {
    double tokens = 0;    // held now (awaiting: the prompt it will take)
    double finish_s = 0;  // seconds from now until it releases them
    bool decoding = false;
  };
  std::vector<Inflight> inflight;  // sorted by finish_s after Finalize()
  // Tokens held now: other + Σ tokens, summed in `inflight` order. Set by Finalize(), or
  // by a producer that fills `inflight` already sorted.
  double held = 0;
  // Virtual engines of the endpoint; above 1 the outlook is the one a new request would
  // land in (capacity, in-flight requests and `other` are that virtual engine's), and:
  int virtual_engines = 1;
  double sequences = 0;        // its sequences: the ledger's, plus an even share of the rest
  double awaiting = 0;         // its requests awaiting their first token (its prefill queue)
  double awaiting_tokens = 0;  // their uncached prompt tokens

  // Sorts the in-flight requests and totals them into `held`; call after filling them or
  // changing `other`.
  void Finalize();
  // Tokens held now (`held`). Requires Finalize().
  double HeldNow() const { return held; }
  // capacity − HeldNow().
  double FreeNow() const { return capacity - HeldNow(); }
  // Seconds until at least `need` tokens are free (0 if already); a large number (one
  // hour) when the projection never frees that much. Requires Finalize().
  double SecondsUntilFree(double need) const;
  // The highest demand before a request of `prompt` + `output` tokens admitted now
  // finishes. Requires Finalize().
  double PeakDemand(double prompt, double output) const;

  // SecondsUntilFree's answer when the projection never frees enough.
  static constexpr double kNeverSeconds = 3600;
};

// For each of n decoding requests: finish_s[i] = max(0, ToSeconds(finish_at[i] − now)),
// the seconds until it finishes, and generated[i] = min(output[i], max(0,
// ToSeconds(now − first_token[i])) / tpot), the tokens it has generated. Exactly (bit for
// bit) those scalar expressions, computed several requests at a time.
void ProjectDecoding(std::size_t n, const TimeNs* finish_at, const TimeNs* first_token,
                     const double* output, TimeNs now, double tpot, double* finish_s,
                     double* generated);

// Inline: they run for every candidate of every decision, usually returning at once.
inline double KvOutlook::SecondsUntilFree(double need) const {
  if (capacity - HeldNow() >= need) return 0;
  // H(t) only drops when a request finishes; just after the k-th finish (sorted), the
  // requests k+1.. remain and have grown by t/τ each.
  const double rate = tpot_s > 0 ? 1.0 / tpot_s : 0.0;
  double remaining_tokens = HeldNow() - other;
  std::size_t alive = inflight.size();
  for (const Inflight& r : inflight) {
    remaining_tokens -= r.tokens;
    --alive;
    const double held = other + remaining_tokens + static_cast<double>(alive) * r.finish_s * rate;
    if (capacity - held >= need) return r.finish_s;
  }
  return kNeverSeconds;
}

inline double KvOutlook::PeakDemand(double prompt, double output) const {
  const double rate = tpot_s > 0 ? 1.0 / tpot_s : 0.0;
  const double end = output * tpot_s;
  // D(t) rises linearly between finishes and drops at each; its maximum is just before a
  // finish (or at the new request's own end).
  double alive_tokens = HeldNow() - other;
  double alive = static_cast<double>(inflight.size());
  double peak = other + alive_tokens + prompt;
  for (const Inflight& r : inflight) {
    const double t = std::min(r.finish_s, end);
    peak = std::max(peak, other + alive_tokens + alive * t * rate + prompt + t * rate);
    if (r.finish_s >= end) return peak;
    alive_tokens -= r.tokens;
    alive -= 1;
  }
  return std::max(peak, other + alive_tokens + alive * end * rate + prompt + end * rate);
}

}  // namespace infergate
