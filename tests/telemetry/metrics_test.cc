#include "telemetry/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace infergate::telemetry {
namespace {

TEST(Metrics, ExposesCountersGaugesAndHistogramsInTextFormat) {
  Registry r;
  auto& requests = r.AddCounter("ig_requests_total", "Requests handled.", {"route", "code"});
  requests.With({"default/a", "200"}).Inc();
  requests.With({"default/a", "200"}).Inc(2);
  requests.With({"default/b", "503"}).Inc();
  r.AddGauge("ig_active", "Active.").With({}).Set(3);
  auto& h = r.AddHistogram("ig_duration_seconds", "Duration.", {"route"}, {0.1, 1.0});
  h.With({"x"}).Observe(0.05);
  h.With({"x"}).Observe(0.5);
  h.With({"x"}).Observe(5);
  EXPECT_EQ(r.Expose(),
            "# HELP ig_requests_total Requests handled.\n"
            "# TYPE ig_requests_total counter\n"
            "ig_requests_total{route=\"default/a\",code=\"200\"} 3\n"
            "ig_requests_total{route=\"default/b\",code=\"503\"} 1\n"
            "# HELP ig_active Active.\n"
            "# TYPE ig_active gauge\n"
            "ig_active 3\n"
            "# HELP ig_duration_seconds Duration.\n"
            "# TYPE ig_duration_seconds histogram\n"
            "ig_duration_seconds_bucket{route=\"x\",le=\"0.1\"} 1\n"
            "ig_duration_seconds_bucket{route=\"x\",le=\"1\"} 2\n"
            "ig_duration_seconds_bucket{route=\"x\",le=\"+Inf\"} 3\n"
            "ig_duration_seconds_sum{route=\"x\"} 5.55\n"
            "ig_duration_seconds_count{route=\"x\"} 3\n");
}

TEST(Metrics, EscapesLabelValuesAndFormatsSpecialValues) {
  std::string out;
  MetricWriter w(out);
  w.Sample("m", {{"l", "a\"b\\c\nd"}}, std::numeric_limits<double>::infinity());
  EXPECT_EQ(out, "m{l=\"a\\\"b\\\\c\\nd\"} +Inf\n");
}

TEST(Metrics, CollectorsAppendAtExpositionAndCanBeRemoved) {
  Registry r;
  int id = r.AddCollector([](MetricWriter& w) {
    w.Header("ig_queue", "Queue.", "gauge");
    w.Sample("ig_queue", {{"pool", "p"}}, 7);
  });
  EXPECT_NE(r.Expose().find("ig_queue{pool=\"p\"} 7\n"), std::string::npos);
  r.RemoveCollector(id);
  EXPECT_EQ(r.Expose(), "");
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry r;
  Counter& c = r.AddCounter("c_total", "c").With({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) c.Inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 400000);
}

}  // namespace
}  // namespace infergate::telemetry
