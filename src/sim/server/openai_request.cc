#include "sim/server/openai_request.h"

#include <simdjson.h>

#include <cstdint>
#include <limits>

namespace infergate::sim {
namespace {

namespace od = simdjson::ondemand;

Error Invalid(simdjson::error_code e) {
  return Error{std::string("invalid JSON body: ") + simdjson::error_message(e)};
}

Error TypeError(std::string_view field, std::string_view expected) {
  return Error{"'" + std::string(field) + "' must be " + std::string(expected)};
}

// Reads the JSON type of `v`; a failure means the document is malformed.
std::optional<Error> TypeOf(od::value& v, od::json_type& type) {
  if (auto e = v.type().get(type)) return Invalid(e);
  return std::nullopt;
}

// An integer field that may be null (left unset). Values must fit an int.
std::optional<Error> ReadOptionalInt(od::value& v, std::string_view key, std::optional<int>& out) {
  od::json_type t;
  if (auto err = TypeOf(v, t)) return err;
  if (t == od::json_type::null) {
    out.reset();
    return std::nullopt;
  }
  std::int64_t n = 0;
  if (t != od::json_type::number || v.get_int64().get(n)) return TypeError(key, "an integer");
  if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max()) {
    return Error{"'" + std::string(key) + "' is out of range: " + std::to_string(n)};
  }
  out = static_cast<int>(n);
  return std::nullopt;
}

// A boolean field that may be null (false).
std::optional<Error> ReadBool(od::value& v, std::string_view key, bool& out) {
  od::json_type t;
  if (auto err = TypeOf(v, t)) return err;
  if (t == od::json_type::null) {
    out = false;
    return std::nullopt;
  }
  if (t != od::json_type::boolean || v.get_bool().get(out)) return TypeError(key, "a boolean");
  return std::nullopt;
}

std::optional<Error> ReadTokenId(od::value& v, std::vector<TokenId>& out) {
  std::int64_t id = 0;
  if (v.get_int64().get(id)) return TypeError("prompt", "a list of integer token ids");
  if (id < 0 || id >= static_cast<std::int64_t>(Tokenizer::kVocabSize)) {
    return Error{"Token id " + std::to_string(id) + " is out of vocabulary"};
  }
  out.push_back(static_cast<TokenId>(id));
  return std::nullopt;
}

const Error kBatchRefused{
    "a list of several prompts is not supported by the simulator: send one prompt per "
    "request"};

// prompt: a string, [string], [int, ...] or [[int, ...]].
std::optional<Error> ReadPrompt(od::value& v, std::vector<TokenId>& prompt) {
  od::json_type t;
  if (auto err = TypeOf(v, t)) return err;
  if (t == od::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s)) return Invalid(e);
    Tokenizer::Encode(s, prompt);
    return std::nullopt;
  }
  if (t != od::json_type::array) {
    return TypeError("prompt", "a string, a list of strings or a list of token ids");
  }
  od::array items;
  if (auto e = v.get_array().get(items)) return Invalid(e);
  int count = 0;
  od::json_type first = od::json_type::null;
  for (auto item_result : items) {
    od::value item;
    if (auto e = std::move(item_result).get(item)) return Invalid(e);
    od::json_type it;
    if (auto err = TypeOf(item, it)) return err;
    if (count == 0) first = it;
    ++count;
    if (it != first) return TypeError("prompt", "a list of items of one type");
    if (it == od::json_type::number) {
      if (auto err = ReadTokenId(item, prompt)) return err;
    } else if (it == od::json_type::string) {
      if (count > 1) return kBatchRefused;
      std::string_view s;
      if (auto e = item.get_string().get(s)) return Invalid(e);
      Tokenizer::Encode(s, prompt);
    } else if (it == od::json_type::array) {
      if (count > 1) return kBatchRefused;
      od::array ids;
      if (auto e = item.get_array().get(ids)) return Invalid(e);
      for (auto id_result : ids) {
        od::value id;
        if (auto e = std::move(id_result).get(id)) return Invalid(e);
        if (auto err = ReadTokenId(id, prompt)) return err;
      }
    } else {
      return TypeError("prompt", "a string, a list of strings or a list of token ids");
    }
  }
  return std::nullopt;
}

