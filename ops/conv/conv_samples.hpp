#pragma once
// The samples of conv1d, conv2d and conv_transpose2d: small cases (gradgradcheck differences
// every input element) with an independent reference, a direct loop over the definition,
// and the PyTorch call for the reference data.

#include <array>
#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::conv_samples {

struct Case {
    std::string label;
    std::vector<std::size_t> x, w;
    bool bias;
    std::array<std::size_t, 2> stride, padding, dilation;
    std::size_t groups;
    std::array<std::size_t, 2> output_padding{0, 0};
};

// x seen as [n, c, h, w] (1-D: h = 1) and the per-axis parameters (1-D: the H axis is trivial).
struct Dims {
    std::size_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, oph, opw;
};

inline Dims dims(const Case& k, std::size_t spatial, std::size_t o)
{
    if (spatial == 1) {
        return {k.x[0],
                k.x[1],
                1,
                k.x[2],
                o,
                1,
                k.w[2],
                1,
                k.stride[0],
                0,
                k.padding[0],
                1,
                k.dilation[0],
                0,
                k.output_padding[0]};
    }
    return {k.x[0],
            k.x[1],
            k.x[2],
            k.x[3],
            o,
            k.w[2],
            k.w[3],
            k.stride[0],
            k.stride[1],
            k.padding[0],
            k.padding[1],
            k.dilation[0],
            k.dilation[1],
            k.output_padding[0],
            k.output_padding[1]};
}

// y = conv(x, w) + b by the definition (cross-correlation, zero padding).
inline xt::xarray<double> conv_ref(const Case& k, std::size_t spatial, const std::vector<xt::xarray<double>>& in)
{
    const Dims d = dims(k, spatial, k.w[0]);
    const std::size_t cg = d.c / k.groups, og = d.o / k.groups;
    const std::size_t oh = (d.h + 2 * d.ph - d.dh * (d.kh - 1) - 1) / d.sh + 1;
    const std::size_t ow = (d.w + 2 * d.pw - d.dw * (d.kw - 1) - 1) / d.sw + 1;
    xt::xarray<double> y = xt::zeros<double>({d.n, d.o, oh, ow});
    const double* x = in[0].data();
    const double* w = in[1].data();
    for (std::size_t n = 0; n < d.n; ++n)
        for (std::size_t o = 0; o < d.o; ++o)
            for (std::size_t i = 0; i < oh; ++i)
                for (std::size_t j = 0; j < ow; ++j) {
                    double s = k.bias ? in[2](o) : 0.0;
                    const std::size_t grp = o / og;
                    for (std::size_t cc = 0; cc < cg; ++cc)
                        for (std::size_t a = 0; a < d.kh; ++a)
                            for (std::size_t b = 0; b < d.kw; ++b) {
                                const long yy = long(i * d.sh + a * d.dh) - long(d.ph);
                                const long xx = long(j * d.sw + b * d.dw) - long(d.pw);
                                if (yy < 0 || xx < 0 || yy >= long(d.h) || xx >= long(d.w)) continue;
                                const std::size_t c = grp * cg + cc;
                                s += w[((o * cg + cc) * d.kh + a) * d.kw + b] *
                                     x[((n * d.c + c) * d.h + std::size_t(yy)) * d.w + std::size_t(xx)];
                            }
                    y(n, o, i, j) = s;
                }
    if (spatial == 1) y.reshape({d.n, d.o, ow});
    return y;
}

// x_out = conv_transpose(x, w) + b by scattering every input element through the kernel;
// w [C, O/groups, KH, KW].
inline xt::xarray<double> conv_transpose_ref(const Case& k, const std::vector<xt::xarray<double>>& in)
{
    const Dims d = dims(k, 2, k.w[1] * k.groups);
    const std::size_t cg = d.c / k.groups, og = d.o / k.groups;
    const std::size_t oh = (d.h - 1) * d.sh - 2 * d.ph + d.dh * (d.kh - 1) + d.oph + 1;
    const std::size_t ow = (d.w - 1) * d.sw - 2 * d.pw + d.dw * (d.kw - 1) + d.opw + 1;
    xt::xarray<double> y = xt::zeros<double>({d.n, d.o, oh, ow});
    for (std::size_t n = 0; n < d.n; ++n)
        for (std::size_t c = 0; c < d.c; ++c)
            for (std::size_t i = 0; i < d.h; ++i)
                for (std::size_t j = 0; j < d.w; ++j)
                    for (std::size_t oo = 0; oo < og; ++oo)
                        for (std::size_t a = 0; a < d.kh; ++a)
                            for (std::size_t b = 0; b < d.kw; ++b) {
                                const long yy = long(i * d.sh + a * d.dh) - long(d.ph);
                                const long xx = long(j * d.sw + b * d.dw) - long(d.pw);
                                if (yy < 0 || xx < 0 || yy >= long(oh) || xx >= long(ow)) continue;
                                const std::size_t o = (c / cg) * og + oo;
                                y(n, o, std::size_t(yy), std::size_t(xx)) += in[1](c, oo, a, b) * in[0](n, c, i, j);
                            }
    if (k.bias) {
        for (std::size_t n = 0; n < d.n; ++n)
            for (std::size_t o = 0; o < d.o; ++o)
                for (std::size_t i = 0; i < oh; ++i)
                    for (std::size_t j = 0; j < ow; ++j) y(n, o, i, j) += in[2](o);
    }
    return y;
}

inline std::string pair(std::size_t spatial, std::array<std::size_t, 2> v)
{
    if (spatial == 1) return std::to_string(v[0]);
    return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")";
}

/// The samples of conv1d (spatial 1) or conv2d (spatial 2) for the given cases;
/// `call(v, k, b)` calls the op on inputs v with case k's arguments and bias b.
template <class Call>
std::vector<OpSample> make(std::mt19937_64& rng, const std::vector<Case>& cases, std::size_t spatial, Call call)
{
    std::vector<OpSample> out;
    for (const Case& k : cases) {
        std::vector<xt::xarray<double>> inputs{sample_uniform(rng, k.x, -1.0, 1.0),
                                               sample_uniform(rng, k.w, -1.0, 1.0)};
        if (k.bias) inputs.push_back(sample_uniform(rng, {k.w[0]}, -1.0, 1.0));
        auto f = [k, call](const auto& v) {
            using V = std::decay_t<decltype(v[0])>;
            return call(v, k, k.bias ? v[2] : V());
        };
        auto ref = [k, spatial](const auto& x) { return conv_ref(k, spatial, x); };
        const std::string torch = std::string("torch.nn.functional.conv") + (spatial == 1 ? "1d" : "2d") +
                                  "(x[0], x[1], " + (k.bias ? "x[2]" : "None") + ", stride=" + pair(spatial, k.stride) +
                                  ", padding=" + pair(spatial, k.padding) + ", dilation=" + pair(spatial, k.dilation) +
                                  ", groups=" + std::to_string(k.groups) + ")";
        out.push_back(make_sample(k.label, std::move(inputs), f, ref)
                          .with_torch(torch)
                          .with_optional(k.bias ? std::vector<std::size_t>{2} : std::vector<std::size_t>{}));
    }
    return out;
}

}  // namespace tg::conv_samples
