// ops/shape/stack.cpp — y = x_0, x_1, ... (all the same shape) joined along a new axis
//   (an unsqueeze of each, then concat; their vjps)

#include "reshape_like.hpp"

namespace tg {

//! public
/// The Vars, all of one shape, joined along a new axis (torch.stack).
template <class T> Var<T> stack(const std::vector<Var<T>>& xs, std::ptrdiff_t axis);
//! end

template <class T> Var<T> stack(const std::vector<Var<T>>& xs, std::ptrdiff_t axis)
{
    if (xs.empty()) throw Error(std::string(TAPEGRAD_OP_NAME) + ": no inputs given");
    const auto& first = input_shape(TAPEGRAD_OP_NAME, xs[0]);
    const std::size_t a = axis::resolve(TAPEGRAD_OP_NAME, first, axis, 1);
    std::vector<Var<T>> parts;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const auto& s = input_shape(TAPEGRAD_OP_NAME, xs[i]);
        if (!detail::shapes_equal(s, first)) {
            throw Error(std::string(TAPEGRAD_OP_NAME) + ": input " + std::to_string(i) + " has shape " +
                        format_shape(s) + " but input 0 has " + format_shape(first) + "; all must be equal");
        }
        parts.push_back(unsqueeze(xs[i], static_cast<std::ptrdiff_t>(a)));
    }
    return concat(parts, static_cast<std::ptrdiff_t>(a));
}

template Var<float> stack<float>(const std::vector<Var<float>>&, std::ptrdiff_t);
template Var<double> stack<double>(const std::vector<Var<double>>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<xt::xarray<double>> in, std::ptrdiff_t a) {
        std::string args;
        for (std::size_t i = 0; i < in.size(); ++i) args += (i ? ", x[" : "x[") + std::to_string(i) + "]";
        out.push_back(tg::make_sample(
                          std::move(label), std::move(in), [a](const auto& v) { return tg::stack(v, a); },
                          [a](const auto& x) {
                              const auto rank = static_cast<std::ptrdiff_t>(x[0].dimension()) + 1;
                              const auto r = static_cast<std::size_t>(a < 0 ? a + rank : a);
                              std::vector<xt::xarray<double>> parts;
                              for (const auto& xi : x) parts.push_back(xt::expand_dims(xi, r));
                              xt::xarray<double> y = parts[0];
                              for (std::size_t i = 1; i < parts.size(); ++i)
                                  y = xt::concatenate(xt::xtuple(y, parts[i]), r);
                              return y;
                          })
                          .with_torch("torch.stack([" + args + "], dim=" + std::to_string(a) + ")"));
    };
    sample("2 x (3,) axis 0", {u({3}), u({3})}, 0);
    sample("3 x (2,3) axis 1", {u({2, 3}), u({2, 3}), u({2, 3})}, 1);
    sample("2 x (2,3) axis -1", {u({2, 3}), u({2, 3})}, -1);
    sample("2 x () axis 0", {u({}), u({})}, 0);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "no inputs", {}, [](const auto& v) { return tg::stack(std::decay_t<decltype(v)>{}, 0); },
                "no inputs given"),
            tg::make_error_input(
                "(2,3) and (3,2)", {x, xt::ones<double>({3, 2})}, [](const auto& v) { return tg::stack(v, 0); },
                "input 1 has shape [3, 2] but input 0 has [2, 3]; all must be equal"),
            tg::make_error_input(
                "axis 3 for (2,3)", {x, x}, [](const auto& v) { return tg::stack(v, 3); },
                "axis 3 is out of range for shape [2, 3] (inserting an axis)"),
            tg::make_error_input(
                "axis -4 for (2,3)", {x, x}, [](const auto& v) { return tg::stack(v, -4); },
                "axis -4 is out of range for shape [2, 3] (inserting an axis)")};
}
