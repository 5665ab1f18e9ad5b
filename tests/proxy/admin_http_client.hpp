#pragma once
// The admin server's test harness, on the runtime: serve_admin on a loopback port, and a
// literal HTTP/1.1 client that sends raw bytes and reads one response (Content-Length framed,
// as every admin answer is) at a time off the same connection.
//
// No co_await sits in a condition or a co_return here: GCC 12 miscompiles some of those (the
// awaited task's body never runs), so results go into locals first.

#include <cctype>
#include <map>
#include <optional>
#include <string>

#include "proxy/admin/admin_server.hpp"
#include "runtime/cancel.hpp"
#include "runtime/net.hpp"
#include "runtime/spawn.hpp"
#include "runtime/task.hpp"
#include "runtime/timer.hpp"

namespace lbd::test {

/// serve_admin on a loopback port, and stopping it. A test stops it (co_await stop()) before
/// the harness goes: the server's task points into it.
class AdminHarness {
 public:
  Result<void> start(proxy::AdminBackend* backend, proxy::AdminServerOptions options = {}) {
    auto l = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    if (!l) return l.error();
    listener_ = std::move(*l);
    auto a = listener_.local_address();
    if (!a) return a.error();
    address_ = *a;
    handle_.emplace(spawn(proxy::serve_admin(&listener_, backend, &stop_, options)));
    return {};
  }
  SocketAddress address() const { return address_; }
  /// Stops the server; true when serve_admin returned within `limit`.
  Task<bool> stop(Duration limit = std::chrono::seconds(5)) {
    stop_.cancel();
    auto deadline = Clock::now() + limit;
    while (!handle_->is_finished()) {
      if (Clock::now() > deadline) co_return false;
      (void)co_await sleep_for(std::chrono::milliseconds(1));
    }
    co_return true;
  }

 private:
  TcpListener listener_;
  SocketAddress address_;
  CancelSource stop_;
  std::optional<JoinHandle<void>> handle_;
};

struct HttpReply {
  bool complete = false;  // a whole response was read
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// One client connection; bytes read past a response wait for the next one.
class AdminClient {
 public:
  static Task<Result<AdminClient>> connect(SocketAddress addr) {
    auto s = co_await TcpStream::connect(addr, std::chrono::seconds(5));
    if (!s) co_return s.error();
    AdminClient c;
    c.stream_ = std::move(*s);
    co_return c;
  }

  Task<bool> send(std::string raw) {
    BufWriteResult w = co_await stream_.write_all(Buffer::copy_of(raw));
    co_return static_cast<bool>(w.result);
  }

  /// Reads one response; `head_request`: it has no body whatever Content-Length says.
  Task<HttpReply> read_reply(bool head_request = false) {
    HttpReply r;
    std::size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      const bool more = co_await fill();
      if (!more) co_return r;
    }
    std::string head = pending_.substr(0, end + 2);
    pending_.erase(0, end + 4);
    if (head.size() < 12 || head.compare(0, 9, "HTTP/1.1 ") != 0) co_return r;
    r.status = std::stoi(head.substr(9, 3));
    std::size_t pos = head.find("\r\n") + 2;
    while (pos < head.size()) {
      std::size_t eol = head.find("\r\n", pos);
      std::string line = head.substr(pos, eol - pos);
      pos = eol + 2;
      std::size_t colon = line.find(':');
      if (colon == std::string::npos) co_return r;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::size_t v = line.find_first_not_of(' ', colon + 1);
      r.headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    std::size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    if (head_request || r.status == 100) length = 0;
    while (pending_.size() < length) {
      const bool more = co_await fill();
      if (!more) co_return r;
    }
    r.body = pending_.substr(0, length);
    pending_.erase(0, length);
    r.complete = true;
    co_return r;
  }

  Task<HttpReply> request(std::string raw, bool head_request = false) {
    const bool sent = co_await send(std::move(raw));
    if (!sent) co_return HttpReply{};
    HttpReply r = co_await read_reply(head_request);
    co_return r;
  }

  /// True when the server closes the connection (EOF or reset) within `limit` and sends
  /// nothing more first.
  Task<bool> closed_by_server(Duration limit = std::chrono::seconds(5)) {
    if (!pending_.empty()) co_return false;
    Result<Buffer> r = co_await stream_.read_pooled(limit);
    if (!r) co_return !r.error().is(ETIMEDOUT);
    co_return r->empty();
  }

  TcpStream& stream() { return stream_; }

 private:
  Task<bool> fill() {
    Result<Buffer> r = co_await stream_.read_pooled(std::chrono::seconds(10));
    if (!r || r->empty()) co_return false;
    pending_.append(r->view());
    co_return true;
  }

  TcpStream stream_;
  std::string pending_;
};

}  // namespace lbd::test
