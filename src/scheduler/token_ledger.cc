#include "scheduler/token_ledger.h"

#include <algorithm>
#include <cmath>

namespace infergate {
namespace {

// Calibration never moves an estimate by more than this factor either way: a wildly
// different ratio means a bad usage report, not a different language.
constexpr double kMinPromptRatio = 0.25;
constexpr double kMaxPromptRatio = 4.0;

const LedgerCounts kZeroCounts{};

}  // namespace

TokenLedger::TokenLedger(Options options)
    : options_(options),
      virtual_engines_(std::clamp(options.virtual_engines, 1, kMaxVirtualEngines)),
      mean_prompt_(static_cast<double>(options.default_prompt_tokens)),
      mean_output_(static_cast<double>(options.default_output_tokens)) {}

TokenLedger::Endpoint& TokenLedger::EndpointOf(std::uint32_t slot) {
  if (slot >= endpoints_.size()) endpoints_.resize(slot + 1);
  return endpoints_[slot];
}

const LedgerCounts& TokenLedger::Counts(std::uint32_t slot) const {
  return slot < endpoints_.size() ? endpoints_[slot].counts : kZeroCounts;
}

TokenLedger::Record* TokenLedger::Find(Handle h) {
  return const_cast<Record*>(static_cast<const TokenLedger*>(this)->Find(h));
}

const TokenLedger::Record* TokenLedger::Find(Handle h) const {
  const std::uint64_t index_plus_one = h & 0xffffffffu;
  const auto generation = static_cast<std::uint32_t>(h >> 32);
  if (index_plus_one == 0 || index_plus_one > records_.size()) return nullptr;
  const Record& r = records_[index_plus_one - 1];
  if (r.state == State::kFree || r.generation != generation) return nullptr;
  return &r;
}

std::optional<std::uint32_t> TokenLedger::SlotOf(Handle h) const {
  const Record* r = Find(h);
  if (r == nullptr) return std::nullopt;
  return r->slot;
}

std::optional<int> TokenLedger::VirtualEngineOf(Handle h) const {
  const Record* r = Find(h);
  if (r == nullptr) return std::nullopt;
  return r->virtual_engine;
}

std::optional<TokenLedger::InflightRequest> TokenLedger::Inflight(Handle h) const {
  const Record* r = Find(h);
  if (r == nullptr) return std::nullopt;
  return InflightRequest{r->dispatched,      r->state == State::kDecoding ? r->first_token : kNever,
                         r->prompt_tokens,   r->uncached,
                         r->expected_output, r->virtual_engine};
}

int TokenLedger::AwaitingAhead(Handle h) const {
  const Record* r = Find(h);
  if (r == nullptr || r->state != State::kAwaiting) return -1;
  // The endpoint's list runs from the most recently dispatched: older ones follow.
  int ahead = 0;
  for (std::uint32_t i = r->next; i != kNil; i = records_[i].next) {
    const Record& o = records_[i];
    if (o.state == State::kAwaiting && o.virtual_engine == r->virtual_engine) ++ahead;
  }
  return ahead;
}

std::int64_t TokenLedger::CalibratedPromptTokens(std::int64_t estimate) const {
  return static_cast<std::int64_t>(std::llround(static_cast<double>(estimate) * prompt_ratio_));
}

std::int64_t TokenLedger::ExpectedOutputTokens(std::optional<std::int64_t> max_tokens) const {
  if (max_tokens && *max_tokens > 0) return *max_tokens;
  return static_cast<std::int64_t>(std::llround(mean_output_));
}

TokenLedger::Handle TokenLedger::Dispatch(std::uint32_t slot, TimeNs now,
                                          std::int64_t prompt_tokens,
                                          std::int64_t expected_output_tokens,
                                          std::int64_t raw_estimate, std::int64_t uncached_tokens) {
  Endpoint& ep = EndpointOf(slot);
  const bool alone = ep.counts.awaiting == 0;
  std::uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(records_.size());
    records_.emplace_back();
  }
  Record& r = records_[index];
  r.slot = slot;
  ++r.generation;
  r.state = State::kAwaiting;
  r.dispatched = now;
  r.first_token = kNoTime;
  r.prompt_tokens = std::max<std::int64_t>(prompt_tokens, 0);
  r.expected_output = std::max<std::int64_t>(expected_output_tokens, 0);
  r.raw_estimate = raw_estimate;
  r.uncached = uncached_tokens < 0 ? r.prompt_tokens
                                   : std::min<std::int64_t>(uncached_tokens, r.prompt_tokens);
  r.alone = alone;
  r.remote = false;
  const int ve = NextVirtualEngine(slot);
  r.virtual_engine = static_cast<std::uint8_t>(ve);
  r.order = next_order_++;
  ++ep.unfinished[static_cast<std::size_t>(ve)];
  // Requests dispatched at or after the scrape's start may be missing from it.
  r.at_scrape =
      (ep.scrape_time == kNoTime || now >= ep.scrape_time) ? AtScrape::kNew : AtScrape::kAwaiting;
  // The list stays in dispatch order, most recent first: a local dispatch goes at the
  // head, a peer's dated one after those dispatched later.
  std::uint32_t after = kNil;
  for (std::uint32_t i = ep.head; i != kNil && records_[i].dispatched > now; i = records_[i].next)
    after = i;
  r.prev = after;
  r.next = after == kNil ? ep.head : records_[after].next;
  if (r.next != kNil) records_[r.next].prev = index;
  if (after == kNil) {
    ep.head = index;
  } else {
    records_[after].next = index;
  }
  ++ep.version;

