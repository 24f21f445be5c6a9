// JSON string escaping for text the process writes itself (error bodies, access log lines,
// the live page's state): quotes, backslashes and control characters are escaped, and
// bytes that are not valid UTF-8 become U+FFFD, so whatever a client sent, the output
// parses.
// Thread-safety: reentrant.
#pragma once

#include <string>
#include <string_view>

namespace infergate {

// Appends `s` escaped for use inside a JSON string (without the quotes).
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace infergate
