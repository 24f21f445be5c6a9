// AdmissionController on its own: pick now, hold, reject, and why, against a real
// Scheduler on a manual clock.
#include "flowcontrol/admission.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace infergate {
namespace {

constexpr TimeNs kMs = kNanosPerMilli;

// Two endpoints under a GIE profile (holds while saturated: 5 waiting per endpoint with
// the ledger) or the infergate profile.
struct Pool {
  explicit Pool(const char* profile = "gie-ledger", AdmissionOptions options = {},
                bool first_scrape = true) {
    SchedulerOptions so;
    so.profile = profile;
    auto s = Scheduler::Create(so, &clock);
    EXPECT_TRUE(s.ok());
    scheduler = std::move(*s);
    for (const char* id : {"a:1", "b:1"}) {
      EXPECT_TRUE(scheduler->UpsertEndpoint(EndpointSpec{id, {}, true}).ok());
    }
    if (first_scrape) Scrape();
    admission = std::make_unique<AdmissionController>(options, scheduler.get());
  }
  // Each endpoint's scraped queue; 6 (over GIE's threshold of 5) saturates the pool.
  void Scrape(double waiting = 0) {
    for (const char* id : {"a:1", "b:1"}) {
      EndpointMetrics m;
      m.waiting_requests = waiting;
      m.present = kFieldWaiting | kFieldRunning | kFieldKvUsage;
      scheduler->ReportMetrics(id, clock.Now(), m);
    }
  }
  // Every endpoint refuses its scrape connection: none can be reached.
  void Down() {
    for (const char* id : {"a:1", "b:1"}) {
      scheduler->ReportScrapeFailure(id, clock.Now(), "connection refused",
                                     ScrapeFailure::kUnreachable);
    }
  }
  // Every endpoint accepts its scrape connection but answers its page late.
  void Late() {
    for (const char* id : {"a:1", "b:1"}) {
      scheduler->ReportScrapeFailure(id, clock.Now(), "timed out waiting for the page",
                                     ScrapeFailure::kTimeout);
    }
  }
  // A request with a prompt of its own (no prefix affinity).
  RequestInfo& Request(QueueItemId id, int priority = 0, std::string flow = "") {
    prompts[id] = std::string(400, static_cast<char>('a' + id % 26)) + std::to_string(id);
    flows[id] = std::move(flow);
    RequestInfo& r = infos[id];
    r.target_model = "m";
    r.prompt = prompts[id];
    r.priority = priority;
    r.criticality = priority < 0 ? Criticality::kSheddable : Criticality::kStandard;
    r.fairness_id = flows[id];
    return r;
  }
  AdmissionDecision Admit(QueueItemId id, TimeNs ttl = 0, bool queueing = true) {
    return admission->Admit(id, infos.at(id), clock.Now(), ttl, queueing, Record());
  }
  std::size_t Pump(bool force = false) { return admission->Pump(clock.Now(), force, Record()); }
  AdmissionController::DecidedFn Record() {
    return [this](QueueItemId id, const AdmissionDecision& d) { decided.emplace_back(id, d); };
  }

