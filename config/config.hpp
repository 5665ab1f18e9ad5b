#pragma once
// Config: the daemon's configuration as plain value types, loaded from one YAML file.
//
// Every default lives here, as a default member initializer next to the field that carries it;
// the loader starts from default-constructed structs and overwrites only the keys a file sets.
// Each field's comment names its YAML key and says why the default was chosen (mostly nginx's
// or HAProxy's, so that lbd behaves like the proxies operators already know).
//
// Limits and pools are per worker: workers share nothing (DESIGN.md), so a cap such as
// `max_connections: 10000` holds for each worker thread, like nginx's worker_connections.
//
// This header does not include yaml-cpp; only config/*.cpp does.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/units.hpp"
#include "proxy/balancer/balance_kind.hpp"
#include "proxy/http/header_edits.hpp"
#include "proxy/tls/tls_context.hpp"
#include "runtime/io_mode.hpp"
#include "runtime/socket_address.hpp"

namespace lbd::config {

using namespace std::chrono_literals;

// The config-file spelling of each value is in the comment; to_string() returns it. The `io`
// key's lbd::IoMode is the runtime's, with its spelling (runtime/io_mode.hpp).
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };  // spdlog's level names
enum class AccessLogFormat { kCombined, kJson };                           // combined | json
enum class Protocol { kTcp, kHttp };                                       // tcp | http
enum class HashKeyKind { kSourceIp, kHeader };                    // source_ip | header:NAME
enum class HealthCheckType { kTcp, kHttp };                       // tcp | http
enum class Forwarding { kAuto, kCopy, kSplice };                        // auto | copy | splice

/// The spelling used in the config file ("round_robin", "combined", ...).
std::string_view to_string(LogLevel v);
/// Reads to_string(LogLevel)'s spelling back ("info" -> kInfo); nullopt for anything else. The
/// command line's --log-level takes the config file's words.
std::optional<LogLevel> parse_log_level(std::string_view text);
/// Every log level's spelling, from trace to off.
std::vector<std::string> log_level_names();
std::string_view to_string(AccessLogFormat v);
std::string_view to_string(Protocol v);
std::string_view to_string(HashKeyKind v);
std::string_view to_string(HealthCheckType v);
std::string_view to_string(Forwarding v);

// ---------------------------------------------------------------------------------------------
// Top-level sections

struct LogConfig {
  LogLevel level = LogLevel::kInfo;  // log.level: trace|debug|info|warn|error|critical|off
  // log.access_log: "stdout", "stderr", "off", or a file path (reopened on SIGUSR1).
  std::string access_log = "stdout";
  // log.access_log_format: combined (the nginx/Apache line every log tool parses) | json.
  AccessLogFormat access_log_format = AccessLogFormat::kCombined;
  std::string error_log = "stderr";  // log.error_log: "stderr", "stdout" or a file path
  bool operator==(const LogConfig&) const = default;
};

struct AdminConfig {
  // admin.listen: address of the admin/stats endpoint. Absent = no admin endpoint, so that
  // nothing listens that the operator did not ask for.
  std::optional<SocketAddress> listen;
  // admin.token: when set, every POST (maintenance) must carry `Authorization: Bearer TOKEN`
  // or gets 401; GETs stay open. Absent = no check, for an admin listener on loopback only.
  std::optional<std::string> token;
  bool operator==(const AdminConfig&) const = default;
};

