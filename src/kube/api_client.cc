#include "kube/api_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <thread>

namespace infergate::kube {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

class ApiClient::Tls {
 public:
  ssl::context ctx{ssl::context::tls_client};
};

void StreamCancel::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}
bool StreamCancel::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}
void StreamCancel::Attach(int fd) {
  std::lock_guard lock(mu_);
  fd_ = fd;
  if (cancelled_) ::shutdown(fd_, SHUT_RDWR);
}
void StreamCancel::Detach() {
  std::lock_guard lock(mu_);
  fd_ = -1;
}

Result<std::unique_ptr<ApiClient>> ApiClient::Create(ClusterAccess access) {
  std::unique_ptr<ApiClient> c(new ApiClient(std::move(access)));
  if (c->access_.scheme == "https") {
    c->tls_ = std::make_unique<Tls>();
    auto& ctx = c->tls_->ctx;
    boost::system::error_code ec;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!c->access_.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(c->access_.ca_pem), ec);
      if (ec)
        return Error{fmt::format("{}: the CA certificate cannot be used: {}",
                                 c->access_.description, ec.message())};
    } else {
      ctx.set_default_verify_paths(ec);
    }
    if (!c->access_.client_cert_pem.empty()) {
      ctx.use_certificate_chain(asio::buffer(c->access_.client_cert_pem), ec);
      if (ec)
        return Error{fmt::format("{}: the client certificate cannot be used: {}",
                                 c->access_.description, ec.message())};
      ctx.use_private_key(asio::buffer(c->access_.client_key_pem), ssl::context::pem, ec);
      if (ec)
        return Error{fmt::format("{}: the client key cannot be used: {}", c->access_.description,
                                 ec.message())};
    }
    ctx.set_verify_mode(c->access_.insecure_skip_tls_verify ? ssl::verify_none : ssl::verify_peer);
  }
  return c;
}

ApiClient::ApiClient(ClusterAccess access) : access_(std::move(access)) {}
ApiClient::~ApiClient() = default;

namespace {

// Asio's blocking reads wait in poll() without a timeout, so a stalled server is cut off
// by this watchdog instead: it cancels the exchange (shutting its socket down) once no
// progress was reported for `timeout`.
class Watchdog {
 public:
  Watchdog(StreamCancel* cancel, int timeout_seconds)
      : cancel_(cancel), timeout_(std::chrono::seconds(std::max(1, timeout_seconds))) {
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!done_) {
        if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout &&
            std::chrono::steady_clock::now() >= deadline_ && !done_) {
          expired_ = true;
          cancel_->Cancel();
          return;
        }
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Touch() {
    std::lock_guard lock(mu_);
    deadline_ = std::chrono::steady_clock::now() + timeout_;
  }
  bool expired() {
    std::lock_guard lock(mu_);
    return expired_;
  }

 private:
  StreamCancel* cancel_;
  std::chrono::steady_clock::duration timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point deadline_;
  bool done_ = false;
  bool expired_ = false;
  std::thread thread_;
};

void SetKeepAlive(int fd) {
  int on = 1, idle = 30, interval = 10, count = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

bhttp::request<bhttp::string_body> MakeRequest(const ClusterAccess& a, std::string_view method,
                                               const std::string& target, const std::string& body,
                                               std::string_view content_type) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, a.host.find(':') != std::string::npos ? "[" + a.host + "]:" + a.port
                                                                    : a.host + ":" + a.port);
  req.set(bhttp::field::user_agent, "infergate");
  req.set(bhttp::field::accept, "application/json");
  req.set(bhttp::field::connection, "close");
  if (std::string token = a.Token(); !token.empty()) {
    req.set(bhttp::field::authorization, "Bearer " + token);
  }
  if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
  req.body() = body;
  req.prepare_payload();
  return req;
}

// What a TLS alert about the client certificate means for the user, or "".
std::string ClientCertificateHint(const boost::system::error_code& ec, const ClusterAccess& a) {
  if (ec.category() != asio::error::get_ssl_category()) return "";
  const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
  const bool has_cert = !a.client_cert_pem.empty();
  switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return has_cert ? fmt::format(
                            " (the API server requires a client certificate and did not get the "
                            "one of {})",
                            a.description)
                      : fmt::format(" (the API server requires a client certificate; {} has none)",
                                    a.description);
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return has_cert ? fmt::format(" (the API server refused the client certificate of {})",
                                    a.description)
                      : fmt::format(" (the API server asks for a client certificate; {} has none)",
                                    a.description);
    default:
      return "";
  }
}

// One exchange over an established stream (tcp socket or TLS stream).
// An OpenSSL error (an alert the server sent, a verification failure) seen while
// reading is stored in *tls_error when given.
template <class Stream>
ApiResponse Exchange(Stream& stream, const bhttp::request<bhttp::string_body>& req,
                     const std::function<bool(std::string_view)>* on_data,
                     boost::system::error_code* tls_error = nullptr) {
  ApiResponse out;
  boost::system::error_code ec;
  bhttp::write(stream, req, ec);
  if (ec) {
    out.error = "write: " + ec.message();
    if (tls_error) {
      // With TLS 1.3 a server refuses a client certificate after the handshake: its alert
      // may already be waiting while the write failed on the connection it then closed.
      // One read brings it out (it returns at once: the connection is gone).
      char byte = 0;
      boost::system::error_code read_ec;
      stream.read_some(asio::buffer(&byte, 1), read_ec);
      if (read_ec.category() == asio::error::get_ssl_category()) {
        out.error = "read: " + read_ec.message();
        *tls_error = read_ec;
      }
    }
    return out;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  parser.header_limit(64 * 1024);
  bhttp::read_header(stream, buffer, parser, ec);
  if (ec) {
    out.error = "read: " + ec.message();
    if (tls_error && ec.category() == asio::error::get_ssl_category()) *tls_error = ec;
    return out;
  }
  out.status = parser.get().result_int();
  const bool streaming = on_data != nullptr && out.status == 200;
  std::string chunk(64 * 1024, '\0');
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some: a watch event is handed over as soon as it arrives, not when 64 KiB did.
    bhttp::read_some(stream, buffer, parser, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    std::size_t n = chunk.size() - parser.get().body().size;
    if (n > 0) {
      if (streaming) {
        if (!(*on_data)(std::string_view(chunk.data(), n))) return out;
      } else if (out.body.size() < (64u << 20)) {
        out.body.append(chunk.data(), n);
      }
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) {
      out.error = "read: " + ec.message();
      return out;
    }
  }
  return out;
}

}  // namespace

