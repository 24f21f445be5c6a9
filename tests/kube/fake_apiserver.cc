#include "tests/kube/fake_apiserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

namespace infergate::testing {
namespace {

using json = nlohmann::json;

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 410:
      return "Gone";
    default:
      return "Error";
  }
}

bool Respond(int fd, int status, const json& body) {
  std::string text = body.dump();
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(text.size()) +
      "\r\nConnection: close\r\n\r\n";
  return SendAll(fd, head + text);
}

json StatusBody(int code, const std::string& reason, const std::string& message) {
  return json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
              {"status", "Failure"}, {"message", message}, {"reason", reason},
              {"code", code}};
}

std::string QueryParam(const std::string& query, const std::string& name) {
  std::size_t pos = 0;
  while (pos <= query.size()) {
    std::size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    std::string part = query.substr(pos, end - pos);
    auto eq = part.find('=');
    if (part.substr(0, eq) == name) {
      std::string v = eq == std::string::npos ? "" : part.substr(eq + 1);
      std::string out;
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
          i += 2;
        } else {
          out.push_back(v[i]);
        }
      }
      return out;
    }
    pos = end + 1;
  }
  return "";
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

std::string Ns(const json& obj) {
  const json& meta = obj.value("metadata", json::object());
  return meta.value("namespace", std::string());
}

}  // namespace

FakeApiServer::FakeApiServer() = default;
FakeApiServer::~FakeApiServer() { Stop(); }

bool FakeApiServer::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    return false;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void FakeApiServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    cv_.notify_all();
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void FakeApiServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      break;
    }
    open_fds_.insert(fd);
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeApiServer::Serve(int fd) {
  std::string data;
  char buf[8192];
  Request req;
  std::size_t header_end = std::string::npos;
  while (header_end == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    header_end = data.find("\r\n\r\n");
  }
  if (header_end != std::string::npos) {
    std::istringstream head(data.substr(0, header_end));
    std::string line, target, version;
    std::getline(head, line);
    std::istringstream(line) >> req.method >> target >> version;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    req.query = q == std::string::npos ? "" : target.substr(q + 1);
    std::size_t content_length = 0;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name == "content-length") content_length = std::stoul(value);
      if (name == "content-type") req.content_type = value;
      if (name == "authorization") req.authorization = value;
    }
    req.body = data.substr(header_end + 4);
    while (req.body.size() < content_length) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.body.append(buf, static_cast<std::size_t>(n));
    }
    Handle(fd, req);
  }
  std::lock_guard lock(mu_);
  open_fds_.erase(fd);
  ::close(fd);
}

