// The first-bytes classifier (proxy/tls/first_bytes.cpp): a TLS port tells a ClientHello from
// plain HTTP (answered 400) and from anything else (closed).

#include <gtest/gtest.h>

#include <string>

#include "proxy/tls/first_bytes.hpp"

namespace lbd::tls {
namespace {

TEST(FirstBytesTest, TlsRecords) {
  EXPECT_EQ(classify_first_bytes(std::string("\x16\x03\x01\x02\x00", 5)), FirstBytes::kTls);
  EXPECT_EQ(classify_first_bytes(std::string("\x16\x03", 2)), FirstBytes::kTls);
  EXPECT_EQ(classify_first_bytes(std::string("\x16\x03\x03", 3)), FirstBytes::kTls);
  EXPECT_EQ(classify_first_bytes(std::string("\x16", 1)), FirstBytes::kNeedMore);
  EXPECT_EQ(classify_first_bytes(std::string("\x16\x02", 2)), FirstBytes::kOther);  // SSL 2-ish
  EXPECT_EQ(classify_first_bytes(std::string("\x17\x03\x03", 3)), FirstBytes::kOther);  // not a handshake
}

TEST(FirstBytesTest, PlainHttpRequests) {
  for (const char* m : {"GET / HTTP/1.1\r\n", "POST /x HTTP/1.1", "OPTIONS * HTTP/1.1", "PRI * HTTP/2.0",
                        "PROPFIND /", "get / HTTP/1.0", "VERSION-CONTROL /a"})
    EXPECT_EQ(classify_first_bytes(m), FirstBytes::kPlainHttp) << m;
}

TEST(FirstBytesTest, TooShortToTellAsksForMore) {
  EXPECT_EQ(classify_first_bytes(""), FirstBytes::kNeedMore);
  EXPECT_EQ(classify_first_bytes("G"), FirstBytes::kNeedMore);
  EXPECT_EQ(classify_first_bytes("GET"), FirstBytes::kNeedMore);
  EXPECT_EQ(classify_first_bytes(std::string(kMaxFirstBytes - 1, 'A')), FirstBytes::kNeedMore);
}

TEST(FirstBytesTest, EverythingElseIsOther) {
  EXPECT_EQ(classify_first_bytes(" GET /"), FirstBytes::kOther);
  EXPECT_EQ(classify_first_bytes("\r\nGET /"), FirstBytes::kOther);
  EXPECT_EQ(classify_first_bytes("SSH-2.0-OpenSSH_9.2\r\n"), FirstBytes::kOther);
  EXPECT_EQ(classify_first_bytes(std::string("\x00\x01\x02", 3)), FirstBytes::kOther);
  EXPECT_EQ(classify_first_bytes(std::string(kMaxFirstBytes, 'A')), FirstBytes::kOther);  // no space in sight
  EXPECT_EQ(classify_first_bytes(std::string("\x80\x2e\x01\x03\x01", 5)), FirstBytes::kOther);
}

}  // namespace
}  // namespace lbd::tls
