// ops/conv/conv_transpose2d.cpp — y [N, O, OH, OW] = conv_transpose(x [N, C, H, W], w [C, O/groups, KH, KW]) + b [O]
//   the adjoint of conv2d in its input: every x[n, c, i, j] adds x * w[c, o, ki, kj] to
//   y[n, o, i * sh + ki * dh - ph, j * sw + kj * dw - pw] (o in c's group), positions
//   outside y dropped; OH = (H - 1) sh - 2 ph + dh (KH - 1) + output_padding_h + 1.
//   vjp: grad_x [N, C, H, W] = conv2d(grad_out, w) (same stride, padding, dilation, groups)
//        grad_w [C, O/groups, KH, KW] = correlation of grad_out and x
//        grad_b [O] = grad_out summed over N, OH, OW
// The geometry is that of the convolution from y to x, run in its input_grad role
// (ops/conv/convolution.hpp).

#include "convolution.hpp"

namespace tg {

//! public
/// Transposed 2-D convolution of x [N, C, H, W] by w [C, O/groups, KH, KW], plus b [O] (torch conv_transpose2d).
/// The adjoint of conv2d in its input; an undefined b (tg::Var<T>()) means no bias.
template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::array<std::size_t, 2> stride = {1, 1},
                        std::array<std::size_t, 2> padding = {0, 0}, std::array<std::size_t, 2> output_padding = {0, 0},
                        std::size_t groups = 1, std::array<std::size_t, 2> dilation = {1, 1});
//! end

namespace {

conv::Geometry transpose_geometry(const conv::Shape& x, const conv::Shape& w, const conv::Shape* bias,
                                  std::array<std::size_t, 2> stride, std::array<std::size_t, 2> padding,
                                  std::array<std::size_t, 2> output_padding, std::size_t groups,
                                  std::array<std::size_t, 2> dilation)
{
    const std::string name(TAPEGRAD_OP_NAME);
    if (x.size() != 4) throw Error(name + ": expected x [N, C, H, W], got " + format_shape(x));
    if (w.size() != 4) throw Error(name + ": expected weight [C, O/groups, KH, KW], got " + format_shape(w));
    for (std::size_t a = 0; a < 2; ++a) {
        if (stride[a] == 0) throw Error(name + ": stride must be at least 1, got " + conv::format_pair(2, stride));
        if (dilation[a] == 0)
            throw Error(name + ": dilation must be at least 1, got " + conv::format_pair(2, dilation));
        if (output_padding[a] >= std::max(stride[a], dilation[a])) {
            throw Error(name + ": output_padding " + conv::format_pair(2, output_padding) +
                        " must be smaller than the stride " + conv::format_pair(2, stride) + " or the dilation " +
                        conv::format_pair(2, dilation));
        }
    }
    if (groups == 0) throw Error(name + ": groups must be at least 1, got 0");
    const std::size_t c = x[1];
    if (w[0] != c) {
        throw Error(name + ": input has " + std::to_string(c) + " channels, weight expects " + std::to_string(w[0]) +
                    " (weight " + format_shape(w) + ")");
    }
    if (c % groups != 0) {
        throw Error(name + ": groups (" + std::to_string(groups) + ") must divide the input channels (" +
                    std::to_string(c) + ")");
    }
    const std::size_t o = w[1] * groups;
    if (bias != nullptr && (bias->size() != 1 || (*bias)[0] != o)) {
        throw Error(name + ": bias must have shape [" + std::to_string(o) + "] to match weight " + format_shape(w) +
                    " and groups " + std::to_string(groups) + ", got " + format_shape(*bias));
    }
    std::array<std::size_t, 2> out{};
    for (std::size_t a = 0; a < 2; ++a) {
        const std::size_t in = x[2 + a], k = w[2 + a];
        const std::size_t span =
            in == 0 || k == 0 ? 0 : (in - 1) * stride[a] + dilation[a] * (k - 1) + output_padding[a] + 1;
        if (span <= 2 * padding[a]) {
            throw Error(name + ": the output would be empty: input " + format_shape(x) + ", weight " + format_shape(w) +
                        ", stride " + conv::format_pair(2, stride) + ", padding " + conv::format_pair(2, padding));
        }
        out[a] = span - 2 * padding[a];
    }
    // The convolution from the output (its x) to the input (its y).
    auto u32 = [](std::size_t v) {
        if (v > std::numeric_limits<std::uint32_t>::max())
            throw Error(std::string(TAPEGRAD_OP_NAME) + ": sizes beyond 2^32 are not supported");
        return static_cast<std::uint32_t>(v);
    };
    conv::Geometry g;
    g.spatial = 2;
    g.n = u32(x[0]), g.c = u32(o), g.o = u32(c), g.groups = u32(groups);
    g.ih = u32(out[0]), g.iw = u32(out[1]), g.oh = u32(x[2]), g.ow = u32(x[3]), g.kh = u32(w[2]), g.kw = u32(w[3]);
    g.sh = u32(stride[0]), g.sw = u32(stride[1]), g.ph = u32(padding[0]), g.pw = u32(padding[1]);
    g.dh = u32(dilation[0]), g.dw = u32(dilation[1]);
    return g;
}

}  // namespace

