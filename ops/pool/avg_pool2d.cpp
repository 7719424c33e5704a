// ops/pool/avg_pool2d.cpp — y[n, c, i, j] = (sum over the window of x [N, C, H, W] padded with 0) / (kh * kw):
//   rows i * sh - ph + [0, kh), columns j * sw - pw + [0, kw); y is [N, C, OH, OW] with
//   OH = (H + 2 ph - kh) / sh + 1, OW = (W + 2 pw - kw) / sw + 1   (torch.nn.functional.avg_pool2d,
//   ceil_mode off, count_include_pad: padded zeros count in the divisor)
//   vjp: grad_x [N, C, H, W] = grad_out [N, C, OH, OW] / (kh * kw) spread over each window's
//        elements inside x (overlapping windows add up)                       (pooling.hpp)
// Linear in x: the rule is the internal op avg_pool2d_backward, whose own rule is avg_pool2d.

#include "pooling.hpp"

namespace tg {

//! public
/// Average pooling over the H, W windows of x [N, C, H, W] (torch.nn.functional.avg_pool2d, count_include_pad).
/// stride {0, 0} means stride = kernel; padding at most half the kernel; padded zeros count in the divisor.
template <class T>
Var<T> avg_pool2d(const Var<T>& x, std::array<std::size_t, 2> kernel, std::array<std::size_t, 2> stride = {0, 0},
                  std::array<std::size_t, 2> padding = {0, 0});
//! end

namespace {

struct AvgPool2dNames {
    static constexpr const char* op = TAPEGRAD_OP_NAME;
    static constexpr const char* backward = TAPEGRAD_OP_NAME "_backward";
};

}  // namespace

template <class T>
Var<T> avg_pool2d(const Var<T>& x, std::array<std::size_t, 2> kernel, std::array<std::size_t, 2> stride,
                  std::array<std::size_t, 2> padding)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    return record(pool::WindowMean<AvgPool2dNames, false>{pool::window_geometry(AvgPool2dNames::op, s, false, kernel,
                                                                                stride, padding)},
                  x);
}

template Var<float> avg_pool2d<float>(const Var<float>&, std::array<std::size_t, 2>, std::array<std::size_t, 2>,
                                      std::array<std::size_t, 2>);
template Var<double> avg_pool2d<double>(const Var<double>&, std::array<std::size_t, 2>, std::array<std::size_t, 2>,
                                        std::array<std::size_t, 2>);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using Pair = std::array<std::size_t, 2>;
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, const std::vector<std::size_t>& shape, Pair k, Pair s, Pair p) {
        const Pair stride{s[0] == 0 ? k[0] : s[0], s[1] == 0 ? k[1] : s[1]};
        out.push_back(tg::make_sample(
                          std::move(label), {tg::sample_uniform(rng, shape, -1.0, 1.0)},
                          [k, s, p](const auto& v) { return tg::avg_pool2d(v[0], k, s, p); },
                          [k, stride, p](const auto& x) { return tg::pool::reference_pool(x[0], k, stride, p, false); })
                          .with_torch("torch.nn.functional.avg_pool2d(x[0], " + tg::pool::torch_pair(k) + ", stride=" +
                                      tg::pool::torch_pair(stride) + ", padding=" + tg::pool::torch_pair(p) + ")"));
    };
    sample("(1,1,4,4) k2 s2", {1, 1, 4, 4}, {2, 2}, {2, 2}, {0, 0});
    sample("(2,3,2,2) k2 default stride", {2, 3, 2, 2}, {2, 2}, {0, 0}, {0, 0});
    sample("(1,2,5,5) k3 s2 p1", {1, 2, 5, 5}, {3, 3}, {2, 2}, {1, 1});
    sample("(1,1,5,6) k(2,3) s(1,2)", {1, 1, 5, 6}, {2, 3}, {1, 2}, {0, 0});
    sample("(2,1,3,5) k(3,2) s(3,1) p(1,1)", {2, 1, 3, 5}, {3, 2}, {3, 1}, {1, 1});
    sample("(1,1,5,5) k2 s3", {1, 1, 5, 5}, {2, 2}, {3, 3}, {0, 0});
    sample("(0,2,4,4) k2 empty", {0, 2, 4, 4}, {2, 2}, {0, 0}, {0, 0});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Pair = std::array<std::size_t, 2>;
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto pool = [](Pair kernel, Pair stride, Pair padding) {
        return [=](const auto& v) { return tg::avg_pool2d(v[0], kernel, stride, padding); };
    };
    const xt::xarray<double> x = ones({1, 2, 4, 4});
    return {tg::make_error_input("x of rank 3", {ones({2, 4, 4})}, pool({2, 2}, {0, 0}, {0, 0}),
                                 "x must have rank 4 [N, C, H, W] (x is [2, 4, 4])"),
            tg::make_error_input("x of height 0", {ones({1, 2, 0, 4})}, pool({2, 2}, {0, 0}, {0, 0}),
                                 "x must have nonzero H and W (x is [1, 2, 0, 4])"),
            tg::make_error_input("kernel (2,0)", {x}, pool({2, 0}, {0, 0}, {0, 0}),
                                 "kernel size must be positive (kernel [2, 0])"),
            tg::make_error_input("padding above half the kernel", {x}, pool({2, 2}, {1, 1}, {0, 2}),
                                 "padding must be at most half of kernel size (padding [0, 2], kernel [2, 2])"),
            tg::make_error_input("kernel larger than the padded input", {x}, pool({5, 2}, {1, 1}, {0, 0}),
                                 "kernel is larger than the padded input (kernel [5, 2], padded input [4, 4], x [1, 2, "
                                 "4, 4], padding [0, 0])")};
}
