// ops/conv/conv2d.cpp — y [N, O, OH, OW] = conv(x [N, C, H, W], w [O, C/groups, KH, KW]) + b [O]
//   y[n, o, i, j] = b[o] + sum over c in o's group, ki, kj of
//                   w[o, c, ki, kj] * x[n, c, i * sh + ki * dh - ph, j * sw + kj * dw - pw]
//   (cross-correlation, as PyTorch; x is zero outside [0, H) x [0, W)),
//   OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1, OW likewise.
//   vjp: grad_x [N, C, H, W]      = conv_transpose(grad_out, w)       (same geometry)
//        grad_w [O, C/groups, KH, KW] = correlation of x and grad_out
//        grad_b [O]               = grad_out summed over N, OH, OW
// This file also holds the recorded ops that conv1d and conv_transpose2d use: the three
// roles of one convolution (ops/conv/convolution.hpp), so derivatives of every order are
// convolutions computed by im2col + gemm.

#include <limits>

#include "convolution.hpp"

namespace tg {

//! public
/// 2-D convolution of x [N, C, H, W] by w [O, C/groups, KH, KW], plus b [O] (torch.nn.functional.conv2d).
/// Cross-correlation, as PyTorch; an undefined b (tg::Var<T>()) means no bias.
template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::array<std::size_t, 2> stride = {1, 1},
              std::array<std::size_t, 2> padding = {0, 0}, std::array<std::size_t, 2> dilation = {1, 1},
              std::size_t groups = 1);
//! end

namespace conv {

std::string format_pair(std::size_t spatial, std::array<std::size_t, 2> v)
{
    if (spatial == 1) return std::to_string(v[0]);
    return "[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "]";
}

Shape x_shape(const Geometry& g)
{
    return g.spatial == 1 ? Shape{g.n, g.c, g.iw} : Shape{g.n, g.c, g.ih, g.iw};
}
Shape w_shape(const Geometry& g)
{
    return g.spatial == 1 ? Shape{g.o, g.c / g.groups, g.kw} : Shape{g.o, g.c / g.groups, g.kh, g.kw};
}
Shape y_shape(const Geometry& g)
{
    return g.spatial == 1 ? Shape{g.n, g.o, g.ow} : Shape{g.n, g.o, g.oh, g.ow};
}

Geometry make(const char* op, std::size_t spatial, const Shape& x, const Shape& w, const Shape* bias,
              std::array<std::size_t, 2> stride, std::array<std::size_t, 2> padding,
              std::array<std::size_t, 2> dilation, std::size_t groups)
{
    const std::string name(op);
    const std::size_t rank = spatial + 2;
    const char* x_form = spatial == 1 ? "[N, C, L]" : "[N, C, H, W]";
    const char* w_form = spatial == 1 ? "[O, C/groups, K]" : "[O, C/groups, KH, KW]";
    if (x.size() != rank) throw Error(name + ": expected x " + x_form + ", got " + format_shape(x));
    if (w.size() != rank) throw Error(name + ": expected weight " + w_form + ", got " + format_shape(w));
    for (std::size_t a = 0; a < spatial; ++a) {
        if (stride[a] == 0) throw Error(name + ": stride must be at least 1, got " + format_pair(spatial, stride));
        if (dilation[a] == 0)
            throw Error(name + ": dilation must be at least 1, got " + format_pair(spatial, dilation));
    }
    if (groups == 0) throw Error(name + ": groups must be at least 1, got 0");
    const std::size_t c = x[1], o = w[0];
    if (c % groups != 0 || o % groups != 0) {
        throw Error(name + ": groups (" + std::to_string(groups) + ") must divide the input channels (" +
                    std::to_string(c) + ") and the output channels (" + std::to_string(o) + ") (weight " +
                    format_shape(w) + ")");
    }
    if (w[1] * groups != c) {
        throw Error(name + ": input has " + std::to_string(c) + " channels, weight expects " +
                    std::to_string(w[1] * groups) + " (weight " + format_shape(w) +
                    (groups > 1 ? ", groups " + std::to_string(groups) : std::string()) + ")");
    }
    if (bias != nullptr && (bias->size() != 1 || (*bias)[0] != o)) {
        throw Error(name + ": bias must have shape [" + std::to_string(o) + "] to match weight " + format_shape(w) +
                    ", got " + format_shape(*bias));
    }
    for (const auto d : x) {
        if (d > std::numeric_limits<std::uint32_t>::max())
            throw Error(name + ": x " + format_shape(x) + " is too large");
    }
    Geometry g;
    g.spatial = static_cast<std::uint32_t>(spatial);
    g.n = static_cast<std::uint32_t>(x[0]);
    g.c = static_cast<std::uint32_t>(c);
    g.o = static_cast<std::uint32_t>(o);
    g.groups = static_cast<std::uint32_t>(groups);
    // Axis a of the arrays (0: H, 1: W); a 1-D geometry has only W, from element 0.
    std::array<std::size_t, 2> in{1, x[rank - 1]}, k{1, w[rank - 1]}, out{1, 0};
    std::array<std::size_t, 2> s{1, stride[0]}, p{0, padding[0]}, d{1, dilation[0]};
    if (spatial == 2) {
        in = {x[2], x[3]};
        k = {w[2], w[3]};
        s = stride;
        p = padding;
        d = dilation;
    }
    for (std::size_t a = 0; a < 2; ++a) {
        const std::size_t extent = d[a] * (k[a] - 1) + 1;
        if (k[a] == 0 || in[a] + 2 * p[a] < extent) {
            std::array<std::size_t, 2> kernel = spatial == 1 ? std::array<std::size_t, 2>{k[1], 0} : k;
            std::array<std::size_t, 2> padded = spatial == 1
                                                    ? std::array<std::size_t, 2>{in[1] + 2 * p[1], 0}
                                                    : std::array<std::size_t, 2>{in[0] + 2 * p[0], in[1] + 2 * p[1]};
            throw Error(name + ": kernel " + format_pair(spatial, kernel) + " (dilation " +
                        format_pair(spatial, dilation) + ") is larger than the padded input " +
                        format_pair(spatial, padded) + " (x " + format_shape(x) + ", padding " +
                        format_pair(spatial, padding) + ")");
        }
        out[a] = (in[a] + 2 * p[a] - extent) / s[a] + 1;
    }
    auto u32 = [](std::size_t v) { return static_cast<std::uint32_t>(v); };
    g.ih = u32(in[0]), g.iw = u32(in[1]), g.kh = u32(k[0]), g.kw = u32(k[1]), g.oh = u32(out[0]), g.ow = u32(out[1]);
    g.sh = u32(s[0]), g.sw = u32(s[1]), g.ph = u32(p[0]), g.pw = u32(p[1]), g.dh = u32(d[0]), g.dw = u32(d[1]);
    return g;
}

