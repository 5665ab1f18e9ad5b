# Checks that no #include runs up a layer (DESIGN.md: a lower layer never includes a higher one),
# that a detail/ folder's headers are included only from inside the folder that owns it, and that
# each third-party library stays behind the part of the tree that wraps it.
# Run as a test: cmake -DSOURCE_DIR=<repo> -P cmake/CheckLayers.cmake
#
# The layers, bottom up; each may include its own folder and the layers listed for it:
#   runtime/                 the async runtime (libc + liburing)
#   proxy/tls                TLS on the runtime's sockets (OpenSSL): contexts, streams
#   proxy/http, proxy/balancer   pure libraries: HTTP/1 grammar, parsing and serialization;
#                            balancing. No I/O, no config: config/ builds on their types
#   config/                  YAML -> plain structs
#   proxy/core               what every session kind uses: clusters, pools, relay, drain, stats
#   proxy/l4, proxy/l7       the sessions; neither includes the other
#   proxy/health, proxy/admin  active health checks; the admin listener (metrics, status page):
#                            both run on the control thread and know no session kind
#   proxy/worker             the composition root: listeners, snapshots, picking the session kind
#   cmd/                     the daemon
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DSOURCE_DIR=<repo> -P CheckLayers.cmake")
endif()

set(allowed_runtime  runtime)
set(allowed_tls      tls runtime)
set(allowed_http     http runtime)
set(allowed_balancer balancer runtime)
set(allowed_config   config tls http balancer runtime)
set(allowed_core     core config tls http balancer runtime)
set(allowed_l4       l4 core config tls http balancer runtime)
set(allowed_l7       l7 core config tls http balancer runtime)
set(allowed_health   health core config tls http balancer runtime)
set(allowed_admin    admin core config tls http balancer runtime)
set(allowed_worker   worker l4 l7 core config tls http balancer runtime)
set(allowed_cmd      cmd worker health admin l4 l7 core config tls http balancer runtime)

# Third-party headers and the only folders that may include them.
set(third_party "yaml-cpp/:config/" "llhttp.h:proxy/http/detail/" "liburing.h:runtime/detail/"
                "CLI/:cmd/" "spdlog/:proxy/core/log.hpp proxy/l7/access_log.cpp cmd/"
                "nlohmann/:proxy/admin/" "openssl/:proxy/tls/")

# The layer a repo-relative path belongs to; "" for folders outside the layering (tests, bench).
function(layer_of path out)
  set(layer "")
  foreach(pair "proxy/tls/:tls" "proxy/http/:http" "proxy/balancer/:balancer" "proxy/core/:core" "proxy/l4/:l4"
               "proxy/l7/:l7" "proxy/health/:health" "proxy/admin/:admin" "proxy/worker/:worker" "runtime/:runtime" "config/:config" "cmd/:cmd")
    string(REPLACE ":" ";" pair "${pair}")
    list(GET pair 0 prefix)
    list(GET pair 1 name)
    string(FIND "${path}" "${prefix}" at)
    if(at EQUAL 0)
      set(layer ${name})
      break()
    endif()
  endforeach()
  set(${out} "${layer}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE sources RELATIVE "${SOURCE_DIR}"
     "${SOURCE_DIR}/runtime/*.hpp" "${SOURCE_DIR}/runtime/*.cpp"
     "${SOURCE_DIR}/proxy/*.hpp" "${SOURCE_DIR}/proxy/*.cpp"
     "${SOURCE_DIR}/config/*.hpp" "${SOURCE_DIR}/config/*.cpp"
     "${SOURCE_DIR}/cmd/*.hpp" "${SOURCE_DIR}/cmd/*.cpp")

set(violations "")
set(checked 0)
foreach(file IN LISTS sources)
  layer_of("${file}" from)
  file(STRINGS "${SOURCE_DIR}/${file}" system_lines REGEX "^#include <")
  foreach(line IN LISTS system_lines)
    string(REGEX REPLACE "^#include <([^>]+)>.*" "\\1" included "${line}")
    foreach(rule IN LISTS third_party)
      string(REPLACE ":" ";" rule "${rule}")
      list(GET rule 0 lib)
      list(GET rule 1 owners)
      string(FIND "${included}" "${lib}" lib_at)
      if(NOT lib_at EQUAL 0)
        continue()
      endif()
      separate_arguments(owners)
      set(owned FALSE)
      foreach(owner IN LISTS owners)
        string(FIND "${file}" "${owner}" owner_at)
        if(owner_at EQUAL 0)
          set(owned TRUE)
        endif()
      endforeach()
      if(NOT owned)
        list(JOIN owners ", " owners_text)
        string(APPEND violations "  ${file}: includes <${included}>, which only ${owners_text} may include\n")
      endif()
    endforeach()
  endforeach()
  file(STRINGS "${SOURCE_DIR}/${file}" lines REGEX "^#include \"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" included "${line}")
    math(EXPR checked "${checked} + 1")
    layer_of("${included}" to)
    if(to STREQUAL "")
      string(APPEND violations "  ${file}: includes ${included}, which is outside the layers\n")
      continue()
    endif()
    if(NOT to IN_LIST allowed_${from})
      string(APPEND violations "  ${file}: includes ${included} (${from} may include only: ${allowed_${from}})\n")
    endif()
    # X/detail/... is private to X/.
    string(FIND "${included}" "/detail/" detail_at)
    if(NOT detail_at EQUAL -1)
      string(SUBSTRING "${included}" 0 ${detail_at} owner)
      string(FIND "${file}" "${owner}/" inside)
      if(NOT inside EQUAL 0)
        string(APPEND violations "  ${file}: includes ${included}, private to ${owner}/\n")
      endif()
    endif()
  endforeach()
endforeach()

list(LENGTH sources files)
if(violations)
  message(FATAL_ERROR "includes that break the layering (cmake/CheckLayers.cmake):\n${violations}")
endif()
message(STATUS "layers: ${checked} includes in ${files} files, none runs up a layer or into another folder's detail/")
