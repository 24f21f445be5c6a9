// Response-side edits of the inference path, applied to bytes as they stream.
//
// ModelNameRewriter: when an InferenceModel sent the request to a target model under
// another name (a canary, an adapter), the response names the target; the client must see
// the name it asked for. The rewriter replaces `"model":"<target>"` (with or without a
// space after the colon, as servers write it) by `"model":"<requested>"` in a stream of
// body pieces, holding back only as many trailing bytes as could begin a match, so SSE
// chunks still leave at once.
//
// UsageScanner: remembers the tail of a response and reads the `usage` object a server
// puts at the end of a completion (the final SSE chunk with include_usage, or the JSON
// body), so the ledger learns real prompt and completion token counts.
//
// Thread-safety: one object per response; not shared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "scheduler/request.h"

namespace infergate::gateway {

class ModelNameRewriter {
 public:
  ModelNameRewriter(std::string_view target, std::string_view requested);
  // Appends the rewritten form of `in` to `out`; with last=true also flushes what was
  // held back.
  void Rewrite(std::string_view in, bool last, std::string& out);

 private:
  std::string pattern_tight_, pattern_spaced_, replacement_;
  std::string held_;
};

class UsageScanner {
 public:
  static constexpr std::size_t kTailBytes = 4096;
  void Feed(std::string_view piece);
  // The last usage object in the response's last kTailBytes bytes, if it has both token
  // counts. The same however the response was cut into pieces.
  std::optional<Usage> Result() const;

 private:
  std::string tail_;
};

}  // namespace infergate::gateway
