// Replica sync: the wire format, the recorder and the applier, end to end between two
// schedulers (what one gateway replica publishes, another applies).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "scheduler/scheduler.h"
#include "sync/applier.h"
#include "sync/recorder.h"
#include "sync/wire.h"

namespace infergate::sync {
namespace {

constexpr const char* kEndpoints[] = {"10.0.0.1:8000", "10.0.0.2:8000"};

// One gateway replica: a scheduler on a manual clock, its recorder and its applier.
struct Replica {
  explicit Replica(std::string id, std::uint64_t incarnation = 1) {
    SchedulerOptions o;
    o.profile = "infergate";
    scheduler = Scheduler::Create(o, &clock).value();
    for (const char* e : kEndpoints) {
      EndpointSpec spec;
      spec.id = e;
      EXPECT_TRUE(scheduler->UpsertEndpoint(spec).ok());
    }
    RecorderOptions ro;
    ro.replica_id = id;
    ro.incarnation = incarnation;
    recorder = std::make_unique<EventRecorder>(ro, &clock);
    scheduler->SetEventSink(recorder.get());
    ApplierOptions ao;
    ao.self_id = id;
    ao.peer_timeout = 5 * kNanosPerSecond;
    applier = std::make_unique<EventApplier>(ao);
  }
  TokenLedger::Handle Send(const std::string& prompt, const char* endpoint,
                           std::string_view session = {}) {
    RequestInfo r;
    r.target_model = "model";
    r.prompt = prompt;
    r.max_tokens = 100;
    r.session_key = session;
    return scheduler->Dispatch(r, PickResult{}, endpoint);
  }
  std::vector<std::string> Take() {
    std::vector<std::string> out;
    recorder->TakeMessages(&out);
    return out;
  }
  const LedgerCounts& Counts(int endpoint) const {
    return scheduler->ledger().Counts(static_cast<std::uint32_t>(endpoint));
  }
  std::size_t PrefixEntries(int endpoint) {
    return scheduler->Endpoints()[static_cast<std::size_t>(endpoint)].prefix_entries;
  }

