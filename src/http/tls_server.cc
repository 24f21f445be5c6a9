#include "http/tls_server.h"

#include "http/tls_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <mutex>

namespace infergate::http {

struct TlsServerContext::Impl {
  struct Site {
    std::vector<SSL_CTX*> contexts;               // one per certificate
    std::vector<std::vector<std::string>> names;  // each certificate's DNS names
  };
  std::vector<std::string> hostnames;  // by site
  std::vector<Site> sites;
  ~Impl() {
    for (const Site& site : sites) {
      for (SSL_CTX* c : site.contexts) SSL_CTX_free(c);
    }
  }
};

namespace {

std::string OpenSslError() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool CoversWildcard(std::string_view pattern, std::string_view host) {
  if (pattern.size() < 3 || pattern[0] != '*' || pattern[1] != '.') return false;
  const std::string_view suffix = pattern.substr(1);  // ".example.com"
  return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// OpenSSL's SNI hook: switch the connection to the context of the site the name selects
// (remembered in the SSL object's app data as index + 1), or refuse the handshake.
int OnServerName(SSL* ssl, int* alert, void* arg) {
  const auto* impl = static_cast<const TlsServerContext::Impl*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const std::string server_name = name ? Lower(name) : std::string();
  const int site = SelectTlsSite(impl->hostnames, server_name);
  if (site < 0) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  const auto& chosen = impl->sites[static_cast<std::size_t>(site)];
  SSL_CTX* ctx = chosen.contexts[SelectTlsCertificate(chosen.names, server_name)];
  if (SSL_get_SSL_CTX(ssl) != ctx) SSL_set_SSL_CTX(ssl, ctx);
  SSL_set_app_data(ssl, reinterpret_cast<void*>(static_cast<std::intptr_t>(site + 1)));
  return SSL_TLSEXT_ERR_OK;
}

// Keys with a passphrase are refused rather than prompting on the terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

Result<SSL_CTX*> MakeContext(const TlsSiteCertificate& site, TlsServerContext::Impl* impl) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Error{"TLS: " + OpenSslError()};
  auto fail = [&](std::string what) -> Result<SSL_CTX*> {
    SSL_CTX_free(ctx);
    return Error{"TLS certificate " + site.name + ": " + what};
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // SSL_write may be retried with the rest of a buffer that moved.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  ERR_clear_error();
  BIO* bio = BIO_new_mem_buf(site.cert_pem.data(), static_cast<int>(site.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509_AUX(bio, nullptr, NoPassphrase, nullptr);
  if (!leaf) {
    BIO_free(bio);
    return fail("tls.crt is not a PEM certificate (" + OpenSslError() + ")");
  }
  const bool used = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  if (!used) {
    BIO_free(bio);
    return fail("tls.crt: " + OpenSslError());
  }
  while (X509* intermediate = PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, intermediate) != 1) {
      X509_free(intermediate);
      BIO_free(bio);
      return fail("tls.crt chain: " + OpenSslError());
    }
  }
  ERR_clear_error();  // the end of the PEM text
  BIO_free(bio);

  bio = BIO_new_mem_buf(site.key_pem.data(), static_cast<int>(site.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, NoPassphrase, nullptr);
  BIO_free(bio);
  if (!key) return fail("tls.key is not an unencrypted PEM private key (" + OpenSslError() + ")");
  const bool key_used = SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!key_used || SSL_CTX_check_private_key(ctx) != 1) {
    return fail("tls.key does not belong to the certificate in tls.crt (" + OpenSslError() + ")");
  }
  SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, impl);
  return ctx;
}

// Waits until OpenSSL's last want (read or write) can be met. False when the wait failed
// (cancelled, closed) or OpenSSL reported anything else.
asio::awaitable<bool> AwaitWant(tcp::socket& socket, SSL* ssl, int result) {
  const int err = SSL_get_error(ssl, result);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) co_return false;
  auto [ec] = co_await socket.async_wait(
      err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
      asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

// Client -> session: decrypted bytes into the pair; the end of the client's stream is
// passed on as the end of the session's input.
asio::awaitable<void> TlsToPlain(SSL* ssl, tcp::socket& tls, tcp::socket& inner) {
  std::array<char, 16 * 1024> buf;
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
    if (n > 0) {
      auto [ec, written] =
          co_await asio::async_write(inner, asio::buffer(buf.data(), static_cast<std::size_t>(n)),
                                     asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      continue;
    }
    const bool more = co_await AwaitWant(tls, ssl, n);
    if (!more) break;  // close_notify, reset or error
  }
  boost::system::error_code ignored;
  inner.shutdown(tcp::socket::shutdown_send, ignored);
}

// Session -> client: what the session writes, encrypted. When the session closes its end
// the connection ends (close_notify, best effort, then the TCP connection).
asio::awaitable<void> PlainToTls(SSL* ssl, tcp::socket& tls, tcp::socket& inner) {
  std::array<char, 16 * 1024> buf;
  bool ok = true;
  while (ok) {
    auto [ec, n] =
        co_await inner.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    std::size_t off = 0;
    while (ok && off < n) {
      ERR_clear_error();
      const int w = SSL_write(ssl, buf.data() + off, static_cast<int>(n - off));
      if (w > 0) {
        off += static_cast<std::size_t>(w);
      } else {
        ok = co_await AwaitWant(tls, ssl, w);
      }
    }
  }
  ERR_clear_error();
  SSL_shutdown(ssl);
  ERR_clear_error();
  boost::system::error_code ignored;
  tls.shutdown(tcp::socket::shutdown_both, ignored);
  tls.cancel(ignored);  // ends TlsToPlain's wait
  inner.shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

std::size_t SelectTlsCertificate(const std::vector<std::vector<std::string>>& names,
                                 std::string_view server_name) {
  if (server_name.empty()) return 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (const auto& n : names[i]) {
      if (n == server_name) return i;
    }
  }
  // A certificate's wildcard stands for exactly one label (RFC 6125).
  const auto dot = server_name.find('.');
  if (dot == 0 || dot == std::string_view::npos) return 0;
  const std::string_view parent = server_name.substr(dot);  // ".example.com"
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (const auto& n : names[i]) {
      if (n.size() > 2 && n[0] == '*' && n[1] == '.' && std::string_view(n).substr(1) == parent) {
        return i;
      }
    }
  }
  return 0;
}

std::vector<std::string> TlsCertificateNames(const std::string& cert_pem) {
  std::vector<std::string> out;
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* leaf = bio ? PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr) : nullptr;
  BIO_free(bio);
  ERR_clear_error();
  if (!leaf) return out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const ASN1_IA5STRING* dns = n->d.dNSName;
      out.push_back(
          Lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                 static_cast<std::size_t>(ASN1_STRING_length(dns)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    // The subject's CN counts only for a certificate without DNS names.
    const X509_NAME* subject = X509_get_subject_name(leaf);
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) {
      unsigned char* utf8 = nullptr;
      const int len =
          ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
      if (len > 0) {
        out.push_back(Lower(
            std::string_view(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len))));
      }
      OPENSSL_free(utf8);
    }
  }
  X509_free(leaf);
  ERR_clear_error();
  return out;
}

