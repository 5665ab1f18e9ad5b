# Tests of proxy/tls (included by tests/proxy/CMakeLists.txt). Certificates and keys are made
# at test time (tls_test_support.hpp). The s_client interop case skips, with the reason, where
# the openssl CLI is not installed (deploy/bootstrap.sh test installs it).
find_package(OpenSSL 3 REQUIRED)
lbd_add_test(tls_first_bytes_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_first_bytes_test.cpp LIBS lbd::tls LABELS proxy)
lbd_add_test(tls_context_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_context_test.cpp
  LIBS lbd::tls OpenSSL::SSL OpenSSL::Crypto LABELS proxy)
lbd_add_test(tls_stream_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_stream_test.cpp
  LIBS lbd::tls OpenSSL::SSL OpenSSL::Crypto LABELS proxy)

# Not a test: prints the memory an idle TLS connection holds (see docs/architecture.md, TLS).
#   cmake --build --preset release --target tls_idle_memory && build/release/tests/proxy/tls_idle_memory
add_executable(tls_idle_memory ${CMAKE_CURRENT_LIST_DIR}/tls_idle_memory.cpp)
target_link_libraries(tls_idle_memory PRIVATE lbd::tls OpenSSL::SSL OpenSSL::Crypto)
target_include_directories(tls_idle_memory PRIVATE ${PROJECT_SOURCE_DIR})

# SNI passthrough: the ClientHello peek (pure, with OpenSSL-made hellos) and the preread on both
# drivers.
lbd_add_test(tls_client_hello_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_client_hello_test.cpp
  LIBS lbd::tls OpenSSL::SSL OpenSSL::Crypto LABELS proxy)
lbd_add_test(sni_preread_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sni_preread_test.cpp
  LIBS lbd::proxy OpenSSL::SSL OpenSSL::Crypto LABELS proxy)

# ByteStream::await_input over TLS: the idle wait for ciphertext, then the read that decrypts it.
lbd_add_test(byte_stream_input_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/byte_stream_input_test.cpp
  LIBS lbd::proxy OpenSSL::SSL OpenSSL::Crypto LABELS proxy)

# ByteStream::linger: the lingering close a drain and the plain-HTTP answer end with.
lbd_add_test(byte_stream_linger_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/byte_stream_linger_test.cpp
  LIBS lbd::proxy LABELS proxy)
