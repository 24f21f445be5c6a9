#include "cluster/router.h"

namespace infergate::cluster {

RouteDecision RoundRobinRouter::Route(const RouteRequest&, std::span<const EngineScrape> engines,
                                      TimeNs) {
  const std::size_t e = next_ % engines.size();
  ++next_;
  return RouteDecision::To(static_cast<int>(e));
}

}  // namespace infergate::cluster
