// ops/matmul.cpp — y [m, n] = a [m, k] @ b [k, n]
//   backward: grad_a [m, k] = grad_out [m, n] @ b^T      (gemm with b transposed in the call)
//             grad_b [k, n] = a^T @ grad_out [m, n]      (gemm with a transposed in the call)

#include "op_common.hpp"

namespace tg {
namespace {

struct Matmul {
    static constexpr const char* name = "matmul";
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
        auto& y = c.out();
        if (y.dimension() != 2 || y.shape()[0] != m || y.shape()[1] != n) y.resize({m, n});
        blas::gemm(false, false, m, n, k, T(1), a.data(), k, b.data(), n, T(0), y.data(), n);
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
        const T* g = c.grad_out().data();
        if (c.needs_grad(0)) {
            ew::gemm_grad(c.grad_slot(0), false, true, m, k, n, g, n, b.data(), n);
        }
        if (c.needs_grad(1)) {
            ew::gemm_grad(c.grad_slot(1), true, false, k, n, m, a.data(), k, g, n);
        }
    }
};

}  // namespace

template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b)
{
    const auto& sa = a.shape();
    const auto& sb = b.shape();
    if (sa.size() != 2 || sb.size() != 2) {
        throw Error("matmul: expected 2-D inputs, got a " + format_shape(sa) + " and b " + format_shape(sb));
    }
    if (sa[1] != sb[0]) {
        throw Error("matmul: inner dimensions differ: a is " + format_shape(sa) + ", b is " + format_shape(sb));
    }
    return record(Matmul{}, a, b);
}

template Var<float> matmul<float>(const Var<float>&, const Var<float>&);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(matmul)
{
    return {"matmul", [](std::mt19937_64& rng) {
                auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
                auto f = [](const auto& v) { return tg::matmul(v[0], v[1]); };
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(3,4)@(4,2)", {u({3, 4}), u({4, 2})}, f));
                out.push_back(tg::make_sample("(1,2)@(2,3)", {u({1, 2}), u({2, 3})}, f));
                out.push_back(tg::make_sample("(1,1)@(1,1)", {u({1, 1}), u({1, 1})}, f));
                out.push_back(tg::make_sample("(5,1)@(1,3)", {u({5, 1}), u({1, 3})}, f));
                out.push_back(tg::make_sample("transposed (4,3)^T@(4,2)", {u({4, 3}), u({4, 2})},
                                              [](const auto& v) { return tg::matmul(tg::transpose(v[0]), v[1]); }));
                // Large enough for the BLAS path.
                out.push_back(tg::make_sample("(20,30)@(30,25) via BLAS", {u({20, 30}), u({30, 25})}, f));
                return out;
            }};
}
