// TlsStream (proxy/tls/tls_stream.cpp) between a server and a client of ours on 127.0.0.1, on
// both drivers: handshake and echo, SNI, ALPN, the version floor, the handshake deadline, mTLS,
// resumption across contexts that share ticket keys (what two workers do), 16 MiB both ways,
// verification failures, first bytes read before TLS, and openssl s_client as a peer.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/tls/first_bytes.hpp"
#include "proxy/tls/ticket_keys.hpp"
#include "proxy/tls/tls_context.hpp"
#include "proxy/tls/tls_stream.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/timer.hpp"
#include "runtime/worker.hpp"
#include "tests/proxy/subprocess.hpp"
#include "tests/proxy/tls_test_support.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd::tls {
namespace {

using namespace std::chrono_literals;
using lbd::test::RuntimeTest;
using test::KeyKind;
using test::TestPki;

std::string messages(const LoadReport& r) {
  std::string out;
  for (const LoadProblem& p : r.errors) out += p.message + "\n";
  return out;
}

/// A test PKI made once per process (RSA key generation is slow enough to matter).
struct Fixture {
  TestPki pki;
  TestPki other_pki{"another CA"};
  TestPki::Issued def = pki.issue_for("default", {"default.test"}, KeyKind::kEcdsa);
  TestPki::Issued a = pki.issue_for("a", {"a.test"}, KeyKind::kRsa);
  TestPki::Issued w = pki.issue_for("w", {"*.w.test"}, KeyKind::kEcdsa);
  TestPki::Issued client = pki.issue_for("client", {"client one"}, KeyKind::kEcdsa);
  TestPki::Issued foreign_client = other_pki.issue_for("foreign", {"foreign client"}, KeyKind::kEcdsa);
};

Fixture& fx() {
  static Fixture f;  // its directory is removed at exit
  return f;
}

ServerOptions server_options() {
  ServerOptions opts;
  opts.certificates.push_back({fx().def.chain_file, fx().def.key_file, {}});
  opts.certificates.push_back({fx().a.chain_file, fx().a.key_file, {}});
  opts.certificates.push_back({fx().w.chain_file, fx().w.key_file, {}});
  return opts;
}

std::shared_ptr<const ServerCredentials> load_server(const ServerOptions& opts) {
  LoadReport report;
  auto creds = ServerCredentials::load(opts, report);
  EXPECT_NE(creds, nullptr) << messages(report);
  return creds;
}

std::shared_ptr<const TicketKeys> new_keys() {
  auto keys = TicketKeys::generate();
  EXPECT_TRUE(keys);
  return keys ? *keys : nullptr;
}

std::unique_ptr<ServerContext> make_server(const ServerOptions& opts = server_options(),
                                           std::shared_ptr<const TicketKeys> keys = nullptr) {
  auto creds = load_server(opts);
  if (!creds) return nullptr;
  auto ctx = ServerContext::create(creds, keys ? keys : new_keys());
  EXPECT_TRUE(ctx);
  return ctx ? std::move(*ctx) : nullptr;
}

ClientOptions client_options() {
  ClientOptions opts;
  opts.ca_file = fx().pki.ca_file();
  return opts;
}

std::unique_ptr<ClientContext> make_client(const ClientOptions& opts = client_options()) {
  LoadReport report;
  auto ctx = ClientContext::load(opts, report);
  EXPECT_NE(ctx, nullptr) << messages(report);
  return ctx;
}

struct Conn {
  TlsStream client;
  TlsStream server;
};

/// A TCP pair on loopback with TLS over each end (no handshake yet).
Task<Result<Conn>> open_conn(const ServerContext* sctx, ClientContext* cctx, std::string sni,
                             std::string session_key = {}) {
  auto pair = co_await lbd::test::make_tcp_pair();
  if (!pair) co_return pair.error();
  auto server = TlsStream::accept(std::move(pair->server), *sctx);
  if (!server) co_return server.error();
  auto client = TlsStream::connect(std::move(pair->client), *cctx, std::move(sni), std::move(session_key));
  if (!client) co_return client.error();
  co_return Conn{std::move(*client), std::move(*server)};
}

Task<Result<void>> handshake_of(TlsStream* s, Duration limit) {
  Result<void> r = co_await s->handshake(limit);
  co_return r;
}

struct Handshakes {
  Result<void> client;
  Result<void> server;
};

/// Both handshakes at once; each side's result.
Task<Handshakes> handshake_both(Conn* c) {
  auto server = spawn(handshake_of(&c->server, 5s));
  Result<void> client = co_await c->client.handshake(5s);
  if (!client) {
    // A client that gave up has sent its alert; close so a server waiting for more hears EOF.
    c->client.socket().close();
  }
  Result<void> srv = co_await server;
  co_return Handshakes{client, srv};
}

/// Echoes until EOF, then sends close_notify.
Task<void> echo(TlsStream* s) {
  Buffer buf(16 * 1024);
  for (;;) {
    buf.clear();
    auto [res, b] = co_await s->read(std::move(buf));
    buf = std::move(b);
    if (!res || *res == 0) break;
    auto [w, b2] = co_await s->write_all(std::move(buf));
    buf = std::move(b2);
    if (!w) break;
  }
  Result<void> done = co_await s->shutdown();
  (void)done;
}

/// Reads until `want` bytes or EOF.
Task<std::string> read_n(TlsStream* s, std::size_t want) {
  std::string out;
  Buffer buf(16 * 1024);
  while (out.size() < want) {
    buf.clear();
    auto [res, b] = co_await s->read(std::move(buf));
    buf = std::move(b);
    if (!res) {
      ADD_FAILURE() << "read: " << res.error().message() << ": " << s->error_detail();
      break;
    }
    if (*res == 0) break;
    out.append(buf.view());
  }
  co_return out;
}

/// Sends `text` and reads its echo back.
Task<std::string> round_trip(TlsStream* s, std::string text) {
  auto [w, b] = co_await s->write_all(Buffer::copy_of(text));
  if (!w) {
    ADD_FAILURE() << "write: " << w.error().message() << ": " << s->error_detail();
    co_return std::string();
  }
  std::string got = co_await read_n(s, text.size());
  co_return got;
}

class TlsStreamTest : public RuntimeTest {};
LBD_INSTANTIATE_FOR_DRIVERS(TlsStreamTest);

// --- handshake and echo ----------------------------------------------------------------------

Task<void> handshake_and_echo(const ServerContext* sctx, ClientContext* cctx) {
  auto conn = co_await open_conn(sctx, cctx, "a.test");
  CO_ASSERT_OK(conn);
  Handshakes hs = co_await handshake_both(&*conn);
  CO_ASSERT_TRUE(hs.client && hs.server);
  EXPECT_EQ(conn->client.version(), TlsVersion::kTls1_3);
  EXPECT_EQ(conn->server.version(), TlsVersion::kTls1_3);
  EXPECT_EQ(conn->client.alpn(), "http/1.1");
  EXPECT_EQ(conn->server.alpn(), "http/1.1");
  EXPECT_EQ(conn->server.server_name(), "a.test");
  EXPECT_FALSE(conn->client.resumed());
  EXPECT_EQ(conn->server.peer_subject(), "") << "no client certificate was asked for";
  auto server = spawn(echo(&conn->server));
  std::string got = co_await round_trip(&conn->client, "hello over TLS");
  EXPECT_EQ(got, "hello over TLS");
  std::string more = co_await round_trip(&conn->client, std::string(40000, 'x'));
  EXPECT_EQ(more.size(), 40000u);
  Result<void> shut = co_await conn->client.shutdown();
  EXPECT_TRUE(shut);
  co_await server;
  // The server answered our close_notify with its own.
  Buffer buf(64);
  auto [res, b] = co_await conn->client.read(std::move(buf));
  CO_ASSERT_OK(res);
  EXPECT_EQ(*res, 0u);
  EXPECT_TRUE(conn->client.peer_sent_close_notify());
}

TEST_P(TlsStreamTest, HandshakeAndEchoOverLoopback) {
  auto sctx = make_server();
  auto cctx = make_client();
  ASSERT_TRUE(sctx && cctx);
  run(handshake_and_echo(sctx.get(), cctx.get()));
}

// --- SNI -------------------------------------------------------------------------------------

struct SniCase {
  std::string sent;
  std::size_t index;
  std::string subject_cn;
};

Task<void> sni_selects(const ServerContext* sctx, ClientContext* cctx, std::vector<SniCase> cases) {
  for (const SniCase& c : cases) {
    auto conn = co_await open_conn(sctx, cctx, c.sent);
    CO_ASSERT_OK(conn);
    Handshakes hs = co_await handshake_both(&*conn);
    CO_ASSERT_TRUE(hs.client && hs.server);
    EXPECT_EQ(conn->server.certificate_index(), c.index) << "SNI " << c.sent;
    EXPECT_NE(conn->client.peer_subject().find("CN=" + c.subject_cn), std::string::npos)
        << "SNI '" << c.sent << "' got " << conn->client.peer_subject();
    EXPECT_EQ(conn->server.server_name(), c.sent);
  }
}

TEST_P(TlsStreamTest, SniPicksTheCertificateExactWildcardOrDefault) {
  auto sctx = make_server();
  ClientOptions no_verify = client_options();
  no_verify.verify = false;  // the default certificate does not carry the unknown names
  auto cctx = make_client(no_verify);
  ASSERT_TRUE(sctx && cctx);
  run(sni_selects(sctx.get(), cctx.get(),
                  {{"a.test", 1, "a.test"},
                   {"A.TEST", 1, "a.test"},
                   {"x.w.test", 2, "*.w.test"},
                   {"deep.x.w.test", 0, "default.test"},
                   {"unknown.test", 0, "default.test"},
                   {"", 0, "default.test"}}));
}

TEST_P(TlsStreamTest, VerifiedClientAcceptsTheWildcardCertificate) {
  auto sctx = make_server();
  auto cctx = make_client();
  ASSERT_TRUE(sctx && cctx);
  run(sni_selects(sctx.get(), cctx.get(), {{"y.w.test", 2, "*.w.test"}, {"default.test", 0, "default.test"}}));
}

// --- ALPN ------------------------------------------------------------------------------------

Task<void> alpn_case(const ServerContext* sctx, ClientContext* cctx, std::string want, bool refused) {
  auto conn = co_await open_conn(sctx, cctx, "a.test");
  CO_ASSERT_OK(conn);
  Handshakes hs = co_await handshake_both(&*conn);
  if (refused) {
    EXPECT_FALSE(hs.server);
    EXPECT_TRUE(is_tls_error(hs.server.error(), TlsErrc::kHandshakeFailed)) << hs.server.error().message();
    EXPECT_NE(conn->server.error_detail().find("no application protocol"), std::string::npos)
        << conn->server.error_detail();
    EXPECT_FALSE(hs.client);
    co_return;
  }
  CO_ASSERT_TRUE(hs.client && hs.server);
  EXPECT_EQ(conn->server.alpn(), want);
  EXPECT_EQ(conn->client.alpn(), want);
}

TEST_P(TlsStreamTest, AlpnIsChosenInTheServersOrder) {
  ServerOptions h2_first = server_options();
  h2_first.alpn = {"h2", "http/1.1"};
  auto h2_server = make_server(h2_first);
  auto plain_server = make_server();  // {"http/1.1"}
  ClientOptions both = client_options();
  both.alpn = {"http/1.1", "h2"};  // the client prefers http/1.1; the server's order wins
  ClientOptions h2_only = client_options();
  h2_only.alpn = {"h2"};
  ClientOptions none = client_options();
  none.alpn = {};
  auto both_client = make_client(both);
  auto h1_client = make_client();
  auto h2_client = make_client(h2_only);
  auto no_alpn_client = make_client(none);
  ASSERT_TRUE(h2_server && plain_server && both_client && h1_client && h2_client && no_alpn_client);
  run(alpn_case(h2_server.get(), both_client.get(), "h2", false));
  run(alpn_case(h2_server.get(), h1_client.get(), "http/1.1", false));
  run(alpn_case(plain_server.get(), both_client.get(), "http/1.1", false));
  run(alpn_case(plain_server.get(), no_alpn_client.get(), "", false));
  run(alpn_case(plain_server.get(), h2_client.get(), "", true));
}

// --- version floor ---------------------------------------------------------------------------

Task<void> old_client(const ServerContext* sctx, ClientContext* cctx, bool accepted) {
  auto conn = co_await open_conn(sctx, cctx, "a.test");
  CO_ASSERT_OK(conn);
  Handshakes hs = co_await handshake_both(&*conn);
  if (accepted) {
    CO_ASSERT_TRUE(hs.client && hs.server);
    EXPECT_EQ(conn->server.version(), TlsVersion::kTls1_1);
    co_return;
  }
  EXPECT_FALSE(hs.client);
  CO_ASSERT_TRUE(!hs.server);
  EXPECT_TRUE(is_tls_error(hs.server.error(), TlsErrc::kHandshakeFailed)) << hs.server.error().message();
  EXPECT_NE(conn->server.error_detail().find("unsupported protocol"), std::string::npos) << conn->server.error_detail();
}

TEST_P(TlsStreamTest, Tls11ClientIsRefusedByTheDefaultFloorAndServedByA11Floor) {
  ClientOptions tls11 = client_options();
  tls11.min_version = TlsVersion::kTls1_0;
  tls11.max_version = TlsVersion::kTls1_1;
  tls11.ciphers = "DEFAULT:@SECLEVEL=0";  // TLS 1.1's handshake signatures need level 0
  auto cctx = make_client(tls11);
  auto sctx = make_server();
  ServerOptions low = server_options();
  low.min_version = TlsVersion::kTls1_1;
  auto low_server = make_server(low);
  ASSERT_TRUE(cctx && sctx && low_server);
  run(old_client(sctx.get(), cctx.get(), false));
  run(old_client(low_server.get(), cctx.get(), true));
}

// --- handshake deadline ----------------------------------------------------------------------

Task<void> stalled_client(const ServerContext* sctx, std::string first_bytes) {
  auto pair = co_await lbd::test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  if (!first_bytes.empty()) {
    auto [w, b] = co_await pair->client.write_all(Buffer::copy_of(first_bytes));
    CO_ASSERT_OK(w);
  }
  auto server = TlsStream::accept(std::move(pair->server), *sctx);
  CO_ASSERT_OK(server);
  auto start = Clock::now();
  Result<void> hs = co_await server->handshake(300ms);
  auto took = Clock::now() - start;
  CO_ASSERT_TRUE(!hs);
  EXPECT_TRUE(hs.error().is(ETIMEDOUT)) << hs.error().message();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
  EXPECT_NE(server->error_detail().find("within 300 ms"), std::string::npos) << server->error_detail();
  // The stream keeps nothing in flight after the deadline.
  bool settled = co_await lbd::test::settle_ops();
  EXPECT_TRUE(settled);
}

TEST_P(TlsStreamTest, ClientThatStallsMidHandshakeIsCutAtTheDeadline) {
  auto sctx = make_server();
  ASSERT_TRUE(sctx);
  // Half a ClientHello: a record header announcing 512 bytes, and 4 of them.
  run(stalled_client(sctx.get(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9)));
  run(stalled_client(sctx.get(), ""));  // says nothing at all
}

Task<void> client_closes_mid_handshake(const ServerContext* sctx) {
  auto pair = co_await lbd::test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of(std::string("\x16\x03\x01\x02\x00", 5)));
  CO_ASSERT_OK(w);
  pair->client.close();
  auto server = TlsStream::accept(std::move(pair->server), *sctx);
  CO_ASSERT_OK(server);
  Result<void> hs = co_await server->handshake(5s);
  CO_ASSERT_TRUE(!hs);
  EXPECT_TRUE(is_tls_error(hs.error(), TlsErrc::kPeerClosed)) << hs.error().message();
}

