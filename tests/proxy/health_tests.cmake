# Tests of proxy/health (included by tests/proxy/CMakeLists.txt).
lbd_add_test(health_checker_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/health_checker_test.cpp LIBS lbd::health LABELS proxy)
