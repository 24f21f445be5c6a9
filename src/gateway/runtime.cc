#include "gateway/runtime.h"

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
  for (const auto& gw : rt->snapshot_->gateways) {
    for (const auto& l : gw.listeners) {
      auto lr = std::make_unique<ListenerRuntime>();
      lr->listener = &l;
      lr->key = gw.id + "/" + l.name;
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
        e.set.push_back({"X-Forwarded-Proto", "http"});
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
