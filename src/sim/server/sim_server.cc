#include "sim/server/sim_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <thread>

#include "http/beast.h"
#include "http/event_loops.h"
#include "sim/engine/engine.h"
#include "sim/server/replica.h"

namespace infergate::sim {
namespace {

using namespace std::chrono_literals;

constexpr auto kShutdownGrace = 3s;

}  // namespace

// The server: its replicas, their event loops, signals and shutdown.
struct SimServer::Impl {
  std::unique_ptr<Shared> shared;
  std::unique_ptr<http::EventLoops> loops;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  std::atomic<bool> shutdown_started{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<int> draining{0};
  std::unique_ptr<asio::steady_timer> grace;
  std::unique_ptr<asio::signal_set> signals;

  // Stops the loops once, whichever of the drain and the grace timer comes first.
  void StopLoops() {
    if (!stop_requested.exchange(true)) loops->Stop();
  }

  ~Impl() {
    if (loops) {
      loops->Stop();
      loops->Join();
    }
    // Replicas hold timers of the loops: they go first; the loops then destroy whatever
    // handlers and session frames are left (which no longer touch the replicas).
    signals.reset();
    grace.reset();
    replicas.clear();
    loops.reset();
  }
};

SimServer::SimServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimServer::~SimServer() = default;

Result<std::unique_ptr<SimServer>> SimServer::Create(const Profile& profile,
                                                     SimServerOptions options) {
  if (options.replicas < 1) return Error{"--replicas must be at least 1"};
  if (options.workers < 0) return Error{"--workers must be at least 1"};
  if (!(options.time_scale > 0) || !std::isfinite(options.time_scale)) {
    return Error{"--time-scale must be a positive number"};
  }
  const FaultOptions& f = options.faults;
  if (!(f.fail_rate >= 0 && f.fail_rate <= 1)) return Error{"--fail-rate must be in [0, 1]"};
  if (f.die_after < 0) return Error{"--die-after must be at least 0"};
  if (f.metrics_delay_ms < 0 || f.metrics_delay_ms > 3'600'000) {
    return Error{"--metrics-delay-ms must be in [0, 3600000]"};
  }
  if (options.model.empty()) options.model = profile.model.name;
  if (options.served_model_names.empty()) options.served_model_names = {options.model};
  for (const auto& m : options.lora_modules) {
    if (m.name.empty()) return Error{"--lora-modules: an adapter needs a name"};
    if (std::find(options.served_model_names.begin(), options.served_model_names.end(), m.name) !=
        options.served_model_names.end()) {
      return Error{"--lora-modules: '" + m.name + "' is also a served model name"};
    }
  }
  if (!options.lora_modules.empty() && profile.engine.max_loras <= 0) {
    return Error{
        "--lora-modules needs LoRA slots: set --max-loras (profile field engine.max_loras)"};
  }

  // Replica addresses: host, host + 1, ...
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options.host, ec);
  if (ec) return Error{"--host: invalid address '" + options.host + "'"};
  std::vector<std::string> addresses;
  if (options.replicas == 1) {
    addresses.push_back(options.host);
  } else {
    if (!addr.is_v4() || addr.to_v4().to_uint() == 0) {
      return Error{"--replicas > 1 needs an IPv4 --host to count addresses from (e.g. 127.0.0.2)"};
    }
    const std::uint64_t first = addr.to_v4().to_uint();
    if (first + static_cast<std::uint64_t>(options.replicas) - 1 > 0xFFFFFFFFull) {
      return Error{"--replicas: the addresses run past 255.255.255.255"};
    }
    for (int i = 0; i < options.replicas; ++i) {
      addresses.push_back(
          asio::ip::address_v4(static_cast<std::uint32_t>(first + static_cast<std::uint64_t>(i)))
              .to_string());
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->addresses = std::move(addresses);
  impl->shared = std::make_unique<Shared>();
  Shared& shared = *impl->shared;
  shared.options = std::move(options);
  const SimServerOptions& o = shared.options;
  shared.served = o.served_model_names;

  int workers = o.workers;
  if (workers == 0) {
    workers = std::max(
        1, std::min<int>(o.replicas, static_cast<int>(std::thread::hardware_concurrency())));
  }
  impl->loops = std::make_unique<http::EventLoops>(workers);

  std::vector<std::unique_ptr<Engine>> engines;
  for (int i = 0; i < o.replicas; ++i) {
    auto engine = Engine::Create(profile, o.seed + static_cast<std::uint64_t>(i));
    if (!engine) return Error{engine.error().message};
    engines.push_back(std::move(*engine));
  }
  shared.max_model_len = engines.front()->config().max_model_len;
  // /v1/models: every served name, then every adapter.
  std::uint64_t perm = Mix64(o.seed ^ 0x7065726DULL);
  auto perm_id = [&perm] {
    std::string s = "modelperm-";
    AppendHex64(s, perm = Mix64(perm));
    AppendHex64(s, perm = Mix64(perm));
    return s;
  };
  for (const auto& name : shared.served) {
    shared.cards.push_back({name, o.model, std::nullopt, shared.max_model_len, perm_id()});
  }
  for (const auto& m : o.lora_modules) {
    shared.cards.push_back(
        {m.name, m.path.empty() ? m.name : m.path, shared.served.front(), std::nullopt, perm_id()});
  }
  for (int i = 0; i < o.replicas; ++i) {
    impl->replicas.push_back(
        std::make_unique<Replica>(i, impl->loops->loop(i % workers),
                                  std::move(engines[static_cast<std::size_t>(i)]), shared));
  }
  return std::unique_ptr<SimServer>(new SimServer(std::move(impl)));
}

Result<std::vector<std::string>> SimServer::Listen() {
  Impl& impl = *impl_;
  std::vector<std::string> bound;
  const int workers = impl.loops->size();
  for (std::size_t i = 0; i < impl.replicas.size(); ++i) {
    Replica* r = impl.replicas[i].get();
    auto listener = impl.loops->ListenOn(static_cast<int>(i) % workers, impl.addresses[i],
                                         impl.shared->options.port,
                                         [r](tcp::socket s) { return r->Session(std::move(s)); });
    if (!listener) return Error{listener.error().message};
    const auto& ep = (*listener)->endpoint();
    r->set_listener(*listener);
    bound.push_back(ep.address().to_string() + ":" + std::to_string(ep.port()));
  }
  return bound;
}

void SimServer::HandleSignals() {
  Impl& impl = *impl_;
  if (impl.signals) return;
  impl.signals = std::make_unique<asio::signal_set>(impl.loops->loop(0), SIGINT, SIGTERM);
  impl.signals->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("infergate sim: signal {}: shutting down", sig);
    Shutdown();
  });
}

void SimServer::Run() {
  Impl& impl = *impl_;
  // Simulated time starts now: time 0 of every engine.
  impl.shared->clock = SimClock(WallNow(), impl.shared->options.time_scale);
  impl.loops->Run();
}

void SimServer::Shutdown() {
  Impl& impl = *impl_;
  if (impl.shutdown_started.exchange(true)) return;
  impl.draining = static_cast<int>(impl.replicas.size());
  asio::post(impl.loops->loop(0), [&impl] {
    impl.grace = std::make_unique<asio::steady_timer>(impl.loops->loop(0), kShutdownGrace);
    impl.grace->async_wait([&impl](const boost::system::error_code& ec) {
      if (!ec) impl.StopLoops();
    });
  });
  for (auto& r : impl.replicas) {
    asio::post(r->loop(), [&impl, rp = r.get()] {
      rp->BeginShutdown([&impl] {
        if (--impl.draining == 0) impl.StopLoops();
      });
    });
  }
}

TokenLateness SimServer::Lateness() const {
  LatenessRecorder all;
  for (const auto& r : impl_->replicas) all.Merge(r->lateness());
  return all.Summary();
}

}  // namespace infergate::sim