  ManualClock clock;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<EventRecorder> recorder;
  std::unique_ptr<EventApplier> applier;
};

void Deliver(Replica& from, Replica& to) {
  for (const std::string& m : from.Take()) {
    EXPECT_TRUE(to.applier->Apply(m, to.clock.Now(), *to.scheduler).ok());
  }
}

std::string Prompt(char c, std::size_t chars) { return std::string(chars, c); }

TEST(SyncWire, EveryEventTypeRoundTrips) {
  MessageHeader h{"gw-a", 77, 5};
  h.sent_us = 1'796'601'600'000'000ULL;
  std::vector<Event> events(6);
  events[0].type = EventType::kDispatch;
  events[0].request = 1ULL << 40;
  events[0].age_us = 1234;
  events[0].endpoint = "10.0.0.1:8000";
  events[0].prompt_tokens = 4000;
  events[0].output_tokens = 300;
  events[0].block_hashes = {1, 2, 0xffffffffffffffffULL};
  events[1].type = EventType::kFirstToken;
  events[1].request = 9;
  events[1].age_us = 3;
  events[2].type = EventType::kCompletion;
  events[2].request = 9;
  events[2].has_usage = true;
  events[2].prompt_tokens = 4100;
  events[2].output_tokens = 280;
  events[3].type = EventType::kFailure;
  events[3].request = 10;
  events[4].type = EventType::kSession;
  events[4].session_key = "conversation-1";
  events[4].endpoint = "10.0.0.2:8000";
  events[5].type = EventType::kHeartbeat;
  events[5].live = 12;
  events[5].interval_ms = 1000;
  std::string bytes;
  EncodeMessage(h, events, &bytes);
  std::size_t expected = EncodedHeaderSize(h) + 1;
  for (const Event& e : events) expected += EncodedEventSize(e);
  EXPECT_EQ(bytes.size(), expected);
  Result<Message> m = DecodeMessage(bytes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->header.origin, "gw-a");
  EXPECT_EQ(m->header.incarnation, 77u);
  EXPECT_EQ(m->header.sequence, 5u);
  EXPECT_EQ(m->header.sent_us, h.sent_us);
  EXPECT_EQ(m->header.version, kWireVersion);
  ASSERT_EQ(m->events.size(), 6u);
  EXPECT_EQ(m->events[0].request, 1ULL << 40);
  EXPECT_EQ(m->events[0].age_us, 1234u);
  EXPECT_EQ(m->events[0].endpoint, "10.0.0.1:8000");
  EXPECT_EQ(m->events[0].prompt_tokens, 4000u);
  EXPECT_EQ(m->events[0].output_tokens, 300u);
  EXPECT_EQ(m->events[0].block_hashes, events[0].block_hashes);
  EXPECT_EQ(m->events[1].type, EventType::kFirstToken);
  EXPECT_TRUE(m->events[2].has_usage);
  EXPECT_EQ(m->events[2].output_tokens, 280u);
  EXPECT_EQ(m->events[3].type, EventType::kFailure);
  EXPECT_EQ(m->events[4].session_key, "conversation-1");
  EXPECT_EQ(m->events[5].live, 12u);
}

TEST(SyncWire, AQueueHeadRoundTripsAndAnEmptyQueueIsOneByte) {
  std::vector<Event> events(2);
  events[0].type = EventType::kQueue;
  events[0].held = 3;
  events[0].request = 77;
  events[0].priority = -5;
  events[0].stamp_us = 1'700'000'000'000'000ULL;
  events[1].type = EventType::kQueue;  // held 0: nothing else
  std::string bytes;
  EncodeMessage(MessageHeader{"gw", 1, 1}, events, &bytes);
  Result<Message> m = DecodeMessage(bytes);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->events.size(), 2u);
  EXPECT_EQ(m->events[0].held, 3u);
  EXPECT_EQ(m->events[0].request, 77u);
  EXPECT_EQ(m->events[0].priority, -5);
  EXPECT_EQ(m->events[0].stamp_us, 1'700'000'000'000'000ULL);
  EXPECT_EQ(m->events[1].held, 0u);
  EXPECT_EQ(EncodedEventSize(events[1]), 2u);
}

// A replica not yet upgraded (wire version 1: no queue event) is still heard during a
// rolling update: its messages decode, say their version, re-encode to the same bytes and
// are applied (counted apart); a queue event inside a version 1 message is refused whole.
TEST(SyncWire, VersionOneMessagesFromOlderReplicasAreStillApplied) {
  Event d;
  d.type = EventType::kDispatch;
  d.request = 5;
  d.endpoint = kEndpoints[0];
  d.prompt_tokens = 300;
  d.output_tokens = 20;
  MessageHeader h{"old-peer", 9, 1};
  h.version = 1;
  std::string v1;
  EncodeMessage(h, {d}, &v1);
  ASSERT_EQ(v1[3], 1);
  Result<Message> m = DecodeMessage(v1);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->header.version, 1);
  std::string again;
  EncodeMessage(m->header, m->events, &again);
  EXPECT_EQ(again, v1);

  Replica self("self");
  ASSERT_TRUE(self.applier->Apply(v1, 0, *self.scheduler).ok());
  EXPECT_EQ(self.scheduler->ledger().Counts(0).remote_inflight, 1);
  EXPECT_EQ(self.applier->stats().old_version_messages, 1u);

