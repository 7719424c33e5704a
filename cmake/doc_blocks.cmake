# Turns the ```cpp blocks of one markdown page into one C++ translation unit, so that the
# build compiles every example the documentation shows (docs/CMakeLists.txt runs it at
# build time for README.md and each docs/*.md):
#
#   cmake -DPAGE=docs/autograd.md -DSOURCE_DIR=<repository> -DOUT=<file.cpp> -P doc_blocks.cmake
#
# A block's info string says what it is (docs/extending.md, "Documentation"):
#   ```cpp            declarations at namespace scope; a block with `int main(` is a program,
#                     which the docs check runs (its main is renamed doc_main)
#   ```cpp fragment   statements: compiled as the body of a function, never run
#   ```cpp skip       not compiled (listed, so that the check still counts it)
# Each block goes into its own namespace doc_<page>_<n>, which sees the blocks above it on
# the same page (a using-directive), as a reader does. Its #include lines are hoisted to the
# top of the file (blank lines are left in their place), and a #line directive makes the
# compiler report errors at the page's own line numbers.

cmake_minimum_required(VERSION 3.18)
foreach(var PAGE SOURCE_DIR OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "doc_blocks.cmake: ${var} is not set")
  endif()
endforeach()

set(md "${SOURCE_DIR}/${PAGE}")
if(NOT EXISTS "${md}")
  message(FATAL_ERROR "doc_blocks.cmake: ${PAGE}: no such file under ${SOURCE_DIR}")
endif()
get_filename_component(stem "${PAGE}" NAME_WE)
string(MAKE_C_IDENTIFIER "${stem}" stem)

# CMake lists split on ';' and do not split inside [...]: C++ has both, so they travel as
# placeholders through the list of lines and are put back on output.
file(READ "${md}" text)
string(REPLACE "\r" "" text "${text}")
string(REPLACE ";" "<TG_SEMI>" text "${text}")
string(REPLACE "[" "<TG_OPEN>" text "${text}")
string(REPLACE "]" "<TG_CLOSE>" text "${text}")
string(REPLACE "\\" "<TG_BACKSLASH>" text "${text}")
string(REPLACE "\n" ";" lines "${text}")

function(restore out_var line)
  string(REPLACE "<TG_SEMI>" ";" line "${line}")
  string(REPLACE "<TG_OPEN>" "[" line "${line}")
  string(REPLACE "<TG_CLOSE>" "]" line "${line}")
  string(REPLACE "<TG_BACKSLASH>" "\\" line "${line}")
  set(${out_var} "${line}" PARENT_SCOPE)
endfunction()

set(number 0)          # line number in the page
set(fence "")          # the open fence's backticks, when inside one
set(in_cpp FALSE)      # inside a ```cpp block
set(block_count 0)
set(includes "")       # hoisted #include lines, first occurrence order
set(body "")           # the namespaces
set(entries "")        # the registration table
set(previous "")       # the namespace of the block above
foreach(line IN LISTS lines)
  math(EXPR number "${number} + 1")
  string(STRIP "${line}" stripped)
  if(fence STREQUAL "")
    # (An info string holds no backtick: a line such as ```` ```cpp ```` is inline code.)
    if(stripped MATCHES "^(```+)[ ]*([^ `]*)[ ]*([^`]*)$")
      set(fence "${CMAKE_MATCH_1}")
      set(language "${CMAKE_MATCH_2}")
      set(marker "${CMAKE_MATCH_3}")
      if(language STREQUAL "cpp")
        math(EXPR block_count "${block_count} + 1")
        set(ns "doc_${stem}_${block_count}")
        if(marker STREQUAL "")
          set(kind "declarations")
        elseif(marker STREQUAL "fragment" OR marker STREQUAL "skip")
          set(kind "${marker}")
        else()
          message(FATAL_ERROR "${PAGE}:${number}: unknown marker '${marker}' after ```cpp "
                              "(none, 'fragment' or 'skip'; see docs/extending.md)")
        endif()
        set(in_cpp TRUE)
        set(block_line ${number})
        set(block_text "")
        set(has_main FALSE)
      endif()
    endif()
    continue()
  endif()
  if(stripped MATCHES "^```+$")
    string(LENGTH "${stripped}" closing)
    string(LENGTH "${fence}" opening)
    if(closing GREATER_EQUAL opening)
      set(fence "")
      if(in_cpp)
        set(in_cpp FALSE)
        if(kind STREQUAL "skip")
          string(APPEND entries "    {${block_line}, \"skip\", nullptr},\n")
          continue()
        endif()
        math(EXPR first "${block_line} + 1")
        string(APPEND body "namespace ${ns} {  // ${PAGE}:${block_line}\n")
        if(NOT previous STREQUAL "")
          string(APPEND body "using namespace ${previous};\n")
        endif()
        if(kind STREQUAL "fragment")
          string(APPEND body "void fragment()\n{\n")
        endif()
        string(APPEND body "#line ${first} \"${md}\"\n${block_text}")
        if(kind STREQUAL "fragment")
          string(APPEND body "}\n")
        endif()
        string(APPEND body "}  // namespace ${ns}\n\n")
        if(has_main)
          string(APPEND entries "    {${block_line}, \"program\", tg_doc::program(&${ns}::doc_main)},\n")
        else()
          string(APPEND entries "    {${block_line}, \"${kind}\", nullptr},\n")
        endif()
        set(previous "${ns}")
      endif()
      continue()
    endif()
  endif()
  if(NOT in_cpp)
    continue()
  endif()
  restore(line "${line}")
  if(line MATCHES "^[ \t]*#[ \t]*include[ \t]")
    string(STRIP "${line}" include)
    if(NOT include IN_LIST includes)
      list(APPEND includes "${include}")
    endif()
    set(line "")
  elseif(line MATCHES "^([ \t]*)int[ \t]+main[ \t]*\\(")
    if(kind STREQUAL "fragment")
      message(FATAL_ERROR "${PAGE}:${number}: a fragment cannot define main (drop the 'fragment' marker)")
    endif()
    # main outside the global namespace is an ordinary function, without main's implicit
    # `return 0`: `auto` makes one that never returns a value a void function.
    string(REGEX REPLACE "^([ \t]*)int[ \t]+main[ \t]*\\(" "\\1auto doc_main(" line "${line}")
    set(has_main TRUE)
  endif()
  string(APPEND block_text "${line}\n")
endforeach()
if(NOT fence STREQUAL "")
  message(FATAL_ERROR "${PAGE}: a ${fence} fence is never closed")
endif()

string(JOIN "\n" include_text ${includes})
set(content "// Generated from ${PAGE} by cmake/doc_blocks.cmake: its ${block_count} ```cpp blocks. Do not edit.\n")
string(APPEND content "#include \"doc_blocks.hpp\"\n\n${include_text}\n\n${body}")
string(APPEND content "static const tg_doc::Page page_${stem}(\"${PAGE}\", {\n${entries}});\n")

# Unchanged output keeps its time stamp: an edit that moves no block recompiles nothing.
include(${CMAKE_CURRENT_LIST_DIR}/write_if_changed.cmake)
tapegrad_write_if_changed("${OUT}" "${content}")
