// The YAML boundary: turns a file into a Config or into the list of everything wrong with it.
// yaml-cpp exceptions are caught here and become ConfigErrors; none leave this file.

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "config/config.hpp"
#include "config/detail/suggest.hpp"
#include "config/detail/yaml_reader.hpp"
#include "proxy/http/forward.hpp"
#include "proxy/http/syntax.hpp"
#include "proxy/tls/tls_context.hpp"
#include "runtime/unique_fd.hpp"

namespace lbd::config {
namespace {

using detail::ErrorSink;
using detail::Field;
using detail::MapReader;
using detail::Position;
using detail::quoted;

template <class T, class U>
void assign(T& target, const std::optional<U>& value) {
  if (value) target = static_cast<T>(*value);
}

// ---------------------------------------------------------------------------------------------
// Value checks shared by several sections

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

std::string lowercase(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Listener and cluster names appear in logs, stats and the admin endpoint: keep them to
// characters that need no quoting anywhere.
std::optional<std::string> read_name(ErrorSink& errors, const Field& f) {
  auto name = detail::read_string(errors, f);
  if (!name) return std::nullopt;
  if (name->empty() || !std::all_of(name->begin(), name->end(), is_name_char)) {
    errors.add(f.at, f.path,
               "invalid name " + quoted(*name) + " (use letters, digits, '_', '-' or '.')");
    return std::nullopt;
  }
  return name;
}

// A reference to a cluster by name; resolved once every cluster is known.
std::optional<std::string> read_cluster_name(ErrorSink& errors, const Field& f) {
  auto name = detail::read_string(errors, f);
  if (name && name->empty()) {
    errors.add(f.at, f.path, "must not be empty");
    return std::nullopt;
  }
  return name;
}

// An origin-form path as it appears in a request line: "/", "/v1/", "/healthz".
std::optional<std::string> read_path(ErrorSink& errors, const Field& f) {
  auto path = detail::read_string(errors, f);
  if (!path) return std::nullopt;
  if (!path->starts_with('/')) {
    errors.add(f.at, f.path, "must start with '/', got " + quoted(*path));
    return std::nullopt;
  }
  auto bad = [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#';
  };
  if (std::any_of(path->begin(), path->end(), bad)) {
    errors.add(f.at, f.path,
               "invalid path " + quoted(*path) +
                   " (spaces, control characters, '?' and '#' are not allowed)");
    return std::nullopt;
  }
  return path;
}

// "api.example.com" or "*.example.com"; returned lowercase. Ports and IPv6 literals are not
// patterns: the proxy compares against the Host header with its port removed.
std::optional<std::string> read_host_pattern(ErrorSink& errors, const Field& f) {
  auto text = detail::read_string(errors, f);
  if (!text) return std::nullopt;
  std::string host = lowercase(*text);
  std::string_view rest = host;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  bool valid = !rest.empty() && rest.size() <= 253;
  while (valid && !rest.empty()) {
    const std::size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    valid =
        !label.empty() && label.size() <= 63 && std::all_of(label.begin(), label.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        });
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
    valid = valid && !rest.empty();  // no trailing dot
  }
  if (!valid) {
    errors.add(f.at, f.path,
               "invalid host pattern " + quoted(*text) +
                   " (expected a host name like api.example.com or a wildcard like "
                   "*.example.com)");
    return std::nullopt;
  }
  return host;
}

std::optional<std::string> read_method(ErrorSink& errors, const Field& f) {
  auto method = detail::read_string(errors, f);
  if (!method) return std::nullopt;
  const bool upper_token =
      http::is_token(*method) &&
      std::none_of(method->begin(), method->end(), [](char c) { return c >= 'a' && c <= 'z'; });
  if (!upper_token) {
    // Methods are case-sensitive: "get" would never match a GET request.
    errors.add(
        f.at, f.path,
        "invalid method " + quoted(*method) + " (expected an uppercase token such as GET or POST)");
    return std::nullopt;
  }
  return method;
}

bool check_header_name(ErrorSink& errors, Position at, const std::string& path,
                       std::string_view name) {
  if (http::is_token(name)) return true;
  errors.add(at, path, "invalid header name " + quoted(name));
  return false;
}

// A value that could smuggle a second header or end the header block is refused here rather
// than written to the wire.
std::optional<std::string> read_header_value(ErrorSink& errors, const Field& f) {
  auto value = detail::read_string(errors, f);
  if (!value) return std::nullopt;
  if (value->find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    errors.add(f.at, f.path, "header value must not contain CR, LF or NUL");
    return std::nullopt;
  }
  return value;
}

// The admin token travels in `Authorization: Bearer TOKEN`: a space or a control character
// could not be sent there intact. The token itself never appears in a message, since errors
// reach logs.
std::optional<std::string> read_admin_token(ErrorSink& errors, const Field& f) {
  auto token = detail::read_string(errors, f);
  if (!token) return std::nullopt;
  if (token->empty()) {
    errors.add(f.at, f.path, "must not be empty");
    return std::nullopt;
  }
  auto bad = std::find_if(token->begin(), token->end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u >= 0x7f;
  });
  if (bad != token->end()) {
    std::string what = "a space";
    if (*bad != ' ') {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", static_cast<unsigned char>(*bad));
      what = std::string("the byte ") + hex;
    }
    errors.add(f.at, f.path,
               "contains " + what + " at character " +
                   std::to_string(bad - token->begin() + 1) +
                   " (a token is printable ASCII without spaces: it is sent in an "
                   "Authorization header)");
    return std::nullopt;
  }
  return token;
}

// The Host header of an http health check: host [":" port], as a client would send it.
std::optional<std::string> read_host_header(ErrorSink& errors, const Field& f) {
  auto host = detail::read_string(errors, f);
  if (!host) return std::nullopt;
  if (host->empty()) {
    errors.add(f.at, f.path, "must not be empty (leave host out to send the endpoint's address)");
    return std::nullopt;
  }
  if (!http::is_valid_authority(*host)) {
    errors.add(f.at, f.path,
               "invalid host " + quoted(*host) +
                   " (expected a Host header value such as api.example.com, 10.0.0.1:8080 or "
                   "[fd00::1]:80)");
    return std::nullopt;
  }
  return host;
}

// One expect_status entry: a status code (200) or an inclusive range ("200-399").
std::optional<StatusRange> read_status_range(ErrorSink& errors, const Field& f) {
  constexpr int kMin = 100;
  constexpr int kMax = 599;
  auto text = detail::read_scalar(errors, f, "a status code or a range like \"200-399\"");
  if (!text) return std::nullopt;
  auto parse_status = [](std::string_view digits) -> std::optional<int> {
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), http::is_digit))
      return std::nullopt;
    int value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc()) return std::nullopt;  // too large for an int: not a status either
    return value;
  };
  const std::string_view view = *text;
  const std::size_t dash = view.find('-');
  const auto first = parse_status(view.substr(0, dash));
  const auto last = dash == std::string_view::npos ? first : parse_status(view.substr(dash + 1));
  if (!first || !last) {
    errors.add(f.at, f.path,
               "invalid status " + quoted(*text) +
                   " (expected a status code such as 200 or a range such as \"200-399\")");
    return std::nullopt;
  }
  const std::string bounds = std::to_string(kMin) + " and " + std::to_string(kMax);
  if (*first < kMin || *first > kMax || *last < kMin || *last > kMax) {
    errors.add(f.at, f.path, "status codes must be between " + bounds + ", got " + *text);
    return std::nullopt;
  }
  if (*first > *last) {
    errors.add(f.at, f.path,
               "invalid range " + quoted(*text) + " (the first status must not exceed the last)");
    return std::nullopt;
  }
  return StatusRange{static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)};
}