  // A queue event cannot be written as version 1 (the encoder moves it to the current one),
  // and one spliced into a version 1 message is refused.
  Event q;
  q.type = EventType::kQueue;
  q.held = 1;
  q.request = 3;
  q.stamp_us = 10;
  h.sequence = 2;
  std::string with_queue;
  EncodeMessage(h, {q}, &with_queue);
  EXPECT_EQ(with_queue[3], kWireVersion);
  with_queue[3] = 1;
  EXPECT_FALSE(DecodeMessage(with_queue).ok());
  EXPECT_FALSE(self.applier->Apply(with_queue, 0, *self.scheduler).ok());
  EXPECT_EQ(self.applier->stats().invalid_messages, 1u);
}

// Version 2 (before the send time) from a replica not yet upgraded: decodes without a send
// time, re-encodes to the same bytes, is applied and counted as old, and its dispatch is
// not dated.
TEST(SyncWire, VersionTwoMessagesHaveNoSendTimeAndAreStillApplied) {
  Event d;
  d.type = EventType::kDispatch;
  d.request = 5;
  d.endpoint = kEndpoints[1];
  d.prompt_tokens = 300;
  MessageHeader h{"v2-peer", 3, 1};
  h.version = 2;
  h.sent_us = 123;  // not written in version 2
  std::string v2;
  EncodeMessage(h, {d}, &v2);
  ASSERT_EQ(v2[3], 2);
  EXPECT_EQ(v2.size(), EncodedHeaderSize(h) + 1 + EncodedEventSize(d));
  Result<Message> m = DecodeMessage(v2);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->header.sent_us, 0u);
  std::string again;
  EncodeMessage(m->header, m->events, &again);
  EXPECT_EQ(again, v2);
  Replica self("self");
  ASSERT_TRUE(self.applier->Apply(v2, kNanosPerSecond, *self.scheduler).ok());
  EXPECT_EQ(self.Counts(1).remote_inflight, 1);
  EXPECT_EQ(self.applier->stats().old_version_messages, 1u);
  EXPECT_EQ(self.applier->stats().dispatch_delay.count, 0u);
}

