# HTTP/1.1 (L7) integration tests of the real lbd binary (issue 4): strict parsing and the
# statuses a client gets, what reaches the backend, routing, upstream faults, keep-alive reuse,
# streamed bodies, upgrade tunnels, access log, drain, and real clients (curl, h2load). Every test
# runs on both I/O drivers (io_uring, epoll). Included from CMakeLists.txt next to this file.

# HTTP additions to the shared harness: a message reader and an HTTP backend the tests script
# byte by byte. Optimised even in Debug, like the harness: it digests 100 MiB bodies.
add_library(lbd_it_http_harness STATIC ${CMAKE_CURRENT_SOURCE_DIR}/http_harness.cpp)
target_link_libraries(lbd_it_http_harness PUBLIC lbd_it_harness)
target_compile_options(lbd_it_http_harness PRIVATE -O2)

set(LBD_HTTP_INTEGRATION_TESTS
  http_framing      # strict parsing: framing rules, bad bytes, Host, versions, limits, 100-continue, pipelining
  http_forwarding   # hop-by-hop removal, X-Forwarded-*, header order; routing table cases
  http_upstream     # upstream faults (502/503/504), slow client head (408), client gone mid-upload
  http_keepalive    # upstream connection reuse, stale pooled connections, no retry after a body
  http_streaming    # 100 MiB bodies both ways with flat memory, upgrade tunnels
  http_operations   # access log, SIGTERM drain, curl and h2load
  reload_under_load # ten reloads under keep-alive, per-connection and tcp load; SIGTERM drain of in-flight requests
  health            # active checks, outlier ejection, 503 when all down, ready_delay
  upstream_tls      # clusters[].tls: verified, pooled, resumed, mTLS, 502 upstream_tls, tcp listener to a TLS cluster
  admin             # /metrics (promtool), /stats, /ready on SIGTERM, drain/enable and the token, status page (Chromium), admin.listen on reload
)
foreach(t IN LISTS LBD_HTTP_INTEGRATION_TESTS)
  lbd_add_test(integration_${t}_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}_test.cpp
    LIBS lbd_it_http_harness lbd_it_harness
    LABELS integration)
  target_compile_definitions(integration_${t}_test PRIVATE
    LBD_IT_LBD_PATH="$<TARGET_FILE:lbd>"
    LBD_VERSION_EXPECTED="${PROJECT_VERSION}")
  add_dependencies(integration_${t}_test lbd)
endforeach()
# upstream_tls_test runs an OpenSSL backend and makes its certificates at test time.
find_package(OpenSSL 3 REQUIRED)
target_link_libraries(integration_upstream_tls_test PRIVATE OpenSSL::SSL OpenSSL::Crypto)
find_package(nlohmann_json 3 REQUIRED)
target_link_libraries(integration_admin_test PRIVATE nlohmann_json::nlohmann_json)
# GCC 12 warns from inside libstdc++'s <regex> (-Wmaybe-uninitialized in std::function's move,
# a false positive: GCC bug 105562) when this file is built with the sanitizers; the regexes are
# the test's, the warning is not ours to fix.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/http_operations_test.cpp
    PROPERTIES COMPILE_OPTIONS "-Wno-maybe-uninitialized")
endif()

# TLS termination through the binary (issue 12). The TLS client of the harness is OpenSSL on a
# socket of its own; the certificates come from tests/proxy/tls_test_support.hpp at test time.
# The s_client and curl cases skip, with the reason, where those CLIs are missing.
find_package(OpenSSL 3 REQUIRED)
add_library(lbd_it_tls_harness STATIC ${CMAKE_CURRENT_SOURCE_DIR}/tls_harness.cpp)
target_link_libraries(lbd_it_tls_harness PUBLIC lbd_it_harness OpenSSL::SSL OpenSSL::Crypto)
target_compile_options(lbd_it_tls_harness PRIVATE -O2)
lbd_add_test(integration_tls_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tls_test.cpp
  LIBS lbd_it_tls_harness lbd_it_http_harness lbd_it_harness
  LABELS integration)
target_compile_definitions(integration_tls_test PRIVATE
  LBD_IT_LBD_PATH="$<TARGET_FILE:lbd>"
  LBD_VERSION_EXPECTED="${PROJECT_VERSION}")
add_dependencies(integration_tls_test lbd)