// content: a string, null, or a list of parts of which the text ones are joined by "\n".
std::optional<Error> ReadContent(od::value& v, std::string& out) {
  od::json_type t;
  if (auto err = TypeOf(v, t)) return err;
  if (t == od::json_type::null) return std::nullopt;
  if (t == od::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s)) return Invalid(e);
    out.assign(s);
    return std::nullopt;
  }
  if (t != od::json_type::array) {
    return TypeError("messages[].content", "a string, null or a list of content parts");
  }
  od::array parts;
  if (auto e = v.get_array().get(parts)) return Invalid(e);
  bool first = true;
  for (auto part_result : parts) {
    od::value part;
    if (auto e = std::move(part_result).get(part)) return Invalid(e);
    od::object obj;
    if (part.get_object().get(obj)) {
      return TypeError("messages[].content[]", "an object");
    }
    std::string_view type, text;
    bool has_text = false;
    for (auto f : obj) {
      od::field field;
      if (auto e = std::move(f).get(field)) return Invalid(e);
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return Invalid(e);
      if (key == "type") {
        if (field.value().get_string().get(type)) {
          return TypeError("messages[].content[].type", "a string");
        }
      } else if (key == "text") {
        if (field.value().get_string().get(text)) {
          return TypeError("messages[].content[].text", "a string");
        }
        has_text = true;
      }
    }
    if (type == "text" && has_text) {
      if (!first) out += '\n';
      out += text;
      first = false;
    }
  }
  return std::nullopt;
}

std::optional<Error> ReadMessages(od::value& v, std::string& rendered) {
  od::array messages;
  if (v.get_array().get(messages)) return TypeError("messages", "a list of messages");
  std::string role, content;
  for (auto m : messages) {
    od::object msg;
    if (m.get_object().get(msg)) return TypeError("messages[]", "an object");
    role.clear();
    content.clear();
    bool has_role = false;
    for (auto f : msg) {
      od::field field;
      if (auto e = std::move(f).get(field)) return Invalid(e);
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return Invalid(e);
      od::value value = field.value();
      if (key == "role") {
        std::string_view r;
        if (value.get_string().get(r)) return TypeError("messages[].role", "a string");
        role.assign(r);
        has_role = true;
      } else if (key == "content") {
        if (auto err = ReadContent(value, content)) return err;
      }
    }
    if (!has_role) return Error{"every message needs a 'role'"};
    AppendChatPrompt({{role, content}}, /*add_generation_prompt=*/false, rendered);
  }
  return std::nullopt;
}

// Fields that ask for something the simulator does not produce. `v` is non-null.
std::optional<Error> RefuseUnsupported(std::string_view key, od::value& v) {
  od::json_type t;
  if (auto err = TypeOf(v, t)) return err;
  if (t == od::json_type::null) return std::nullopt;
  if (key == "n" || key == "best_of") {
    std::optional<int> n;
    if (auto err = ReadOptionalInt(v, key, n)) return err;
    if (n && *n != 1) {
      return Error{"'" + std::string(key) + "' must be 1: the simulator produces one " +
                   "sequence per request"};
    }
    return std::nullopt;
  }
  if (key == "echo" || key == "logprobs") {
    if (t == od::json_type::boolean) {
      bool b = false;
      if (v.get_bool().get(b)) return TypeError(key, "a boolean");
      if (!b) return std::nullopt;
    }
  }
  if (key == "suffix") return Error{"suffix is not currently supported"};
  return Error{"'" + std::string(key) + "' is not supported by the simulator"};
}

}  // namespace

