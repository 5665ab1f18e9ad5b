// Not a test: measures the memory an idle TLS connection holds on the server side of lbd's TLS
// (proxy/tls), after a handshake (ECDSA P-256, TLS 1.3, a ticket issued) and one small echo.
// The server runs on the main thread and the clients on another, each with its own runtime;
// every allocation (OpenSSL's through CRYPTO_set_mem_functions, C++'s through operator new) is
// counted against the thread that made it, so the server's figure excludes the clients'.
//
//   build/release/tests/proxy/tls_idle_memory [connections] [TLSv1.2|TLSv1.3]
//
// LBD_SITES=1 adds OpenSSL's share by allocation site (file:line, bytes and blocks per
// connection); LBD_NO_TICKETS=1 runs the server without ticket keys (no ticket is issued).

#include <openssl/crypto.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <future>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/tls/ticket_keys.hpp"
#include "proxy/tls/tls_context.hpp"
#include "proxy/tls/tls_stream.hpp"
#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "tests/proxy/tls_test_support.hpp"

namespace {

// Each block carries a header: the counter it was charged to and its size.
struct alignas(16) Header {
  std::atomic<long long>* counter;
  std::size_t size;
  int site;  // index into sites, or -1 (C++ allocations)
};

// OpenSSL's live bytes per allocation site (file:line), for the breakdown.
struct Site {
  const char* file = nullptr;
  int line = 0;
  std::atomic<long long> bytes{0};
  std::atomic<long long> blocks{0};
  long long mark_bytes = 0;
  long long mark_blocks = 0;
};
constexpr int kSites = 8192;
Site sites[kSites];
std::atomic_flag sites_lock = ATOMIC_FLAG_INIT;

thread_local bool track_sites = false;  // only the server's thread

int site_of(const char* file, int line) {
  if (!track_sites) return -1;
  std::size_t h = (reinterpret_cast<std::uintptr_t>(file) * 31 + static_cast<std::size_t>(line)) % kSites;
  while (sites_lock.test_and_set(std::memory_order_acquire)) {
  }
  int found = -1;
  for (int probe = 0; probe < kSites; ++probe, h = (h + 1) % kSites) {
    if (sites[h].file == file && sites[h].line == line) { found = static_cast<int>(h); break; }
    if (!sites[h].file) {
      sites[h].file = file;
      sites[h].line = line;
      found = static_cast<int>(h);
      break;
    }
  }
  sites_lock.clear(std::memory_order_release);
  return found;
}

std::atomic<long long>* thread_counter() {
  // Leaked on purpose: blocks may be freed after their thread is gone.
  thread_local std::atomic<long long>* c = new (std::malloc(sizeof(std::atomic<long long>))) std::atomic<long long>(0);
  return c;
}

void* counted_alloc(std::size_t n, int site = -1) {
  auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + n));
  if (!h) return nullptr;
  h->counter = thread_counter();
  h->size = n;
  h->site = site;
  h->counter->fetch_add(static_cast<long long>(n), std::memory_order_relaxed);
  if (site >= 0) {
    sites[site].bytes.fetch_add(static_cast<long long>(n), std::memory_order_relaxed);
    sites[site].blocks.fetch_add(1, std::memory_order_relaxed);
  }
  return h + 1;
}

void counted_free(void* p) {
  if (!p) return;
  Header* h = static_cast<Header*>(p) - 1;
  h->counter->fetch_sub(static_cast<long long>(h->size), std::memory_order_relaxed);
  if (h->site >= 0) {
    sites[h->site].bytes.fetch_sub(static_cast<long long>(h->size), std::memory_order_relaxed);
    sites[h->site].blocks.fetch_sub(1, std::memory_order_relaxed);
  }
  std::free(h);
}

void* counted_realloc(void* p, std::size_t n, int site = -1) {
  if (!p) return counted_alloc(n, site);
  Header* old = static_cast<Header*>(p) - 1;
  void* fresh = counted_alloc(n, site);
  if (!fresh) return nullptr;
  std::memcpy(fresh, p, old->size < n ? old->size : n);
  counted_free(p);
  return fresh;
}

void* ossl_malloc(size_t n, const char* file, int line) { return counted_alloc(n, site_of(file, line)); }
void* ossl_realloc(void* p, size_t n, const char* file, int line) {
  return counted_realloc(p, n, site_of(file, line));
}
void ossl_free(void* p, const char*, int) { counted_free(p); }

long rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

using namespace lbd;
using namespace lbd::tls;
using namespace std::chrono_literals;