  LedgerCounts& c = ep.counts;
  ++c.inflight;
  ++c.awaiting;
  c.awaiting_tokens += r.prompt_tokens;
  c.awaiting_uncached_tokens += r.uncached;
  c.expected_output_tokens += r.expected_output;
  if (r.at_scrape == AtScrape::kNew) {
    ++c.new_awaiting;
    c.new_awaiting_tokens += r.prompt_tokens;
  }
  if (c.awaiting == 1) {
    c.prefill_since = ep.last_first_token == kNoTime ? now : std::max(now, ep.last_first_token);
    c.prefill_head_tokens = r.uncached;
  }
  ++live_;
  mean_prompt_ += options_.ewma_alpha * (static_cast<double>(r.prompt_tokens) - mean_prompt_);
  const Handle h = (static_cast<Handle>(r.generation) << 32) | (index + 1u);
  Dated(ep, now);
  return h;
}

TokenLedger::Handle TokenLedger::DispatchRemote(std::uint32_t slot, TimeNs now,
                                                std::int64_t prompt_tokens,
                                                std::int64_t expected_output_tokens,
                                                std::int64_t uncached_tokens) {
  // Dispatch moves the mean prompt; a remote entry must not, so it is put back.
  const double mean_prompt = mean_prompt_;
  const Handle h = Dispatch(slot, now, prompt_tokens, expected_output_tokens, -1, uncached_tokens);
  mean_prompt_ = mean_prompt;
  Record* r = Find(h);
  r->remote = true;
  r->alone = false;
  ++endpoints_[slot].counts.remote_inflight;
  return h;
}

bool TokenLedger::IsRemote(Handle h) const {
  const Record* r = Find(h);
  return r != nullptr && r->remote;
}

