#include "tests/integration/http_harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace lbd::it {

namespace {

constexpr std::size_t kMaxHead = 1024 * 1024;

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Parses "name: value" lines (CRLF-separated, no final empty line) into `out`.
bool parse_fields(std::string_view block, std::vector<HttpField>& out, std::string* error) {
  while (!block.empty()) {
    auto eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos) {
      *error = "bare CR or LF in a field line";
      return false;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "field line without a name: \"" + std::string(line) + "\"";
      return false;
    }
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_tchar(c)) {
        *error = "invalid field name \"" + std::string(name) + "\"";
        return false;
      }
    }
    out.push_back({std::string(name), std::string(trim_ows(line.substr(colon + 1)))});
  }
  return true;
}

std::optional<uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string_view default_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    default: return "Whatever";
  }
}

}  // namespace

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// ---------------------------------------------------------------------------------------------
// HttpMessage

std::optional<std::string> HttpMessage::header(std::string_view name) const {
  for (const auto& f : headers)
    if (iequal(f.name, name)) return f.value;
  return std::nullopt;
}

int HttpMessage::count(std::string_view name) const {
  int n = 0;
  for (const auto& f : headers) n += iequal(f.name, name) ? 1 : 0;
  return n;
}

std::vector<std::string> HttpMessage::names() const {
  std::vector<std::string> out;
  for (const auto& f : headers) out.push_back(f.name);
  return out;
}

std::string HttpMessage::summary() const {
  std::ostringstream s;
  if (!have_head) {
    s << "<no head: " << error << " (" << to_string(end) << ")>";
    return s.str();
  }
  auto eol = raw_head.find("\r\n");
  s << raw_head.substr(0, eol) << " [" << headers.size() << " fields, body " << body_size << "B"
    << (complete ? "" : ", incomplete: " + error) << "]";
  return s.str();
}

std::string http_get(std::string_view path, std::string_view host, std::string_view extra) {
  std::string r = "GET ";
  r.append(path).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n").append(extra).append("\r\n");
  return r;
}

// ---------------------------------------------------------------------------------------------
// HttpReader

bool HttpReader::fill(Clock::time_point deadline, End* end) {
  char tmp[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(tmp, static_cast<std::size_t>(n));
      total_ += static_cast<uint64_t>(n);
      if (counter_) counter_->fetch_add(static_cast<uint64_t>(n));
      return true;
    }
    if (n == 0) {
      *end = End::kEof;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, remaining_ms(deadline));
      if (r == 0) {
        *end = End::kTimeout;
        return false;
      }
      if (r < 0 && errno != EINTR) {
        *end = End::kError;
        return false;
      }
      continue;
    }
    *end = errno == ECONNRESET ? End::kReset : End::kError;
    return false;
  }
}

HttpMessage HttpReader::read_head(bool response, Ms limit) {
  HttpMessage m;
  auto deadline = Clock::now() + limit;
  std::size_t end_pos;
  for (;;) {
    end_pos = buf_.find("\r\n\r\n");
    if (end_pos != std::string::npos) break;
    if (buf_.size() > kMaxHead) {
      m.error = "head longer than 1 MiB";
      m.end = End::kError;
      return m;
    }
    End e;
    if (!fill(deadline, &e)) {
      m.end = e;
      m.error = buf_.empty() ? std::string("stream ended before a message (") + to_string(e) + ")"
                             : std::string("stream ended in the head (") + to_string(e) + "): \"" + buf_ + "\"";
      return m;
    }
  }
  m.raw_head = buf_.substr(0, end_pos + 4);
  buf_.erase(0, end_pos + 4);
  std::string_view head(m.raw_head.data(), end_pos);
  auto eol = head.find("\r\n");
  std::string_view start = head.substr(0, eol);
  std::string_view fields = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  m.end = End::kError;
  if (start.find('\r') != std::string_view::npos || start.find('\n') != std::string_view::npos) {
    m.error = "bare CR or LF in the start line";
    return m;
  }
  auto sp1 = start.find(' ');
  if (sp1 == std::string_view::npos) {
    m.error = "bad start line \"" + std::string(start) + "\"";
    return m;
  }
  if (response) {
    m.version = std::string(start.substr(0, sp1));
    std::string_view rest = start.substr(sp1 + 1);
    auto code = rest.substr(0, 3);
    if (!m.version.starts_with("HTTP/1.") || m.version.size() != 8 || code.size() != 3 ||
        !parse_decimal(code) || (rest.size() > 3 && rest[3] != ' ')) {
      m.error = "bad status line \"" + std::string(start) + "\"";
      return m;
    }
    m.status = static_cast<int>(*parse_decimal(code));
    m.reason = rest.size() > 4 ? std::string(rest.substr(4)) : "";
  } else {
    auto sp2 = start.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || start.find(' ', sp2 + 1) != std::string_view::npos) {
      m.error = "bad request line \"" + std::string(start) + "\"";
      return m;
    }
    m.method = std::string(start.substr(0, sp1));
    m.target = std::string(start.substr(sp1 + 1, sp2 - sp1 - 1));
    m.version = std::string(start.substr(sp2 + 1));
    if (m.version != "HTTP/1.1" && m.version != "HTTP/1.0") {
      m.error = "bad request version \"" + m.version + "\"";
      return m;
    }
  }
  if (!parse_fields(fields, m.headers, &m.error)) return m;
  m.have_head = true;
  m.end = End::kEof;
  return m;
}

