// How to reach and authenticate to a Kubernetes API server: from inside a pod (the
// service account's mounted token, CA and namespace) or from a kubeconfig file.
//
// The bearer token is never copied into log lines or error messages. A token file (the
// in-cluster projected token, rotated by the kubelet) is read again on every request, so
// a rotated token is picked up without a restart.
//
// Plain values; Token() reads a file and is safe to call from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace infergate::kube {

struct ClusterAccess {
  std::string scheme = "https";  // "https" or "http"
  std::string host;              // name or address (IPv6 without brackets)
  std::string port;              // always set (443 / 80 by default)
  std::string ca_pem;            // trusted CAs; empty: the system's
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;  // client certificate authentication, when both are set
  std::string client_key_pem;
  std::string token;       // a fixed bearer token
  std::string token_file;  // read on every request when set (wins over token)
  std::string default_namespace = "default";
  std::string description;  // where this came from, for messages ("kubeconfig X context Y")

  // The bearer token to send, or "" for none.
  std::string Token() const;
  // "https://host:port" (for messages).
  std::string ServerUrl() const;
};

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and the files under dir.
Result<ClusterAccess> InClusterAccess(
    const std::string& dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// A kubeconfig's current context (or `context` when not empty): cluster server, CA data or
// file, insecure-skip-tls-verify; user token, tokenFile, client certificate and key (data
// or files; relative paths are relative to the kubeconfig's directory); the context's
// namespace. Errors name the file and the missing entry.
Result<ClusterAccess> KubeconfigAccess(const std::string& path, const std::string& context = "");

// KubeconfigAccess on a kubeconfig's text; path names it in errors and anchors relative
// file names, which read_file reads (the CA, client certificate and key files).
using FileReader = std::function<Result<std::string>(const std::string& path)>;
Result<ClusterAccess> ParseKubeconfig(std::string_view text, const std::string& path,
                                      const std::string& context, const FileReader& read_file);

// Decodes standard base64 (padding optional, whitespace ignored); nullopt-like Error when
// the text is not base64.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace infergate::kube