bool TokenLedger::FirstToken(Handle h, TimeNs now) {
  Record* r = Find(h);
  if (r == nullptr || r->state != State::kAwaiting) return false;
  now = std::max(now, r->dispatched);  // a dated event: never before its dispatch
  LedgerCounts& c = endpoints_[r->slot].counts;
  const std::int64_t p = r->prompt_tokens;
  r->state = State::kDecoding;
  r->first_token = now;
  ++endpoints_[r->slot].version;
  --c.awaiting;
  c.awaiting_tokens -= p;
  c.awaiting_uncached_tokens -= r->uncached;
  if (r->alone && now >= r->dispatched) {
    // One more point for the prefill fit; older points fade with weight (1 − α) each.
    const double a = options_.ewma_alpha;
    const double x = static_cast<double>(r->uncached);
    const double y = ToSeconds(now - r->dispatched);
    fit_w_ = (1 - a) * fit_w_ + 1;
    fit_x_ = (1 - a) * fit_x_ + x;
    fit_y_ = (1 - a) * fit_y_ + y;
    fit_xx_ = (1 - a) * fit_xx_ + x * x;
    fit_xy_ = (1 - a) * fit_xy_ + x * y;
    ++prefill_fit_.samples;
    const double mx = fit_x_ / fit_w_, my = fit_y_ / fit_w_;
    const double var = fit_xx_ / fit_w_ - mx * mx;
    const double cov = fit_xy_ / fit_w_ - mx * my;
    // Without spread in sizes the slope is unknown: attribute the time to the tokens.
    double slope = var > 1e-9 * (mx * mx + 1) ? cov / var : (mx > 0 ? my / mx : 0);
    if (!(slope > 0)) slope = mx > 0 ? my / mx : 0;
    prefill_fit_.per_token_s = slope;
    prefill_fit_.base_s = std::max(0.0, my - slope * mx);
  }
  ++c.decoding;
  c.decoding_tokens += p;
  if (r->at_scrape == AtScrape::kNew) {
    --c.new_awaiting;
    c.new_awaiting_tokens -= p;
    ++c.new_decoding;
    c.new_decoding_tokens += p;
  } else {
    ++c.left_waiting;
    ++c.joined_running;
    c.joined_running_tokens += p;
  }
  Endpoint& ep = endpoints_[r->slot];
  ep.last_first_token = ep.last_first_token == kNoTime ? now : std::max(ep.last_first_token, now);
  UpdatePrefillHead(ep);
  // Learned after the last scrape but dated before it (a peer's event): the scrape already
  // shows the request running.
  if (ep.scrape_time != kNoTime && now < ep.scrape_time) Recount(ep);
  return true;
}

void TokenLedger::UpdatePrefillHead(Endpoint& ep) {
  LedgerCounts& c = ep.counts;
  c.prefill_since = kNever;
  c.prefill_head_tokens = 0;
  if (c.awaiting == 0) return;
  // The list runs from the most recently dispatched: the oldest awaiting one is the last.
  const Record* oldest = nullptr;
  for (std::uint32_t i = ep.head; i != kNil; i = records_[i].next) {
    if (records_[i].state == State::kAwaiting) oldest = &records_[i];
  }
  if (oldest == nullptr) return;
  c.prefill_since = ep.last_first_token == kNoTime
                        ? oldest->dispatched
                        : std::max(oldest->dispatched, ep.last_first_token);
  c.prefill_head_tokens = oldest->uncached;
}

