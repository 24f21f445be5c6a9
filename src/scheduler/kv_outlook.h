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
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <vector>

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

  // Sorts the in-flight requests; call once after filling them.
  void Finalize();
  // Tokens held now: other + Σ tokens.
  double HeldNow() const;
  // capacity − HeldNow().
  double FreeNow() const { return capacity - HeldNow(); }
  // Seconds until at least `need` tokens are free (0 if already); a large number (one
  // hour) when the projection never frees that much. Requires Finalize().
  double SecondsUntilFree(double need) const;
  // The highest demand before a request of `prompt` + `output` tokens admitted now
  // finishes. Requires Finalize().
  double PeakDemand(double prompt, double output) const;
};

}  // namespace infergate
