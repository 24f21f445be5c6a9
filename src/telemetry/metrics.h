// A small Prometheus metrics registry: counters, gauges and histograms with labels, and
// the text exposition format (version 0.0.4).
//
// The hot path is an atomic add on a child metric the caller looked up once and kept:
//   auto& requests = registry.AddCounter("x_requests_total", "Requests.", {"route", "code"});
//   Counter& ok = requests.With({"default/chat", "200"});   // once, under a lock
//   ok.Inc();                                               // per request, lock-free
// Children live as long as the registry; references to them stay valid.
//
// Values that are cheaper to read at scrape time than to keep up to date (queue lengths
// of a scheduler, per-endpoint state) are produced by collectors: functions called during
// exposition that append samples through a MetricWriter.
//
// Thread-safety: everything is safe to call from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace infergate::telemetry {

class Counter {
 public:
  // Requires v >= 0.
  void Inc(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds` are the upper bounds of the buckets, strictly increasing; +Inf is implicit.
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket i (i == bounds().size() is the +Inf bucket).
  std::uint64_t BucketCount(std::size_t i) const {
    return counts_[i].load(std::memory_order_relaxed);
  }
  std::uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Buckets: `count` values starting at `start`, each `factor` times the previous.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// Appends samples in the exposition format; used by collectors and by the registry.
class MetricWriter {
 public:
  explicit MetricWriter(std::string& out) : out_(out) {}
  // Writes the HELP and TYPE lines; type is counter, gauge, histogram or untyped.
  void Header(std::string_view name, std::string_view help, std::string_view type);
  // One sample line. labels are (name, value) pairs; values are escaped.
  void Sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              double value);
  void Sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
              double value);
  // One histogram's samples under `labels`: name_bucket for each bound and +Inf
  // (cumulative), name_sum and name_count. `counts` are per bucket, not cumulative:
  // bounds.size() + 1 of them, the last one beyond every bound.
  void HistogramSamples(std::string_view name,
                        std::vector<std::pair<std::string, std::string>> labels,
                        std::span<const double> bounds, std::span<const std::uint64_t> counts,
                        double sum);

 private:
  std::string& out_;
};

// Formats a value as Prometheus expects (+Inf, -Inf, NaN, shortest round-trip decimal).
void AppendValue(std::string& out, double v);
// Appends `v` with \ " and newline escaped.
void AppendEscapedLabelValue(std::string& out, std::string_view v);

enum class MetricType { kCounter, kGauge, kHistogram };

// A metric name with a fixed list of label names and one child per label-value tuple.
template <class M>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        buckets_(std::move(buckets)) {}

  // The child for these label values (in label-name order), created on first use.
  // Requires values.size() == label_names().size().
  M& With(std::initializer_list<std::string_view> values) {
    return With(std::vector<std::string>(values.begin(), values.end()));
  }
  M& With(const std::vector<std::string>& values);
  // Drops every child (their references become invalid); for series of objects that are
  // gone after a configuration reload.
  void Clear();

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  void Write(MetricWriter& w, MetricType type) const;

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

class Registry {
 public:
  using Collector = std::function<void(MetricWriter&)>;

  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> buckets);
  // `fn` is called on every exposition; it must write complete metric families (Header
  // then samples) and be safe to call from any thread. Returns an id for RemoveCollector.
  int AddCollector(Collector fn);
  void RemoveCollector(int id);

  // The whole registry in the text exposition format.
  std::string Expose() const;

 private:
  struct Entry {
    MetricType type;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::map<int, Collector> collectors_;
  int next_collector_ = 0;
};

}  // namespace infergate::telemetry