TEST_P(TlsStreamTest, ClientThatClosesMidHandshakeIsReportedSo) {
  auto sctx = make_server();
  ASSERT_TRUE(sctx);
  run(client_closes_mid_handshake(sctx.get()));
}

// --- mTLS ------------------------------------------------------------------------------------

Task<void> mtls_case(const ServerContext* sctx, ClientContext* cctx, bool accepted, std::string subject) {
  auto conn = co_await open_conn(sctx, cctx, "a.test");
  CO_ASSERT_OK(conn);
  Handshakes hs = co_await handshake_both(&*conn);
  if (!accepted) {
    CO_ASSERT_TRUE(!hs.server);
    EXPECT_TRUE(is_tls_error(hs.server.error(), TlsErrc::kCertificateRejected))
        << hs.server.error().message() << ": " << conn->server.error_detail();
    co_return;
  }
  CO_ASSERT_TRUE(hs.client && hs.server);
  EXPECT_EQ(conn->server.peer_subject(), subject);
  auto server = spawn(echo(&conn->server));
  std::string got = co_await round_trip(&conn->client, "authenticated");
  EXPECT_EQ(got, "authenticated");
  Result<void> shut = co_await conn->client.shutdown();
  (void)shut;
  co_await server;
}

TEST_P(TlsStreamTest, MutualTlsRequiredRefusesMissingAndForeignCertificatesAndShowsTheSubject) {
  ServerOptions required = server_options();
  required.verify_client = VerifyClient::kRequired;
  required.client_ca_file = fx().pki.ca_file();
  auto sctx = make_server(required);
  auto anonymous = make_client();
  ClientOptions with_cert = client_options();
  with_cert.cert_file = fx().client.chain_file;
  with_cert.key_file = fx().client.key_file;
  auto good = make_client(with_cert);
  ClientOptions foreign = client_options();
  foreign.cert_file = fx().foreign_client.chain_file;
  foreign.key_file = fx().foreign_client.key_file;
  auto stranger = make_client(foreign);
  ASSERT_TRUE(sctx && anonymous && good && stranger);
  run(mtls_case(sctx.get(), anonymous.get(), false, ""));
  run(mtls_case(sctx.get(), stranger.get(), false, ""));
  run(mtls_case(sctx.get(), good.get(), true, "CN=client one,O=lbd tests"));
}