ApiResponse ApiClient::Run(std::string_view method, const std::string& target,
                           const std::string& body, std::string_view content_type,
                           const std::function<bool(std::string_view)>* on_data,
                           StreamCancel* cancel, int timeout_seconds) {
  const ClusterAccess& a = access_;
  Tls* tls = tls_.get();
  ApiResponse out;
  StreamCancel local_cancel;
  if (!cancel) cancel = &local_cancel;
  {
    std::lock_guard lock(mu_);
    if (shut_down_) {
      out.error = "shut down";
      return out;
    }
    in_flight_.insert(cancel);
  }
  struct Unregister {
    ApiClient* client;
    StreamCancel* cancel;
    ~Unregister() {
      std::lock_guard lock(client->mu_);
      client->in_flight_.erase(cancel);
    }
  } unregister{this, cancel};
  Watchdog watchdog(cancel, timeout_seconds);
  std::function<bool(std::string_view)> touching;
  if (on_data) {
    touching = [&watchdog, inner = on_data](std::string_view bytes) {
      watchdog.Touch();
      return (*inner)(bytes);
    };
    on_data = &touching;
  }
  auto finish = [&](ApiResponse r) {
    if (watchdog.expired() && r.error.empty() && r.status == 200 && on_data) {
      r.error = fmt::format("no data for {} s", timeout_seconds);
    } else if (watchdog.expired() && !r.error.empty()) {
      r.error = fmt::format("timed out after {} s ({})", timeout_seconds, r.error);
    }
    return r;
  };
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    auto results = resolver.resolve(a.host, a.port, ec);
    if (ec) {
      out.error = fmt::format("resolve {}: {}", a.host, ec.message());
      return out;
    }
    tcp::socket socket(io);
    // Declared after the socket, so the descriptor is detached before it is closed (a
    // closed number may be reused by another thread's socket at once).
    struct Detach {
      StreamCancel* c;
      ~Detach() { c->Detach(); }
    } detach{cancel};
    // The socket is attached before connecting: a connect to a host that does not answer
    // is cut by the watchdog or a Shutdown too, not only by the kernel's own timeout.
    ec = asio::error::host_not_found;
    for (const auto& entry : results) {
      boost::system::error_code ignored;
      cancel->Detach();
      socket.close(ignored);
      socket.open(entry.endpoint().protocol(), ec);
      if (ec) continue;
      cancel->Attach(socket.native_handle());
      if (cancel->cancelled()) {  // shut down (or timed out) before connecting
        ec = asio::error::operation_aborted;
        break;
      }
      socket.connect(entry.endpoint(), ec);
      if (!ec || cancel->cancelled()) break;
    }
    if (ec) {
      out.error = fmt::format("connect {}: {}", a.ServerUrl(), ec.message());
      return finish(out);
    }
    SetKeepAlive(socket.native_handle());
    socket.set_option(tcp::no_delay(true), ec);
    auto req = MakeRequest(a, method, target, body, content_type);
    if (!tls) return finish(Exchange(socket, req, on_data));

    ssl::stream<tcp::socket&> stream(socket, tls->ctx);
    SSL* handle = stream.native_handle();
    boost::system::error_code addr_ec;
    (void)asio::ip::make_address(a.host, addr_ec);
    if (addr_ec) SSL_set_tlsext_host_name(handle, a.host.c_str());
    if (!a.insecure_skip_tls_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(handle);
      if (addr_ec) {
        X509_VERIFY_PARAM_set1_host(param, a.host.c_str(), 0);
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(param, a.host.c_str());
      }
    }
    stream.handshake(ssl::stream_base::client, ec);
    if (ec) {
      out.error = fmt::format("TLS handshake with {}: {}{}", a.ServerUrl(), ec.message(),
                              ClientCertificateHint(ec, a));
      return finish(out);
    }
    boost::system::error_code alert;
    out = Exchange(stream, req, on_data, &alert);
    if (alert) out.error += ClientCertificateHint(alert, a);
    return finish(out);
  } catch (const std::exception& e) {
    out.status = 0;
    out.error = e.what();
    return out;
  }
}

ApiResponse ApiClient::Request(std::string_view method, const std::string& target,
                               const std::string& body, std::string_view content_type,
                               int timeout_seconds) {
  return Run(method, target, body, content_type, nullptr, nullptr, timeout_seconds);
}

ApiResponse ApiClient::Stream(const std::string& target,
                              const std::function<bool(std::string_view)>& on_data,
                              StreamCancel* cancel, int idle_timeout_seconds) {
  return Run("GET", target, "", "", &on_data, cancel, idle_timeout_seconds);
}

void ApiClient::Shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  for (StreamCancel* c : in_flight_) c->Cancel();
}

bool ApiClient::shut_down() const {
  std::lock_guard lock(mu_);
  return shut_down_;
}

}  // namespace infergate::kube