bool TokenLedger::Finish(Handle h, TimeNs now, const Usage* usage) {
  Record* r = Find(h);
  if (r == nullptr) return false;
  now = std::max(now, r->state == State::kDecoding ? r->first_token : r->dispatched);
  LedgerCounts& c = endpoints_[r->slot].counts;
  const std::int64_t p = r->prompt_tokens;
  if (r->state == State::kAwaiting) {
    --c.awaiting;
    c.awaiting_tokens -= p;
    c.awaiting_uncached_tokens -= r->uncached;
    if (r->at_scrape == AtScrape::kNew) {
      --c.new_awaiting;
      c.new_awaiting_tokens -= p;
    } else {
      ++c.left_waiting;
    }
  } else {
    --c.decoding;
    c.decoding_tokens -= p;
    switch (r->at_scrape) {
      case AtScrape::kNew:
        --c.new_decoding;
        c.new_decoding_tokens -= p;
        break;
      case AtScrape::kAwaiting:
        --c.joined_running;
        c.joined_running_tokens -= p;
        break;
      case AtScrape::kDecoding: {
        const std::int64_t out = usage ? usage->completion_tokens : r->expected_output;
        ++c.left_running;
        c.freed_tokens += p + std::max<std::int64_t>(out, 0);
        break;
      }
    }
  }
  --c.inflight;
  if (r->remote) --c.remote_inflight;
  c.expected_output_tokens -= r->expected_output;
  --endpoints_[r->slot].unfinished[r->virtual_engine];

  if (usage != nullptr && !r->remote) {
    if (r->raw_estimate > 0 && usage->prompt_tokens > 0) {
      double ratio =
          static_cast<double>(usage->prompt_tokens) / static_cast<double>(r->raw_estimate);
      ratio = std::clamp(ratio, kMinPromptRatio, kMaxPromptRatio);
      prompt_ratio_ += Weight(prompt_ratio_samples_) * (ratio - prompt_ratio_);
    }
    if (usage->completion_tokens > 0) {
      mean_output_ +=
          Weight(output_samples_) * (static_cast<double>(usage->completion_tokens) - mean_output_);
    }
    if (r->state == State::kDecoding && usage->completion_tokens > 1 && now > r->first_token) {
      const double tpot =
          ToSeconds(now - r->first_token) / static_cast<double>(usage->completion_tokens - 1);
      mean_tpot_s_ += Weight(tpot_samples_) * (tpot - mean_tpot_s_);
    }
  }
  ++endpoints_[r->slot].version;
  const bool was_awaiting = r->state == State::kAwaiting;
  Endpoint& ep = endpoints_[r->slot];
  if (virtual_engines_ > 1)
    ep.gone.push_back(Gone{r->dispatched, now, r->order, r->virtual_engine});
  Unlink(static_cast<std::uint32_t>(r - records_.data()));
  Release(static_cast<std::uint32_t>(r - records_.data()));
  if (was_awaiting) UpdatePrefillHead(ep);
  Dated(ep, now);
  // Learned after the last scrape but dated before it (a peer's event): the scrape already
  // left the request out, so its tokens are not freed a second time.
  if (ep.scrape_time != kNoTime && now < ep.scrape_time) Recount(ep);
  return true;
}

void TokenLedger::Dated(Endpoint& ep, TimeNs t) {
  if (virtual_engines_ == 1) return;
  const bool late = ep.latest != kNoTime && t < ep.latest;
  ep.latest = ep.latest == kNoTime ? t : std::max(ep.latest, t);
  // Forget finishes older than the window; the history is whole only after them.
  const TimeNs cutoff = ep.latest - options_.replay_window;
  std::size_t kept = 0;
  for (const Gone& g : ep.gone) {
    if (g.finished < cutoff) {
      ep.history_from =
          ep.history_from == kNoTime ? g.finished : std::max(ep.history_from, g.finished);
    } else {
      ep.gone[kept++] = g;
    }
  }
  ep.gone.resize(kept);
  if (late) ReplayVirtualEngines(ep, ep.history_from == kNoTime ? t : std::max(t, ep.history_from));
}

