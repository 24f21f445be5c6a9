#include "http/response_head.h"

#include <algorithm>
#include <cstring>

namespace infergate::http {

UpstreamResponseParser::UpstreamResponseParser() { fields_.reserve(16); }

void UpstreamResponseParser::on_response_impl(int code, beast::string_view reason, int version,
                                              boost::system::error_code&) {
  status_ = code;
  version_ = static_cast<unsigned>(version);
  reason_ = reason;
}

void UpstreamResponseParser::on_field_impl(bhttp::field id, beast::string_view name,
                                           beast::string_view value, boost::system::error_code&) {
  fields_.push_back({id, name, value});
}

void UpstreamResponseParser::on_header_impl(boost::system::error_code&) {
  // One copy of the head's bytes; the views move with it. Everything lies in the one
  // buffer Beast parsed (empty views may point anywhere, or nowhere: they stay empty).
  const char* begin = nullptr;
  const char* end = nullptr;
  const auto extend = [&](std::string_view v) {
    if (v.empty()) return;
    if (begin == nullptr || v.data() < begin) begin = v.data();
    if (end == nullptr || v.data() + v.size() > end) end = v.data() + v.size();
  };
  extend(reason_);
  for (const ResponseField& f : fields_) {
    extend(f.name_);
    extend(f.value_);
  }
  if (begin == nullptr) {
    text_.clear();
  } else {
    text_.assign(begin, static_cast<std::size_t>(end - begin));
  }
  const auto move = [&](std::string_view v) {
    if (v.empty()) return std::string_view();
    return std::string_view(text_.data() + (v.data() - begin), v.size());
  };
  reason_ = move(reason_);
  for (ResponseField& f : fields_) {
    f.name_ = move(f.name_);
    f.value_ = move(f.value_);
  }
}

std::size_t UpstreamResponseParser::TakeBody(std::string_view body, boost::system::error_code& ec) {
  if (body_string_ != nullptr) {
    body_string_->append(body);
    return body.size();
  }
  const std::size_t n = std::min(body.size(), body_room_);
  if (n > 0) {
    std::memcpy(body_data_, body.data(), n);
    body_data_ += n;
    body_room_ -= n;
  }
  if (n < body.size()) ec = bhttp::error::need_buffer;
  return n;
}

std::size_t UpstreamResponseParser::on_body_impl(beast::string_view body,
                                                 boost::system::error_code& ec) {
  return TakeBody(body, ec);
}

std::size_t UpstreamResponseParser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                                       boost::system::error_code& ec) {
  return TakeBody(body, ec);
}

}  // namespace infergate::http
