// ApiClient: HTTP requests to the Kubernetes API server, blocking, one connection per
// request (HTTPS through OpenSSL, or plain http:// for tests).
//
// TLS: the server is verified against the access's CA (or the system's) and its name or
// IP unless insecure_skip_tls_verify; a client certificate is presented when given. The
// bearer token is read (ClusterAccess::Token) for every request and never logged.
//
// Stream() is for watches: the body is handed over as it arrives (chunked or not) until
// it ends, the callback returns false, the read times out, or Cancel() is called from
// another thread (which shuts the socket down so a blocked read returns at once).
//
// Shutdown() ends every exchange in flight at once (List, status PATCH, watch, including
// one still in its TLS handshake) and makes later ones fail immediately, so a provider
// stops without waiting for the 30 s read timeout of a server that does not answer.
//
// A server that refuses the client certificate (or asks for one that is not configured)
// gets an error saying so; with TLS 1.3 that refusal only arrives after the handshake,
// as an alert read in place of the response.
//
// Thread-safety: Request and Stream may run concurrently on several threads; Cancel and
// Shutdown may be called from any thread. This is the one translation unit of ig_kube
// with Asio.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "kube/cluster_access.h"

namespace infergate::kube {

struct ApiResponse {
  int status = 0;     // HTTP status; 0 when the exchange failed (see error)
  std::string body;   // the whole body (Request), or the body of a non-200 answer (Stream)
  std::string error;  // transport failure, for messages
};

// Lets another thread end a Stream early.
class StreamCancel {
 public:
  void Cancel();
  bool cancelled() const;
  // Used by ApiClient: the socket currently streaming (or -1).
  void Attach(int fd);
  void Detach();

 private:
  mutable std::mutex mu_;
  int fd_ = -1;
  bool cancelled_ = false;
};

class ApiClient {
 public:
  // Fails when the TLS settings cannot be used (a bad CA or client certificate).
  static Result<std::unique_ptr<ApiClient>> Create(ClusterAccess access);
  ~ApiClient();

  const ClusterAccess& access() const { return access_; }

  // method target (path?query) with an optional body; the whole answer, reads bounded
  // by timeout_seconds.
  ApiResponse Request(std::string_view method, const std::string& target,
                      const std::string& body = "", std::string_view content_type = "",
                      int timeout_seconds = 30);
  // GET target; on_data gets the 200 body as it arrives. A read that waits longer than
  // idle_timeout_seconds ends the stream with an error.
  ApiResponse Stream(const std::string& target,
                     const std::function<bool(std::string_view)>& on_data, StreamCancel* cancel,
                     int idle_timeout_seconds);

  // Cancels every exchange in flight; later ones fail at once with error "shut down".
  void Shutdown();
  bool shut_down() const;

  class Tls;

 private:
  explicit ApiClient(ClusterAccess access);
  ApiResponse Run(std::string_view method, const std::string& target, const std::string& body,
                  std::string_view content_type,
                  const std::function<bool(std::string_view)>* on_data, StreamCancel* cancel,
                  int timeout_seconds);

  ClusterAccess access_;
  std::unique_ptr<Tls> tls_;
  mutable std::mutex mu_;
  std::set<StreamCancel*> in_flight_;  // the exchanges Shutdown cancels
  bool shut_down_ = false;
};

}  // namespace infergate::kube
