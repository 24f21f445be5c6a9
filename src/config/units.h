// Value formats used by Kubernetes manifests: Gateway API durations, Kubernetes resource
// quantities and RFC 3339 timestamps, parsed exactly (no floating point) and formatted back
// for people.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace infergate::config {

// Parses a Gateway API duration (GEP-2257): one to four groups of 1..5 digits followed by a
// unit h, m, s or ms, e.g. "1h", "30m", "10s", "500ms", "1h30m", "0s". No sign, decimals
// or spaces. Returns nanoseconds, or nullopt when the text is not in that format.
std::optional<TimeNs> ParseDuration(std::string_view text);

// Formats a duration the way ParseDuration reads it, shortest form first: 86400 s -> "24h",
// 5400 s -> "1h30m", 0.5 s -> "500ms". Sub-millisecond parts are written as "<n>ns" (which
// ParseDuration does not accept; they never come from a parsed value).
std::string FormatDuration(TimeNs d);

// Parses a Kubernetes quantity as a byte count: a non-negative decimal number ("1000",
// "1.5") with an optional suffix: binary Ki Mi Gi Ti Pi Ei (powers of 1024), decimal k M G
// T P E (powers of 1000), m (thousandths), or an exponent e<n>/E<n>. A fractional number
// of bytes is rounded up, as Kubernetes does. Returns nullopt for anything else or for
// values of 2^63 bytes or more.
std::optional<std::uint64_t> ParseQuantity(std::string_view text);

// Formats a byte count for people: exact binary units when they divide evenly
// ("20 MiB", "512 KiB"), else plain bytes ("1000 B").
std::string FormatBytes(std::uint64_t bytes);

// Parses an RFC 3339 timestamp as used in metadata.creationTimestamp
// ("2024-05-01T12:00:00Z", optional fraction, "Z" or "+hh:mm"/"-hh:mm"). Returns seconds
// since the Unix epoch (fraction dropped), or nullopt when malformed.
std::optional<std::int64_t> ParseTimestamp(std::string_view text);

}  // namespace infergate::config