namespace {

constexpr const char* role_name(Role r)
{
    return r == Role::forward      ? "convolution"
           : r == Role::input_grad ? "convolution_transpose"
                                   : "convolution_weight_grad";
}

constexpr const char* op_name(Caller c, Role r)
{
    return c == Caller::conv1d             ? "conv1d"
           : c == Caller::conv2d           ? "conv2d"
           : c == Caller::conv_transpose2d ? "conv_transpose2d"
                                           : role_name(r);
}

template <Role R, Caller C> struct Convolution {
    static constexpr const char* name = op_name(C, R);
    Geometry g;  // the bias, when given, is input 2

    template <class T> void forward(OpContext<T>& c) const
    {
        const T* a = c.input(0).data();
        const T* b = c.input(1).data();
        const T* bias = c.num_inputs() > 2 ? c.input(2).data() : nullptr;
        if constexpr (R == Role::forward) {
            conv::forward(g, a, b, bias, c.output(y_shape(g)).data(), false);
        } else if constexpr (R == Role::input_grad) {
            conv::input_grad(g, a, b, bias, c.output(x_shape(g)).data(), false);
        } else {
            conv::weight_grad(g, a, b, c.output(w_shape(g)).data(), false);
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const T* go = c.grad_out().data();
        const T* a = c.input(0).data();
        const T* b = c.input(1).data();
        if constexpr (R == Role::forward) {  // a = x, b = w
            c.add_grad(0, x_shape(g),
                       [&](T* dst, bool add) { conv::input_grad(g, go, b, (const T*)nullptr, dst, add); });
            c.add_grad(1, w_shape(g), [&](T* dst, bool add) { conv::weight_grad(g, a, go, dst, add); });
            if (c.num_inputs() > 2) {
                c.add_grad(2, Shape{g.o}, [&](T* dst, bool add) {
                    conv::channel_sum(go, g.n, g.o, std::size_t(g.oh) * g.ow, dst, add);
                });
            }
        } else if constexpr (R == Role::input_grad) {  // a = y, b = w
            c.add_grad(0, y_shape(g), [&](T* dst, bool add) { conv::forward(g, go, b, (const T*)nullptr, dst, add); });
            c.add_grad(1, w_shape(g), [&](T* dst, bool add) { conv::weight_grad(g, go, a, dst, add); });
            if (c.num_inputs() > 2) {
                c.add_grad(2, Shape{g.c}, [&](T* dst, bool add) {
                    conv::channel_sum(go, g.n, g.c, std::size_t(g.ih) * g.iw, dst, add);
                });
            }
        } else {  // a = x, b = y
            c.add_grad(0, x_shape(g),
                       [&](T* dst, bool add) { conv::input_grad(g, b, go, (const T*)nullptr, dst, add); });
            c.add_grad(1, y_shape(g), [&](T* dst, bool add) { conv::forward(g, a, go, (const T*)nullptr, dst, add); });
        }
    }

    // Another role of the same geometry, recorded by this rule.
    template <class T> Var<T> rule(Role role, const Var<T>& a, const Var<T>& b) const
    {
        return apply(Caller::rule, role, g, a, b, Var<T>());
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& go = v.grad_out();
        const std::vector<std::ptrdiff_t> axes =
            g.spatial == 1 ? std::vector<std::ptrdiff_t>{0, 2} : std::vector<std::ptrdiff_t>{0, 2, 3};
        if constexpr (R == Role::forward) {
            if (v.needs_grad(0)) v.add_grad(0, rule(Role::input_grad, go, v.input(1)));
            if (v.needs_grad(1)) v.add_grad(1, rule(Role::weight_grad, v.input(0), go));
            if (v.num_inputs() > 2 && v.needs_grad(2)) v.add_grad(2, sum(go, axes));
        } else if constexpr (R == Role::input_grad) {
            if (v.needs_grad(0)) v.add_grad(0, rule(Role::forward, go, v.input(1)));
            if (v.needs_grad(1)) v.add_grad(1, rule(Role::weight_grad, go, v.input(0)));
            if (v.num_inputs() > 2 && v.needs_grad(2)) v.add_grad(2, sum(go, axes));
        } else {
            if (v.needs_grad(0)) v.add_grad(0, rule(Role::input_grad, v.input(1), go));
            if (v.needs_grad(1)) v.add_grad(1, rule(Role::forward, v.input(0), go));
        }
    }
};

template <Role R, Caller C, class T>
Var<T> apply_as(const Geometry& g, const Var<T>& a, const Var<T>& b, const Var<T>& bias)
{
    if (bias.defined()) return record(Convolution<R, C>{g}, a, b, bias);
    return record(Convolution<R, C>{g}, a, b);
}

}  // namespace

template <class T>
Var<T> apply(Caller caller, Role role, const Geometry& g, const Var<T>& a, const Var<T>& b, const Var<T>& bias)
{
    switch (caller) {
    case Caller::conv1d:
        return apply_as<Role::forward, Caller::conv1d>(g, a, b, bias);
    case Caller::conv2d:
        return apply_as<Role::forward, Caller::conv2d>(g, a, b, bias);
    case Caller::conv_transpose2d:
        return apply_as<Role::input_grad, Caller::conv_transpose2d>(g, a, b, bias);
    default:
        break;
    }
    switch (role) {
    case Role::forward:
        return apply_as<Role::forward, Caller::rule>(g, a, b, bias);
    case Role::input_grad:
        return apply_as<Role::input_grad, Caller::rule>(g, a, b, bias);
    default:
        return apply_as<Role::weight_grad, Caller::rule>(g, a, b, bias);
    }
}

template Var<float> apply<float>(Caller, Role, const Geometry&, const Var<float>&, const Var<float>&,
                                 const Var<float>&);
template Var<double> apply<double>(Caller, Role, const Geometry&, const Var<double>&, const Var<double>&,
                                   const Var<double>&);

}  // namespace conv

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, std::array<std::size_t, 2> stride,
              std::array<std::size_t, 2> padding, std::array<std::size_t, 2> dilation, std::size_t groups)
{
    const auto& sx = input_shape(TAPEGRAD_OP_NAME, x);
    const auto& sw = input_shape(TAPEGRAD_OP_NAME, w);
    const conv::Shape sb = b.defined() ? conv::Shape(input_shape(TAPEGRAD_OP_NAME, b)) : conv::Shape{};
    const conv::Geometry g = conv::make(TAPEGRAD_OP_NAME, 2, conv::Shape(sx), conv::Shape(sw),
                                        b.defined() ? &sb : nullptr, stride, padding, dilation, groups);
    return conv::apply(conv::Caller::conv2d, conv::Role::forward, g, x, w, b);
}

