// ops/elementwise/masked_fill.cpp — y = value where mask, x elsewhere (Tensor.masked_fill), for
//   a bool mask that broadcasts to x's shape; y has x's shape.
//   vjp: grad_x = grad_out where the mask is false, 0 where it is true
// The mask is repeated out to x's shape once, at entry, and owned by the op (its backward
// and rule read it), so no loop ever broadcasts a bool array (see broadcast::materialise).
// value may be +-inf (the usual -inf before a softmax): it never reaches a gradient.

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x with `value` written where the mask (broadcast to x's shape) is true (Tensor.masked_fill).
template <class T> Var<T> masked_fill(const Var<T>& x, const xt::xarray<bool>& mask, detail::scalar_t<T> value);
//! end

namespace {

struct MaskedFill {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    xt::xarray<bool> mask;  // of x's shape
    double value;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* px = x.data();
        const bool* m = mask.data();
        const auto v = static_cast<T>(value);
        T* y = c.output(x.shape()).data();
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = m[i] ? v : px[i];
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const T* g = c.grad_out().data();
        const bool* m = mask.data();
        const std::size_t n = mask.size();
        c.add_grad(0, c.input(0).shape(), [&](T* dst, bool add) {
            for (std::size_t i = 0; i < n; ++i) {
                const T v = m[i] ? T(0) : g[i];
                dst[i] = add ? dst[i] + v : v;
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const { v.add_grad(0, tg::where(mask, T(0), v.grad_out())); }
};

}  // namespace

template <class T> Var<T> masked_fill(const Var<T>& x, const xt::xarray<bool>& mask, detail::scalar_t<T> value)
{
    const char* op = MaskedFill::name;
    const auto& s = input_shape(op, x);
    bool fits = mask.dimension() <= s.size();
    for (std::size_t j = 0; fits && j < mask.dimension(); ++j) {
        const std::size_t d = mask.shape()[mask.dimension() - 1 - j];
        fits = d == 1 || d == s[s.size() - 1 - j];
    }
    if (!fits) {
        throw Error(std::string(op) + ": mask " + format_shape(mask.shape()) + " does not broadcast to x " +
                    format_shape(s));
    }
    if (detail::shapes_equal(mask.shape(), s)) return record(MaskedFill{mask, static_cast<double>(value)}, x);
    return record(MaskedFill{broadcast::materialise(mask, s), static_cast<double>(value)}, x);
}

template Var<float> masked_fill<float>(const Var<float>&, const xt::xarray<bool>&, float);
template Var<double> masked_fill<double>(const Var<double>&, const xt::xarray<bool>&, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, const xt::xarray<bool>& mask, double value) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [mask, value](const auto& v) { return tg::masked_fill(v[0], mask, value); },
                          [mask, value](const auto& x) {
                              // The mask repeated out by xtensor in double (never as bools), then a plain loop.
                              xt::xarray<double> md = xt::xarray<double>::from_shape(mask.shape());
                              for (std::size_t i = 0; i < mask.size(); ++i) md.data()[i] = mask.data()[i] ? 1 : 0;
                              const xt::xarray<double> full = xt::broadcast(md, x[0].shape());
                              xt::xarray<double> y = x[0];
                              for (std::size_t i = 0; i < y.size(); ++i) {
                                  if (full.data()[i] != 0) y.data()[i] = value;
                              }
                              return y;
                          })
                          .with_torch("x[0].masked_fill(" + tg::samples::torch_literal(mask) + ", " +
                                      tg::samples::torch_scalar(value) + ")"));
    };
    {
        const xt::xarray<bool> m = u({3, 4}) > 0.0;
        sample("(3,4) mask (3,4)", {3, 4}, m, 0.5);
    }
    {
        const xt::xarray<bool> m = u({4}) > 0.0;
        sample("(3,4) mask (4,)", {3, 4}, m, -1.25);
    }
    {
        const xt::xarray<bool> m = u({2, 1, 5}) > 0.0;
        sample("(2,3,5) mask (2,1,5)", {2, 3, 5}, m, 0.0);
    }
    sample("(2,3) mask () true", {2, 3}, xt::xarray<bool>(true), 3.0);
    sample("() mask () false", {}, xt::xarray<bool>(false), 3.0);
    sample("(0,3) empty mask (3,)", {0, 3}, xt::xarray<bool>{true, false, true}, 1.0);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    return {tg::make_error_input(
                "mask (3,) for (2,4)", {ones({2, 4})},
                [](const auto& v) {
                    return tg::masked_fill(v[0], xt::xarray<bool>{true, false, true}, 0.0);
                },
                "mask [3] does not broadcast to x [2, 4]"),
            tg::make_error_input(
                "mask (2,1,4) for (1,4)", {ones({1, 4})},
                [](const auto& v) {
                    return tg::masked_fill(v[0], xt::xarray<bool>(xt::ones<bool>({2, 1, 4})), 0.0);
                },
                "mask [2, 1, 4] does not broadcast to x [1, 4]")};
}
