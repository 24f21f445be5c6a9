#include "sync/wire.h"

#include <algorithm>
#include <cstring>

namespace infergate::sync {
namespace {

constexpr char kMagic[3] = {'I', 'G', 'R'};

std::size_t VarintSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutU64(std::string* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutString(std::string* out, std::string_view s, std::size_t max) {
  s = s.substr(0, std::min(s.size(), max));
  out->push_back(static_cast<char>(s.size()));
  out->append(s);
}

std::uint64_t Tokens(std::uint64_t v) { return std::min(v, kMaxTokens); }

std::uint64_t ZigZag(std::int64_t v) {
  v = std::clamp(v, -kMaxPriority, kMaxPriority);
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t UnZigZag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// A bounds-checked reader over untrusted bytes: every read fails (and stays failed) rather
// than running past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  bool ok() const { return ok_; }
  bool done() const { return p_ == end_; }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

  std::uint8_t U8() {
    if (!ok_ || p_ == end_) return Fail();
    return static_cast<std::uint8_t>(*p_++);
  }
  std::uint64_t U64() {
    if (!ok_ || remaining() < 8) return Fail();
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(p_[i])} << (8 * i);
    p_ += 8;
    return v;
  }
  std::uint64_t Varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = U8();
      if (!ok_) return 0;
      // The tenth byte may only carry the top bit.
      if (shift == 63 && b > 1) return Fail();
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        // One encoding per value: a zero last byte after others is an overlong form.
        if (b == 0 && shift > 0) return Fail();
        return v;
      }
    }
    return Fail();
  }
  // A varint that must be <= max.
  std::uint64_t Bounded(std::uint64_t max) {
    const std::uint64_t v = Varint();
    if (v > max) return Fail();
    return v;
  }
  std::string String(std::size_t min, std::size_t max) {
    const std::size_t n = U8();
    if (!ok_ || n < min || n > max || remaining() < n) {
      Fail();
      return {};
    }
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  std::uint8_t Fail() {
    ok_ = false;
    return 0;
  }

 private:
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace

std::size_t EncodedEventSize(const Event& e) {
  std::size_t n = 1;
  switch (e.type) {
    case EventType::kDispatch: {
      const std::size_t blocks = std::min(e.block_hashes.size(), kMaxBlockHashes);
      n += VarintSize(e.request) + VarintSize(std::min(e.age_us, kMaxAgeUs)) + 1 +
           std::min(e.endpoint.size(), kMaxStringBytes) + VarintSize(Tokens(e.prompt_tokens)) +
           VarintSize(Tokens(e.output_tokens)) + VarintSize(blocks) + 8 * blocks;
      break;
    }
    case EventType::kFirstToken:
      n += VarintSize(e.request) + VarintSize(std::min(e.age_us, kMaxAgeUs));
      break;
    case EventType::kCompletion:
      n += VarintSize(e.request) + VarintSize(std::min(e.age_us, kMaxAgeUs)) + 1;
      if (e.has_usage)
        n += VarintSize(Tokens(e.prompt_tokens)) + VarintSize(Tokens(e.output_tokens));
      break;
    case EventType::kFailure:
      n += VarintSize(e.request);
      break;
    case EventType::kSession:
      n += 2 + std::min(e.session_key.size(), kMaxStringBytes) +
           std::min(e.endpoint.size(), kMaxStringBytes);
      break;
    case EventType::kHeartbeat:
      n +=
          VarintSize(Tokens(e.live)) + VarintSize(std::min<std::uint64_t>(e.interval_ms, 1u << 30));
      break;
    case EventType::kQueue:
      n += VarintSize(Tokens(e.held));
      if (e.held > 0) {
        n += VarintSize(e.request) + VarintSize(ZigZag(e.priority)) +
             VarintSize(std::min(e.stamp_us, kMaxStampUs));
      }
      break;
  }
  return n;
}

std::size_t EncodedHeaderSize(const MessageHeader& h) {
  const std::size_t sent = h.version >= kFirstVersionWithSentTime && h.version <= kWireVersion
                               ? VarintSize(std::min(h.sent_us, kMaxStampUs))
                               : 0;
  return 3 + 1 + 1 + std::min(h.origin.size(), kMaxIdBytes) + 8 + VarintSize(h.sequence) + sent;
}

void EncodeMessage(const MessageHeader& header, const std::vector<Event>& events,
                   std::string* out) {
  out->clear();
  out->append(kMagic, sizeof kMagic);
  // A version this decoder reads back, and one that has every event type used.
  std::uint8_t version = header.version;
  if (version < kOldestWireVersion || version > kWireVersion) version = kWireVersion;
  if (version < 2 && std::any_of(events.begin(), events.end(),
                                 [](const Event& e) { return e.type == EventType::kQueue; })) {
    version = kWireVersion;
  }
  out->push_back(static_cast<char>(version));
  PutString(out, header.origin, kMaxIdBytes);
  PutU64(out, header.incarnation);
  PutVarint(out, header.sequence);
  if (version >= kFirstVersionWithSentTime) PutVarint(out, std::min(header.sent_us, kMaxStampUs));
  const std::size_t count = std::min(events.size(), kMaxEvents);
  PutVarint(out, count);
  for (std::size_t i = 0; i < count; ++i) {
    const Event& e = events[i];
    out->push_back(static_cast<char>(e.type));
    switch (e.type) {
      case EventType::kDispatch: {
        PutVarint(out, e.request);
        PutVarint(out, std::min(e.age_us, kMaxAgeUs));
        PutString(out, e.endpoint, kMaxStringBytes);
        PutVarint(out, Tokens(e.prompt_tokens));
        PutVarint(out, Tokens(e.output_tokens));
        const std::size_t blocks = std::min(e.block_hashes.size(), kMaxBlockHashes);
        PutVarint(out, blocks);
        for (std::size_t b = 0; b < blocks; ++b) PutU64(out, e.block_hashes[b]);
        break;
      }
      case EventType::kFirstToken:
        PutVarint(out, e.request);
        PutVarint(out, std::min(e.age_us, kMaxAgeUs));
        break;
      case EventType::kCompletion:
        PutVarint(out, e.request);
        PutVarint(out, std::min(e.age_us, kMaxAgeUs));
        out->push_back(e.has_usage ? 1 : 0);
        if (e.has_usage) {
          PutVarint(out, Tokens(e.prompt_tokens));
          PutVarint(out, Tokens(e.output_tokens));
        }
        break;
      case EventType::kFailure:
        PutVarint(out, e.request);
        break;
      case EventType::kSession:
        PutString(out, e.session_key, kMaxStringBytes);
        PutString(out, e.endpoint, kMaxStringBytes);
        break;
      case EventType::kHeartbeat:
        PutVarint(out, Tokens(e.live));
        PutVarint(out, std::min<std::uint64_t>(e.interval_ms, 1u << 30));
        break;
      case EventType::kQueue:
        PutVarint(out, Tokens(e.held));
        if (e.held > 0) {
          PutVarint(out, e.request);
          PutVarint(out, ZigZag(e.priority));
          PutVarint(out, std::min(e.stamp_us, kMaxStampUs));
        }
        break;
    }
  }
}

Result<Message> DecodeMessage(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return Error{"message too large"};
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return Error{"not a routing-event message (bad magic)"};
  }
  const auto version = static_cast<std::uint8_t>(bytes[3]);
  if (version < kOldestWireVersion || version > kWireVersion) {
    return Error{"unsupported version " + std::to_string(version)};
  }
  Reader r(bytes.substr(4));
  Message m;
  m.header.version = version;
  m.header.origin = r.String(1, kMaxIdBytes);
  m.header.incarnation = r.U64();
  m.header.sequence = r.Varint();
  if (version >= kFirstVersionWithSentTime) m.header.sent_us = r.Bounded(kMaxStampUs);
  const std::uint64_t count = r.Bounded(kMaxEvents);
  if (!r.ok()) return Error{"truncated or malformed header"};
  // Every event takes at least two bytes: a count the bytes cannot hold is a lie, and is
  // refused before anything is reserved for it.
  if (count * 2 > r.remaining()) return Error{"event count exceeds the message"};
  m.events.reserve(count);
  for (std::uint64_t i = 0; i < count && r.ok(); ++i) {
    Event e;
    const std::uint8_t type = r.U8();
    switch (type) {
      case static_cast<std::uint8_t>(EventType::kDispatch): {
        e.type = EventType::kDispatch;
        e.request = r.Varint();
        e.age_us = r.Bounded(kMaxAgeUs);
        e.endpoint = r.String(1, kMaxStringBytes);
        e.prompt_tokens = r.Bounded(kMaxTokens);
        e.output_tokens = r.Bounded(kMaxTokens);
        const std::uint64_t blocks = r.Bounded(kMaxBlockHashes);
        if (!r.ok() || blocks * 8 > r.remaining()) {
          r.Fail();
          break;
        }
        e.block_hashes.resize(blocks);
        for (auto& h : e.block_hashes) h = r.U64();
        break;
      }
      case static_cast<std::uint8_t>(EventType::kFirstToken):
        e.type = EventType::kFirstToken;
        e.request = r.Varint();
        e.age_us = r.Bounded(kMaxAgeUs);
        break;
      case static_cast<std::uint8_t>(EventType::kCompletion): {
        e.type = EventType::kCompletion;
        e.request = r.Varint();
        e.age_us = r.Bounded(kMaxAgeUs);
        const std::uint8_t has = r.U8();
        if (has > 1) r.Fail();
        e.has_usage = has == 1;
        if (e.has_usage) {
          e.prompt_tokens = r.Bounded(kMaxTokens);
          e.output_tokens = r.Bounded(kMaxTokens);
        }
        break;
      }
      case static_cast<std::uint8_t>(EventType::kFailure):
        e.type = EventType::kFailure;
        e.request = r.Varint();
        break;
      case static_cast<std::uint8_t>(EventType::kSession):
        e.type = EventType::kSession;
        e.session_key = r.String(1, kMaxStringBytes);
        e.endpoint = r.String(1, kMaxStringBytes);
        break;
      case static_cast<std::uint8_t>(EventType::kHeartbeat):
        e.type = EventType::kHeartbeat;
        e.live = r.Bounded(kMaxTokens);
        e.interval_ms = r.Bounded(1u << 30);
        break;
      case static_cast<std::uint8_t>(EventType::kQueue):
        if (version < 2) return Error{"queue event in a version 1 message"};
        e.type = EventType::kQueue;
        e.held = r.Bounded(kMaxTokens);
        if (e.held > 0) {
          e.request = r.Varint();
          e.priority = UnZigZag(r.Bounded(ZigZag(kMaxPriority)));
          e.stamp_us = r.Bounded(kMaxStampUs);
        }
        break;
      default:
        return Error{"unknown event type " + std::to_string(type)};
    }
    if (r.ok()) m.events.push_back(std::move(e));
  }
  if (!r.ok()) return Error{"truncated or malformed event"};
  if (!r.done()) return Error{"trailing bytes after the events"};
  return m;
}

}  // namespace infergate::sync