void FakeApiServer::Handle(int fd, const Request& req) {
  if (!token_.empty() && req.authorization != "Bearer " + token_) {
    Respond(fd, 401, StatusBody(401, "Unauthorized", "Unauthorized"));
    return;
  }
  auto seg = Split(req.path);
  // /api/v1/... or /apis/G/V/...
  std::string group;
  std::size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    group = seg[1];
    i = 3;
  } else {
    Respond(fd, 404, StatusBody(404, "NotFound", "no such path"));
    return;
  }
  std::string ns;
  if (i + 2 < seg.size() && seg[i] == "namespaces") {
    ns = seg[i + 1];
    i += 2;
  }
  if (i >= seg.size()) {
    Respond(fd, 404, StatusBody(404, "NotFound", "no resource"));
    return;
  }
  std::string plural = seg[i];
  std::string name = i + 1 < seg.size() ? seg[i + 1] : "";
  std::string sub = i + 2 < seg.size() ? seg[i + 2] : "";
  std::string version = group.empty() ? seg[1] : seg[2];
  std::string api_version = group.empty() ? version : group + "/" + version;
  const Type* type = nullptr;
  {
    std::lock_guard lock(mu_);
    for (const auto& t : types_) {
      if (t.api_version == api_version && t.plural == plural) type = &t;
    }
  }
  if (!type) {
    Respond(fd, 404,
            StatusBody(404, "NotFound", "the server could not find the requested resource"));
    return;
  }
  std::string resource = plural + (sub.empty() ? "" : "/" + sub);
  bool forbidden;
  {
    std::lock_guard lock(mu_);
    forbidden = forbidden_.count(resource) != 0;
    if (forbidden) ++counts_["forbidden " + resource];
  }
  if (forbidden) {
    std::string verb = req.method == "PATCH"
                           ? "patch"
                           : (QueryParam(req.query, "watch").empty() ? "list" : "watch");
    Respond(fd, 403,
            StatusBody(403, "Forbidden",
                       "User \"system:serviceaccount:default:infergate\" cannot " + verb +
                           " resource \"" + resource + "\" in API group \"" + group + "\""));
    return;
  }

  if (req.method == "GET" && name.empty()) {
    std::string watch = QueryParam(req.query, "watch");
    if (watch == "1" || watch == "true") {
      std::int64_t from = 0;
      try {
        from = std::stoll(QueryParam(req.query, "resourceVersion"));
      } catch (...) {
      }
      std::string t = QueryParam(req.query, "timeoutSeconds");
      Watch(fd, *type, ns, from, QueryParam(req.query, "allowWatchBookmarks") == "true",
            t.empty() ? 60 : std::stoi(t));
      return;
    }
    // LIST
    std::unique_lock lock(mu_);
    ++counts_["list " + plural];
    std::size_t limit = 0;
    if (auto l = QueryParam(req.query, "limit"); !l.empty()) limit = std::stoul(l);
    std::int64_t list_rv = rv_;
    std::size_t offset = 0;
    if (auto c = QueryParam(req.query, "continue"); !c.empty()) {
      auto colon = c.find(':');
      list_rv = std::stoll(c.substr(0, colon));
      offset = std::stoul(c.substr(colon + 1));
      if (list_rv < compacted_) {
        lock.unlock();
        Respond(fd, 410, StatusBody(410, "Expired", "the continue token has expired"));
        return;
      }
    }
    json items = json::array();
    std::size_t index = 0;
    std::string next;
    for (const auto& [key, obj] : objects_[Key(*type)]) {
      if (!ns.empty() && Ns(obj) != ns) continue;
      if (index++ < offset) continue;
      if (limit > 0 && items.size() == limit) {
        next = std::to_string(list_rv) + ":" + std::to_string(offset + limit);
        break;
      }
      json item = obj;
      item.erase("apiVersion");
      item.erase("kind");
      items.push_back(std::move(item));
    }
    json meta = {{"resourceVersion", std::to_string(list_rv)}};
    if (!next.empty()) meta["continue"] = next;
    json body = {{"kind", type->kind + "List"},
                 {"apiVersion", type->api_version},
                 {"metadata", meta},
                 {"items", items}};
    lock.unlock();
    Respond(fd, 200, body);
    return;
  }
  if (req.method == "PATCH" && sub == "status") {
    json patch = json::parse(req.body, nullptr, false);
    if (patch.is_discarded() || req.content_type != "application/merge-patch+json") {
      Respond(fd, 400, StatusBody(400, "BadRequest", "expected a JSON merge patch"));
      return;
    }
    std::unique_lock lock(mu_);
    ++counts_["patch " + resource];
    patches_.push_back({req.path, req.content_type, patch});
    auto& objs = objects_[Key(*type)];
    auto it = objs.find((type->namespaced ? ns + "/" : "") + name);
    if (it == objs.end()) {
      lock.unlock();
      Respond(fd, 404, StatusBody(404, "NotFound", name + " not found"));
      return;
    }
    json status = it->second.value("status", json::object());
    status.merge_patch(patch.value("status", json::object()));
    it->second["status"] = status;
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    json copy = it->second;
    Emit(*type, "MODIFIED", copy);
    lock.unlock();
    Respond(fd, 200, copy);
    return;
  }
  Respond(fd, 405, StatusBody(405, "MethodNotAllowed", "not supported by the fake"));
}

