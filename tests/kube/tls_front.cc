#include "tests/kube/tls_front.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace infergate::testing {
namespace {

std::string OpenSslError() {
  char buf[256];
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool SendAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TlsFront::~TlsFront() { Stop(); }

bool TlsFront::Start(int backend_port, const std::string& cert, const std::string& key,
                     const std::string& client_ca) {
  backend_port_ = backend_port;
  ::signal(SIGPIPE, SIG_IGN);
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ctx_ = ctx;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error_ = "server certificate: " + OpenSslError();
    return false;
  }
  if (!client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, client_ca.c_str(), nullptr) != 1) {
      error_ = "client CA: " + OpenSslError();
      return false;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    error_ = "cannot bind";
    return false;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void TlsFront::Stop() {
  if (stopping_.exchange(true)) return;
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  if (ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
  ctx_ = nullptr;
}

std::string TlsFront::last_client_subject() const {
  std::lock_guard lock(mu_);
  return last_client_subject_;
}

void TlsFront::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    fds_.insert(fd);
    relays_.emplace_back([this, fd] { Relay(fd); });
  }
}

void TlsFront::Relay(int fd) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
  SSL_set_fd(ssl, fd);
  int backend = -1;
  if (SSL_accept(ssl) != 1) {
    ++failed_handshakes_;
  } else {
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      char subject[256] = {0};
      X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
      X509_free(peer);
      std::lock_guard lock(mu_);
      last_client_subject_ = subject;
    }
    backend = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(backend_port_));
    if (::connect(backend, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      {
        std::lock_guard lock(mu_);
        fds_.insert(backend);
      }
      char buf[16384];
      while (!stopping_) {
        pollfd p[2] = {{fd, POLLIN, 0}, {backend, POLLIN, 0}};
        if (SSL_pending(ssl) == 0 && ::poll(p, 2, 100) <= 0) continue;
        if (SSL_pending(ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
          int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) {
            int e = SSL_get_error(ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
            break;
          }
          if (!SendAll(backend, buf, static_cast<std::size_t>(n))) break;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = ::recv(backend, buf, sizeof buf, 0);
          if (n <= 0) break;
          if (SSL_write(ssl, buf, static_cast<int>(n)) <= 0) break;
        }
      }
    }
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  std::lock_guard lock(mu_);
  if (backend >= 0) {
    fds_.erase(backend);
    ::close(backend);
  }
  fds_.erase(fd);
  ::close(fd);
}

bool MakeTestCertificates(const std::string& dir, std::string* error) {
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  auto run = [&](const std::string& cmd) {
    std::string full = "cd '" + dir + "' && " + cmd + " >>openssl.log 2>&1";
    if (std::system(full.c_str()) != 0) {
      *error = cmd + " failed: " + ReadFile(dir + "/openssl.log");
      return false;
    }
    return true;
  };
  std::ofstream(dir + "/server.ext") << "subjectAltName=IP:127.0.0.1\n"
                                        "extendedKeyUsage=serverAuth\n";
  std::ofstream(dir + "/client.ext") << "extendedKeyUsage=clientAuth\n";
  return run("openssl req -x509 " + key +
             " -keyout ca.key -out ca.crt -days 2 -subj /CN=infergate-test-ca") &&
         run("openssl req -x509 " + key +
             " -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=unrelated-ca") &&
         run("openssl req " + key + " -keyout server.key -out server.csr -subj /CN=127.0.0.1") &&
         run("openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out server.crt -days 2 -extfile server.ext") &&
         run("openssl req " + key +
             " -keyout client.key -out client.csr -subj /CN=system:serviceaccount:x:y") &&
         run("openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out client.crt -days 2 -extfile client.ext") &&
         run("openssl req " + key +
             " -keyout other-client.key -out other-client.csr -subj /CN=someone-else") &&
         run("openssl x509 -req -in other-client.csr -CA other-ca.crt -CAkey other-ca.key "
             "-CAcreateserial -out other-client.crt -days 2 -extfile client.ext");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace infergate::testing
