// ops/shape/transpose.cpp — y [n, m] = x [m, n]^T
//   vjp: grad_x = transpose(grad_out)
// The result is a new row-major array: matmul folds transposes into gemm, so a copy here
// only happens when a program asks for one explicitly.

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Transpose of a 2-D Var; transpose(x, dim0, dim1) swaps two axes of an N-D Var.
template <class T> Var<T> transpose(const Var<T>& x);
/// x with axes dim0 and dim1 swapped (negative axes count from the end; a permute).
template <class T> Var<T> transpose(const Var<T>& x, std::ptrdiff_t dim0, std::ptrdiff_t dim1);
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

template <class T> Var<T> transpose(const Var<T>& x, std::ptrdiff_t dim0, std::ptrdiff_t dim1)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(Transpose::name, s, dim0);
    const std::size_t b = axis::resolve(Transpose::name, s, dim1);
    std::vector<std::size_t> dims(s.size());
    for (std::size_t i = 0; i < dims.size(); ++i) dims[i] = i;
    std::swap(dims[a], dims[b]);
    return permute(x, dims);
}

TAPEGRAD_INSTANTIATE_UNARY(transpose)
template Var<float> transpose<float>(const Var<float>&, std::ptrdiff_t, std::ptrdiff_t);
template Var<double> transpose<double>(const Var<double>&, std::ptrdiff_t, std::ptrdiff_t);

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
    auto u = [&](std::vector<std::size_t> shape) { return tg::sample_uniform(rng, shape, -1.0, 1.0); };
    out.push_back(tg::make_sample(
                      "(2,3,4) dims 1,2", {u({2, 3, 4})}, [](const auto& v) { return tg::transpose(v[0], 1, 2); },
                      [](const auto& x) {
                          return xt::xarray<double>(xt::transpose(x[0], {0, 2, 1}));
                      })
                      .with_torch("x[0].transpose(1, 2)"));
    out.push_back(tg::make_sample(
                      "(2,3,4) dims -1,0", {u({2, 3, 4})}, [](const auto& v) { return tg::transpose(v[0], -1, 0); },
                      [](const auto& x) {
                          return xt::xarray<double>(xt::transpose(x[0], {2, 1, 0}));
                      })
                      .with_torch("x[0].transpose(-1, 0)"));
    out.push_back(tg::make_sample(
                      "(0,3) dims 0,1", {u({0, 3})}, [](const auto& v) { return tg::transpose(v[0], 0, 1); },
                      [](const auto& x) { return xt::xarray<double>(xt::transpose(x[0])); })
                      .with_torch("x[0].transpose(0, 1)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors =
        tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::transpose(x, 0, axis); });
    errors.pop_back();  // axis 0 of a rank-0 input is refused first
    errors.push_back(tg::make_error_input(
        "dim0 out of range", {xt::ones<double>({2, 3})}, [](const auto& v) { return tg::transpose(v[0], 2, 0); },
        "axis 2 is out of range for shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "2-D form of a (2,3,4) input", {xt::ones<double>({2, 3, 4})}, [](const auto& v) { return tg::transpose(v[0]); },
        "expected a 2-D Var, got shape [2, 3, 4]"));
    errors.push_back(tg::make_error_input(
        "2-D form of a (3,) input", {xt::ones<double>({3})}, [](const auto& v) { return tg::transpose(v[0]); },
        "expected a 2-D Var, got shape [3]"));
    return errors;
}
