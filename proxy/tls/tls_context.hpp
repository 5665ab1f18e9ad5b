#pragma once
// TLS contexts: what a listener (ServerContext) or a cluster (ClientContext) needs to make TLS
// connections, built from files and settings.
//
// A server's certificates and keys are read and checked once, on the config thread, into a
// ServerCredentials: immutable, shared by every worker (OpenSSL's certificate and key objects are
// safe to use from several threads once built). Each worker makes its own ServerContext from it:
// the SSL_CTX objects and the ticket keys it uses, touched by that worker's thread only. A
// ClientContext holds a session cache that it updates, so it belongs to one worker too.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/tls/ticket_keys.hpp"
#include "runtime/result.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX; its headers stay inside proxy/tls/

namespace lbd::tls {

class TlsStream;

namespace detail {
struct ServerShared;
struct ClientCache;
struct CredentialData;
}  // namespace detail

enum class TlsVersion { kTls1_0, kTls1_1, kTls1_2, kTls1_3 };
/// "TLSv1.0" ... "TLSv1.3": OpenSSL's and nginx's spelling, which the config file uses too.
std::string_view to_string(TlsVersion v);
std::optional<TlsVersion> parse_tls_version(std::string_view s);

/// Whether a server asks its clients for a certificate (mTLS).
enum class VerifyClient {
  kOff,       // no certificate is asked for
  kOptional,  // asked for; a client without one is let in, one with a bad one is refused
  kRequired,  // a client without a good certificate is refused in the handshake
};
/// "off" | "optional" | "required"
std::string_view to_string(VerifyClient v);
std::optional<VerifyClient> parse_verify_client(std::string_view s);

/// Mozilla's "intermediate" profile (server side TLS 1.2 ciphers; TLS 1.3's are OpenSSL's
/// defaults, which are the profile's).
inline constexpr std::string_view kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
/// With a floor below TLS 1.2 the default list adds the "old" profile's CBC suites (TLS 1.0 and
/// 1.1 know no AEAD) and drops OpenSSL's security level to 0, which those versions need for
/// their SHA-1 handshake signatures. Only a configured floor below 1.2 does this.
inline constexpr std::string_view kLegacyCiphers =
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:@SECLEVEL=0";
inline constexpr std::string_view kIntermediateGroups = "X25519:prime256v1:secp384r1";

/// A certificate to serve: a PEM file with the leaf first and its chain after it, and the PEM
/// private key (RSA or ECDSA, unencrypted).
struct CertificateFiles {
  std::string chain_file;
  std::string key_file;
  /// The SNI names it answers (exact "a.example.com" or one-label wildcard "*.example.com").
  /// Empty: the certificate's SAN DNS names, or its CN when it has none.
  std::vector<std::string> names;
  bool operator==(const CertificateFiles&) const = default;
};

struct ServerOptions {
  /// The first is the default: for clients without SNI or with a name no certificate has.
  std::vector<CertificateFiles> certificates;
  TlsVersion min_version = TlsVersion::kTls1_2;
  /// TLS 1.2 and below, OpenSSL's syntax. Empty: kIntermediateCiphers (kLegacyCiphers added
  /// with a floor below 1.2). A list of one's own for TLS 1.0/1.1 needs "@SECLEVEL=0" too.
  std::string ciphers;
  /// TLS 1.3 suites; empty: OpenSSL's default (the profile's).
  std::string ciphersuites;
  std::string groups = std::string(kIntermediateGroups);
  /// ALPN names in the server's order of preference; the first one the client also offers is
  /// chosen. A client that offers ALPN but none of these is refused (no_application_protocol,
  /// RFC 7301). Empty: no ALPN.
  std::vector<std::string> alpn = {"http/1.1"};
  /// mTLS: PEM file of the CAs a client certificate must chain to (required unless kOff).
  std::string client_ca_file;
  VerifyClient verify_client = VerifyClient::kOff;
  /// How long a ticket's session may be resumed.
  uint32_t session_lifetime_seconds = 12 * 3600;
  bool operator==(const ServerOptions&) const = default;
};

/// One problem found while loading. `message` names the file and what is wrong with it
/// ("/etc/lbd/a.pem: certificate expired on Jan  1 00:00:00 2024 GMT"); the config layer adds
/// the file:line of the key that named it, found through `certificate` and `file`.
struct LoadProblem {
  static constexpr std::size_t kNoCertificate = SIZE_MAX;
  std::size_t certificate = kNoCertificate;  // index into ServerOptions::certificates
  std::string file;                          // the file it is about; empty when none
  std::string message;
};

struct LoadReport {
  std::vector<LoadProblem> errors;
  /// Not fatal: a certificate that expires within kExpiryWarningDays, one no SNI name selects.
  std::vector<LoadProblem> warnings;
  bool ok() const { return errors.empty(); }
};

/// Days before expiry from which loading warns.
inline constexpr int kExpiryWarningDays = 14;

/// A server's certificates, keys and client CAs, read and checked (see the file comment).
class ServerCredentials {
 public:
  /// Reads and checks every file of `opts` and the settings OpenSSL parses (ciphers, groups,
  /// ALPN names). On any error returns null; `report` holds every problem found, not only the
  /// first, so `lbd -t` lists them all.
  static std::shared_ptr<const ServerCredentials> load(const ServerOptions& opts, LoadReport& report);

