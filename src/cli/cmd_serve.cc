#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "cli/run_from_provider.h"
#include "gateway/gateway.h"
#include "gateway/replica_sync.h"
#include "kube/provider.h"

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

struct KubeFlags {
  bool in_cluster;
  std::string kubeconfig;
  std::string context;
  std::vector<std::string> namespaces;
  std::string controller_name;
  std::vector<std::string> status_addresses;
};

// serve --kubernetes / --kubeconfig: the first snapshot from the API server starts the
// gateway; later ones are applied as they come (and their status written back).
int ServeFromKubernetes(const KubeFlags& k, gateway::GatewayOptions o) {
  auto access =
      k.in_cluster ? kube::InClusterAccess() : kube::KubeconfigAccess(k.kubeconfig, k.context);
  if (!access.ok()) {
    std::fprintf(stderr, "infergate serve: %s\n", access.error().message.c_str());
    return kExitUsage;
  }
  kube::ProviderOptions po;
  po.access = *access;
  po.namespaces = k.namespaces;
  po.controller_name = k.controller_name;
  po.status_addresses = k.status_addresses;
  if (po.status_addresses.empty()) {
    if (const char* ip = std::getenv("POD_IP"); ip && *ip) po.status_addresses.push_back(ip);
  }
  auto provider = kube::KubernetesProvider::Create(po);
  if (!provider.ok()) {
    std::fprintf(stderr, "infergate serve: %s\n", provider.error().message.c_str());
    return kExitUsage;
  }
  o.reload_poll_interval = 0;
  gateway::Gateway gw(o);
  gw.HandleSignals();
  return RunFromProvider("serve", **provider, gw);
}

}  // namespace

