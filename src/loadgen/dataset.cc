#include "loadgen/dataset.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/tokenizer.h"

namespace infergate::loadgen {
namespace {

// Words for one piece of synthetic text: `count` one-token words chosen by (stream, j), so
// distinct streams give unrelated text and the same stream always gives the same text.
void AppendWords(std::uint64_t stream, int count, std::string& out) {
  // splitmix64 of the stream id as the base; AppendWord mixes base + j again.
  std::uint64_t z = stream + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  for (int j = 0; j < count; ++j) Tokenizer::AppendWord(z + static_cast<std::uint64_t>(j), out);
}

Status CheckNonNegative(const char* what, int v) {
  if (v < 0) return Error{fmt::format("{} must be >= 0 (got {})", what, v)};
  return Ok();
}

}  // namespace

std::string_view ToString(RandomLengthSemantics s) {
  return s == RandomLengthSemantics::kV07 ? "v0.7" : "current";
}

Result<RandomLengthSemantics> ParseRandomLengthSemantics(std::string_view name) {
  if (name == "v0.7") return RandomLengthSemantics::kV07;
  if (name == "current") return RandomLengthSemantics::kCurrent;
  return Error{
      fmt::format("unknown random length semantics '{}' (expected v0.7 or current)", name)};
}

double DefaultRangeRatio(RandomLengthSemantics s) {
  return s == RandomLengthSemantics::kV07 ? 1.0 : 0.0;
}

Result<std::vector<SampleRequest>> SampleRandom(const RandomDatasetOptions& o,
                                                NumpyRandomState& rng) {
  if (o.num_prompts < 1) return Error{"--num-prompts must be >= 1"};
  if (o.input_len < 1) return Error{"--random-input-len must be >= 1"};
  if (o.output_len < 1) return Error{"--random-output-len must be >= 1"};
  if (auto s = CheckNonNegative("--random-prefix-len", o.prefix_len); !s) return s.error();
  if (o.vocab_size < 1 || o.vocab_size > (std::int64_t{1} << 32)) {
    return Error{"vocabulary size must be in [1, 2^32]"};
  }
  const double r = o.range_ratio;
  int in_lo, in_hi, out_lo, out_hi;
  if (o.semantics == RandomLengthSemantics::kV07) {
    if (!(r >= 0.0 && r <= 1.0)) {
      return Error{
          fmt::format("--random-range-ratio must be in [0, 1] with v0.7 semantics "
                      "(got {})",
                      r)};
    }
    in_lo = static_cast<int>(o.input_len * r);
    in_hi = o.input_len;
    out_lo = static_cast<int>(o.output_len * r);
    out_hi = o.output_len;
  } else {
    if (!(r >= 0.0 && r < 1.0)) {
      return Error{
          fmt::format("--random-range-ratio must be in [0, 1) with current "
                      "semantics (got {})",
                      r)};
    }
    in_lo = static_cast<int>(o.input_len * (1 - r));
    in_hi = static_cast<int>(o.input_len * (1 + r));
    out_lo = std::max(static_cast<int>(o.output_len * (1 - r)), 1);
    out_hi = static_cast<int>(o.output_len * (1 + r));
  }

  const auto n = static_cast<std::size_t>(o.num_prompts);
  std::string prefix;
  prefix.reserve(static_cast<std::size_t>(o.prefix_len) * 5);
  for (int j = 0; j < o.prefix_len; ++j) {
    Tokenizer::AppendWord(static_cast<std::uint64_t>(rng.RandInt(0, o.vocab_size)), prefix);
  }
  std::vector<int> input_lens(n), output_lens(n);
  std::vector<std::int64_t> offsets(n);
  for (auto& v : input_lens) v = static_cast<int>(rng.RandInt(in_lo, in_hi + 1));
  for (auto& v : output_lens) v = static_cast<int>(rng.RandInt(out_lo, out_hi + 1));
  for (auto& v : offsets) v = rng.RandInt(0, o.vocab_size);

  std::vector<SampleRequest> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    SampleRequest& req = out[i];
    req.prompt.reserve(prefix.size() + static_cast<std::size_t>(input_lens[i]) * 5);
    req.prompt = prefix;
    // benchmark_serving's token ids (offset + i + j) mod vocab, one word per id.
    for (int j = 0; j < input_lens[i]; ++j) {
      const auto id = (offsets[i] + static_cast<std::int64_t>(i) + j) % o.vocab_size;
      Tokenizer::AppendWord(static_cast<std::uint64_t>(id), req.prompt);
    }
    req.prompt_len = o.prefix_len + input_lens[i];
    req.expected_output_len = output_lens[i];
  }
  return out;
}

