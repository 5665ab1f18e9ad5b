#include "proxy/tls/tls_context.hpp"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "proxy/tls/detail/openssl_ptr.hpp"
#include "proxy/tls/detail/session_cache.hpp"

namespace lbd::tls {

std::string_view to_string(TlsVersion v) {
  switch (v) {
    case TlsVersion::kTls1_0:
      return "TLSv1.0";
    case TlsVersion::kTls1_1:
      return "TLSv1.1";
    case TlsVersion::kTls1_2:
      return "TLSv1.2";
    case TlsVersion::kTls1_3:
      return "TLSv1.3";
  }
  return "TLSv?";
}

std::optional<TlsVersion> parse_tls_version(std::string_view s) {
  for (TlsVersion v : {TlsVersion::kTls1_0, TlsVersion::kTls1_1, TlsVersion::kTls1_2, TlsVersion::kTls1_3})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

std::string_view to_string(VerifyClient v) {
  switch (v) {
    case VerifyClient::kOff:
      return "off";
    case VerifyClient::kOptional:
      return "optional";
    case VerifyClient::kRequired:
      return "required";
  }
  return "off";
}

std::optional<VerifyClient> parse_verify_client(std::string_view s) {
  for (VerifyClient v : {VerifyClient::kOff, VerifyClient::kOptional, VerifyClient::kRequired})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

namespace detail {

struct LoadedCertificate {
  X509Ptr leaf;
  X509StackPtr chain;
  PkeyPtr key;
  std::vector<std::string> names;  // normalized
};

struct CredentialData {
  std::vector<LoadedCertificate> certs;
  X509StackPtr client_cas;
  std::string alpn;     // wire format
  std::string ciphers;  // the effective TLS <= 1.2 list
};

/// What every SSL_CTX of one ServerContext shares; owned by the default certificate's SSL_CTX
/// (its ex_data), so that connections, which hold that SSL_CTX, keep it alive.
struct ServerShared {
  SSL_CTX* owner = nullptr;            // the default certificate's context (owns this)
  std::vector<SSL_CTX*> contexts;      // [0] == owner; [1..] owned here (one reference each)
  std::shared_ptr<const ServerCredentials> creds;
  std::shared_ptr<const TicketKeys> keys;
  std::unordered_map<std::string, std::size_t> exact;     // "a.example.com" -> certificate
  std::unordered_map<std::string, std::size_t> wildcard;  // "example.com" for "*.example.com"
  const std::string* alpn = nullptr;   // in creds

  ~ServerShared();
  std::size_t lookup(std::string_view name) const;
};

int server_shared_index();

ServerShared::~ServerShared() {
  for (std::size_t i = 1; i < contexts.size(); ++i) {
    SSL_CTX_set_ex_data(contexts[i], server_shared_index(), nullptr);
    SSL_CTX_free(contexts[i]);
  }
}

std::size_t ServerShared::lookup(std::string_view name) const {
  if (name.empty()) return 0;
  std::string n = normalize_host(name);
  if (auto it = exact.find(n); it != exact.end()) return it->second;
  // One label only, as browsers match: "*.example.com" covers "a.example.com", not
  // "a.b.example.com" nor "example.com".
  std::size_t dot = n.find('.');
  if (dot == std::string::npos || dot == 0) return 0;
  if (auto it = wildcard.find(n.substr(dot + 1)); it != wildcard.end()) return it->second;
  return 0;
}

namespace {
void free_server_shared(void* parent, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  auto* shared = static_cast<ServerShared*>(ptr);
  if (shared && shared->owner == parent) delete shared;
}
}  // namespace

int server_shared_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_server_shared);
  return index;
}

}  // namespace detail

namespace {

using detail::CredentialData;
using detail::LoadedCertificate;
using detail::ServerShared;

int version_code(TlsVersion v) {
  switch (v) {
    case TlsVersion::kTls1_0:
      return TLS1_VERSION;
    case TlsVersion::kTls1_1:
      return TLS1_1_VERSION;
    case TlsVersion::kTls1_2:
      return TLS1_2_VERSION;
    case TlsVersion::kTls1_3:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

/// Reads a whole file; on failure `why` says what went wrong in a user's words.
bool read_file(const std::string& path, std::string& out, std::string& why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    why = e == ENOENT ? "no such file" : std::string("cannot open: ") + std::strerror(e);
    return false;
  }
  out.clear();
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      why = std::string("cannot read: ") + std::strerror(e);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 1024 * 1024) {
      ::close(fd);
      why = "larger than 1 MiB, not a PEM file";
      return false;
    }
  }
  ::close(fd);
  return true;
}

std::string time_text(const ASN1_TIME* t) {
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return "?";
  ASN1_TIME_print(bio.get(), t);
  return detail::bio_text(bio.get());
}

/// Every certificate in a PEM text; empty when there is none.
detail::X509StackPtr parse_certificates(const std::string& pem) {
  detail::X509StackPtr certs(sk_X509_new_null());
  detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!certs || !bio) return {};
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (!sk_X509_push(certs.get(), x)) {
      X509_free(x);
      break;
    }
  }
  ERR_clear_error();  // the read that ended the loop queued "no start line"
  return certs;
}

