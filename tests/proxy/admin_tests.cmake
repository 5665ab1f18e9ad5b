# Tests of proxy/admin (included by tests/proxy/CMakeLists.txt). The promtool and Chromium
# tests skip, with the reason, where those programs are not installed (deploy/bootstrap.sh test
# installs them).
find_package(nlohmann_json 3 REQUIRED)
lbd_add_test(admin_metrics_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_metrics_test.cpp LIBS lbd::admin LABELS proxy)
lbd_add_test(admin_stats_json_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_stats_json_test.cpp
  LIBS lbd::admin nlohmann_json::nlohmann_json LABELS proxy)
lbd_add_test(admin_server_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_server_test.cpp
  LIBS lbd::admin nlohmann_json::nlohmann_json LABELS proxy)
lbd_add_test(admin_status_page_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_status_page_test.cpp
  LIBS lbd::admin LABELS proxy)

# Not a test: writes the README's screenshot of the status page.
#   cmake --build --preset release --target admin_status_screenshot
#   build/release/tests/proxy/admin_status_screenshot docs/status-page.png
add_executable(admin_status_screenshot ${CMAKE_CURRENT_LIST_DIR}/admin_status_screenshot.cpp)
target_link_libraries(admin_status_screenshot PRIVATE lbd::admin)
target_include_directories(admin_status_screenshot PRIVATE ${PROJECT_SOURCE_DIR})
