#include "gateway/runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "http/openai_error.h"

namespace infergate::gateway {

std::size_t BackendRuntime::RoundRobin(std::span<http::UpstreamCandidate> out) const {
  const std::size_t size = endpoints.size();
  if (size == 0 || out.empty()) return 0;
  const std::size_t start = next.fetch_add(1, std::memory_order_relaxed) % size;
  const std::size_t count = std::min(size, out.size());
  for (std::size_t i = 0; i < count; ++i) out[i] = endpoints[(start + i) % size];
  return count;
}

const http::UpstreamCandidate* BackendRuntime::FindEndpoint(std::string_view id) const {
  for (const auto& c : endpoints) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

namespace {
// OpenAI's model list for the InferenceModels of `pools`.
}  // namespace

std::string ModelsJson(
    const std::vector<const config::Backend*>& pools,
    const std::function<std::vector<std::string>(const config::Backend*)>& served) {
  std::string out = R"({"object":"list","data":[)";
  std::vector<std::string> seen;
  auto add = [&](std::string_view id, const config::Backend& pool) {
    if (id.empty() || std::find(seen.begin(), seen.end(), id) != seen.end()) return;
    if (!seen.empty()) out += ',';
    seen.emplace_back(id);
    out += R"({"id":")";
    http::AppendJsonEscaped(out, id);
    out += R"(","object":"model","created":0,"owned_by":")";
    http::AppendJsonEscaped(out, pool.id);
    out += R"("})";
  };
  for (const auto* pool : pools) {
    for (const auto& m : pool->pool.models) add(m.model_name, *pool);
    for (const auto& r : pool->pool.rewrites) {
      for (const auto& m : r.models) add(m, *pool);
    }
    if (served) {
      for (const auto& m : served(pool)) add(m, *pool);
    }
  }
  out += "]}";
  return out;
}

Result<std::shared_ptr<Runtime>> Runtime::Build(
    std::shared_ptr<const config::ConfigSnapshot> snapshot) {
  auto rt = std::shared_ptr<Runtime>(new Runtime());
  rt->snapshot_ = std::move(snapshot);
  auto add_backend = [&](const std::shared_ptr<const config::Backend>& b) -> Status {
    if (!b || rt->backends_.count(b.get())) return Ok();
    auto br = std::make_unique<BackendRuntime>();
    br->backend = b;
    for (const auto& ep : b->endpoints) {
      if (!ep.ready) continue;
      boost::system::error_code ec;
      auto addr = asio::ip::make_address(ep.ip, ec);
      if (ec) return Error{"endpoint " + ep.id + " of " + b->id + ": bad address"};
      br->endpoints.push_back({tcp::endpoint(addr, ep.port), ep.id});
    }
    rt->backends_.emplace(b.get(), std::move(br));
    return Ok();
  };
  // HTTPS listeners' sites, grouped by the port they share.
  std::map<std::string, std::vector<http::TlsSite>> tls_sites;
  for (const auto& gw : rt->snapshot_->gateways) {
    for (const auto& l : gw.listeners) {
      if (!l.not_served.empty()) continue;  // reported by the configuration's load
      auto lr = std::make_unique<ListenerRuntime>();
      lr->listener = &l;
      lr->key = gw.id + "/" + l.name;
      const bool https = l.protocol == "HTTPS";
      if (https && l.certificates.empty()) continue;  // never resolved so (checked there)
      if (https) {
        // Every certificate of the listener: SNI picks the one whose names match, the
        // first is the default (http/tls_server.h). A certificate that does not load
        // leaves this listener out rather than failing the configuration.
        http::TlsSite site{l.hostname, {}};
        for (const config::TlsCertificate& cert : l.certificates) {
          site.certificates.push_back({cert.cert_pem, cert.key_pem, cert.secret});
        }
        if (auto ok = http::TlsServerContext::Build({site}); !ok.ok()) {
          spdlog::warn("listener {} is not served: {}", lr->key, ok.error().message);
          continue;
        }
        tls_sites[TlsPortKey(*lr)].push_back(std::move(site));
        rt->tls_ports_[TlsPortKey(*lr)].listener_keys.push_back(lr->key);
      }
      // Per-rule state is keyed by the route table's own copies of the rules (what Match
      // returns), not by the snapshot's.
      lr->routes = routing::RouteTable(l.rules);
      for (const auto& route : lr->routes.routes()) {
        const auto& rule = route->rule();
        RuleEdits& e = rt->edits_[&rule];
        if (const auto* mod = route->request_header_modifier()) {
          for (const auto& h : mod->set) e.set.push_back({h.name, h.value});
          for (const auto& h : mod->add) e.add.push_back({h.name, h.value});
          e.remove = mod->remove;
        }
        e.set.push_back({"X-Forwarded-Proto", https ? "https" : "http"});
        if (const auto& mod = rule.response_header_modifier) {
          for (const auto& h : mod->set) e.response_set.push_back({h.name, h.value});
          for (const auto& h : mod->add) e.response_add.push_back({h.name, h.value});
          e.response_remove = mod->remove;
        }
        for (const auto& m : route->mirrors()) {
          rt->mirror_counters_[&m] = std::make_unique<std::atomic<std::uint64_t>>(0);
        }
      }
      std::vector<const config::Backend*> listener_pools;
      for (const auto& rule : l.rules) {
        for (const auto& wb : rule.backends) {
          if (wb.backend && wb.backend->kind == config::BackendKind::kInferencePool &&
              std::find(listener_pools.begin(), listener_pools.end(), wb.backend.get()) ==
                  listener_pools.end()) {
            listener_pools.push_back(wb.backend.get());
          }
          if (auto st = add_backend(wb.backend); !st.ok()) return st.error();
        }
        for (const auto& m : rule.mirrors) {
          if (auto st = add_backend(m.backend); !st.ok()) return st.error();
        }
      }
      lr->pools = std::move(listener_pools);
      rt->listeners_.push_back(std::move(lr));
    }
  }
  for (auto& [key, sites] : tls_sites) {
    auto context = http::TlsServerContext::Build(std::move(sites));
    if (!context.ok()) return context.error();
    rt->tls_ports_[key].context = std::move(*context);
  }
  for (const auto& pool : rt->snapshot_->pools) {
    if (auto st = add_backend(pool); !st.ok()) return st.error();
    for (const auto& m : pool->pool.models) {
      std::vector<std::uint32_t> weights;
      for (const auto& t : m.targets) weights.push_back(t.weight);
      rt->target_choosers_[&m] = std::make_unique<routing::WeightedChooser>(std::move(weights));
    }
    for (const auto& r : pool->pool.rewrites) {
      std::vector<std::uint32_t> weights;
      for (const auto& t : r.targets) weights.push_back(t.weight);
      rt->target_choosers_[&r] = std::make_unique<routing::WeightedChooser>(std::move(weights));
    }
  }
  return rt;
}

std::string Runtime::TlsPortKey(const ListenerRuntime& lr) {
  const auto& l = *lr.listener;
  if (l.port == 0) return "https " + lr.key;
  return "https " + l.bind_address + ":" + std::to_string(l.port);
}

const ListenerRuntime* Runtime::FindListener(const std::string& key) const {
  for (const auto& l : listeners_) {
    if (l->key == key) return l.get();
  }
  return nullptr;
}

const BackendRuntime* Runtime::FindBackend(const config::Backend* backend) const {
  auto it = backends_.find(backend);
  return it == backends_.end() ? nullptr : it->second.get();
}

}  // namespace infergate::gateway
