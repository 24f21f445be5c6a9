// ig_sse_test_server: the scripted SSE server as a process, for measuring `infergate bench`
// against known timings. Every request gets its first chunk --first-chunk-ms after it was
// read, then one token every --interval-ms, --tokens tokens (default: the request's
// max_tokens). Prints "port N" and serves until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/loadgen/sse_test_server.h"

int main(int argc, char** argv) {
  infergate::testing::StreamScript script;
  script.first_chunk_delay_s = 0.05;
  script.chunk_interval_s = 0.02;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const double v = std::atof(argv[i + 1]);
    if (flag == "--first-chunk-ms") {
      script.first_chunk_delay_s = v / 1000;
    } else if (flag == "--interval-ms") {
      script.chunk_interval_s = v / 1000;
    } else if (flag == "--tokens") {
      script.tokens = static_cast<int>(v);
    } else {
      std::fprintf(stderr, "usage: %s [--first-chunk-ms N] [--interval-ms N] [--tokens N]\n",
                   argv[0]);
      return 2;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server thread starts
  infergate::testing::ScriptedSseServer server(
      [script](const infergate::testing::ReceivedRequest&) { return script; });
  std::printf("port %u\n", server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