TEST_P(TlsStreamTest, MutualTlsOptionalLetsAnonymousClientsIn) {
  ServerOptions optional = server_options();
  optional.verify_client = VerifyClient::kOptional;
  optional.client_ca_file = fx().pki.ca_file();
  auto sctx = make_server(optional);
  auto anonymous = make_client();
  ClientOptions with_cert = client_options();
  with_cert.cert_file = fx().client.chain_file;
  with_cert.key_file = fx().client.key_file;
  auto good = make_client(with_cert);
  ASSERT_TRUE(sctx && anonymous && good);
  run(mtls_case(sctx.get(), anonymous.get(), true, ""));
  run(mtls_case(sctx.get(), good.get(), true, "CN=client one,O=lbd tests"));
}

// --- resumption ------------------------------------------------------------------------------

/// One connection: handshake, an echo (a TLS 1.3 client gets its ticket while reading), close.
/// Returns whether it resumed (on both sides alike).
Task<bool> connect_once(const ServerContext* sctx, ClientContext* cctx) {
  auto conn = co_await open_conn(sctx, cctx, "a.test", "127.0.0.1:443 a.test");
  if (!conn) {
    ADD_FAILURE() << "connect: " << conn.error().message();
    co_return false;
  }
  Handshakes hs = co_await handshake_both(&*conn);
  if (!hs.client || !hs.server) {
    ADD_FAILURE() << "handshake: " << conn->client.error_detail() << " / " << conn->server.error_detail();
    co_return false;
  }
  EXPECT_EQ(conn->client.resumed(), conn->server.resumed());
  auto server = spawn(echo(&conn->server));
  std::string got = co_await round_trip(&conn->client, "ticket please");
  EXPECT_EQ(got, "ticket please");
  Result<void> shut = co_await conn->client.shutdown();
  (void)shut;
  co_await server;
  co_return conn->server.resumed();
}

