# One function registers every test binary. Each GoogleTest case becomes its own ctest entry,
# so `ctest -j` spreads them over the cores and a failure names the case.
find_package(GTest REQUIRED)
include(GoogleTest)

# lbd_add_test(NAME SOURCES... [LIBS libs...] [LABELS labels...])
function(lbd_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT 300 LABELS "${T_LABELS}"
    ENVIRONMENT "LBD_SOURCE_DIR=${PROJECT_SOURCE_DIR};LBD_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
