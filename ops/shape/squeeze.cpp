// ops/shape/squeeze.cpp — y = x without axis `dim`, which must have size 1 (a reshape)
//   vjp: that of reshape

#include "reshape_like.hpp"

namespace tg {

//! public
/// x without axis dim, which must have size 1 (unlike torch.squeeze, a dim of another size is an error).
template <class T> Var<T> squeeze(const Var<T>& x, std::ptrdiff_t dim);
//! end

template <class T> Var<T> squeeze(const Var<T>& x, std::ptrdiff_t dim)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(TAPEGRAD_OP_NAME, s, dim);
    if (s[a] != 1) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": axis " + std::to_string(dim) + " of shape " + format_shape(s) +
                    " has size " + std::to_string(s[a]) + ", not 1");
    }
    std::vector<std::size_t> shape = shape_ops::as_vector(s);
    shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(a));
    return reshape(x, shape);
}

template Var<float> squeeze<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> squeeze<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t d,
                      std::vector<std::size_t> to) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [d](const auto& v) { return tg::squeeze(v[0], d); },
                          [to](const auto& x) { return xt::xarray<double>(xt::reshape_view(x[0], to)); })
                          .with_torch("torch.squeeze(x[0], " + std::to_string(d) + ")"));
    };
    sample("(1,3,4) dim 0", {1, 3, 4}, 0, {3, 4});
    sample("(3,1,4) dim 1", {3, 1, 4}, 1, {3, 4});
    sample("(3,4,1) dim -1", {3, 4, 1}, -1, {3, 4});
    sample("(1,) dim 0", {1}, 0, {});
    sample("(0,1) dim 1", {0, 1}, 1, {0});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::squeeze(x, axis); });
    errors.push_back(tg::make_error_input(
        "axis of size 3", {xt::ones<double>({2, 3})}, [](const auto& v) { return tg::squeeze(v[0], 1); },
        "axis 1 of shape [2, 3] has size 3, not 1"));
    errors.push_back(tg::make_error_input(
        "axis of size 0", {xt::ones<double>({0, 1})}, [](const auto& v) { return tg::squeeze(v[0], 0); },
        "axis 0 of shape [0, 1] has size 0, not 1"));
    return errors;
}
