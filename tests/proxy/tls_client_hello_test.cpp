// The ClientHello peek (proxy/tls/client_hello.cpp) that SNI passthrough routes by: real
// ClientHellos from OpenSSL (TLS 1.3 and TLS 1.2-only offers, with and without SNI and ALPN),
// whole, byte by byte, and re-framed into records of every small size; and the broken ones a
// router must refuse rather than guess at.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "proxy/tls/client_hello.hpp"
#include "tests/proxy/client_hello_support.hpp"

namespace lbd::tls {
namespace {

using test::HelloSpec;
using test::openssl_client_hello;

ClientHelloPeek peek(const std::string& s) { return peek_client_hello(std::span<const char>(s.data(), s.size())); }

std::string hello_for(HelloSpec spec) {
  std::string h = openssl_client_hello(std::move(spec));
  EXPECT_FALSE(h.empty()) << "OpenSSL wrote no ClientHello";
  return h;
}

/// Every proper prefix of `bytes` asks for more, and never for more than the rest: `need` is a
/// lower bound a caller can wait for without stalling. The whole gives `want`.
void expect_decided_only_when_whole(const std::string& bytes, ClientHelloOutcome want, const std::string& what) {
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    ClientHelloPeek p = peek(bytes.substr(0, n));
    ASSERT_EQ(p.outcome, ClientHelloOutcome::kNeedMore) << what << ": prefix " << n << " of " << bytes.size();
    ASSERT_GE(p.need, 1u) << what << ": prefix " << n;
    ASSERT_LE(n + p.need, bytes.size()) << what << ": prefix " << n << " asks for more than the rest";
  }
  EXPECT_EQ(peek(bytes).outcome, want) << what;
}

// --- real ClientHellos -----------------------------------------------------------------------

TEST(ClientHelloTest, Tls13OfferWithSniAndAlpn) {
  std::string h = hello_for({.sni = "www.example.test", .alpn = {"h2", "http/1.1"}});
  ClientHelloPeek p = peek(h);
  ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << p.reason;
  EXPECT_EQ(p.sni, "www.example.test");
  EXPECT_EQ(p.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(p.consumed, h.size());
}

TEST(ClientHelloTest, Tls12OnlyOfferWithSni) {
  std::string h = hello_for({.sni = "legacy.example.test", .max_version = TLS1_2_VERSION});
  ClientHelloPeek p = peek(h);
  ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << p.reason;
  EXPECT_EQ(p.sni, "legacy.example.test");
  EXPECT_TRUE(p.alpn.empty());
}

TEST(ClientHelloTest, OffersWithoutSniAreNoSni) {
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    std::string h = hello_for({.alpn = {"http/1.1"}, .max_version = version});
    ClientHelloPeek p = peek(h);
    EXPECT_EQ(p.outcome, ClientHelloOutcome::kNoSni) << version << ": " << p.reason;
    EXPECT_EQ(p.sni, "");
    EXPECT_EQ(p.alpn, std::vector<std::string>{"http/1.1"});
  }
}

TEST(ClientHelloTest, SniIsLowercased) {
  ClientHelloPeek p = peek(hello_for({.sni = "WWW.Example.TEST"}));
  ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << p.reason;
  EXPECT_EQ(p.sni, "www.example.test");
}

TEST(ClientHelloTest, EveryPrefixAsksForMoreByteByByte) {
  expect_decided_only_when_whole(hello_for({.sni = "a.test", .alpn = {"h2"}}), ClientHelloOutcome::kSni, "TLS 1.3");
  expect_decided_only_when_whole(hello_for({.max_version = TLS1_2_VERSION}), ClientHelloOutcome::kNoSni, "TLS 1.2");
}

TEST(ClientHelloTest, HelloSplitOverRecordsOfEverySmallSize) {
  const std::string h = hello_for({.sni = "split.example.test", .alpn = {"h2", "http/1.1"}});
  for (std::size_t size = 1; size <= 64; ++size) {
    std::string framed = test::reframe(h, {size});
    ClientHelloPeek p = peek(framed);
    ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << "records of " << size << ": " << p.reason;
    EXPECT_EQ(p.sni, "split.example.test");
    EXPECT_EQ(p.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
    EXPECT_EQ(p.consumed, framed.size());
  }
  // Records of 1, 2, 3 bytes: every prefix, so a record boundary falls everywhere in the fields.
  for (std::size_t size : {1, 2, 3})
    expect_decided_only_when_whole(test::reframe(h, {size}), ClientHelloOutcome::kSni, "records of " + std::to_string(size));
}

TEST(ClientHelloTest, HelloSplitOverRecordsOfRandomSizes) {
  const std::string h = hello_for({.sni = "random.example.test"});
  std::mt19937 rng(12);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> sizes;
    for (int i = 0; i < 16; ++i) sizes.push_back(1 + rng() % 300);
    std::string framed = test::reframe(h, sizes);
    ClientHelloPeek p = peek(framed);
    ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << "round " << round << ": " << p.reason;
    EXPECT_EQ(p.sni, "random.example.test");
  }
}

TEST(ClientHelloTest, LargeHelloThatOpensslItselfFragments) {
  // A 9 KiB ClientHello (about five post-quantum key shares' worth) in OpenSSL's 512-byte records.
  std::string h = hello_for({.sni = "big.example.test", .filler = 9000, .max_fragment = 512});
  ASSERT_GT(test::record_count(h), 10u);
  ClientHelloPeek p = peek(h);
  ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << p.reason;
  EXPECT_EQ(p.sni, "big.example.test");
  EXPECT_EQ(p.consumed, h.size());
}

TEST(ClientHelloTest, HelloBeyondTheCapIsRefusedAsSoonAsItsLengthIsKnown) {
  // 20 KiB: more than one record's 2^14, so OpenSSL sends two records.
  std::string h = hello_for({.sni = "huge.example.test", .filler = 20000});
  ASSERT_GT(h.size(), kMaxClientHelloLength);
  EXPECT_EQ(peek(h).outcome, ClientHelloOutcome::kMalformed);
  // The record header and the handshake header (9 bytes) say it all.
  EXPECT_EQ(peek(h.substr(0, 9)).outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(h.substr(0, 8)).outcome, ClientHelloOutcome::kNeedMore);
}

TEST(ClientHelloTest, HelloJustUnderTheCapIsRead) {
  std::string small = hello_for({.sni = "edge.example.test", .filler = 100});
  std::size_t fill = 100 + kMaxClientHelloLength - test::handshake_stream(small).size();
  std::string h = hello_for({.sni = "edge.example.test", .filler = fill});
  ASSERT_EQ(test::handshake_stream(h).size(), kMaxClientHelloLength);
  EXPECT_EQ(peek(h).outcome, ClientHelloOutcome::kSni) << peek(h).reason;
  std::string over = hello_for({.sni = "edge.example.test", .filler = fill + 1});
  EXPECT_EQ(peek(over).outcome, ClientHelloOutcome::kMalformed);
}

TEST(ClientHelloTest, TooManyTinyRecordsHitTheWireCap) {
  // A legal 6 KiB hello in 1-byte records is 36 KiB on the wire: refused once that is certain,
  // before the cap's worth of bytes has arrived.
  std::string framed = test::reframe(hello_for({.sni = "tiny.example.test", .filler = 6000}), {1});
  ASSERT_GT(framed.size(), kMaxClientHelloWireBytes);
  EXPECT_EQ(peek(framed).outcome, ClientHelloOutcome::kMalformed);
  std::size_t n = 0;
  while (peek(framed.substr(0, n)).outcome == ClientHelloOutcome::kNeedMore) n += 64;
  EXPECT_EQ(peek(framed.substr(0, n)).outcome, ClientHelloOutcome::kMalformed);
  EXPECT_LE(n, kMaxClientHelloWireBytes);
}

TEST(ClientHelloTest, BytesAfterTheHelloAreNotLookedAt) {
  std::string h = hello_for({.sni = "early.example.test"});
  ClientHelloPeek p = peek(h + std::string("\x17\x03\x03\x00\x10garbage", 12));
  ASSERT_EQ(p.outcome, ClientHelloOutcome::kSni) << p.reason;
  EXPECT_EQ(p.consumed, h.size());
}

// --- not TLS ---------------------------------------------------------------------------------

TEST(ClientHelloTest, WhatIsNotATlsHandshakeRecordIsNotTls) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nHost: a\r\n\r\n").outcome, ClientHelloOutcome::kNotTls);
  EXPECT_EQ(peek("G").outcome, ClientHelloOutcome::kNotTls);  // one byte is enough to tell
  EXPECT_EQ(peek("SSH-2.0-OpenSSH_9.2\r\n").outcome, ClientHelloOutcome::kNotTls);
  EXPECT_EQ(peek(std::string("\x80\x2e\x01\x03\x01", 5)).outcome, ClientHelloOutcome::kNotTls);  // SSLv2 hello
  EXPECT_EQ(peek(std::string("\x16\x02\x00\x00\x10", 5)).outcome, ClientHelloOutcome::kNotTls);
  EXPECT_EQ(peek(std::string("\x17\x03\x03\x00\x10", 5)).outcome, ClientHelloOutcome::kNotTls);  // application data
  std::mt19937 rng(7);
  for (int i = 0; i < 100; ++i) {
    std::string junk(64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (junk[0] == 0x16) junk[0] = 0x15;
    EXPECT_EQ(peek(junk).outcome, ClientHelloOutcome::kNotTls);
  }
}

TEST(ClientHelloTest, NothingOrOneHandshakeByteAsksForMore) {
  EXPECT_EQ(peek("").outcome, ClientHelloOutcome::kNeedMore);
  EXPECT_EQ(peek("\x16").outcome, ClientHelloOutcome::kNeedMore);
  ClientHelloPeek p = peek("\x16\x03\x01");
  EXPECT_EQ(p.outcome, ClientHelloOutcome::kNeedMore);
  EXPECT_EQ(p.need, 2u + 4u);  // the record header's length, and at least a handshake header
}

// --- malformed -------------------------------------------------------------------------------

TEST(ClientHelloTest, BrokenRecordsAreMalformed) {
  // A record longer than 2^14 bytes, and the largest length there is.
  EXPECT_EQ(peek(std::string("\x16\x03\x01\x40\x01", 5)).outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(std::string("\x16\x03\x01\xff\xff", 5)).outcome, ClientHelloOutcome::kMalformed);
  // An empty handshake record.
  EXPECT_EQ(peek(std::string("\x16\x03\x01\x00\x00", 5)).outcome, ClientHelloOutcome::kMalformed);
  // A handshake length of 16 MiB.
  EXPECT_EQ(peek(std::string("\x16\x03\x01\x00\x04\x01\xff\xff\xff", 9)).outcome, ClientHelloOutcome::kMalformed);
  // A ServerHello, not a ClientHello.
  std::string h = test::built_hello(test::server_name_ext("a.test"));
  std::string server_hello = h;
  server_hello[5] = 0x02;
  EXPECT_EQ(peek(server_hello).outcome, ClientHelloOutcome::kMalformed);
}

TEST(ClientHelloTest, OtherRecordsBetweenTheFragmentsAreMalformed) {
  std::string h = hello_for({.sni = "a.test"});
  std::string framed = test::reframe(h, {100});
  std::string second = framed.substr(0, 105);
  // An alert, or a record of version 2.x, where the second fragment should be.
  EXPECT_EQ(peek(second + test::record("\x02\x28", 0x15) + framed.substr(105)).outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(second + "\x15").outcome, ClientHelloOutcome::kMalformed);  // one byte tells
  std::string bad_version = framed;
  bad_version[106] = 0x02;
  EXPECT_EQ(peek(bad_version).outcome, ClientHelloOutcome::kMalformed);
}

TEST(ClientHelloTest, LengthsThatDisagreeAreMalformed) {
  using test::built_hello;
  using test::extension;
  // An extension that runs past the extension list.
  std::string exts = test::server_name_ext("a.test");
  std::string past = test::record(test::handshake(test::hello_body(test::be16(exts.size() - 1) + exts)));
  EXPECT_EQ(peek(past).outcome, ClientHelloOutcome::kMalformed);
  // Bytes after the extension list.
  std::string after = test::record(test::handshake(test::hello_body(test::vec16(exts) + "x")));
  EXPECT_EQ(peek(after).outcome, ClientHelloOutcome::kMalformed);
  // A server_name list shorter than the extension, an entry longer than its list, no entry.
  EXPECT_EQ(peek(built_hello(extension(0, test::vec16(std::string("\x00\x00\x01" "a", 4)) + "z"))).outcome,
            ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(built_hello(extension(0, test::vec16(std::string("\x00\x00\x09" "a", 4))))).outcome,
            ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(built_hello(extension(0, test::vec16("")))).outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(built_hello(extension(0, ""))).outcome, ClientHelloOutcome::kMalformed);
  // An ALPN list with an empty name, one running past its list.
  EXPECT_EQ(peek(built_hello(extension(16, test::vec16(std::string("\x00", 1))))).outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(built_hello(extension(16, test::vec16("\x05h2")))).outcome, ClientHelloOutcome::kMalformed);
  // A session id longer than 32 bytes; no cipher suite; an odd cipher_suites length.
  std::string body = test::hello_body("");
  std::string long_id = body;
  long_id[34] = 33;
  EXPECT_EQ(peek(test::record(test::handshake(long_id))).outcome, ClientHelloOutcome::kMalformed);
  std::string fixed = std::string("\x03\x03", 2) + std::string(32, '\0') + test::vec8("");
  EXPECT_EQ(peek(test::record(test::handshake(fixed + test::vec16("") + test::vec8(std::string(1, '\0'))))).outcome,
            ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(test::record(test::handshake(fixed + test::vec16("abc") + test::vec8(std::string(1, '\0'))))).outcome,
            ClientHelloOutcome::kMalformed);
  // A message that ends inside its fixed fields.
  EXPECT_EQ(peek(test::record(test::handshake(body.substr(0, 20)))).outcome, ClientHelloOutcome::kMalformed);
}

TEST(ClientHelloTest, TwoServerNamesAreMalformed) {
  using test::server_name_ext;
  EXPECT_EQ(peek(test::built_hello(server_name_ext("a.test") + server_name_ext("b.test"))).outcome,
            ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(test::built_hello(server_name_ext({{0, "a.test"}, {0, "b.test"}}))).outcome,
            ClientHelloOutcome::kMalformed);
  EXPECT_EQ(peek(test::built_hello(test::extension(16, test::vec16("\x02h2")) + test::extension(16, test::vec16("\x02h2"))))
                .outcome,
            ClientHelloOutcome::kMalformed);
}

TEST(ClientHelloTest, HostNamesThatAreNotDnsNamesAreMalformed) {
  // In a real hello: one byte of the name overwritten, so every length stays right.
  std::string h = hello_for({.sni = "abcd.example.test"});
  std::size_t at = h.find("abcd.example.test");
  ASSERT_NE(at, std::string::npos);
  for (char bad : {'\0', ' ', '/', '*', ':', '\x80', '\xff', '.'}) {
    std::string patched = h;
    patched[at + 1] = bad;
    if (bad == '.') patched[at + 2] = '.';  // an empty label
    ClientHelloPeek p = peek(patched);
    EXPECT_EQ(p.outcome, ClientHelloOutcome::kMalformed) << "byte " << int(static_cast<unsigned char>(bad));
    EXPECT_STREQ(p.reason, "server_name is not a valid host name");
  }
  auto sni_of = [](const std::string& name) { return peek(test::built_hello(test::server_name_ext(name))); };
  EXPECT_EQ(sni_of("").outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(sni_of(".").outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(sni_of(".a.test").outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(sni_of(std::string(64, 'a') + ".test").outcome, ClientHelloOutcome::kMalformed);
  EXPECT_EQ(sni_of(std::string(63, 'a') + ".test").outcome, ClientHelloOutcome::kSni);
  // 253 characters is the longest name; 254 is refused.
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(61, 'd');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_EQ(sni_of(longest).sni, longest);
  EXPECT_EQ(sni_of(longest + "d").outcome, ClientHelloOutcome::kMalformed);
  // A fully qualified name routes as the name; underscores and digits pass.
  EXPECT_EQ(sni_of("Example.TEST.").sni, "example.test");
  EXPECT_EQ(sni_of("_svc-1.example.test").sni, "_svc-1.example.test");
}

TEST(ClientHelloTest, ServerNameOfOtherTypesOnlyOrNoExtensionsIsNoSni) {
  EXPECT_EQ(peek(test::built_hello(test::server_name_ext({{7, "opaque"}}))).outcome, ClientHelloOutcome::kNoSni);
  ClientHelloPeek mixed = peek(test::built_hello(test::server_name_ext({{7, "opaque"}, {0, "a.test"}})));
  EXPECT_EQ(mixed.outcome, ClientHelloOutcome::kSni);
  EXPECT_EQ(mixed.sni, "a.test");
  // TLS 1.2 lets a ClientHello end after compression_methods.
  EXPECT_EQ(peek(test::record(test::handshake(test::hello_body("")))).outcome, ClientHelloOutcome::kNoSni);
  EXPECT_EQ(peek(test::built_hello("")).outcome, ClientHelloOutcome::kNoSni);
}

TEST(ClientHelloTest, OutcomesHaveNames) {
  EXPECT_STREQ(to_string(ClientHelloOutcome::kSni), "sni");
  EXPECT_STREQ(to_string(ClientHelloOutcome::kNotTls), "not tls");
}

}  // namespace
}  // namespace lbd::tls
