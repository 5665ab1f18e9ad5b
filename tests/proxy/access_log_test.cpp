// The access log's escaping (proxy/l7/access_log.cpp): bytes a client controls must not break
// a line's fields, in either format.

#include "proxy/l7/access_log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace lbd::proxy {
namespace {

AccessRecord record_with_user_agent(std::string_view ua) {
  AccessRecord r;
  r.listener = "web";
  r.method = "GET";
  r.target = "/";
  r.version = "HTTP/1.1";
  r.status = 200;
  r.user_agent = ua;
  return r;
}

constexpr std::string_view kHostile = "a\"b\\c\x01\n\x7f" "d";

TEST(AccessLog, CombinedEscapesQuotesBackslashesControlBytesAndDel) {
  std::string line = format_access(record_with_user_agent(kHostile), config::AccessLogFormat::kCombined);
  EXPECT_NE(line.find(R"("a\"b\\c\x01\x0A\x7Fd")"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

TEST(AccessLog, JsonEscapesQuotesBackslashesAndControlBytesButNotDel) {
  std::string line = format_access(record_with_user_agent(kHostile), config::AccessLogFormat::kJson);
  EXPECT_NE(line.find("\"user_agent\":\"a\\\"b\\\\c\\u0001\\u000a\x7f" "d\""), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

TEST(AccessLog, CombinedWritesADashForAnEmptyField) {
  std::string line = format_access(record_with_user_agent(""), config::AccessLogFormat::kCombined);
  EXPECT_NE(line.find(R"(200 0 "-" "-")"), std::string::npos) << line;
}

}  // namespace
}  // namespace lbd::proxy
