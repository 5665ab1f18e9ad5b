// The comparison peer for runtime/examples/echo.cpp, written the way Boost.Asio's own examples
// write an echo server: one single-threaded io_context, one session object per connection that
// async_read_some()s into an 8 KiB buffer and async_write()s everything it read before reading
// again. Same listener settings as lbd's echo: 127.0.0.1, SO_REUSEADDR, backlog 511, no
// TCP_NODELAY.
//
//   asio_echo_server --port N

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include <boost/asio.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kBufferSize = 8 * 1024;
constexpr int kBacklog = 511;

/// One connection. Each pending handler holds a shared_ptr to it; the session ends when the
/// last handler returns without starting another operation.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                              if (!ec) self->write(n);
                            });
  }
  void write(std::size_t n) {
    asio::async_write(socket_, asio::buffer(buf_.data(), n),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                        if (!ec) self->read();
                      });
  }

  tcp::socket socket_;
  std::array<char, kBufferSize> buf_;
};

class Server {
 public:
  Server(asio::io_context& io, unsigned short port) : acceptor_(io) {
    tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(kBacklog);
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (!ec) {
        std::make_shared<Session>(std::move(socket))->start();
      } else if (ec == asio::error::no_descriptors) {
        std::fprintf(stderr, "asio_echo_server: accept: %s\n", ec.message().c_str());
      }
      accept();
    });
  }

  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 50002;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
  }
  try {
    // Concurrency hint 1: one thread runs the context, so Asio may skip some locking.
    asio::io_context io(1);
    Server server(io, port);
    std::printf("asio_echo_server: listening on 127.0.0.1:%u (Boost %d.%d)\n", port, BOOST_VERSION / 100000,
                BOOST_VERSION / 100 % 1000);
    std::fflush(stdout);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo_server: 127.0.0.1:%u: %s\n", port, e.what());
    return 1;
  }
  return 0;
}
