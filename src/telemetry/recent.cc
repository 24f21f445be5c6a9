#include "telemetry/recent.h"

#include <cmath>

namespace infergate::telemetry {

WindowSummary SampleWindow::Summarize(TimeNs now) const {
  std::vector<double> values;
  {
    std::lock_guard lock(mu_);
    values.reserve(size_);
    for (std::size_t i = 0; i < size_; ++i) {
      const Sample& s = ring_[i];
      if (s.at > now - window_ && s.at <= now) values.push_back(s.value);
    }
  }
  WindowSummary out;
  out.count = values.size();
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  auto rank = [&](double q) {
    const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::min(values.size() - 1, k == 0 ? 0 : k - 1)];
  };
  out.p50 = rank(0.50);
  out.p90 = rank(0.90);
  out.p99 = rank(0.99);
  out.max = values.back();
  return out;
}

}  // namespace infergate::telemetry
