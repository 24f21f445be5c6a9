#include "loadgen/dataset.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/tokenizer.h"

namespace infergate::loadgen {
namespace {

RandomDatasetOptions Seed() {
  // The seed's benchmark: --random-prefix-len 1000 --random-input-len 4000
  // --random-output-len 3000 --random-range-ratio 0.2 --num-prompts 300 (QwQ tokenizer).
  RandomDatasetOptions o;
  o.num_prompts = 300;
  o.prefix_len = 1000;
  o.input_len = 4000;
  o.output_len = 3000;
  o.range_ratio = 0.2;
  o.semantics = RandomLengthSemantics::kV07;
  o.vocab_size = 151643;
  return o;
}

TEST(BenchRandomDatasetTest, SeedWorkloadReproducesBenchmarkServingInputTotal) {
  NumpyRandomState rng(0);
  auto reqs = SampleRandom(Seed(), rng);
  ASSERT_TRUE(reqs.ok()) << reqs.error().message;
  ASSERT_EQ(reqs->size(), 300u);
  long total = 0;
  for (const auto& r : *reqs) total += r.prompt_len;
  // The seed's tables report "Total input tokens: 1014085" for both runs.
  EXPECT_EQ(total, 1014085);
  // np.random.seed(0); np.random.randint(0, 151643, 1000);
  // np.random.randint(800, 4001, 300)[:5] -> [965, 1534, 1173, 2318, 2768]
  // np.random.randint(600, 3001, 300)[:5] -> [2960, 1012, 771, 1721, 778]
  const int in5[] = {965, 1534, 1173, 2318, 2768};
  const int out5[] = {2960, 1012, 771, 1721, 778};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ((*reqs)[i].prompt_len, 1000 + in5[i]);
    EXPECT_EQ((*reqs)[i].expected_output_len, out5[i]);
  }
}

TEST(BenchRandomDatasetTest, PromptsTokenizeToExactlyTheIntendedLengthWithSharedPrefix) {
  RandomDatasetOptions o = Seed();
  o.num_prompts = 20;
  NumpyRandomState rng(0);
  auto reqs = SampleRandom(o, rng);
  ASSERT_TRUE(reqs.ok());
  const std::vector<TokenId> first = Tokenizer::Encode((*reqs)[0].prompt);
  for (const auto& r : *reqs) {
    EXPECT_EQ(Tokenizer::Count(r.prompt), static_cast<std::size_t>(r.prompt_len));
    const std::vector<TokenId> ids = Tokenizer::Encode(r.prompt);
    ASSERT_GE(ids.size(), 1000u);
    EXPECT_TRUE(std::equal(first.begin(), first.begin() + 1000, ids.begin()));
  }
  // Past the prefix, prompts differ.
  const std::vector<TokenId> second = Tokenizer::Encode((*reqs)[1].prompt);
  EXPECT_NE(std::vector<TokenId>(first.begin() + 1000, first.begin() + 1010),
            std::vector<TokenId>(second.begin() + 1000, second.begin() + 1010));
}

TEST(BenchRandomDatasetTest, V07BoundsAreInclusiveAndMeansMatch) {
  RandomDatasetOptions o;
  o.num_prompts = 20000;
  o.input_len = 10;
  o.output_len = 20;
  o.range_ratio = 0.5;  // input U[5, 10], output U[10, 20]
  o.semantics = RandomLengthSemantics::kV07;
  NumpyRandomState rng(1);
  auto reqs = SampleRandom(o, rng);
  ASSERT_TRUE(reqs.ok());
  std::set<int> ins, outs;
  double in_sum = 0, out_sum = 0;
  for (const auto& r : *reqs) {
    ins.insert(r.prompt_len);
    outs.insert(r.expected_output_len);
    in_sum += r.prompt_len;
    out_sum += r.expected_output_len;
  }
  EXPECT_EQ(*ins.begin(), 5);
  EXPECT_EQ(*ins.rbegin(), 10);
  EXPECT_EQ(ins.size(), 6u);
  EXPECT_EQ(*outs.begin(), 10);
  EXPECT_EQ(*outs.rbegin(), 20);
  EXPECT_NEAR(in_sum / 20000, 7.5, 0.05);
  EXPECT_NEAR(out_sum / 20000, 15.0, 0.1);
}

TEST(BenchRandomDatasetTest, CurrentSemanticsIsSymmetricAroundTheLength) {
  RandomDatasetOptions o;
  o.num_prompts = 20000;
  o.input_len = 100;
  o.output_len = 10;
  o.prefix_len = 3;
  o.range_ratio = 0.25;  // input U[75, 125] (+3 prefix), output U[7, 12]
  o.semantics = RandomLengthSemantics::kCurrent;
  NumpyRandomState rng(2);
  auto reqs = SampleRandom(o, rng);
  ASSERT_TRUE(reqs.ok());
  int lo = 1 << 30, hi = 0, olo = 1 << 30, ohi = 0;
  double sum = 0;
  for (const auto& r : *reqs) {
    lo = std::min(lo, r.prompt_len), hi = std::max(hi, r.prompt_len);
    olo = std::min(olo, r.expected_output_len), ohi = std::max(ohi, r.expected_output_len);
    sum += r.prompt_len;
  }
  EXPECT_EQ(lo, 78);
  EXPECT_EQ(hi, 128);
  EXPECT_EQ(olo, 7);
  EXPECT_EQ(ohi, 12);
  EXPECT_NEAR(sum / 20000, 103.0, 0.3);
}

TEST(BenchRandomDatasetTest, DefaultRatiosAndRangeChecks) {
  EXPECT_EQ(DefaultRangeRatio(RandomLengthSemantics::kV07), 1.0);
  EXPECT_EQ(DefaultRangeRatio(RandomLengthSemantics::kCurrent), 0.0);
  RandomDatasetOptions o;
  o.num_prompts = 4;
  o.range_ratio = 1.0;
  NumpyRandomState rng(0);
  auto fixed = SampleRandom(o, rng);  // v0.7 with r = 1: fixed lengths
  ASSERT_TRUE(fixed.ok());
  for (const auto& r : *fixed) {
    EXPECT_EQ(r.prompt_len, 1024);
    EXPECT_EQ(r.expected_output_len, 128);
  }
  o.semantics = RandomLengthSemantics::kCurrent;
  EXPECT_FALSE(SampleRandom(o, rng).ok());  // current needs r < 1
  o.semantics = RandomLengthSemantics::kV07;
  o.range_ratio = 1.5;
  EXPECT_FALSE(SampleRandom(o, rng).ok());
  o.range_ratio = 0.5;
  o.input_len = 0;
  EXPECT_FALSE(SampleRandom(o, rng).ok());
  EXPECT_TRUE(ParseRandomLengthSemantics("current").ok());
  EXPECT_FALSE(ParseRandomLengthSemantics("v0.8").ok());
}

std::string Words(int n, int salt) {
  std::string s;
  for (int i = 0; i < n; ++i)
    Tokenizer::AppendWord(static_cast<std::uint64_t>(salt * 100000 + i), s);
  return s;
}

TEST(BenchShareGptTest, FollowsVllmFilteringRules) {
  // Conversations: ok, one-turn (dropped), short prompt (dropped), short answer (dropped),
  // prompt > 1024 (dropped), prompt + output > 2048 (dropped), ok.
  const std::string json =
      "[" + std::string(R"({"id":"a","conversations":[{"from":"human","value":")") + Words(10, 1) +
      R"("},{"from":"gpt","value":")" + Words(20, 2) + R"("},{"from":"human","value":"x"}]},)" +
      R"({"id":"b","conversations":[{"from":"human","value":")" + Words(10, 3) + R"("}]},)" +
      R"({"id":"c","conversations":[{"from":"human","value":")" + Words(3, 4) +
      R"("},{"from":"gpt","value":")" + Words(20, 5) + R"("}]},)" +
      R"({"id":"d","conversations":[{"from":"human","value":")" + Words(10, 6) +
      R"("},{"from":"gpt","value":")" + Words(3, 7) + R"("}]},)" +
      R"({"id":"e","conversations":[{"from":"human","value":")" + Words(1025, 8) +
      R"("},{"from":"gpt","value":")" + Words(5, 9) + R"("}]},)" +
      R"({"id":"f","conversations":[{"from":"human","value":")" + Words(1000, 10) +
      R"("},{"from":"gpt","value":")" + Words(1049, 11) + R"("}]},)" +
      R"({"id":"g","conversations":[{"from":"human","value":")" + Words(7, 12) +
      R"("},{"from":"gpt","value":")" + Words(9, 13) + R"("}]})" + "]";
  ShareGptOptions o;
  o.num_prompts = 100;
  auto reqs = SampleShareGptFromText(json, o);
  ASSERT_TRUE(reqs.ok()) << reqs.error().message;
  ASSERT_EQ(reqs->size(), 2u);
  std::map<int, int> lens;
  for (const auto& r : *reqs) lens[r.prompt_len] = r.expected_output_len;
  EXPECT_EQ(lens[10], 20);
  EXPECT_EQ(lens[7], 9);

  // A fixed output length keeps the short-answer conversation and replaces lengths.
  o.fixed_output_len = 5;
  auto fixed = SampleShareGptFromText(json, o);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->size(), 4u);  // a, d, f, g (c's prompt is too short, e's too long)
  for (const auto& r : *fixed) EXPECT_EQ(r.expected_output_len, 5);

  // num_prompts caps the sample; the same seed gives the same order.
  o.fixed_output_len = 0;
  o.num_prompts = 1;
  auto one = SampleShareGptFromText(json, o);
  auto again = SampleShareGptFromText(json, o);
  ASSERT_TRUE(one.ok() && again.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].prompt, (*again)[0].prompt);
}