struct Resumption {
  bool first, same_keys_other_context, other_keys, after_rotation, after_two_rotations;
};

Task<Resumption> resumption(ClientContext* cctx, std::shared_ptr<const TicketKeys> keys) {
  Resumption out{};
  auto worker_a = make_server(server_options(), keys);
  auto worker_b = make_server(server_options(), keys);
  auto stranger = make_server(server_options(), new_keys());
  out.first = co_await connect_once(worker_a.get(), cctx);
  out.same_keys_other_context = co_await connect_once(worker_b.get(), cctx);
  out.other_keys = co_await connect_once(stranger.get(), cctx);
  // The stranger's full handshake left its ticket in the cache: start again from worker A's.
  (void)co_await connect_once(worker_a.get(), cctx);
  auto rotated = keys->rotate();
  if (!rotated) co_return out;
  worker_b->set_ticket_keys(*rotated);
  out.after_rotation = co_await connect_once(worker_b.get(), cctx);  // the ticket is under the previous key
  auto twice = (*rotated)->rotate();
  if (!twice) co_return out;
  auto twice_again = (*twice)->rotate();
  if (!twice_again) co_return out;
  worker_a->set_ticket_keys(*twice_again);
  out.after_two_rotations = co_await connect_once(worker_a.get(), cctx);
  co_return out;
}