TEST(SyncWire, BadMessagesAreRefusedWhole) {
  std::string good;
  Event hb;
  hb.type = EventType::kHeartbeat;
  EncodeMessage(MessageHeader{"gw", 1, 1}, {hb}, &good);
  ASSERT_TRUE(DecodeMessage(good).ok());
  EXPECT_FALSE(DecodeMessage("").ok());
  EXPECT_FALSE(DecodeMessage("hello, world").ok());
  std::string other_version = good;
  other_version[3] = static_cast<char>(kWireVersion + 1);
  EXPECT_NE(DecodeMessage(other_version).error().message.find("version"), std::string::npos);
  std::string too_old = good;
  too_old[3] = 0;
  EXPECT_NE(DecodeMessage(too_old).error().message.find("version"), std::string::npos);
  EXPECT_FALSE(DecodeMessage(good + "x").ok());  // trailing bytes
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeMessage(good.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(DecodeMessage(std::string(kMaxMessageBytes + 1, 'I')).ok());
  // An event count far beyond what the bytes hold.
  // (The heartbeat above is four bytes with its count: header, then 4,095 events claimed.)
  std::string absurd = good.substr(0, good.size() - 4) + "\xff\x1f" + good.substr(good.size() - 3);
  EXPECT_NE(DecodeMessage(absurd).error().message.find("count"), std::string::npos);
  // A dispatch claiming more tokens than any prompt has.
  Event d;
  d.type = EventType::kDispatch;
  d.endpoint = "e";
  d.prompt_tokens = kMaxTokens;
  std::string bytes;
  EncodeMessage(MessageHeader{"gw", 1, 1}, {d}, &bytes);
  ASSERT_TRUE(DecodeMessage(bytes).ok());
  const std::size_t at = bytes.size() - 3;  // prompt_tokens' varint: 0x80 0x80 0x80 0x08
  ASSERT_EQ(static_cast<unsigned char>(bytes[at - 1]), 0x80u);
  bytes[at] = static_cast<char>(0x10);  // 2^25: beyond kMaxTokens
  EXPECT_FALSE(DecodeMessage(bytes).ok());
}

TEST(SyncRecorder, AHugePromptMakesASmallMessage) {
  Replica a("a");
  // A 400 KB prompt: 6,250 blocks of 64 characters; the index hashes the first 1,024.
  a.Send(Prompt('x', 400'000), kEndpoints[0]);
  std::vector<std::string> messages = a.Take();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_LT(messages[0].size(), 8'300u);  // 1,024 hashes of 8 bytes, plus a few dozen
  // Many dispatches at once: every message stays within the bound.
  for (int i = 0; i < 200; ++i)
    a.Send(Prompt(static_cast<char>('a' + i % 26), 20'000), kEndpoints[1]);
  messages = a.Take();
  EXPECT_GT(messages.size(), 1u);
  std::size_t events = 0;
  for (const std::string& m : messages) {
    EXPECT_LE(m.size(), kMaxMessageBytes);
    Result<Message> decoded = DecodeMessage(m);
    ASSERT_TRUE(decoded.ok());
    events += decoded->events.size();
  }
  EXPECT_EQ(events, 200u);
  EXPECT_EQ(a.recorder->stats().dispatches, 201u);
}

// A peer's long prompt enters the prefix index as whole as the sender's own: a chain cut
// short fills the view of the server's cache more slowly than the server fills it.
TEST(SyncApplier, APeersLongPromptIsIndexedAsWholeAsTheSendersOwn) {
  Replica a("a"), b("b");
  a.Send(Prompt('l', 64 * 700), kEndpoints[1]);
  Deliver(a, b);
  EXPECT_EQ(a.PrefixEntries(1), 700u);
  EXPECT_EQ(b.PrefixEntries(1), a.PrefixEntries(1));
}

TEST(SyncRecorder, AFullQueueDropsAndCountsInsteadOfGrowing) {
  ManualClock clock;
  RecorderOptions ro;
  ro.max_pending_events = 3;
  EventRecorder r(ro, &clock);
  for (int i = 0; i < 10; ++i) r.OnLocalFirstToken(static_cast<TokenLedger::Handle>(i + 1));
  EXPECT_EQ(r.stats().dropped_events, 7u);
  std::vector<std::string> out;
  r.TakeMessages(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(DecodeMessage(out[0])->events.size(), 4u);  // three, and the first heartbeat
}

// The transport is told once when the recorder goes from nothing to send to something
// (an event, or a queue head that is news), not at every event.
TEST(SyncRecorder, NewsAfterATakeCallsTheHookOnce) {
  ManualClock clock;
  int calls = 0;
  RecorderOptions ro;
  ro.on_news = [&] { ++calls; };
  EventRecorder r(ro, &clock);
  r.OnLocalFirstToken(1);
  r.OnLocalFirstToken(2);
  r.OnLocalFinish(1, std::nullopt, false);
  EXPECT_EQ(calls, 1);
  std::vector<std::string> out;
  r.TakeMessages(&out);
  r.SetQueueHead(QueueHeadState{1, 7, 0, 100});
  EXPECT_EQ(calls, 2) << "a new queue head is news";
  r.OnLocalFirstToken(3);
  EXPECT_EQ(calls, 2) << "already something to send";
  r.TakeMessages(&out);
  r.SetQueueHead(QueueHeadState{1, 7, 0, 100});
  EXPECT_EQ(calls, 2) << "the same head is not news";
  r.OnLocalFinish(2, std::nullopt, true);
  EXPECT_EQ(calls, 3);
}

TEST(SyncRecorder, NextFlushGoesAtOnceAfterAQuietIntervalElseBatches) {
  const TimeNs i = 2 * kNanosPerMilli;
  EXPECT_EQ(NextFlush(5, kNever, i), 5) << "no flush yet";
  EXPECT_EQ(NextFlush(10 * kNanosPerMilli, 8 * kNanosPerMilli, i), 10 * kNanosPerMilli);
  EXPECT_EQ(NextFlush(9 * kNanosPerMilli, 8 * kNanosPerMilli, i), 10 * kNanosPerMilli);
  EXPECT_EQ(NextFlush(9 * kNanosPerMilli, 10 * kNanosPerMilli, i), 10 * kNanosPerMilli)
      << "joins the flush already due";
  EXPECT_EQ(NextFlush(9, 8, 0), 9) << "no interval: always at once";
}

TEST(SyncApplier, APeersDispatchCountsAsRemoteLoadUntilItCompletes) {
  Replica a("a"), b("b");
  const std::string prompt = Prompt('p', 64 * 40);
  const double ratio_before = b.scheduler->ledger().prompt_token_ratio();
  const TokenLedger::Handle h = a.Send(prompt, kEndpoints[1], "session-1");
  Deliver(a, b);
  EXPECT_EQ(b.Counts(1).inflight, 1);
  EXPECT_EQ(b.Counts(1).remote_inflight, 1);
  EXPECT_EQ(b.Counts(1).awaiting_tokens, a.Counts(1).awaiting_tokens);
  EXPECT_EQ(b.Counts(0).inflight, 0);
  EXPECT_EQ(b.PrefixEntries(1), 40u);  // the prompt's blocks are known to be on endpoint 1
  EXPECT_EQ(b.applier->remote_entries(), 1u);
  // B's own requests are accounted as before, beside the remote one.
  const TokenLedger::Handle local = b.Send(Prompt('q', 640), kEndpoints[1]);
  EXPECT_EQ(b.Counts(1).inflight, 2);
  EXPECT_EQ(b.Counts(1).remote_inflight, 1);

  a.clock.Advance(100 * kNanosPerMilli);
  b.clock.Advance(100 * kNanosPerMilli);
  ASSERT_TRUE(a.scheduler->OnFirstToken(h));
  Deliver(a, b);
  EXPECT_EQ(b.Counts(1).decoding, 1);
  a.clock.Advance(kNanosPerSecond);
  b.clock.Advance(kNanosPerSecond);
  // A usage report four times the estimate: A calibrates, B must not.
  ASSERT_TRUE(a.scheduler->OnComplete(h, Usage{4 * 640, 90}));
  Deliver(a, b);
  EXPECT_EQ(b.Counts(1).inflight, 1);
  EXPECT_EQ(b.Counts(1).remote_inflight, 0);
  EXPECT_EQ(b.applier->remote_entries(), 0u);
  EXPECT_EQ(b.scheduler->ledger().prompt_token_ratio(), ratio_before);
  EXPECT_NE(a.scheduler->ledger().prompt_token_ratio(), ratio_before);
  // B's messages say nothing of the remote request: A sees B's one local request only.
  Deliver(b, a);
  EXPECT_EQ(a.Counts(1).inflight, 1);
  EXPECT_EQ(a.Counts(1).remote_inflight, 1);
  ASSERT_TRUE(b.scheduler->OnComplete(local, Usage{160, 10}));
  Deliver(b, a);
  EXPECT_EQ(a.Counts(1).inflight, 0);
  EXPECT_EQ(b.applier->stats().invalid_messages, 0u);
}

// A peer's dispatch delay runs from the dispatch at the origin to its application here: the
// origin's batching (the event's age when encoded) plus the transit (the message's send
// time against this replica's wall clock). Only dispatches are in the histogram.
TEST(SyncApplier, APeersDispatchDelayIsItsBatchingPlusItsTransit) {
  Replica a("a"), b("b");
  a.clock.Advance(10 * kNanosPerMilli);
  b.clock.Advance(10 * kNanosPerMilli);
  const TokenLedger::Handle h = a.Send(Prompt('p', 640), kEndpoints[0]);
  a.clock.Advance(3 * kNanosPerMilli);  // batched for 3 ms, sent at 13 ms
  std::vector<std::string> messages = a.Take();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(DecodeMessage(messages[0])->header.sent_us, 13'000u);
  b.clock.Advance(5 * kNanosPerMilli);  // applied at 15 ms: 2 ms on the way
  ASSERT_TRUE(b.applier->Apply(messages[0], b.clock.Now(), *b.scheduler).ok());
  const DelayHistogram& d = b.applier->stats().dispatch_delay;
  EXPECT_EQ(d.count, 1u);
  EXPECT_NEAR(d.sum_seconds, 0.005, 1e-9);
  EXPECT_EQ(d.buckets[6], 1u) << "5 ms is in (3.2 ms, 6.4 ms]";

  // A receiver whose wall clock runs behind the sender's: the transit counts as 0.
  Replica c("c");
  ASSERT_TRUE(c.applier->Apply(messages[0], 0, *c.scheduler).ok());
  EXPECT_EQ(c.applier->stats().dispatch_delay.count, 1u);
  EXPECT_NEAR(c.applier->stats().dispatch_delay.sum_seconds, 0.003, 1e-9);

  // A receiver whose wall clock is ten hours ahead (or a forged send time): the transit
  // reads as the longest an event's age may be, not as ten hours.
  ApplierOptions ahead;
  ahead.self_id = "d";
  ahead.wall_offset = 10LL * 3600 * kNanosPerSecond;
  EventApplier d_applier(ahead);
  Replica far("d");
  ASSERT_TRUE(d_applier.Apply(messages[0], 0, *far.scheduler).ok());
  EXPECT_NEAR(d_applier.stats().dispatch_delay.sum_seconds,
              static_cast<double>(kMaxAgeUs) * 1e-6 + 0.003, 1e-6);
  EXPECT_EQ(d_applier.stats().dispatch_delay.buckets[DelayHistogram::kBounds], 1u);

  // A completion and heartbeats: no more observations.
  a.clock.Advance(kNanosPerSecond);
  ASSERT_TRUE(a.scheduler->OnComplete(h, Usage{160, 10}));
  Deliver(a, b);
  EXPECT_EQ(b.applier->stats().dispatch_delay.count, 1u);
}

// Every event is dated when it happened at its origin, so the ledger can place a peer's
// request against its own scrapes (TokenLedger::FirstToken): now less the transit and the
// event's age. A transit read longer than max_transit (a wall clock behind, a message
// held in a reconnect buffer) counts as max_transit.
TEST(SyncApplier, APeersEventsAreDatedWhenTheyHappened) {
  Replica a("a"), b("b");
  a.clock.Advance(10 * kNanosPerMilli);
  b.clock.Advance(10 * kNanosPerMilli);
  const TokenLedger::Handle h = a.Send(Prompt('p', 640), kEndpoints[0]);
  a.clock.Advance(3 * kNanosPerMilli);  // sent at 13 ms
  std::vector<std::string> messages = a.Take();
  ASSERT_EQ(messages.size(), 1u);
  b.clock.Advance(5 * kNanosPerMilli);  // applied at 15 ms
  ASSERT_TRUE(b.applier->Apply(messages[0], b.clock.Now(), *b.scheduler).ok());
  auto only = [](const Replica& r) {
    std::vector<TokenLedger::InflightRequest> v;
    r.scheduler->ledger().ForEachInflight(0, [&](const auto& x) { v.push_back(x); });
    return v;
  };
  ASSERT_EQ(only(b).size(), 1u);
  EXPECT_EQ(only(b)[0].dispatched, 10 * kNanosPerMilli);

  a.clock.Advance(7 * kNanosPerMilli);  // first token at 20 ms, sent at once
  ASSERT_TRUE(a.scheduler->OnFirstToken(h));
  b.clock.Advance(9 * kNanosPerMilli);  // applied at 24 ms
  Deliver(a, b);
  ASSERT_EQ(only(b).size(), 1u);
  EXPECT_EQ(only(b)[0].first_token, 20 * kNanosPerMilli);

  // A receiver an hour ahead: the dispatch is dated max_transit (1 s) before the
  // application, less its age at encoding (3 ms), not an hour.
  ApplierOptions ahead;
  ahead.self_id = "d";
  ahead.wall_offset = 3600LL * kNanosPerSecond;
  EventApplier d_applier(ahead);
  Replica far("d");
  far.clock.Advance(5 * kNanosPerSecond);
  ASSERT_TRUE(d_applier.Apply(messages[0], far.clock.Now(), *far.scheduler).ok());
  ASSERT_EQ(only(far).size(), 1u);
  EXPECT_EQ(only(far)[0].dispatched, 4 * kNanosPerSecond - 3 * kNanosPerMilli);
}

TEST(SyncApplier, OwnGarbageAndUnknownEndpointsNeverTouchTheLedger) {
  Replica a("a"), b("b");
  a.Send(Prompt('p', 640), kEndpoints[0]);
  const std::vector<std::string> messages = a.Take();
  // A's own messages come back to it on the subject: ignored.
  EXPECT_FALSE(a.applier->Apply(messages[0], 0, *a.scheduler).ok());
  EXPECT_EQ(a.applier->stats().own_messages, 1u);
  EXPECT_EQ(a.Counts(0).inflight, 1);
  // Garbage, a truncated copy, another version: dropped and counted.
  EXPECT_FALSE(b.applier->Apply("\x00\x01garbage", 0, *b.scheduler).ok());
  EXPECT_FALSE(
      b.applier->Apply(messages[0].substr(0, messages[0].size() / 2), 0, *b.scheduler).ok());
  std::string v2 = messages[0];
  v2[3] = 9;
  EXPECT_FALSE(b.applier->Apply(v2, 0, *b.scheduler).ok());
  EXPECT_EQ(b.applier->stats().invalid_messages, 3u);
  EXPECT_EQ(b.Counts(0).inflight, 0);
  // A dispatch to an endpoint B does not have is skipped.
  Event d;
  d.type = EventType::kDispatch;
  d.request = 5;
  d.endpoint = "10.9.9.9:8000";
  d.prompt_tokens = 100;
  std::string bytes;
  EncodeMessage(MessageHeader{"c", 1, 1}, {d}, &bytes);
  EXPECT_TRUE(b.applier->Apply(bytes, 0, *b.scheduler).ok());
  EXPECT_EQ(b.applier->stats().skipped_events, 1u);
  EXPECT_EQ(b.scheduler->ledger().inflight(), 0u);
}

TEST(SyncApplier, ASilentPeersEntriesExpire) {
  Replica a("a"), b("b");
  for (int i = 0; i < 5; ++i) a.Send(Prompt('p', 640), kEndpoints[i % 2]);
  Deliver(a, b);
  EXPECT_EQ(b.scheduler->ledger().inflight(), 5u);
  b.clock.Advance(4 * kNanosPerSecond);
  b.applier->Expire(b.clock.Now(), *b.scheduler);
  EXPECT_EQ(b.scheduler->ledger().inflight(), 5u);
  EXPECT_EQ(b.applier->MaxPeerAge(b.clock.Now()), 4 * kNanosPerSecond);
  b.clock.Advance(kNanosPerSecond);
  b.applier->Expire(b.clock.Now(), *b.scheduler);
  EXPECT_EQ(b.scheduler->ledger().inflight(), 0u);
  EXPECT_EQ(b.applier->stats().expired_peers, 1u);
  EXPECT_EQ(b.applier->stats().expired_entries, 5u);
  EXPECT_EQ(b.applier->peer_count(), 0u);
}

TEST(SyncApplier, ARestartedPeerReplacesItsOldState) {
  Replica a("a", 1), b("b");
  a.Send(Prompt('p', 640), kEndpoints[0]);
  a.Send(Prompt('p', 640), kEndpoints[0]);
  Deliver(a, b);
  EXPECT_EQ(b.Counts(0).remote_inflight, 2);
  Replica a2("a", 2);  // the same id, a new process
  a2.Send(Prompt('p', 640), kEndpoints[1]);
  Deliver(a2, b);
  EXPECT_EQ(b.Counts(0).remote_inflight, 0);
  EXPECT_EQ(b.Counts(1).remote_inflight, 1);
}

TEST(SyncApplier, AHeartbeatRepairsALostCompletion) {
  Replica a("a"), b("b");
  const TokenLedger::Handle h1 = a.Send(Prompt('p', 640), kEndpoints[0]);
  a.Send(Prompt('q', 640), kEndpoints[0]);
  Deliver(a, b);
  EXPECT_EQ(b.Counts(0).remote_inflight, 2);
  a.scheduler->OnComplete(h1, Usage{160, 5});
  a.Take();                              // lost on the way
  a.clock.Advance(2 * kNanosPerSecond);  // the next message carries a heartbeat: one live
  Deliver(a, b);
  EXPECT_EQ(b.Counts(0).remote_inflight, 1);
  EXPECT_EQ(b.applier->stats().lost_messages, 1u);
}

TEST(SyncApplier, APeerHoldsAtMostItsBound) {
  Replica a("a"), b("b");
  ApplierOptions ao;
  ao.self_id = "b";
  ao.max_entries_per_peer = 10;
  b.applier = std::make_unique<EventApplier>(ao);
  for (int i = 0; i < 30; ++i) a.Send(Prompt('p', 100), kEndpoints[0]);
  Deliver(a, b);
  EXPECT_EQ(b.Counts(0).remote_inflight, 10);
  EXPECT_EQ(b.applier->stats().skipped_events, 20u);
}

}  // namespace
}  // namespace infergate::sync