Task<void> serve(TcpListener* listener, const ServerContext* ctx, int n, std::vector<TlsStream>* idle) {
  for (int i = 0; i < n; ++i) {
    auto sock = co_await listener->accept();
    if (!sock) std::abort();
    auto tls = TlsStream::accept(std::move(*sock), *ctx);
    if (!tls) std::abort();
    Result<void> hs = co_await tls->handshake(10s);
    if (!hs) {
      std::fprintf(stderr, "server handshake: %s\n", tls->error_detail().c_str());
      std::abort();
    }
    auto [res, buf] = co_await tls->read(Buffer(64));
    if (!res || *res == 0) std::abort();
    auto [w, b] = co_await tls->write_all(std::move(buf));
    if (!w) std::abort();
    idle->push_back(std::move(*tls));
  }
}

Task<void> connect_all(SocketAddress addr, ClientContext* ctx, int n, std::vector<TlsStream>* held) {
  for (int i = 0; i < n; ++i) {
    auto sock = co_await TcpStream::connect(addr);
    if (!sock) std::abort();
    auto tls = TlsStream::connect(std::move(*sock), *ctx, "idle.test", "idle " + std::to_string(i));
    if (!tls) std::abort();
    Result<void> hs = co_await tls->handshake(10s);
    if (!hs) std::abort();
    auto [w, b] = co_await tls->write_all(Buffer::copy_of("x"));
    if (!w) std::abort();
    auto [res, buf] = co_await tls->read(Buffer(64));  // the echo, and the ticket before it
    if (!res || *res == 0) std::abort();
    held->push_back(std::move(*tls));
  }
}

}  // namespace

void* operator new(std::size_t n) {
  void* p = counted_alloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void* operator new[](std::size_t n) {
  void* p = counted_alloc(n);
  if (!p) throw std::bad_alloc();
  return p;
}
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

int main(int argc, char** argv) {
  if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
    std::fprintf(stderr, "CRYPTO_set_mem_functions failed (OpenSSL allocated before main)\n");
    return 1;
  }
  int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  std::optional<TlsVersion> version = argc > 2 ? parse_tls_version(argv[2]) : std::nullopt;
  test::TestPki pki;
  auto cert = pki.issue_for("idle", {"idle.test"}, test::KeyKind::kEcdsa);
  ServerOptions opts;
  opts.certificates.push_back({cert.chain_file, cert.key_file, {}});
  LoadReport report;
  auto creds = ServerCredentials::load(opts, report);
  auto keys = TicketKeys::generate();
  if (!creds || !keys) return 1;
  auto sctx = std::getenv("LBD_NO_TICKETS") ? ServerContext::create(creds, nullptr) : ServerContext::create(creds, *keys);
  ClientOptions copts;
  copts.ca_file = pki.ca_file();
  copts.max_version = version;
  auto cctx = ClientContext::load(copts, report);
  if (!sctx || !cctx) return 1;

  Runtime rt;
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) return 1;
  auto addr = listener->local_address();
  if (!addr) return 1;

  std::vector<TlsStream> warm_server, idle;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> phase{0};
  std::thread clients([&] {
    Runtime crt;
    std::vector<TlsStream> held;
    crt.block_on(connect_all(*addr, cctx.get(), 1, &held));
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    crt.block_on(connect_all(*addr, cctx.get(), n, &held));
    released.wait();
  });
  // One connection first: OpenSSL's per-thread and lazily built state is not per connection.
  rt.block_on(serve(&*listener, sctx->get(), 1, &warm_server));
  while (phase.load() != 1) std::this_thread::yield();
  idle.reserve(static_cast<std::size_t>(n));
  track_sites = true;
  long long before = thread_counter()->load();
  for (Site& site : sites) {
    site.mark_bytes = site.bytes.load();
    site.mark_blocks = site.blocks.load();
  }
  long rss_before = rss_kib();
  phase = 2;
  rt.block_on(serve(&*listener, sctx->get(), n, &idle));
  long long after = thread_counter()->load();
  long rss_after = rss_kib();
  std::printf("%d idle TLS connections (%s, ECDSA P-256, after one echo), server side:\n", n,
              std::string(to_string(idle.front().version().value_or(TlsVersion::kTls1_3))).c_str());
  std::printf("  heap held per connection (OpenSSL + lbd): %lld bytes\n", (after - before) / n);
  std::printf("  of which the vector slot: %zu bytes\n", sizeof(TlsStream));
  std::printf("  process max RSS grew by %ld KiB (both sides, %ld bytes per connection pair)\n",
              rss_after - rss_before, (rss_after - rss_before) * 1024 / n);
  if (std::getenv("LBD_SITES")) {
    std::printf("  OpenSSL's share by allocation site (bytes, blocks per connection):\n");
    for (Site& site : sites) {
      long long bytes = site.bytes.load() - site.mark_bytes;
      long long blocks = site.blocks.load() - site.mark_blocks;
      if (site.file && bytes / n != 0)
        std::printf("    %6lld %5.2f  %s:%d\n", bytes / n, static_cast<double>(blocks) / n, site.file,
                    site.line);
    }
  }
  release.set_value();
  clients.join();
  return 0;
}
