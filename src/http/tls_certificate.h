// Whether a PEM certificate chain and private key can serve TLS (the check `serve` makes
// before binding an HTTPS listener), without Asio: for `infergate check`.
//
// Thread-safe (pure apart from OpenSSL's thread-safe library state).
#pragma once

#include <string>

#include "core/status.h"

namespace infergate::http {

// Ok when cert_pem holds a PEM certificate (chain) and key_pem its unencrypted private
// key; otherwise an error naming `name` (e.g. the Secret) and what is wrong.
Status CheckTlsCertificate(const std::string& cert_pem, const std::string& key_pem,
                           const std::string& name);

}  // namespace infergate::http