  ManualClock clock{1000 * kMs};
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<AdmissionController> admission;
  std::map<QueueItemId, std::string> prompts, flows;
  std::map<QueueItemId, RequestInfo> infos;
  std::vector<std::pair<QueueItemId, AdmissionDecision>> decided;
};

TEST(Admission, PicksAtOnceWhileThePoolHasRoomThenHoldsInQueueOrder) {
  Pool p;
  std::vector<TokenLedger::Handle> handles;
  for (QueueItemId id = 1; id <= 12; ++id) {
    p.Request(id);
    const AdmissionDecision d = p.Admit(id);
    if (d.picked()) handles.push_back(d.handle);
    if (id <= 10) {
      // GIE's rule with the ledger: 5 waiting per endpoint saturate the pool.
      EXPECT_EQ(d.verdict, AdmissionVerdict::kPick) << id;
      EXPECT_EQ(d.reason, AdmissionReason::kPicked);
      EXPECT_NE(d.handle, TokenLedger::kInvalidHandle);
      EXPECT_EQ(d.http_status(), 200);
      EXPECT_EQ(d.ReasonName(), "scheduled");
    } else {
      EXPECT_EQ(d.verdict, AdmissionVerdict::kHold) << id;
      EXPECT_EQ(d.http_status(), 0);
    }
  }
  // Its own pick is reported through `decided` too (it entered the queue).
  EXPECT_EQ(p.decided.size(), 10u);
  EXPECT_EQ(p.admission->queued(), 2u);
  EXPECT_EQ(p.admission->max_queued(), 2u);
  p.decided.clear();
  EXPECT_EQ(p.Pump(), 0u);  // nothing changed
  // One request starts decoding: exactly one held request goes, the older one.
  ASSERT_EQ(handles.size(), 10u);
  EXPECT_TRUE(p.scheduler->OnFirstToken(handles[0]));
  EXPECT_EQ(p.Pump(), 1u);
  ASSERT_EQ(p.decided.size(), 1u);
  EXPECT_EQ(p.decided[0].first, 11u);
  EXPECT_TRUE(p.decided[0].second.picked());
}

TEST(Admission, HigherBandsLeaveFirst) {
  Pool p;
  for (QueueItemId id = 1; id <= 10; ++id) p.Admit((p.Request(id), id));
  p.decided.clear();
  p.Request(11, 0);
  p.Request(12, 5);
  EXPECT_EQ(p.Admit(11).verdict, AdmissionVerdict::kHold);
  EXPECT_EQ(p.Admit(12).verdict, AdmissionVerdict::kHold);
  EXPECT_TRUE(p.decided.empty());
  EXPECT_EQ(p.Pump(true), 2u);  // forced: nothing is held
  ASSERT_EQ(p.decided.size(), 2u);
  EXPECT_EQ(p.decided[0].first, 12u);
  EXPECT_EQ(p.decided[1].first, 11u);
}

TEST(Admission, SheddableRequestsAreNeverHeldButShedWhenSaturated) {
  Pool p;
  for (QueueItemId id = 1; id <= 10; ++id) p.Admit((p.Request(id), id));
  p.Request(11, -1);
  const AdmissionDecision d = p.Admit(11);
  EXPECT_EQ(d.verdict, AdmissionVerdict::kReject);
  EXPECT_EQ(d.reason, AdmissionReason::kPickRefused);
  EXPECT_EQ(d.http_status(), 429);
  EXPECT_EQ(d.ReasonName(), "saturated");
  EXPECT_EQ(p.admission->queued(), 0u);
}

TEST(Admission, NothingIsHeldWhileNoEndpointCanBeReached) {
  Pool p;
  for (QueueItemId id = 1; id <= 10; ++id) p.Admit((p.Request(id), id));
  p.Request(11);
  EXPECT_EQ(p.Admit(11).verdict, AdmissionVerdict::kHold);
  // Scrapes that merely stop leave the endpoints reachable with late metrics: slow is not
  // dead, the hold goes on.
  p.clock.Advance(kDefaultMetricsStaleness + kMs);
  EXPECT_TRUE(p.scheduler->CanHold());
  EXPECT_EQ(p.Pump(), 0u);
  // Every endpoint refuses its connection: no hold can end, so the failure mode (FailClose
  // here) answers the held request and the next one at once.
  p.Down();
  EXPECT_FALSE(p.scheduler->CanHold());
  p.decided.clear();
  EXPECT_EQ(p.Pump(), 1u);
  ASSERT_EQ(p.decided.size(), 1u);
  EXPECT_EQ(p.decided[0].second.http_status(), 503);
  EXPECT_EQ(p.decided[0].second.ReasonName(), "no-fresh-metrics");
  p.Request(12);
  const AdmissionDecision d = p.Admit(12);
  EXPECT_EQ(d.verdict, AdmissionVerdict::kReject);
  EXPECT_EQ(d.ReasonName(), "no-fresh-metrics");
  // The endpoints answer again (a saturated pool): holding resumes.
  p.Scrape(6);
  EXPECT_TRUE(p.scheduler->CanHold());
  p.Request(13);
  EXPECT_EQ(p.Admit(13).verdict, AdmissionVerdict::kHold);
}

// A gateway that starts in front of servers busy from the start: their first pages are
// late. Requests are held (not refused) while the servers may still answer, and picked
// when the first metrics arrive; servers that never give metrics are left to the failure
// mode once the grace (twice the staleness bound) is over.
TEST(Admission, ServersWhoseFirstPagesAreLateAreAwaitedWithinAGrace) {
  Pool p("gie-ledger", {}, /*first_scrape=*/false);
  p.Late();
  EXPECT_TRUE(p.scheduler->CanHold());
  p.Request(1);
  EXPECT_EQ(p.Admit(1).verdict, AdmissionVerdict::kHold);
  p.clock.Advance(500 * kMs);
  p.Scrape();  // the first metrics: the held request is picked
  p.decided.clear();
  EXPECT_EQ(p.Pump(), 1u);
  ASSERT_EQ(p.decided.size(), 1u);
  EXPECT_EQ(p.decided[0].second.verdict, AdmissionVerdict::kPick);

  Pool never("gie-ledger", {}, /*first_scrape=*/false);
  never.Late();
  never.Request(1);
  EXPECT_EQ(never.Admit(1).verdict, AdmissionVerdict::kHold);
  never.clock.Advance(2 * kDefaultMetricsStaleness + kMs);
  never.Late();  // still no metrics, past the grace: FailClose answers 503
  EXPECT_FALSE(never.scheduler->CanHold());
  never.decided.clear();
  EXPECT_EQ(never.Pump(), 1u);
  ASSERT_EQ(never.decided.size(), 1u);
  EXPECT_EQ(never.decided[0].second.http_status(), 503);
}

TEST(Admission, ExpiredAndFullQueuesAreRejectedWithTheirReasons) {
  Pool p("gie-ledger",
         AdmissionOptions{.late_binding = true,
                          .queue = FlowControlOptions{.max_queued = 2, .default_ttl = 50 * kMs}});
  for (QueueItemId id = 1; id <= 10; ++id) p.Admit((p.Request(id), id));
  p.Request(11);
  p.Request(12);
  p.Request(13);
  EXPECT_EQ(p.Admit(11).verdict, AdmissionVerdict::kHold);
  EXPECT_EQ(p.Admit(12, 500 * kMs).verdict, AdmissionVerdict::kHold);
  const AdmissionDecision full = p.Admit(13);
  EXPECT_EQ(full.reason, AdmissionReason::kQueueFull);
  EXPECT_EQ(full.http_status(), 429);
  EXPECT_EQ(full.ReasonName(), "queue-full");
  p.decided.clear();
  p.clock.Advance(60 * kMs);
  p.Scrape(6);
  EXPECT_EQ(p.Pump(), 1u);
  ASSERT_EQ(p.decided.size(), 1u);
  EXPECT_EQ(p.decided[0].first, 11u);  // the default TTL; 12 has its own, longer one
  EXPECT_EQ(p.decided[0].second.reason, AdmissionReason::kExpired);
  EXPECT_EQ(p.decided[0].second.http_status(), 503);
  EXPECT_EQ(p.decided[0].second.ReasonName(), "queue-ttl");
  EXPECT_TRUE(p.admission->Cancel(12));
  EXPECT_FALSE(p.admission->Cancel(12));
  EXPECT_EQ(p.admission->queued(), 0u);
}

TEST(Admission, WithoutLateBindingOrQueueingEveryRequestIsPickedAtOnce) {
  Pool off("gie-ledger", AdmissionOptions{.late_binding = false, .queue = {}});
  for (QueueItemId id = 1; id <= 12; ++id) {
    off.Request(id);
    EXPECT_EQ(off.Admit(id).verdict, AdmissionVerdict::kPick) << id;
  }
  EXPECT_TRUE(off.decided.empty());
  Pool on;
  for (QueueItemId id = 1; id <= 10; ++id) on.Admit((on.Request(id), id));
  on.Request(11);
  EXPECT_EQ(on.Admit(11, 0, false).verdict, AdmissionVerdict::kPick);
}

TEST(Admission, AnArrivalServesTheQueueInOrder) {
  // When room appears, the pass a new arrival starts gives it to the oldest held request;
  // the arrival waits behind it.
  Pool p;
  std::vector<TokenLedger::Handle> handles;
  for (QueueItemId id = 1; id <= 11; ++id) {
    const AdmissionDecision d = p.Admit((p.Request(id), id));
    if (d.picked()) handles.push_back(d.handle);
  }
  ASSERT_EQ(p.admission->queued(), 1u);
  EXPECT_TRUE(p.scheduler->OnFirstToken(handles.at(0)));
  p.decided.clear();
  p.Request(12);
  EXPECT_EQ(p.Admit(12).verdict, AdmissionVerdict::kHold);
  ASSERT_EQ(p.decided.size(), 1u);
  EXPECT_EQ(p.decided[0].first, 11u);
  EXPECT_TRUE(p.decided[0].second.picked());
  EXPECT_EQ(p.admission->queued(), 1u);
}

}  // namespace
}  // namespace infergate
