#pragma once
/// \file kit/kernels.hpp
/// Elementwise kernels on raw contiguous memory, vectorised with xsimd.
//
// Why not xtensor expressions here: on this machine an xtensor assignment costs ~30 ns of
// set-up even for one element, which is most of the per-op budget of a small network.
// These loops have no set-up; functors are written once for a scalar and for an
// xsimd::batch (e.g. `template <class V> V operator()(V x) const`), so the vector body
// and the scalar tail compute the same formula.

#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace tg::kernel {

/// The SIMD batch of T for the architecture the library is compiled for.
template <class T> using batch = xsimd::batch<T>;

/// A scalar broadcast to every element.
template <class T> struct Bcast {
    /// The value.
    T v;
};

///@{
/// The SIMD batch of an argument at element i: loaded from p + i (unaligned), or the broadcast scalar.
template <class T> inline batch<T> vload(const T* p, std::size_t i) noexcept
{
    return batch<T>::load_unaligned(p + i);
}
template <class T> inline batch<T> vload(Bcast<T> s, std::size_t) noexcept
{
    return batch<T>(s.v);
}
///@}
///@{
/// The scalar of an argument at element i: p[i], or the broadcast scalar.
template <class T> inline T sload(const T* p, std::size_t i) noexcept
{
    return p[i];
}
template <class T> inline T sload(Bcast<T> s, std::size_t) noexcept
{
    return s.v;
}

///@}
/// y[i] = f(args[i]...) (or y[i] += ... when Add), for i in [0, n).
template <bool Add, class T, class F, class... A> inline void map(std::size_t n, T* y, F f, A... args) noexcept
{
    constexpr std::size_t w = batch<T>::size;
    std::size_t i = 0;
    for (; i + w <= n; i += w) {
        batch<T> r = f(vload(args, i)...);
        if constexpr (Add) r += batch<T>::load_unaligned(y + i);
        r.store_unaligned(y + i);
    }
    for (; i < n; ++i) {
        const T r = f(sload(args, i)...);
        if constexpr (Add) {
            y[i] += r;
        } else {
            y[i] = r;
        }
    }
}

/// map<true> or map<false> chosen at run time.
template <class T, class F, class... A> inline void map_to(bool add, std::size_t n, T* y, F f, A... args) noexcept
{
    if (add) {
        map<true>(n, y, f, args...);
    } else {
        map<false>(n, y, f, args...);
    }
}

/// Sum of n contiguous values.
template <class T> inline T sum(std::size_t n, const T* x) noexcept
{
    constexpr std::size_t w = batch<T>::size;
    std::size_t i = 0;
    T s = 0;
    if (n >= w) {
        batch<T> acc(T(0));
        for (; i + w <= n; i += w) acc += batch<T>::load_unaligned(x + i);
        s = xsimd::hadd(acc);
    }
    for (; i < n; ++i) s += x[i];
    return s;
}

/// Largest of n contiguous values; NaN if any value is NaN.
template <class T> inline T max(std::size_t n, const T* x) noexcept
{
    T m = x[0];
    for (std::size_t i = 1; i < n; ++i) {
        if (x[i] > m || x[i] != x[i]) m = x[i];  // once m is NaN it stays NaN
    }
    return m;
}

/// dst[i] = src[i] (or += when `add`), for i in [0, n): how a computed gradient lands in a
/// buffer that may already hold one.
template <class T> inline void add_or_assign(T* dst, const T* src, std::size_t n, bool add) noexcept
{
    map_to(
        add, n, dst, [](auto v) { return v; }, src);
}

/// Runs f(i, lane) over [0, n) in steps of a SIMD batch, then one element at a time for
/// the tail: `lane` is a batch<T> or a T (its value unused) that tells f which width to
/// load and store with load<V>/store. For loops that read and write several arrays.
template <class T, class F> inline void for_each_lane(std::size_t n, F f)
{
    constexpr std::size_t w = batch<T>::size;
    std::size_t i = 0;
    for (; i + w <= n; i += w) f(i, batch<T>(T(0)));
    for (; i < n; ++i) f(i, T(0));
}

/// p[i] as a V (a batch starting at p + i, or the one element).
template <class V, class T> inline V load(const T* p, std::size_t i) noexcept
{
    if constexpr (std::is_arithmetic<V>::value) {
        return p[i];
    } else {
        return V::load_unaligned(p + i);
    }
}

/// Stores v (a batch or one element) at p + i.
template <class V, class T> inline void store(T* p, std::size_t i, const V& v) noexcept
{
    if constexpr (std::is_arithmetic<V>::value) {
        p[i] = v;
    } else {
        v.store_unaligned(p + i);
    }
}

/// cond ? a : b for scalars and batches alike.
template <class C, class V> inline V select(const C& cond, const V& a, const V& b) noexcept
{
    if constexpr (std::is_arithmetic<V>::value) {
        return cond ? a : b;
    } else {
        return xsimd::select(cond, a, b);
    }
}

/// The larger of a and b, lane by lane (b when either is NaN, as `a < b ? b : a`).
template <class V> inline V lane_max(const V& a, const V& b) noexcept
{
    return select(a < b, b, a);
}

}  // namespace tg::kernel