template Var<float> conv2d<float>(const Var<float>&, const Var<float>&, const Var<float>&, std::array<std::size_t, 2>,
                                  std::array<std::size_t, 2>, std::array<std::size_t, 2>, std::size_t);
template Var<double> conv2d<double>(const Var<double>&, const Var<double>&, const Var<double>&,
                                    std::array<std::size_t, 2>, std::array<std::size_t, 2>, std::array<std::size_t, 2>,
                                    std::size_t);

}  // namespace tg

#include "conv_samples.hpp"

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::conv_samples::Case;
    std::vector<Case> cases{
        {"(1,1,4,4)*(2,1,3,3)+b", {1, 1, 4, 4}, {2, 1, 3, 3}, true, {1, 1}, {0, 0}, {1, 1}, 1},
        {"(2,2,5,4)*(3,2,2,3) stride (2,1) pad (1,0)", {2, 2, 5, 4}, {3, 2, 2, 3}, false, {2, 1}, {1, 0}, {1, 1}, 1},
        {"(1,2,5,5)*(2,2,2,2) dilation 2 pad 1", {1, 2, 5, 5}, {2, 2, 2, 2}, true, {1, 1}, {1, 1}, {2, 2}, 1},
        {"(1,4,3,3)*(4,2,1,1) groups 2 pointwise", {1, 4, 3, 3}, {4, 2, 1, 1}, true, {1, 1}, {0, 0}, {1, 1}, 2},
        {"(2,2,3,3)*(2,1,3,3) depthwise pad 1 stride 2", {2, 2, 3, 3}, {2, 1, 3, 3}, false, {2, 2}, {1, 1}, {1, 1}, 2},
        {"(1,1,7,6)*(1,1,3,2) stride (3,2)", {1, 1, 7, 6}, {1, 1, 3, 2}, true, {3, 2}, {0, 0}, {1, 1}, 1},
        {"(0,2,4,4)*(3,2,3,3)+b empty batch", {0, 2, 4, 4}, {3, 2, 3, 3}, true, {1, 1}, {0, 0}, {1, 1}, 1},
    };
    return tg::conv_samples::make(rng, cases, 2, [](const auto& v, const Case& k, const auto& b) {
        return tg::conv2d(v[0], v[1], b, k.stride, k.padding, k.dilation, k.groups);
    });
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    using Pair = std::array<std::size_t, 2>;
    const auto ones = [](Shape s) { return xt::xarray<double>(xt::ones<double>(s)); };
    // conv(stride, padding, dilation, groups): conv2d on x v[0], weight v[1] and bias v[2].
    auto conv = [](Pair stride, Pair padding, Pair dilation, std::size_t groups) {
        return [=](const auto& v) { return tg::conv2d(v[0], v[1], v[2], stride, padding, dilation, groups); };
    };
    const auto plain = conv({1, 1}, {0, 0}, {1, 1}, 1);
    const xt::xarray<double> x = ones({1, 4, 6, 6}), w = ones({2, 4, 3, 3}), b = ones({2});
    return {
        tg::make_error_input("x of rank 3", {ones({4, 6, 6}), w, b}, plain, "expected x [N, C, H, W], got [4, 6, 6]"),
        tg::make_error_input("weight of rank 3", {x, ones({2, 4, 3}), b}, plain,
                             "expected weight [O, C/groups, KH, KW], got [2, 4, 3]"),
        tg::make_error_input("stride (1,0)", {x, w, b}, conv({1, 0}, {0, 0}, {1, 1}, 1),
                             "stride must be at least 1, got [1, 0]"),
        tg::make_error_input("dilation (0,1)", {x, w, b}, conv({1, 1}, {0, 0}, {0, 1}, 1),
                             "dilation must be at least 1, got [0, 1]"),
        tg::make_error_input("groups 0", {x, w, b}, conv({1, 1}, {0, 0}, {1, 1}, 0),
                             "groups must be at least 1, got 0"),
        tg::make_error_input("groups 3 for 4 channels", {x, ones({3, 4, 3, 3}), ones({3})},
                             conv({1, 1}, {0, 0}, {1, 1}, 3),
                             "groups (3) must divide the input channels (4) and the output channels (3)"),
        tg::make_error_input("weight for 3 channels, x with 4", {x, ones({2, 3, 3, 3}), b}, plain,
                             "input has 4 channels, weight expects 3 (weight [2, 3, 3, 3])"),
        tg::make_error_input("weight for 2 channels a group, x with 4 in 4 groups", {x, ones({4, 2, 3, 3}), ones({4})},
                             conv({1, 1}, {0, 0}, {1, 1}, 4),
                             "input has 4 channels, weight expects 8 (weight [4, 2, 3, 3], groups 4)"),
        tg::make_error_input("bias (2,1) for 2 outputs", {x, w, ones({2, 1})}, plain,
                             "bias must have shape [2] to match weight [2, 4, 3, 3], got [2, 1]"),
        tg::make_error_input("kernel larger than the input", {ones({1, 4, 2, 6}), w, b}, plain,
                             "kernel [3, 3] (dilation [1, 1]) is larger than the padded input [2, 6]"),
        tg::make_error_input("kernel larger than the padded input", {ones({1, 4, 6, 1}), w, b},
                             conv({1, 1}, {0, 0}, {1, 1}, 1), "is larger than the padded input [6, 1]")};
}
