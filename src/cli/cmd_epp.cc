#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "cli/commands.h"
#include "cli/run_from_provider.h"
#include "extproc/server.h"
#include "kube/provider.h"

namespace infergate::cli {
namespace {

bool SplitAddress(const std::string& s, std::string& host, int& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
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

// The Kubernetes kinds the endpoint picker's pool needs (not Gateways, routes, Services,
// Secrets: the gateway in front owns those), so its RBAC stays as narrow as GIE's EPP's.
const std::set<std::string> kEppKinds = {"Pod", "InferencePool", "InferenceObjective",
                                         "InferenceModelRewrite", "InferenceModel"};

// epp --kubernetes / --kubeconfig: the pool named by flags, fed from the API server of its
// namespace; later snapshots (pods coming, going, turning unready) are applied as they come.
int EppFromKubernetes(extproc::EppOptions o, bool in_cluster, const std::string& kubeconfig,
                      const std::string& context, std::string pool_namespace) {
  auto access = in_cluster ? kube::InClusterAccess() : kube::KubeconfigAccess(kubeconfig, context);
  if (!access.ok()) {
    std::fprintf(stderr, "infergate epp: %s\n", access.error().message.c_str());
    return kExitUsage;
  }
  if (pool_namespace.empty()) pool_namespace = access->default_namespace;
  std::string name = o.pool;
  if (auto slash = name.find('/'); slash != std::string::npos) {
    pool_namespace = name.substr(0, slash);
    name = name.substr(slash + 1);
  }
  if (name.empty()) {
    std::fprintf(stderr, "infergate epp: name the InferencePool with --pool-name\n");
    return kExitUsage;
  }
  o.pool = pool_namespace + "/" + name;
  kube::ProviderOptions po;
  po.access = *access;
  po.namespaces = {pool_namespace};
  po.kinds = kEppKinds;
  po.write_status = false;  // the gateway in front writes the pool's status
  auto provider = kube::KubernetesProvider::Create(po);
  if (!provider.ok()) {
    std::fprintf(stderr, "infergate epp: %s\n", provider.error().message.c_str());
    return kExitUsage;
  }
  o.gateway.config_paths.clear();
  o.gateway.reload_poll_interval = 0;
  extproc::EndpointPicker epp(o);
  epp.HandleSignals();
  return RunFromProvider("epp", **provider, epp);
}

}  // namespace

void AddEppCommand(CLI::App& root, Runner& run) {
  struct Flags {
    extproc::EppOptions options;
    std::string metrics = "0.0.0.0:9090";
    std::string pool_name;
    std::string pool_namespace;
    double drain_seconds = 30;
    double reload_seconds = 2;
    double scrape_seconds = 0.05;
    double scrape_timeout_seconds = 1;
    double queue_timeout_seconds = 0;
    double grace_seconds = 0;
    bool in_cluster = false;
    std::string kubeconfig;
    std::string kube_context;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = root.add_subcommand(
      "epp",
      "Run as an endpoint picker behind an Envoy-based gateway: Envoy's ext_proc\n"
      "(envoy.service.ext_proc.v3.ExternalProcessor, GIE's endpoint-picker protocol) on\n"
      "--grpc-port, gRPC health on --grpc-health-port, Prometheus metrics on --metrics-address,\n"
      "for the InferencePool in the configuration files, with serve's scheduling, queue and\n"
      "flow control. Prints 'ext_proc <address>:<port>', 'health ...' and 'admin ...'.");
  auto* filename = cmd->add_option("-f,--filename", flags->options.gateway.config_paths,
                                   "YAML file or directory of Kubernetes objects (repeatable)")
                       ->check(CLI::ExistingPath);
  auto* in_cluster =
      cmd->add_flag("--kubernetes", flags->in_cluster,
                    "The pool from the Kubernetes API server, as the pod's service account (with "
                    "--pool-name and --pool-namespace, as GIE's EPP)");
  auto* kubeconfig =
      cmd->add_option("--kubeconfig", flags->kubeconfig,
                      "The pool from the API server of this kubeconfig's current context");
  filename->excludes(in_cluster)->excludes(kubeconfig);
  in_cluster->excludes(kubeconfig);
  cmd->add_option("--context", flags->kube_context, "kubeconfig context (default: current)");
  cmd->add_option("--pool", flags->options.pool,
                  "The InferencePool to serve (name or namespace/name) when there are several");
  cmd->add_option("--pool-name", flags->pool_name,
                  "As GIE's EPP: the InferencePool's name (same as --pool)");
  cmd->add_option("--pool-namespace", flags->pool_namespace,
                  "As GIE's EPP: the InferencePool's namespace (Kubernetes mode: the only one "
                  "watched; default: the service account's or the kubeconfig context's)");
  cmd->add_option("--grpc-address", flags->options.grpc_address,
                  "Address of the ext_proc and health listeners")
      ->capture_default_str();
  cmd->add_option("--grpc-port", flags->options.grpc_port, "ext_proc port (0 picks one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--grpc-health-port", flags->options.health_port,
                  "gRPC health port (0 picks one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--metrics-address", flags->metrics,
                  "Metrics (admin) listener host:port (/metrics, /healthz, /readyz)")
      ->capture_default_str();
  cmd->add_option("--workers", flags->options.gateway.workers,
                  "Event loop threads for scraping and queued requests (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--drain-timeout", flags->drain_seconds,
                  "Seconds open streams may take to finish after SIGTERM")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", flags->grace_seconds,
                  "Seconds after SIGTERM during which gRPC readiness fails but streams are "
                  "still served, before the drain (--drain-timeout) begins")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--reload-interval", flags->reload_seconds,
                  "Seconds between checks of the config files for changes; a change is loaded once "
                  "it has held for one check (0: never)")
      ->capture_default_str();
  cmd->add_option("--scrape-interval", flags->scrape_seconds,
                  "Seconds between /metrics scrapes of each InferencePool endpoint")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 60.0));
  cmd->add_option("--scrape-timeout", flags->scrape_timeout_seconds,
                  "Seconds one scrape may take before it counts as failed")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 60.0));
  cmd->add_option("--queue-timeout", flags->queue_timeout_seconds,
                  "Seconds a request may wait in the pool's queue (0: until its stream ends)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--session-header", flags->options.picker.session_header,
                  "Request header whose value keeps a session on one pool endpoint")
      ->capture_default_str();
  cmd->add_flag("--flow-control,!--no-flow-control", flags->options.picker.flow_control,
                "Hold requests in the pool's queue (late binding) as serve does");
  cmd->add_option("--max-body-bytes", flags->options.session.max_body_bytes,
                  "Largest request body accepted (413 beyond)")
      ->capture_default_str();

  cmd->callback([&run, flags] {
    run = [flags]() -> int {
      auto& o = flags->options;
      auto& g = o.gateway;
      g.bind_listeners = false;
      if (!SplitAddress(flags->metrics, g.admin_address, g.admin_port)) {
        std::fprintf(stderr, "infergate epp: --metrics-address: expected host:port, got '%s'\n",
                     flags->metrics.c_str());
        return kExitUsage;
      }
      if (!flags->pool_name.empty()) {
        if (!o.pool.empty() && o.pool != flags->pool_name) {
          std::fprintf(stderr, "infergate epp: --pool and --pool-name disagree\n");
          return kExitUsage;
        }
        o.pool = flags->pool_namespace.empty() ? flags->pool_name
                                               : flags->pool_namespace + "/" + flags->pool_name;
      }
      g.drain_timeout = FromSeconds(flags->drain_seconds);
      g.shutdown_grace = FromSeconds(flags->grace_seconds);
      g.reload_poll_interval = FromSeconds(flags->reload_seconds);
      g.scrape_interval = FromSeconds(flags->scrape_seconds);
      g.scrape_timeout = FromSeconds(flags->scrape_timeout_seconds);
      o.picker.queue_timeout = FromSeconds(flags->queue_timeout_seconds);
      if (flags->in_cluster || !flags->kubeconfig.empty()) {
        return EppFromKubernetes(o, flags->in_cluster, flags->kubeconfig, flags->kube_context,
                                 flags->pool_namespace);
      }
      if (g.config_paths.empty()) {
        std::fprintf(stderr,
                     "infergate epp: give the configuration: -f FILE, --kubernetes or "
                     "--kubeconfig PATH\n");
        return kExitUsage;
      }
      extproc::EndpointPicker epp(o);
      epp.HandleSignals();
      if (auto st = epp.Start(); !st.ok()) {
        std::fprintf(stderr, "infergate epp: %s\n", st.error().message.c_str());
        return st.error().message.rfind("listen:", 0) == 0 ? kExitRuntime : kExitUsage;
      }
      return epp.Wait();
    };
  });
}

}  // namespace infergate::cli
