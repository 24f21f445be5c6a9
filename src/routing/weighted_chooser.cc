#include "routing/weighted_chooser.h"

#include <numeric>

namespace infergate::routing {
namespace {

// One smooth weighted round-robin step over current (same size as weights).
int Step(const std::vector<std::uint32_t>& weights, std::uint64_t total,
         std::vector<std::int64_t>* current) {
  int best = -1;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] == 0) continue;
    (*current)[i] += weights[i];
    if (best < 0 || (*current)[i] > (*current)[static_cast<std::size_t>(best)]) {
      best = static_cast<int>(i);
    }
  }
  (*current)[static_cast<std::size_t>(best)] -= static_cast<std::int64_t>(total);
  return best;
}

}  // namespace

WeightedChooser::WeightedChooser(std::vector<std::uint32_t> weights)
    : weights_(std::move(weights)), current_(weights_.size(), 0) {
  std::uint32_t g = 0;
  int nonzero = 0;
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    if (weights_[i] == 0) continue;
    g = std::gcd(g, weights_[i]);
    ++nonzero;
    single_ = static_cast<int>(i);
  }
  if (nonzero != 1) single_ = -1;
  if (nonzero == 0) return;
  for (auto& w : weights_) w /= g;
  for (auto w : weights_) period_ += w;
  if (single_ < 0 && period_ <= kMaxTableSize) {
    table_.reserve(period_);
    std::vector<std::int64_t> current(weights_.size(), 0);
    for (std::uint64_t i = 0; i < period_; ++i) {
      table_.push_back(static_cast<std::uint32_t>(Step(weights_, period_, &current)));
    }
  }
}

WeightedChooser::WeightedChooser(WeightedChooser&& other) noexcept
    : weights_(std::move(other.weights_)),
      period_(other.period_),
      single_(other.single_),
      table_(std::move(other.table_)),
      next_(other.next_.load(std::memory_order_relaxed)),
      current_(std::move(other.current_)) {}

int WeightedChooser::Next() const {
  if (single_ >= 0 || period_ == 0) return single_;
  if (!table_.empty()) {
    std::uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
    return static_cast<int>(table_[n % period_]);
  }
  std::lock_guard<std::mutex> lock(mu_);
  return Step(weights_, period_, &current_);
}

}  // namespace infergate::routing
