#!/bin/sh
# The default build must run on any x86-64 CPU: its compile flags carry no -march=native
# and the library holds no AVX instruction (a VEX- or EVEX-encoded one on a vector register).
# Usage: check_portable.sh <build dir> <libtapegrad file>
set -eu
build="$1"
lib="$2"
flags=$(find "$build/CMakeFiles/tapegrad.dir" -name flags.make 2>/dev/null; find "$build" -maxdepth 1 -name build.ninja)
if [ -z "$flags" ]; then
  echo "check_portable: no flags.make or build.ninja under $build" >&2
  exit 1
fi
if grep -l -e '-march=native' -e '-mtune=native' $flags; then
  echo "check_portable: the default build compiles with -march=native (files above)" >&2
  exit 1
fi
found=$(objdump -d --no-show-raw-insn "$lib" | grep -E '^[[:space:]]+[0-9a-f]+:[[:space:]]+v[a-z0-9]+[[:space:]].*%[xyz]mm' | head -5)
if [ -n "$found" ]; then
  echo "check_portable: $lib holds AVX instructions, e.g.:" >&2
  echo "$found" >&2
  exit 1
fi
echo "check_portable: no -march=native in the flags, no AVX instruction in $(basename "$lib")"
