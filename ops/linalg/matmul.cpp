// ops/linalg/matmul.cpp — y [m, n] = op(a) [m, k] @ op(b) [k, n], op(x) = x or x^T
//   vjp (no transposes): grad_a = grad_out @ b^T,  grad_b = a^T @ grad_out
//   (with transposes the same products, transposed: each is again one matmul with flags,
//    so neither the fused kernel nor the rule ever materialises a transpose)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Matrix product of 2-D a [m, k] and b [k, n] -> [m, n].
/// Runs BLAS gemm above a small size, a plain loop below; a product with one output row
/// or column runs gemv.
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
/// op(a) @ op(b) with op(x) = x^T when the flag is set, the transpose folded into the
/// BLAS call instead of copied (what the derivative rules of matmul and linear use).
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b, bool transpose_a, bool transpose_b);
//! end

namespace {

struct Matmul {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    bool ta = false, tb = false;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        const std::size_t m = a.shape()[ta ? 1 : 0], k = a.shape()[ta ? 0 : 1], n = b.shape()[tb ? 0 : 1];
        blas::gemm(ta, tb, m, n, k, T(1), a.data(), a.shape()[1], b.data(), b.shape()[1], T(0), c.output({m, n}).data(),
                   n);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        const std::size_t m = a.shape()[ta ? 1 : 0], k = a.shape()[ta ? 0 : 1], n = b.shape()[tb ? 0 : 1];
        const std::size_t lda = a.shape()[1], ldb = b.shape()[1];
        const T* g = c.grad_out().data();
        c.add_grad(0, a.shape(), [&](T* dst, bool add) {
            if (!ta) {
                blas::gemm_to(dst, add, false, !tb, m, k, n, g, n, b.data(), ldb);  // g op(b)^T
            } else {
                blas::gemm_to(dst, add, tb, true, k, m, n, b.data(), ldb, g, n);  // op(b) g^T
            }
        });
        c.add_grad(1, b.shape(), [&](T* dst, bool add) {
            if (!tb) {
                blas::gemm_to(dst, add, !ta, false, k, n, m, a.data(), lda, g, n);  // op(a)^T g
            } else {
                blas::gemm_to(dst, add, true, ta, n, k, m, g, n, a.data(), lda);  // g^T op(a)
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        if (v.needs_grad(0)) v.add_grad(0, ta ? matmul(v.input(1), g, tb, true) : matmul(g, v.input(1), false, !tb));
        if (v.needs_grad(1)) v.add_grad(1, tb ? matmul(g, v.input(0), true, ta) : matmul(v.input(0), g, !ta, false));
    }
};

}  // namespace

template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b, bool transpose_a, bool transpose_b)
{
    const auto& sa = input_shape(TAPEGRAD_OP_NAME, a);
    const auto& sb = input_shape(TAPEGRAD_OP_NAME, b);
    if (sa.size() != 2 || sb.size() != 2) {
        throw Error(std::string(Matmul::name) + ": expected 2-D inputs, got a " + format_shape(sa) + " and b " +
                    format_shape(sb));
    }
    const std::size_t ka = sa[transpose_a ? 0 : 1], kb = sb[transpose_b ? 1 : 0];
    if (ka != kb) {
        throw Error(std::string(Matmul::name) + ": inner dimensions differ: a is " + format_shape(sa) +
                    (transpose_a ? " (transposed)" : "") + ", b is " + format_shape(sb) +
                    (transpose_b ? " (transposed)" : ""));
    }
    return record(Matmul{transpose_a, transpose_b}, a, b);
}

template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b)
{
    return matmul(a, b, false, false);
}

template Var<float> matmul<float>(const Var<float>&, const Var<float>&);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&);
template Var<float> matmul<float>(const Var<float>&, const Var<float>&, bool, bool);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&, bool, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    auto f = [](const auto& v) { return tg::matmul(v[0], v[1]); };
    auto ref = [](const auto& x) {
        const std::size_t m = x[0].shape()[0], k = x[0].shape()[1], n = x[1].shape()[1];
        xt::xarray<double> y = xt::zeros<double>({m, n});
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j)
                for (std::size_t p = 0; p < k; ++p) y(i, j) += x[0](i, p) * x[1](p, j);
        return y;
    };
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(3,4)@(4,2)", {u({3, 4}), u({4, 2})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(1,2)@(2,3)", {u({1, 2}), u({2, 3})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(1,1)@(1,1)", {u({1, 1}), u({1, 1})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(5,1)@(1,3)", {u({5, 1}), u({1, 3})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample(
                      "transposed (4,3)^T@(4,2)", {u({4, 3}), u({4, 2})},
                      [](const auto& v) { return tg::matmul(tg::transpose(v[0]), v[1]); },
                      [ref](const auto& x) {
                          return ref(std::vector<xt::xarray<double>>{xt::transpose(x[0]), x[1]});
                      })
                      .with_torch("x[0].T @ x[1]"));
    // Large enough for the BLAS path, and for gemv.
    out.push_back(
        tg::make_sample("(20,30)@(30,25) via BLAS", {u({20, 30}), u({30, 25})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(40,300)@(300,1) via gemv", {u({40, 300}), u({300, 1})}, f, ref));
    out.push_back(tg::make_sample("(1,300)@(300,40) via gemv", {u({1, 300}), u({300, 40})}, f, ref));
    // Transposes folded into the product.
    auto t = [](const xt::xarray<double>& x) { return xt::xarray<double>(xt::transpose(x)); };
    auto flags = [&](std::string label, std::vector<std::size_t> sa, std::vector<std::size_t> sb, bool ta, bool tb) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(sa), u(sb)},
                          [ta, tb](const auto& v) { return tg::matmul(v[0], v[1], ta, tb); },
                          [ref, t, ta, tb](const auto& x) {
                              return ref(std::vector<xt::xarray<double>>{ta ? t(x[0]) : x[0], tb ? t(x[1]) : x[1]});
                          })
                          .with_torch(std::string(ta ? "x[0].T" : "x[0]") + " @ " + (tb ? "x[1].T" : "x[1]")));
    };
    flags("(4,3)^T@(4,2) flag", {4, 3}, {4, 2}, true, false);
    flags("(3,4)@(2,4)^T flag", {3, 4}, {2, 4}, false, true);
    flags("(4,3)^T@(2,4)^T flag", {4, 3}, {2, 4}, true, true);
    flags("(30,20)^T@(25,30)^T via BLAS", {30, 20}, {25, 30}, true, true);
    flags("(300,40)^T@(1,300)^T via gemv", {300, 40}, {1, 300}, true, true);
    // The gemv samples are large: gradcheck covers them, the PyTorch reference file does not.
    for (auto& s : out) {
        if (s.label.find("via gemv") != std::string::npos) s.torch.clear();
    }
    return out;
}
