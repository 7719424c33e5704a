# tapegrad_write_if_changed(<path> <content>): writes `content` to `path` only when it differs,
# so that generated output that did not change keeps its time stamp and rebuilds nothing.
# Shared by the generators of ops.hpp, of the op batches and of the docs' code blocks.
include_guard(GLOBAL)
function(tapegrad_write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
endfunction()