int no_passphrase(char*, int, int, void*) { return -1; }

/// Collects problems with the certificate or file at hand.
class Problems {
 public:
  Problems(LoadReport& report, std::size_t cert) : report_(report), cert_(cert) {}
  void error(const std::string& file, std::string what) { add(report_.errors, file, std::move(what)); }
  void warning(const std::string& file, std::string what) { add(report_.warnings, file, std::move(what)); }

 private:
  void add(std::vector<LoadProblem>& to, const std::string& file, std::string what) {
    LoadProblem p;
    p.certificate = cert_;
    p.file = file;
    if (file.empty()) {
      p.message = std::move(what);
    } else {
      p.message = file;
      p.message += ": ";
      p.message += what;
    }
    to.push_back(std::move(p));
  }
  LoadReport& report_;
  std::size_t cert_;
};

/// The leaf of a PEM chain file and the rest of the chain; null leaf on error (reported).
bool load_chain(const std::string& path, Problems& problems, detail::X509Ptr& leaf, detail::X509StackPtr& chain) {
  std::string pem, why;
  if (!read_file(path, pem, why)) {
    problems.error(path, why);
    return false;
  }
  detail::X509StackPtr certs = parse_certificates(pem);
  if (!certs || sk_X509_num(certs.get()) == 0) {
    problems.error(path, "not a PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block that parses)");
    return false;
  }
  leaf.reset(sk_X509_shift(certs.get()));
  chain = std::move(certs);
  return true;
}

detail::PkeyPtr load_key(const std::string& path, Problems& problems) {
  std::string pem, why;
  if (!read_file(path, pem, why)) {
    problems.error(path, why);
    return {};
  }
  detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  detail::PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) {
    if (pem.find("ENCRYPTED") != std::string::npos)
      problems.error(path, "the private key is encrypted (lbd reads unencrypted keys only)");
    else
      problems.error(path, "not a PEM private key (no RSA or EC \"-----BEGIN ... PRIVATE KEY-----\" block that parses)");
  }
  return key;
}

/// The certificate's SAN DNS names, or its CN when it has none.
std::vector<std::string> names_of(X509* leaf) {
  std::vector<std::string> out;
  detail::GeneralNamesPtr sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = gn->d.dNSName;
      out.push_back(detail::normalize_host(
          std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s))));
    }
  }
  if (out.empty()) {
    const X509_NAME* subject = X509_get_subject_name(leaf);
    int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
      unsigned char* utf8 = nullptr;
      int n = ASN1_STRING_to_UTF8(&utf8, cn);
      if (n > 0) out.push_back(detail::normalize_host(std::string_view(reinterpret_cast<char*>(utf8), n)));
      OPENSSL_free(utf8);
    }
  }
  ERR_clear_error();
  return out;
}

bool valid_sni_name(std::string_view n) {
  if (n.empty()) return false;
  std::size_t star = n.find('*');
  if (star == std::string_view::npos) return true;
  return star == 0 && n.size() > 2 && n[1] == '.' && n.find('*', 1) == std::string_view::npos;
}

/// Checks validity dates: an error when expired or not yet valid, a warning near expiry.
void check_dates(X509* leaf, const std::string& path, Problems& problems) {
  const ASN1_TIME* not_before = X509_get0_notBefore(leaf);
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  if (X509_cmp_current_time(not_after) < 0) {
    problems.error(path, "certificate expired on " + time_text(not_after));
    return;
  }
  if (X509_cmp_current_time(not_before) > 0) {
    problems.error(path, "certificate is not valid before " + time_text(not_before));
    return;
  }
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, not_after) && days < kExpiryWarningDays) {
    std::string what = "certificate expires on ";
    what += time_text(not_after);
    what += ", in ";
    what += std::to_string(days);
    what += days == 1 ? " day" : " days";
    problems.warning(path, std::move(what));
  }
}

