// The echo server from Monoio's README, on lbd's runtime: 127.0.0.1:50002, 8 KiB buffer,
// write_all. Try it with `nc 127.0.0.1 50002`. Options: --port N, --io io_uring|epoll.

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"

using namespace lbd;

static Task<void> echo(TcpStream stream) {
  Buffer buf(8 * 1024);
  for (;;) {
    buf.clear();
    auto [res, b] = co_await stream.read(std::move(buf));
    buf = std::move(b);
    if (!res || *res == 0) co_return;
    auto [wres, b2] = co_await stream.write_all(std::move(buf));
    buf = std::move(b2);
    if (!wres) co_return;
  }
}

static Task<int> serve(uint16_t port) {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(port));
  if (!listener) {
    std::fprintf(stderr, "echo: bind 127.0.0.1:%u: %s\n", port, listener.error().message().c_str());
    co_return 1;
  }
  std::printf("echo: listening on 127.0.0.1:%u (driver %s)\n", port,
              Runtime::current().driver_info().name.c_str());
  std::fflush(stdout);
  for (;;) {
    auto stream = co_await listener->accept();
    if (!stream) {
      std::fprintf(stderr, "echo: accept: %s\n", stream.error().message().c_str());
      co_return 1;
    }
    (void)spawn(echo(std::move(*stream)));
  }
}

int main(int argc, char** argv) {
  uint16_t port = 50002;
  RuntimeOptions opts;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--io") == 0)
      opts.io = std::strcmp(argv[i + 1], "epoll") == 0 ? IoMode::kEpoll : IoMode::kIoUring;
  }
  Runtime rt(opts);
  return rt.block_on(serve(port));
}
