// ops/pool/max_pool1d.cpp — y[n, c, i] = max over the window of x [N, C, L] padded with -inf:
//   positions i * stride - padding + [0, kernel); y is [N, C, OL], OL = (L + 2 padding - kernel) / stride + 1
//   (torch.nn.functional.max_pool1d, ceil_mode off, dilation 1; the first maximum wins a tie)
//   vjp: grad_x [N, C, L] = grad_out [N, C, OL] added at each window's saved arg-max
//        (overlapping windows add up), 0 elsewhere                            (pooling.hpp)
// The 2-D kernels with H = 1, recorded as an op of its own; the rule is the internal op
// max_pool1d_backward.

#include "pooling.hpp"

namespace tg {

//! public
/// Max pooling over the L windows of x [N, C, L] (torch.nn.functional.max_pool1d, padding with -inf).
/// stride 0 means stride = kernel; padding at most half the kernel.
template <class T>
Var<T> max_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride = 0, std::size_t padding = 0);
//! end

namespace {

struct MaxPool1dNames {
    static constexpr const char* op = TAPEGRAD_OP_NAME;
    static constexpr const char* backward = TAPEGRAD_OP_NAME "_backward";
    static constexpr const char* double_backward = TAPEGRAD_OP_NAME "_double_backward";
};

}  // namespace

template <class T> Var<T> max_pool1d(const Var<T>& x, std::size_t kernel, std::size_t stride, std::size_t padding)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    return record(pool::MaxPool<MaxPool1dNames>{pool::window_geometry(MaxPool1dNames::op, s, true, {1, kernel},
                                                                      {1, stride}, {0, padding})},
                  x);
}

template Var<float> max_pool1d<float>(const Var<float>&, std::size_t, std::size_t, std::size_t);
template Var<double> max_pool1d<double>(const Var<double>&, std::size_t, std::size_t, std::size_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    std::vector<tg::OpSample> out;
    // Values spaced apart (a permutation): finite differences never cross a tie.
    auto sample = [&](std::string label, const std::vector<std::size_t>& shape, std::size_t k, std::size_t s,
                      std::size_t p) {
        const std::size_t stride = s == 0 ? k : s;
        out.push_back(tg::make_sample(
                          std::move(label), {tg::pool::distinct_values(rng, shape)},
                          [k, s, p](const auto& v) { return tg::max_pool1d(v[0], k, s, p); },
                          [k, stride, p](const auto& x) {
                              // As a 2-D pooling of [N, C, 1, L] with a 1 x k window.
                              const auto& xs = x[0].shape();
                              xt::xarray<double> x4 = x[0];
                              x4.reshape({xs[0], xs[1], 1, xs[2]});
                              xt::xarray<double> y = tg::pool::reference_pool(x4, {1, k}, {1, stride}, {0, p}, true);
                              y.reshape({xs[0], xs[1], y.shape()[3]});
                              return y;
                          })
                          .with_torch("torch.nn.functional.max_pool1d(x[0], " + std::to_string(k) +
                                      ", stride=" + std::to_string(stride) + ", padding=" + std::to_string(p) + ")"));
    };
    sample("(1,1,6) k2 s2", {1, 1, 6}, 2, 2, 0);
    sample("(2,3,5) k3 default stride", {2, 3, 5}, 3, 0, 0);
    sample("(1,2,7) k3 s2 p1", {1, 2, 7}, 3, 2, 1);
    sample("(2,2,8) k4 s1 p2", {2, 2, 8}, 4, 1, 2);
    sample("(1,1,7) k2 s3", {1, 1, 7}, 2, 3, 0);
    sample("(0,2,5) k2 empty", {0, 2, 5}, 2, 0, 0);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto pool = [](std::size_t kernel, std::size_t stride, std::size_t padding) {
        return [=](const auto& v) { return tg::max_pool1d(v[0], kernel, stride, padding); };
    };
    const xt::xarray<double> x = ones({1, 2, 4});
    return {tg::make_error_input("x of rank 4", {ones({1, 2, 3, 4})}, pool(2, 0, 0),
                                 "x must have rank 3 [N, C, L] (x is [1, 2, 3, 4])"),
            tg::make_error_input("x of length 0", {ones({1, 2, 0})}, pool(2, 0, 0),
                                 "x must have nonzero L (x is [1, 2, 0])"),
            tg::make_error_input("kernel 0", {x}, pool(0, 0, 0), "kernel size must be positive (kernel 0)"),
            tg::make_error_input("padding above half the kernel", {x}, pool(3, 1, 2),
                                 "padding must be at most half of kernel size (padding 2, kernel 3)"),
            tg::make_error_input("kernel longer than the padded input", {x}, pool(5, 1, 0),
                                 "kernel is larger than the padded input (kernel 5, padded input 4, x [1, 2, 4], "
                                 "padding 0)")};
}