TEST(BenchShareGptTest, BadInputGivesErrors) {
  ShareGptOptions o;
  EXPECT_FALSE(SampleShareGptFromText("{not json", o).ok());
  EXPECT_FALSE(SampleShareGptFromText("[]", o).ok());
  o.path = "/nonexistent/sharegpt.json";
  EXPECT_FALSE(SampleShareGpt(o).ok());
}

TEST(BenchSharedPrefixTest, SessionsCarryTheirHistoryAndTenantsShareSystemPrompts) {
  SharedPrefixOptions o;
  o.num_prompts = 30;
  o.tenants = 3;
  o.prefix_len = 50;
  o.question_len = 8;
  o.turns = 4;
  o.output_len = 12;
  o.range_ratio = 0.25;
  NumpyRandomState rng(5);
  auto reqs = SampleSharedPrefix(o, rng);
  ASSERT_TRUE(reqs.ok()) << reqs.error().message;
  ASSERT_EQ(reqs->size(), 30u);
  std::map<int, const SampleRequest*> last_turn;  // session -> previous request
  std::map<int, std::string> tenant_prefix;
  bool interleaved = false;
  int prev_session = -1;
  for (const auto& r : *reqs) {
    EXPECT_EQ(Tokenizer::Count(r.prompt), static_cast<std::size_t>(r.prompt_len));
    const std::string prefix = r.prompt.substr(0, r.messages[0].content.size());
    EXPECT_EQ(r.messages[0].role, "system");
    auto [it, inserted] = tenant_prefix.emplace(r.tenant, prefix);
    EXPECT_EQ(it->second, prefix) << "tenant " << r.tenant << " has one system prompt";
    auto prev = last_turn.find(r.session);
    if (prev == last_turn.end()) {
      EXPECT_EQ(r.turn, 0);
      EXPECT_EQ(r.messages.size(), 2u);
    } else {
      const SampleRequest& p = *prev->second;
      EXPECT_EQ(r.turn, p.turn + 1);
      // The new prompt extends the previous prompt by its answer and the new question.
      EXPECT_EQ(r.prompt.compare(0, p.prompt.size(), p.prompt), 0);
      EXPECT_EQ(r.messages.size(), p.messages.size() + 2);
      EXPECT_EQ(r.messages[r.messages.size() - 2].role, "assistant");
      EXPECT_EQ(static_cast<int>(Tokenizer::Count(r.messages[r.messages.size() - 2].content)),
                p.expected_output_len);
    }
    if (prev_session >= 0 && prev_session != r.session && prev != last_turn.end() &&
        last_turn.count(prev_session) && last_turn[prev_session]->turn < o.turns - 1) {
      interleaved = true;
    }
    prev_session = r.session;
    last_turn[r.session] = &r;
    EXPECT_GE(r.expected_output_len, 9);
    EXPECT_LE(r.expected_output_len, 15);
  }
  EXPECT_EQ(last_turn.size(), 8u);  // ceil(30 / 4) sessions
  EXPECT_GE(tenant_prefix.size(), 2u);
  EXPECT_TRUE(interleaved);
}

