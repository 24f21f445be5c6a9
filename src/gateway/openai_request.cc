#include "gateway/openai_request.h"

#include <simdjson.h>

#include "http/openai_error.h"

namespace infergate::gateway {
namespace {

namespace od = simdjson::ondemand;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

Error TypeError(std::string_view field, std::string_view expected) {
  return Error{"'" + std::string(field) + "' must be " + std::string(expected)};
}

// Appends the text of a chat message's content: a string, or an array of parts of which
// the {"type":"text","text":...} ones count.
simdjson::error_code AppendContent(od::value content, std::string& out) {
  od::json_type type;
  if (auto e = content.type().get(type)) return e;
  if (type == od::json_type::string) {
    std::string_view s;
    if (auto e = content.get_string().get(s)) return e;
    out += s;
    return simdjson::SUCCESS;
  }
  if (type == od::json_type::array) {
    od::array parts;
    if (auto e = content.get_array().get(parts)) return e;
    for (auto part : parts) {
      od::object obj;
      if (part.get_object().get(obj)) continue;
      std::string_view text;
      if (!obj["text"].get_string().get(text)) out += text;
    }
  }
  return simdjson::SUCCESS;
}

}  // namespace

Result<OpenAIRequest> ParseOpenAIRequest(std::string& body) {
  thread_local od::parser parser;
  const std::size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  OpenAIRequest req;
  od::document doc;
  if (auto e = parser.iterate(body.data(), size, body.capacity()).get(doc)) {
    return Error{std::string("invalid JSON body: ") + simdjson::error_message(e)};
  }
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return Error{"the request body must be a JSON object"};
    return Error{std::string("invalid JSON body: ") + simdjson::error_message(e)};
  }
  bool have_model = false;
  for (auto field_result : root) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) {
      return Error{std::string("invalid JSON body: ") + simdjson::error_message(e)};
    }
    std::string_view key;
    if (field.unescaped_key().get(key)) return Error{"invalid JSON body: bad key"};
    od::value value = field.value();
    if (key == "model") {
      std::string_view raw = TrimRight(value.raw_json_token());
      std::string_view model;
      if (value.get_string().get(model)) return TypeError("model", "a string");
      req.model.assign(model);
      req.model_offset = static_cast<std::size_t>(raw.data() - body.data());
      req.model_length = raw.size();
      have_model = true;
    } else if (key == "stream") {
      bool stream = false;
      if (value.get_bool().get(stream)) return TypeError("stream", "a boolean");
      req.stream = stream;
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      od::json_type t;
      if (value.type().get(t)) return Error{"invalid JSON body"};
      if (t == od::json_type::null) continue;
      std::int64_t n = 0;
      if (value.get_int64().get(n)) return TypeError(key, "an integer");
      req.max_tokens = n;
    } else if (key == "prompt") {
      od::json_type t;
      if (value.type().get(t)) return Error{"invalid JSON body"};
      if (t == od::json_type::string) {
        std::string_view s;
        if (value.get_string().get(s)) return TypeError("prompt", "a string or a list");
        req.prompt.assign(s);
      } else if (t == od::json_type::array) {
        // Strings are joined; token ids (or lists of them) become a text of their numbers,
        // a stable key for prefix affinity, and their count is exact.
        od::array items;
        if (value.get_array().get(items)) return TypeError("prompt", "a string or a list");
        std::int64_t ids = 0;
        auto add_id = [&](od::value v) -> bool {
          std::int64_t id = 0;
          if (v.get_int64().get(id)) return false;
          req.prompt += std::to_string(id);
          req.prompt += ' ';
          ++ids;
          return true;
        };
        for (auto item_result : items) {
          od::value item;
          od::json_type it;
          if (std::move(item_result).get(item) || item.type().get(it))
            return Error{"invalid JSON body"};
          if (it == od::json_type::number) {
            if (!add_id(item)) return TypeError("prompt", "a list of integers");
          } else if (it == od::json_type::string) {
            std::string_view str;
            if (item.get_string().get(str)) return Error{"invalid JSON body"};
            if (!req.prompt.empty()) req.prompt += '\n';
            req.prompt += str;
          } else if (it == od::json_type::array) {
            od::array inner;
            if (item.get_array().get(inner)) return Error{"invalid JSON body"};
            for (auto v : inner) {
              od::value iv;
              if (std::move(v).get(iv) || !add_id(iv))
                return TypeError("prompt", "lists of integers");
            }
          } else {
            return TypeError("prompt", "a string or a list");
          }
        }
        if (ids > 0) req.prompt_tokens = ids;
      } else {
        return TypeError("prompt", "a string or a list");
      }
    } else if (key == "messages") {
      od::array messages;
      if (value.get_array().get(messages)) return TypeError("messages", "a list");
      for (auto m : messages) {
        od::object msg;
        if (m.get_object().get(msg)) return TypeError("messages[]", "an object");
        std::string_view role = "user";
        for (auto f : msg) {
          od::field mf;
          if (std::move(f).get(mf)) return Error{"invalid JSON body"};
          std::string_view mk;
          if (mf.unescaped_key().get(mk)) return Error{"invalid JSON body"};
          if (mk == "role") {
            std::string_view r;
            if (!mf.value().get_string().get(r)) role = r;
            req.prompt += role;
            req.prompt += ": ";
          } else if (mk == "content") {
            if (AppendContent(mf.value(), req.prompt)) return TypeError("content", "text");
          }
        }
        req.prompt += '\n';
      }
    }
  }
  // current_location() succeeds only while unread bytes remain after the object.
  if (!doc.current_location().error()) return Error{"invalid JSON body: trailing content"};
  if (!have_model) return Error{"the request names no 'model'"};
  return req;
}

void SpliceModel(std::string& body, const OpenAIRequest& request, std::string_view model) {
  std::string token = "\"";
  http::AppendJsonEscaped(token, model);
  token += '"';
  body.replace(request.model_offset, request.model_length, token);
}

}  // namespace infergate::gateway
