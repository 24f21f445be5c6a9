// Workloads for the benchmark: benchmark_serving's random and ShareGPT datasets, and a
// multi-tenant shared-prefix conversation workload.
//
// Prompts are built from Tokenizer::Word pieces (core/tokenizer.h), one token each, so the
// simulator's tokenizer counts exactly the intended number of prompt tokens
// (SampleRequest::prompt_len == Tokenizer::Count(prompt)). Against a real server the
// counts that matter come from its usage reports.
//
// Random lengths (--random-length-semantics):
//   v0.7    (vLLM 0.7.x, the seed's): input  = prefix_len + U[int(L·r), L],
//           output = U[int(O·r), O]; default r = 1.0 (fixed lengths); r in [0, 1].
//   current (newer vLLM):             input  = prefix_len + U[int(L·(1−r)), int(L·(1+r))],
//           output = U[max(1, int(O·(1−r))), int(O·(1+r))]; default r = 0.0; r in [0, 1).
// U[a, b] is uniform over integers with both ends included (numpy randint(a, b + 1)). One
// prefix of prefix_len tokens is shared by every request. The draws (prefix ids, input
// lengths, output lengths, offsets) come from NumpyRandomState in benchmark_serving's
// order, so for the same seed and vocabulary size the lengths equal benchmark_serving's.
//
// Thread-safety: pure functions of their arguments (and the random state passed in).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "loadgen/numpy_random.h"

namespace infergate::loadgen {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct SampleRequest {
  // The whole prompt as one text (what /v1/completions sends).
  std::string prompt;
  // The same conversation as chat messages; empty means one user message with `prompt`.
  std::vector<ChatMessage> messages;
  int prompt_len = 0;           // tokens of `prompt` by the simulator's tokenizer
  int expected_output_len = 0;  // max_tokens sent
  int tenant = -1;              // shared-prefix only: the tenant (system prompt) index
  int session = -1;             // shared-prefix only: the conversation index
  int turn = 0;                 // shared-prefix only: 0-based turn within the session
};

enum class RandomLengthSemantics { kV07, kCurrent };

// "v0.7" or "current".
std::string_view ToString(RandomLengthSemantics s);
Result<RandomLengthSemantics> ParseRandomLengthSemantics(std::string_view name);
// The range ratio benchmark_serving used by default under each semantics.
double DefaultRangeRatio(RandomLengthSemantics s);

struct RandomDatasetOptions {
  int num_prompts = 1000;
  int input_len = 1024;
  int output_len = 128;
  int prefix_len = 0;
  double range_ratio = 1.0;
  RandomLengthSemantics semantics = RandomLengthSemantics::kV07;
  // The tokenizer vocabulary size benchmark_serving draws token ids from. It changes only
  // how many draws the shared prefix consumes; 151643 is Qwen2's tokenizer.vocab_size
  // (the seed's QwQ-32B).
  std::int64_t vocab_size = 151643;
};

// Requires a state seeded as benchmark_serving's (NumpyRandomState(seed)). Returns an error
// for out-of-range lengths or ratio.
Result<std::vector<SampleRequest>> SampleRandom(const RandomDatasetOptions& options,
                                                NumpyRandomState& rng);

struct ShareGptOptions {
  std::string path;
  int num_prompts = 1000;
  int fixed_output_len = 0;  // > 0 overrides the second turn's length (--sharegpt-output-len)
  std::uint64_t seed = 0;
};

// vLLM's ShareGPT rules: conversations with at least two turns; prompt = first turn,
// output length = token count of the second turn (unless fixed); drop prompts < 4 tokens,
// outputs < 4 tokens (when not fixed), prompts > 1024 tokens or prompt + output > 2048;
// shuffled with the seed; the first num_prompts that pass. Returns an error if the file
// cannot be read or parsed, or if no conversation passes.
Result<std::vector<SampleRequest>> SampleShareGpt(const ShareGptOptions& options);
// The same from JSON text already in memory (tests).
Result<std::vector<SampleRequest>> SampleShareGptFromText(std::string_view json,
                                                          const ShareGptOptions& options);

// Many tenants, each with its own long system prompt; users ask short questions in
// multi-turn sessions. Turn t of a session sends the system prompt, the previous turns'
// questions and answers (an answer is assumed to be expected_output_len tokens of text),
// then the new question. Sessions are interleaved at random, each session's turns staying
// in order, so prefix-aware routing has shared prefixes to exploit and must keep them
// apart from each other.
struct SharedPrefixOptions {
  int num_prompts = 1000;
  int tenants = 8;
  int prefix_len = 2000;     // system prompt tokens per tenant
  int question_len = 64;     // tokens per question
  int turns = 4;             // turns per session
  int output_len = 256;      // max_tokens per turn, and the assumed answer length
  double range_ratio = 0.0;  // question/output lengths from [L·(1−r), L·(1+r)]
  // Sessions open at once (0: all of them from the start). A bounded number keeps the mix
  // of turns the same through the run, as in a service whose users come and go; with all
  // sessions open, the run goes from first turns to last turns.
  int active_sessions = 0;
  // The text of the answer to the request at `index` (its position in the result) of
  // `tokens` tokens, which later turns of its session carry in their history. Unset:
  // words drawn from the session's stream. A simulation sets it to the simulated model's
  // own output, so a later turn's history matches what the engine generated and cached,
  // as when a chat client sends back the answer it received.
  std::function<void(std::size_t index, int tokens, std::string& out)> answer_text;
};

Result<std::vector<SampleRequest>> SampleSharedPrefix(const SharedPrefixOptions& options,
                                                      NumpyRandomState& rng);

}  // namespace infergate::loadgen