/// The settings OpenSSL parses, tried on a scratch context so that a typo is a load error.
void check_settings(const ServerOptions& opts, const CredentialData& data, LoadReport& report) {
  Problems problems(report, LoadProblem::kNoCertificate);
  detail::SslCtxPtr probe(SSL_CTX_new(TLS_server_method()));
  if (!probe) {
    problems.error("", "OpenSSL could not make a context: " + detail::drain_errors());
    return;
  }
  if (!data.ciphers.empty() && SSL_CTX_set_cipher_list(probe.get(), data.ciphers.c_str()) != 1)
    problems.error("", "ciphers \"" + data.ciphers + "\": no cipher in the list is known to OpenSSL");
  if (!opts.ciphersuites.empty() && SSL_CTX_set_ciphersuites(probe.get(), opts.ciphersuites.c_str()) != 1)
    problems.error("", "ciphersuites \"" + opts.ciphersuites + "\": not a TLS 1.3 suite list OpenSSL knows");
  if (!opts.groups.empty() && SSL_CTX_set1_groups_list(probe.get(), opts.groups.c_str()) != 1)
    problems.error("", "groups \"" + opts.groups + "\": a group OpenSSL does not know");
  if (!opts.alpn.empty() && data.alpn.empty())
    problems.error("", "alpn: every protocol name must be 1 to 255 bytes long");
  if (opts.verify_client != VerifyClient::kOff && opts.client_ca_file.empty())
    problems.error("", "verify_client is " + std::string(to_string(opts.verify_client)) + " but no client_ca file is given");
  ERR_clear_error();
}

}  // namespace

ServerCredentials::ServerCredentials() : data_(std::make_unique<CredentialData>()) {}
ServerCredentials::~ServerCredentials() = default;

std::size_t ServerCredentials::certificate_count() const { return data_->certs.size(); }
const std::vector<std::string>& ServerCredentials::names(std::size_t i) const { return data_->certs.at(i).names; }

std::shared_ptr<const ServerCredentials> ServerCredentials::load(const ServerOptions& opts, LoadReport& report) {
  std::shared_ptr<ServerCredentials> creds(new ServerCredentials());
  creds->opts_ = opts;
  CredentialData& data = *creds->data_;
  std::size_t errors_before = report.errors.size();

  if (opts.certificates.empty()) Problems(report, LoadProblem::kNoCertificate).error("", "no certificate is given");
  std::unordered_map<std::string, std::size_t> owner_of;  // SNI name -> certificate index
  for (std::size_t i = 0; i < opts.certificates.size(); ++i) {
    const CertificateFiles& files = opts.certificates[i];
    Problems problems(report, i);
    LoadedCertificate cert;
    bool chain_ok = load_chain(files.chain_file, problems, cert.leaf, cert.chain);
    cert.key = load_key(files.key_file, problems);
    if (!chain_ok) continue;
    check_dates(cert.leaf.get(), files.chain_file, problems);
    if (cert.key && X509_check_private_key(cert.leaf.get(), cert.key.get()) != 1) {
      problems.error(files.key_file, "the private key does not match the certificate in " + files.chain_file);
      cert.key.reset();
    }
    ERR_clear_error();
    if (files.names.empty()) {
      cert.names = names_of(cert.leaf.get());
    } else {
      for (const std::string& n : files.names) {
        if (!valid_sni_name(n)) {
          problems.error(files.chain_file, "SNI name \"" + n + "\" is neither a host name nor \"*.\" and a domain");
          continue;
        }
        cert.names.push_back(detail::normalize_host(n));
      }
    }
    if (cert.names.empty() && i != 0)
      problems.warning(files.chain_file, "the certificate has no DNS name (SAN or CN) and no names are given: "
                                         "no SNI name selects it");
    for (const std::string& n : cert.names) {
      auto [it, fresh] = owner_of.emplace(n, i);
      if (!fresh && it->second != i) {
        problems.error(files.chain_file, "SNI name " + n + " is also served by certificate " +
                                             std::to_string(it->second) + " (" +
                                             opts.certificates[it->second].chain_file + ")");
      }
    }
    if (cert.key) data.certs.push_back(std::move(cert));
  }

  if (!opts.client_ca_file.empty()) {
    Problems problems(report, LoadProblem::kNoCertificate);
    std::string pem, why;
    if (!read_file(opts.client_ca_file, pem, why)) {
      problems.error(opts.client_ca_file, why);
    } else {
      data.client_cas = parse_certificates(pem);
      if (!data.client_cas || sk_X509_num(data.client_cas.get()) == 0)
        problems.error(opts.client_ca_file, "not a PEM certificate (no CA certificate that parses)");
    }
  }

  data.alpn = detail::alpn_wire(opts.alpn);
  data.ciphers = opts.ciphers;
  if (data.ciphers.empty()) {
    data.ciphers = std::string(kIntermediateCiphers);
    if (opts.min_version < TlsVersion::kTls1_2) {
      data.ciphers += ':';
      data.ciphers += kLegacyCiphers;
    }
  }
  check_settings(opts, data, report);
  if (report.errors.size() != errors_before) return nullptr;
  return creds;
}