struct ShutdownConfig {
  // shutdown.drain_timeout: how long SIGTERM waits for in-flight requests before closing
  // everything; 0 closes at once. 30s matches Kubernetes' default terminationGracePeriodSeconds;
  // under an orchestrator keep it a little below the grace period, so draining ends before the
  // SIGKILL does.
  Duration drain_timeout = 30s;
  // shutdown.ready_delay: after SIGTERM, how long `GET /ready` answers 503 while lbd still
  // accepts, before draining starts, so that a Kubernetes endpoint controller takes the pod out
  // of rotation first. 0s (the default) drains at once.
  Duration ready_delay = 0s;
  bool operator==(const ShutdownConfig&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Listeners

struct ListenerTimeouts {
  static constexpr Duration kHttpIdleDefault = 60s;
  static constexpr Duration kTcpIdleDefault = 10min;

  // timeouts.header (http only): time to receive a complete request line and headers; 408
  // after it. 60s = nginx client_header_timeout.
  Duration header = 60s;
  // timeouts.idle: http: how long a keep-alive client connection may wait for its next request
  //   (nginx keepalive_timeout is 75s, HAProxy's examples use 60s; we take 60s).
  // tcp: how long a session may pass no bytes from the client before it is closed. Defaults to
  //   kTcpIdleDefault (10m, nginx stream proxy_timeout) when the key is absent, because
  //   database and other long-lived L4 connections sit idle far longer than HTTP clients.
  Duration idle = kHttpIdleDefault;
  // timeouts.request_body (http only): longest gap between two reads of the request body
  // (not the whole body). 60s = nginx client_body_timeout.
  Duration request_body = 60s;
  // timeouts.handshake (tls listeners only): the whole TLS handshake, from accept to its last
  // message; a client that has not finished by then is closed. 10s: long enough for a slow
  // mobile link's round trips, short enough that stalled handshakes do not pile up (nginx
  // bounds it by client_header_timeout, 60s, which lets idle sockets hold memory far longer).
  Duration handshake = 10s;
  bool operator==(const ListenerTimeouts&) const = default;
};

struct Limits {  // http only
  // limits.max_request_line: longest request line; 414 beyond it. 8KiB = one nginx
  // large_client_header_buffers buffer.
  uint64_t max_request_line = 8 * 1024;
  // limits.max_header_bytes: request line plus all headers; 431 beyond it. 32KiB = nginx's
  // large_client_header_buffers 4 8k. Must be >= max_request_line.
  uint64_t max_header_bytes = 32 * 1024;
  // limits.max_body_size: largest request body; 413 beyond it. 0 = unlimited, as in HAProxy:
  // a load balancer should not impose an application's upload limit by surprise.
  uint64_t max_body_size = 0;
  bool operator==(const Limits&) const = default;
};

struct ForwardedHeaders {         // http only; all on, as most backends behind a proxy expect them
  bool x_forwarded_for = true;    // forwarded_headers.x_forwarded_for: append the client IP
  bool x_forwarded_proto = true;  // forwarded_headers.x_forwarded_proto: set "http"
  bool x_forwarded_host = true;   // forwarded_headers.x_forwarded_host: set the client's Host
  bool operator==(const ForwardedHeaders&) const = default;
};

/// What a request must look like for a route to take it. Every given condition must hold; an
/// empty match takes every request.
struct RouteMatch {
  // match.host: exact ("api.example.com") or one leading wildcard label ("*.example.com",
  // which matches a.example.com and a.b.example.com but not example.com). Stored lowercase;
  // compared case-insensitively against the Host header without its port.
  std::optional<std::string> host;
  std::optional<std::string> path_prefix;  // match.path_prefix: "/v1/"; starts with '/'
  std::optional<std::string> path;         // match.path: exact path, no query; starts with '/'
  // match.method (one) or match.methods (a list): uppercase tokens. Empty = any method.
  std::vector<std::string> methods;
  // match.headers: { name: value } — the request has this header with exactly this value.
  // Names are stored lowercase (header names are case-insensitive); values compare exactly.
  std::vector<http::FieldLine> headers;
  bool operator==(const RouteMatch&) const = default;
};

struct RouteConfig {
  RouteMatch match;     // route.match: absent or {} = every request
  std::string cluster;  // route.cluster: required; must name a cluster
  // route.rewrite_prefix: replaces the matched match.path_prefix ("/api/" -> "/"); requires
  // match.path_prefix.
  std::optional<std::string> rewrite_prefix;
  // route.request_headers / route.response_headers: { add: { name: value }, remove: [names] },
  // applied to the request on its way to the backend / the response on its way to the client.
  // Framing and hop-by-hop fields cannot be edited (http::is_proxy_managed_field).
  http::HeaderEdits request_headers;
  http::HeaderEdits response_headers;
  bool operator==(const RouteConfig&) const = default;
};

/// TLS termination on a listener (`tls:`). The certificates are read and checked by the loader,
/// on the config thread, into `credentials`; each worker builds its own contexts from them.
struct ListenerTls {
  // The OpenSSL-facing settings, with their defaults (tls_context.hpp):
  //   tls.cert + tls.key: one certificate (PEM chain, leaf first; PEM key, RSA or ECDSA), or
  //   tls.certificates: [{ cert, key, names: [...] }, ...]: several, chosen by SNI; names default
  //     to the certificate's SAN DNS names. The first is the default for clients without SNI.
  //   tls.min_version: TLSv1.2 (default) | TLSv1.3 | TLSv1.1 | TLSv1.0
  //   tls.ciphers (TLS <= 1.2), tls.ciphersuites (TLS 1.3), tls.groups: Mozilla intermediate.
  //   tls.alpn: http listeners [http/1.1]; tcp listeners: none, so that any client is let in.
  //   tls.client_ca: PEM CAs for client certificates; needed unless verify_client is off.
  //   tls.verify_client: off (default) | optional | required.
  tls::ServerOptions server;
  // tls.ticket_rotation: how often the session-ticket key changes; tickets under the previous
  // key still resume, so a ticket lives at most two periods. 12h: nginx's advice for tickets
  // (rotate at least daily); 0s issues no tickets (nginx ssl_session_tickets off).
  Duration ticket_rotation = 12h;
  // tls.client_subject_header (http only): the request header that carries the client
  // certificate's subject (RFC 2253) to the backend, when the client sent one; any such header
  // from the client itself is removed first, so a backend can trust it. "" = none. Stored
  // lowercase.
  std::string client_subject_header = "x-client-subject";
  // Loaded from `server` by the loader; never null in a loaded Config. Not a YAML key.
  std::shared_ptr<const tls::ServerCredentials> credentials;
  bool operator==(const ListenerTls&) const = default;
};

struct ListenerConfig {
  std::string name;      // name: required, unique; letters, digits, '_', '-', '.'
  SocketAddress listen;  // listen: required; "ip:port", "[v6]:port" or "unix:/path"
  // protocol: required (tcp | http). No default in the file on purpose: HAProxy defaults to
  // tcp and nginx to http, so either would surprise half the readers. (Http here is only what
  // a default-constructed struct holds.)
  Protocol protocol = Protocol::kHttp;
  // cluster: tcp: required, where every connection goes. http: the default for requests that
  // match no route (an http listener needs routes, a cluster, or both).
  std::string cluster;
  // max_connections: open client connections per worker; beyond it accepting pauses.
  // 10000 leaves room under the usual 64k fd limit for the upstream side.
  uint32_t max_connections = 10000;
  // backlog: listen(2) queue length; 511 like nginx on Linux (the kernel caps it at somaxconn).
  int backlog = 511;
  // forwarding (tcp only): how bytes move between the two sockets. copy: read into a pooled
  // buffer, write it out (with io_uring, from a provided-buffer ring). splice: through a pipe
  // with splice(2), never entering user space; it wins for bulk transfers and loses for small
  // messages (two splices instead of a recv and a send). auto: each direction copies until it
  // sees bulk (reads that fill the whole pooled buffer several times in a row), then splices;
  // its pipe is created only then, so idle and chatty sessions hold no pipe (bench/README.md).
  Forwarding forwarding = Forwarding::kAuto;
  ListenerTimeouts timeouts;           // timeouts
  Limits limits;                       // limits (http only)
  ForwardedHeaders forwarded_headers;  // forwarded_headers (http only)
  std::vector<RouteConfig> routes;     // routes (http only): first match wins, in file order
  std::optional<ListenerTls> tls;      // tls: absent = plain TCP / HTTP
  bool operator==(const ListenerConfig&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Clusters

struct HashKey {                             // hash_key (only with balance: hash)
  HashKeyKind kind = HashKeyKind::kSourceIp;  // "source_ip" or "header:NAME"
  std::string header_name;                   // NAME of header:NAME, lowercase; empty otherwise
  bool operator==(const HashKey&) const = default;
};

struct EndpointConfig {
  // address: required; an IP address (no DNS names yet) or a unix socket. Written either as a
  // map { address: ..., weight: ... } or as the bare address.
  SocketAddress address;
  uint32_t weight = 1;  // weight: 1..256, relative share of new connections/requests
  bool operator==(const EndpointConfig&) const = default;
};

struct ClusterTimeouts {
  // timeouts.connect: connect to a backend; then the next endpoint is tried (see retries).
  // 5s, HAProxy's customary `timeout connect`: nginx's 60s holds a client far too long for a
  // backend that will never answer.
  Duration connect = 5s;
  // timeouts.read: longest gap between two reads from the backend while a response is due.
  // 60s = nginx proxy_read_timeout. 504 if it fires before any response byte.
  Duration read = 60s;
  // timeouts.write: longest gap between two writes to the backend. 60s = nginx
  // proxy_send_timeout.
  Duration write = 60s;
  // timeouts.idle: tcp sessions: how long the backend side may pass no bytes before the
  // session is closed (HAProxy `timeout server`). 10m, the same as a tcp listener's idle, so
  // that neither side cuts a quiet session first.
  Duration idle = 10min;
  bool operator==(const ClusterTimeouts&) const = default;
};

struct Keepalive {  // http upstream connection pool, per worker
  // keepalive.max_idle: idle connections kept per worker; 0 disables reuse. 32, the value
  // nginx's upstream keepalive documentation uses.
  uint32_t max_idle = 32;
  // keepalive.idle_timeout: an idle pooled connection is closed after this. 60s = nginx's
  // upstream keepalive_timeout. It must stay below the backends' own keep-alive timeout, or a
  // backend may close a connection just as a request is sent on it: lower it for such backends.
  Duration idle_timeout = 60s;
  // keepalive.burst_hold: a connection back from a request may stay idle beyond max_idle for
  // this long, so a steady load above max_idle reuses its connections instead of closing and
  // reopening one per request; after that the pool trims back to max_idle. 0s = a strict cap
  // (nginx's keepalive).
  Duration burst_hold = 1s;
  bool operator==(const Keepalive&) const = default;
};

/// An inclusive range of HTTP status codes, "200-399" or "204".
struct StatusRange {
  uint16_t first = 200;
  uint16_t last = 399;
  bool contains(int status) const { return status >= first && status <= last; }
  bool operator==(const StatusRange&) const = default;
};

struct HealthCheck {  // health_check: absent = no active checks; every endpoint counts as up
  HealthCheckType type = HealthCheckType::kTcp;  // type: tcp (connect) | http (GET path)
  std::string path = "/";                       // path: http only; starts with '/'
  // host: http only; the Host header of the check. Empty = the endpoint's address ("ip:port").
  std::string host;
  // expect_status: http only; statuses that count as up: "200-399" (the default, HAProxy's
  // `http-check expect` default of 2xx and 3xx), "200", or a list ["200-299", 404].
  std::vector<StatusRange> expect_status = {StatusRange{200, 399}};
  Duration interval = 2s;  // interval: between two checks of one endpoint (HAProxy `inter` 2s)
  Duration timeout = 1s;   // timeout: one check's deadline (connect and, for http, the response)
  uint32_t rise = 2;       // rise: consecutive successes to mark a down endpoint up (HAProxy)
  uint32_t fall = 3;       // fall: consecutive failures to mark an up endpoint down (HAProxy)
  // jitter: each wait between checks is interval plus a random 0..jitter, so that checks of
  // many endpoints do not fall on the same instant. The first check of each endpoint is spread
  // over one interval regardless (as HAProxy spreads its first checks). 0s = none; must be
  // below interval.
  Duration jitter = 0s;
  bool operator==(const HealthCheck&) const = default;
};

/// Passive health: endpoints that fail requests in a row are taken out for a while (Envoy's
/// outlier detection). Each worker judges what its own traffic sees.
struct Outlier {
  // outlier.consecutive_failures: failures in a row that eject an endpoint. 5 = Envoy's
  // consecutive_5xx.
  uint32_t consecutive_failures = 5;
  // outlier.base_ejection: the first ejection's length; each further ejection of the same
  // endpoint doubles it (10s, 20s, 40s, ...) up to outlier.max_ejection. 5m is Envoy's
  // max_ejection_time; Envoy's base is 30s, 10s brings back sooner an endpoint that failed
  // only briefly. An endpoint that stays good for max_ejection starts again from base.
  Duration base_ejection = 10s;
  Duration max_ejection = 5min;
  // outlier.http_5xx: http clusters: a 5xx response from the endpoint counts as a failure
  // (Envoy counts them by default). Connect errors, connect timeouts and resets before a
  // response always count.
  bool http_5xx = true;
  bool operator==(const Outlier&) const = default;
};

struct ClusterConfig {
  std::string name;                       // name: required, unique; letters, digits, '_', '-', '.'
  // balance: round_robin (smooth weighted, the default) | least_conn | random_two | hash
  balancer::BalanceKind balance = balancer::BalanceKind::kRoundRobin;
  HashKey hash_key;                       // hash_key: for balance: hash; defaults to source_ip
  std::vector<EndpointConfig> endpoints;  // endpoints: required, at least one, no duplicates
  ClusterTimeouts timeouts;               // timeouts
  Keepalive keepalive;                    // keepalive
  // max_connections: open connections to the whole cluster per worker; 0 = unlimited
  // (nginx's default for upstream max_conns). Beyond it requests get 503.
  uint32_t max_connections = 0;
  // retries: 0..10 further endpoints tried when connecting fails, before any byte of the
  // request was sent (so retrying is always safe). 1: one retry rides out a single dead
  // backend without multiplying load during an outage.
  uint32_t retries = 1;
  std::optional<HealthCheck> health_check;  // health_check
  std::optional<Outlier> outlier;            // outlier: absent = no passive ejection
  bool operator==(const ClusterConfig&) const = default;
};

// ---------------------------------------------------------------------------------------------

struct Config {
  int workers = 0;                        // workers: "auto" or 0 (one per CPU), or 1..1024
  lbd::IoMode io = lbd::IoMode::kAuto;    // io: auto probes io_uring and falls back to epoll
  LogConfig log;                          // log
  AdminConfig admin;                      // admin
  ShutdownConfig shutdown;                // shutdown
  std::vector<ListenerConfig> listeners;  // listeners: required, at least one
  std::vector<ClusterConfig> clusters;    // clusters
  std::string source_path;  // the file (or source name) this was loaded from; not a YAML key

  /// The cluster called `name`, or nullptr. A loaded Config resolves every name it uses.
  const ClusterConfig* find_cluster(std::string_view name) const;

  bool operator==(const Config&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Loading

/// One problem in a config file. line and column are 1-based; 0 when there is no position
/// (a file that cannot be read, an empty file).
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key_path;  // "clusters[1].endpoints[0].address"; empty for the top level
  std::string message;

  /// "lb.yaml:12:7: clusters[1].endpoints[0].address: invalid address ..."; position and key
  /// path are left out when absent.
  std::string to_string() const;
  bool operator==(const ConfigError&) const = default;
};

/// A Config, or every error found in the file, in file order; and, either way, the warnings:
/// what does not stop the file from loading but an operator should hear about (a certificate
/// that expires soon).
class LoadResult {
 public:
  LoadResult(Config config, std::vector<ConfigError> warnings = {});  // NOLINT: implicit like Result
  // NOLINTNEXTLINE: implicit like Result; precondition: `errors` is not empty
  LoadResult(std::vector<ConfigError> errors, std::vector<ConfigError> warnings = {});

  bool has_value() const { return config_.has_value(); }
  explicit operator bool() const { return has_value(); }

  /// Precondition: has_value().
  const Config& value() const& { return *config_; }
  Config&& value() && { return *std::move(config_); }
  const Config& operator*() const& { return *config_; }
  const Config* operator->() const { return &*config_; }

  /// Empty when has_value().
  const std::vector<ConfigError>& errors() const { return errors_; }
  /// Every error's to_string(), one per line.
  std::string error_report() const;
  /// In file order; with or without a value.
  const std::vector<ConfigError>& warnings() const { return warnings_; }
  /// Every warning's to_string() after "warning: ", one per line.
  std::string warning_report() const;

 private:
  std::optional<Config> config_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
};

/// Reads and validates the file at `path`. Never throws (short of running out of memory).
LoadResult load_config_file(const std::string& path);

/// Validates YAML text; `source_name` stands in for the file name in errors and source_path.
LoadResult load_config_string(std::string_view yaml, std::string source_name);

/// A short human summary for `lbd -t`: each listener with where its traffic goes, and each
/// cluster with its balancer and endpoint count.
std::string describe(const Config& config);

}  // namespace lbd::config
