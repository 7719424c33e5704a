// ops/shape/flatten.cpp — y = x with axes start_dim..end_dim merged into one (a reshape)
//   vjp: that of reshape (grad_out read in x's shape)

#include "reshape_like.hpp"

namespace tg {

//! public
/// x with axes start_dim..end_dim (inclusive, negative from the end) merged into one.
template <class T> Var<T> flatten(const Var<T>& x, std::ptrdiff_t start_dim = 0, std::ptrdiff_t end_dim = -1);
//! end

template <class T> Var<T> flatten(const Var<T>& x, std::ptrdiff_t start_dim, std::ptrdiff_t end_dim)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    if (s.empty()) return reshape(x, {1});  // torch.flatten of a scalar has one element
    const std::size_t a = axis::resolve(TAPEGRAD_OP_NAME, s, start_dim);
    const std::size_t b = axis::resolve(TAPEGRAD_OP_NAME, s, end_dim);
    if (a > b) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": start_dim " + std::to_string(start_dim) +
                    " comes after end_dim " + std::to_string(end_dim) + " for shape " + format_shape(s));
    }
    std::vector<std::size_t> shape(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(a));
    std::size_t merged = 1;
    for (std::size_t j = a; j <= b; ++j) merged *= s[j];
    shape.push_back(merged);
    shape.insert(shape.end(), s.begin() + static_cast<std::ptrdiff_t>(b) + 1, s.end());
    return reshape(x, shape);
}

template Var<float> flatten<float>(const Var<float>&, std::ptrdiff_t, std::ptrdiff_t);
template Var<double> flatten<double>(const Var<double>&, std::ptrdiff_t, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a, std::ptrdiff_t b,
                      std::vector<std::size_t> to) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [a, b](const auto& v) { return tg::flatten(v[0], a, b); },
                          [to](const auto& x) { return xt::xarray<double>(xt::reshape_view(x[0], to)); })
                          .with_torch("torch.flatten(x[0], " + std::to_string(a) + ", " + std::to_string(b) + ")"));
    };
    sample("(2,3,4) all", {2, 3, 4}, 0, -1, {24});
    sample("(2,3,4) 1..2", {2, 3, 4}, 1, 2, {2, 12});
    sample("(2,3,4,5) 1..-2", {2, 3, 4, 5}, 1, -2, {2, 12, 5});
    sample("(3,4) 0..0", {3, 4}, 0, 0, {3, 4});
    sample("(2,0,3) 0..1", {2, 0, 3}, 0, 1, {0, 3});
    out.push_back(
        tg::make_sample(
            "() all", {u({})}, [](const auto& v) { return tg::flatten(v[0]); },
            [](const auto& x) { return xt::xarray<double>(xt::reshape_view(x[0], std::vector<std::size_t>{1})); })
            .with_torch("torch.flatten(x[0])"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> x = xt::ones<double>({2, 3, 4});
    return {tg::make_error_input(
                "start_dim 3 of (2,3,4)", {x}, [](const auto& v) { return tg::flatten(v[0], 3); },
                "axis 3 is out of range for shape [2, 3, 4]"),
            tg::make_error_input(
                "end_dim -4 of (2,3,4)", {x}, [](const auto& v) { return tg::flatten(v[0], 0, -4); },
                "axis -4 is out of range for shape [2, 3, 4]"),
            tg::make_error_input(
                "start_dim after end_dim", {x}, [](const auto& v) { return tg::flatten(v[0], 2, 1); },
                "start_dim 2 comes after end_dim 1 for shape [2, 3, 4]")};
}