namespace {

int servername_cb(SSL* ssl, int*, void*) {
  auto* shared = static_cast<ServerShared*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), detail::server_shared_index()));
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!shared || !name) return SSL_TLSEXT_ERR_NOACK;
  std::size_t i = shared->lookup(name);
  if (i != 0 && SSL_set_SSL_CTX(ssl, shared->contexts[i]) == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

int alpn_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
            void* arg) {
  const std::string& ours = *static_cast<ServerShared*>(arg)->alpn;
  unsigned char* chosen = nullptr;
  // The server's order: SSL_select_next_proto walks its first list and takes the first name
  // the second one also has.
  int r = SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(ours.data()),
                                static_cast<unsigned>(ours.size()), in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

bool set_ticket_mac(EVP_MAC_CTX* hctx, const TicketKeys::Key& k) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(k.hmac.data()), k.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/// Encrypts new tickets under the current key; decrypts under the current or the previous one
/// (2 asks OpenSSL to issue a fresh ticket under the current key).
int ticket_cb(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx,
              int enc) {
  auto* shared = static_cast<ServerShared*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), detail::server_shared_index()));
  // 0: no ticket is issued (encrypting) or the ticket is not ours (decrypting); either way the
  // handshake goes on as a full one.
  if (!shared || !shared->keys) return 0;
  const EVP_CIPHER* cipher = EVP_aes_256_cbc();
  if (enc) {
    const TicketKeys::Key& k = shared->keys->current();
    std::memcpy(key_name, k.name.data(), k.name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, cipher, nullptr, k.aes.data(), iv) != 1) return -1;
    return set_ticket_mac(hctx, k) ? 1 : -1;
  }
  bool current = false;
  const TicketKeys::Key* k = shared->keys->find(std::span<const unsigned char, 16>(key_name, 16), &current);
  if (!k) return 0;  // unknown key: a full handshake
  if (!set_ticket_mac(hctx, *k)) return -1;
  if (EVP_DecryptInit_ex(cctx, cipher, nullptr, k->aes.data(), iv) != 1) return -1;
  return current ? 1 : 2;
}

constexpr unsigned char kSessionIdContext[] = "lbd";

/// One TLS 1.3 ticket per handshake, not OpenSSL's two: a client keeps one per server. None
/// without ticket keys (ticket_rotation: 0s): an empty NewSessionTicket would still cost a copy
/// of the session and a key derivation per handshake.
bool set_ticket_issue(SSL_CTX* c, bool tickets) {
  if (tickets)
    SSL_CTX_clear_options(c, SSL_OP_NO_TICKET);
  else
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  return SSL_CTX_set_num_tickets(c, tickets ? 1 : 0) == 1;
}

