// lbd as an operator and real clients see it: one access-log line per request (JSON that
// parses, or the combined format log tools parse), SIGTERM letting a slow response finish
// while idle keep-alive connections close, and curl and h2load talking to it.

#include <signal.h>
#include <sys/socket.h>

#include <map>
#include <random>
#include <regex>
#include <sstream>

#include "tests/integration/http_harness.hpp"

namespace lbd::it {
namespace {

// ---------------------------------------------------------------------------------------------
// A JSON reader for the access log's flat objects: string, number, true/false/null values.

struct JsonValue {
  enum Kind { kString, kNumber, kBool, kNull } kind = kNull;
  std::string text;  // the string's decoded value, or the literal
};

std::optional<std::map<std::string, JsonValue>> parse_flat_json(std::string_view s, std::string* error) {
  std::size_t i = 0;
  auto fail = [&](const std::string& why) {
    *error = why + " at offset " + std::to_string(i) + " of " + std::string(s);
    return std::nullopt;
  };
  auto ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  auto string = [&](std::string* out) {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case '"': case '\\': case '/': out->push_back(e); break;
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'u': {
          if (i + 4 > s.size()) return false;
          unsigned v = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s[i++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
            else return false;
          }
          out->push_back(static_cast<char>(v < 0x80 ? v : '?'));
          break;
        }
        default: return false;
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  };
  std::map<std::string, JsonValue> out;
  ws();
  if (i >= s.size() || s[i++] != '{') return fail("expected {");
  ws();
  if (i < s.size() && s[i] == '}') {
    ++i;
  } else {
    for (;;) {
      ws();
      std::string key;
      if (!string(&key)) return fail("bad key");
      ws();
      if (i >= s.size() || s[i++] != ':') return fail("expected :");
      ws();
      JsonValue v;
      if (i < s.size() && s[i] == '"') {
        v.kind = JsonValue::kString;
        if (!string(&v.text)) return fail("bad string");
      } else {
        std::size_t start = i;
        while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ' ') ++i;
        v.text = std::string(s.substr(start, i - start));
        static const std::regex kNumber(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
        if (v.text == "true" || v.text == "false") v.kind = JsonValue::kBool;
        else if (v.text == "null") v.kind = JsonValue::kNull;
        else if (std::regex_match(v.text, kNumber)) v.kind = JsonValue::kNumber;
        else return fail("bad value \"" + v.text + "\"");
      }
      if (out.count(key)) return fail("repeated key " + key);
      out[key] = v;
      ws();
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == '}') {
        ++i;
        break;
      }
      return fail("expected , or }");
    }
  }
  ws();
  if (i != s.size()) return fail("trailing bytes");
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

class HttpOperations : public HttpTest {
 protected:
  /// Waits until the access log has `n` complete lines; returns them.
  std::vector<std::string> wait_access_lines(const std::string& path, std::size_t n) {
    std::vector<std::string> lines;
    wait_until(
        [&] {
          std::string text = read_file(path);
          lines = lines_of(text);
          if (!text.empty() && text.back() != '\n') lines.pop_back();  // a line being written
          return lines.size() >= n;
        },
        10000ms, 5ms);
    return lines;
  }
};

TEST_P(HttpOperations, AccessLogJsonHasOneLinePerRequest) {
  HttpBackend backend(respond_ok("hello"));
  const std::string log = dir_.file("access.log");
  HttpConfigSpec spec;
  spec.log = "{ level: info, access_log: " + log + ", access_log_format: json }";
  spec.clusters.push_back({"c", {backend.address()}, ""});
  ASSERT_EQ(start_http(spec), "");

  HttpMessage resp = roundtrip(http_get("/logged?x=1&y=%22", "logged.example", "User-Agent: it/1.0\r\n"));
  ASSERT_EQ(resp.status, 200) << resp.summary();
  auto lines = wait_access_lines(log, 1);
  ASSERT_GE(lines.size(), 1u) << "no access log line in " << log;
  // A second request: its line comes after the first one, which stays alone for its request.
  resp = roundtrip(http_get("/second", "logged.example"));
  ASSERT_EQ(resp.status, 200) << resp.summary();
  lines = wait_access_lines(log, 2);
  ASSERT_EQ(lines.size(), 2u) << read_file(log);

  std::string error;
  auto first = parse_flat_json(lines[0], &error);
  ASSERT_TRUE(first) << error;
  auto field = [&](const char* key) { return first->count(key) ? (*first)[key] : JsonValue{JsonValue::kNull, "<absent>"}; };
  EXPECT_EQ(field("status").kind, JsonValue::kNumber);
  EXPECT_EQ(field("status").text, "200");
  EXPECT_EQ(field("upstream").text, backend.address());
  EXPECT_EQ(field("bytes_sent").kind, JsonValue::kNumber);
  EXPECT_EQ(field("bytes_sent").text, "5");
  EXPECT_EQ(field("method").text, "GET");
  EXPECT_EQ(field("target").text, "/logged?x=1&y=%22");
  EXPECT_EQ(field("user_agent").text, "it/1.0");
  EXPECT_EQ(field("client").text, "127.0.0.1");
  EXPECT_EQ(field("listener").text, "web");
  auto second = parse_flat_json(lines[1], &error);
  ASSERT_TRUE(second) << error;
  EXPECT_EQ((*second)["target"].text, "/second");
}

TEST_P(HttpOperations, AccessLogCombinedLineParses) {
  HttpBackend backend(respond_ok("hello"));
  const std::string log = dir_.file("access.log");
  HttpConfigSpec spec;
  spec.log = "{ level: info, access_log: " + log + ", access_log_format: combined }";
  spec.clusters.push_back({"c", {backend.address()}, ""});
  ASSERT_EQ(start_http(spec), "");
  HttpMessage resp =
      roundtrip(http_get("/combined", "a", "Referer: http://ref.example/\r\nUser-Agent: curl-ish/7 (x)\r\n"));
  ASSERT_EQ(resp.status, 200) << resp.summary();
  auto lines = wait_access_lines(log, 1);
  ASSERT_EQ(lines.size(), 1u) << read_file(log);
  static const std::regex kCombined(
      R"re(^(\S+) (\S+) (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([A-Z]+) (\S+) (HTTP/1\.[01])" (\d{3}) (\d+) "([^"]*)" "([^"]*)"(.*)$)re");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, kCombined)) << "not a combined log line: " << lines[0];
  EXPECT_EQ(m[1], "127.0.0.1");
  EXPECT_EQ(m[5], "GET");
  EXPECT_EQ(m[6], "/combined");
  EXPECT_EQ(m[7], "HTTP/1.1");
  EXPECT_EQ(m[8], "200");
  EXPECT_EQ(m[9], "5");
  EXPECT_EQ(m[10], "http://ref.example/");
  EXPECT_EQ(m[11], "curl-ish/7 (x)");
  EXPECT_NE(m[12].str().find("upstream=" + backend.address()), std::string::npos) << lines[0];
}

// A reload that names another access log file and format switches to them (as nginx does);
// one that names a file lbd cannot open keeps the access log it had and says why.
TEST_P(HttpOperations, ReloadSwitchesTheAccessLogFileAndFormat) {
  HttpBackend backend(respond_ok("hello"));
  const std::string first_log = dir_.file("access-1.log");
  const std::string second_log = dir_.file("access-2.log");
  HttpConfigSpec spec;
  spec.log = "{ level: info, access_log: " + first_log + ", access_log_format: combined }";
  spec.clusters.push_back({"c", {backend.address()}, ""});
  ASSERT_EQ(start_http(spec), "");
  HttpMessage resp = roundtrip(http_get("/before", "a"));
  ASSERT_EQ(resp.status, 200) << resp.summary();
  ASSERT_EQ(wait_access_lines(first_log, 1).size(), 1u) << read_file(first_log);

  spec.log = "{ level: info, access_log: " + second_log + ", access_log_format: json }";
  std::string out = reload(spec.to_yaml());
  ASSERT_NE(out.find("reload done"), std::string::npos) << out;
  EXPECT_NE(out.find("access log now " + second_log + " (json)"), std::string::npos) << out;
  resp = roundtrip(http_get("/after", "a"));
  ASSERT_EQ(resp.status, 200) << resp.summary();
  auto lines = wait_access_lines(second_log, 1);
  ASSERT_EQ(lines.size(), 1u) << "no line in the new access log " << second_log;
  std::string error;
  auto rec = parse_flat_json(lines[0], &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_EQ((*rec)["target"].text, "/after");
  auto old_lines = lines_of(read_file(first_log));
  ASSERT_EQ(old_lines.size(), 1u) << "the old access log got lines after the reload:\n" << read_file(first_log);
  EXPECT_NE(old_lines[0].find("/before"), std::string::npos) << old_lines[0];

  // A file that cannot be opened: the reload applies, the access log stays where it was.
  spec.log = "{ level: info, access_log: " + dir_.file("no-such-dir/access.log") + ", access_log_format: json }";
  out = reload(spec.to_yaml());
  ASSERT_NE(out.find("reload done"), std::string::npos) << out;
  EXPECT_NE(out.find("the access log stays " + second_log), std::string::npos) << out;
  resp = roundtrip(http_get("/still", "a"));
  ASSERT_EQ(resp.status, 200) << resp.summary();
  lines = wait_access_lines(second_log, 2);
  ASSERT_EQ(lines.size(), 2u) << read_file(second_log);
  rec = parse_flat_json(lines[1], &error);
  ASSERT_TRUE(rec) << error;
  EXPECT_EQ((*rec)["target"].text, "/still");
}

TEST_P(HttpOperations, SigtermLetsASlowResponseFinishClosesIdleConnectionsAndExitsZero) {
  Gate release;
  HttpBackend backend([&](const BackendExchange& ex, const HttpMessage& req) {
    if (req.target == "/slow") {
      release.wait(20000ms);
      return ex.send(http_response(200, "slow done"));
    }
    return ex.send(http_response(200, "quick"));
  });
  HttpConfigSpec spec;
  spec.drain_timeout = "20s";
  spec.clusters.push_back({"c", {backend.address()}, ""});
  ASSERT_EQ(start_http(spec), "");

  // An idle keep-alive connection, and one waiting for a slow response.
  Fd idle = client();
  HttpReader idle_reader(idle.get());
  ASSERT_TRUE(send_all(idle.get(), http_get("/quick", "a")));
  ASSERT_EQ(idle_reader.read_final_response().status, 200);
  Fd slow = client();
  ASSERT_TRUE(send_all(slow.get(), http_get("/slow", "a")));
  ASSERT_TRUE(backend.wait_requests(2));

  ASSERT_TRUE(lbd_->signal(SIGTERM));
  ASSERT_TRUE(lbd_->wait_log("SIGTERM", 5000ms));
  // The idle connection is closed at once, without a response.
  EXPECT_EQ(idle_reader.wait_end(5000ms), End::kEof);
  // New connections are refused.
  EXPECT_TRUE(wait_until([&] { return !connect_to(port_, "", 1000ms).fd; }, 5000ms, 10ms));
  EXPECT_TRUE(lbd_->running()) << "lbd exited with a response in flight";

  release.open();
  HttpReader slow_reader(slow.get());
  HttpMessage resp = slow_reader.read_final_response(10000ms);
  EXPECT_TRUE(resp.complete) << resp.summary();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "slow done");
  End end = slow_reader.wait_end(5000ms);
  EXPECT_TRUE(end == End::kEof || end == End::kReset) << to_string(end);
  auto status = lbd_->wait_exit(10000ms);
  ASSERT_TRUE(status) << "lbd did not exit after the drain";
  EXPECT_TRUE(status->exited) << status->to_string();
  EXPECT_EQ(status->code, 0) << status->to_string();
}

// ---------------------------------------------------------------------------------------------
// Real clients

/// 200 with "<method> <body size> <body digest>".
bool describe_request(const BackendExchange& ex, const HttpMessage& req) {
  return ex.send(http_response(200, req.method + " " + std::to_string(req.body_size) + " " +
                                        std::to_string(req.body_digest)));
}

std::string random_bytes(std::size_t n, uint64_t seed) {
  std::string s(n, '\0');
  ByteStream(seed).fill(s.data(), n);
  return s;
}

TEST_P(HttpOperations, Curl) {
  if (!have_program("curl")) GTEST_SKIP() << "curl is not installed (deploy/bootstrap.sh test installs it)";
  HttpBackend backend(describe_request);
  ASSERT_EQ(start_simple({&backend}), "");
  const std::string url = "http://127.0.0.1:" + std::to_string(port_);
  auto curl = [&](std::vector<std::string> args, const std::string& path) {
    std::vector<std::string> argv = {"curl", "-sS", "--noproxy", "*", "--max-time", "20", "-o",
                                     dir_.file("curl.body"), "-w", "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url + path);
    CommandResult r = run_command(argv, dir_, 30000ms);
    EXPECT_TRUE(r.spawned) << r.err;
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status.code, 0) << "curl " << path << ": " << r.err;
    return std::make_pair(r.out, read_file(dir_.file("curl.body")));
  };

  auto [code, body] = curl({}, "/get");
  EXPECT_EQ(code, "200");
  EXPECT_EQ(body, "GET 0 " + std::to_string(stream_digest(0, 0)));

  // A small form post, then 2 MiB as a plain and as a chunked upload: curl 7.88 sends
  // "Expect: 100-continue" with bodies over 1 MiB and waits (up to 1s) for the 100.
  std::tie(code, body) = curl({"-d", "a=1&b=2"}, "/form");
  EXPECT_EQ(code, "200");
  auto reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].body, "a=1&b=2");

