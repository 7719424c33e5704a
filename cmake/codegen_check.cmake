# Configure-time check that the compiler, with the flags tapegrad's own code is built with,
# passes small constant aggregates intact (cmake/codegen_check/main.cpp says what it probes
# and why). GCC 12.2 miscompiles them when it may move 32 bytes or more by pieces (PR
# target/108599: AVX2 with Intel's recent tunings, every AVX-512 target); limiting those
# moves to 16 bytes is the narrowest flag that avoids it.
#
# tapegrad_check_codegen(<flags> <out-var>): <out-var> receives the flags to add (empty when
# none are needed). Stops the configuration when no flag makes the probe pass.

set(TAPEGRAD_CODEGEN_WORKAROUND -mmove-max=128 -mstore-max=128)

# Runs the probe at -O2 and -O3 with `flags` after the build's own; sets <ok> to TRUE when
# every run passes.
function(_tapegrad_probe flags ok)
  set(dir ${PROJECT_SOURCE_DIR}/cmake/codegen_check)
  set(${ok} TRUE PARENT_SCOPE)
  foreach(level -O2 -O3)
    try_run(run_rc compiled ${PROJECT_BINARY_DIR}/codegen_check
      SOURCES ${dir}/main.cpp ${dir}/callee.cpp
      CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${dir}"
      COMPILE_DEFINITIONS ${level} ${flags}
      CXX_STANDARD 17
      COMPILE_OUTPUT_VARIABLE compile_out
      RUN_OUTPUT_VARIABLE run_out)
    if(NOT compiled)
      set(${ok} FALSE PARENT_SCOPE)
      message(STATUS "tapegrad: code generation probe did not compile with ${level} ${flags}:\n${compile_out}")
      return()
    endif()
    if(NOT run_rc EQUAL 0)
      set(${ok} FALSE PARENT_SCOPE)
      string(STRIP "${run_out}" run_out)
      string(JOIN " " shown ${CMAKE_CXX_FLAGS} ${level} ${flags})
      message(STATUS "tapegrad: ${run_out} with ${shown}")
      return()
    endif()
  endforeach()
endfunction()

function(tapegrad_check_codegen flags out)
  set(${out} "" PARENT_SCOPE)
  if(CMAKE_CROSSCOMPILING)
    message(STATUS "tapegrad: cross-compiling: the code generation probe cannot run here")
    return()
  endif()
  # Once per compiler and set of flags: the answer cannot change in between.
  string(MD5 key "${CMAKE_CXX_COMPILER};${CMAKE_CXX_COMPILER_VERSION};${CMAKE_CXX_FLAGS};${flags}")
  if(DEFINED CACHE{TAPEGRAD_CODEGEN_${key}})
    set(${out} "${TAPEGRAD_CODEGEN_${key}}" PARENT_SCOPE)
    return()
  endif()
  _tapegrad_probe("${flags}" ok)
  set(extra "")
  if(NOT ok)
    _tapegrad_probe("${flags};${TAPEGRAD_CODEGEN_WORKAROUND}" fixed)
    if(NOT fixed)
      string(JOIN " " shown ${CMAKE_CXX_FLAGS} ${flags})
      message(FATAL_ERROR "tapegrad: ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} with the flags "
                          "'${shown}' miscompiles small constant aggregates (see "
                          "cmake/codegen_check/main.cpp), even with ${TAPEGRAD_CODEGEN_WORKAROUND}. "
                          "Build without machine-specific flags (-DTAPEGRAD_NATIVE=OFF, no -march in CMAKE_CXX_FLAGS) "
                          "or with another compiler.")
    endif()
    set(extra ${TAPEGRAD_CODEGEN_WORKAROUND})
    string(JOIN " " shown ${extra})
    message(STATUS "tapegrad: adding ${shown}: without it ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} "
                   "miscompiles constant aggregates with these flags (GCC PR target/108599)")
  endif()
  set(TAPEGRAD_CODEGEN_${key} "${extra}" CACHE INTERNAL "flags that keep constant aggregates intact")
  set(${out} "${extra}" PARENT_SCOPE)
endfunction()
