#include "loadgen/request.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace infergate::loadgen {

Result<HttpTarget> MakeTarget(std::string_view base_url, std::string_view host, int port,
                              std::string_view endpoint) {
  if (endpoint.empty() || endpoint.front() != '/') {
    return Error{fmt::format("--endpoint must start with '/' (got '{}')", endpoint)};
  }
  HttpTarget t;
  std::string prefix;
  if (!base_url.empty()) {
    constexpr std::string_view kScheme = "http://";
    if (base_url.substr(0, 8) == "https://") {
      return Error{"--base-url: https is not supported; use http://"};
    }
    if (base_url.substr(0, kScheme.size()) != kScheme) {
      return Error{fmt::format("--base-url must start with http:// (got '{}')", base_url)};
    }
    std::string_view rest = base_url.substr(kScheme.size());
    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) prefix = std::string(rest.substr(slash));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (authority.empty()) return Error{"--base-url has no host"};
    t.host_header = std::string(authority);
    std::size_t colon = authority.rfind(':');
    if (!authority.empty() && authority.front() == '[') {  // [v6]:port
      const std::size_t close = authority.find(']');
      if (close == std::string_view::npos) return Error{"--base-url: unterminated IPv6 address"};
      t.host = std::string(authority.substr(1, close - 1));
      colon = close + 1 < authority.size() && authority[close + 1] == ':' ? close + 1
                                                                          : std::string_view::npos;
    } else {
      t.host = std::string(authority.substr(0, colon));
    }
    t.port = 80;
    if (colon != std::string_view::npos) {
      std::string_view ps = authority.substr(colon + 1);
      unsigned p = 0;
      const auto [ptr, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), p);
      if (ec != std::errc() || ptr != ps.data() + ps.size() || p == 0 || p > 65535) {
        return Error{fmt::format("--base-url: bad port '{}'", ps)};
      }
      t.port = static_cast<std::uint16_t>(p);
    }
  } else {
    if (host.empty()) return Error{"--host must not be empty"};
    if (port < 1 || port > 65535)
      return Error{fmt::format("--port must be 1..65535 (got {})", port)};
    t.host = std::string(host);
    t.port = static_cast<std::uint16_t>(port);
    const bool v6 = t.host.find(':') != std::string::npos;
    t.host_header = v6 ? fmt::format("[{}]:{}", t.host, port) : fmt::format("{}:{}", t.host, port);
  }
  t.path = prefix + std::string(endpoint);
  return t;
}

std::string RequestBody(ApiKind api, std::string_view model, const SampleRequest& request,
                        bool ignore_eos) {
  nlohmann::ordered_json j;
  j["model"] = model;
  if (api == ApiKind::kCompletions) {
    j["prompt"] = request.prompt;
  } else {
    auto messages = nlohmann::ordered_json::array();
    if (request.messages.empty()) {
      messages.push_back({{"role", "user"}, {"content", request.prompt}});
    } else {
      for (const ChatMessage& m : request.messages) {
        messages.push_back({{"role", m.role}, {"content", m.content}});
      }
    }
    j["messages"] = std::move(messages);
  }
  j["temperature"] = 0.0;
  j[api == ApiKind::kCompletions ? "max_tokens" : "max_completion_tokens"] =
      request.expected_output_len;
  j["stream"] = true;
  j["stream_options"] = {{"include_usage", true}};
  if (ignore_eos) j["ignore_eos"] = true;
  return j.dump();
}

}  // namespace infergate::loadgen
