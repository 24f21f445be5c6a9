// The life of a server fed by the Kubernetes provider, shared by `serve --kubernetes` and
// `epp --kubernetes`: the provider's first snapshot starts the server, later snapshots
// are applied to it, and the provider stops when the server's Wait returns.
// Server: Start(shared_ptr<const ConfigSnapshot>) -> Status, Apply(snapshot) -> Status,
// Wait() -> int. Thread-safety: call from the command's thread.
#pragma once

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "kube/provider.h"

namespace infergate::cli {

template <class Server>
int RunFromProvider(const char* command, kube::KubernetesProvider& provider, Server& server) {
  auto first = provider.Start();
  if (!first.ok()) {
    std::fprintf(stderr, "infergate %s: %s\n", command, first.error().message.c_str());
    provider.Stop();
    return kExitRuntime;
  }
  if (auto st = server.Start(*first); !st.ok()) {
    std::fprintf(stderr, "infergate %s: %s\n", command, st.error().message.c_str());
    provider.Stop();
    return st.error().message.rfind("listen:", 0) == 0 ? kExitRuntime : kExitUsage;
  }
  provider.Follow([&server](std::shared_ptr<const config::ConfigSnapshot> snapshot) {
    return server.Apply(std::move(snapshot));
  });
  const int code = server.Wait();
  provider.Stop();
  return code;
}

}  // namespace infergate::cli
