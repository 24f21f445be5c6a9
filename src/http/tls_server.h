// TLS termination for HTTPS listeners: server certificates chosen by SNI, and a connection
// served by the plain HTTP session through a local socket pair.
//
// A TlsServerContext holds the sites of one bound port (a site is a listener: the
// hostname it answers and its certificates), with one OpenSSL context per certificate.
// SNI picks the site: an exact hostname first, then the longest matching wildcard
// ("*.example.com" covers "a.example.com", not "example.com"), then a site without
// hostname, which also takes clients that send no SNI; with none of these the handshake
// ends with an unrecognized_name alert. Within the site SNI then picks the certificate
// (a listener with several certificateRefs): the first whose own names (its
// subjectAltName DNS entries; its subject CN only when it has none) equal the server
// name, else the first whose wildcard name covers it (one label: "*.example.com" covers
// "a.example.com", not "a.b.example.com"), else the site's first certificate, which is
// also what a client without SNI gets. Only TLS 1.2 and 1.3 are offered.
//
// ServeTls drives OpenSSL directly on the non-blocking socket (SSL_set_fd; Asio waits
// for readiness when OpenSSL asks to read or write), completes the handshake within a
// bound, and then relays the decrypted byte stream to one end of an AF_UNIX socket pair
// whose other end is handed to the plain HTTP session. So the HTTP data path has no TLS
// in it at all: a plain listener pays nothing for TLS existing, and an HTTPS connection
// costs one extra copy through the pair. (Asio's ssl::stream was not used: its
// separately compiled implementation may be linked into the binary only once, and the
// Kubernetes client compiles it in its own translation unit.)
//
// Thread-safety: a TlsServerContext is immutable after Build and may be shared between
// loops; ServeTls runs on the loop that owns the socket.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/beast.h"

namespace infergate::http {

struct TlsSiteCertificate {
  std::string cert_pem;  // the certificate chain, leaf first
  std::string key_pem;
  std::string name;  // for errors, e.g. the Secret "namespace/name"
};

struct TlsSite {
  std::string hostname;  // "" = any name; may start with "*."; lower-case
  // At least one; the first is the default (no SNI, or no certificate's name matches).
  std::vector<TlsSiteCertificate> certificates;
};

// The site a server name selects (see above), or -1. Pure; server_name may be empty.
int SelectTlsSite(const std::vector<std::string>& hostnames, std::string_view server_name);

// The certificate a server name selects among certificates with these names (lower-case,
// see above): an index, 0 when none matches or server_name is empty. Pure.
std::size_t SelectTlsCertificate(const std::vector<std::vector<std::string>>& names,
                                 std::string_view server_name);

// The DNS names a PEM certificate (its leaf) is for, lower-case: its subjectAltName DNS
// entries, or its subject CN when it has none. Empty when the text does not parse.
std::vector<std::string> TlsCertificateNames(const std::string& cert_pem);

class TlsServerContext {
 public:
  // Requires at least one site, each with at least one certificate. Returns an error
  // naming the certificate when a PEM text does not parse or the key does not belong to
  // the certificate.
  static Result<std::shared_ptr<const TlsServerContext>> Build(std::vector<TlsSite> sites);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  TlsServerContext();
  std::unique_ptr<Impl> impl_;
};

// Serves a decrypted connection: `plain` is the session's end of the socket pair (a
// stream socket; read, write, wait and shutdown work as on TCP), `site` the index SNI
// picked.
using PlainSessionHandler = std::function<asio::awaitable<void>(tcp::socket plain, int site)>;

// Handshakes on `socket` (giving up after handshake_timeout), spawns `handler` on the
// socket's executor and relays bytes both ways until either side ends. Never throws.
asio::awaitable<void> ServeTls(tcp::socket socket, std::shared_ptr<const TlsServerContext> context,
                               TimeNs handshake_timeout, PlainSessionHandler handler);

}  // namespace infergate::http