void HttpReader::take_body_bytes(HttpMessage& m, std::string_view data) {
  m.body_size += data.size();
  digest_->feed(data.data(), data.size());
  if (m.body.size() < keep_body_) m.body.append(data.substr(0, keep_body_ - m.body.size()));
}

bool HttpReader::read_chunked(HttpMessage& m, Clock::time_point deadline) {
  End e = End::kEof;
  for (;;) {
    // The chunk-size line.
    std::size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos) {
      if (buf_.size() > 4096) {
        m.error = "chunk size line too long";
        return false;
      }
      if (!fill(deadline, &e)) {
        m.end = e;
        m.error = "stream ended (" + std::string(to_string(e)) + ") in a chunk size line after " +
                  std::to_string(m.body_size) + " body bytes";
        return false;
      }
    }
    std::string line = buf_.substr(0, eol);
    buf_.erase(0, eol + 2);
    std::string_view size_text = line;
    if (auto semi = size_text.find(';'); semi != std::string_view::npos) size_text = size_text.substr(0, semi);
    uint64_t size = 0;
    if (size_text.empty() || size_text.size() > 15) {
      m.error = "bad chunk size line \"" + line + "\"";
      return false;
    }
    for (char c : size_text) {
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) {
        m.error = "bad chunk size line \"" + line + "\"";
        return false;
      }
      size = size * 16 + static_cast<uint64_t>(d);
    }
    if (size == 0) {
      // Trailer section, then the final CRLF.
      std::size_t end_pos;
      for (;;) {
        if (buf_.starts_with("\r\n")) {
          buf_.erase(0, 2);
          return true;
        }
        end_pos = buf_.find("\r\n\r\n");
        if (end_pos != std::string::npos) break;
        if (!fill(deadline, &e)) {
          m.end = e;
          m.error = "stream ended (" + std::string(to_string(e)) + ") in the trailer section";
          return false;
        }
      }
      std::string block = buf_.substr(0, end_pos);
      buf_.erase(0, end_pos + 4);
      return parse_fields(block, m.trailers, &m.error);
    }
    // The chunk data and its CRLF.
    uint64_t left = size;
    while (left > 0) {
      if (buf_.empty() && !fill(deadline, &e)) {
        m.end = e;
        m.error = "stream ended (" + std::string(to_string(e)) + ") inside a chunk after " +
                  std::to_string(m.body_size) + " body bytes";
        return false;
      }
      std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(left, buf_.size()));
      take_body_bytes(m, std::string_view(buf_).substr(0, take));
      buf_.erase(0, take);
      left -= take;
    }
    while (buf_.size() < 2) {
      if (!fill(deadline, &e)) {
        m.end = e;
        m.error = "stream ended (" + std::string(to_string(e)) + ") after chunk data";
        return false;
      }
    }
    if (!buf_.starts_with("\r\n")) {
      m.error = "chunk data not followed by CRLF";
      return false;
    }
    buf_.erase(0, 2);
  }
}

