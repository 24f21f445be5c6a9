// TlsFront: an HTTPS front for the fake API server in tests. It accepts TLS on
// 127.0.0.1:0 with a given certificate (and, when asked, requires a client certificate
// signed by a given CA), and relays each connection's decrypted bytes to a plain backend
// port and back. With it the provider's HTTPS path (CA verification, the server's IP in
// its certificate, client certificates) runs against the fake API server unchanged.
//
// OpenSSL writes to the sockets with write(2), so Start ignores SIGPIPE for the process:
// a client that hangs up mid-handshake must not kill the test.
//
// Thread-safety: Start and Stop from one thread; one relay thread per connection.
#pragma once

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace infergate::testing {

class TlsFront {
 public:
  ~TlsFront();
  // cert/key: PEM files of the server; client_ca: PEM file of the CA client certificates
  // must chain to (empty: none asked for). Returns false (with error()) on failure.
  bool Start(int backend_port, const std::string& cert, const std::string& key,
             const std::string& client_ca = "");
  void Stop();
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& error() const { return error_; }
  // Connections whose TLS handshake failed (a client that refused the certificate, or
  // presented none when one was required).
  int failed_handshakes() const { return failed_handshakes_.load(); }
  // The subject of the last client certificate that was verified ("" for none).
  std::string last_client_subject() const;

 private:
  void AcceptLoop();
  void Relay(int fd);

  void* ctx_ = nullptr;  // SSL_CTX*
  int backend_port_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::string error_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> failed_handshakes_{0};
  std::string last_client_subject_;  // guarded by mu_
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<std::thread> relays_;
  std::set<int> fds_;
};

// Writes, with the openssl command, a CA (ca.crt/ca.key), a server certificate for
// 127.0.0.1 signed by it (server.crt/key), a client certificate signed by it
// (client.crt/key), an unrelated CA (other-ca.crt) and a client certificate signed by
// that one (other-client.crt/key) into dir. Keys are generated at
// run time (never committed). Returns false (with a message in *error) on failure.
bool MakeTestCertificates(const std::string& dir, std::string* error);

// The whole content of a file ("" when unreadable).
std::string ReadFile(const std::string& path);

}  // namespace infergate::testing