int SelectTlsSite(const std::vector<std::string>& hostnames, std::string_view server_name) {
  int best = -1;
  std::size_t best_score = 0;
  for (std::size_t i = 0; i < hostnames.size(); ++i) {
    const std::string& h = hostnames[i];
    std::size_t score = 0;
    if (h.empty()) {
      score = 1;
    } else if (!server_name.empty() && h == server_name) {
      score = 1'000'000;
    } else if (!server_name.empty() && CoversWildcard(h, server_name)) {
      score = 2 + h.size();
    } else {
      continue;
    }
    if (score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  return best;
}

TlsServerContext::TlsServerContext() : impl_(std::make_unique<Impl>()) {}
TlsServerContext::~TlsServerContext() = default;

Result<std::shared_ptr<const TlsServerContext>> TlsServerContext::Build(
    std::vector<TlsSite> sites) {
  if (sites.empty()) return Error{"TLS: no certificate"};
  // OpenSSL writes to the socket with write(2): a client that went away must not kill the
  // process with SIGPIPE (Asio's own sends use MSG_NOSIGNAL).
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  std::shared_ptr<TlsServerContext> out(new TlsServerContext());
  for (const auto& site : sites) {
    if (site.certificates.empty()) return Error{"TLS: a site without certificate"};
    out->impl_->hostnames.push_back(site.hostname);
    auto& built = out->impl_->sites.emplace_back();
    for (const auto& cert : site.certificates) {
      auto ctx = MakeContext(cert, out->impl_.get());
      if (!ctx.ok()) return ctx.error();
      built.contexts.push_back(*ctx);
      built.names.push_back(TlsCertificateNames(cert.cert_pem));
    }
  }
  return std::shared_ptr<const TlsServerContext>(std::move(out));
}

Status CheckTlsCertificate(const std::string& cert_pem, const std::string& key_pem,
                           const std::string& name) {
  auto context = TlsServerContext::Build({TlsSite{"", {{cert_pem, key_pem, name}}}});
  if (!context.ok()) return context.error();
  return Ok();
}

asio::awaitable<void> ServeTls(tcp::socket socket, std::shared_ptr<const TlsServerContext> context,
                               TimeNs handshake_timeout, PlainSessionHandler handler) {
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context->impl().sites[0].contexts[0]),
                                                &SSL_free);
  if (ec || !ssl || SSL_set_fd(ssl.get(), socket.native_handle()) != 1) co_return;
  SSL_set_accept_state(ssl.get());

  // The handshake, bounded: a timer cancels the socket's wait when it expires.
  bool expired = false;
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(std::chrono::nanoseconds(handshake_timeout));
  timer.async_wait([&socket, &expired](const boost::system::error_code& e) {
    if (e) return;
    expired = true;
    boost::system::error_code ignored;
    socket.cancel(ignored);
  });
  for (;;) {
    ERR_clear_error();
    const int r = SSL_accept(ssl.get());
    if (r == 1) break;
    const bool more = co_await AwaitWant(socket, ssl.get(), r);
    if (!more || expired) {
      ERR_clear_error();
      timer.cancel();
      co_return;
    }
  }
  timer.cancel();
  const int site =
      static_cast<int>(reinterpret_cast<std::intptr_t>(SSL_get_app_data(ssl.get()))) - 1;
  if (site < 0) co_return;

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) co_return;
  const auto ex = socket.get_executor();
  tcp::socket inner(ex);
  tcp::socket outer(ex);
  inner.assign(tcp::v4(), fds[0], ec);
  if (!ec) outer.assign(tcp::v4(), fds[1], ec);
  if (ec) {
    if (!inner.is_open()) ::close(fds[0]);
    ::close(fds[1]);
    co_return;
  }
  asio::co_spawn(ex, handler(std::move(outer), site), asio::detached);
  using namespace asio::experimental::awaitable_operators;
  // Both directions as named awaitables first (GCC 12 and temporaries across a co_await).
  auto both = TlsToPlain(ssl.get(), socket, inner) && PlainToTls(ssl.get(), socket, inner);
  co_await std::move(both);
}

}  // namespace infergate::http
