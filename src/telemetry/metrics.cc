#include "telemetry/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace infergate::telemetry {

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  // Buckets are few (tens); a branch-predictable linear scan beats binary search here.
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  b.reserve(count);
  for (int i = 0; i < count; ++i, start *= factor) b.push_back(start);
  return b;
}

void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void AppendEscapedLabelValue(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void MetricWriter::Header(std::string_view name, std::string_view help, std::string_view type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {
    if (c == '\\')
      out_ += "\\\\";
    else if (c == '\n')
      out_ += "\\n";
    else
      out_ += c;
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

namespace {
template <class Labels>
void WriteSample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  bool first = true;
  for (const auto& [k, v] : labels) {
    out += first ? '{' : ',';
    first = false;
    out += k;
    out += "=\"";
    AppendEscapedLabelValue(out, v);
    out += '"';
  }
  if (!first) out += '}';
  out += ' ';
  AppendValue(out, value);
  out += '\n';
}
}  // namespace

void MetricWriter::Sample(
    std::string_view name,
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels, double value) {
  WriteSample(out_, name, labels, value);
}

void MetricWriter::Sample(std::string_view name,
                          const std::vector<std::pair<std::string, std::string>>& labels,
                          double value) {
  WriteSample(out_, name, labels, value);
}

template <class M>
M& Family<M>::With(const std::vector<std::string>& values) {
  std::lock_guard lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return *it->second;
  std::unique_ptr<M> child;
  if constexpr (std::is_same_v<M, Histogram>) {
    child = std::make_unique<M>(buckets_);
  } else {
    child = std::make_unique<M>();
  }
  return *children_.emplace(values, std::move(child)).first->second;
}

template <class M>
void Family<M>::Clear() {
  std::lock_guard lock(mu_);
  children_.clear();
}

void MetricWriter::HistogramSamples(std::string_view name,
                                    std::vector<std::pair<std::string, std::string>> labels,
                                    std::span<const double> bounds,
                                    std::span<const std::uint64_t> counts, double sum) {
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  labels.emplace_back("le", "");
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    labels.back().second.clear();
    if (i < bounds.size()) {
      AppendValue(labels.back().second, bounds[i]);
    } else {
      labels.back().second = "+Inf";
    }
    Sample(bucket, labels, static_cast<double>(cumulative));
  }
  labels.pop_back();
  Sample(std::string(name) + "_sum", labels, sum);
  Sample(std::string(name) + "_count", labels, static_cast<double>(cumulative));
}

template <class M>
void Family<M>::Write(MetricWriter& w, MetricType type) const {
  std::lock_guard lock(mu_);
  static constexpr std::string_view kTypes[] = {"counter", "gauge", "histogram"};
  w.Header(name_, help_, kTypes[static_cast<int>(type)]);
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::uint64_t> counts;
  for (const auto& [values, child] : children_) {
    labels.clear();
    for (std::size_t i = 0; i < label_names_.size(); ++i) {
      labels.emplace_back(label_names_[i], values[i]);
    }
    if constexpr (std::is_same_v<M, Histogram>) {
      const auto& bounds = child->bounds();
      counts.resize(bounds.size() + 1);
      for (std::size_t i = 0; i <= bounds.size(); ++i) counts[i] = child->BucketCount(i);
      w.HistogramSamples(name_, labels, bounds, counts, child->Sum());
    } else {
      w.Sample(name_, labels, child->Value());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  auto& e = entries_.emplace_back();
  e.type = MetricType::kCounter;
  e.counter =
      std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(labels));
  return *e.counter;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  std::lock_guard lock(mu_);
  auto& e = entries_.emplace_back();
  e.type = MetricType::kGauge;
  e.gauge = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(labels));
  return *e.gauge;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> labels,
                                          std::vector<double> buckets) {
  std::lock_guard lock(mu_);
  auto& e = entries_.emplace_back();
  e.type = MetricType::kHistogram;
  e.histogram = std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                    std::move(labels), std::move(buckets));
  return *e.histogram;
}

int Registry::AddCollector(Collector fn) {
  std::lock_guard lock(mu_);
  int id = next_collector_++;
  collectors_.emplace(id, std::move(fn));
  return id;
}

void Registry::RemoveCollector(int id) {
  std::lock_guard lock(mu_);
  collectors_.erase(id);
}

std::string Registry::Expose() const {
  std::string out;
  out.reserve(8192);
  MetricWriter w(out);
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    switch (e.type) {
      case MetricType::kCounter:
        e.counter->Write(w, e.type);
        break;
      case MetricType::kGauge:
        e.gauge->Write(w, e.type);
        break;
      case MetricType::kHistogram:
        e.histogram->Write(w, e.type);
        break;
    }
  }
  for (const auto& [id, fn] : collectors_) fn(w);
  return out;
}

}  // namespace infergate::telemetry
