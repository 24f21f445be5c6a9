// The access log's writer: JSON lines appended by request-path threads, written to a file
// or stdout by a writer thread, so no request ever waits for the disk.
//
// Each thread appends to its own buffer (a mutex only that thread and the writer take, so
// it is uncontended but for the flush instant); the writer swaps the buffers out every
// flush interval and writes them with one write(2) each. A buffer that grew past its limit
// (the disk cannot keep up) drops lines and counts them rather than blocking or growing.
// Sampling is exact and deterministic: of every n requests, round(n x rate) are logged,
// spread evenly.
//
// Thread-safety: Sample, Write and the counters are safe from any thread; Close (also run
// by the destructor) flushes what was written before it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace infergate::telemetry {

struct AccessLogOptions {
  std::string path;          // a file (appended to) or "-" for stdout
  double sample_rate = 1.0;  // in [0, 1]
  TimeNs flush_interval = kNanosPerSecond / 5;
  std::size_t max_buffer_bytes = 8 << 20;  // per thread
};

class AccessLog {
 public:
  // Opens the file (creating it) or takes stdout; errors name the path.
  static Result<std::unique_ptr<AccessLog>> Open(AccessLogOptions options);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Whether the request being handled now is logged (call once per request).
  bool Sample() {
    if (rate_ >= 1.0) return true;
    if (rate_ <= 0.0) return false;
    const std::uint64_t n = seen_.fetch_add(1, std::memory_order_relaxed);
    return static_cast<std::uint64_t>(static_cast<double>(n + 1) * rate_) !=
           static_cast<std::uint64_t>(static_cast<double>(n) * rate_);
  }
  // Appends one line (a newline is added).
  void Write(std::string_view line);
  // Writes everything buffered now and stops the writer; later Writes are dropped.
  void Close();

  std::uint64_t lines_written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t lines_dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Buffer {
    std::mutex mu;
    std::string data;
    std::uint64_t lines = 0;
  };
  AccessLog(int fd, bool owns_fd, AccessLogOptions options);
  Buffer& Local();
  void Run();
  void FlushAll();

  const int fd_;
  const bool owns_fd_;
  const AccessLogOptions options_;
  const double rate_;
  const std::uint64_t instance_;
  std::atomic<std::uint64_t> seen_{0}, written_{0}, dropped_{0};
  std::mutex buffers_mu_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::atomic<bool> closed_{false};
  std::thread writer_;
};

// "2026-12-07T04:10:11.123Z" for a Unix time in milliseconds.
std::string FormatUtcMillis(std::int64_t unix_ms);

}  // namespace infergate::telemetry
