#pragma once
// What linear (w [in, out]) and linear_t (w [out, in], torch's layout) share: one tape entry
// for x @ W + b with W = w or w^T. The bias is written into y before gemm accumulates onto
// it (beta = 1), so no temporary; one gemm for all the leading dims of x, seen as rows
// [batch, in] (their memory is already laid out so).

#include <algorithm>
#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::dense_layer {

/// The op's forward, kernel and vjp rule; OutIn: w is [out, in] (else [in, out]).
template <bool OutIn> struct Kernels {
    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& w = c.input(1);
        const auto& b = c.input(2);
        const std::size_t in = in_of(w.shape()), out = out_of(w.shape()), batch = rows(x.shape());
        // A dense layer's 2-D input takes the short path: this runs on every step.
        T* py = __builtin_expect(x.dimension() == 2, 1) ? c.output({batch, out}).data() : nd_output(c, x, out);
        for (std::size_t r = 0; r < batch; ++r) std::copy(b.data(), b.data() + out, py + r * out);
        blas::gemm(false, OutIn, batch, out, in, T(1), x.data(), in, w.data(), OutIn ? in : out, T(1), py, out);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& w = c.input(1);
        const std::size_t in = in_of(w.shape()), out = out_of(w.shape()), batch = rows(x.shape());
        const auto& g = c.grad_out();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {  // g @ W^T
            blas::gemm_to(dst, add, false, !OutIn, batch, in, out, g.data(), out, w.data(), OutIn ? in : out);
        });
        c.add_grad(1, w.shape(), [&](T* dst, bool add) {  // x^T @ g, or its transpose g^T @ x
            if constexpr (OutIn) {
                blas::gemm_to(dst, add, true, false, out, in, batch, g.data(), out, x.data(), in);
            } else {
                blas::gemm_to(dst, add, true, false, in, out, batch, x.data(), in, g.data(), out);
            }
        });
        // grad_out's rows, summed straight into the bias: the first row assigned (or added,
        // for a batch of one), the others added; several rows onto an existing gradient
        // go through the kit's reduction, which sums them first.
        const auto& bias_shape = c.input(2).shape();
        c.add_grad(2, bias_shape, [&](T* dst, bool add) {
            if (add && batch != 1) {
                broadcast::reduce(g.data(), g.shape(), dst, bias_shape, true);
                return;
            }
            if (batch == 0) {
                std::fill_n(dst, out, T(0));  // not reached with add (batch != 1)
                return;
            }
            kernel::add_or_assign(dst, g.data(), out, add);
            for (std::size_t r = 1; r < batch; ++r) kernel::add_or_assign(dst, g.data() + r * out, out, true);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        const auto& xs = v.input_shape(0);
        const Var<T>& w = v.input(1);
        // Other ranks than 2 as the rows the kernels see.
        const std::size_t in = in_of(v.input_shape(1)), out = out_of(v.input_shape(1)), batch = rows(xs);
        const bool flat = xs.size() == 2;
        const Var<T> g2 = flat ? g : reshape(g, {batch, out});
        if (v.needs_grad(0)) {
            const Var<T> gx = matmul(g2, w, false, !OutIn);
            v.add_grad(0, flat ? gx : reshape(gx, std::vector<std::size_t>(xs.begin(), xs.end())));
        }
        if (v.needs_grad(1)) {
            const Var<T> x2 = flat ? v.input(0) : reshape(v.input(0), {batch, in});
            v.add_grad(1, OutIn ? matmul(g2, x2, true, false) : matmul(x2, g2, true, false));
        }
        v.add_grad(2, g);
    }

    template <class S> static std::size_t in_of(const S& ws) { return ws[OutIn ? 1 : 0]; }
    template <class S> static std::size_t out_of(const S& ws) { return ws[OutIn ? 0 : 1]; }
    // The product of the leading dims (no division: this is on the path of every step).
    template <class S> static std::size_t rows(const S& xs)
    {
        if (xs.size() == 2) return xs[0];
        std::size_t n = 1;
        for (std::size_t j = 0; j + 1 < xs.size(); ++j) n *= xs[j];
        return n;
    }
    template <class T, class A>
    __attribute__((noinline)) static T* nd_output(OpContext<T>& c, const A& x, std::size_t out)
    {
        auto s = x.shape();  // a small vector: no allocation up to rank 4
        s.back() = out;
        return c.output(s).data();
    }
};

/// Checks x [..., in], w ([in, out], or [out, in] when OutIn) and b [out] for the op `name`.
template <bool OutIn, class SX, class SW, class SB>
void check(const char* name, const SX& sx, const SW& sw, const SB& sb)
{
    const char* layout = OutIn ? "[out, in]" : "[in, out]";
    if (sx.empty() || sw.size() != 2) {
        throw Error(std::string(name) + ": expected x [..., in] and a 2-D w " + layout + ", got x " + format_shape(sx) +
                    " and w " + format_shape(sw));
    }
    const std::size_t in = sw[OutIn ? 1 : 0], out = sw[OutIn ? 0 : 1];
    if (sx.back() != in) {
        throw Error(std::string(name) + ": inner dimensions differ: x is " + format_shape(sx) + ", w is " +
                    format_shape(sw) + (OutIn ? " (w is [out, in])" : ""));
    }
    if (sb.size() != 1 || sb[0] != out) {
        throw Error(std::string(name) + ": bias must have shape [" + std::to_string(out) + "] to match w " +
                    format_shape(sw) + ", got " + format_shape(sb));
    }
}

/// Checks the inputs (as check) and records the op Op on them.
template <class Op, bool OutIn, class T> Var<T> checked_record(const Var<T>& x, const Var<T>& w, const Var<T>& b)
{
    check<OutIn>(Op::name, input_shape(Op::name, x), input_shape(Op::name, w), input_shape(Op::name, b));
    return record(Op{}, x, w, b);
}

/// The samples' plain reference: x @ W + b row by row over the leading dims, W = w or w^T.
template <bool OutIn> xt::xarray<double> reference(const std::vector<xt::xarray<double>>& x)
{
    const std::size_t in = x[1].shape()[OutIn ? 1 : 0], out = x[1].shape()[OutIn ? 0 : 1], batch = x[0].size() / in;
    std::vector<std::size_t> shape(x[0].shape().begin(), x[0].shape().end());
    shape.back() = out;
    xt::xarray<double> y = xt::zeros<double>(shape);
    for (std::size_t i = 0; i < batch; ++i)
        for (std::size_t j = 0; j < out; ++j) {
            double acc = x[2](j);
            for (std::size_t p = 0; p < in; ++p) acc += x[0].data()[i * in + p] * (OutIn ? x[1](j, p) : x[1](p, j));
            y.data()[i * out + j] = acc;
        }
    return y;
}

}  // namespace tg::dense_layer