void HttpReader::read_body(HttpMessage& m, bool response, std::string_view method, Ms limit) {
  auto deadline = Clock::now() + limit;
  digest_ = std::make_unique<StreamChecker>(0);
  m.end = End::kError;
  // Framing, as RFC 9112 §6.3 decides it.
  auto te = m.header("Transfer-Encoding");
  auto cl = m.header("Content-Length");
  bool no_body = response && (method == "HEAD" || (m.status >= 100 && m.status < 200) || m.status == 204 ||
                              m.status == 304);
  if (no_body) {
    m.framing = HttpMessage::Framing::kNone;
  } else if (te) {
    std::string v = *te;
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool chunked_last = v.size() >= 7 && v.compare(v.size() - 7, 7, "chunked") == 0;
    if (!chunked_last || m.count("Transfer-Encoding") != 1 || cl) {
      m.error = "unusable Transfer-Encoding \"" + *te + "\"" + (cl ? " with Content-Length" : "");
      return;
    }
    m.framing = HttpMessage::Framing::kChunked;
  } else if (cl) {
    if (m.count("Content-Length") != 1 || !parse_decimal(*cl)) {
      m.error = "bad or repeated Content-Length";
      return;
    }
    m.framing = HttpMessage::Framing::kContentLength;
  } else {
    m.framing = response ? HttpMessage::Framing::kUntilClose : HttpMessage::Framing::kNone;
  }

  End e = End::kEof;
  switch (m.framing) {
    case HttpMessage::Framing::kNone:
      break;
    case HttpMessage::Framing::kContentLength: {
      uint64_t left = *parse_decimal(*cl);
      while (left > 0) {
        if (buf_.empty() && !fill(deadline, &e)) {
          m.end = e;
          m.error = "stream ended (" + std::string(to_string(e)) + ") after " + std::to_string(m.body_size) + " of " +
                    *cl + " body bytes";
          m.body_digest = digest_->digest();
          return;
        }
        std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(left, buf_.size()));
        take_body_bytes(m, std::string_view(buf_).substr(0, take));
        buf_.erase(0, take);
        left -= take;
      }
      break;
    }
    case HttpMessage::Framing::kChunked:
      if (!read_chunked(m, deadline)) {
        m.body_digest = digest_->digest();
        return;
      }
      break;
    case HttpMessage::Framing::kUntilClose:
      for (;;) {
        if (!buf_.empty()) {
          take_body_bytes(m, buf_);
          buf_.clear();
        }
        if (!fill(deadline, &e)) break;
      }
      if (e != End::kEof) {
        m.end = e;
        m.error = "close-delimited body ended by " + std::string(to_string(e));
        m.body_digest = digest_->digest();
        return;
      }
      break;
  }
  m.body_digest = digest_->digest();
  m.complete = true;
  m.end = End::kEof;
}

HttpMessage HttpReader::read_request(Ms limit) {
  auto deadline = Clock::now() + limit;
  HttpMessage m = read_head(false, limit);
  if (m.have_head) read_body(m, false, m.method, Ms(remaining_ms(deadline)));
  return m;
}

HttpMessage HttpReader::read_response(Ms limit, std::string_view method) {
  auto deadline = Clock::now() + limit;
  HttpMessage m = read_head(true, limit);
  if (m.have_head) read_body(m, true, method, Ms(remaining_ms(deadline)));
  return m;
}

HttpMessage HttpReader::read_final_response(Ms limit, std::string_view method, std::vector<int>* interim) {
  auto deadline = Clock::now() + limit;
  for (;;) {
    HttpMessage m = read_response(Ms(remaining_ms(deadline)), method);
    if (!m.have_head || m.status < 100 || m.status >= 200 || m.status == 101) return m;
    if (interim) interim->push_back(m.status);
  }
}

bool HttpReader::wait_buffered(std::size_t n, Ms limit) {
  auto deadline = Clock::now() + limit;
  End e;
  while (buf_.size() < n) {
    if (!fill(deadline, &e)) return false;
  }
  return true;
}

End HttpReader::wait_end(Ms limit) {
  if (!buf_.empty()) return End::kError;
  End e = End::kEof;
  if (fill(Clock::now() + limit, &e)) return End::kError;
  return e;
}

// ---------------------------------------------------------------------------------------------
// HttpBackend

bool BackendExchange::send(std::string_view bytes) const { return send_all(fd, bytes.data(), bytes.size()); }

HttpBackend::HttpBackend(Responder responder, std::string id, std::size_t keep_body)
    : responder_(std::move(responder)), keep_body_(keep_body) {
  backend_ = std::make_unique<Backend>(std::move(id), [this](int fd) { serve(fd); });
}

HttpBackend::~HttpBackend() { backend_.reset(); }

void HttpBackend::serve(int fd) {
  auto conn = std::make_shared<Conn>();
  BackendConnRecord* rec = &conn->record;  // fields other than `index` only under mu_
  {
    std::lock_guard lock(mu_);
    rec->index = static_cast<int>(conns_.size());
    conns_.push_back(conn);
  }
  HttpReader reader(fd, keep_body_);
  reader.count_into(&conn->bytes);
  for (int i = 0;; ++i) {
    HttpMessage m = reader.read_head(false, 120000ms);
    if (!m.have_head) {
      std::lock_guard lock(mu_);
      // Bytes that never made a head are a request too, a broken one.
      if (!reader.buffered().empty() || m.end == End::kError) {
        if (m.raw_head.empty()) m.raw_head = reader.buffered();
        rec->requests.push_back(m);
      }
      rec->ended = true;
      rec->end = m.end;
      return;
    }
    // Visible before the body arrives, so that a test can watch an upload.
    {
      std::lock_guard lock(mu_);
      rec->requests.push_back(m);
    }
    reader.read_body(m, false, m.method, 120000ms);
    {
      std::lock_guard lock(mu_);
      rec->requests.back() = m;
      if (!m.complete) {
        rec->ended = true;
        rec->end = m.end;
        return;
      }
    }
    bool more = responder_(BackendExchange{fd, &reader, rec->index, i}, m);
    if (!more) {
      std::lock_guard lock(mu_);
      rec->ended = true;
      return;
    }
  }
}

