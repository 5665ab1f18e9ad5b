#pragma once
// Owners for OpenSSL objects: unique_ptr with the matching free function, so every object the
// TLS module makes is released on every path. Private to proxy/tls/.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lbd::tls::detail {

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const noexcept { Free(p); }
};

using SslCtxPtr = std::unique_ptr<SSL_CTX, Freer<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Freer<SSL, SSL_free>>;
using SessionPtr = std::unique_ptr<SSL_SESSION, Freer<SSL_SESSION, SSL_SESSION_free>>;
using X509Ptr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

inline void free_x509_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Freer<STACK_OF(X509), free_x509_stack>>;
inline void free_names(GENERAL_NAMES* n) { GENERAL_NAMES_free(n); }
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES, free_names>>;

/// A new reference to `x` (OpenSSL objects are reference counted).
inline X509Ptr share(X509* x) {
  X509_up_ref(x);
  return X509Ptr(x);
}
inline PkeyPtr share(EVP_PKEY* k) {
  EVP_PKEY_up_ref(k);
  return PkeyPtr(k);
}

/// Drains this thread's OpenSSL error queue into one line ("reason; reason"), the reasons only:
/// they read as English ("unsupported protocol") where the full codes do not. Empty when the
/// queue was empty. With `reasons`, also collects each error's reason code. Call it right after
/// the failing call: the queue is per thread, and another task may run at the next co_await.
std::string drain_errors(std::vector<int>* reasons = nullptr);

/// What a memory BIO holds, as a string.
std::string bio_text(BIO* bio);

/// RFC 2253 text of an X.509 name ("CN=a.example.com,O=Example").
std::string name_text(const X509_NAME* name);

/// ALPN protocol names in the wire format (length-prefixed); empty if a name is empty or longer
/// than 255 bytes.
std::string alpn_wire(const std::vector<std::string>& names);

/// A host name in the form SNI lookups compare: lower case, without a trailing dot.
std::string normalize_host(std::string_view name);

}  // namespace lbd::tls::detail
