// ops/shape/unsqueeze.cpp — y = x with a new axis of size 1 inserted at `dim` (a reshape)
//   vjp: that of reshape

#include "reshape_like.hpp"

namespace tg {

//! public
/// x with a new axis of size 1 at dim (in [-rank - 1, rank], negative from the end).
template <class T> Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t dim);
//! end

template <class T> Var<T> unsqueeze(const Var<T>& x, std::ptrdiff_t dim)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(TAPEGRAD_OP_NAME, s, dim, 1);
    std::vector<std::size_t> shape = shape_ops::as_vector(s);
    shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(a), 1);
    return reshape(x, shape);
}

template Var<float> unsqueeze<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> unsqueeze<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t d,
                      std::vector<std::size_t> to) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [d](const auto& v) { return tg::unsqueeze(v[0], d); },
                          [to](const auto& x) { return xt::xarray<double>(xt::reshape_view(x[0], to)); })
                          .with_torch("torch.unsqueeze(x[0], " + std::to_string(d) + ")"));
    };
    sample("(3,4) dim 0", {3, 4}, 0, {1, 3, 4});
    sample("(3,4) dim 2", {3, 4}, 2, {3, 4, 1});
    sample("(3,4) dim -1", {3, 4}, -1, {3, 4, 1});
    sample("(3,4) dim -3", {3, 4}, -3, {1, 3, 4});
    sample("() dim 0", {}, 0, {1});
    sample("(0,2) dim 1", {0, 2}, 1, {0, 1, 2});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "axis 3 of (2,3)", {x}, [](const auto& v) { return tg::unsqueeze(v[0], 3); },
                "axis 3 is out of range for shape [2, 3] (inserting an axis)"),
            tg::make_error_input(
                "axis -4 of (2,3)", {x}, [](const auto& v) { return tg::unsqueeze(v[0], -4); },
                "axis -4 is out of range for shape [2, 3] (inserting an axis)"),
            tg::make_error_input(
                "axis 2 of a rank-0 input", {xt::xarray<double>(1.0)},
                [](const auto& v) { return tg::unsqueeze(v[0], 2); },
                "axis 2 is out of range for shape [] (inserting an axis)")};
}
