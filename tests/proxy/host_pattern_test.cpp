// host_pattern_matches (proxy/core/host_pattern.hpp): the rule both match.host (HTTP routes)
// and match.sni (SNI passthrough routes) use.

#include <gtest/gtest.h>

#include "proxy/core/host_pattern.hpp"

namespace lbd::proxy {
namespace {

TEST(HostPattern, ExactNamesMatchWhateverTheirCase) {
  EXPECT_TRUE(host_pattern_matches("api.example.com", "api.example.com"));
  EXPECT_TRUE(host_pattern_matches("api.example.com", "API.Example.COM"));
  EXPECT_FALSE(host_pattern_matches("api.example.com", "www.example.com"));
  EXPECT_FALSE(host_pattern_matches("api.example.com", "api.example.com.evil"));
  EXPECT_FALSE(host_pattern_matches("api.example.com", ""));
}

TEST(HostPattern, AWildcardCoversEveryNameBelowItsDomainButNotTheDomain) {
  EXPECT_TRUE(host_pattern_matches("*.example.com", "a.example.com"));
  EXPECT_TRUE(host_pattern_matches("*.example.com", "a.b.example.com"));
  EXPECT_TRUE(host_pattern_matches("*.example.com", "A.EXAMPLE.com"));
  EXPECT_FALSE(host_pattern_matches("*.example.com", "example.com"));
  EXPECT_FALSE(host_pattern_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(host_pattern_matches("*.example.com", "aexample.com"));
  EXPECT_FALSE(host_pattern_matches("*.example.com", "a.example.org"));
}

}  // namespace
}  // namespace lbd::proxy