// Every proxied stream holds two descriptors (client and upstream); the usual soft limit
// of 1024 would cap the gateway near 500 streams. Raise the soft limit to the hard one, and
// both to kWanted when the hard one is lower and the process may raise it
// (CAP_SYS_RESOURCE); say so when the limit stays low.
static void RaiseOpenFileLimit() {
  constexpr rlim_t kWanted = 65536;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t before = lim.rlim_cur;
  if (lim.rlim_max < kWanted) {
    const rlimit raised{kWanted, kWanted};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit soft = lim;
    soft.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &soft) == 0) lim = soft;
  }
  if (lim.rlim_cur < kWanted) {
    // The raise to the hard limit is said too: a soft limit of 1024 is the usual surprise.
    const std::string raised =
        lim.rlim_cur != before
            ? "raised from " + std::to_string(static_cast<unsigned long long>(before)) + "; "
            : "";
    spdlog::warn(
        "open-file limit is {} ({}hard limit {}): about {} concurrent streams at most; raise the "
        "hard limit (ulimit -Hn, LimitNOFILE=) to {} or more",
        static_cast<unsigned long long>(lim.rlim_cur), raised,
        static_cast<unsigned long long>(lim.rlim_max),
        static_cast<unsigned long long>(lim.rlim_cur / 2),
        static_cast<unsigned long long>(kWanted));
  } else if (lim.rlim_cur != before) {
    spdlog::info("open-file limit raised from {} to {}", static_cast<unsigned long long>(before),
                 static_cast<unsigned long long>(lim.rlim_cur));
  }
}

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
    double read_timeout_seconds = ToSeconds(gateway::GatewayOptions{}.request_read_timeout);
    double idle_timeout_seconds = ToSeconds(gateway::GatewayOptions{}.idle_timeout);
    std::string replica_sync;
    double replica_sync_flush_ms = ToMillis(gateway::GatewayOptions{}.replica_sync_flush);
    // Kubernetes mode.
    bool in_cluster = false;
    std::string kubeconfig;
    std::string kube_context;
    std::vector<std::string> namespaces;
    std::string controller_name = std::string(kube::kDefaultControllerName);
    std::vector<std::string> status_addresses;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = root.add_subcommand(
      "serve",
      "Run the gateway. Listeners come from the Gateway objects, routes from HTTPRoutes (and\n"
      "InferencePools' attach-to annotations), backends from Services and InferencePools,\n"
      "endpoints from Pods. SIGHUP or an edited file reloads the configuration (a bad one is\n"
      "rejected and the running one keeps serving); SIGTERM drains and exits 0.\n"
      "Prints 'listening <gateway>/<listener> <address>:<port>' per listener on stdout.");
  auto* filename = cmd->add_option("-f,--filename", flags->options.config_paths,
                                   "YAML file or directory of Kubernetes objects (repeatable)")
                       ->check(CLI::ExistingPath);
  auto* in_cluster =
      cmd->add_flag("--kubernetes", flags->in_cluster,
                    "Configuration from the Kubernetes API server, as the pod's service account");
  auto* kubeconfig = cmd->add_option(
      "--kubeconfig", flags->kubeconfig,
      "Configuration from the API server of this kubeconfig's current context (without -f "
      "and --kubernetes, $KUBECONFIG is used when set)");
  filename->excludes(in_cluster)->excludes(kubeconfig);
  in_cluster->excludes(kubeconfig);
  cmd->add_option("--context", flags->kube_context, "kubeconfig context (default: current)");
  cmd->add_option("--namespace", flags->namespaces,
                  "Kubernetes mode: watch only this namespace (repeatable; default: all)");
  cmd->add_option("--controller-name", flags->controller_name,
                  "Kubernetes mode: serve the Gateways whose GatewayClass names this controller")
      ->capture_default_str();
  cmd->add_option("--status-address", flags->status_addresses,
                  "Kubernetes mode: address written to Gateways' status.addresses (repeatable; "
                  "default: $POD_IP when set)");
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
                  "Seconds between checks of the config files for changes; a change is loaded once "
                  "it has held for one check (0: never)")
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", flags->options.max_header_bytes,
                  "Largest request header accepted (431 beyond)")
      ->capture_default_str();
  cmd->add_option("--read-timeout", flags->read_timeout_seconds,
                  "Seconds a client may take to send a request's head and body (408 beyond)")
      ->capture_default_str();
  cmd->add_option("--idle-timeout", flags->idle_timeout_seconds,
                  "Seconds a keep-alive connection may wait for its next request (it is closed "
                  "beyond; a head begun by then gets 408)")
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
  cmd->add_option("--replica-sync", flags->replica_sync,
                  "Share routing events with the gateway's other replicas over NATS: "
                  "nats://host:port[,url...] (per-pool subjects infergate.sync.<pool>)");
  cmd->add_option("--replica-sync-creds", flags->options.replica_sync_creds,
                  "NATS credentials file (JWT and seed) for --replica-sync");
  cmd->add_option("--replica-id", flags->options.replica_id,
                  "This replica's id among its peers (default: $HOSTNAME)");
  cmd->add_flag("!--no-replica-queue-order", flags->options.replica_queue_order,
                "With --replica-sync: let each replica release its queue on its own, without "
                "the pool-wide release order (to measure what the order gains)");
  cmd->add_option("--replica-sync-flush", flags->replica_sync_flush_ms,
                  "With --replica-sync: the longest (ms) a replica batches its routing events "
                  "before publishing them; the first event after a quiet interval goes at "
                  "once")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10000.0));
  cmd->add_option("--access-log", flags->options.access_log,
                  "Write one JSON line per request to this file ('-': stdout; default: off)");
  cmd->add_option("--access-log-sample", flags->options.access_log_sample,
                  "Share of requests the access log records, evenly spread (0..1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));

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
      o.request_read_timeout = FromSeconds(flags->read_timeout_seconds);
      o.idle_timeout = FromSeconds(flags->idle_timeout_seconds);
      o.replica_sync_flush = FromMillis(flags->replica_sync_flush_ms);
      RaiseOpenFileLimit();
      if (!flags->replica_sync.empty()) {
        auto urls = gateway::ParseNatsUrls(flags->replica_sync);
        if (!urls.ok()) {
          std::fprintf(stderr, "infergate serve: --replica-sync: %s\n",
                       urls.error().message.c_str());
          return kExitUsage;
        }
        o.replica_sync_urls = std::move(*urls);
      }
      const char* env_kubeconfig = std::getenv("KUBECONFIG");
      if (o.config_paths.empty() && !flags->in_cluster && flags->kubeconfig.empty()) {
        if (env_kubeconfig && *env_kubeconfig) {
          flags->kubeconfig = env_kubeconfig;
        } else {
          std::fprintf(stderr,
                       "infergate serve: give the configuration: -f FILE, --kubernetes or "
                       "--kubeconfig PATH\n");
          return kExitUsage;
        }
      }
      if (o.config_paths.empty()) {
        KubeFlags k{flags->in_cluster, flags->kubeconfig,      flags->kube_context,
                    flags->namespaces, flags->controller_name, flags->status_addresses};
        return ServeFromKubernetes(k, o);
      }
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