Result<std::vector<SampleRequest>> SampleShareGptFromText(std::string_view json,
                                                          const ShareGptOptions& o) {
  if (o.num_prompts < 1) return Error{"--num-prompts must be >= 1"};
  if (o.fixed_output_len < 0) return Error{"--sharegpt-output-len must be >= 1"};
  struct Pair {
    std::string prompt, completion;
  };
  std::vector<Pair> pairs;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  try {
    simdjson::ondemand::document doc = parser.iterate(padded);
    for (simdjson::ondemand::object entry : doc.get_array()) {
      simdjson::ondemand::value conv;
      if (entry.find_field_unordered("conversations").get(conv) != simdjson::SUCCESS) continue;
      simdjson::ondemand::array turns;
      if (conv.get_array().get(turns) != simdjson::SUCCESS) continue;
      Pair p;
      int k = 0;
      for (simdjson::ondemand::object turn : turns) {
        if (k < 2) {
          std::string_view value;
          if (turn.find_field_unordered("value").get_string().get(value) != simdjson::SUCCESS) {
            break;
          }
          (k == 0 ? p.prompt : p.completion) = std::string(value);
        }
        ++k;
      }
      if (k >= 2) pairs.push_back(std::move(p));
    }
  } catch (const simdjson::simdjson_error& e) {
    return Error{fmt::format("ShareGPT file {}: invalid JSON ({})", o.path, e.what())};
  }

  // Fisher-Yates with the seed (vLLM uses Python's random.shuffle; the sampled set differs
  // from vLLM's anyway because lengths are counted with a different tokenizer).
  std::mt19937_64 gen(o.seed);
  for (std::size_t i = pairs.size(); i > 1; --i) {
    std::uniform_int_distribution<std::size_t> pick(0, i - 1);
    std::swap(pairs[i - 1], pairs[pick(gen)]);
  }
  std::vector<SampleRequest> out;
  for (Pair& p : pairs) {
    if (out.size() == static_cast<std::size_t>(o.num_prompts)) break;
    const int prompt_len = static_cast<int>(Tokenizer::Count(p.prompt));
    const int output_len = o.fixed_output_len > 0
                               ? o.fixed_output_len
                               : static_cast<int>(Tokenizer::Count(p.completion));
    if (prompt_len < 4 || (o.fixed_output_len == 0 && output_len < 4)) continue;
    if (prompt_len > 1024 || prompt_len + output_len > 2048) continue;
    SampleRequest req;
    req.prompt = std::move(p.prompt);
    req.prompt_len = prompt_len;
    req.expected_output_len = output_len;
    out.push_back(std::move(req));
  }
  if (out.empty()) {
    return Error{
        fmt::format("ShareGPT file {}: no conversation passed the length filters", o.path)};
  }
  return out;
}

Result<std::vector<SampleRequest>> SampleShareGpt(const ShareGptOptions& o) {
  if (o.path.empty()) return Error{"--dataset-path is required for the sharegpt dataset"};
  simdjson::padded_string text;
  if (simdjson::padded_string::load(o.path).get(text) != simdjson::SUCCESS) {
    return Error{fmt::format("cannot read ShareGPT file {}", o.path)};
  }
  return SampleShareGptFromText(std::string_view(text.data(), text.size()), o);
}