TEST_P(TlsStreamTest, Tls13TicketResumesOnAnotherContextWithTheSameKeys) {
  ClientOptions opts = client_options();
  auto cctx = make_client(opts);
  ASSERT_TRUE(cctx);
  Resumption r = run(resumption(cctx.get(), new_keys()));
  EXPECT_FALSE(r.first);
  EXPECT_TRUE(r.same_keys_other_context) << "a context sharing the ticket keys resumes";
  EXPECT_FALSE(r.other_keys) << "a context with other keys does not";
  EXPECT_TRUE(r.after_rotation) << "the previous key still decrypts";
  EXPECT_FALSE(r.after_two_rotations) << "the key before the previous one is gone";
  EXPECT_EQ(cctx->cached_sessions(), 1u) << "one session per session key";
}

TEST_P(TlsStreamTest, Tls12TicketResumesOnAnotherContextWithTheSameKeys) {
  ClientOptions opts = client_options();
  opts.max_version = TlsVersion::kTls1_2;
  auto cctx = make_client(opts);
  ASSERT_TRUE(cctx);
  Resumption r = run(resumption(cctx.get(), new_keys()));
  EXPECT_FALSE(r.first);
  EXPECT_TRUE(r.same_keys_other_context);
  EXPECT_FALSE(r.other_keys);
  EXPECT_TRUE(r.after_rotation);
  EXPECT_FALSE(r.after_two_rotations);
}