  const ServerOptions& options() const { return opts_; }
  std::size_t certificate_count() const;
  /// The SNI names certificate `i` answers, normalized (lower case).
  const std::vector<std::string>& names(std::size_t i) const;
  ~ServerCredentials();

 private:
  friend class ServerContext;
  ServerCredentials();
  ServerOptions opts_;
  std::unique_ptr<detail::CredentialData> data_;
};

/// One worker's server side: an SSL_CTX per certificate (SNI switches between them) and the
/// ticket keys. Used by one thread.
class ServerContext {
 public:
  /// Fails only when OpenSSL cannot build what load() already checked (out of memory), or
  /// with EINVAL without credentials. Null `keys`: no tickets are issued until
  /// set_ticket_keys() gives some.
  static Result<std::unique_ptr<ServerContext>> create(std::shared_ptr<const ServerCredentials> creds,
                                                       std::shared_ptr<const TicketKeys> keys);
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;
  ~ServerContext();

  /// Takes rotated keys: new tickets from now on are issued under keys->current(). Connections
  /// in their handshake keep working (the keys are held by the contexts' shared state).
  void set_ticket_keys(std::shared_ptr<const TicketKeys> keys);
  /// The certificate SNI `name` selects: exact match first, then a one-label wildcard, case
  /// insensitive; the default (0) when none matches or `name` is empty.
  std::size_t certificate_for(std::string_view name) const;
  const ServerCredentials& credentials() const;

 private:
  friend class TlsStream;
  ServerContext() = default;
  /// The SSL_CTX new connections start from (the default certificate's).
  ssl_ctx_st* native() const;
  ssl_ctx_st* default_ctx_ = nullptr;      // owned: freed in the destructor (a reference)
  detail::ServerShared* shared_ = nullptr;  // owned by default_ctx_'s ex_data
};

struct ClientOptions {
  /// Verify the server's certificate chain and its host name (the SNI name, or the IP address).
  bool verify = true;
  /// PEM file of trusted CAs; empty: the system's store.
  std::string ca_file;
  /// A client certificate (mTLS to the upstream): chain file and key file, both or neither.
  std::string cert_file;
  std::string key_file;
  std::vector<std::string> alpn = {"http/1.1"};
  TlsVersion min_version = TlsVersion::kTls1_2;
  std::optional<TlsVersion> max_version;
  /// TLS 1.2 and below; empty: OpenSSL's default list.
  std::string ciphers;
  /// Sessions kept for resumption, one per session key (endpoint); the oldest goes first.
  std::size_t max_cached_sessions = 1024;
  bool operator==(const ClientOptions&) const = default;
};

/// One worker's client side (connections to upstreams), with its session cache.
class ClientContext {
 public:
  /// Null on error; `report` says which file or setting and why.
  static std::unique_ptr<ClientContext> load(const ClientOptions& opts, LoadReport& report);
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;
  ~ClientContext();

  const ClientOptions& options() const { return opts_; }
  /// Sessions held for resumption.
  std::size_t cached_sessions() const;

 private:
  friend class TlsStream;
  ClientContext();
  ssl_ctx_st* native() const { return ctx_; }
  detail::ClientCache& cache() { return *cache_; }
  ClientOptions opts_;
  ssl_ctx_st* ctx_ = nullptr;  // owned: freed in the destructor
  std::unique_ptr<detail::ClientCache> cache_;
};

}  // namespace lbd::tls
