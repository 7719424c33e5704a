// ops/shape/transpose.cpp — y [n, m] = x [m, n]^T
//   vjp: grad_x = transpose(grad_out)
// The result is a new row-major array: matmul folds transposes into gemm, so a copy here
// only happens when a program asks for one explicitly.

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Transpose of a 2-D Var.
template <class T> Var<T> transpose(const Var<T>& x);
//! end

namespace {

template <class T> void transpose_into(std::size_t m, std::size_t n, const T* x, T* y, bool add)
{
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            if (add) {
                y[j * m + i] += x[i * n + j];
            } else {
                y[j * m + i] = x[i * n + j];
            }
        }
    }
}

struct Transpose {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t m = x.shape()[0], n = x.shape()[1];
        transpose_into(m, n, x.data(), c.output({n, m}).data(), false);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t m = x.shape()[0], n = x.shape()[1];
        c.add_grad(0, x.shape(), [&](T* dst, bool add) { transpose_into(n, m, c.grad_out().data(), dst, add); });
    }
    template <class T> void vjp(VjpContext<T>& v) const { v.add_grad(0, transpose(v.grad_out())); }
};

}  // namespace

template <class T> Var<T> transpose(const Var<T>& x)
{
    if (input_shape(TAPEGRAD_OP_NAME, x).size() != 2)
        throw Error(std::string(Transpose::name) + ": expected a 2-D Var, got shape " +
                    format_shape(input_shape(TAPEGRAD_OP_NAME, x)));
    return record(Transpose{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(transpose)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto f = [](const auto& v) { return tg::transpose(v[0]); };
    auto ref = [](const auto& x) { return xt::xarray<double>(xt::transpose(x[0])); };
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(3,4)", {tg::sample_uniform(rng, {3, 4}, -1.0, 1.0)}, f, ref).with_torch("x[0].T"));
    out.push_back(tg::make_sample("(1,5)", {tg::sample_uniform(rng, {1, 5}, -1.0, 1.0)}, f, ref).with_torch("x[0].T"));
    out.push_back(tg::make_sample("(1,1)", {tg::sample_uniform(rng, {1, 1}, -1.0, 1.0)}, f, ref).with_torch("x[0].T"));
    out.push_back(tg::make_sample(
                      "twice (2,3)", {tg::sample_uniform(rng, {2, 3}, -1.0, 1.0)},
                      [](const auto& v) { return tg::transpose(tg::transpose(v[0])); },
                      [](const auto& x) { return x[0]; })
                      .with_torch("x[0].T.T"));
    return out;
}
