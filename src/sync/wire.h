// The wire format of routing events shared between gateway replicas (replica sync).
//
// A replica tells its peers what it did with each request so their ledgers, prefix indexes
// and session tables see the pool's whole load, not 1/R of it. Events are compact and
// batched: one message carries a header and up to kMaxEvents events, and is never larger
// than kMaxMessageBytes, however large the prompts (a dispatch carries at most
// kMaxBlockHashes prefix-block hashes, 8 bytes each, never the prompt).
//
// Message (version 3), integers little-endian, "varint" = unsigned LEB128 (at most 10
// bytes), "str" = one length byte then that many bytes:
//   'I' 'G' 'R'  magic
//   u8           version (kWireVersion)
//   str          origin: the sending replica's id (1..kMaxIdBytes bytes)
//   u64          incarnation: random per process start; a new one replaces the old's state
//   varint       sequence number of the message from this incarnation (gaps: lost messages)
//   varint       sent_us: the sender's wall clock at encoding, in microseconds since the
//                epoch (<= kMaxStampUs); version 3 on (a peer dates the events' transit)
//   varint       event count (<= kMaxEvents), then the events:
//     u8 type, then by type:
//     1 dispatch     varint request, varint age_us, str endpoint, varint prompt_tokens,
//                    varint expected_output_tokens, varint n (<= kMaxBlockHashes), n × u64
//     2 first token  varint request, varint age_us
//     3 completion   varint request, varint age_us, u8 has_usage,
//                    [varint prompt_tokens, varint completion_tokens]
//     4 failure      varint request
//     5 session      str session key, str endpoint
//     6 heartbeat    varint live (the origin's in-flight local requests), varint interval_ms
//     7 queue        varint held (requests in the origin's gateway queue); when held > 0,
//                    of the request its queue offers next: varint request (the origin's
//                    queue item id), zigzag varint priority, varint stamp_us (its arrival
//                    on the origin's wall clock in microseconds: every replica compares the
//                    same two numbers, so all agree which of two heads comes first;
//                    sync/queue_order.h)
// `request` is the origin's own id for the request; `age_us` how long before the message
// was encoded the event happened (so a peer can date it on its own clock). Version 2 is
// version 3 without sent_us, and version 1 is version 2 without the queue event: a message
// in either (from a replica not yet upgraded, during a rolling update) is accepted and
// applied, its header says so (MessageHeader::version), and a queue event inside a
// version 1 message makes it invalid. Token counts
// are bounded by kMaxTokens. Anything else (bad magic, another version, an unknown type,
// a count or length out of bounds, trailing bytes, truncation) makes the whole message
// invalid: DecodeMessage returns an error and nothing of it is applied.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace infergate::sync {

inline constexpr std::uint8_t kWireVersion = 3;
inline constexpr std::uint8_t kOldestWireVersion = 1;  // still decoded (no queue event)
inline constexpr std::uint8_t kFirstVersionWithSentTime = 3;
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;
inline constexpr std::size_t kMaxEvents = 4096;
// As many as the infergate profile's prefix index hashes per prompt (maxPrefixBlocks
// 1,024): a peer's chain cut shorter than the sender's own kept each replica's view of a
// server's cache warm after the server had evicted it (docs/experiments/
// 2026-12-07-shared-prefix-replicas.md). 8 KB per dispatch at most.
inline constexpr std::size_t kMaxBlockHashes = 1024;
inline constexpr std::size_t kMaxIdBytes = 64;
inline constexpr std::size_t kMaxStringBytes = 255;
inline constexpr std::uint64_t kMaxTokens = std::uint64_t{1} << 24;
inline constexpr std::uint64_t kMaxAgeUs = std::uint64_t{3600} * 1'000'000;
inline constexpr std::uint64_t kMaxStampUs = std::uint64_t{1} << 62;
inline constexpr std::int64_t kMaxPriority = (std::int64_t{1} << 31) - 1;  // |priority| bound

enum class EventType : std::uint8_t {
  kDispatch = 1,
  kFirstToken = 2,
  kCompletion = 3,
  kFailure = 4,
  kSession = 5,
  kHeartbeat = 6,
  kQueue = 7,
};

struct Event {
  EventType type = EventType::kHeartbeat;
  std::uint64_t request = 0;
  std::uint64_t age_us = 0;
  std::string endpoint;                     // dispatch, session
  std::uint64_t prompt_tokens = 0;          // dispatch (accounted); completion (usage)
  std::uint64_t output_tokens = 0;          // dispatch (expected); completion (usage)
  bool has_usage = false;                   // completion
  std::vector<std::uint64_t> block_hashes;  // dispatch
  std::string session_key;                  // session
  std::uint64_t live = 0;                   // heartbeat
  std::uint64_t interval_ms = 0;            // heartbeat
  std::uint64_t held = 0;                   // queue
  std::int64_t priority = 0;                // queue, with held > 0
  std::uint64_t stamp_us = 0;               // queue, with held > 0 (<= kMaxStampUs)
};

struct MessageHeader {
  std::string origin;
  std::uint64_t incarnation = 0;
  std::uint64_t sequence = 0;
  std::uint64_t sent_us = 0;  // <= kMaxStampUs; written from version 3 on
  // Decoded: the version the message came in. Encoded as given when it is one this
  // decoder reads and has every event type used; else as kWireVersion.
  std::uint8_t version = kWireVersion;
};

struct Message {
  MessageHeader header;
  std::vector<Event> events;
};

// The encoded size of one event (what AppendEvent adds).
std::size_t EncodedEventSize(const Event& event);
// The encoded size of a header with no events yet (the count takes up to 3 bytes more).
std::size_t EncodedHeaderSize(const MessageHeader& header);

// Encodes `header` and `events` into *out (replacing it). Values beyond the bounds are
// clamped (hashes beyond kMaxBlockHashes dropped, strings cut, counts capped), so the
// result always decodes; the caller keeps the total under kMaxMessageBytes (MessageWriter).
void EncodeMessage(const MessageHeader& header, const std::vector<Event>& events, std::string* out);

// Parses one message. Errors say what was wrong; nothing is partially returned.
Result<Message> DecodeMessage(std::string_view bytes);

}  // namespace infergate::sync
