#include "kube/cluster_access.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace infergate::kube {
namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("cannot read {}", path)};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// Splits "scheme://host[:port][/path]".
Status ParseServer(const std::string& url, ClusterAccess* out) {
  auto sep = url.find("://");
  if (sep == std::string::npos)
    return Error{fmt::format("server '{}': expected https://host:port", url)};
  out->scheme = url.substr(0, sep);
  if (out->scheme != "https" && out->scheme != "http") {
    return Error{fmt::format("server '{}': the scheme must be https or http", url)};
  }
  std::string rest = url.substr(sep + 3);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return Error{fmt::format("server '{}': bad IPv6 address", url)};
    out->host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    out->host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    out->host = rest;
  }
  if (out->host.empty()) return Error{fmt::format("server '{}': no host", url)};
  out->port = port.empty() ? (out->scheme == "https" ? "443" : "80") : port;
  return Ok();
}

}  // namespace

std::string ClusterAccess::Token() const {
  if (!token_file.empty()) {
    auto t = ReadWholeFile(token_file);
    if (t.ok()) return Trim(*t);
  }
  return token;
}

std::string ClusterAccess::ServerUrl() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", scheme, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

Result<std::string> DecodeBase64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding) return Error{"not valid base64"};
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<ClusterAccess> InClusterAccess(const std::string& dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return Error{
        "--kubernetes: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not "
        "running in a pod? use --kubeconfig)"};
  }
  ClusterAccess a;
  a.scheme = "https";
  a.host = host;
  a.port = port;
  a.token_file = dir + "/token";
  if (auto t = ReadWholeFile(a.token_file); !t.ok()) {
    return Error{
        fmt::format("--kubernetes: {} (is a service account token mounted?)", t.error().message)};
  }
  auto ca = ReadWholeFile(dir + "/ca.crt");
  if (!ca.ok()) return Error{fmt::format("--kubernetes: {}", ca.error().message)};
  a.ca_pem = *ca;
  if (auto ns = ReadWholeFile(dir + "/namespace"); ns.ok() && !Trim(*ns).empty()) {
    a.default_namespace = Trim(*ns);
  }
  a.description = "in-cluster service account";
  return a;
}

Result<ClusterAccess> KubeconfigAccess(const std::string& path, const std::string& context) {
  auto text = ReadWholeFile(path);
  if (!text.ok()) return Error{fmt::format("kubeconfig: {}", text.error().message)};
  return ParseKubeconfig(*text, path, context, ReadWholeFile);
}

Result<ClusterAccess> ParseKubeconfig(std::string_view text, const std::string& path,
                                      const std::string& context, const FileReader& read_file) {
  namespace fs = std::filesystem;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error{fmt::format("kubeconfig {}: YAML syntax error: {}", path, e.what())};
  }
  if (!root.IsMap()) return Error{fmt::format("kubeconfig {}: not a map", path)};
  const fs::path base = fs::path(path).parent_path();
  auto resolve = [&](const std::string& p) {
    fs::path fp(p);
    return fp.is_absolute() || base.empty() ? p : (base / fp).string();
  };
  auto scalar = [](const YAML::Node& n, const char* key) -> std::string {
    if (!n.IsMap()) return "";
    YAML::Node v = n[key];
    return v && v.IsScalar() ? v.Scalar() : std::string();
  };
  auto find_named = [&](const char* list, const std::string& name, const char* inner) {
    YAML::Node items = root[list];
    if (items && items.IsSequence()) {
      for (const auto& item : items) {
        if (item.IsMap() && scalar(item, "name") == name && item[inner]) return item[inner];
      }
    }
    return YAML::Node();
  };
  // Either the inline *-data (base64) or the file the other key names.
  auto pem = [&](const YAML::Node& n, const char* data_key, const char* file_key,
                 std::string* out) -> Status {
    if (auto d = scalar(n, data_key); !d.empty()) {
      auto decoded = DecodeBase64(d);
      if (!decoded.ok())
        return Error{fmt::format("kubeconfig {}: {}: not valid base64", path, data_key)};
      *out = *decoded;
    } else if (auto f = scalar(n, file_key); !f.empty()) {
      auto content = read_file(resolve(f));
      if (!content.ok())
        return Error{fmt::format("kubeconfig {}: {}: {}", path, file_key, content.error().message)};
      *out = *content;
    }
    return Ok();
  };
  try {
    std::string ctx_name = context.empty() ? scalar(root, "current-context") : context;
    if (ctx_name.empty()) return Error{fmt::format("kubeconfig {}: no current-context", path)};
    YAML::Node ctx = find_named("contexts", ctx_name, "context");
    if (!ctx) return Error{fmt::format("kubeconfig {}: context '{}' not found", path, ctx_name)};
    std::string cluster_name = scalar(ctx, "cluster");
    YAML::Node cluster = find_named("clusters", cluster_name, "cluster");
    if (!cluster) {
      return Error{fmt::format("kubeconfig {}: cluster '{}' (of context '{}') not found", path,
                               cluster_name, ctx_name)};
    }
    ClusterAccess a;
    std::string server = scalar(cluster, "server");
    if (server.empty())
      return Error{fmt::format("kubeconfig {}: cluster '{}' has no server", path, cluster_name)};
    if (auto st = ParseServer(server, &a); !st.ok()) {
      return Error{fmt::format("kubeconfig {}: {}", path, st.error().message)};
    }
    a.insecure_skip_tls_verify = scalar(cluster, "insecure-skip-tls-verify") == "true";
    if (auto st = pem(cluster, "certificate-authority-data", "certificate-authority", &a.ca_pem);
        !st.ok()) {
      return st.error();
    }
    std::string user_name = scalar(ctx, "user");
    YAML::Node user = find_named("users", user_name, "user");
    if (!user_name.empty() && !user) {
      return Error{fmt::format("kubeconfig {}: user '{}' (of context '{}') not found", path,
                               user_name, ctx_name)};
    }
    if (user) {
      a.token = scalar(user, "token");
      if (auto f = scalar(user, "tokenFile"); !f.empty()) a.token_file = resolve(f);
      if (auto st = pem(user, "client-certificate-data", "client-certificate", &a.client_cert_pem);
          !st.ok()) {
        return st.error();
      }
      if (auto st = pem(user, "client-key-data", "client-key", &a.client_key_pem); !st.ok()) {
        return st.error();
      }
      if (a.client_cert_pem.empty() != a.client_key_pem.empty()) {
        return Error{fmt::format(
            "kubeconfig {}: user '{}' has a client certificate without its key (or the reverse)",
            path, user_name)};
      }
      if (user["exec"] || user["auth-provider"]) {
        if (a.token.empty() && a.token_file.empty() && a.client_cert_pem.empty()) {
          return Error{fmt::format(
              "kubeconfig {}: user '{}' authenticates through an exec or auth-provider plugin, "
              "which infergate does not run; give it a token or a client certificate",
              path, user_name)};
        }
      }
    }
    if (auto ns = scalar(ctx, "namespace"); !ns.empty()) a.default_namespace = ns;
    a.description = fmt::format("kubeconfig {} context {}", path, ctx_name);
    return a;
  } catch (const YAML::Exception& e) {
    return Error{fmt::format("kubeconfig {}: {}", path, e.what())};
  }
}

}  // namespace infergate::kube
