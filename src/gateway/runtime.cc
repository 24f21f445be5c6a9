#include "gateway/runtime.h"

namespace infergate::gateway {

std::size_t BackendRuntime::RoundRobin(std::span<http::UpstreamCandidate> out) const {
  const std::size_t size = endpoints.size();
  if (size == 0 || out.empty()) return 0;
  const std::size_t start = next.fetch_add(1, std::memory_order_relaxed) % size;
  const std::size_t count = std::min(size, out.size());
  for (std::size_t i = 0; i < count; ++i) out[i] = endpoints[(start + i) % size];
  return count;
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
      }
      for (const auto& rule : l.rules) {
        for (const auto& wb : rule.backends) {
          if (auto st = add_backend(wb.backend); !st.ok()) return st.error();
        }
        for (const auto& m : rule.mirrors) {
          if (auto st = add_backend(m.backend); !st.ok()) return st.error();
        }
      }
      rt->listeners_.push_back(std::move(lr));
    }
  }
  for (const auto& pool : rt->snapshot_->pools) {
    if (auto st = add_backend(pool); !st.ok()) return st.error();
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