void TokenLedger::ReplayVirtualEngines(Endpoint& ep, TimeNs from) {
  // Every request the replay knows: in flight (finished = kNever) or remembered.
  struct Item {
    TimeNs dispatched, finished;
    std::uint64_t order;
    std::uint8_t* ve;
  };
  std::vector<Item> items;
  for (std::uint32_t i = ep.head; i != kNil; i = records_[i].next) {
    Record& r = records_[i];
    items.push_back(Item{r.dispatched, kNever, r.order, &r.virtual_engine});
  }
  for (Gone& g : ep.gone)
    items.push_back(Item{g.dispatched, g.finished, g.order, &g.virtual_engine});
  // The engine's state just before `from`: what was dispatched earlier and had not
  // finished keeps its tag.
  std::array<std::int32_t, kMaxVirtualEngines> n{};
  // Events from `from` on, in time order; at equal times a finish goes first (its blocks
  // and slot are free for the next arrival), a request's own dispatch before its finish.
  struct Event {
    TimeNs t;
    int kind;  // 0 finish, 1 dispatch, 2 finish at its own dispatch time
    std::uint64_t order;
    std::size_t item;
  };
  std::vector<Event> events;
  for (std::size_t k = 0; k < items.size(); ++k) {
    const Item& it = items[k];
    if (it.dispatched < from) {
      if (it.finished >= from) ++n[it.ve[0]];
    } else {
      events.push_back(Event{it.dispatched, 1, it.order, k});
    }
    if (it.finished != kNever && it.finished >= from) {
      events.push_back(Event{it.finished, it.finished == it.dispatched ? 2 : 0, it.order, k});
    }
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.t != b.t) return a.t < b.t;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.order < b.order;
  });
  for (const Event& e : events) {
    std::uint8_t& ve = *items[e.item].ve;
    if (e.kind == 1) {
      int best = 0;
      for (int v = 1; v < virtual_engines_; ++v) {
        if (n[static_cast<std::size_t>(v)] < n[static_cast<std::size_t>(best)]) best = v;
      }
      ve = static_cast<std::uint8_t>(best);
      ++n[ve];
    } else if (n[ve] > 0) {
      --n[ve];
    }
  }
  ep.unfinished.fill(0);
  for (std::uint32_t i = ep.head; i != kNil; i = records_[i].next) {
    ++ep.unfinished[records_[i].virtual_engine];
  }
  ++ep.version;
}

void TokenLedger::Unlink(std::uint32_t index) {
  Record& r = records_[index];
  Endpoint& ep = endpoints_[r.slot];
  if (r.prev != kNil) {
    records_[r.prev].next = r.next;
  } else {
    ep.head = r.next;
  }
  if (r.next != kNil) records_[r.next].prev = r.prev;
  r.prev = r.next = kNil;
}

void TokenLedger::Release(std::uint32_t index) {
  records_[index].state = State::kFree;
  free_.push_back(index);
  --live_;
}

void TokenLedger::Rebase(std::uint32_t slot, TimeNs scrape_time) {
  Endpoint& ep = EndpointOf(slot);
  if (ep.scrape_time != kNoTime && scrape_time < ep.scrape_time) return;
  ep.scrape_time = scrape_time;
  Recount(ep);
}

void TokenLedger::Recount(Endpoint& ep) {
  const TimeNs scrape_time = ep.scrape_time;
  LedgerCounts& c = ep.counts;
  c.new_awaiting = c.new_decoding = 0;
  c.new_awaiting_tokens = c.new_decoding_tokens = 0;
  c.left_waiting = c.joined_running = c.left_running = 0;
  c.joined_running_tokens = c.freed_tokens = 0;
  for (std::uint32_t i = ep.head; i != kNil; i = records_[i].next) {
    Record& r = records_[i];
    const std::int64_t p = r.prompt_tokens;
    if (r.dispatched >= scrape_time) {
      r.at_scrape = AtScrape::kNew;
      if (r.state == State::kAwaiting) {
        ++c.new_awaiting;
        c.new_awaiting_tokens += p;
      } else {
        ++c.new_decoding;
        c.new_decoding_tokens += p;
      }
    } else if (r.first_token == kNoTime || r.first_token >= scrape_time) {
      r.at_scrape = AtScrape::kAwaiting;
      if (r.state == State::kDecoding) {
        ++c.left_waiting;
        ++c.joined_running;
        c.joined_running_tokens += p;
      }
    } else {
      r.at_scrape = AtScrape::kDecoding;
    }
  }
}

void TokenLedger::RemoveEndpoint(std::uint32_t slot) {
  if (slot >= endpoints_.size()) return;
  Endpoint& ep = endpoints_[slot];
  for (std::uint32_t i = ep.head; i != kNil;) {
    std::uint32_t next = records_[i].next;
    Release(i);
    i = next;
  }
  const std::uint64_t version = ep.version;
  ep = Endpoint{};
  ep.version = version + 1;
}

}  // namespace infergate
