// ops/conv/conv1d.cpp — y [N, O, OL] = conv(x [N, C, L], w [O, C/groups, K]) + b [O]
//   y[n, o, i] = b[o] + sum over c in o's group, k of w[o, c, k] * x[n, c, i * stride + k * dilation - padding]
//   (cross-correlation, as PyTorch; x is zero outside [0, L)),
//   OL = (L + 2 padding - dilation (K - 1) - 1) / stride + 1.
//   vjp: grad_x [N, C, L] = conv_transpose(grad_out, w); grad_w [O, C/groups, K] = correlation of
//        x and grad_out; grad_b [O] = grad_out summed over N and OL
// The recorded ops are conv2d's (ops/conv/convolution.hpp) with a trivial H axis.

#include "convolution.hpp"

namespace tg {

//! public
/// 1-D convolution of x [N, C, L] by w [O, C/groups, K], plus b [O] (torch.nn.functional.conv1d).
/// Cross-correlation, as PyTorch; an undefined b (tg::Var<T>()) means no bias.
template <class T>
Var<T> conv1d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::size_t stride = 1, std::size_t padding = 0,
              std::size_t dilation = 1, std::size_t groups = 1);
//! end

template <class T>
Var<T> conv1d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::size_t stride, std::size_t padding,
              std::size_t dilation, std::size_t groups)
{
    const auto& sx = input_shape(TAPEGRAD_OP_NAME, x);
    const auto& sw = input_shape(TAPEGRAD_OP_NAME, w);
    const conv::Shape sb = b.defined() ? conv::Shape(input_shape(TAPEGRAD_OP_NAME, b)) : conv::Shape{};
    const conv::Geometry g = conv::make(TAPEGRAD_OP_NAME, 1, conv::Shape(sx), conv::Shape(sw),
                                        b.defined() ? &sb : nullptr, {stride, 0}, {padding, 0}, {dilation, 0}, groups);
    return conv::apply(conv::Caller::conv1d, conv::Role::forward, g, x, w, b);
}

template Var<float> conv1d<float>(const Var<float>&, const Var<float>&, const Var<float>&, std::size_t, std::size_t,
                                  std::size_t, std::size_t);
template Var<double> conv1d<double>(const Var<double>&, const Var<double>&, const Var<double>&, std::size_t,
                                    std::size_t, std::size_t, std::size_t);

}  // namespace tg

#include "conv_samples.hpp"

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::conv_samples::Case;
    std::vector<Case> cases{
        {"(2,3,5)*(4,3,3)+b", {2, 3, 5}, {4, 3, 3}, true, {1, 0}, {0, 0}, {1, 0}, 1},
        {"(1,2,7)*(2,2,2) stride 2 pad 1 dilation 2", {1, 2, 7}, {2, 2, 2}, false, {2, 0}, {1, 0}, {2, 0}, 1},
        {"(1,4,6)*(4,1,3)+b depthwise pad 1", {1, 4, 6}, {4, 1, 3}, true, {1, 0}, {1, 0}, {1, 0}, 4},
        {"(1,2,4)*(3,2,1) pointwise", {1, 2, 4}, {3, 2, 1}, false, {1, 0}, {0, 0}, {1, 0}, 1},
        {"(0,2,5)*(2,2,3)+b empty batch", {0, 2, 5}, {2, 2, 3}, true, {1, 0}, {0, 0}, {1, 0}, 1},
    };
    return tg::conv_samples::make(rng, cases, 1, [](const auto& v, const Case& k, const auto& b) {
        return tg::conv1d(v[0], v[1], b, k.stride[0], k.padding[0], k.dilation[0], k.groups);
    });
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    const auto ones = [](Shape s) { return xt::xarray<double>(xt::ones<double>(s)); };
    // conv(v, stride, padding, dilation, groups) on x v[0], weight v[1] and bias v[2].
    auto conv = [](std::size_t stride, std::size_t padding, std::size_t dilation, std::size_t groups) {
        return [=](const auto& v) { return tg::conv1d(v[0], v[1], v[2], stride, padding, dilation, groups); };
    };
    const auto plain = conv(1, 0, 1, 1);
    const xt::xarray<double> x = ones({1, 4, 8}), w = ones({2, 4, 3}), b = ones({2});
    return {tg::make_error_input("x of rank 2", {ones({4, 8}), w, b}, plain, "expected x [N, C, L], got [4, 8]"),
            tg::make_error_input("weight of rank 4", {x, ones({2, 4, 3, 3}), b}, plain,
                                 "expected weight [O, C/groups, K], got [2, 4, 3, 3]"),
            tg::make_error_input("stride 0", {x, w, b}, conv(0, 0, 1, 1), "stride must be at least 1, got 0"),
            tg::make_error_input("dilation 0", {x, w, b}, conv(1, 0, 0, 1), "dilation must be at least 1, got 0"),
            tg::make_error_input("groups 0", {x, w, b}, conv(1, 0, 1, 0), "groups must be at least 1, got 0"),
            tg::make_error_input("groups 3 for 4 channels", {x, ones({3, 4, 3}), ones({3})}, conv(1, 0, 1, 3),
                                 "groups (3) must divide the input channels (4) and the output channels (3)"),
            tg::make_error_input("weight for 3 channels, x with 4", {x, ones({2, 3, 3}), b}, plain,
                                 "input has 4 channels, weight expects 3 (weight [2, 3, 3])"),
            tg::make_error_input("bias (3,) for 2 outputs", {x, w, ones({3})}, plain,
                                 "bias must have shape [2] to match weight [2, 4, 3], got [3]"),
            tg::make_error_input("kernel longer than the input", {ones({1, 4, 2}), w, b}, plain,
                                 "kernel 3 (dilation 1) is larger than the padded input 2"),
            tg::make_error_input("dilated kernel longer than the input", {ones({1, 4, 4}), w, b}, conv(1, 0, 2, 1),
                                 "kernel 3 (dilation 2) is larger than the padded input 4")};
}
