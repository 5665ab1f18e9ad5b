# Checks that no co_await stands inside a conditional expression (`c ? co_await a : b`, or the
# same with co_await after the colon). g++ 12 destroys such an expression's result twice: a
# Result<Buffer> made that way gave its pooled read buffer back twice, and two later reads then
# shared one buffer (issue 12's full-duplex TLS corruption). Write an if statement instead.
# Run as a test: cmake -DSOURCE_DIR=<repo> -P cmake/CheckCoAwait.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DSOURCE_DIR=<repo> -P CheckCoAwait.cmake")
endif()

set(found "")
foreach(dir runtime proxy config cmd tests bench)
  file(GLOB_RECURSE sources "${SOURCE_DIR}/${dir}/*.cpp" "${SOURCE_DIR}/${dir}/*.hpp")
  foreach(source IN LISTS sources)
    file(STRINGS "${source}" lines)
    set(n 0)
    set(previous "")
    foreach(line IN LISTS lines)
      math(EXPR n "${n} + 1")
      string(REGEX REPLACE "//.*$" "" code "${line}")
      # `?` or `:` (not `::`, nor a label's colon at the end of a line) right before co_await,
      # or a line ending in `?` before one that starts with co_await.
      string(REGEX MATCH "(^|[^:])[?:][ \t]*co_await" here "${code}")
      string(REGEX MATCH "^[ \t]*co_await" starts "${code}")
      string(REGEX MATCH "[?][ \t]*$" ended "${previous}")
      if(here OR (starts AND ended))
        file(RELATIVE_PATH rel "${SOURCE_DIR}" "${source}")
        string(STRIP "${line}" shown)
        string(APPEND found "  ${rel}:${n}: ${shown}\n")
      endif()
      set(previous "${code}")
    endforeach()
  endforeach()
endforeach()
if(found)
  message(FATAL_ERROR "co_await inside a conditional expression (g++ 12 destroys its result twice; use an if):\n${found}")
endif()