  const std::string file = dir_.file("upload.bin");
  const std::string data = random_bytes(2 * 1024 * 1024 + 1, 99);
  write_file(file, data);
  std::tie(code, body) = curl({"--data-binary", "@" + file}, "/post");
  EXPECT_EQ(code, "200");
  reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].method, "POST");
  EXPECT_EQ(reqs[2].body.size(), data.size());
  EXPECT_TRUE(reqs[2].body == data) << "the backend got another body than curl sent";

  std::tie(code, body) = curl({"-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file}, "/chunked");
  EXPECT_EQ(code, "200");
  reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[3].framing, HttpMessage::Framing::kChunked);
  EXPECT_EQ(reqs[3].body.size(), data.size());
  EXPECT_TRUE(reqs[3].body == data) << "the backend got another body than curl sent";
}

TEST_P(HttpOperations, H2loadHttp1) {
  if (!have_program("h2load")) GTEST_SKIP() << "h2load is not installed (deploy/bootstrap.sh test installs it)";
  HttpBackend backend(respond_ok("fine"));
  ASSERT_EQ(start_simple({&backend}, "", "", /*workers=*/2), "");
  CommandResult r = run_command({"h2load", "--h1", "-n", "2000", "-c", "10",
                                 "http://127.0.0.1:" + std::to_string(port_) + "/load"},
                                dir_, 120000ms);
  ASSERT_TRUE(r.spawned) << r.err;
  ASSERT_FALSE(r.timed_out) << r.out;
  EXPECT_EQ(r.status.code, 0) << r.out << r.err;
  static const std::regex kRequests(
      R"(requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout)");
  static const std::regex kCodes(R"(status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, kRequests)) << r.out;
  EXPECT_EQ(m[1], "2000") << m[0];
  EXPECT_EQ(m[3], "2000") << m[0];
  EXPECT_EQ(m[4], "2000") << m[0];
  EXPECT_EQ(m[5], "0") << m[0];
  EXPECT_EQ(m[6], "0") << m[0];
  EXPECT_EQ(m[7], "0") << m[0];
  ASSERT_TRUE(std::regex_search(r.out, m, kCodes)) << r.out;
  EXPECT_EQ(m[1], "2000") << m[0];
  EXPECT_EQ(backend.request_count(), 2000u);
  // Ten client connections on two workers: at most ten upstream connections, reused.
  EXPECT_LE(backend.accepted(), 10);
}

LBD_INSTANTIATE_DRIVERS(HttpOperations);

}  // namespace
}  // namespace lbd::it