/// One certificate's SSL_CTX with the settings every one of a ServerContext's contexts shares
/// (a connection that SNI moves to another context keeps its version limits and verify mode
/// from the first, and takes the rest from the new one, so they must agree).
detail::SslCtxPtr make_server_ctx(const ServerCredentials& creds, const CredentialData& data, std::size_t i,
                                  ServerShared* shared) {
  const ServerOptions& opts = creds.options();
  detail::SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return {};
  SSL_CTX* c = ctx.get();
  bool ok = SSL_CTX_set_min_proto_version(c, version_code(opts.min_version)) == 1;
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection gives its record buffers back to the allocator.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  ok = ok && SSL_CTX_set_cipher_list(c, data.ciphers.c_str()) == 1;
  if (!opts.ciphersuites.empty()) ok = ok && SSL_CTX_set_ciphersuites(c, opts.ciphersuites.c_str()) == 1;
  if (!opts.groups.empty()) ok = ok && SSL_CTX_set1_groups_list(c, opts.groups.c_str()) == 1;
  ok = ok && SSL_CTX_set_dh_auto(c, 1) == 1;
  const LoadedCertificate& cert = data.certs[i];
  ok = ok && SSL_CTX_use_cert_and_key(c, cert.leaf.get(), cert.key.get(), cert.chain.get(), 1) == 1;
  // Workers share nothing, so a server-side session cache could resume only on the worker
  // that made the session: tickets alone carry resumption.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  ok = ok && SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof(kSessionIdContext) - 1) == 1;
  SSL_CTX_set_timeout(c, static_cast<long>(opts.session_lifetime_seconds));
  ok = ok && set_ticket_issue(c, shared->keys != nullptr);
  ok = ok && SSL_CTX_set_tlsext_ticket_key_evp_cb(c, ticket_cb) == 1;
  ok = ok && SSL_CTX_set_ex_data(c, detail::server_shared_index(), shared) == 1;
  SSL_CTX_set_tlsext_servername_callback(c, servername_cb);
  if (!data.alpn.empty()) SSL_CTX_set_alpn_select_cb(c, alpn_cb, shared);
  if (opts.verify_client != VerifyClient::kOff && data.client_cas) {
    X509_STORE* store = X509_STORE_new();
    ok = ok && store != nullptr;
    for (int k = 0; ok && k < sk_X509_num(data.client_cas.get()); ++k) {
      X509* ca = sk_X509_value(data.client_cas.get(), k);
      ok = X509_STORE_add_cert(store, ca) == 1 && SSL_CTX_add_client_CA(c, ca) == 1;
    }
    if (store) SSL_CTX_set_cert_store(c, store);  // takes it over
    int mode = SSL_VERIFY_PEER;
    if (opts.verify_client == VerifyClient::kRequired) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, nullptr);
  }
  if (!ok) return {};
  return ctx;
}

}  // namespace

Result<std::unique_ptr<ServerContext>> ServerContext::create(std::shared_ptr<const ServerCredentials> creds,
                                                             std::shared_ptr<const TicketKeys> keys) {
  if (!creds || creds->certificate_count() == 0) return errno_error(EINVAL);
  const CredentialData& data = *creds->data_;
  auto shared = std::make_unique<ServerShared>();
  shared->creds = creds;
  shared->keys = std::move(keys);
  shared->alpn = &data.alpn;
  for (std::size_t i = 0; i < data.certs.size(); ++i) {
    for (const std::string& n : data.certs[i].names) {
      if (n.rfind("*.", 0) == 0)
        shared->wildcard.emplace(n.substr(2), i);
      else
        shared->exact.emplace(n, i);
    }
  }
  std::unique_ptr<ServerContext> out(new ServerContext());
  ServerShared* sh = shared.get();  // owned by `shared`, then by the default context
  for (std::size_t i = 0; i < data.certs.size(); ++i) {
    detail::SslCtxPtr ctx = make_server_ctx(*creds, data, i, sh);
    if (!ctx) {
      ERR_clear_error();
      return errno_error(ENOMEM);
    }
    sh->contexts.push_back(ctx.release());
    if (i == 0) {
      // From here the default context owns the shared state (its ex_data frees it), and `out`
      // owns the default context.
      sh->owner = sh->contexts[0];
      out->default_ctx_ = sh->contexts[0];
      out->shared_ = shared.release();
    }
  }
  return out;
}

ServerContext::~ServerContext() {
  if (default_ctx_) SSL_CTX_free(default_ctx_);
}

void ServerContext::set_ticket_keys(std::shared_ptr<const TicketKeys> keys) {
  shared_->keys = std::move(keys);
  for (SSL_CTX* c : shared_->contexts) (void)set_ticket_issue(c, shared_->keys != nullptr);
}

