// The Scheduler's view of its endpoints for one decision: the per-endpoint snapshots
// (EndpointView) and the KV outlook projected from the ledger (scheduler/kv_outlook.h).
// Part of the Scheduler class (scheduler/scheduler.h).
#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>

namespace infergate {

void Scheduler::BuildViews(TimeNs now, const std::vector<std::string>* allowed) {
  // Views are overwritten in place, every field: value-initialising 100 of them first
  // costs as much as filling them.
  if (views_.size() < slots_.size()) views_.resize(slots_.size());
  std::size_t n = 0;
  const double mean_prompt = ledger_.mean_prompt_tokens();
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Endpoint* ep = slots_[slot].get();
    if (ep == nullptr || !ep->ready) continue;
    if (allowed != nullptr &&
        std::find(allowed->begin(), allowed->end(), ep->id) == allowed->end()) {
      continue;
    }
    EndpointView& v = views_[n++];
    const EndpointScrapeState& s = ep->scrape;
    const EndpointMetrics& m = s.metrics();
    v.slot = slot;
    v.id = ep->id;
    v.metrics = &m;
    v.ledger = &ledger_.Counts(slot);
    v.has_metrics = s.has_metrics();
    v.scrape_ok = s.consecutive_failures() == 0;
    v.metrics_age = s.Age(now);
    v.fresh = s.IsFresh(now, options_.metrics_staleness);
    v.reachable = s.IsReachable();
    v.trust = MetricsTrust(v.metrics_age, options_.metrics_staleness);
    // Only while the page is late: that is when the engine's loop is busy in a prefill (a
    // llama.cpp page waits for it) and the responses are the only news of its progress.
    v.prefill_elapsed_s =
        !v.scrape_ok && v.ledger->prefill_since != kNever && now > v.ledger->prefill_since
            ? ToSeconds(now - v.ledger->prefill_since)
            : 0.0;
    if (v.has_metrics) {
      v.waiting = m.waiting_requests;
      v.running = m.running_requests;
      v.kv_usage = m.kv_usage;
      v.kv_capacity_tokens = m.kv_capacity_tokens;
      v.prefix_caching = !(m.Has(kFieldPrefixCachingConfig) && !m.prefix_caching_enabled);
    } else {
      v.waiting = 0;
      v.running = 0;
      v.kv_usage = 0;
      v.kv_capacity_tokens = 0;
      v.prefix_caching = true;
    }
    v.load = EstimateLoad(m, v.has_metrics, *v.ledger, mean_prompt, v.trust);
    v.prefix_blocks = 0;
    v.prefix_occupancy = 0;
    v.kv_outlook = nullptr;
  }
  views_.resize(n);
  if (pipeline_->needs() & kNeedsKvOutlook) {
    if (outlooks_.size() < n) outlooks_.resize(n);
    outlook_pending_.assign(n, 0);
    outlook_now_ = now;
    for (std::size_t i = 0; i < n; ++i) {
      const EndpointView& v = views_[i];
      if (v.kv_capacity_tokens <= 0 || v.load.kv_tokens_est < 0) continue;
      // Every endpoint's skeleton is kept current here, projected or not, so when it is
      // rebuilt (and at which TPOT) does not depend on which endpoints decisions price.
      PrepareKvOutlook(v, &outlooks_[i]);
      outlook_pending_[i] = 1;
    }
  }
}