Task<void> without_keys(ClientContext* cctx) {
  auto creds = load_server(server_options());
  CO_ASSERT_TRUE(creds != nullptr);
  auto ctx = ServerContext::create(creds, nullptr);
  CO_ASSERT_OK(ctx);
  bool first = co_await connect_once(ctx->get(), cctx);
  bool second = co_await connect_once(ctx->get(), cctx);
  EXPECT_FALSE(first);
  EXPECT_FALSE(second) << "no keys, no tickets";
  (*ctx)->set_ticket_keys(new_keys());
  bool third = co_await connect_once(ctx->get(), cctx);
  bool fourth = co_await connect_once(ctx->get(), cctx);
  EXPECT_FALSE(third);
  EXPECT_TRUE(fourth) << "tickets from the keys set later";
}

TEST_P(TlsStreamTest, ContextWithoutTicketKeysHandshakesInFullUntilItGetsSome) {
  auto cctx = make_client();
  ASSERT_TRUE(cctx);
  run(without_keys(cctx.get()));
}

// --- bulk ------------------------------------------------------------------------------------

Task<int> write_all_of(TlsStream* s, std::string data) {
  auto [w, b] = co_await s->write_all(Buffer::copy_of(data));
  if (!w) ADD_FAILURE() << "client write: " << w.error().message() << ": " << s->error_detail();
  co_return w.errno_value();
}

