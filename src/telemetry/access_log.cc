#include "telemetry/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "telemetry/json_out.h"

namespace infergate::telemetry {

namespace {

std::atomic<std::uint64_t> g_instances{0};

// Writes all of `data`, retrying short writes and EINTR; false on error.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<AccessLog>> AccessLog::Open(AccessLogOptions options) {
  if (!(options.sample_rate >= 0.0 && options.sample_rate <= 1.0)) {
    return Error{"access log sample rate must be in [0, 1]"};
  }
  if (options.path.empty()) return Error{"access log path is empty"};
  int fd = STDOUT_FILENO;
  bool owns = false;
  if (options.path != "-") {
    fd = ::open(options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Error{"access log " + options.path + ": " + std::strerror(errno)};
    }
    owns = true;
  }
  return std::unique_ptr<AccessLog>(new AccessLog(fd, owns, std::move(options)));
}

AccessLog::AccessLog(int fd, bool owns_fd, AccessLogOptions options)
    : fd_(fd),
      owns_fd_(owns_fd),
      options_(std::move(options)),
      rate_(options_.sample_rate),
      instance_(g_instances.fetch_add(1) + 1) {
  writer_ = std::thread([this] { Run(); });
}

AccessLog::~AccessLog() {
  Close();
  if (owns_fd_) ::close(fd_);
}

AccessLog::Buffer& AccessLog::Local() {
  // One buffer per (thread, log): the instance number, not the address, tells logs apart.
  thread_local std::uint64_t owner = 0;
  thread_local Buffer* buffer = nullptr;
  if (owner != instance_) {
    auto b = std::make_unique<Buffer>();
    buffer = b.get();
    owner = instance_;
    std::lock_guard lock(buffers_mu_);
    buffers_.push_back(std::move(b));
  }
  return *buffer;
}

void AccessLog::Write(std::string_view line) {
  if (closed_.load(std::memory_order_relaxed)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Buffer& b = Local();
  std::lock_guard lock(b.mu);
  if (b.data.size() + line.size() + 1 > options_.max_buffer_bytes) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  b.data.append(line);
  b.data += '\n';
  ++b.lines;
}

void AccessLog::FlushAll() {
  std::vector<Buffer*> buffers;
  {
    std::lock_guard lock(buffers_mu_);
    for (auto& b : buffers_) buffers.push_back(b.get());
  }
  std::string out;
  for (Buffer* b : buffers) {
    std::uint64_t lines = 0;
    {
      std::lock_guard lock(b->mu);
      if (b->data.empty()) continue;
      out.swap(b->data);  // the thread keeps appending into the (empty) string we gave back
      lines = b->lines;
      b->lines = 0;
    }
    if (WriteAll(fd_, out)) {
      written_.fetch_add(lines, std::memory_order_relaxed);
    } else {
      dropped_.fetch_add(lines, std::memory_order_relaxed);
    }
    out.clear();
  }
}

void AccessLog::Run() {
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::nanoseconds(options_.flush_interval),
                      [this] { return stopping_; });
    lock.unlock();
    FlushAll();
    lock.lock();
  }
}

void AccessLog::Close() {
  if (closed_.exchange(true)) return;
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  FlushAll();
}

void AppendUtcMillis(std::string& out, std::int64_t unix_ms) {
  // Lines of one second share everything but the milliseconds: the calendar conversion
  // (gmtime_r takes glibc's time zone lock) runs once per second per thread.
  thread_local std::int64_t cached_second = INT64_MIN;
  thread_local char prefix[40];
  thread_local std::size_t prefix_length = 0;
  const std::int64_t second = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  if (second != cached_second) {
    const std::time_t secs = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const int n =
        std::snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    prefix_length = n > 0 ? static_cast<std::size_t>(n) : 0;
    cached_second = second;
  }
  const int ms = static_cast<int>(unix_ms - second * 1000);
  const char tail[4] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                        static_cast<char>('0' + ms % 10), 'Z'};
  out.append(prefix, prefix_length);
  out.append(tail, sizeof tail);
}

std::string FormatUtcMillis(std::int64_t unix_ms) {
  std::string out;
  AppendUtcMillis(out, unix_ms);
  return out;
}

}  // namespace infergate::telemetry
