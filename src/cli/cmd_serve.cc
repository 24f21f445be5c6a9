#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "gateway/gateway.h"

namespace infergate::cli {
namespace {

bool SplitHostPort(const std::string& s, std::string& host, int& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";  // ":9901": every IPv4 address (in a pod)
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    std::size_t used = 0;
    port = std::stoi(s.substr(colon + 1), &used);
    return used == s.size() - colon - 1 && port >= 0 && port <= 65535 && !host.empty();
  } catch (...) {
    return false;
  }
}

}  // namespace

void AddServeCommand(CLI::App& root, Runner& run) {
  struct Flags {
    gateway::GatewayOptions options;
    std::string admin = "127.0.0.1:9901";
    bool no_admin = false;
    double drain_seconds = 30;
    double grace_seconds = 0;
    double reload_seconds = 2;
    double scrape_seconds = 0.05;
    double redirect_seconds = ToSeconds(gateway::GatewayOptions{}.redirect_after);
    double scrape_timeout_seconds = 1;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = root.add_subcommand(
      "serve",
      "Run the gateway. Listeners come from the Gateway objects, routes from HTTPRoutes (and\n"
      "InferencePools' attach-to annotations), backends from Services and InferencePools,\n"
      "endpoints from Pods. SIGHUP or an edited file reloads the configuration (a bad one is\n"
      "rejected and the running one keeps serving); SIGTERM drains and exits 0.\n"
      "Prints 'listening <gateway>/<listener> <address>:<port>' per listener on stdout.");
  cmd->add_option("-f,--filename", flags->options.config_paths,
                  "YAML file or directory of Kubernetes objects (repeatable)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--workers", flags->options.workers, "Event loop threads (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--admin-address", flags->admin,
                  "Admin listener host:port (/metrics, /healthz, /readyz); port 0 picks one; "
                  "0.0.0.0:9901 or :9901 binds every address (in a pod, for probes and "
                  "Prometheus)")
      ->capture_default_str();
  cmd->add_flag("--no-admin", flags->no_admin, "Do not open the admin listener");
  cmd->add_option("--drain-timeout", flags->drain_seconds,
                  "Seconds requests in flight may take to finish after SIGTERM")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", flags->grace_seconds,
                  "Seconds the gateway keeps serving after SIGTERM with /readyz failing, so "
                  "load balancers and Service endpoints stop sending first; then the drain "
                  "(--drain-timeout) begins. In Kubernetes: at least the readiness probe's "
                  "period x failure threshold")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--reload-interval", flags->reload_seconds,
                  "Seconds between checks of the config files for changes (0: never)")
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", flags->options.max_header_bytes,
                  "Largest request header accepted (431 beyond)")
      ->capture_default_str();
  cmd->add_option("--max-attempts", flags->options.max_attempts,
                  "Endpoints tried for one request when connections fail")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));

  cmd->add_option("--scrape-interval", flags->scrape_seconds,
                  "Seconds between /metrics scrapes of each InferencePool endpoint")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 60.0));
  cmd->add_option("--scrape-timeout", flags->scrape_timeout_seconds,
                  "Seconds one scrape may take before it counts as failed")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 60.0));
  cmd->add_option("--session-header", flags->options.session_header,
                  "Request header whose value keeps a session on one pool endpoint")
      ->capture_default_str();
  cmd->add_flag("--flow-control,!--no-flow-control", flags->options.flow_control,
                "Gateway queue for InferencePool requests (late binding: priority bands, "
                "fairness by x-gateway-inference-fairness-id, FCFS, the route's timeout as "
                "TTL). On for pools with the infergate profile or annotation "
                "infergate.io/flow-control: \"true\"; --no-flow-control turns it off for all");
  cmd->add_option("--pipeline-parallel-size", flags->options.pipeline_parallel_size,
                  "The servers' vLLM V0 --pipeline-parallel-size, for pools without the "
                  "annotation infergate.io/pipeline-parallel-size: the infergate profile "
                  "mirrors vLLM's assignment of requests to pipeline stages (1: none)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--redirect-after", flags->redirect_seconds,
                  "Re-dispatch: seconds after which a streaming request with no first token "
                  "may be aborted at its endpoint and sent once to another, when the pool's "
                  "scheduler finds it stuck for KV space and another endpoint free (pools with "
                  "the gateway queue; 0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--max-mirrors-in-flight", flags->options.max_mirrors_in_flight,
                  "RequestMirror copies in flight per worker; more are dropped and counted")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));

  cmd->callback([&run, flags] {
    run = [flags]() -> int {
      auto& o = flags->options;
      if (flags->no_admin) {
        o.admin_port = -1;
      } else if (!SplitHostPort(flags->admin, o.admin_address, o.admin_port)) {
        std::fprintf(stderr, "infergate serve: --admin-address: expected host:port, got '%s'\n",
                     flags->admin.c_str());
        return kExitUsage;
      }
      o.drain_timeout = FromSeconds(flags->drain_seconds);
      o.shutdown_grace = FromSeconds(flags->grace_seconds);
      o.reload_poll_interval = FromSeconds(flags->reload_seconds);
      o.scrape_interval = FromSeconds(flags->scrape_seconds);
      o.scrape_timeout = FromSeconds(flags->scrape_timeout_seconds);
      o.redirect_after = FromSeconds(flags->redirect_seconds);
      gateway::Gateway gw(o);
      gw.HandleSignals();
      if (auto st = gw.Start(); !st.ok()) {
        std::fprintf(stderr, "infergate serve: %s\n", st.error().message.c_str());
        return st.error().message.rfind("listen:", 0) == 0 ? kExitRuntime : kExitUsage;
      }
      return gw.Wait();
    };
  });
}

}  // namespace infergate::cli
