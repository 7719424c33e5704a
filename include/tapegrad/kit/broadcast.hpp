#pragma once
/// \file kit/broadcast.hpp
/// numpy broadcasting for kernels on raw memory: the broadcast shape, and the fast paths
/// that cover nearly every real call (same shape, a scalar, a trailing-dims suffix such as
/// a bias), so that a broadcasting op runs one vectorised loop instead of an xtensor
/// broadcast.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xbroadcast.hpp>
#include <xtensor/xreducer.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/kit/kernels.hpp"
#include "tapegrad/var.hpp"

namespace tg::broadcast {

/// A tensor shape, as xtensor stores it.
using Shape = xt::xarray<double>::shape_type;

/// Whether `in` broadcasts to `out` (numpy rules: align at the end, dims equal or 1).
template <class S1, class S2> bool broadcasts_to(const S1& in, const S2& out)
{
    if (in.size() > out.size()) return false;
    const std::size_t lead = out.size() - in.size();
    for (std::size_t j = 0; j < in.size(); ++j) {
        if (in[j] != 1 && in[j] != out[lead + j]) return false;
    }
    return true;
}

/// The numpy broadcast of two shapes; throws `<op>: shapes cannot be broadcast together`.
template <class S1, class S2> Shape shape(const char* op, const S1& a, const S2& b)
{
    const std::size_t r = std::max(a.size(), b.size());
    Shape out(r, 1);
    for (std::size_t j = 0; j < r; ++j) {
        const std::size_t da = j < r - a.size() ? 1 : a[j - (r - a.size())];
        const std::size_t db = j < r - b.size() ? 1 : b[j - (r - b.size())];
        if (da != db && da != 1 && db != 1) {
            throw Error(std::string(op) + ": shapes cannot be broadcast together: a is " + format_shape(a) + ", b is " +
                        format_shape(b));
        }
        out[j] = da == 1 ? db : da;
    }
    checked_size(op, out);  // [2^40, 0, 1] with [1, 0, 2^40]: no element, but unindexable
    return out;
}

/// `in` repeated out to the shape `out` it broadcasts to, by index arithmetic alone.
/// For bool masks this is the only safe way: xtensor 0.24 with xsimd evaluates a broadcast
/// expression with a bool operand (`xt::where(mask, a, b)` with a (4,) mask over (3, 4)) in
/// its strided SIMD loop, where the bool array's stepper advances one element per batch
/// instead of a batch's width, so every lane after the first reads the wrong mask entry.
template <class U, class S> xt::xarray<U> materialise(const xt::xarray<U>& in, const S& out)
{
    xt::xarray<U> res = xt::xarray<U>::from_shape(out);
    const std::size_t n = res.size();
    if (n == 0) return res;
    const std::size_t r = out.size();
    const std::size_t lead = r - in.dimension();
    std::vector<std::size_t> idx(r, 0), step(r, 0);
    std::size_t s = 1;
    for (std::size_t j = r; j-- > lead;) {
        const std::size_t d = in.shape()[j - lead];
        step[j] = d == 1 ? 0 : s;
        s *= d;
    }
    const U* src = in.data();
    U* dst = res.data();
    std::size_t off = 0;
    for (std::size_t i = 0; i < n; ++i) {
        dst[i] = src[off];
        for (std::size_t j = r; j-- > 0;) {  // next index, last dimension fastest
            if (++idx[j] < out[j]) {
                off += step[j];
                break;
            }
            off -= step[j] * (out[j] - 1);
            idx[j] = 0;
        }
    }
    return res;
}

/// How one input maps onto a broadcast output (and, backwards, how a gradient of the
/// output's shape reduces to the input).
enum class Kind {
    full,    ///< same elements in the same order as the output
    scalar,  ///< one element, broadcast everywhere
    suffix,  ///< equals the output's trailing dims: repeated once per output row
    general  ///< anything else: materialised with xtensor
};

/// Classifies an input of shape `in` (in_size elements) against the output `out`.
template <class S1, class S2> Kind classify(const S1& in, std::size_t in_size, const S2& out, std::size_t out_size)
{
    if (in_size == out_size) return Kind::full;
    if (in_size == 1) return Kind::scalar;
    std::size_t lead = 0;
    while (lead < in.size() && in[lead] == 1) ++lead;
    const std::size_t r = in.size() - lead;
    if (r > out.size()) return Kind::general;
    for (std::size_t j = 0; j < r; ++j) {
        if (in[lead + j] != out[out.size() - r + j]) return Kind::general;
    }
    return Kind::suffix;
}

// Argument wrappers: an output-sized array, a row repeated per output row, a scalar.
/// An output-sized input: element i of the output reads p[i].
template <class T> struct Full {
    /// The input's first element.
    const T* p;
};
/// An input that repeats once per output row: every row reads p[0 .. m).
template <class T> struct Row {
    /// The row's first element.
    const T* p;
};

/// Where an output-sized input starts for the output elements from `off` on.
template <class T> inline const T* at(Full<T> a, std::size_t off) noexcept
{
    return a.p + off;
}
/// A row input at any row: the row itself.
template <class T> inline const T* at(Row<T> a, std::size_t) noexcept
{
    return a.p;
}
/// A scalar input at any offset: the same scalar.
template <class T> inline kernel::Bcast<T> at(kernel::Bcast<T> a, std::size_t) noexcept
{
    return a;
}

/// Whether an argument wrapper is a Row (then run() loops row by row).
template <class A> struct is_row : std::false_type {};
template <class T> struct is_row<Row<T>> : std::true_type {};

/// dst[i] (=|+=) f(args...) over n output elements, rows of length m when an argument
/// repeats per row.
template <class T, class F, class... A> void run(bool add, std::size_t n, std::size_t m, T* dst, F f, A... args)
{
    if constexpr ((is_row<A>::value || ...)) {
        for (std::size_t off = 0; off < n; off += m) kernel::map_to(add, m, dst + off, f, at(args, off)...);
    } else {
        kernel::map_to(add, n, dst, f, at(args, 0)...);
    }
}

/// Calls k(wrapped) with the input wrapped for its kind (general inputs must have been
/// materialised to full first).
template <class T, class K> void with_kind(Kind kind, const T* p, K&& k)
{
    switch (kind) {
    case Kind::scalar:
        k(kernel::Bcast<T>{p[0]});
        break;
    case Kind::suffix:
        k(Row<T>{p});
        break;
    default:
        k(Full<T>{p});
        break;
    }
}

/// A plan's kernel arguments (Plan::args): plain data, so that a kernel compiled apart (the
/// wide SIMD copy of the elementwise ops) can be handed them.
template <class T> struct Args {
    /// Output elements.
    std::size_t n;
    /// Output elements per repeat of a suffix input (1 when there is none).
    std::size_t m;
    /// How a is read.
    Kind ka;
    /// How b is read.
    Kind kb;
    /// The data of a and b (full-size copies in the general case).
    const T* a;
    /// See a.
    const T* b;
};

/// dst (=|+=) f(pre..., a, b) over the output, each `pre` output-sized.
template <class T, class F, class... Pre> void eval(const Args<T>& p, bool add, T* dst, F f, Pre... pre)
{
    with_kind(p.ka, p.a, [&](auto wa) {
        with_kind(p.kb, p.b, [&](auto wb) { run(add, p.n, p.m, dst, f, Full<T>{pre}..., wa, wb); });
    });
}

/// How two inputs of a binary op map onto their broadcast output: the shape, each input's
/// kind, the row length, and materialised copies of inputs in the general case.
template <class T> struct Plan {
    /// The broadcast output shape.
    Shape shape;
    /// Number of output elements.
    std::size_t n = 0;
    /// Row length of a suffix input (1 when there is none).
    std::size_t m = 1;
    ///@{
    /// How input a (ka) and input b (kb) map onto the output.
    Kind ka = Kind::full, kb = Kind::full;
    ///@}
    /// Input a's data (or its materialised copy).
    const T* a = nullptr;
    /// Input b's data (or its materialised copy).
    const T* b = nullptr;
    ///@{
    /// Inputs repeated out to the output's shape, only in the general case.
    std::optional<xt::xarray<T>> a_full, b_full;  // only in the general case
    ///@}

    /// Plans a op b; throws tg::Error naming `op` and both shapes when they do not broadcast. The arrays must
    /// outlive the plan.
    Plan(const char* op, const xt::xarray<T>& xa, const xt::xarray<T>& xb)
    {
        a = xa.data();
        b = xb.data();
        if (tg::detail::shapes_equal(xa.shape(), xb.shape())) {
            shape = xa.shape();
            n = xa.size();
            return;
        }
        shape = broadcast::shape(op, xa.shape(), xb.shape());
        n = 1;
        for (auto d : shape) n *= d;
        ka = classify(xa.shape(), xa.size(), shape, n);
        kb = classify(xb.shape(), xb.size(), shape, n);
        // Rare shapes such as [3, 1] with [1, 4]: make the awkward input full-size.
        if (ka == Kind::general) materialise_a(xa);
        if (kb == Kind::general) materialise_b(xb);
        if (ka == Kind::suffix && kb == Kind::suffix && xa.size() != xb.size()) {
            // Two different suffixes (e.g. [4] with [3, 4] inside [2, 3, 4]): make the shorter full.
            if (xa.size() < xb.size()) {
                materialise_a(xa);
            } else {
                materialise_b(xb);
            }
        }
        if (ka == Kind::suffix) m = xa.size();
        if (kb == Kind::suffix) m = xb.size();
    }

    /// dst (n elements) (=|+=) f(pre..., a, b) where each of `pre` is an output-sized
    /// array (e.g. the upstream gradient and the output).
    template <class F, class... Pre> void eval(bool add, T* dst, F f, Pre... pre) const
    {
        broadcast::eval(args(), add, dst, f, pre...);
    }

    /// What a kernel needs of the plan: the element counts, the kinds and the data.
    Args<T> args() const noexcept { return Args<T>{n, m, ka, kb, a, b}; }

private:
    void materialise_a(const xt::xarray<T>& xa)
    {
        a_full.emplace(xt::broadcast(xa, shape));
        a = a_full->data();
        ka = Kind::full;
    }
    void materialise_b(const xt::xarray<T>& xb)
    {
        b_full.emplace(xt::broadcast(xb, shape));
        b = b_full->data();
        kb = Kind::full;
    }
};

/// dst[to_shape] (=|+=) src[shape] broadcast to `to_shape` (numpy broadcast_to). The
/// caller checks broadcasts_to(shape, to_shape).
template <class T, class S1, class S2> void expand(const T* src, const S1& shape, T* dst, const S2& to_shape, bool add)
{
    std::size_t total = 1, m = 1;
    for (auto d : to_shape) total *= d;
    for (auto d : shape) m *= d;
    if (total == 0) return;
    switch (classify(shape, m, to_shape, total)) {
    case Kind::full:
        kernel::add_or_assign(dst, src, total, add);
        return;
    case Kind::scalar:
        kernel::map_to(
            add, total, dst, [](auto v) { return v; }, kernel::Bcast<T>{src[0]});
        return;
    case Kind::suffix:
        for (std::size_t off = 0; off < total; off += m) kernel::add_or_assign(dst + off, src, m, add);
        return;
    case Kind::general:
        break;
    }
    std::vector<std::size_t> s(shape.begin(), shape.end()), ts(to_shape.begin(), to_shape.end());
    const xt::xarray<T> full = xt::broadcast(xt::adapt(src, m, xt::no_ownership(), s), ts);
    kernel::add_or_assign(dst, full.data(), total, add);
}

/// Sums `full` (shaped `full_shape`, a broadcast of `shape`) back to `shape`: dst[shape]
/// (=|+=) the sum over the broadcast axes. The one implementation of "reduce a broadcast",
/// used for every gradient of a broadcast input and by sum_to. The caller checks
/// broadcasts_to(shape, full_shape).
template <class T, class S1, class S2>
void reduce(const T* full, const S1& full_shape, T* dst, const S2& shape, bool add)
{
    std::size_t total = 1, m = 1;
    for (auto d : full_shape) total *= d;
    for (auto d : shape) m *= d;
    if (m == 0) return;
    if (total == 0) {
        // A sum over nothing (an empty batch): zeros. Handled here for every kind, since
        // xtensor's reducer reads the first element of what it reduces, even when empty.
        if (!add) std::fill(dst, dst + m, T(0));
        return;
    }
    switch (classify(shape, m, full_shape, total)) {
    case Kind::full:  // same elements in the same order (shapes differ by leading 1s)
        kernel::add_or_assign(dst, full, m, add);
        return;
    case Kind::scalar: {
        const T s = kernel::sum(total, full);
        dst[0] = add ? dst[0] + s : s;
        return;
    }
    case Kind::suffix: {
        // Rows to be summed (the bias of a dense layer). Sum the rows first and add the
        // total once, so that adding the same gradient twice gives exactly twice.
        static thread_local std::vector<T> rows_sum;
        T* acc = dst;
        if (add) {
            rows_sum.resize(m);
            acc = rows_sum.data();
        }
        const std::size_t rows = total / m;
        kernel::add_or_assign(acc, full, m, false);
        for (std::size_t r = 1; r < rows; ++r) kernel::add_or_assign(acc, full + r * m, m, true);
        if (add) kernel::add_or_assign(dst, static_cast<const T*>(acc), m, true);
        return;
    }
    case Kind::general:
        break;
    }
    // E.g. [3, 1] broadcast to [3, 4]: sum over the broadcast axes.
    const std::size_t r_full = full_shape.size(), r_in = shape.size();
    std::vector<std::size_t> axes;
    for (std::size_t j = 0; j < r_full - r_in; ++j) axes.push_back(j);
    for (std::size_t j = 0; j < r_in; ++j) {
        if (shape[j] == 1 && full_shape[r_full - r_in + j] != 1) axes.push_back(r_full - r_in + j);
    }
    std::vector<std::size_t> fs(full_shape.begin(), full_shape.end());
    auto view = xt::adapt(full, total, xt::no_ownership(), fs);
    const xt::xarray<T> reduced = xt::sum(view, axes, xt::evaluation_strategy::immediate);
    kernel::add_or_assign(dst, reduced.data(), m, add);
}

}  // namespace tg::broadcast
