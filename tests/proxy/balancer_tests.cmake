lbd_add_test(balancer_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/balancer_test.cpp
  LIBS lbd::balancer
  LABELS proxy)