// Turn index of every request, for the window tests below.
std::vector<int> TurnsOf(const SharedPrefixOptions& o, std::uint32_t seed) {
  NumpyRandomState rng(seed);
  auto reqs = SampleSharedPrefix(o, rng);
  EXPECT_TRUE(reqs.ok());
  std::vector<int> turns;
  if (reqs.ok()) {
    for (const SampleRequest& r : *reqs) turns.push_back(r.turn);
  }
  return turns;
}

TEST(BenchSharedPrefixTest, ActiveSessionsBoundTheOpenSessionsAndKeepTheTurnMix) {
  SharedPrefixOptions o;
  o.num_prompts = 4000;
  o.tenants = 20;
  o.prefix_len = 8;
  o.question_len = 2;
  o.output_len = 2;
  o.turns = 4;
  o.active_sessions = 25;
  NumpyRandomState rng(9);
  auto reqs = SampleSharedPrefix(o, rng);
  ASSERT_TRUE(reqs.ok()) << reqs.error().message;
  ASSERT_EQ(reqs->size(), 4000u);
  // Never more than 25 sessions started and not finished; session k opens only once
  // k - 24 sessions have ended; every session's turns in order and complete.
  std::map<int, int> next_turn;
  int open = 0, max_open = 0, finished = 0;
  for (const SampleRequest& r : *reqs) {
    auto [it, inserted] = next_turn.emplace(r.session, 0);
    if (inserted) {
      ++open;
      EXPECT_LT(r.session, finished + o.active_sessions) << "sessions open in order";
    }
    EXPECT_EQ(r.turn, it->second);
    ++it->second;
    if (it->second == o.turns) {
      --open;
      ++finished;
    }
    max_open = std::max(max_open, open);
  }
  EXPECT_EQ(max_open, 25);
  EXPECT_EQ(next_turn.size(), 1000u);
  for (const auto& [session, turns] : next_turn) EXPECT_EQ(turns, 4) << "session " << session;

  // The last quarter of the run still starts sessions: about a quarter of its requests are
  // first turns. With every session open from the start (0), the run drifts from first
  // turns to last ones, so its last quarter has almost none.
  auto first_turns_in_last_quarter = [](const std::vector<int>& turns) {
    int n = 0;
    for (std::size_t i = turns.size() * 3 / 4; i < turns.size(); ++i) n += turns[i] == 0;
    return static_cast<double>(n) / static_cast<double>(turns.size() / 4);
  };
  EXPECT_GT(first_turns_in_last_quarter(TurnsOf(o, 9)), 0.15);
  o.active_sessions = 0;
  EXPECT_LT(first_turns_in_last_quarter(TurnsOf(o, 9)), 0.05);
  // A window as large as the run is the same as none: the same draws, the same order.
  const std::vector<int> all = TurnsOf(o, 4);
  o.active_sessions = 1000;
  EXPECT_EQ(TurnsOf(o, 4), all);
}

TEST(BenchSharedPrefixTest, RejectsBadKnobs) {
  SharedPrefixOptions o;
  NumpyRandomState rng(0);
  o.tenants = 0;
  EXPECT_FALSE(SampleSharedPrefix(o, rng).ok());
  o = SharedPrefixOptions{};
  o.range_ratio = 1.0;
  EXPECT_FALSE(SampleSharedPrefix(o, rng).ok());
  o = SharedPrefixOptions{};
  o.active_sessions = -1;
  auto bad = SampleSharedPrefix(o, rng);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("--sp-active-sessions"), std::string::npos);
}

}  // namespace
}  // namespace infergate::loadgen
