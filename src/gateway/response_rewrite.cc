#include "gateway/response_rewrite.h"

#include <charconv>

#include "http/openai_error.h"

namespace infergate::gateway {

ModelNameRewriter::ModelNameRewriter(std::string_view target, std::string_view requested) {
  std::string t;
  http::AppendJsonEscaped(t, target);
  std::string r;
  http::AppendJsonEscaped(r, requested);
  pattern_tight_ = "\"model\":\"" + t + "\"";
  pattern_spaced_ = "\"model\": \"" + t + "\"";
  replacement_ = "\"model\":\"" + r + "\"";
}

void ModelNameRewriter::Rewrite(std::string_view in, bool last, std::string& out) {
  std::string_view data = in;
  if (!held_.empty()) {
    held_.append(in);
    data = held_;
  }
  std::size_t pos = 0;
  for (;;) {
    const std::size_t a = data.find(pattern_tight_, pos);
    const std::size_t b = data.find(pattern_spaced_, pos);
    const std::size_t hit = std::min(a, b);
    if (hit == std::string_view::npos) break;
    out.append(data.substr(pos, hit - pos));
    out += replacement_;
    pos = hit + (hit == a ? pattern_tight_.size() : pattern_spaced_.size());
  }
  // Keep back the longest suffix that could start a match split across pieces.
  std::size_t keep = 0;
  if (!last) {
    const std::size_t longest = pattern_spaced_.size() - 1;
    const std::size_t from = data.size() - std::min(data.size() - pos, longest);
    for (std::size_t i = from; i < data.size(); ++i) {
      std::string_view rest = data.substr(i);
      if (pattern_tight_.compare(0, rest.size(), rest) == 0 ||
          pattern_spaced_.compare(0, rest.size(), rest) == 0) {
        keep = data.size() - i;
        break;
      }
    }
  }
  out.append(data.substr(pos, data.size() - pos - keep));
  std::string next(data.substr(data.size() - keep));
  held_ = std::move(next);
}

void UsageScanner::Feed(std::string_view piece) {
  if (piece.size() >= kTailBytes) {
    tail_.assign(piece.substr(piece.size() - kTailBytes));
    return;
  }
  tail_.append(piece);
  if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
}

namespace {
std::optional<std::int64_t> NumberAfter(std::string_view text, std::string_view key) {
  auto p = text.find(key);
  if (p == std::string_view::npos) return std::nullopt;
  p += key.size();
  while (p < text.size() && (text[p] == ' ' || text[p] == ':')) ++p;
  std::int64_t v = 0;
  auto r = std::from_chars(text.data() + p, text.data() + text.size(), v);
  if (r.ec != std::errc()) return std::nullopt;
  return v;
}
}  // namespace

std::optional<Usage> UsageScanner::Result() const {
  // Only the last kTailBytes count: tail_ keeps between kTailBytes and twice that much
  // depending on how the response was cut into pieces, and the result must not.
  std::string_view t = tail_;
  if (t.size() > kTailBytes) t.remove_prefix(t.size() - kTailBytes);
  const auto at = t.rfind("\"usage\"");
  if (at == std::string_view::npos) return std::nullopt;
  const auto open = t.find('{', at);
  if (open == std::string_view::npos) return std::nullopt;
  const auto close = t.find('}', open);
  if (close == std::string_view::npos) return std::nullopt;
  const std::string_view obj = t.substr(open, close - open);
  auto prompt = NumberAfter(obj, "\"prompt_tokens\"");
  auto completion = NumberAfter(obj, "\"completion_tokens\"");
  if (!prompt || !completion) return std::nullopt;
  return Usage{*prompt, *completion};
}

}  // namespace infergate::gateway
