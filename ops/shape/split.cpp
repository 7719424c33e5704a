// ops/shape/split.cpp — x cut along `axis` into consecutive pieces of the given sizes
//   (one narrow per piece; their vjps put each piece's gradient back in place)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x cut along axis into consecutive pieces of the given sizes, which must add up to its length (torch.split).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis);
//! end

template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<std::size_t>& sizes, std::ptrdiff_t axis)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(TAPEGRAD_OP_NAME, s, axis);
    std::size_t total = 0;
    bool wraps = false;
    for (std::size_t n : sizes) wraps = wraps || __builtin_add_overflow(total, n, &total);
    if (wraps) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": sizes " + format_shape(sizes) + " add up to more than " +
                    std::to_string(SIZE_MAX) + " (axis " + std::to_string(axis) + " of shape " + format_shape(s) +
                    " has " + std::to_string(s[a]) + ")");
    }
    if (total != s[a]) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": sizes " + format_shape(sizes) + " add up to " +
                    std::to_string(total) + " but axis " + std::to_string(axis) + " of shape " + format_shape(s) +
                    " has " + std::to_string(s[a]));
    }
    std::vector<Var<T>> out;
    std::size_t start = 0;
    for (std::size_t n : sizes) {
        out.push_back(narrow(x, static_cast<std::ptrdiff_t>(a), start, n));
        start += n;
    }
    return out;
}

template std::vector<Var<float>> split<float>(const Var<float>&, const std::vector<std::size_t>&, std::ptrdiff_t);
template std::vector<Var<double>> split<double>(const Var<double>&, const std::vector<std::size_t>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    // A sample's value is one Var: the pieces, each scaled by its position, joined again,
    // so that every piece's gradient is checked and a swapped piece would show.
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::vector<std::size_t> sizes,
                      std::ptrdiff_t a) {
        std::string sz, scaled;
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            sz += (i ? ", " : "") + std::to_string(sizes[i]);
            scaled += (i ? ", " : "") + std::string("p[") + std::to_string(i) + "] * " + std::to_string(i + 1);
        }
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [sizes, a](const auto& v) {
                              auto pieces = tg::split(v[0], sizes, a);
                              for (std::size_t i = 0; i < pieces.size(); ++i) pieces[i] = pieces[i] * double(i + 1);
                              return tg::concat(pieces, a);
                          },
                          [sizes, a](const auto& x) {
                              const auto r = static_cast<std::size_t>(
                                  a < 0 ? a + static_cast<std::ptrdiff_t>(x[0].dimension()) : a);
                              xt::xarray<double> y = x[0];
                              std::size_t start = 0;
                              for (std::size_t i = 0; i < sizes.size(); ++i) {
                                  xt::xstrided_slice_vector sv(y.dimension(), xt::all());
                                  sv[r] = xt::range(start, start + sizes[i]);
                                  xt::strided_view(y, sv) *= double(i + 1);
                                  start += sizes[i];
                              }
                              return y;
                          })
                          .with_torch("(lambda p: torch.cat([" + scaled + "], dim=" + std::to_string(a) +
                                      "))(torch.split(x[0], [" + sz + "], dim=" + std::to_string(a) + "))"));
    };
    sample("(5,3) [2,3] axis 0", {5, 3}, {2, 3}, 0);
    sample("(2,6) [1,2,3] axis -1", {2, 6}, {1, 2, 3}, -1);
    sample("(2,4,3) [0,4] axis 1", {2, 4, 3}, {0, 4}, 1);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Sizes = std::vector<std::size_t>;
    auto errors =
        tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::split(x, Sizes{1}, axis); });
    const xt::xarray<double> x = xt::ones<double>({2, 5});
    errors.push_back(tg::make_error_input(
        "sizes short of the axis", {x},
        [](const auto& v) {
            return tg::split(v[0], Sizes{2, 2}, 1);
        },
        "sizes [2, 2] add up to 4 but axis 1 of shape [2, 5] has 5"));
    errors.push_back(tg::make_error_input(
        "sizes past the axis", {x},
        [](const auto& v) {
            return tg::split(v[0], Sizes{3, 3}, -1);
        },
        "sizes [3, 3] add up to 6 but axis -1 of shape [2, 5] has 5"));
    errors.push_back(tg::make_error_input(
        "sizes whose sum overflows", {x},
        [](const auto& v) {
            return tg::split(v[0], Sizes{std::numeric_limits<std::size_t>::max(), 6}, 1);
        },
        "add up to more than 18446744073709551615"));
    return errors;
}
