#!/bin/sh
# The default build must run on any x86-64 CPU: its compile flags carry no -march=native
# and the library holds no AVX instruction (a VEX- or EVEX-encoded one on a vector register)
# outside the wide SIMD copy that runs only where AVX2 is.
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
# AVX instructions may appear only in the wide SIMD copy of the elementwise ops
# (cmake/simd_wide.cmake), whose every name carries a renamed namespace (tg_avx2, xt_avx2,
# xtl_avx2, xsimd_avx2) and which runs only on CPUs that have AVX2. Anything else holding
# one, such as an inline function of the library or of the standard library compiled into
# that copy, could stand in for the baseline's at link time.
scan=$(objdump -d --no-show-raw-insn "$lib" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $2; next }
  /^[[:space:]]+[0-9a-f]+:[[:space:]]+v[a-z0-9]+[[:space:]].*%[xyz]mm/ {
    if (fn ~ /(tg|xt|xtl|xsimd)_avx2/) { wide++ } else if (shown++ < 5) { print "outside " fn ": " $0 }
  }
  END { print "wide " wide + 0 }')
found=$(echo "$scan" | sed -n 's/^outside //p')
wide=$(echo "$scan" | sed -n 's/^wide //p')
if [ -n "$found" ]; then
  echo "check_portable: $lib holds AVX instructions outside its wide SIMD copy, e.g.:" >&2
  echo "$found" >&2
  exit 1
fi
echo "check_portable: no -march=native in the flags; no AVX instruction in $(basename "$lib") outside the wide SIMD copy ($wide in it)"
