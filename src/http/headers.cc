#include "http/headers.h"

#include <string>
#include <vector>

namespace infergate::http {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

void StripHopByHop(bhttp::fields& fields) {
  // Fields named by Connection are hop-by-hop too (besides the tokens close/keep-alive).
  auto conn = fields.find(bhttp::field::connection);
  if (conn != fields.end()) {
    std::vector<std::string> named;
    for (auto token : bhttp::token_list(conn->value())) {
      named.emplace_back(token.data(), token.size());
    }
    for (const auto& name : named) {
      if (!IEquals(name, "close") && !IEquals(name, "keep-alive") &&
          !IEquals(name, "content-length") && !IEquals(name, "transfer-encoding")) {
        fields.erase(name);
      }
    }
    fields.erase(bhttp::field::connection);
  }
  fields.erase(bhttp::field::keep_alive);
  fields.erase(bhttp::field::proxy_connection);
  fields.erase(bhttp::field::proxy_authorization);
  fields.erase(bhttp::field::proxy_authenticate);
  fields.erase(bhttp::field::te);
  fields.erase(bhttp::field::trailer);
  fields.erase(bhttp::field::upgrade);
}

int EraseFieldsWithPrefix(bhttp::fields& fields, std::string_view prefix) {
  int n = 0;
  for (auto it = fields.begin(); it != fields.end();) {
    if (StartsWithNoCase(it->name_string(), prefix)) {
      it = fields.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace infergate::http
