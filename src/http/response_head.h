// An upstream response, parsed for relaying: Beast's HTTP/1.1 parser with the head kept
// as a flat list of fields and the body delivered into the caller's buffer.
//
// bhttp::response_parser<buffer_body> stores the head in basic_fields: one allocation per
// field and an insert into an ordered, case-insensitive multiset, only for the proxy to
// walk the fields once when it writes the head on (http/wire.h). That was ~7% of the
// instructions of a proxied request. UpstreamResponseParser derives from the same
// bhttp::basic_parser (so framing, limits and errors are Beast's), keeps the reason and
// fields as views into one copy of the head's bytes (taken when the head is complete), and
// hands body bytes to a buffer the caller sets before each read, as buffer_body does
// (error::need_buffer when it is full), or appends them to a string (a whole body read
// for rewriting).
//
// Thread-safety: none; one parser per response, used on one loop.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/beast.h"

namespace infergate::http {

// One field, with the accessors of Beast's basic_fields elements (name(), name_string(),
// value()), so the same helpers (http/headers.h, http/wire.h) read both.
class ResponseField {
 public:
  ResponseField(bhttp::field id, std::string_view name, std::string_view value)
      : id_(id), name_(name), value_(value) {}
  // bhttp::field::unknown for names Beast does not know.
  bhttp::field name() const { return id_; }
  std::string_view name_string() const { return name_; }
  std::string_view value() const { return value_; }

 private:
  friend class UpstreamResponseParser;  // moves the views into its own copy
  bhttp::field id_;
  std::string_view name_;
  std::string_view value_;
};

// A parsed response head; views into the parser that produced it.
struct ResponseHead {
  int status = 0;
  std::string_view reason;
  unsigned version = 11;  // 10 or 11
  std::span<const ResponseField> fields;
};

class UpstreamResponseParser final : public bhttp::basic_parser<false> {
 public:
  UpstreamResponseParser();

  // The head; valid once is_header_done().
  ResponseHead head() const {
    return {status_, reason_, version_, std::span<const ResponseField>(fields_)};
  }

  // Body bytes go to [data, data + size) from the next put() on; body_room() is what is
  // left of it. Without a buffer (or when it is full) put() stops with need_buffer.
  void set_body_buffer(char* data, std::size_t size) {
    body_data_ = data;
    body_room_ = size;
    body_string_ = nullptr;
  }
  std::size_t body_room() const { return body_room_; }
  // Body bytes are appended to *out instead (until set_body_buffer()).
  void set_body_string(std::string* out) { body_string_ = out; }

 private:
  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int,
                       boost::system::error_code&) override {}
  void on_response_impl(int code, beast::string_view reason, int version,
                        boost::system::error_code& ec) override;
  void on_field_impl(bhttp::field id, beast::string_view name, beast::string_view value,
                     boost::system::error_code& ec) override;
  void on_header_impl(boost::system::error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>&,
                         boost::system::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, boost::system::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, beast::string_view,
                            boost::system::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 boost::system::error_code& ec) override;
  void on_finish_impl(boost::system::error_code&) override {}

  std::size_t TakeBody(std::string_view body, boost::system::error_code& ec);

  int status_ = 0;
  unsigned version_ = 11;
  // Beast parses a head in one put() over one contiguous buffer, the status line's reason
  // first: while it runs, the views point into that buffer, and once the head is complete
  // on_header_impl copies its bytes (from the reason to the end of the last field) into
  // text_ at once and re-points the views there.
  std::string_view reason_;
  std::vector<ResponseField> fields_;
  std::string text_;
  char* body_data_ = nullptr;
  std::size_t body_room_ = 0;
  std::string* body_string_ = nullptr;
};

}  // namespace infergate::http