Task<void> bulk(const ServerContext* sctx, ClientContext* cctx, std::size_t size) {
  auto conn = co_await open_conn(sctx, cctx, "a.test");
  CO_ASSERT_OK(conn);
  lbd::test::small_socket_buffers(conn->client.socket(), conn->server.socket());
  Handshakes hs = co_await handshake_both(&*conn);
  CO_ASSERT_TRUE(hs.client && hs.server);
  std::string data = lbd::test::random_bytes(size, 12);
  auto server = spawn(echo(&conn->server));
  // Writing and reading at once: the echo cannot keep all of it in flight.
  auto writer = spawn(write_all_of(&conn->client, data));
  std::string got = co_await read_n(&conn->client, size);
  int werr = co_await writer;
  EXPECT_EQ(werr, 0);
  EXPECT_EQ(got.size(), size);
  EXPECT_EQ(lbd::test::first_mismatch(got, data), std::string_view::npos);
  Result<void> shut = co_await conn->client.shutdown();
  EXPECT_TRUE(shut);
  co_await server;
}

TEST_P(TlsStreamTest, SixteenMiBBothWaysArriveByteExact) {
  auto sctx = make_server();
  auto cctx = make_client();
  ASSERT_TRUE(sctx && cctx);
  run(bulk(sctx.get(), cctx.get(), 16u << 20), 120s);
}

// --- verification failures on the client -----------------------------------------------------

Task<void> client_refuses(const ServerContext* sctx, ClientContext* cctx, std::string sni, std::string why) {
  auto conn = co_await open_conn(sctx, cctx, sni);
  CO_ASSERT_OK(conn);
  Handshakes hs = co_await handshake_both(&*conn);
  CO_ASSERT_TRUE(!hs.client);
  EXPECT_TRUE(is_tls_error(hs.client.error(), TlsErrc::kCertificateRejected)) << hs.client.error().message();
  EXPECT_NE(conn->client.error_detail().find(why), std::string::npos) << conn->client.error_detail();
  EXPECT_FALSE(hs.server) << "the server hears the client's alert";
}

TEST_P(TlsStreamTest, ClientRefusesAServerFromAnotherCaOrForAnotherName) {
  auto sctx = make_server();
  ClientOptions wrong_ca = client_options();
  wrong_ca.ca_file = fx().other_pki.ca_file();
  auto distrustful = make_client(wrong_ca);
  auto cctx = make_client();
  ASSERT_TRUE(sctx && distrustful && cctx);
  run(client_refuses(sctx.get(), distrustful.get(), "a.test", "certificate verify failed: self-signed certificate in certificate chain"));
  // unknown.test gets the default certificate, which is for default.test.
  run(client_refuses(sctx.get(), cctx.get(), "unknown.test", "certificate verify failed: hostname mismatch"));
}

// --- first bytes read before TLS -------------------------------------------------------------