void Scheduler::PrepareKvOutlook(const EndpointView& v, KvOutlook* out) {
  const int ves = ledger_.virtual_engines();
  out->virtual_engines = ves;
  out->capacity = static_cast<double>(v.kv_capacity_tokens);
  if (ves > 1) out->capacity /= ves;
  // The TPOT the endpoint's decoding requests will see: learned from completions, else
  // the cost model's decode step at the current batch.
  const double learned = ledger_.mean_tpot_s();
  const double tpot = std::max(
      1e-4, learned > 0 ? learned
                        : ttft_.decode_step_s + ttft_.decode_step_per_seq_s *
                                                    (std::max(0.0, v.load.running_est) + 1));
  out->tpot_s = tpot;

  if (skeletons_.size() <= v.slot) skeletons_.resize(v.slot + 1);
  OutlookSkeleton& k = skeletons_[v.slot];
  if (k.version == ledger_.Version(v.slot) && std::abs(k.tpot_s - tpot) <= 0.01 * tpot) return;
  k.version = ledger_.Version(v.slot);
  k.tpot_s = tpot;
  decoding_sort_.clear();
  awaiting_sort_.clear();
  ledger_.ForEachInflight(v.slot, [&](const TokenLedger::InflightRequest& r) {
    OutlookSkeleton::Entry e;
    e.uncached = static_cast<double>(r.uncached_tokens);
    e.prompt = static_cast<double>(r.prompt_tokens);
    e.output = static_cast<double>(r.expected_output);
    e.first_token = r.first_token;
    e.virtual_engine = static_cast<std::uint8_t>(r.virtual_engine);
    if (r.first_token == kNever) {
      awaiting_sort_.push_back(e);
    } else {
      e.finish_at = r.first_token + FromSeconds(e.output * tpot);
      decoding_sort_.push_back(e);
    }
  });
  std::sort(decoding_sort_.begin(), decoding_sort_.end(),
            [](const auto& a, const auto& b) { return a.finish_at < b.finish_at; });
  std::sort(awaiting_sort_.begin(), awaiting_sort_.end(),
            [](const auto& a, const auto& b) { return a.output < b.output; });
  k.decoding_finish_at.clear();
  k.decoding_first_token.clear();
  k.decoding_output.clear();
  k.decoding_uncached.clear();
  k.decoding_prompt.clear();
  k.decoding_ve.clear();
  for (const OutlookSkeleton::Entry& e : decoding_sort_) {
    k.decoding_finish_at.push_back(e.finish_at);
    k.decoding_first_token.push_back(e.first_token);
    k.decoding_output.push_back(e.output);
    k.decoding_uncached.push_back(e.uncached);
    k.decoding_prompt.push_back(e.prompt);
    if (ves > 1) k.decoding_ve.push_back(e.virtual_engine);
  }
  k.awaiting_output.clear();
  k.awaiting_uncached.clear();
  k.awaiting_prompt.clear();
  k.awaiting_ve.clear();
  for (const OutlookSkeleton::Entry& e : awaiting_sort_) {
    k.awaiting_output.push_back(e.output);
    k.awaiting_uncached.push_back(e.uncached);
    k.awaiting_prompt.push_back(e.prompt);
    if (ves > 1) k.awaiting_ve.push_back(e.virtual_engine);
  }
  k.awaiting_finish_s.resize(k.awaiting_output.size());
  k.awaiting_tpot_s = -1;
}

void Scheduler::Project(const EndpointView& endpoint) {
  const EndpointView* one[1] = {&endpoint};
  ProjectAll(one);
}

void Scheduler::ProjectAll(std::span<const EndpointView* const> endpoints) {
  // A projection ends in two chains of dependent additions per endpoint (what the requests
  // hold with their whole prompts, then the total held), and their order is fixed: the
  // decisions must not change by a rounding. Four endpoints' chains run side by side.
  std::size_t group[kOutlookGroup];
  std::size_t n = 0;
  for (const EndpointView* e : endpoints) {
    const auto i = static_cast<std::size_t>(e - views_.data());
    if (i >= outlook_pending_.size() || !outlook_pending_[i]) continue;
    outlook_pending_[i] = 0;
    if (!MergeOutlook(i, &group_full_[n])) continue;
    group[n++] = i;
    if (n == kOutlookGroup) {
      SumOutlooks(group);
      n = 0;
    }
  }
  if (n > 0) SumOutlooks(std::span(group, n));
}