std::vector<BackendConnRecord> HttpBackend::connections() const {
  std::lock_guard lock(mu_);
  std::vector<BackendConnRecord> out;
  for (const auto& c : conns_) {
    out.push_back(c->record);
    out.back().bytes = c->bytes.load();
  }
  return out;
}

std::vector<HttpMessage> HttpBackend::requests() const {
  std::lock_guard lock(mu_);
  std::vector<HttpMessage> out;
  for (const auto& c : conns_)
    for (const auto& r : c->record.requests) out.push_back(r);
  return out;
}

std::size_t HttpBackend::request_count() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& c : conns_) n += c->record.requests.size();
  return n;
}

uint64_t HttpBackend::bytes_received() const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& c : conns_) n += c->bytes.load();
  return n;
}

bool HttpBackend::wait_requests(std::size_t n, Ms limit) const {
  return wait_until([&] { return request_count() >= n; }, limit, 2ms);
}

bool HttpBackend::wait_idle(Ms limit) const {
  return wait_until([&] { return active() == 0; }, limit, 2ms);
}

void reset_connection(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  // dup2 drops the last reference to the connected socket, which closes it with a reset, and
  // leaves `fd` naming a harmless socket for whoever owns the number.
  int spare = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::dup2(spare, fd);
  ::close(spare);
}

void Gate::open() {
  std::lock_guard lock(mu_);
  open_ = true;
  cv_.notify_all();
}

bool Gate::is_open() const {
  std::lock_guard lock(mu_);
  return open_;
}

bool Gate::wait(Ms limit) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return open_; });
}

std::string http_response(int status, std::string_view body, std::string_view extra, std::string_view reason) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " ";
  r.append(reason.empty() ? default_reason(status) : reason);
  r.append("\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n");
  r.append(extra).append("\r\n").append(body);
  return r;
}

HttpBackend::Responder respond_ok(std::string body) {
  return [body](const BackendExchange& ex, const HttpMessage& req) {
    std::string b = body.empty() ? "ok " + req.method + " " + req.target : body;
    return ex.send(http_response(200, b));
  };
}

// ---------------------------------------------------------------------------------------------
// Config

std::string HttpConfigSpec::to_yaml() const {
  std::ostringstream y;
  y << "workers: " << workers << "\n";
  y << "log: " << log << "\n";
  if (!drain_timeout.empty()) y << "shutdown: { drain_timeout: " << drain_timeout << " }\n";
  y << "listeners:\n";
  y << "  - name: web\n";
  y << "    listen: 127.0.0.1:" << port << "\n";
  y << "    protocol: http\n";
  if (!cluster.empty()) y << "    cluster: " << cluster << "\n";
  y << listener_extra;
  if (!listener_extra.empty() && listener_extra.back() != '\n') y << "\n";
  y << "clusters:\n";
  for (const auto& c : clusters) {
    y << "  - name: " << c.name << "\n";
    y << "    endpoints:\n";
    for (const auto& e : c.endpoints) y << "      - " << e << "\n";
    y << c.extra;
    if (!c.extra.empty() && c.extra.back() != '\n') y << "\n";
  }
  return y.str();
}

// ---------------------------------------------------------------------------------------------
// Processes

long vm_rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

bool have_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

CommandResult run_command(const std::vector<std::string>& argv_in, const TempDir& dir, Ms limit) {
  static std::atomic<int> seq{0};
  int n = seq++;
  CommandResult r;
  std::string out = dir.file("cmd" + std::to_string(n) + ".out");
  std::string err = dir.file("cmd" + std::to_string(n) + ".err");
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.err = std::string("posix_spawnp ") + argv[0] + ": " + std::strerror(rc);
    return r;
  }
  r.spawned = true;
  int ws = 0;
  bool done = wait_until([&] { return ::waitpid(pid, &ws, WNOHANG) == pid; }, limit, 2ms);
  if (!done) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &ws, 0);
  }
  if (WIFEXITED(ws)) r.status = {true, WEXITSTATUS(ws)};
  else if (WIFSIGNALED(ws)) r.status = {false, WTERMSIG(ws)};
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

}  // namespace lbd::it
