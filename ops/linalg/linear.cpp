// ops/linalg/linear.cpp — y [..., out] = x [..., in] @ w [in, out] + b [out], any leading dims
//   (none: x [in] gives y [out]); below, x and grad_out are seen as rows [batch, in], [batch, out]
//   with batch the product of the leading dims (their memory is already laid out so)
//   vjp: grad_x [batch, in] = grad_out @ w^T      (matmul with the transpose folded in)
//        grad_w [in, out]   = x^T @ grad_out
//        grad_b [out]       = grad_out summed over the batch (the kit's broadcast reduction)
// One entry for a dense layer instead of matmul + add: half the tape overhead, and the
// bias is written into y before gemm accumulates onto it (beta = 1), so no temporary. One
// gemm for all the leading dims, not one per matrix.

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x @ w + b for x [..., in] (any leading dims), w [in, out], b [out]: y [..., out], one tape entry instead of two.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b);
//! end

namespace {

struct Linear {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& w = c.input(1);
        const auto& b = c.input(2);
        const std::size_t in = w.shape()[0], out = w.shape()[1], batch = rows(x.shape());
        // A dense layer's 2-D input takes the short path: this runs on every step.
        T* py = __builtin_expect(x.dimension() == 2, 1) ? c.output({batch, out}).data() : nd_output(c, x, out);
        for (std::size_t r = 0; r < batch; ++r) std::copy(b.data(), b.data() + out, py + r * out);
        blas::gemm(false, false, batch, out, in, T(1), x.data(), in, w.data(), out, T(1), py, out);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& w = c.input(1);
        const std::size_t in = w.shape()[0], out = w.shape()[1], batch = rows(x.shape());
        const auto& g = c.grad_out();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            blas::gemm_to(dst, add, false, true, batch, in, out, g.data(), out, w.data(), out);
        });
        c.add_grad(1, w.shape(), [&](T* dst, bool add) {
            blas::gemm_to(dst, add, true, false, in, out, batch, x.data(), in, g.data(), out);
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
        if (xs.size() == 2) {
            if (v.needs_grad(0)) v.add_grad(0, matmul(g, v.input(1), false, true));
            if (v.needs_grad(1)) v.add_grad(1, matmul(v.input(0), g, true, false));
        } else {
            // Other ranks as the rows the kernels see.
            const std::size_t in = v.input_shape(1)[0], out = v.input_shape(1)[1], batch = rows(xs);
            const Var<T> g2 = reshape(g, {batch, out});
            if (v.needs_grad(0)) {
                v.add_grad(
                    0, reshape(matmul(g2, v.input(1), false, true), std::vector<std::size_t>(xs.begin(), xs.end())));
            }
            if (v.needs_grad(1)) v.add_grad(1, matmul(reshape(v.input(0), {batch, in}), g2, true, false));
        }
        v.add_grad(2, g);
    }

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

}  // namespace

template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b)
{
    const auto& sx = input_shape(TAPEGRAD_OP_NAME, x);
    const auto& sw = input_shape(TAPEGRAD_OP_NAME, w);
    const auto& sb = input_shape(TAPEGRAD_OP_NAME, b);
    if (sx.empty() || sw.size() != 2) {
        throw Error(std::string(Linear::name) + ": expected x [..., in] and a 2-D w [in, out], got x " +
                    format_shape(sx) + " and w " + format_shape(sw));
    }
    if (sx.back() != sw[0]) {
        throw Error(std::string(Linear::name) + ": inner dimensions differ: x is " + format_shape(sx) + ", w is " +
                    format_shape(sw));
    }
    if (sb.size() != 1 || sb[0] != sw[1]) {
        throw Error(std::string(Linear::name) + ": bias must have shape [" + std::to_string(sw[1]) + "] to match w " +
                    format_shape(sw) + ", got " + format_shape(sb));
    }
    return record(Linear{}, x, w, b);
}

template Var<float> linear<float>(const Var<float>&, const Var<float>&, const Var<float>&);
template Var<double> linear<double>(const Var<double>&, const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    auto f = [](const auto& v) { return tg::linear(v[0], v[1], v[2]); };
    auto ref = [](const auto& x) {  // row by row over the leading dims
        const std::size_t in = x[1].shape()[0], out = x[1].shape()[1], batch = x[0].size() / in;
        std::vector<std::size_t> shape(x[0].shape().begin(), x[0].shape().end());
        shape.back() = out;
        xt::xarray<double> y = xt::zeros<double>(shape);
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t j = 0; j < out; ++j) {
                double acc = x[2](j);
                for (std::size_t p = 0; p < in; ++p) acc += x[0].data()[i * in + p] * x[1](p, j);
                y.data()[i * out + j] = acc;
            }
        return y;
    };
    std::vector<tg::OpSample> out;
    out.push_back(
        tg::make_sample("(1,2)x(2,3)+(3,)", {u({1, 2}), u({2, 3}), u({3})}, f, ref).with_torch("x[0] @ x[1] + x[2]"));
    out.push_back(
        tg::make_sample("(4,3)x(3,2)+(2,)", {u({4, 3}), u({3, 2}), u({2})}, f, ref).with_torch("x[0] @ x[1] + x[2]"));
    out.push_back(tg::make_sample("(16,24)x(24,30)+(30,) via BLAS", {u({16, 24}), u({24, 30}), u({30})}, f, ref)
                      .with_torch("x[0] @ x[1] + x[2]"));
    // Leading dims of any number, as torch.nn.functional.linear (whose weight is w^T).
    out.push_back(tg::make_sample("(2,3,4)x(4,5)+(5,) 3-D", {u({2, 3, 4}), u({4, 5}), u({5})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(2,1,3,2)x(2,3)+(3,) 4-D", {u({2, 1, 3, 2}), u({2, 3}), u({3})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(4,6,20)x(20,24)+(24,) 3-D via BLAS", {u({4, 6, 20}), u({20, 24}), u({24})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(3,)x(3,2)+(2,) 1-D", {u({3}), u({3, 2}), u({2})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(0,3,2)x(2,3)+(3,) empty", {u({0, 3, 2}), u({2, 3}), u({3})}, f, ref));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto f = [](const auto& v) { return tg::linear(v[0], v[1], v[2]); };
    return {tg::make_error_input("x (2,3) with w (4,2)", {ones({2, 3}), ones({4, 2}), ones({2})}, f,
                                 "inner dimensions differ: x is [2, 3], w is [4, 2]"),
            tg::make_error_input("x (2,5,3) with w (4,2)", {ones({2, 5, 3}), ones({4, 2}), ones({2})}, f,
                                 "inner dimensions differ: x is [2, 5, 3], w is [4, 2]"),
            tg::make_error_input("x () of rank 0", {ones({}), ones({3, 2}), ones({2})}, f,
                                 "expected x [..., in] and a 2-D w [in, out], got x [] and w [3, 2]"),
            tg::make_error_input("w (2,3,4) of rank 3", {ones({2, 2}), ones({2, 3, 4}), ones({4})}, f,
                                 "got x [2, 2] and w [2, 3, 4]"),
            tg::make_error_input("bias (3,) for w (3,2)", {ones({2, 3}), ones({3, 2}), ones({3})}, f,
                                 "bias must have shape [2] to match w [3, 2], got [3]"),
            tg::make_error_input("bias (1,2) for w (3,2)", {ones({2, 3}), ones({3, 2}), ones({1, 2})}, f,
                                 "bias must have shape [2] to match w [3, 2], got [1, 2]")};
}
