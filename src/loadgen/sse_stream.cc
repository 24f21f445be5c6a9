#include "loadgen/sse_stream.h"

namespace infergate::loadgen {
namespace {

namespace od = simdjson::ondemand;

std::string ErrorMessage(od::value v) {
  od::json_type type = v.type();
  if (type == od::json_type::object) {
    std::string message;
    for (od::field f : v.get_object()) {
      const std::string_view key = f.unescaped_key();
      od::value fv = f.value();
      if ((key == "message" || key == "detail") && fv.type() == od::json_type::string) {
        message = std::string(std::string_view(fv.get_string()));
      }
    }
    return message.empty() ? "error event without a message" : message;
  }
  if (type == od::json_type::string) return std::string(std::string_view(v.get_string()));
  return std::string(v.raw_json_token());
}

}  // namespace

void StreamChunkDecoder::Decode(std::string_view data, StreamChunk& out) {
  out = StreamChunk{};
  std::string_view trimmed = data;
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\n')) {
    trimmed.remove_suffix(1);
  }
  if (trimmed == "[DONE]") {
    out.kind = StreamChunk::Kind::kDone;
    return;
  }
  padded_.assign(trimmed);
  padded_.resize(trimmed.size() + simdjson::SIMDJSON_PADDING);
  try {
    od::document doc = parser_.iterate(padded_.data(), trimmed.size(), padded_.size());
    bool choices = false;
    bool is_error_object = false;
    std::string message;
    for (od::field f : doc.get_object()) {
      const std::string_view key = f.unescaped_key();
      od::value v = f.value();
      if (key == "choices") {
        if (v.type() != od::json_type::array) continue;
        bool first = true;
        for (od::value choice : v.get_array()) {
          choices = true;
          if (!first || choice.type() != od::json_type::object) continue;
          first = false;
          for (od::field cf : choice.get_object()) {
            const std::string_view ck = cf.unescaped_key();
            od::value cv = cf.value();
            if (ck == "text" && cv.type() == od::json_type::string) {
              out.text = cv.get_string();
            } else if (ck == "delta" && cv.type() == od::json_type::object) {
              for (od::field df : cv.get_object()) {
                od::value dv = df.value();
                if (df.unescaped_key() == std::string_view("content") &&
                    dv.type() == od::json_type::string) {
                  out.text = dv.get_string();
                }
              }
            }
          }
        }
      } else if (key == "usage") {
        if (v.type() != od::json_type::object) continue;
        for (od::field uf : v.get_object()) {
          const std::string_view uk = uf.unescaped_key();
          od::value uv = uf.value();
          if (uv.type() != od::json_type::number) continue;
          if (uk == "completion_tokens") out.completion_tokens = uv.get_int64();
          if (uk == "prompt_tokens") out.prompt_tokens = uv.get_int64();
        }
      } else if (key == "error") {
        if (v.type() == od::json_type::null) continue;
        out.kind = StreamChunk::Kind::kError;
        out.error = ErrorMessage(v);
      } else if (key == "object") {
        if (v.type() == od::json_type::string && std::string_view(v.get_string()) == "error") {
          is_error_object = true;
        }
      } else if (key == "message") {
        if (v.type() == od::json_type::string)
          message = std::string(std::string_view(v.get_string()));
      }
    }
    if (out.kind == StreamChunk::Kind::kError) return;
    if (is_error_object) {
      out.kind = StreamChunk::Kind::kError;
      out.error = message.empty() ? "error object without a message" : message;
      return;
    }
    out.kind = choices ? StreamChunk::Kind::kChoices : StreamChunk::Kind::kNoChoices;
  } catch (const simdjson::simdjson_error& e) {
    out = StreamChunk{};
    out.kind = StreamChunk::Kind::kInvalid;
    out.error = std::string("invalid JSON in stream chunk: ") + e.what();
  }
}

}  // namespace infergate::loadgen
