// ops/pool/adaptive_avg_pool2d.cpp — y[n, c, i, j] = mean of x [N, C, H, W] over rows
//   [floor(i H / OH), ceil((i + 1) H / OH)) and columns [floor(j W / OW), ceil((j + 1) W / OW));
//   y is [N, C, OH, OW] for output_size (OH, OW)   (torch.nn.functional.adaptive_avg_pool2d)
//   vjp: grad_x [N, C, H, W] = grad_out [N, C, OH, OW] / (window size) spread over each window
//        (windows overlap when OH does not divide H: they add up)              (pooling.hpp)
// Linear in x: the rule is the internal op adaptive_avg_pool2d_backward, whose own rule is
// adaptive_avg_pool2d.

#include "pooling.hpp"

namespace tg {

//! public
/// Average pooling of x [N, C, H, W] to [N, C, OH, OW] with windows that tile H and W (torch adaptive_avg_pool2d).
/// Output i along an axis of length n averages [floor(i n / out), ceil((i + 1) n / out)).
template <class T> Var<T> adaptive_avg_pool2d(const Var<T>& x, std::array<std::size_t, 2> output_size);
//! end

namespace {

struct AdaptiveAvgPool2dNames {
    static constexpr const char* op = TAPEGRAD_OP_NAME;
    static constexpr const char* backward = TAPEGRAD_OP_NAME "_backward";
};

}  // namespace

template <class T> Var<T> adaptive_avg_pool2d(const Var<T>& x, std::array<std::size_t, 2> output_size)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    return record(pool::WindowMean<AdaptiveAvgPool2dNames, false>{pool::adaptive_geometry(AdaptiveAvgPool2dNames::op, s,
                                                                                          output_size)},
                  x);
}

template Var<float> adaptive_avg_pool2d<float>(const Var<float>&, std::array<std::size_t, 2>);
template Var<double> adaptive_avg_pool2d<double>(const Var<double>&, std::array<std::size_t, 2>);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using Pair = std::array<std::size_t, 2>;
    std::vector<tg::OpSample> out;
    // The reference finds each window by rounding in floating point, not by integer division.
    auto ref = [](const auto& x, Pair o) {
        const std::size_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        auto lo = [](std::size_t i, std::size_t in, std::size_t len) {
            return static_cast<std::size_t>(std::floor(double(i) * double(in) / double(len)));
        };
        auto hi = [](std::size_t i, std::size_t in, std::size_t len) {
            return static_cast<std::size_t>(std::ceil(double(i + 1) * double(in) / double(len)));
        };
        xt::xarray<double> y = xt::zeros<double>({n, c, o[0], o[1]});
        for (std::size_t a = 0; a < n; ++a)
            for (std::size_t b = 0; b < c; ++b)
                for (std::size_t i = 0; i < o[0]; ++i)
                    for (std::size_t j = 0; j < o[1]; ++j) {
                        double sum = 0;
                        std::size_t count = 0;
                        for (std::size_t u = lo(i, h, o[0]); u < hi(i, h, o[0]); ++u)
                            for (std::size_t v = lo(j, w, o[1]); v < hi(j, w, o[1]); ++v, ++count) sum += x(a, b, u, v);
                        y(a, b, i, j) = sum / double(count);
                    }
        return y;
    };
    auto sample = [&](std::string label, const std::vector<std::size_t>& shape, Pair o) {
        out.push_back(
            tg::make_sample(
                std::move(label), {tg::sample_uniform(rng, shape, -1.0, 1.0)},
                [o](const auto& v) { return tg::adaptive_avg_pool2d(v[0], o); },
                [ref, o](const auto& x) { return ref(x[0], o); })
                .with_torch("torch.nn.functional.adaptive_avg_pool2d(x[0], " + tg::pool::torch_pair(o) + ")"));
    };
    sample("(1,1,4,4) to (2,2)", {1, 1, 4, 4}, {2, 2});
    sample("(1,2,5,3) to (3,2) overlapping", {1, 2, 5, 3}, {3, 2});
    sample("(2,1,3,4) to (5,7) upsampling", {2, 1, 3, 4}, {5, 7});
    sample("(1,2,4,5) to (1,1) global", {1, 2, 4, 5}, {1, 1});
    sample("(1,1,7,5) to (3,4)", {1, 1, 7, 5}, {3, 4});
    sample("(2,3,2,2) to (2,2) identity", {2, 3, 2, 2}, {2, 2});
    sample("(0,2,4,4) to (2,2) empty", {0, 2, 4, 4}, {2, 2});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Pair = std::array<std::size_t, 2>;
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto pool = [](Pair size) { return [=](const auto& v) { return tg::adaptive_avg_pool2d(v[0], size); }; };
    const xt::xarray<double> x = ones({1, 2, 4, 4});
    return {tg::make_error_input("x of rank 5", {ones({1, 1, 2, 4, 4})}, pool({2, 2}),
                                 "x must have rank 4 [N, C, H, W] (x is [1, 1, 2, 4, 4])"),
            tg::make_error_input("x of width 0", {ones({1, 2, 4, 0})}, pool({2, 2}),
                                 "x must have nonzero H and W (x is [1, 2, 4, 0])"),
            tg::make_error_input("output size (0,2)", {x}, pool({0, 2}),
                                 "output size must be positive (output_size [0, 2], x [1, 2, 4, 4])"),
            tg::make_error_input("output size too large to index", {x}, pool({std::size_t(1) << 62, 1}),
                                 "output size is too large (output_size [4611686018427387904, 1], x [1, 2, 4, 4])")};
}