template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::array<std::size_t, 2> stride,
                        std::array<std::size_t, 2> padding, std::array<std::size_t, 2> output_padding,
                        std::size_t groups, std::array<std::size_t, 2> dilation)
{
    const auto& sx = input_shape(TAPEGRAD_OP_NAME, x);
    const auto& sw = input_shape(TAPEGRAD_OP_NAME, w);
    const conv::Shape sb = b.defined() ? conv::Shape(input_shape(TAPEGRAD_OP_NAME, b)) : conv::Shape{};
    const conv::Geometry g = transpose_geometry(conv::Shape(sx), conv::Shape(sw), b.defined() ? &sb : nullptr, stride,
                                                padding, output_padding, groups, dilation);
    return conv::apply(conv::Caller::conv_transpose2d, conv::Role::input_grad, g, x, w, b);
}

template Var<float> conv_transpose2d<float>(const Var<float>&, const Var<float>&, const Var<float>&,
                                            std::array<std::size_t, 2>, std::array<std::size_t, 2>,
                                            std::array<std::size_t, 2>, std::size_t, std::array<std::size_t, 2>);
template Var<double> conv_transpose2d<double>(const Var<double>&, const Var<double>&, const Var<double>&,
                                              std::array<std::size_t, 2>, std::array<std::size_t, 2>,
                                              std::array<std::size_t, 2>, std::size_t, std::array<std::size_t, 2>);

}  // namespace tg

