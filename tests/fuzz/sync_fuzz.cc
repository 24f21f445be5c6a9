// libFuzzer target for the replica-sync message decoder and applier (src/sync).
//
// Build with clang and -DINFERGATE_FUZZ=ON; run on a scratch copy of corpus/sync with
// sync.dict (docs/replicas.md has the command). The same entry point runs every seed in a
// normal unit test (sync_fuzz_corpus_test.cc).
//
// Invariants checked (a violation aborts): a message that decodes re-encodes to the same
// bytes; applying any input to a scheduler leaves its ledger bounded (remote entries at
// most the applier's bound, every count non-negative) and the scheduler still picks; the
// release order (sync::QueueOrder) over whatever queue heads the input left decides, and
// any peer head it reports is one that comes first.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "scheduler/scheduler.h"
#include "sync/applier.h"
#include "sync/queue_order.h"
#include "sync/wire.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

constexpr std::size_t kMaxEntries = 64;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace infergate;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Result<sync::Message> m = sync::DecodeMessage(bytes);
  if (m.ok()) {
    Require(m->events.size() <= sync::kMaxEvents);
    std::string again;
    sync::EncodeMessage(m->header, m->events, &again);
    Require(again == bytes);
  }

  static const ManualClock clock;
  SchedulerOptions o;
  o.profile = "infergate";
  std::unique_ptr<Scheduler> s = Scheduler::Create(o, &clock).value();
  for (const char* id : {"10.0.0.1:8000", "10.0.0.2:8000"}) {
    EndpointSpec spec;
    spec.id = id;
    Require(s->UpsertEndpoint(spec).ok());
    // A small KV capacity sizes the endpoint's prefix LRU small (as a scrape does): a
    // completion with an absurd token count ages the LRU block by block, and the default
    // size (31,250 blocks) made such an input cost milliseconds for the same paths.
    EndpointMetrics m;
    m.kv_capacity_tokens = 4096;
    Require(s->ReportMetrics(id, 0, m));
  }
  sync::ApplierOptions ao;
  ao.self_id = "self";
  ao.max_entries_per_peer = kMaxEntries;
  sync::EventApplier applier(ao);
  // Twice: the second application sees the state the first left (duplicates, closes).
  (void)applier.Apply(bytes, 0, *s);
  (void)applier.Apply(bytes, 1, *s);
  Require(applier.remote_entries() <= kMaxEntries);
  Require(s->ledger().inflight() <= kMaxEntries);
  for (std::uint32_t slot = 0; slot < 2; ++slot) {
    const LedgerCounts& c = s->ledger().Counts(slot);
    Require(c.inflight >= 0 && c.awaiting >= 0 && c.decoding >= 0 && c.remote_inflight >= 0);
    Require(c.awaiting_tokens >= 0 && c.decoding_tokens >= 0);
    Require(c.awaiting_tokens <= static_cast<std::int64_t>(kMaxEntries * sync::kMaxTokens));
  }
  // A local head of priority 0 that arrived at 1 s: a peer head the order reports comes
  // first (a higher priority, or the same and an earlier stamp, or the same stamp and a
  // lower id), and a wait never outlives its bound.
  sync::QueueOrder order({}, &applier);
  QueuedRequest head;
  head.id = 1;
  head.enqueued_at = kNanosPerSecond;
  const auto first = applier.FirstPeerHead(0, order.Stamp(head.enqueued_at), 1, kNanosPerSecond);
  if (first) {
    Require(first->priority > 0 || (first->priority == 0 && first->stamp_us <= 1'000'000));
    Require(order.ShouldWait(head, 1));
    Require(order.NextDeadline(1) == 1 + order.options().max_wait);
    Require(!order.ShouldWait(head, 1 + order.options().max_wait));
  } else {
    Require(!order.ShouldWait(head, 1));
  }
  RequestInfo r;
  r.target_model = "model";
  r.prompt = "hello";
  (void)s->Pick(r);
  return 0;
}
