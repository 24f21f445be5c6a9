// SimClock: the simulated time of a server that runs `scale` times faster than the wall.
//
// `infergate sim --time-scale X` drives its engines in simulated time
//   sim = (wall − origin) · X
// so a step the timing model says lasts 100 ms takes 100/X ms of wall time, and every
// time the server reports (metrics, timings) is in simulated seconds. A client that
// measures a latency on the wall clock multiplies it by X to get the simulated latency.
//
// Thread-safety: an immutable value; safe to share.
#pragma once

#include <cmath>

#include "core/clock.h"

namespace infergate::sim {

class SimClock {
 public:
  // Requires scale > 0. `wall_origin` is a steady-clock time in nanoseconds.
  SimClock(TimeNs wall_origin, double scale) : origin_(wall_origin), scale_(scale) {}

  TimeNs wall_origin() const { return origin_; }
  double scale() const { return scale_; }

  // The simulated time at steady-clock time `wall` (0 before the origin).
  TimeNs ToSim(TimeNs wall) const {
    if (wall <= origin_) return 0;
    const TimeNs d = wall - origin_;
    if (scale_ == 1.0) return d;
    return static_cast<TimeNs>(static_cast<double>(d) * scale_);
  }

  // The earliest steady-clock time at which the simulated time is at least `sim`
  // (requires 0 <= sim < kNever).
  TimeNs ToWall(TimeNs sim) const {
    if (scale_ == 1.0) return origin_ + sim;
    TimeNs w = origin_ + static_cast<TimeNs>(std::ceil(static_cast<double>(sim) / scale_));
    // Rounding of the division can leave w a nanosecond short.
    while (ToSim(w) < sim) ++w;
    return w;
  }

 private:
  TimeNs origin_;
  double scale_;
};

}  // namespace infergate::sim