Result<std::vector<SampleRequest>> SampleSharedPrefix(const SharedPrefixOptions& o,
                                                      NumpyRandomState& rng) {
  if (o.num_prompts < 1) return Error{"--num-prompts must be >= 1"};
  if (o.tenants < 1) return Error{"--sp-tenants must be >= 1"};
  if (o.turns < 1) return Error{"--sp-turns must be >= 1"};
  if (o.active_sessions < 0) return Error{"--sp-active-sessions must be >= 0"};
  if (o.question_len < 1) return Error{"--sp-question-len must be >= 1"};
  if (o.output_len < 1) return Error{"--sp-output-len must be >= 1"};
  if (auto s = CheckNonNegative("--sp-prefix-len", o.prefix_len); !s) return s.error();
  if (!(o.range_ratio >= 0.0 && o.range_ratio < 1.0)) {
    return Error{fmt::format("--sp-range-ratio must be in [0, 1) (got {})", o.range_ratio)};
  }
  const double r = o.range_ratio;
  auto draw = [&](int len) {
    const int lo = std::max(1, static_cast<int>(len * (1 - r)));
    const int hi = std::max(lo, static_cast<int>(len * (1 + r)));
    return static_cast<int>(rng.RandInt(lo, hi + 1));
  };

  std::vector<std::string> system_prompts(static_cast<std::size_t>(o.tenants));
  for (int t = 0; t < o.tenants; ++t) {
    AppendWords(0x5157'0000ULL + static_cast<std::uint64_t>(t), o.prefix_len,
                system_prompts[static_cast<std::size_t>(t)]);
  }

  const int sessions = (o.num_prompts + o.turns - 1) / o.turns;
  struct Session {
    int tenant = 0;
    int turns = 0;
    int next = 0;
    std::vector<ChatMessage> history;  // system, then user/assistant pairs
    std::string text;                  // the same history as one text
    int tokens = 0;
  };
  std::vector<Session> ss(static_cast<std::size_t>(sessions));
  int remaining = o.num_prompts;
  for (int s = 0; s < sessions; ++s) {
    Session& x = ss[static_cast<std::size_t>(s)];
    x.tenant = static_cast<int>(rng.RandInt(0, o.tenants));
    x.turns = std::min(o.turns, remaining);
    remaining -= x.turns;
    x.text = system_prompts[static_cast<std::size_t>(x.tenant)];
    x.tokens = o.prefix_len;
    if (o.prefix_len > 0) x.history.push_back({"system", x.text});
  }

  // A uniformly random interleaving of the open sessions: pick the next one with
  // probability proportional to its remaining turns. With active_sessions = 0 every
  // session is open from the start; otherwise the first active_sessions are, and each one
  // that ends opens the next.
  std::vector<SampleRequest> out;
  out.reserve(static_cast<std::size_t>(o.num_prompts));
  const std::size_t window =
      o.active_sessions > 0
          ? std::min<std::size_t>(static_cast<std::size_t>(o.active_sessions), ss.size())
          : ss.size();
  std::vector<std::size_t> open(window);
  for (std::size_t k = 0; k < window; ++k) open[k] = k;
  std::size_t next_session = window;
  int left = o.num_prompts;
  int open_left = 0;  // remaining turns of the open sessions
  for (std::size_t s : open) open_left += ss[s].turns;
  while (left > 0) {
    std::int64_t k = rng.RandInt(0, open_left);
    std::size_t pos = 0;
    for (;; ++pos) {
      const Session& y = ss[open[pos]];
      const int rem = y.turns - y.next;
      if (k < rem) break;
      k -= rem;
    }
    const std::size_t s = open[pos];
    --open_left;
    if (window < ss.size() && ss[s].next + 1 == ss[s].turns) {
      // Its last turn: the next session opens in its place.
      if (next_session < ss.size()) {
        open[pos] = next_session++;
        open_left += ss[open[pos]].turns;
      } else {
        open[pos] = open.back();
        open.pop_back();
      }
    }
    Session& x = ss[s];
    const auto stream = (static_cast<std::uint64_t>(s) << 8) | static_cast<std::uint64_t>(x.next);
    const int q_len = draw(o.question_len);
    const int a_len = draw(o.output_len);
    std::string question;
    AppendWords(0x7100'0000'0000ULL + stream, q_len, question);

    SampleRequest req;
    req.tenant = x.tenant;
    req.session = static_cast<int>(s);
    req.turn = x.next;
    req.prompt = x.text + question;
    req.prompt_len = x.tokens + q_len;
    req.messages = x.history;
    req.messages.push_back({"user", question});
    req.expected_output_len = a_len;
    out.push_back(std::move(req));

    std::string answer;
    if (o.answer_text) {
      o.answer_text(out.size() - 1, a_len, answer);
    } else {
      AppendWords(0xA100'0000'0000ULL + stream, a_len, answer);
    }
    x.text += question;
    x.text += answer;
    x.tokens += q_len + a_len;
    x.history.push_back({"user", std::move(question)});
    x.history.push_back({"assistant", std::move(answer)});
    ++x.next;
    --left;
  }
  return out;
}

}  // namespace infergate::loadgen
