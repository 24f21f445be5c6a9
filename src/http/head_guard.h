// The gateway's own rules on a whole message head, whatever reads it took to arrive.
//
// Beast's parser takes a head in steps: a request line that is complete in the first read
// is parsed (and consumed) before the rest of the head is there, and complete field lines
// may be consumed before the head's end arrives. Checks applied only to what the parser
// took in its last step therefore saw the whole head when it came in one read and a part
// of it when it came in several: a head over the limit, or an obsolete line fold in an
// early field, was refused in one case and accepted in the other (both found by
// request_fuzz). HeadGuard is fed every step and applies the rules to the whole head:
// - the head's size, request line included, against `limit` (0: none): 431;
// - `refuse` (e.g. HeadHasObsFold) on the head's bytes: 400 (bhttp::error::bad_value).
// A head taken in one step is checked in place; one taken in several is copied (bounded by
// Beast's header limit), which only slow or split clients pay.
//
// Thread-safety: one per message read.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/beast.h"

namespace infergate::http {

// Checks the raw bytes of a whole message head; true refuses it.
using HeadCheck = bool (*)(std::string_view head);

class HeadGuard {
 public:
  HeadGuard(HeadCheck refuse, std::size_t limit) : refuse_(refuse), limit_(limit) {}

  // After each parser step taken while the head was not done: `taken` is what the step
  // consumed, `header_done` whether the head is now complete. Returns the error that ends
  // the read, or none.
  boost::system::error_code OnStep(std::string_view taken, bool header_done) {
    bytes_ += taken.size();
    if (!header_done) {
      if (refuse_ && !taken.empty()) earlier_.append(taken);
      return {};
    }
    if (limit_ != 0 && bytes_ > limit_) return bhttp::error::header_limit;
    if (refuse_) {
      bool refused;
      if (earlier_.empty()) {
        refused = refuse_(taken);
      } else {
        earlier_.append(taken);
        refused = refuse_(earlier_);
      }
      if (refused) return bhttp::error::bad_value;
    }
    return {};
  }

 private:
  HeadCheck refuse_;
  std::size_t limit_;
  std::size_t bytes_ = 0;
  std::string earlier_;  // head bytes of earlier steps, when the head spans several
};

}  // namespace infergate::http