void AppendChatPrompt(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                      std::string& out) {
  for (const ChatMessage& m : messages) {
    out += "<|im_start|>";
    out += m.role;
    out += '\n';
    out += m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
}

Result<GenerationRequest> ParseGenerationRequest(ApiKind api, std::string& body) {
  thread_local od::parser parser;
  const std::size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  od::document doc;
  if (auto e = parser.iterate(body.data(), size, body.capacity()).get(doc)) return Invalid(e);
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return Error{"the request body must be a JSON object"};
    return Invalid(e);
  }

  GenerationRequest req;
  req.api = api;
  bool have_prompt = false, have_messages = false, have_stream_options = false;
  bool add_generation_prompt = true;
  std::optional<int> max_tokens, max_completion_tokens, min_tokens, priority;
  std::string rendered;  // chat: the conversation through the template
  for (auto field_result : root) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return Invalid(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Invalid(e);
    od::value value = field.value();
    std::optional<Error> err;
    if (key == "model") {
      od::json_type t;
      if ((err = TypeOf(value, t))) return *err;
      if (t == od::json_type::null) continue;
      std::string_view model;
      if (value.get_string().get(model)) return TypeError("model", "a string");
      req.model.emplace(model);
    } else if (key == "prompt" && api == ApiKind::kCompletions) {
      req.prompt.clear();
      err = ReadPrompt(value, req.prompt);
      have_prompt = true;
    } else if (key == "messages" && api == ApiKind::kChat) {
      rendered.clear();
      err = ReadMessages(value, rendered);
      have_messages = true;
    } else if (key == "max_tokens") {
      err = ReadOptionalInt(value, key, max_tokens);
    } else if (key == "max_completion_tokens" && api == ApiKind::kChat) {
      err = ReadOptionalInt(value, key, max_completion_tokens);
    } else if (key == "min_tokens") {
      err = ReadOptionalInt(value, key, min_tokens);
    } else if (key == "priority") {
      err = ReadOptionalInt(value, key, priority);
    } else if (key == "ignore_eos") {
      err = ReadBool(value, key, req.ignore_eos);
    } else if (key == "stream") {
      err = ReadBool(value, key, req.stream);
    } else if (key == "add_generation_prompt" && api == ApiKind::kChat) {
      err = ReadBool(value, key, add_generation_prompt);
    } else if (key == "stream_options") {
      od::json_type t;
      if ((err = TypeOf(value, t))) return *err;
      if (t == od::json_type::null) continue;
      od::object opts;
      if (value.get_object().get(opts)) return TypeError("stream_options", "an object");
      have_stream_options = true;
      for (auto f : opts) {
        od::field of;
        if (auto e = std::move(f).get(of)) return Invalid(e);
        std::string_view ok;
        if (auto e = of.unescaped_key().get(ok)) return Invalid(e);
        od::value ov = of.value();
        if (ok == "include_usage") {
          err = ReadBool(ov, "stream_options.include_usage", req.include_usage);
        } else if (ok == "continuous_usage_stats") {
          err = ReadBool(ov, "stream_options.continuous_usage_stats", req.continuous_usage);
        }
        if (err) return *err;
      }
    } else if (key == "n" || key == "best_of" || key == "echo" || key == "logprobs" ||
               key == "prompt_logprobs" || key == "suffix") {
      err = RefuseUnsupported(key, value);
    }
    if (err) return *err;
  }
  // Anything after the object's closing brace makes the body invalid JSON.
  if (!doc.current_location().error()) {
    return Error{"invalid JSON body: content after the JSON object"};
  }

  if (api == ApiKind::kCompletions) {
    if (!have_prompt) return Error{"'prompt' is required"};
  } else {
    if (!have_messages) return Error{"'messages' is required"};
    if (add_generation_prompt) AppendChatPrompt({}, true, rendered);
    Tokenizer::Encode(rendered, req.prompt);
  }
  if (have_stream_options && !req.stream) {
    return Error{"Stream options can only be defined when `stream=True`."};
  }
  req.continuous_usage = req.continuous_usage && req.include_usage;
  req.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;
  req.min_tokens = min_tokens.value_or(0);
  req.priority = priority.value_or(0);
  return req;
}

}  // namespace infergate::sim