namespace {

// sums[k] = ((sums[k] + v_k[0]) + v_k[1]) + ... over lanes[k] values, for 4 lanes, the
// lanes' additions interleaved (each lane's own order unchanged). value(k, j) reads lane
// k's value j.
template <class Value>
void InterleavedSums(const std::size_t* lanes, std::size_t count, double* sums, Value value) {
  std::size_t common = lanes[0];
  for (std::size_t k = 1; k < count; ++k) common = std::min(common, lanes[k]);
  if (count != 4) common = 0;
  double s0 = sums[0], s1 = sums[1], s2 = sums[2], s3 = sums[3];
  for (std::size_t j = 0; j < common; ++j) {
    s0 += value(0, j);
    s1 += value(1, j);
    s2 += value(2, j);
    s3 += value(3, j);
  }
  sums[0] = s0, sums[1] = s1, sums[2] = s2, sums[3] = s3;
  for (std::size_t k = 0; k < count; ++k) {
    double s = sums[k];
    for (std::size_t j = common; j < lanes[k]; ++j) s += value(k, j);
    sums[k] = s;
  }
}

}  // namespace

void Scheduler::SumOutlooks(std::span<const std::size_t> group) {
  KvOutlook* o[kOutlookGroup] = {};
  std::size_t lanes[kOutlookGroup] = {};
  for (std::size_t k = 0; k < group.size(); ++k) {
    o[k] = &outlooks_[group[k]];
    // Every in-flight request of the endpoint (more than the outlook's when it is one
    // virtual engine's).
    lanes[k] = group_full_[k].size();
  }
  // Whole prompts and output, from 0: `other` is what the scrape holds beyond them.
  double sums[kOutlookGroup] = {0, 0, 0, 0};
  InterleavedSums(lanes, group.size(), sums,
                  [&](std::size_t k, std::size_t j) { return group_full_[k][j]; });
  // The ledger's account is the better measure of what the endpoint is committed to: it
  // still counts a preempted request (its blocks are freed for the moment, but it will take
  // them back) and a prompt being prefilled. The scrape only adds what it cannot explain
  // (other gateways' requests), taken as constant; both sides count whole prompts here, as
  // the load estimate does.
  const int ves = ledger_.virtual_engines();
  for (std::size_t k = 0; k < group.size(); ++k) {
    o[k]->other = std::max(0.0, static_cast<double>(views_[group[k]].load.kv_tokens_est) - sums[k]);
    if (ves > 1) o[k]->other /= ves;  // an even share of what the ledger cannot place
    sums[k] = o[k]->other;
    lanes[k] = o[k]->inflight.size();
  }
  // The total held, from `other` (KvOutlook::Finalize's order).
  InterleavedSums(lanes, group.size(), sums,
                  [&](std::size_t k, std::size_t j) { return o[k]->inflight[j].tokens; });
  for (std::size_t k = 0; k < group.size(); ++k) o[k]->held = sums[k];
}