#include "conv_samples.hpp"

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::conv_samples::Case;
    using tg::conv_samples::pair;
    // x, w [C, O/groups, KH, KW], bias, stride, padding, dilation, groups, output_padding
    std::vector<Case> cases{
        {"(1,2,3,3)*(2,3,2,2)+b", {1, 2, 3, 3}, {2, 3, 2, 2}, true, {1, 1}, {0, 0}, {1, 1}, 1},
        {"(2,1,3,2)*(1,2,3,3) stride 2 pad 1 output_padding 1",
         {2, 1, 3, 2},
         {1, 2, 3, 3},
         false,
         {2, 2},
         {1, 1},
         {1, 1},
         1,
         {1, 1}},
        {"(1,4,2,3)*(4,1,2,2)+b groups 2 dilation 2", {1, 4, 2, 3}, {4, 1, 2, 2}, true, {1, 1}, {0, 0}, {2, 2}, 2},
        {"(1,2,3,3)*(2,2,3,2) stride (2,1) pad (1,0) output_padding (1,0)",
         {1, 2, 3, 3},
         {2, 2, 3, 2},
         false,
         {2, 1},
         {1, 0},
         {1, 1},
         1,
         {1, 0}},
        {"(0,2,3,3)*(2,1,3,3)+b empty batch", {0, 2, 3, 3}, {2, 1, 3, 3}, true, {1, 1}, {0, 0}, {1, 1}, 1},
    };
    std::vector<tg::OpSample> out;
    for (const Case& k : cases) {
        std::vector<xt::xarray<double>> inputs{tg::sample_uniform(rng, k.x, -1.0, 1.0),
                                               tg::sample_uniform(rng, k.w, -1.0, 1.0)};
        if (k.bias) inputs.push_back(tg::sample_uniform(rng, {k.w[1] * k.groups}, -1.0, 1.0));
        auto f = [k](const auto& v) {
            using V = std::decay_t<decltype(v[0])>;
            return tg::conv_transpose2d(v[0], v[1], k.bias ? v[2] : V(), k.stride, k.padding, k.output_padding,
                                        k.groups, k.dilation);
        };
        auto ref = [k](const auto& x) { return tg::conv_samples::conv_transpose_ref(k, x); };
        const std::string torch = std::string("torch.nn.functional.conv_transpose2d(x[0], x[1], ") +
                                  (k.bias ? "x[2]" : "None") + ", stride=" + pair(2, k.stride) +
                                  ", padding=" + pair(2, k.padding) + ", output_padding=" + pair(2, k.output_padding) +
                                  ", groups=" + std::to_string(k.groups) + ", dilation=" + pair(2, k.dilation) + ")";
        out.push_back(tg::make_sample(k.label, std::move(inputs), f, ref)
                          .with_torch(torch)
                          .with_optional(k.bias ? std::vector<std::size_t>{2} : std::vector<std::size_t>{}));
    }
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    using Pair = std::array<std::size_t, 2>;
    const auto ones = [](Shape s) { return xt::xarray<double>(xt::ones<double>(s)); };
    // conv(stride, padding, output_padding, groups, dilation) on x v[0], weight v[1], bias v[2].
    auto conv = [](Pair stride, Pair padding, Pair output_padding, std::size_t groups, Pair dilation) {
        return [=](const auto& v) {
            return tg::conv_transpose2d(v[0], v[1], v[2], stride, padding, output_padding, groups, dilation);
        };
    };
    const auto plain = conv({1, 1}, {0, 0}, {0, 0}, 1, {1, 1});
    const xt::xarray<double> x = ones({1, 4, 3, 3}), w = ones({4, 2, 3, 3}), b = ones({2});
    return {
        tg::make_error_input("x of rank 3", {ones({4, 3, 3}), w, b}, plain, "expected x [N, C, H, W], got [4, 3, 3]"),
        tg::make_error_input("weight of rank 5", {x, ones({4, 2, 3, 3, 1}), b}, plain,
                             "expected weight [C, O/groups, KH, KW], got [4, 2, 3, 3, 1]"),
        tg::make_error_input("stride (0,1)", {x, w, b}, conv({0, 1}, {0, 0}, {0, 0}, 1, {1, 1}),
                             "stride must be at least 1, got [0, 1]"),
        tg::make_error_input("dilation (1,0)", {x, w, b}, conv({1, 1}, {0, 0}, {0, 0}, 1, {1, 0}),
                             "dilation must be at least 1, got [1, 0]"),
        tg::make_error_input("output_padding as large as the stride", {x, w, b},
                             conv({2, 2}, {0, 0}, {0, 2}, 1, {1, 1}),
                             "output_padding [0, 2] must be smaller than the stride [2, 2] or the dilation [1, 1]"),
        tg::make_error_input("groups 0", {x, w, b}, conv({1, 1}, {0, 0}, {0, 0}, 0, {1, 1}),
                             "groups must be at least 1, got 0"),
        tg::make_error_input("groups 2 for 3 channels", {ones({1, 3, 3, 3}), ones({3, 2, 3, 3}), ones({6})},
                             conv({1, 1}, {0, 0}, {0, 0}, 2, {1, 1}), "groups (2) must divide the input channels (3)"),
        tg::make_error_input("weight for 3 channels, x with 4", {x, ones({3, 2, 3, 3}), b}, plain,
                             "input has 4 channels, weight expects 3 (weight [3, 2, 3, 3])"),
        tg::make_error_input("bias (4,) for 2 outputs", {x, w, ones({4})}, plain,
                             "bias must have shape [2] to match weight [4, 2, 3, 3] and groups 1, got [4]"),
        tg::make_error_input("padding that leaves no output", {ones({1, 4, 1, 1}), ones({4, 2, 1, 1}), b},
                             conv({1, 1}, {1, 1}, {0, 0}, 1, {1, 1}),
                             "the output would be empty: input [1, 4, 1, 1], weight [4, 2, 1, 1], stride [1, 1], "
                             "padding [1, 1]")};
}
