#include "http/deadline_list.h"

namespace infergate::http {

DeadlineList::DeadlineList(asio::io_context& loop, TimeNs tick) : timer_(loop), tick_(tick) {
  head_.prev = head_.next = &head_;
}

DeadlineList::~DeadlineList() {
  // Unlink whatever is left so owners that outlive the list do not point into it.
  while (head_.next != &head_) Remove(head_.next);
}

void DeadlineList::Add(Entry* e, TimeNs when) {
  if (e->linked) Remove(e);
  e->when = when;
  e->prev = head_.prev;
  e->next = &head_;
  head_.prev->next = e;
  head_.prev = e;
  e->linked = true;
  ++size_;
  Schedule();
}

void DeadlineList::Remove(Entry* e) {
  if (!e->linked) return;
  e->prev->next = e->next;
  e->next->prev = e->prev;
  e->prev = e->next = nullptr;
  e->linked = false;
  --size_;
}

void DeadlineList::Schedule() {
  if (scheduled_ || size_ == 0) return;
  scheduled_ = true;
  timer_.expires_after(std::chrono::nanoseconds(tick_));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    scheduled_ = false;
    if (!ec) Tick();
  });
}

void DeadlineList::Tick() {
  const TimeNs now = clock_.Now();
  // Collect first: firing may add or remove entries.
  Entry due;
  due.prev = due.next = &due;
  for (Entry* e = head_.next; e != &head_;) {
    Entry* next = e->next;
    if (e->when <= now) {
      Remove(e);
      e->prev = due.prev;
      e->next = &due;
      due.prev->next = e;
      due.prev = e;
    }
    e = next;
  }
  while (due.next != &due) {
    Entry* e = due.next;
    due.next = e->next;
    e->next->prev = &due;
    e->prev = e->next = nullptr;
    e->fire(e);
  }
  Schedule();
}

}  // namespace infergate::http