Task<void> classified_then_accepted(const ServerContext* sctx, ClientContext* cctx) {
  auto pair = co_await lbd::test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto client = TlsStream::connect(std::move(pair->client), *cctx, "a.test");
  CO_ASSERT_OK(client);
  auto client_hs = spawn(handshake_of(&*client, 5s));
  // What a listener does: read the first bytes, look at them, hand them to TLS.
  Buffer first(5);
  while (first.size() < 5) {
    auto [res, b] = co_await pair->server.read(std::move(first));
    first = std::move(b);
    CO_ASSERT_OK(res);
    CO_ASSERT_TRUE(*res > 0);
  }
  EXPECT_EQ(classify_first_bytes(first.view()), FirstBytes::kTls);
  auto server = TlsStream::accept(std::move(pair->server), *sctx, std::move(first));
  CO_ASSERT_OK(server);
  Result<void> shs = co_await server->handshake(5s);
  Result<void> chs = co_await client_hs;
  CO_ASSERT_TRUE(shs && chs);
  auto echoing = spawn(echo(&*server));
  std::string got = co_await round_trip(&*client, "after the peek");
  EXPECT_EQ(got, "after the peek");
  Result<void> shut = co_await client->shutdown();
  (void)shut;
  co_await echoing;
}

TEST_P(TlsStreamTest, BytesReadBeforeTlsAreHandedToTheHandshake) {
  auto sctx = make_server();
  auto cctx = make_client();
  ASSERT_TRUE(sctx && cctx);
  run(classified_then_accepted(sctx.get(), cctx.get()));
}

// --- openssl s_client as the peer ------------------------------------------------------------

struct SClientRun {
  Result<void> handshake = errno_error(EINVAL);
  std::string alpn, sni, received;
  std::optional<TlsVersion> version;
  lbd::test::CommandResult client;
};

Task<SClientRun> serve_s_client(const ServerContext* sctx, std::vector<std::string> argv) {
  SClientRun out;
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) co_return out;
  auto local = listener->local_address();
  if (!local) co_return out;
  argv.push_back("-connect");
  argv.push_back(local->to_string());
  auto run_client = [argv] { return lbd::test::run_command(argv, "ping\n", std::chrono::seconds(20)); };
  auto client = spawn_blocking(run_client);
  auto sock = co_await listener->accept();
  if (sock) {
    auto server = TlsStream::accept(std::move(*sock), *sctx);
    if (server) {
      out.handshake = co_await server->handshake(10s);
      if (out.handshake) {
        out.alpn = std::string(server->alpn());
        out.sni = std::string(server->server_name());
        out.version = server->version();
        out.received = co_await read_n(&*server, 5);
        auto [w, b] = co_await server->write_all(Buffer::copy_of("pong\n"));
        (void)w;
        Result<void> shut = co_await server->shutdown();
        (void)shut;
      }
    }
  }
  out.client = co_await client;
  co_return out;
}

TEST_P(TlsStreamTest, OpensslSClientNegotiatesSniAlpnAndIsRefusedBelowTheFloor) {
  if (lbd::test::find_program("openssl").empty()) GTEST_SKIP() << "openssl (the CLI) is not installed";
  ServerOptions opts = server_options();
  opts.alpn = {"h2", "http/1.1"};
  auto sctx = make_server(opts);
  ASSERT_TRUE(sctx);
  SClientRun ok = run(serve_s_client(sctx.get(), {"openssl", "s_client", "-servername", "a.test", "-alpn",
                                                  "http/1.1,h2", "-CAfile", fx().pki.ca_file(),
                                                  "-verify_return_error", "-verify_hostname", "a.test"}));
  ASSERT_TRUE(ok.handshake) << ok.handshake.error().message() << "\n" << ok.client.errors;
  EXPECT_EQ(ok.alpn, "h2");
  EXPECT_EQ(ok.sni, "a.test");
  EXPECT_EQ(ok.version, TlsVersion::kTls1_3);
  EXPECT_EQ(ok.received, "ping\n");
  EXPECT_NE(ok.client.output.find("Verify return code: 0 (ok)"), std::string::npos) << ok.client.output;

  SClientRun old = run(serve_s_client(sctx.get(), {"openssl", "s_client", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
                                                   "-servername", "a.test"}));
  EXPECT_FALSE(old.handshake);
  EXPECT_FALSE(old.client.ok()) << old.client.output;
}

}  // namespace
}  // namespace lbd::tls