bool Scheduler::MergeOutlook(std::size_t i, std::vector<double>* full) {
  EndpointView& v = views_[i];
  KvOutlook* out = &outlooks_[i];
  v.kv_outlook = out;
  const double tpot = out->tpot_s;
  OutlookSkeleton& k = skeletons_[v.slot];
  const std::size_t decoding = k.decoding_finish_at.size();
  const std::size_t awaiting = k.awaiting_output.size();
  const int ves = ledger_.virtual_engines();
  if (decoding + awaiting == 0) {
    // Nothing in flight: the scrape's estimate is all there is (SumOutlooks would give
    // the same values).
    out->inflight.clear();
    out->other = std::max(0.0, static_cast<double>(v.load.kv_tokens_est) - 0.0);
    if (ves > 1) {
      out->other /= ves;
      out->awaiting = 0;
      out->awaiting_tokens = 0;
      out->sequences =
          std::max(0.0, v.load.running_est + v.load.waiting_est) / static_cast<double>(ves);
    }
    out->held = out->other;
    return false;
  }
  if (k.awaiting_tpot_s != tpot) {
    for (std::size_t a = 0; a < awaiting; ++a) k.awaiting_finish_s[a] = k.awaiting_output[a] * tpot;
    k.awaiting_tpot_s = tpot;
  }
  if (decoding_finish_s_.size() < decoding) {
    decoding_finish_s_.resize(decoding);
    decoding_generated_.resize(decoding);
  }
  ProjectDecoding(decoding, k.decoding_finish_at.data(), k.decoding_first_token.data(),
                  k.decoding_output.data(), outlook_now_, tpot, decoding_finish_s_.data(),
                  decoding_generated_.data());

  // Each request holds its own blocks: the prompt beyond what the cache already held when
  // it was sent (a shared prefix is counted once, by whoever brought it), then its output.
  // Merging the two lists keeps the in-flight requests ordered by when they finish.
  if (ves > 1) {
    MergeVirtualEngineOutlook(v, out, full);
    return true;
  }
  out->inflight.resize(decoding + awaiting);
  full->resize(decoding + awaiting);
  KvOutlook::Inflight* f = out->inflight.data();
  double* whole = full->data();
  const double* finish_s = decoding_finish_s_.data();
  const double* generated = decoding_generated_.data();
  std::size_t d = 0, a = 0;
  while (d < decoding || a < awaiting) {
    if (a == awaiting || (d < decoding && finish_s[d] <= k.awaiting_finish_s[a])) {
      f->tokens = k.decoding_uncached[d] + generated[d];
      f->finish_s = finish_s[d];
      f->decoding = true;
      *whole = k.decoding_prompt[d] + generated[d];
      ++d;
    } else {
      f->tokens = k.awaiting_uncached[a];
      f->finish_s = k.awaiting_finish_s[a];
      f->decoding = false;
      *whole = k.awaiting_prompt[a];
      ++a;
    }
    ++f;
    ++whole;
  }
  return true;
}

void Scheduler::MergeVirtualEngineOutlook(const EndpointView& v, KvOutlook* out,
                                          std::vector<double>* full) {
  // MergeOutlook's merge, keeping in the outlook only the requests of the virtual engine a
  // new request would land in; *full still gets every request (for `other`).
  const OutlookSkeleton& k = skeletons_[v.slot];
  const int target = ledger_.NextVirtualEngine(v.slot);
  const int ves = ledger_.virtual_engines();
  const std::size_t decoding = k.decoding_finish_at.size();
  const std::size_t awaiting = k.awaiting_output.size();
  const std::int32_t mine = ledger_.VirtualEngineUnfinished(v.slot, target);
  // Sequences the ledger did not send, spread evenly like their tokens.
  const double foreign = std::max(
      0.0, v.load.running_est + v.load.waiting_est - static_cast<double>(v.ledger->inflight));
  out->sequences = static_cast<double>(mine) + foreign / static_cast<double>(ves);
  out->inflight.resize(static_cast<std::size_t>(mine));
  out->awaiting = 0;
  out->awaiting_tokens = 0;
  full->resize(decoding + awaiting);
  KvOutlook::Inflight* f = out->inflight.data();
  KvOutlook::Inflight* const f_end = f + mine;
  double* whole = full->data();
  const double* finish_s = decoding_finish_s_.data();
  const double* generated = decoding_generated_.data();
  std::size_t d = 0, a = 0;
  while (d < decoding || a < awaiting) {
    if (a == awaiting || (d < decoding && finish_s[d] <= k.awaiting_finish_s[a])) {
      *whole = k.decoding_prompt[d] + generated[d];
      if (k.decoding_ve[d] == target && f != f_end) {
        f->tokens = k.decoding_uncached[d] + generated[d];
        f->finish_s = finish_s[d];
        f->decoding = true;
        ++f;
      }
      ++d;
    } else {
      *whole = k.awaiting_prompt[a];
      if (k.awaiting_ve[a] == target && f != f_end) {
        out->awaiting += 1;
        out->awaiting_tokens += k.awaiting_uncached[a];
        f->tokens = k.awaiting_uncached[a];
        f->finish_s = k.awaiting_finish_s[a];
        f->decoding = false;
        ++f;
      }
      ++a;
    }
    ++whole;
  }
  out->inflight.resize(static_cast<std::size_t>(f - out->inflight.data()));
}

}  // namespace infergate
