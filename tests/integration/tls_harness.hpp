#pragma once
// TLS additions to the integration harness (harness.hpp): a TLS client the tests drive like a
// plain socket, the bytes of a real ClientHello for the tests that stall a handshake on
// purpose, and what a certificate file holds (to compare with what a server sent).
//
// The client is OpenSSL on a socket of its own, with a thread that pumps between the TLS
// connection and one end of a socketpair; the test gets the other end (fd()). So everything the
// plain tests use (send_all, HttpReader, send_stream, StreamChecker) works unchanged over TLS,
// and lbd's TLS is checked against a client that shares none of its code (only the library).
// As with the rest of the harness, every wait has a bound.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"

struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;

namespace lbd::it {

/// A TLS session the client may resume (opaque; copies share it).
class TlsSession {
 public:
  TlsSession() = default;
  explicit operator bool() const { return session_ != nullptr; }

 private:
  friend class TlsClient;
  std::shared_ptr<ssl_session_st> session_;
};

struct TlsClientOptions {
  std::string sni;                 // "": no SNI extension
  std::vector<std::string> alpn;   // protocols offered; empty: no ALPN extension
  std::string ca_file;             // verify the server's chain (and `sni` as host name); "": no check
  std::string cert_file;           // a client certificate (chain, leaf first) and its key
  std::string key_file;
  std::string version;             // "TLSv1.2" / "TLSv1.3": only that version; "": 1.2 or 1.3
  TlsSession session;              // to resume
  std::string source;              // source address ("": default)
  Ms handshake_limit = 5000ms;
};

/// What a handshake ended with.
struct TlsHandshake {
  bool ok = false;
  std::string error;          // when not ok: OpenSSL's errors, e.g. "... tlsv1 alert protocol version ..."
  std::string version;        // "TLSv1.3"
  std::string alpn;           // the protocol the server chose; "" for none
  bool reused = false;        // the session was resumed
  std::string peer_subject;   // the server certificate's subject, RFC 2253 ("CN=a.test,O=lbd tests")
  std::string peer_cn;
  std::string peer_serial;    // hex
  std::vector<std::string> peer_dns;  // the SAN DNS names
};

/// One TLS connection to 127.0.0.1:port (see the file comment).
class TlsClient {
 public:
  /// Connects and runs the handshake (bounded by opts.handshake_limit). Always returns a
  /// client; handshake().ok says whether the handshake succeeded, and only then is fd() usable.
  static std::unique_ptr<TlsClient> connect(uint16_t port, const TlsClientOptions& opts);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  const TlsHandshake& handshake() const { return handshake_; }
  /// The plaintext side: what is written to it is sent over TLS, what the server sends is read
  /// from it. It reaches EOF when the TLS connection ends (then net_end() says how).
  int fd() const { return app_.get(); }
  /// How the TLS side ended: "" while it is open, else "close_notify", "eof", or OpenSSL's
  /// error (a server's alert shows here, e.g. "... alert certificate required ...").
  std::string net_end() const;
  /// Waits until the server has given a resumable session (TLS 1.3 sends tickets after the
  /// handshake; they arrive as the client reads) and returns the latest.
  TlsSession wait_session(Ms limit = 5000ms) const;

 private:
  TlsClient() = default;
  void handshake_run(uint16_t port, const TlsClientOptions& opts);
  void pump();
  void set_end(std::string why);
  static int on_new_session(ssl_st* ssl, ssl_session_st* session);

  TlsHandshake handshake_;
  Fd net_;        // the TCP connection to lbd
  Fd app_;        // the test's end of the socketpair
  Fd pump_side_;  // the pump's end
  Fd wake_read_, wake_write_;  // the destructor stops the pump through this pipe
  ssl_ctx_st* ctx_ = nullptr;  // owned; freed in the destructor
  ssl_st* ssl_ = nullptr;      // owned; touched only by the pump thread once it runs
  std::thread pump_thread_;
  mutable std::mutex mu_;
  std::string end_;              // guarded by mu_
  TlsSession latest_session_;    // guarded by mu_; set from the pump thread (on_new_session)
};

/// The first flight of a real TLS client (a ClientHello record) offering `sni`.
std::string client_hello_bytes(const std::string& sni);

// ---------------------------------------------------------------------------------------------
// Certificates

/// Facts about a PEM certificate file's first certificate, for comparing with what a server sent.
struct CertFacts {
  std::string cn;
  std::string serial;  // hex, as TlsHandshake::peer_serial
};
CertFacts cert_facts(const std::string& pem_file);

}  // namespace lbd::it