// One of `values`, spelled as the TLS library spells it (tls::to_string), so that the config
// file and OpenSSL's and nginx's documentation use the same words.
template <class E>
std::optional<E> read_tls_choice(ErrorSink& errors, const Field& f, std::initializer_list<E> values) {
  std::vector<std::string_view> names;
  for (E v : values) names.push_back(tls::to_string(v));
  auto index = detail::read_choice(errors, f, names);
  if (!index) return std::nullopt;
  return *(values.begin() + *index);
}

// The header that carries a client certificate's subject to the backend. The proxy removes the
// client's own copy and writes it, so it must be a field the proxy may write: not framing or
// hop-by-hop (those the proxy manages), and not Host, which routing and the backend read.
std::optional<std::string> read_subject_header(ErrorSink& errors, const Field& f) {
  auto name = detail::read_string(errors, f);
  if (!name) return std::nullopt;
  if (name->empty()) return name;  // no header
  if (!check_header_name(errors, f.at, f.path, *name)) return std::nullopt;
  if (http::is_proxy_managed_field(*name) || lowercase(*name) == "host") {
    errors.add(f.at, f.path,
               "header " + quoted(*name) +
                   " is managed by the proxy and cannot carry the client's subject");
    return std::nullopt;
  }
  return lowercase(*name);
}

// One ALPN protocol name. An http listener speaks HTTP/1.x only: advertising another protocol
// (h2) would have clients that choose it send bytes the listener cannot parse.
std::optional<std::string> read_alpn_name(ErrorSink& errors, const Field& f,
                                          std::optional<Protocol> protocol) {
  constexpr std::size_t kMaxAlpnName = 255;  // one length byte on the wire (RFC 7301)
  auto name = detail::read_string(errors, f);
  if (!name) return std::nullopt;
  if (name->empty() || name->size() > kMaxAlpnName) {
    errors.add(f.at, f.path, "a protocol name is 1 to 255 bytes long");
    return std::nullopt;
  }
  if (protocol == Protocol::kHttp && *name != "http/1.1" && *name != "http/1.0") {
    errors.add(f.at, f.path,
               "invalid protocol " + quoted(*name) +
                   " for an http listener (it speaks http/1.1 and http/1.0 only)");
    return std::nullopt;
  }
  return name;
}

