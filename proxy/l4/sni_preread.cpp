#include "proxy/l4/sni_preread.hpp"

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>

namespace lbd::proxy {
namespace {

/// Appends `more` to `to`, growing it by doubling. The first read is copied into a buffer of
/// its own size: a whole ClientHello in one read, the usual case, costs one exact allocation.
void append(Buffer& to, std::string_view more) {
  if (to.spare().size() < more.size()) {
    Buffer grown(std::max(to.size() + more.size(), 2 * to.capacity()));
    grown.append(to.view());
    to = std::move(grown);
  }
  to.append(more);
}

}  // namespace

Task<SniPreread> read_client_hello(StreamSocket* client, Duration limit) {
  SniPreread out;
  const auto deadline = Clock::now() + limit;
  // The peek parses from the first byte each time; asking again only once it has the bytes it
  // said it needs keeps a client that trickles its hello from costing quadratic time.
  std::size_t ask_at = 1;
  for (;;) {
    const Duration left = deadline - Clock::now();
    if (left <= Duration::zero()) {
      out.end = PrereadEnd::kTimedOut;
      co_return std::move(out);
    }
    Result<Buffer> got = co_await client->read_pooled(left);
    if (!got) {
      out.end = got.error().is(ETIMEDOUT) ? PrereadEnd::kTimedOut : PrereadEnd::kReadFailed;
      out.error = got.error();
      co_return std::move(out);
    }
    if (got->empty()) {
      out.end = PrereadEnd::kPeerClosed;
      co_return std::move(out);
    }
    append(out.bytes, got->view());
    got = Buffer();  // the pooled slot goes back now, not at the next read
    if (out.bytes.size() < ask_at) continue;
    out.hello = tls::peek_client_hello(out.bytes.span());
    if (out.hello.outcome != tls::ClientHelloOutcome::kNeedMore) {
      out.end = PrereadEnd::kDecided;
      co_return std::move(out);
    }
    ask_at = out.bytes.size() + out.hello.need;
  }
}

}  // namespace lbd::proxy
