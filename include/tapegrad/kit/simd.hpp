#pragma once
/// \file kit/simd.hpp
/// Wide SIMD chosen at run time for the elementwise ops.
///
/// The library is compiled for x86-64-v2 (SSE4.2), so that it runs on any x86-64 CPU of the
/// last ten years; its xsimd loops are then four floats wide. The build compiles the
/// elementwise op files a second time for AVX2 (eight floats) into a wide copy whose every
/// name is its own (the namespaces tg, xt, xtl and xsimd renamed), and that copy enrolls the
/// raw-memory loops of each elementwise::Unary and elementwise::Binary op here when the
/// program starts. An op's forward and first-order backward then run the wide loop when the
/// CPU has AVX2 and the tensor is large enough for it to pay; the loops compute every element
/// with the same operations in the same order, so the values are the same bit for bit.
///
/// Ops written outside the library find no wide copy and run their own loops.

#include <atomic>
#include <cstddef>

/// Called by the wide copy, once per op rule and value type, when the program starts:
/// `op` is the op's name, `type` the rule's type name (typeid, its own namespaces spelled
/// as the library's), `dtype` 0 for float and 1 for double, `arity` 1 or 2, `fns` a
/// simd::UnaryFns or simd::BinaryFns of that type.
extern "C" void tapegrad_simd_enroll(const char* op, const char* type, int dtype, int arity, const void* fns) noexcept;

namespace tg::simd {

/// The wide loops of a unary op: y = f(x) and grad (=|+=) df(g, x, y) over n elements;
/// `op` is the op's rule object.
template <class T> struct UnaryFns {
    /// y[i] = f(x[i]).
    void (*forward)(const void* op, std::size_t n, T* y, const T* x) noexcept;
    /// dst[i] (=|+=) df(g[i], x[i], y[i]).
    void (*backward)(const void* op, bool add, std::size_t n, T* dst, const T* g, const T* x, const T* y) noexcept;
};

/// The wide loops of a binary op over a broadcast plan's arguments (broadcast::Args).
template <class T> struct BinaryFns {
    /// dst (=|+=) f(a, b).
    void (*forward)(const void* op, const void* args, bool add, T* dst) noexcept;
    /// dst (=|+=) da(g, a, b, y).
    void (*da)(const void* op, const void* args, bool add, T* dst, const T* g, const T* y) noexcept;
    /// dst (=|+=) db(g, a, b, y).
    void (*db)(const void* op, const void* args, bool add, T* dst, const T* g, const T* y) noexcept;
};

/// The value type's code in tapegrad_simd_enroll.
template <class T> constexpr int dtype = sizeof(T) == 4 ? 0 : 1;

/// The enrolled wide loops of the op rule `type` of `op`, or null when there are none or the
/// CPU lacks their instructions.
const void* find(const char* op, const char* type, int dtype, int arity) noexcept;

/// Whether a lookup (find) has returned wide loops for a rule of `op`: how a test sees that
/// an op's rules reach their wide copy.
bool found(const char* op) noexcept;

/// Whether the wide loops are switched on (see tg::set_wide_simd).
extern std::atomic<bool> wide_on;

/// The fewest elements for which an op takes its wide loop: below this the call costs more
/// than the wider vectors save.
constexpr std::size_t min_elements = 32;

}  // namespace tg::simd
