// What routing sees of a parsed client request (routing::RequestView), built the same way
// by the gateway's session and by the request fuzz target.
//
// Thread-safety: the view borrows from the request and the getter; both must outlive it.
#pragma once

#include <optional>
#include <string_view>

#include "http/headers.h"
#include "routing/route_table.h"

namespace infergate::gateway {

// Case-insensitive header lookup over a parsed Beast request, for routing::HeaderLookup.
template <class Req>
struct RequestHeaderGetter {
  const Req* req;
  std::optional<std::string_view> operator()(std::string_view name) const {
    return http::FindField(*req, name);
  }
};

// The request's method, path (target up to '?'), query (after it), Host and headers.
template <class Req>
routing::RequestView MakeRequestView(const Req& req, const RequestHeaderGetter<Req>& header) {
  const std::string_view target = req.target();
  const auto qpos = target.find('?');
  routing::RequestView view;
  view.method = req.method_string();
  view.path = target.substr(0, qpos);
  view.query = qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1);
  view.host = http::FieldOr(req, bhttp::field::host);
  view.headers = routing::HeaderLookup(header);
  return view;
}

}  // namespace infergate::gateway
