// Coarse per-loop deadlines without a timer per request.
//
// Arming and cancelling an Asio timer for every request (idle timeouts, request timeouts,
// the delayed client-disconnect watch) costs timer-queue operations and a completion per
// request. Instead, each loop keeps an intrusive list of entries and one periodic timer
// that fires the entries whose time has come. Entries live inside the objects that own
// them (a session, an exchange's coroutine frame); adding and removing them is a few
// pointer writes. Deadlines fire up to one tick late, which is fine for timeouts measured
// in seconds and for the 50 ms client-watch delay.
//
// Thread-safety: not thread-safe; one list per event loop, used only on that loop.
#pragma once

#include "core/clock.h"
#include "http/beast.h"

namespace infergate::http {

class DeadlineList {
 public:
  struct Entry {
    TimeNs when = 0;
    // Called on the loop once `when` has passed; the entry is already removed.
    void (*fire)(Entry*) = nullptr;
    Entry* prev = nullptr;
    Entry* next = nullptr;
    bool linked = false;
  };

  explicit DeadlineList(asio::io_context& loop, TimeNs tick = 50 * kNanosPerMilli);
  ~DeadlineList();

  // Adds or re-times `e` (requires e->fire set). Starts the tick timer when needed.
  void Add(Entry* e, TimeNs when);
  // Removes `e` if present; safe to call on an unlinked entry.
  void Remove(Entry* e);
  // Now, as the list measures it.
  TimeNs Now() const { return clock_.Now(); }
  std::size_t size() const { return size_; }

 private:
  void Schedule();
  void Tick();

  asio::steady_timer timer_;
  TimeNs tick_;
  CoarseSteadyClock clock_;
  Entry head_;  // sentinel of a circular list
  std::size_t size_ = 0;
  bool scheduled_ = false;
};

// An entry that calls a member function of its owner; `T::OnDeadline()` must exist.
template <class T, void (T::*Method)()>
struct DeadlineEntry : DeadlineList::Entry {
  explicit DeadlineEntry(T* owner) : owner_(owner) {
    fire = [](DeadlineList::Entry* e) {
      auto* self = static_cast<DeadlineEntry*>(e);
      (self->owner_->*Method)();
    };
  }
  T* owner_;
};

}  // namespace infergate::http
