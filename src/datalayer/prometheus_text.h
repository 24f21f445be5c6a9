// A reader for the Prometheus text exposition format (version 0.0.4, and the parts of
// OpenMetrics text that model servers emit).
//
// PrometheusTextReader walks a scraped /metrics body one sample at a time without copying:
// names, label names and label values are string_views into the body, and the label list
// is reused between samples, so reading a page allocates nothing per sample once warm.
// The gateway reads every endpoint every 50 ms, so this matters.
//
// Accepted, because real servers emit it: labels in any order and with a trailing comma,
// quoted (UTF-8) metric and label names, `_sum` before `_bucket` (order is irrelevant to a
// per-sample reader), exponent floats, `+Inf`, `-Inf`, `NaN`, `# TYPE` without `# HELP`,
// `_created` samples, escaped label values (\\ \" \n), blank lines, comments, timestamps
// after values, OpenMetrics exemplars (`# {...}` after the value, ignored), `# EOF`, and
// CRLF line endings. A line that does not parse is skipped and counted; the reader never
// fails as a whole, never reads out of bounds, and runs in time linear in the body size.
//
// Thread-safety: a reader is a cursor and is not synchronised; use one per thread. The
// free functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace infergate {

struct PromLabel {
  std::string_view name;
  // The value as written between the quotes. When `escaped` is true it still contains
  // backslash escapes; use AppendUnescaped or UnescapedValue to decode it.
  std::string_view value;
  bool escaped = false;

  std::string UnescapedValue() const;
};

struct PromSample {
  std::string_view name;
  // Valid until the reader's next call to Next().
  std::span<const PromLabel> labels;
  double value = 0;
  bool has_timestamp = false;
  std::int64_t timestamp_ms = 0;

  // Returns the label called `label_name`, or nullptr when the sample has none.
  const PromLabel* FindLabel(std::string_view label_name) const;
};

// Appends `raw` with the text format's escapes (\\, \", \n) decoded. An unknown escape is
// kept as written.
void AppendUnescaped(std::string_view raw, std::string& out);

// Parses a sample value: decimal or exponent notation, optional sign, and `Inf`/`+Inf`/
// `-Inf`/`NaN` in any letter case. Returns false (leaving *out untouched) when `text` is
// not entirely a number.
bool ParsePromFloat(std::string_view text, double* out);

class PrometheusTextReader {
 public:
  explicit PrometheusTextReader(std::string_view body) : body_(body) {}

  PrometheusTextReader(const PrometheusTextReader&) = delete;
  PrometheusTextReader& operator=(const PrometheusTextReader&) = delete;

  // Advances to the next well-formed sample and stores it in *sample. Returns false when
  // the body is exhausted. Malformed lines are skipped (see malformed_lines()).
  bool Next(PromSample* sample);

  // Lines consumed so far (including comments, blanks and malformed lines).
  std::size_t lines() const { return line_no_; }
  // Lines skipped because they were not a comment, a blank or a well-formed sample.
  std::size_t malformed_lines() const { return malformed_; }
  // "line N: what was wrong" for the first malformed line; empty when there was none.
  const std::string& first_error() const { return first_error_; }

 private:
  // Parses one line with no line terminator and no leading blanks; returns nullptr on
  // success or a description of the problem.
  const char* ParseLine(std::string_view line, PromSample* sample);

  std::string_view body_;
  std::size_t pos_ = 0;
  std::size_t line_no_ = 0;
  std::size_t malformed_ = 0;
  std::string first_error_;
  std::vector<PromLabel> labels_;
};

}  // namespace infergate
