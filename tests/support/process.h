// Test support: child processes with captured output, free loopback ports, and a small
// blocking HTTP client with timeouts. For integration tests only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace infergate::testing {

// A child process whose stdout (and optionally stderr) is captured line by line.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] with the arguments; stderr goes to the test's stderr unless
  // capture_stderr. Returns false if the program could not be started.
  bool Start(const std::vector<std::string>& argv, bool capture_stderr = false);
  // Reads stdout until a line containing `needle` arrives (returns it) or the timeout
  // passes / the process exits (returns nullopt). Lines read are kept in output().
  std::optional<std::string> WaitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);
  // Sends `sig`. Returns false if the process is gone.
  bool Signal(int sig);
  // Waits for exit up to `timeout`; returns the exit code (128+signal if killed), or
  // nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after a grace period; idempotent.
  void Stop();
  bool running() const { return pid_ > 0 && !exited_; }
  pid_t pid() const { return pid_; }
  // Everything read from the captured output so far.
  const std::string& output() const { return output_; }
  // Reads whatever output is available within `timeout` into output().
  void Drain(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string output_;
  std::string pending_;
  std::size_t scanned_ = 0;
};

// A loopback address of the form 127.a.b.c unique to this process and call, so parallel
// tests never share an address.
std::string UniqueLoopbackAddress();
// A port that is free on `address` now (bind to 0, read, close).
int FreePort(const std::string& address);

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;  // non-empty if the exchange failed
};

// One HTTP/1.1 request on a new connection; closes afterwards.
HttpResponse HttpRequest(const std::string& address, int port, const std::string& method,
                         const std::string& target, const std::string& body = "",
                         const std::map<std::string, std::string>& headers = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Sends raw bytes and reads until the peer closes or `timeout` passes.
std::string RawExchange(const std::string& address, int port, const std::string& bytes,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A connected blocking socket with timeouts; -1 on failure.
int ConnectTcp(const std::string& address, int port, std::chrono::milliseconds timeout);

// Path of a file in a fresh temporary directory removed at process exit.
std::string TempDir();

// The whole content of the file at `path` ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// What a finished command left: its exit code (-1 if killed or not started) and output.
struct CommandOutcome {
  int code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs argv (argv[0] a path) in directory `cwd` with stdout and stderr captured to files
// there; kills it with SIGKILL after `limit`. Blocks until it ends.
CommandOutcome RunCommand(const std::vector<std::string>& argv, const std::string& cwd,
                          std::chrono::seconds limit);

}  // namespace infergate::testing

namespace infergate::testing {

// Waits until address:port accepts TCP connections (or the timeout passes).
bool WaitForPort(const std::string& address, int port, std::chrono::milliseconds timeout);

// An nginx serving `server_blocks` (the inside of its http {} block) from a private prefix
// directory, started in the foreground; stopped when destroyed. Returns false from Start
// if nginx is missing or does not come up on `probe_address:probe_port`.
class Nginx {
 public:
  bool Start(const std::string& http_block, const std::string& probe_address, int probe_port);
  ChildProcess& process() { return process_; }
  std::string error_log() const;

 private:
  std::string prefix_;
  ChildProcess process_;
};

}  // namespace infergate::testing
