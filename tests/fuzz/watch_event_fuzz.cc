// libFuzzer target for the Kubernetes watch-stream decoder (kube/watch_event.h): the
// bytes an API server (or anything that answers in its place) streams to a watch.
//
// The first byte chooses where the rest is cut in two (chunk boundaries fall anywhere);
// both halves go through one splitter, and every JSON text it yields through
// ParseWatchEvent. Invariants (a violation aborts): the splitter yields the same events
// whatever the cut; each event text starts with '{'; a decoded event of a known type has
// an object map; ERROR codes stay in 0..999; nothing throws.
// The same entry point runs every seed in a unit test (watch_event_corpus_test.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kube/watch_event.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

// Splits data with a cut after `cut` bytes; returns the texts and whether it failed.
std::vector<std::string> Split(std::string_view data, std::size_t cut, bool* failed) {
  infergate::kube::WatchStreamSplitter splitter(1 << 20);
  std::vector<std::string> out;
  *failed =
      !splitter.Feed(data.substr(0, cut), &out).ok() || !splitter.Feed(data.substr(cut), &out).ok();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t cut = body.empty() ? 0 : data[0] % (body.size() + 1);
  bool failed_whole = false, failed_cut = false;
  auto whole = Split(body, body.size(), &failed_whole);
  auto pieces = Split(body, cut, &failed_cut);
  Require(failed_whole == failed_cut);
  Require(whole == pieces);
  for (const auto& text : whole) {
    Require(!text.empty() && text.front() == '{');
    auto ev = infergate::kube::ParseWatchEvent(text);
    if (!ev.ok()) continue;
    Require(ev->object.is_object());
    Require(ev->error_code >= 0 && ev->error_code < 1000);
  }
  return 0;
}
