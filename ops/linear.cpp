// ops/linear.cpp — y [batch, out] = x [batch, in] @ w [in, out] + b [out]
//   backward: grad_x [batch, in] = grad_out @ w^T
//             grad_w [in, out]   = x^T @ grad_out
//             grad_b [out]       = grad_out summed over the batch
// One entry for a dense layer instead of matmul + add: half the tape overhead, and the
// bias is written into y before gemm accumulates onto it (beta = 1), so no temporary.

#include "op_common.hpp"

namespace tg {
namespace {

struct Linear {
    static constexpr const char* name = "linear";
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& w = c.input(1);
        const auto& b = c.input(2);
        const std::size_t batch = x.shape()[0], in = x.shape()[1], out = w.shape()[1];
        auto& y = c.out();
        if (y.dimension() != 2 || y.shape()[0] != batch || y.shape()[1] != out) y.resize({batch, out});
        T* py = y.data();
        for (std::size_t r = 0; r < batch; ++r) std::copy(b.data(), b.data() + out, py + r * out);
        blas::gemm(false, false, batch, out, in, T(1), x.data(), in, w.data(), out, T(1), py, out);
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& w = c.input(1);
        const std::size_t batch = x.shape()[0], in = x.shape()[1], out = w.shape()[1];
        const T* g = c.grad_out().data();
        if (c.needs_grad(0)) {
            ew::gemm_grad(c.grad_slot(0), false, true, batch, in, out, g, out, w.data(), out);
        }
        if (c.needs_grad(1)) {
            ew::gemm_grad(c.grad_slot(1), true, false, in, out, batch, x.data(), in, g, out);
        }
        if (c.needs_grad(2)) c.accumulate_full(2, g, c.grad_out().shape());
    }
};

}  // namespace

template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b)
{
    const auto& sx = x.shape();
    const auto& sw = w.shape();
    const auto& sb = b.shape();
    if (sx.size() != 2 || sw.size() != 2) {
        throw Error("linear: expected 2-D x [batch, in] and w [in, out], got x " + format_shape(sx) + " and w " +
                    format_shape(sw));
    }
    if (sx[1] != sw[0]) {
        throw Error("linear: inner dimensions differ: x is " + format_shape(sx) + ", w is " + format_shape(sw));
    }
    if (sb.size() != 1 || sb[0] != sw[1]) {
        throw Error("linear: bias must have shape [" + std::to_string(sw[1]) + "] to match w " + format_shape(sw) +
                    ", got " + format_shape(sb));
    }
    return record(Linear{}, x, w, b);
}

template Var<float> linear<float>(const Var<float>&, const Var<float>&, const Var<float>&);
template Var<double> linear<double>(const Var<double>&, const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(linear)
{
    return {
        "linear", [](std::mt19937_64& rng) {
            auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
            auto f = [](const auto& v) { return tg::linear(v[0], v[1], v[2]); };
            std::vector<tg::OpSample> out;
            out.push_back(tg::make_sample("(1,2)x(2,3)+(3,)", {u({1, 2}), u({2, 3}), u({3})}, f));
            out.push_back(tg::make_sample("(4,3)x(3,2)+(2,)", {u({4, 3}), u({3, 2}), u({2})}, f));
            out.push_back(tg::make_sample("(16,24)x(24,30)+(30,) via BLAS", {u({16, 24}), u({24, 30}), u({30})}, f));
            return out;
        }};
}