// The settings a listener's tls block and a cluster's share: min_version, ciphers (TLS 1.2 and
// below) and alpn, each read and checked the same way on both sides. `protocol`: the listener's
// (an http listener offers HTTP/1.x names only); none for a cluster.
void read_tls_common(ErrorSink& errors, detail::MapReader& m, std::optional<Protocol> protocol,
                     tls::TlsVersion& min_version, std::string& ciphers, std::vector<std::string>& alpn) {
  if (auto v = m.get("min_version"))
    assign(min_version, read_tls_choice(errors, *v,
                                        {tls::TlsVersion::kTls1_0, tls::TlsVersion::kTls1_1,
                                         tls::TlsVersion::kTls1_2, tls::TlsVersion::kTls1_3}));
  if (auto v = m.get("ciphers")) assign(ciphers, detail::read_string(errors, *v));
  if (auto v = m.get("alpn")) {
    if (auto items = detail::list_items(errors, *v)) {
      alpn.clear();
      for (const Field& item : *items) {
        auto name = read_alpn_name(errors, item, protocol);
        if (!name) continue;
        if (std::find(alpn.begin(), alpn.end(), *name) != alpn.end()) {
          errors.add(item.at, item.path, "duplicate protocol " + quoted(*name));
          continue;
        }
        alpn.push_back(*name);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The loader: one instance per file

// Where something was defined, for "first defined at line N" and cross-references.
struct Definition {
  std::string name;
  Position at;
};

struct ClusterReference {
  std::string name;
  Position at;
  std::string path;
};

struct ListenSite {
  SocketAddress address;
  Position at;
  std::string owner;  // `listener "web"` or `admin.listen`
};

// The keys that named a certificate's two files: ServerCredentials::load reports problems by
// certificate index and file, and the loader turns them into errors at these keys.
struct CertificateKeys {
  Field cert;
  Field key;
};

class Loader {
 public:
  // `config_dir`: the config file's directory, against which relative file names in the file
  // are resolved; empty for the current directory.
  Loader(ErrorSink& errors, std::string config_dir)
      : errors_(errors), config_dir_(std::move(config_dir)) {}

  Config load(const Field& root);

 private:
  void parse_workers(const Field& f, int& workers);
  void parse_log(const Field& f, LogConfig& log);
  void parse_admin(const Field& f, AdminConfig& admin);
  void parse_shutdown(const Field& f, ShutdownConfig& shutdown);

  ListenerConfig parse_listener(const Field& f);
  void parse_listener_timeouts(const Field& f, ListenerTimeouts& t, std::optional<Protocol> p,
                               bool tls, bool sni_routes);
  ListenerTls parse_tls(const Field& f, std::optional<Protocol> protocol);
  void parse_certificates(const Field& f, std::vector<tls::CertificateFiles>& certificates,
                          std::vector<CertificateKeys>& keys);
  std::optional<std::string> read_file_path(const Field& f);
  void load_credentials(const Field& block, ListenerTls& tls,
                        const std::vector<CertificateKeys>& keys,
                        const std::optional<Field>& client_ca);
  void parse_limits(const Field& f, Limits& limits);
  void parse_forwarded_headers(const Field& f, ForwardedHeaders& fwd);
  RouteConfig parse_route(const Field& f, bool tcp);
  bool parse_match(const Field& f, RouteMatch& match, bool tcp);  // true if path_prefix was given
  void parse_header_edits(const Field& f, http::HeaderEdits& edits);

  ClusterConfig parse_cluster(const Field& f);
  std::optional<HashKey> parse_hash_key(const Field& f);
  void parse_endpoints(const Field& f, std::vector<EndpointConfig>& endpoints);
  void parse_cluster_timeouts(const Field& f, ClusterTimeouts& t);
  void parse_keepalive(const Field& f, Keepalive& keepalive);
  HealthCheck parse_health_check(const Field& f);
  std::optional<std::vector<StatusRange>> parse_expect_status(const Field& f);
  Outlier parse_outlier(const Field& f);
  ClusterTls parse_cluster_tls(const Field& f);

  void report_http_only(const Field& f);
  void report_sni_only(const Field& f);  // "only valid for tcp listeners with SNI routes"
  void define(std::vector<Definition>& defined, std::string_view kind, const std::string& name,
              const Field& f);
  void add_cluster_reference(const std::string& name, const Field& f);
  void add_listen_site(const SocketAddress& address, const Field& f, std::string owner);
  void check_cluster_references();

  ErrorSink& errors_;
  std::string config_dir_;
  std::vector<Definition> listener_names_;
  std::vector<Definition> cluster_names_;
  std::vector<ClusterReference> cluster_references_;
  std::vector<ListenSite> listen_sites_;
};

Config Loader::load(const Field& root) {
  Config config;
  MapReader m(errors_, root);
  if (auto f = m.get("workers")) parse_workers(*f, config.workers);
  if (auto f = m.get("io")) assign(config.io, detail::read_enum(errors_, *f, detail::kIoModeNames));
  if (auto f = m.get("log")) parse_log(*f, config.log);
  if (auto f = m.get("admin")) parse_admin(*f, config.admin);
  if (auto f = m.get("shutdown")) parse_shutdown(*f, config.shutdown);
  if (auto f = m.require("listeners")) {
    if (auto items = detail::list_items(errors_, *f)) {
      if (items->empty()) errors_.add(f->at, f->path, "expected at least one listener");
      for (const Field& item : *items) config.listeners.push_back(parse_listener(item));
    }
  }
  if (auto f = m.get("clusters")) {
    if (auto items = detail::list_items(errors_, *f))
      for (const Field& item : *items) config.clusters.push_back(parse_cluster(item));
  }
  m.finish();
  check_cluster_references();
  return config;
}

void Loader::parse_workers(const Field& f, int& workers) {
  constexpr int kMaxWorkers = 1024;
  // One message covers a wrong type, a non-number and a number out of range.
  auto fail = [&] {
    errors_.add(f.at, f.path,
                "expected \"auto\" or an integer between 0 and " + std::to_string(kMaxWorkers) +
                    ", got " + detail::describe_node(f.node));
  };
  if (!f.node.IsScalar()) return fail();
  const std::string& text = f.node.Scalar();
  if (text == "auto") {
    workers = 0;
    return;
  }
  int n = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 0 || n > kMaxWorkers)
    return fail();
  workers = n;
}

void Loader::parse_log(const Field& f, LogConfig& log) {
  MapReader m(errors_, f);
  if (auto v = m.get("level"))
    assign(log.level, detail::read_enum(errors_, *v, detail::kLogLevelNames));
  if (auto v = m.get("access_log")) {
    if (auto s = detail::read_string(errors_, *v)) {
      if (s->empty())
        errors_.add(v->at, v->path, "must not be empty (use stdout, stderr, off or a file path)");
      else
        log.access_log = *s;
    }
  }
  if (auto v = m.get("access_log_format"))
    assign(log.access_log_format, detail::read_enum(errors_, *v, detail::kAccessLogFormatNames));
  if (auto v = m.get("error_log")) {
    if (auto s = detail::read_string(errors_, *v)) {
      if (s->empty() || *s == "off")
        errors_.add(v->at, v->path,
                    "must be stderr, stdout or a file path (errors cannot be turned off)");
      else
        log.error_log = *s;
    }
  }
  m.finish();
}

void Loader::parse_admin(const Field& f, AdminConfig& admin) {
  MapReader m(errors_, f);
  auto listen = m.get("listen");
  if (listen) {
    if (auto address = detail::read_address(errors_, *listen)) {
      admin.listen = *address;
      add_listen_site(*address, *listen, "admin.listen");
    }
  }
  auto token = m.get("token");
  if (token) admin.token = read_admin_token(errors_, *token);
  m.finish();
  if (!listen && m.ok()) {
    if (token)
      m.report_missing("listen", "admin.token needs admin.listen");
    else
      m.report_missing("listen");
  }
}

void Loader::parse_shutdown(const Field& f, ShutdownConfig& shutdown) {
  MapReader m(errors_, f);
  if (auto v = m.get("drain_timeout"))
    assign(shutdown.drain_timeout, detail::read_duration(errors_, *v));
  if (auto v = m.get("ready_delay"))
    assign(shutdown.ready_delay, detail::read_duration(errors_, *v));
  m.finish();
}

// ---------------------------------------------------------------------------------------------
// Listeners

ListenerConfig Loader::parse_listener(const Field& f) {
  ListenerConfig listener;
  MapReader m(errors_, f);
  if (!m.ok()) return listener;

  if (auto v = m.require("name")) {
    if (auto name = read_name(errors_, *v)) {
      listener.name = *name;
      define(listener_names_, "listener", *name, *v);
    }
  }
  if (auto v = m.require("listen")) {
    if (auto address = detail::read_address(errors_, *v)) {
      listener.listen = *address;
      add_listen_site(*address, *v,
                      listener.name.empty() ? f.path : "listener " + quoted(listener.name));
    }
  }
  std::optional<Protocol> protocol;
  if (auto v = m.require("protocol"))
    protocol = detail::read_enum(errors_, *v, detail::kProtocolNames);
  assign(listener.protocol, protocol);
  if (protocol == Protocol::kTcp) listener.timeouts.idle = ListenerTimeouts::kTcpIdleDefault;

  auto cluster = m.get("cluster");
  if (cluster) {
    if (auto name = read_cluster_name(errors_, *cluster)) {
      listener.cluster = *name;
      add_cluster_reference(*name, *cluster);
    }
  }
  if (auto v = m.get("max_connections"))
    assign(listener.max_connections, detail::read_int(errors_, *v, 1, detail::kNoUpperBound));
  if (auto v = m.get("backlog")) assign(listener.backlog, detail::read_int(errors_, *v, 1, 65535));
  auto tls = m.get("tls");
  const bool tcp = protocol == Protocol::kTcp;
  auto routes = m.get("routes");
  // SNI routes are read from the ClientHello as it passes; a tls listener has decrypted it.
  const bool sni_routes = tcp && routes && !tls;
  if (auto v = m.get("timeouts"))
    parse_listener_timeouts(*v, listener.timeouts, protocol, tls.has_value(), sni_routes);

  if (auto v = m.get("forwarding")) {
    if (protocol == Protocol::kHttp)
      errors_.add(v->key_at, v->path, "only valid for tcp listeners (this listener is http)");
    else
      assign(listener.forwarding, detail::read_enum(errors_, *v, detail::kForwardingNames));
  }
  if (auto v = m.get("limits")) tcp ? report_http_only(*v) : parse_limits(*v, listener.limits);
  if (auto v = m.get("forwarded_headers"))
    tcp ? report_http_only(*v) : parse_forwarded_headers(*v, listener.forwarded_headers);
  std::size_t route_count = 0;
  if (routes) {
    if (tcp && tls) {
      errors_.add(routes->key_at, routes->path,
                  "routes on a tcp listener route by SNI without terminating TLS; with tls (routing "
                  "on the terminated handshake's SNI) they are not supported yet");
    } else if (auto items = detail::list_items(errors_, *routes)) {
      route_count = items->size();
      if (tcp && items->empty()) errors_.add(routes->at, routes->path, "expected at least one route");
      for (const Field& item : *items) listener.routes.push_back(parse_route(item, tcp));
    }
  }
  if (auto v = m.get("not_tls")) {
    if (sni_routes)
      assign(listener.not_tls, detail::read_enum(errors_, *v, detail::kNotTlsNames));
    else
      report_sni_only(*v);
  }
  if (tls) listener.tls = parse_tls(*tls, protocol);
  m.finish();

  if (protocol == Protocol::kTcp && !cluster && !routes)
    m.report_missing("cluster", "a tcp listener forwards every connection to one cluster, or routes them by SNI");
  if (protocol == Protocol::kHttp && !cluster && route_count == 0)
    errors_.add(f.at, f.path, "an http listener needs routes, a default cluster, or both");
  return listener;
}

void Loader::report_http_only(const Field& f) {
  errors_.add(f.key_at, f.path, "only valid for http listeners (this listener is tcp)");
}

void Loader::report_sni_only(const Field& f) {
  errors_.add(f.key_at, f.path, "only valid for tcp listeners with SNI routes (routes, and no tls)");
}

void Loader::parse_listener_timeouts(const Field& f, ListenerTimeouts& t,
                                     std::optional<Protocol> protocol, bool tls, bool sni_routes) {
  MapReader m(errors_, f);
  const bool tcp = protocol == Protocol::kTcp;
  if (auto v = m.get("header"))
    tcp ? report_http_only(*v) : assign(t.header, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("idle")) assign(t.idle, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("request_body"))
    tcp ? report_http_only(*v)
        : assign(t.request_body, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("handshake")) {
    if (tls)
      assign(t.handshake, detail::read_positive_duration(errors_, *v));
    else
      errors_.add(v->key_at, v->path, "only valid for tls listeners (this listener has no tls)");
  }
  if (auto v = m.get("preread"))
    sni_routes ? assign(t.preread, detail::read_positive_duration(errors_, *v)) : report_sni_only(*v);
  m.finish();
}

ListenerTls Loader::parse_tls(const Field& f, std::optional<Protocol> protocol) {
  ListenerTls tls;
  tls::ServerOptions& opts = tls.server;
  // A tcp listener carries any protocol: with an ALPN list of its own it would refuse every
  // client that offers other names (RFC 7301), so it advertises none unless told to.
  if (protocol == Protocol::kTcp) {
    opts.alpn.clear();
    tls.client_subject_header.clear();
  }
  MapReader m(errors_, f);
  if (!m.ok()) return tls;

  // The files are checked only when the keys that name them are valid: with a missing key or a
  // malformed list, loading would add only knock-on errors ("no certificate is given").
  const std::size_t errors_before_files = errors_.count();
  std::vector<CertificateKeys> keys;
  auto cert = m.get("cert");
  auto key = m.get("key");
  auto list = m.get("certificates");
  if (list && (cert || key)) {
    const Field& single = cert ? *cert : *key;
    errors_.add(single.key_at, single.path,
                "cannot be combined with certificates (give one certificate as cert and key, or "
                "several as certificates)");
  } else if (list) {
    parse_certificates(*list, opts.certificates, keys);
  } else if (cert || key) {
    auto chain_file = cert ? read_file_path(*cert) : std::nullopt;
    auto key_file = key ? read_file_path(*key) : std::nullopt;
    if (!cert) m.report_missing("cert", "the certificate that goes with key");
    if (!key) m.report_missing("key", "the private key of cert");
    if (chain_file && key_file) {
      opts.certificates.push_back(tls::CertificateFiles{*chain_file, *key_file, {}});
      keys.push_back(CertificateKeys{*cert, *key});
    }
  } else {
    m.report_missing("cert", "a tls listener needs cert and key, or certificates");
  }
  auto client_ca = m.get("client_ca");
  if (client_ca) assign(opts.client_ca_file, read_file_path(*client_ca));
  const bool files_valid = errors_.count() == errors_before_files;

  read_tls_common(errors_, m, protocol, opts.min_version, opts.ciphers, opts.alpn);
  if (auto v = m.get("ciphersuites")) assign(opts.ciphersuites, detail::read_string(errors_, *v));
  if (auto v = m.get("groups")) {
    auto groups = detail::read_string(errors_, *v);
    if (groups && groups->empty()) {
      errors_.add(v->at, v->path, "must not be empty (leave groups out for the default)");
      groups.reset();
    }
    assign(opts.groups, groups);
  }
  // Read as text, so that YAML 1.1's boolean spelling "off" means what it says here.
  if (auto v = m.get("verify_client"))
    assign(opts.verify_client,
           read_tls_choice(errors_, *v,
                           {tls::VerifyClient::kOff, tls::VerifyClient::kOptional,
                            tls::VerifyClient::kRequired}));
  if (auto v = m.get("ticket_rotation")) {
    auto rotation = detail::read_duration(errors_, *v);
    // A key that changes every few seconds would end resumption for most clients and cost a
    // key generation per period; below a minute it is surely a unit mistake.
    if (rotation && *rotation != Duration::zero() && *rotation < 1min) {
      errors_.add(v->at, v->path,
                  "must be 0s (no tickets) or at least 1m, got " + format_duration(*rotation));
      rotation.reset();
    }
    assign(tls.ticket_rotation, rotation);
  }
  if (auto v = m.get("client_subject_header")) {
    if (protocol == Protocol::kTcp)
      report_http_only(*v);
    else
      assign(tls.client_subject_header, read_subject_header(errors_, *v));
  }
  m.finish();

  // A session lives as long as a ticket key is current: resuming it after that would outlast
  // the rotation that was meant to bound how long one key protects it.
  if (tls.ticket_rotation > Duration::zero())
    opts.session_lifetime_seconds = static_cast<uint32_t>(
        std::min<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(tls.ticket_rotation).count(),
                          std::numeric_limits<uint32_t>::max()));
  if (files_valid) load_credentials(f, tls, keys, client_ca);
  return tls;
}

void Loader::parse_certificates(const Field& f, std::vector<tls::CertificateFiles>& certificates,
                                std::vector<CertificateKeys>& keys) {
  auto items = detail::list_items(errors_, f);
  if (!items) return;
  if (items->empty()) errors_.add(f.at, f.path, "expected at least one certificate");
  for (const Field& item : *items) {
    MapReader m(errors_, item);
    if (!m.ok()) continue;
    tls::CertificateFiles files;
    auto cert = m.require("cert");
    auto key = m.require("key");
    auto chain_file = cert ? read_file_path(*cert) : std::nullopt;
    auto key_file = key ? read_file_path(*key) : std::nullopt;
    if (auto v = m.get("names")) {
      if (auto names = detail::list_items(errors_, *v)) {
        if (names->empty())
          errors_.add(v->at, v->path,
                      "expected at least one name (leave names out for the certificate's own)");
        for (const Field& n : *names) {
          auto name = read_host_pattern(errors_, n);
          if (!name) continue;
          if (std::find(files.names.begin(), files.names.end(), *name) != files.names.end()) {
            errors_.add(n.at, n.path, "duplicate name " + quoted(*name));
            continue;
          }
          files.names.push_back(*name);
        }
      }
    }
    m.finish();
    if (!chain_file || !key_file) continue;
    files.chain_file = *chain_file;
    files.key_file = *key_file;
    certificates.push_back(std::move(files));
    keys.push_back(CertificateKeys{*cert, *key});
  }
}

// Relative names are taken from the config file's directory, not the daemon's working
// directory, so that a config and its certificates can move together.
std::optional<std::string> Loader::read_file_path(const Field& f) {
  auto text = detail::read_string(errors_, f);
  if (!text) return std::nullopt;
  if (text->empty()) {
    errors_.add(f.at, f.path, "must not be empty (expected a file path)");
    return std::nullopt;
  }
  if (text->starts_with('/') || config_dir_.empty()) return text;
  return config_dir_.ends_with('/') ? config_dir_ + *text : config_dir_ + "/" + *text;
}

// Reads and checks the files; every problem lands on the key that named its file, or on the
// tls key for those about no file (a cipher list, a missing client_ca).
void Loader::load_credentials(const Field& block, ListenerTls& tls,
                              const std::vector<CertificateKeys>& keys,
                              const std::optional<Field>& client_ca) {
  tls::LoadReport report;
  tls.credentials = tls::ServerCredentials::load(tls.server, report);
  auto key_of = [&](const tls::LoadProblem& p) -> const Field& {
    if (p.file.empty()) return block;
    if (p.certificate < keys.size()) {
      const tls::CertificateFiles& files = tls.server.certificates[p.certificate];
      if (p.file == files.chain_file) return keys[p.certificate].cert;
      if (p.file == files.key_file) return keys[p.certificate].key;
    }
    if (client_ca && p.file == tls.server.client_ca_file) return *client_ca;
    return block;
  };
  for (const tls::LoadProblem& p : report.errors) {
    const Field& at = key_of(p);
    errors_.add(at.at, at.path, p.message);
  }
  for (const tls::LoadProblem& p : report.warnings) {
    const Field& at = key_of(p);
    errors_.warn(at.at, at.path, p.message);
  }
  // load() returns null only with errors; this keeps a Config from ever holding a tls
  // listener without credentials should that change.
  if (!tls.credentials && report.errors.empty())
    errors_.add(block.at, block.path, "the certificates could not be loaded");
}

void Loader::parse_limits(const Field& f, Limits& limits) {
  MapReader m(errors_, f);
  bool all_valid = true;  // compare the two header limits only when neither was rejected
  auto positive_size = [&](const Field& v, uint64_t& target) {
    auto size = detail::read_size(errors_, v);
    if (size && *size == 0) {
      errors_.add(v.at, v.path, "must be greater than 0");
      size.reset();
    }
    all_valid = all_valid && size.has_value();
    assign(target, size);
  };
  auto line = m.get("max_request_line");
  if (line) positive_size(*line, limits.max_request_line);
  auto header = m.get("max_header_bytes");
  if (header) positive_size(*header, limits.max_header_bytes);
  if (auto v = m.get("max_body_size")) assign(limits.max_body_size, detail::read_size(errors_, *v));
  m.finish();

  // The request line counts towards max_header_bytes, so it cannot be allowed more.
  if (all_valid && limits.max_request_line > limits.max_header_bytes) {
    const std::string request_line = format_size(limits.max_request_line);
    const std::string header_bytes = format_size(limits.max_header_bytes);
    if (line)
      errors_.add(line->at, line->path,
                  "must not exceed max_header_bytes (" + request_line + " > " + header_bytes + ")");
    else
      errors_.add(
          header->at, header->path,
          "must be at least max_request_line (" + header_bytes + " < " + request_line + ")");
  }
}

void Loader::parse_forwarded_headers(const Field& f, ForwardedHeaders& fwd) {
  MapReader m(errors_, f);
  if (auto v = m.get("x_forwarded_for"))
    assign(fwd.x_forwarded_for, detail::read_bool(errors_, *v));
  if (auto v = m.get("x_forwarded_proto"))
    assign(fwd.x_forwarded_proto, detail::read_bool(errors_, *v));
  if (auto v = m.get("x_forwarded_host"))
    assign(fwd.x_forwarded_host, detail::read_bool(errors_, *v));
  m.finish();
}

RouteConfig Loader::parse_route(const Field& f, bool tcp) {
  RouteConfig route;
  MapReader m(errors_, f);
  if (!m.ok()) return route;
  bool has_path_prefix = false;
  auto match = m.get("match");
  if (match) has_path_prefix = parse_match(*match, route.match, tcp);
  // A tcp route without sni would take every connection, which is what the listener's cluster
  // says; requiring it keeps a typo in the match from swallowing the routes after it.
  if (tcp && !match) m.report_missing("match", "a tcp listener's route matches an SNI: match: { sni: NAME }");
  if (auto v = m.require("cluster")) {
    if (auto name = read_cluster_name(errors_, *v)) {
      route.cluster = *name;
      add_cluster_reference(*name, *v);
    }
  }
  if (auto v = m.get("rewrite_prefix"); v && tcp) {
    report_http_only(*v);
  } else if (v) {
    if (auto prefix = read_path(errors_, *v)) {
      if (has_path_prefix)
        route.rewrite_prefix = *prefix;
      else
        errors_.add(v->key_at, v->path, "requires match.path_prefix (the part it replaces)");
    }
  }
  if (auto v = m.get("request_headers"))
    tcp ? report_http_only(*v) : parse_header_edits(*v, route.request_headers);
  if (auto v = m.get("response_headers"))
    tcp ? report_http_only(*v) : parse_header_edits(*v, route.response_headers);
  m.finish();
  return route;
}

bool Loader::parse_match(const Field& f, RouteMatch& match, bool tcp) {
  MapReader m(errors_, f);
  if (tcp) {
    // The bytes of a passed-through TLS connection carry no host, path, method or headers.
    if (auto v = m.get("sni"))
      match.sni = read_host_pattern(errors_, *v);
    else if (m.ok())
      m.report_missing("sni", "a tcp listener's route matches an SNI");
    for (std::string_view key : {"host", "path_prefix", "path", "method", "methods", "headers"})
      if (auto v = m.get(key))
        errors_.add(v->key_at, v->path,
                    "only valid for http listeners' routes (a tcp listener's routes match only sni)");
    m.finish();
    return false;
  }
  if (auto v = m.get("sni"))
    errors_.add(v->key_at, v->path,
                "only valid for tcp listeners' routes (an http listener's route matches match.host)");
  if (auto v = m.get("host")) match.host = read_host_pattern(errors_, *v);
  auto prefix = m.get("path_prefix");
  if (prefix) match.path_prefix = read_path(errors_, *prefix);
  if (auto v = m.get("path")) {
    if (prefix)
      errors_.add(v->key_at, v->path, "cannot be combined with path_prefix");
    else
      match.path = read_path(errors_, *v);
  }
  auto method = m.get("method");
  if (method) {
    if (auto name = read_method(errors_, *method)) match.methods.push_back(*name);
  }
  if (auto v = m.get("methods")) {
    if (method) {
      errors_.add(v->key_at, v->path, "cannot be combined with method");
    } else if (auto items = detail::list_items(errors_, *v)) {
      if (items->empty()) errors_.add(v->at, v->path, "expected at least one method");
      for (const Field& item : *items)
        if (auto name = read_method(errors_, item)) match.methods.push_back(*name);
    }
  }
  if (auto v = m.get("headers")) {
    if (auto entries = detail::map_entries(errors_, *v, "a map of header names to values")) {
      for (const auto& entry : *entries) {
        if (!check_header_name(errors_, entry.key_at, v->path, entry.key)) continue;
        if (auto value = read_header_value(errors_, entry.value))
          match.headers.push_back({lowercase(entry.key), *value});
      }
    }
  }
  m.finish();
  return prefix.has_value();
}

void Loader::parse_header_edits(const Field& f, http::HeaderEdits& edits) {
  MapReader m(errors_, f);
  auto check_editable = [&](Position at, const std::string& path, const std::string& name) {
    if (!check_header_name(errors_, at, path, name)) return false;
    if (!http::is_proxy_managed_field(name)) return true;
    errors_.add(at, path,
                "header " + quoted(name) + " is managed by the proxy and cannot be edited");
    return false;
  };
  if (auto v = m.get("add")) {
    if (auto entries = detail::map_entries(errors_, *v, "a map of header names to values")) {
      for (const auto& entry : *entries) {
        if (!check_editable(entry.key_at, v->path, entry.key)) continue;
        if (auto value = read_header_value(errors_, entry.value))
          edits.add.push_back({entry.key, *value});
      }
    }
  }
  if (auto v = m.get("remove")) {
    if (auto items = detail::list_items(errors_, *v)) {
      for (const Field& item : *items) {
        auto name = detail::read_string(errors_, item);
        if (name && check_editable(item.at, item.path, *name))
          edits.remove.push_back(lowercase(*name));
      }
    }
  }
  m.finish();
}

// ---------------------------------------------------------------------------------------------
// Clusters

ClusterConfig Loader::parse_cluster(const Field& f) {
  ClusterConfig cluster;
  MapReader m(errors_, f);
  if (!m.ok()) return cluster;

  if (auto v = m.require("name")) {
    if (auto name = read_name(errors_, *v)) {
      cluster.name = *name;
      define(cluster_names_, "cluster", *name, *v);
    }
  }
  auto balance_field = m.get("balance");
  std::optional<balancer::BalanceKind> balance;
  if (balance_field) balance = detail::read_enum(errors_, *balance_field, detail::kBalanceNames);
  assign(cluster.balance, balance);
  if (auto v = m.get("hash_key")) {
    assign(cluster.hash_key, parse_hash_key(*v));
    // A hash key the balancer ignores is a misunderstanding worth stopping; an invalid
    // balance was reported already.
    if ((!balance_field || balance) && cluster.balance != balancer::BalanceKind::kHash)
      errors_.add(v->key_at, v->path,
                  "only valid with balance: hash (balance is " +
                      std::string(to_string(cluster.balance)) + ")");
  }
  if (auto v = m.require("endpoints")) parse_endpoints(*v, cluster.endpoints);
  if (auto v = m.get("timeouts")) parse_cluster_timeouts(*v, cluster.timeouts);
  if (auto v = m.get("keepalive")) parse_keepalive(*v, cluster.keepalive);
  if (auto v = m.get("max_connections"))
    assign(cluster.max_connections, detail::read_int(errors_, *v, 0, detail::kNoUpperBound));
  if (auto v = m.get("retries")) assign(cluster.retries, detail::read_int(errors_, *v, 0, 10));
  if (auto v = m.get("health_check")) cluster.health_check = parse_health_check(*v);
  if (auto v = m.get("outlier")) cluster.outlier = parse_outlier(*v);
  if (auto v = m.get("tls")) cluster.tls = parse_cluster_tls(*v);
  m.finish();
  return cluster;
}

ClusterTls Loader::parse_cluster_tls(const Field& f) {
  ClusterTls tls;
  tls::ClientOptions& opts = tls.client;
  MapReader m(errors_, f);
  if (!m.ok()) return tls;
  const std::size_t errors_before_files = errors_.count();
  if (auto v = m.get("verify")) assign(opts.verify, detail::read_bool(errors_, *v));
  auto ca = m.get("ca");
  if (ca) assign(opts.ca_file, read_file_path(*ca));
  auto cert = m.get("client_cert");
  auto key = m.get("client_key");
  if (cert) assign(opts.cert_file, read_file_path(*cert));
  if (key) assign(opts.key_file, read_file_path(*key));
  if (cert && !key) m.report_missing("client_key", "the private key of client_cert");
  if (key && !cert) m.report_missing("client_cert", "the certificate that goes with client_key");
  if (auto v = m.get("sni")) {
    auto name = detail::read_string(errors_, *v);
    // A host name as RFC 6066 sends it: no IP address (that is what an empty sni means), no
    // port, no spaces.
    if (name && (name->empty() || name->find_first_of(" :/") != std::string::npos)) {
      errors_.add(v->at, v->path, "expected a host name such as api.example.com, got " + quoted(*name));
      name.reset();
    }
    if (name) std::transform(name->begin(), name->end(), name->begin(), [](unsigned char c) { return std::tolower(c); });
    assign(tls.sni, name);
  }
  read_tls_common(errors_, m, std::nullopt, opts.min_version, opts.ciphers, opts.alpn);
  m.finish();
  if (errors_.count() != errors_before_files) return tls;
  // The files are read now, on the config thread, so that lbd -t and a reload report them with
  // their key; each worker loads its own context from them again.
  tls::LoadReport report;
  auto ctx = tls::ClientContext::load(opts, report);
  for (const tls::LoadProblem& p : report.errors) {
    const Field* at = &f;
    if (ca && p.file == opts.ca_file) at = &*ca;
    else if (cert && p.file == opts.cert_file) at = &*cert;
    else if (key && p.file == opts.key_file) at = &*key;
    errors_.add(at->at, at->path, p.message);
  }
  if (!ctx && report.errors.empty()) errors_.add(f.at, f.path, "the TLS client settings could not be loaded");
  return tls;
}

std::optional<HashKey> Loader::parse_hash_key(const Field& f) {
  auto text = detail::read_scalar(errors_, f, "source_ip or header:NAME");
  if (!text) return std::nullopt;
  if (*text == "source_ip") return HashKey{HashKeyKind::kSourceIp, ""};
  constexpr std::string_view kHeaderPrefix = "header:";
  if (text->starts_with(kHeaderPrefix)) {
    std::string name = text->substr(kHeaderPrefix.size());
    if (http::is_token(name)) return HashKey{HashKeyKind::kHeader, lowercase(std::move(name))};
  }
  errors_.add(f.at, f.path,
              "invalid hash_key " + quoted(*text) + " (expected source_ip or header:NAME)");
  return std::nullopt;
}

void Loader::parse_endpoints(const Field& f, std::vector<EndpointConfig>& endpoints) {
  auto items = detail::list_items(errors_, f);
  if (!items) return;
  if (items->empty()) errors_.add(f.at, f.path, "expected at least one endpoint");
  std::vector<Position> defined_at;  // parallel to endpoints
  for (const Field& item : *items) {
    EndpointConfig endpoint;
    std::optional<Field> address_field;
    if (item.node.IsScalar()) {  // the short form: "- 10.0.0.1:8080"
      address_field = item;
    } else {
      MapReader m(errors_, item);
      if (!m.ok()) continue;
      address_field = m.require("address");
      if (auto v = m.get("weight")) assign(endpoint.weight, detail::read_int(errors_, *v, 1, 256));
      m.finish();
    }
    if (!address_field) continue;
    auto address = detail::read_address(errors_, *address_field);
    if (!address) continue;
    if (!address->is_unix() && address->port() == 0) {
      errors_.add(address_field->at, address_field->path, "port 0 is not valid for an endpoint");
      continue;
    }
    auto duplicate = std::find_if(endpoints.begin(), endpoints.end(),
                                  [&](const EndpointConfig& e) { return e.address == *address; });
    if (duplicate != endpoints.end()) {
      const Position first = defined_at[static_cast<std::size_t>(duplicate - endpoints.begin())];
      errors_.add(address_field->at, address_field->path,
                  "duplicate endpoint " + address->to_string() + " (first at line " +
                      std::to_string(first.line) + ")");
      continue;
    }
    endpoint.address = *address;
    endpoints.push_back(endpoint);
    defined_at.push_back(address_field->at);
  }
}

void Loader::parse_cluster_timeouts(const Field& f, ClusterTimeouts& t) {
  MapReader m(errors_, f);
  if (auto v = m.get("connect")) assign(t.connect, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("read")) assign(t.read, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("write")) assign(t.write, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("idle")) assign(t.idle, detail::read_positive_duration(errors_, *v));
  m.finish();
}

void Loader::parse_keepalive(const Field& f, Keepalive& keepalive) {
  MapReader m(errors_, f);
  if (auto v = m.get("max_idle"))
    assign(keepalive.max_idle, detail::read_int(errors_, *v, 0, detail::kNoUpperBound));
  if (auto v = m.get("idle_timeout"))
    assign(keepalive.idle_timeout, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("burst_hold")) assign(keepalive.burst_hold, detail::read_duration(errors_, *v));
  m.finish();
}

HealthCheck Loader::parse_health_check(const Field& f) {
  HealthCheck check;
  MapReader m(errors_, f);
  auto type_field = m.get("type");
  std::optional<HealthCheckType> type;
  if (type_field) type = detail::read_enum(errors_, *type_field, detail::kHealthCheckTypeNames);
  assign(check.type, type);
  // True when `v` may be read; otherwise reports it, unless the type itself was invalid (that
  // was reported already, and the key may well be right).
  auto http_only = [&](const Field& v) {
    if (check.type == HealthCheckType::kHttp) return true;
    if (!type_field || type) errors_.add(v.key_at, v.path, "only valid with type: http");
    return false;
  };
  if (auto v = m.get("path"); v && http_only(*v)) assign(check.path, read_path(errors_, *v));
  if (auto v = m.get("host"); v && http_only(*v)) assign(check.host, read_host_header(errors_, *v));
  if (auto v = m.get("expect_status"); v && http_only(*v))
    assign(check.expect_status, parse_expect_status(*v));
  auto interval = m.get("interval");
  std::optional<Duration> interval_value = check.interval;
  if (interval) interval_value = detail::read_positive_duration(errors_, *interval);
  assign(check.interval, interval_value);
  if (auto v = m.get("timeout")) assign(check.timeout, detail::read_positive_duration(errors_, *v));
  if (auto v = m.get("rise"))
    assign(check.rise, detail::read_int(errors_, *v, 1, detail::kNoUpperBound));
  if (auto v = m.get("fall"))
    assign(check.fall, detail::read_int(errors_, *v, 1, detail::kNoUpperBound));
  if (auto v = m.get("jitter")) {
    auto jitter = detail::read_duration(errors_, *v);
    // Compared only with an interval that was read: a rejected one was reported already.
    if (jitter && interval_value && *jitter >= *interval_value) {
      errors_.add(v->at, v->path,
                  "must be below interval (" + format_duration(*jitter) +
                      " >= " + format_duration(*interval_value) + ")");
      jitter.reset();
    }
    assign(check.jitter, jitter);
  }
  m.finish();
  return check;
}

// A single status or range, or a list of them; the result replaces the default 200-399.
std::optional<std::vector<StatusRange>> Loader::parse_expect_status(const Field& f) {
  std::vector<StatusRange> ranges;
  if (!f.node.IsSequence()) {
    auto range = read_status_range(errors_, f);
    if (!range) return std::nullopt;
    ranges.push_back(*range);
    return ranges;
  }
  auto items = detail::list_items(errors_, f);
  if (!items) return std::nullopt;
  if (items->empty()) {
    errors_.add(f.at, f.path, "expected at least one status or range");
    return std::nullopt;
  }
  bool all_valid = true;
  for (const Field& item : *items) {
    auto range = read_status_range(errors_, item);
    all_valid = all_valid && range.has_value();
    if (range) ranges.push_back(*range);
  }
  if (!all_valid) return std::nullopt;
  return ranges;
}

Outlier Loader::parse_outlier(const Field& f) {
  constexpr int64_t kMaxConsecutiveFailures = 1000;
  Outlier outlier;
  MapReader m(errors_, f);
  if (auto v = m.get("consecutive_failures"))
    assign(outlier.consecutive_failures,
           detail::read_int(errors_, *v, 1, kMaxConsecutiveFailures));
  auto base = m.get("base_ejection");
  std::optional<Duration> base_value = outlier.base_ejection;
  if (base) base_value = detail::read_positive_duration(errors_, *base);
  assign(outlier.base_ejection, base_value);
  auto max = m.get("max_ejection");
  std::optional<Duration> max_value = outlier.max_ejection;
  if (max) max_value = detail::read_positive_duration(errors_, *max);
  assign(outlier.max_ejection, max_value);
  if (auto v = m.get("http_5xx")) assign(outlier.http_5xx, detail::read_bool(errors_, *v));
  m.finish();

  // Ejections double from base up to max: a base above max would never be honoured. The error
  // goes to max_ejection when the file sets it, else to the base that outgrew the default max.
  if (base_value && max_value && *base_value > *max_value) {
    const std::string base_text = format_duration(*base_value);
    const std::string max_text = format_duration(*max_value);
    if (max)
      errors_.add(max->at, max->path,
                  "must be at least base_ejection (" + max_text + " < " + base_text + ")");
    else
      errors_.add(base->at, base->path,
                  "must not exceed max_ejection (" + base_text + " > " + max_text +
                      ", the default)");
  }
  return outlier;
}

// ---------------------------------------------------------------------------------------------
// Names, references and addresses across sections

void Loader::define(std::vector<Definition>& defined, std::string_view kind,
                    const std::string& name, const Field& f) {
  auto earlier = std::find_if(defined.begin(), defined.end(),
                              [&](const Definition& d) { return d.name == name; });
  if (earlier != defined.end()) {
    errors_.add(f.at, f.path,
                "duplicate " + std::string(kind) + " name " + quoted(name) +
                    " (first defined at line " + std::to_string(earlier->at.line) + ")");
    return;
  }
  defined.push_back(Definition{name, f.at});
}

void Loader::add_cluster_reference(const std::string& name, const Field& f) {
  cluster_references_.push_back(ClusterReference{name, f.at, f.path});
}

void Loader::check_cluster_references() {
  std::vector<std::string> names;
  for (const auto& d : cluster_names_) names.push_back(d.name);
  for (const auto& ref : cluster_references_) {
    if (std::find(names.begin(), names.end(), ref.name) != names.end()) continue;
    std::string message = "unknown cluster " + quoted(ref.name);
    if (names.empty())
      message += " (no clusters are defined)";
    else if (auto suggestion = detail::closest_match(ref.name, names))
      message += " (did you mean " + quoted(*suggestion) + "?)";
    else
      message += " (defined clusters: " + detail::join(names) + ")";
    errors_.add(ref.at, ref.path, std::move(message));
  }
}

bool is_wildcard(const SocketAddress& a) {
  return (a.is_ipv4() && a.host_string() == "0.0.0.0") || (a.is_ipv6() && a.host_string() == "::");
}

// Two sockets that cannot both receive their own traffic: the same address, or a wildcard and
// a specific address of one family on one port (SO_REUSEPORT would let both bind and then
// split connections between them). Port 0 asks the kernel for a fresh port, so never clashes.
// IPv4 against a dual-stack [::] is left to bind(2), which depends on IPV6_V6ONLY.
bool overlaps(const SocketAddress& a, const SocketAddress& b) {
  if (a == b) return a.is_unix() || a.port() != 0;
  if (a.family() != b.family() || a.is_unix() || a.port() == 0 || a.port() != b.port())
    return false;
  return is_wildcard(a) || is_wildcard(b);
}

void Loader::add_listen_site(const SocketAddress& address, const Field& f, std::string owner) {
  for (const ListenSite& site : listen_sites_) {
    if (!overlaps(site.address, address)) continue;
    const std::string where = site.owner + " at line " + std::to_string(site.at.line);
    if (site.address == address)
      errors_.add(f.at, f.path, "address " + address.to_string() + " is already used by " + where);
    else
      errors_.add(f.at, f.path,
                  "address " + address.to_string() + " overlaps " + site.address.to_string() +
                      " of " + where);
    return;
  }
  listen_sites_.push_back(ListenSite{address, f.at, std::move(owner)});
}

// ---------------------------------------------------------------------------------------------
// Entry points

// "/etc/lbd" for "/etc/lbd/lb.yaml", "/" for "/lb.yaml", "" for "lb.yaml".
std::string directory_of(const std::string& file) {
  const std::size_t slash = file.rfind('/');
  if (slash == std::string::npos) return "";
  return slash == 0 ? "/" : file.substr(0, slash);
}

LoadResult load_from_text(std::string_view yaml, const std::string& source_name) {
  ErrorSink errors(source_name);
  auto warnings = [&errors] { return errors.take_sorted_warnings(); };
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(yaml));
    if (documents.empty()) {
      errors.add({}, "", "empty config (expected a map with listeners and clusters)");
    } else if (documents.size() > 1) {
      errors.add(detail::position_of(documents[1].Mark()), "",
                 "more than one YAML document (a config is exactly one)");
    } else {
      Loader loader(errors, directory_of(source_name));
      Config config = loader.load(detail::root_field(documents[0]));
      if (errors.empty()) {
        config.source_path = source_name;
        return LoadResult(std::move(config), warnings());
      }
    }
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    errors.add(detail::position_of(e.mark), "", "invalid YAML: nested too deeply");
  } catch (const YAML::Exception& e) {
    errors.add(detail::position_of(e.mark), "", "invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    errors.add({}, "", std::string("cannot load config: ") + e.what());
  }
  return LoadResult(errors.take_sorted(), warnings());
}

}  // namespace

LoadResult load_config_string(std::string_view yaml, std::string source_name) {
  return load_from_text(yaml, source_name);
}

LoadResult load_config_file(const std::string& path) {
  auto fail = [&](std::string_view what, int err) {
    return LoadResult(std::vector<ConfigError>{
        ConfigError{path, 0, 0, "", std::string(what) + ": " + std::strerror(err)}});
  };
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail("cannot open", errno);
  std::string text;
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot read", errno);  // EISDIR for a directory
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return load_from_text(text, path);
}

}  // namespace lbd::config
