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
