# The docs check fails when it should (docs/CMakeLists.txt):
#   - a page whose block does not compile fails the compiler, which reports the error at
#     the block's line in the page (the other blocks of the page compile);
#   - a block with a marker the generator does not know is refused.
#
#   cmake -DSOURCE_DIR=<repository> -DWORK=<dir> -DCXX_COMPILER=<c++> -P expect_failures.cmake

cmake_minimum_required(VERSION 3.18)
set(generator ${SOURCE_DIR}/cmake/doc_blocks.cmake)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# 1. The broken page: generated, then compiled (syntax only: the fixture needs no library).
execute_process(COMMAND ${CMAKE_COMMAND} -DPAGE=docs/check/broken.md -DSOURCE_DIR=${SOURCE_DIR}
                        -DOUT=${WORK}/broken.cpp -P ${generator}
                RESULT_VARIABLE status ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "generating the fixture failed: ${err}")
endif()
execute_process(COMMAND ${CXX_COMPILER} -std=c++17 -fsyntax-only -I${SOURCE_DIR}/docs/check ${WORK}/broken.cpp
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(status EQUAL 0)
  message(FATAL_ERROR "the broken block compiled")
endif()
file(READ ${SOURCE_DIR}/docs/check/broken.md page)
string(FIND "${page}" "int broken()" at)
string(SUBSTRING "${page}" 0 ${at} before)
string(REGEX MATCHALL "\n" newlines "${before}")
list(LENGTH newlines line)
math(EXPR line "${line} + 1")
string(REGEX MATCHALL "broken\\.md:[0-9]+:[0-9]+: error" errors "${err}")
list(REMOVE_DUPLICATES errors)
if(NOT errors MATCHES "^broken\\.md:${line}:[0-9]+: error$")
  message(FATAL_ERROR "expected one error, at broken.md:${line}; the compiler said:\n${err}")
endif()
message(STATUS "the broken block fails the build at broken.md:${line}")

# 2. An unknown marker.
file(WRITE ${WORK}/marker.md "# Page\n\n```cpp fragmnet\nint x = 0;\n```\n")
execute_process(COMMAND ${CMAKE_COMMAND} -DPAGE=marker.md -DSOURCE_DIR=${WORK} -DOUT=${WORK}/marker.cpp -P ${generator}
                RESULT_VARIABLE status ERROR_VARIABLE err)
if(status EQUAL 0 OR NOT err MATCHES "marker.md:3: unknown marker 'fragmnet'")
  message(FATAL_ERROR "the unknown marker was not refused (status ${status}):\n${err}")
endif()
message(STATUS "an unknown marker is refused: ok")
