# Tests of proxy/http (included by tests/proxy/CMakeLists.txt).
lbd_add_test(http_parser_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_parser_test.cpp LIBS lbd::http LABELS proxy)
lbd_add_test(http_forward_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_forward_test.cpp LIBS lbd::http LABELS proxy)
lbd_add_test(http_alloc_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_alloc_test.cpp LIBS lbd::http LABELS proxy)
lbd_add_test(host_pattern_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/host_pattern_test.cpp LIBS lbd::proxy LABELS proxy)
lbd_add_test(access_log_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/access_log_test.cpp LIBS lbd::proxy LABELS proxy)
