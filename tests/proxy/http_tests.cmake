# Tests of proxy/http (included by tests/proxy/CMakeLists.txt).
lbd_add_test(http_parser_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_parser_test.cpp LIBS lbd::http LABELS proxy)