void FakeApiServer::Watch(int fd, const Type& t, const std::string& ns, std::int64_t from,
                          bool bookmarks, int timeout_seconds) {
  std::unique_lock lock(mu_);
  ++counts_["watch " + t.plural];
  if (from < compacted_) {
    ++counts_["gone " + t.plural];
    bool as_http = gone_as_http_;
    lock.unlock();
    if (as_http) {
      Respond(fd, 410, StatusBody(410, "Expired", "too old resource version"));
    } else {
      std::string event = json{{"type", "ERROR"},
                               {"object", StatusBody(410, "Expired", "too old resource version")}}
                              .dump() +
                          "\n";
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", event.size());
      SendAll(fd,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
              "chunked\r\nConnection: close\r\n\r\n" +
                  std::string(size) + event + "\r\n0\r\n\r\n");
    }
    return;
  }
  ++open_watches_;
  watch_fds_.insert(fd);
  std::int64_t cut = cut_generation_;
  lock.unlock();
  bool ok = SendAll(fd,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
                    "chunked\r\nConnection: close\r\n\r\n");
  auto send_event = [&](const json& ev) {
    std::string text = ev.dump() + "\n";
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", text.size());
    return SendAll(fd, std::string(size) + text + "\r\n");
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  auto next_bookmark = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::int64_t last = from;
  bool cut_off = false;
  lock.lock();
  while (ok && !stopping_) {
    if (cut_generation_ != cut) {
      cut_off = true;
      break;
    }
    std::vector<json> batch;
    for (const auto& e : events_) {
      if (e.rv <= last || e.plural_key != Key(t) || (!ns.empty() && e.ns != ns)) continue;
      batch.push_back(json{{"type", e.type}, {"object", e.object}});
      last = e.rv;
    }
    if (batch.empty() && last < rv_) last = rv_;
    lock.unlock();
    for (const auto& ev : batch) ok = ok && send_event(ev);
    auto now = std::chrono::steady_clock::now();
    if (ok && bookmarks && now >= next_bookmark) {
      json bm = {{"type", "BOOKMARK"},
                 {"object",
                  {{"kind", t.kind},
                   {"apiVersion", t.api_version},
                   {"metadata", {{"resourceVersion", std::to_string(last)}}}}}};
      ok = send_event(bm);
      next_bookmark = now + std::chrono::seconds(1);
    }
    lock.lock();
    if (now >= deadline) break;
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  --open_watches_;
  watch_fds_.erase(fd);
  lock.unlock();
  if (ok && !cut_off && !stopping_) SendAll(fd, "0\r\n\r\n");
}

void FakeApiServer::RequireToken(const std::string& token) {
  std::lock_guard lock(mu_);
  token_ = token;
}

void FakeApiServer::AddType(const std::string& api_version, const std::string& kind,
                            const std::string& plural, bool namespaced) {
  std::lock_guard lock(mu_);
  types_.push_back({api_version, kind, plural, namespaced});
}

const FakeApiServer::Type* FakeApiServer::TypeOf(const std::string& api_version,
                                                 const std::string& kind) const {
  for (const auto& t : types_) {
    if (t.api_version == api_version && t.kind == kind) return &t;
  }
  return nullptr;
}

void FakeApiServer::Emit(const Type& t, const std::string& type, const json& object) {
  events_.push_back({rv_, Key(t), Ns(object), type, object});
  cv_.notify_all();
}

void FakeApiServer::Apply(json object) {
  std::lock_guard lock(mu_);
  const Type* t = TypeOf(object.value("apiVersion", ""), object.value("kind", ""));
  if (!t) throw std::runtime_error("FakeApiServer: unknown type of " + object.dump());
  json& meta = object["metadata"];
  if (t->namespaced && !meta.contains("namespace")) meta["namespace"] = "default";
  std::string key = (t->namespaced ? meta["namespace"].get<std::string>() + "/" : "") +
                    meta["name"].get<std::string>();
  auto& objs = objects_[Key(*t)];
  auto it = objs.find(key);
  std::int64_t generation = 1;
  if (it != objs.end()) {
    const json& old = it->second;
    generation = old["metadata"].value("generation", 1);
    if (old.value("spec", json()) != object.value("spec", json())) ++generation;
    if (!object.contains("status") && old.contains("status")) object["status"] = old["status"];
    meta["creationTimestamp"] = old["metadata"].value("creationTimestamp", "2026-01-01T00:00:00Z");
    meta["uid"] = old["metadata"].value("uid", "");
  } else {
    if (!meta.contains("creationTimestamp")) meta["creationTimestamp"] = "2026-01-01T00:00:00Z";
    meta["uid"] = "uid-" + std::to_string(rv_ + 1);
  }
  meta["generation"] = generation;
  meta["resourceVersion"] = std::to_string(++rv_);
  meta["managedFields"] = json::array({json{{"manager", "kubectl"}, {"operation", "Update"}}});
  bool existed = it != objs.end();
  objs[key] = object;
  Emit(*t, existed ? "MODIFIED" : "ADDED", object);
}

void FakeApiServer::ApplyStatus(const std::string& api_version, const std::string& kind,
                                const std::string& ns, const std::string& name, json status) {
  std::lock_guard lock(mu_);
  const Type* t = TypeOf(api_version, kind);
  if (!t) return;
  auto& objs = objects_[Key(*t)];
  auto it = objs.find((t->namespaced ? ns + "/" : "") + name);
  if (it == objs.end()) return;
  it->second["status"] = std::move(status);
  it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
  Emit(*t, "MODIFIED", it->second);
}

void FakeApiServer::Delete(const std::string& api_version, const std::string& kind,
                           const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  const Type* t = TypeOf(api_version, kind);
  if (!t) return;
  auto& objs = objects_[Key(*t)];
  auto it = objs.find((t->namespaced ? ns + "/" : "") + name);
  if (it == objs.end()) return;
  json obj = it->second;
  objs.erase(it);
  obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
  Emit(*t, "DELETED", obj);
}

json FakeApiServer::Get(const std::string& api_version, const std::string& kind,
                        const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  const Type* t = TypeOf(api_version, kind);
  if (!t) return nullptr;
  auto objs = objects_.find(Key(*t));
  if (objs == objects_.end()) return nullptr;
  auto it = objs->second.find((t->namespaced ? ns + "/" : "") + name);
  return it == objs->second.end() ? json(nullptr) : it->second;
}

void FakeApiServer::Compact() {
  std::lock_guard lock(mu_);
  // Every version seen so far is now too old; the current one (a new, empty revision) is
  // not, so a fresh list can be watched from.
  compacted_ = ++rv_;
  events_.clear();
  ++cut_generation_;
  for (int fd : watch_fds_) ::shutdown(fd, SHUT_RDWR);
  cv_.notify_all();
}

void FakeApiServer::CutWatches() {
  std::lock_guard lock(mu_);
  ++cut_generation_;
  for (int fd : watch_fds_) ::shutdown(fd, SHUT_RDWR);
  cv_.notify_all();
}

void FakeApiServer::Forbid(const std::string& resource, bool forbidden) {
  std::lock_guard lock(mu_);
  if (forbidden) {
    forbidden_.insert(resource);
  } else {
    forbidden_.erase(resource);
  }
}

void FakeApiServer::SetGoneAsHttp(bool as_http) {
  std::lock_guard lock(mu_);
  gone_as_http_ = as_http;
}

std::vector<FakeApiServer::Patch> FakeApiServer::patches() const {
  std::lock_guard lock(mu_);
  return patches_;
}

int FakeApiServer::count(const std::string& what) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(what);
  return it == counts_.end() ? 0 : it->second;
}

int FakeApiServer::open_watches() const {
  std::lock_guard lock(mu_);
  return open_watches_;
}

}  // namespace infergate::testing
