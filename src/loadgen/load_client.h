// The HTTP load generator behind `infergate bench`: sends prepared requests at given
// times, reads the SSE streams and records what benchmark_serving records per request.
//
// One io_context on the calling thread runs a C++20 coroutine per request over a plain TCP
// socket (TCP_NODELAY). Each request takes a connection from an
// idle keep-alive pool or opens one; a response that ends cleanly with keep-alive returns
// its connection to the pool (a reused connection that fails before any response byte is
// retried once on a fresh one). A concurrency cap acts as benchmark_serving's semaphore:
// requests wait in arrival order for a free slot, and their send time is taken when they
// get one, right before the request is written (synchronously when the socket takes it
// whole). Arrival times are the kernel's receive timestamps (SO_TIMESTAMPNS) mapped onto
// std::chrono::steady_clock, so a busy event loop delays the processing of a chunk but
// not the time recorded for it (the read's own time when the kernel gives none); every
// event completed by one read gets that read's time. Reads go through recvmsg and feed
// Beast's HTTP/1.1 response parser (chunked, sized or close-delimited bodies).
//
// Measured times are multiplied by `time_scale` (a simulator running X times faster than
// the wall clock reports X · wall time as simulated time); send offsets and the timeout are
// given in the same simulated seconds and divided by it.
//
// Thread-safety: RunLoad blocks the calling thread and uses no other threads; separate
// calls are independent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "loadgen/request.h"
#include "loadgen/result.h"

namespace infergate::loadgen {

struct PreparedRequest {
  std::string body;    // JSON body (RequestBody)
  int prompt_len = 0;  // the dataset's count, used when the server reports no usage
};

struct LoadProgress {
  int done = 0;
  int failed = 0;
  int total = 0;
  double elapsed_s = 0;  // wall seconds since the first send
};

struct LoadOptions {
  HttpTarget target;
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::optional<int> max_concurrency;                        // none = unlimited
  double timeout_s = 0;     // per request, simulated seconds; 0 = no limit
  double time_scale = 1.0;  // > 0
  bool keep_text = true;    // keep generated text in the outcomes
  // Called on the loop's thread every progress_interval_s and once at the end.
  std::function<void(const LoadProgress&)> on_progress;
  double progress_interval_s = 0.1;
};

struct LoadRun {
  std::vector<RequestOutcome> outcomes;  // one per request, in the order given
  double duration_s = 0;                 // first send → last completion (simulated s)
  // steady_clock time (ns since its epoch) that send_time 0 stands for, to correlate the
  // outcomes with a server's own timestamps.
  std::int64_t start_steady_ns = 0;
};

// Sends requests[i] at send_offsets_s[i] (simulated seconds from the start; requires equal
// sizes and non-decreasing offsets). Request failures are recorded in the outcomes; an
// error is returned only when the target's host cannot be resolved.
Result<LoadRun> RunLoad(const LoadOptions& options, std::span<const PreparedRequest> requests,
                        std::span<const double> send_offsets_s);

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
long RaiseOpenFileLimit();

}  // namespace infergate::loadgen
