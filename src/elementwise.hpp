#pragma once
// Shared machinery of the elementwise ops: numpy broadcasting, the fast paths that cover
// nearly every real call (same shape, a scalar, a trailing-dims suffix such as a bias),
// and the reduction of gradients back to each input's shape.

#include <optional>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbroadcast.hpp>

#include "kernels.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/op.hpp"

namespace tg::ew {

using Shape = xt::xarray<double>::shape_type;

/// The numpy broadcast of two shapes; throws `<op>: shapes cannot be broadcast together`.
template <class S> Shape broadcast_shape(const char* op, const S& a, const S& b)
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
    return out;
}

/// How one input maps onto the output of a broadcasting op.
enum class Kind {
    full,    ///< same elements in the same order as the output
    scalar,  ///< one element, broadcast everywhere
    suffix,  ///< equals the output's trailing dims: repeated once per output row
    general  ///< anything else: materialised with xtensor
};

template <class S> Kind classify(const S& in, std::size_t in_size, const Shape& out, std::size_t out_size)
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
template <class T> struct Full {
    const T* p;
};
template <class T> struct Row {
    const T* p;
};

template <class T> inline const T* at(Full<T> a, std::size_t off) noexcept
{
    return a.p + off;
}
template <class T> inline const T* at(Row<T> a, std::size_t) noexcept
{
    return a.p;
}
template <class T> inline kernel::Bcast<T> at(kernel::Bcast<T> a, std::size_t) noexcept
{
    return a;
}

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

/// Everything a binary op needs to run its kernels: the broadcast shape, each input's
/// kind, the row length, and materialised copies of inputs in the general case.
template <class T> struct Binary {
    Shape shape;
    std::size_t n = 0;
    std::size_t m = 1;
    Kind ka = Kind::full, kb = Kind::full;
    const T* a = nullptr;
    const T* b = nullptr;
    std::optional<xt::xarray<T>> a_full, b_full;  // only in the general case

    Binary(const xt::xarray<T>& xa, const xt::xarray<T>& xb)
    {
        a = xa.data();
        b = xb.data();
        if (xa.shape() == xb.shape()) {
            shape = xa.shape();
            n = xa.size();
            return;
        }
        shape = broadcast_shape("broadcast", xa.shape(), xb.shape());
        n = 1;
        for (auto d : shape) n *= d;
        ka = classify(xa.shape(), xa.size(), shape, n);
        kb = classify(xb.shape(), xb.size(), shape, n);
        if (ka == Kind::general || kb == Kind::general) {
            // Rare shapes such as [3, 1] with [1, 4]: make the awkward input full-size.
            if (ka == Kind::general) {
                a_full.emplace(xt::broadcast(xa, shape));
                a = a_full->data();
                ka = Kind::full;
            }
            if (kb == Kind::general) {
                b_full.emplace(xt::broadcast(xb, shape));
                b = b_full->data();
                kb = Kind::full;
            }
        }
        if (ka == Kind::suffix) m = xa.size();
        if (kb == Kind::suffix) m = xb.size();
        if (ka == Kind::suffix && kb == Kind::suffix && xa.size() != xb.size()) {
            // Two different suffixes (e.g. [4] with [3, 4] inside [2, 3, 4]): make the shorter full.
            if (xa.size() < xb.size()) {
                a_full.emplace(xt::broadcast(xa, shape));
                a = a_full->data();
                ka = Kind::full;
            } else {
                b_full.emplace(xt::broadcast(xb, shape));
                b = b_full->data();
                kb = Kind::full;
            }
            m = ka == Kind::suffix ? xa.size() : xb.size();
        }
    }

    /// dst (n elements) (=|+=) f(extra..., a, b, tail...) where `extra` and `tail` are
    /// output-sized arrays (e.g. the upstream gradient and the output).
    template <class F, class... Pre> void eval(bool add, T* dst, F f, Pre... pre) const
    {
        with_kind(ka, a, [&](auto wa) {
            with_kind(kb, b, [&](auto wb) { run(add, n, m, dst, f, Full<T>{pre}..., wa, wb); });
        });
    }
};

template <class T> std::vector<T>& tmp_buffer()
{
    static thread_local std::vector<T> buf;
    return buf;
}

/// Forward of a broadcasting binary op: out = f(a, b).
template <class T, class F> void binary_forward(Ctx<T>& c, F f)
{
    const Binary<T> p(c.input(0), c.input(1));
    auto& y = c.out();
    if (y.shape() != p.shape) y.resize(p.shape);
    p.eval(false, y.data(), f);
}

/// Backward of a broadcasting binary op: grad_a = fa(grad_out, a, b), grad_b = fb(grad_out,
/// a, b), each reduced to its input's shape. Functors take (g, a, b) and may read the
/// output through `y` when passed `with_output`.
template <class T, class FA, class FB> void binary_backward(Ctx<T>& c, FA fa, FB fb)
{
    const Binary<T> p(c.input(0), c.input(1));
    const T* g = c.grad_out().data();
    for (std::size_t i = 0; i < 2; ++i) {
        if (!c.needs_grad(i)) continue;
        const bool direct = c.input(i).size() == p.n;
        auto compute = [&](bool add, T* dst) {
            if (i == 0) {
                p.eval(add, dst, fa, g);
            } else {
                p.eval(add, dst, fb, g);
            }
        };
        if (direct) {
            GradSlot<T> s = c.grad_slot(i);
            compute(s.add, s.data);
        } else {
            auto& buf = tmp_buffer<T>();
            buf.resize(p.n);
            compute(false, buf.data());
            c.accumulate_full(i, buf.data(), p.shape);
        }
    }
}

/// Forward of a unary op: out = f(x).
template <class T, class F> void unary_forward(Ctx<T>& c, F f)
{
    const auto& x = c.input(0);
    auto& y = c.out();
    if (y.shape() != x.shape()) y.resize(x.shape());
    kernel::map<false>(x.size(), y.data(), f, x.data());
}

/// Backward of a unary op: grad_x (=|+=) f(grad_out, x, y).
template <class T, class F> void unary_backward(Ctx<T>& c, F f)
{
    if (!c.needs_grad(0)) return;
    GradSlot<T> s = c.grad_slot(0);
    kernel::map_to(s.add, c.input(0).size(), s.data, f, c.grad_out().data(), c.input(0).data(), c.out().data());
}

}  // namespace tg::ew