std::size_t ServerContext::certificate_for(std::string_view name) const { return shared_->lookup(name); }

const ServerCredentials& ServerContext::credentials() const { return *shared_->creds; }

ssl_ctx_st* ServerContext::native() const { return default_ctx_; }

// --- client side -----------------------------------------------------------------------------

namespace {

int new_session_cb(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<detail::ClientSlot*>(SSL_get_ex_data(ssl, detail::client_slot_index()));
  if (!slot || !slot->cache || !SSL_SESSION_is_resumable(session)) return 0;
  slot->cache->put(slot->key, session);
  return 1;  // the cache took the reference
}

}  // namespace

ClientContext::ClientContext() = default;

ClientContext::~ClientContext() {
  cache_.reset();  // sessions first: they do not reference the context, but keep the order plain
  if (ctx_) SSL_CTX_free(ctx_);
}

std::size_t ClientContext::cached_sessions() const { return cache_->entries.size(); }

std::unique_ptr<ClientContext> ClientContext::load(const ClientOptions& opts, LoadReport& report) {
  Problems problems(report, LoadProblem::kNoCertificate);
  std::size_t errors_before = report.errors.size();
  detail::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    problems.error("", "OpenSSL could not make a context: " + detail::drain_errors());
    return nullptr;
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, version_code(opts.min_version));
  if (opts.max_version) SSL_CTX_set_max_proto_version(c, version_code(*opts.max_version));
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (!opts.ciphers.empty() && SSL_CTX_set_cipher_list(c, opts.ciphers.c_str()) != 1)
    problems.error("", "ciphers \"" + opts.ciphers + "\": no cipher in the list is known to OpenSSL");

  if (opts.verify) {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    if (opts.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(c) != 1)
        problems.error("", "the system's CA store could not be loaded: " + detail::drain_errors());
    } else {
      std::string pem, why;
      if (!read_file(opts.ca_file, pem, why)) {
        problems.error(opts.ca_file, why);
      } else {
        detail::X509StackPtr cas = parse_certificates(pem);
        if (!cas || sk_X509_num(cas.get()) == 0) {
          problems.error(opts.ca_file, "not a PEM certificate (no CA certificate that parses)");
        } else {
          X509_STORE* store = SSL_CTX_get_cert_store(c);
          for (int k = 0; k < sk_X509_num(cas.get()); ++k) X509_STORE_add_cert(store, sk_X509_value(cas.get(), k));
        }
      }
    }
  }

  if (opts.cert_file.empty() != opts.key_file.empty()) {
    problems.error(opts.cert_file.empty() ? opts.key_file : opts.cert_file,
                   "a client certificate needs both its chain file and its key file");
  } else if (!opts.cert_file.empty()) {
    detail::X509Ptr leaf;
    detail::X509StackPtr chain;
    bool chain_ok = load_chain(opts.cert_file, problems, leaf, chain);
    detail::PkeyPtr key = load_key(opts.key_file, problems);
    if (chain_ok && key) {
      check_dates(leaf.get(), opts.cert_file, problems);
      if (X509_check_private_key(leaf.get(), key.get()) != 1)
        problems.error(opts.key_file, "the private key does not match the certificate in " + opts.cert_file);
      else if (SSL_CTX_use_cert_and_key(c, leaf.get(), key.get(), chain.get(), 1) != 1)
        problems.error(opts.cert_file, "OpenSSL refused the certificate: " + detail::drain_errors());
    }
  }

  if (!opts.alpn.empty()) {
    std::string wire = detail::alpn_wire(opts.alpn);
    // SSL_CTX_set_alpn_protos returns 0 on success.
    if (wire.empty() || SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(wire.data()),
                                                static_cast<unsigned>(wire.size())) != 0)
      problems.error("", "alpn: every protocol name must be 1 to 255 bytes long");
  }

  // Sessions go to our own cache, keyed by endpoint, not OpenSSL's (keyed by session id).
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c, new_session_cb);
  ERR_clear_error();
  if (report.errors.size() != errors_before) return nullptr;

  std::unique_ptr<ClientContext> out(new ClientContext());
  out->opts_ = opts;
  out->ctx_ = ctx.release();
  out->cache_ = std::make_unique<detail::ClientCache>(opts.max_cached_sessions);
  return out;
}

}  // namespace lbd::tls
