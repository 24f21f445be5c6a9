// Knowing when a socket has nothing to read, so that waiting for data costs no syscall.
//
// Asio's epoll reactor registers each socket edge-triggered and keeps, per descriptor and
// operation type, a flag saying whether an operation may be tried at once ("speculatively")
// before waiting for the next readiness edge. It sets the flag on every readiness event
// and, for reads, clears it only at end of file. So every async read on a socket that was
// already drained first costs a recv that fails with EAGAIN, and async_wait costs an
// epoll_ctl to re-arm the descriptor. A proxy reads each socket when the peer is due to
// answer, which is nearly always "not yet": that was two wasted syscalls per proxied
// request (four with async_wait), against nginx's none (it notes a short read as "drained"
// and waits for the next event).
//
// MarkReadDrained() does what nginx does, through the reactor's own flag: after a read
// that returned fewer bytes than asked for (or EAGAIN), the socket's receive queue was
// empty, and any byte that arrives later raises a new edge, whose event sets the flag
// again. Clearing it is therefore exact, provided no readiness event of this socket was
// processed between the read and the call: call it right after a synchronous read_some,
// or from the completion of an async read that the reactor performed on an event (it
// completes inline, before the loop polls again). Never after an async read that Asio
// completed speculatively (that completion is posted: an event may come in between).
//
// The flag is private to Asio, reached here by the standard explicit-instantiation access
// rule, and only for the Boost release whose reactor this was checked against (1.81,
// Debian 12's). Anywhere else ReadMayBeReady() is always false and MarkReadDrained() does
// nothing: every read then goes through Asio's own speculative read, which is correct and
// costs the EAGAIN.
//
// Thread-safety: as the socket; call on the socket's own event loop.
#pragma once

#include <boost/version.hpp>

#include "http/beast.h"

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) &&                      \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && !defined(BOOST_ASIO_HAS_IOCP) && \
    !defined(BOOST_ASIO_WINDOWS_RUNTIME)
#define INFERGATE_READ_READINESS 1
#else
#define INFERGATE_READ_READINESS 0
#endif

namespace infergate::http {

#if INFERGATE_READ_READINESS
namespace read_readiness_detail {

using DescriptorState = asio::detail::epoll_reactor::descriptor_state;
using SpeculativeFlags = bool[asio::detail::epoll_reactor::max_ops];
using FlagsMember = SpeculativeFlags DescriptorState::*;

// An explicit instantiation may name private members; the friend it defines hands the
// member pointer out.
struct SpeculativeTag {
  friend constexpr FlagsMember MemberOf(SpeculativeTag);
};
template <FlagsMember Member>
struct Expose {
  friend constexpr FlagsMember MemberOf(SpeculativeTag) { return Member; }
};
template struct Expose<&DescriptorState::try_speculative_>;

// A derived class may form a pointer to a protected member of its base.
struct SocketImpl : tcp::socket {
  static auto& Of(tcp::socket& s) { return (s.*&SocketImpl::impl_).get_implementation(); }
};

inline bool& ReadFlag(tcp::socket& s) {
  DescriptorState* state = SocketImpl::Of(s).reactor_data_;
  return (state->*MemberOf(SpeculativeTag{}))[asio::detail::epoll_reactor::read_op];
}

}  // namespace read_readiness_detail

// Whether a read might find bytes without waiting: false only after MarkReadDrained() and
// before the next readiness event. Requires an open socket.
inline bool ReadMayBeReady(tcp::socket& s) { return read_readiness_detail::ReadFlag(s); }

// Records that the socket's receive queue is empty (see above for when that is exact).
inline void MarkReadDrained(tcp::socket& s) { read_readiness_detail::ReadFlag(s) = false; }
#else
inline bool ReadMayBeReady(tcp::socket&) { return false; }
inline void MarkReadDrained(tcp::socket&) {}
#endif

}  // namespace infergate::http
