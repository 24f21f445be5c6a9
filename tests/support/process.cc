#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace infergate::testing {

ChildProcess::~ChildProcess() {
  Stop();
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool ChildProcess::Start(const std::vector<std::string>& argv, bool capture_stderr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::dup2(fds[1], 1);
    if (capture_stderr) ::dup2(fds[1], 2);
    ::setpgid(0, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  out_fd_ = fds[0];
  ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  pid_ = pid;
  exited_ = false;
  return true;
}

void ChildProcess::Drain(std::chrono::milliseconds timeout) {
  if (out_fd_ < 0) return;
  pollfd p{out_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) break;
    output_.append(buf, n);
  }
}

std::optional<std::string> ChildProcess::WaitForLine(const std::string& needle,
                                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Look at complete lines not yet scanned.
    for (;;) {
      auto nl = output_.find('\n', scanned_);
      if (nl == std::string::npos) break;
      std::string line = output_.substr(scanned_, nl - scanned_);
      scanned_ = nl + 1;
      if (line.find(needle) != std::string::npos) return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (out_fd_ < 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    if (r > 0) {
      char buf[4096];
      ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n > 0) {
        output_.append(buf, n);
      } else if (n == 0) {
        ::close(out_fd_);
        out_fd_ = -1;
      }
    }
  }
}

bool ChildProcess::Signal(int sig) {
  if (pid_ <= 0 || exited_) return false;
  return ::kill(pid_, sig) == 0;
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (exited_) return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = st;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    Drain(std::chrono::milliseconds(10));
  }
}

void ChildProcess::Stop() {
  if (pid_ <= 0 || exited_) return;
  ::kill(pid_, SIGTERM);
  if (!Wait(std::chrono::seconds(5))) {
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(5));
  }
}

std::string UniqueLoopbackAddress() {
  static std::atomic<int> counter{0};
  static const unsigned seed = std::random_device{}() ^ static_cast<unsigned>(::getpid());
  unsigned v = seed + static_cast<unsigned>(counter.fetch_add(1)) * 7919u;
  int a = 1 + static_cast<int>((v >> 16) % 250);
  int b = static_cast<int>((v >> 8) % 256);
  int c = 2 + static_cast<int>(v % 250);
  return "127." + std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c);
}

int FreePort(const std::string& address) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  sa.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

int ConnectTcp(const std::string& address, int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string RawExchange(const std::string& address, int port, const std::string& bytes,
                        std::chrono::milliseconds timeout) {
  int fd = ConnectTcp(address, port, timeout);
  if (fd < 0) return "";
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, n);
  }
  ::close(fd);
  return out;
}

namespace {
std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses a complete HTTP/1.1 response (Content-Length, chunked or close-delimited).
bool ParseResponse(const std::string& raw, bool closed, HttpResponse& r) {
  auto hend = raw.find("\r\n\r\n");
  if (hend == std::string::npos) return false;
  std::string head = raw.substr(0, hend);
  std::size_t pos = head.find("\r\n");
  std::string status_line = head.substr(0, pos);
  if (status_line.size() < 12) return false;
  r.status = std::atoi(status_line.c_str() + 9);
  r.headers.clear();
  while (pos != std::string::npos) {
    std::size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(v.begin());
      r.headers[Lower(line.substr(0, colon))] = v;
    }
    pos = next;
  }
  std::string rest = raw.substr(hend + 4);
  if (r.headers.count("content-length")) {
    std::size_t len = std::stoul(r.headers["content-length"]);
    if (rest.size() < len) return false;
    r.body = rest.substr(0, len);
    return true;
  }
  if (Lower(r.headers["transfer-encoding"]).find("chunked") != std::string::npos) {
    std::string body;
    std::size_t p = 0;
    for (;;) {
      auto le = rest.find("\r\n", p);
      if (le == std::string::npos) return false;
      std::size_t n = std::stoul(rest.substr(p, le - p), nullptr, 16);
      if (n == 0) {
        r.body = body;
        return rest.find("\r\n", le + 2) != std::string::npos;
      }
      if (rest.size() < le + 2 + n + 2) return false;
      body += rest.substr(le + 2, n);
      p = le + 2 + n + 2;
    }
  }
  if (r.status == 204 || r.status == 304) return true;
  if (!closed) return false;
  r.body = rest;
  return true;
}
}  // namespace

HttpResponse HttpRequest(const std::string& address, int port, const std::string& method,
                         const std::string& target, const std::string& body,
                         const std::map<std::string, std::string>& headers,
                         std::chrono::milliseconds timeout) {
  HttpResponse r;
  int fd = ConnectTcp(address, port, timeout);
  if (fd < 0) {
    r.error = "connect failed";
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + address + "\r\n";
  bool has_ct = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (Lower(k) == "content-type") has_ct = true;
  }
  if (!body.empty() || method == "POST") {
    if (!has_ct) req += "Content-Type: application/json\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    r.error = "send failed";
    ::close(fd);
    return r;
  }
  std::string raw;
  char buf[16384];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool closed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ParseResponse(raw, false, r)) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      closed = true;
      break;
    }
    if (n < 0) {
      r.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
    raw.append(buf, n);
  }
  ::close(fd);
  if (r.status == 0 || (closed && !ParseResponse(raw, true, r))) {
    if (r.error.empty()) r.error = "incomplete response: " + raw.substr(0, 200);
  }
  return r;
}

std::string TempDir() {
  // Every directory made here is removed when the test process exits.
  static std::vector<std::string> dirs;
  static const bool registered = [] {
    std::atexit([] {
      for (const auto& p : dirs) {
        std::error_code ec;
        std::filesystem::remove_all(p, ec);
      }
    });
    return true;
  }();
  (void)registered;
  char tmpl[] = "/tmp/infergate-test-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  std::string path = d ? d : "/tmp";
  dirs.push_back(path);
  return path;
}

}  // namespace infergate::testing

namespace infergate::testing {

bool WaitForPort(const std::string& address, int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ConnectTcp(address, port, std::chrono::milliseconds(200));
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool Nginx::Start(const std::string& http_block, const std::string& probe_address, int probe_port) {
  prefix_ = TempDir();
  std::string conf = prefix_ + "/nginx.conf";
  FILE* f = std::fopen(conf.c_str(), "w");
  if (!f) return false;
  std::fprintf(f,
               "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\n"
               "error_log %s/error.log warn;\n"
               "events { worker_connections 4096; }\n"
               "http {\n  access_log off;\n  client_body_temp_path %s/body;\n"
               "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fastcgi;\n"
               "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n%s\n}\n",
               prefix_.c_str(), prefix_.c_str(), prefix_.c_str(), prefix_.c_str(), prefix_.c_str(),
               prefix_.c_str(), prefix_.c_str(), http_block.c_str());
  std::fclose(f);
  if (!process_.Start(
          {"/usr/sbin/nginx", "-p", prefix_, "-c", conf, "-e", prefix_ + "/error.log"})) {
    return false;
  }
  return WaitForPort(probe_address, probe_port, std::chrono::seconds(10));
}

std::string Nginx::error_log() const {
  std::string out;
  FILE* f = std::fopen((prefix_ + "/error.log").c_str(), "r");
  if (!f) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandOutcome RunCommand(const std::vector<std::string>& argv, const std::string& cwd,
                          std::chrono::seconds limit) {
  CommandOutcome r;
  const std::string out = cwd + "/.stdout", err = cwd + "/.stderr";
  std::vector<std::string> args = argv;
  const pid_t pid = ::fork();
  if (pid < 0) return r;
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || ::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> cargv;
    for (std::string& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.code = !r.timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

}  // namespace infergate::testing
