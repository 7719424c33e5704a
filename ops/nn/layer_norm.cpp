// ops/nn/layer_norm.cpp — layer normalisation over the trailing dims of x [*, D1, ..., Dk] given by
//   normalized_shape = [D1, ..., Dk] (torch.nn.functional.layer_norm). Per row r of m = D1 ... Dk values:
//     mean_r = sum(x_r) / m,  var_r = sum((x_r - mean_r)^2) / m  (biased),  invstd_r = 1 / sqrt(var_r + eps)
//     xhat = (x - mean_r) invstd_r;   y [*, D1..Dk] = xhat weight + bias   (weight, bias [D1..Dk], each optional)
//   vjp: gxhat = grad_out weight
//        grad_x [*, D1..Dk] = invstd_r / m (m gxhat - sum_r(gxhat) - xhat sum_r(gxhat xhat))   (sums over the row)
//        grad_weight [D1..Dk] = sum over rows of grad_out xhat,   grad_bias [D1..Dk] = sum over rows of grad_out
//   The rule recomputes xhat from x with tg ops, so that the row statistics are differentiated too.
// Each row's mean and squared deviation are a vectorised corrected two-pass over the row
// (in L1 for the second pass), so a large common offset costs no precision; forward keeps
// mean_r and invstd_r for the fused backward.

#include <algorithm>
#include <cmath>
#include <vector>

#include "moments.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Layer normalisation over the trailing dims given by normalized_shape (torch.nn.functional.layer_norm):
/// each row's mean and biased variance, then weight and bias of shape normalized_shape (an undefined Var: none).
template <class T>
Var<T> layer_norm(const Var<T>& x, const std::vector<std::size_t>& normalized_shape, const Var<T>& weight,
                  const Var<T>& bias, double eps = 1e-5);
//! end

namespace {

// sum(g w) and sum(g w (x - m)) over a row of n values (w null: 1).
template <class T> void row_grad_sums(const T* g, const T* w, const T* x, T m, std::size_t n, T& s1, T& s2)
{
    using B = kernel::batch<T>;
    constexpr std::size_t width = B::size;
    s1 = 0;
    s2 = 0;
    std::size_t i = 0;
    if (n >= width) {
        const B mb(m);
        B a1(T(0)), a2(T(0));
        for (; i + width <= n; i += width) {
            B gv = B::load_unaligned(g + i);
            if (w != nullptr) gv *= B::load_unaligned(w + i);
            a1 += gv;
            a2 += gv * (B::load_unaligned(x + i) - mb);
        }
        s1 = xsimd::hadd(a1);
        s2 = xsimd::hadd(a2);
    }
    for (; i < n; ++i) {
        const T gv = w != nullptr ? g[i] * w[i] : g[i];
        s1 += gv;
        s2 += gv * (x[i] - m);
    }
}

struct LayerNorm {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t dims;  // the number of trailing (normalised) dims
    double eps;
    bool has_weight, has_bias;

    std::size_t bias_index() const noexcept { return has_weight ? 2 : 1; }

    // x as rows: m values per row (the normalised dims), `rows` of them (the leading dims).
    template <class S> void rows_of(const S& shape, std::size_t& rows, std::size_t& m) const
    {
        rows = 1;
        m = 1;
        const std::size_t lead = shape.size() - dims;
        for (std::size_t j = 0; j < shape.size(); ++j) (j < lead ? rows : m) *= shape[j];
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        std::size_t rows = 0, m = 0;
        rows_of(x.shape(), rows, m);
        auto& invstd = c.saved(1);  // saved(1) first: creating a slot may move the others
        auto& mean = c.saved(0);
        // Each slot on its own: a reused tape entry may hold another op's buffers.
        if (mean.shape() != typename xt::xarray<T>::shape_type{rows}) mean.resize({rows});
        if (invstd.shape() != typename xt::xarray<T>::shape_type{rows}) invstd.resize({rows});
        const T* w = has_weight ? c.input(1).data() : nullptr;
        const T* b = has_bias ? c.input(bias_index()).data() : nullptr;
        const T* px = x.data();
        T* py = c.output(x.shape()).data();
        if (m == 0) return;
        for (std::size_t r = 0; r < rows; ++r) {
            double mu = 0, m2 = 0;
            normalization::moments(px + r * m, m, mu, m2);
            const T is = static_cast<T>(1.0 / std::sqrt(m2 / static_cast<double>(m) + eps));
            mean(r) = static_cast<T>(mu);
            invstd(r) = is;
            // y = (x scale + shift) weight + bias, scale = invstd, shift = -mean invstd (as PyTorch's CPU kernel).
            const kernel::Bcast<T> scale{is}, shift{-mean(r) * is};
            const T* xr = px + r * m;
            T* yr = py + r * m;
            if (w != nullptr && b != nullptr) {
                kernel::map<false>(
                    m, yr, [](auto xv, auto s, auto t, auto wv, auto bv) { return (xv * s + t) * wv + bv; }, xr, scale,
                    shift, w, b);
            } else if (w != nullptr) {
                kernel::map<false>(
                    m, yr, [](auto xv, auto s, auto t, auto wv) { return (xv * s + t) * wv; }, xr, scale, shift, w);
            } else if (b != nullptr) {
                kernel::map<false>(
                    m, yr, [](auto xv, auto s, auto t, auto bv) { return (xv * s + t) + bv; }, xr, scale, shift, b);
            } else {
                kernel::map<false>(
                    m, yr, [](auto xv, auto s, auto t) { return xv * s + t; }, xr, scale, shift);
            }
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        std::size_t rows = 0, m = 0;
        rows_of(x.shape(), rows, m);
        auto& acc = c.saved(2);  // before the pointers below: creating a slot may move the others
        const T* px = x.data();
        const T* g = c.grad_out().data();
        const T* mean = c.saved(0).data();
        const T* invstd = c.saved(1).data();
        const T* w = has_weight ? c.input(1).data() : nullptr;
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (m == 0) return;
            const T inv_m = T(1) / static_cast<T>(m);
            for (std::size_t r = 0; r < rows; ++r) {
                const std::size_t off = r * m;
                T s1 = 0, s2 = 0;
                row_grad_sums(g + off, w, px + off, mean[r], m, s1, s2);
                // grad_x = a g weight + bq (x - mean) + d: a = invstd, bq = -invstd^3 s2 / m, d = -invstd s1 / m.
                const T is = invstd[r];
                const kernel::Bcast<T> a{is}, bq{-is * is * is * s2 * inv_m}, d{-is * s1 * inv_m}, mu{mean[r]};
                if (w != nullptr) {
                    kernel::map_to(
                        add, m, dst + off,
                        [](auto gv, auto wv, auto xv, auto av, auto bv, auto mv, auto dv) {
                            return av * gv * wv + bv * (xv - mv) + dv;
                        },
                        g + off, w, px + off, a, bq, mu, d);
                } else {
                    kernel::map_to(
                        add, m, dst + off,
                        [](auto gv, auto xv, auto av, auto bv, auto mv, auto dv) {
                            return av * gv + bv * (xv - mv) + dv;
                        },
                        g + off, px + off, a, bq, mu, d);
                }
            }
        });
        // weight and bias: the rows summed into a buffer first, then added once (so that a
        // second backward adds exactly the same gradient again).
        const bool need_w = has_weight && c.needs_grad(1);
        const bool need_b = has_bias && c.needs_grad(bias_index());
        if (!need_w && !need_b) return;
        if (acc.shape() != typename xt::xarray<T>::shape_type{2, m}) acc.resize({2, m});
        T* gw = acc.data();
        T* gb = gw + m;
        std::fill_n(gw, 2 * m, T(0));
        for (std::size_t r = 0; r < rows; ++r) {
            const std::size_t off = r * m;
            const kernel::Bcast<T> is{invstd[r]}, mu{mean[r]};
            if (need_w) {
                kernel::map<true>(
                    m, gw, [](auto gv, auto xv, auto mv, auto sv) { return gv * ((xv - mv) * sv); }, g + off, px + off,
                    mu, is);
            }
            if (need_b) kernel::add_or_assign(gb, g + off, m, true);
        }
        const auto& param_shape = c.input(has_weight ? 1 : bias_index()).shape();
        if (need_w) {
            c.add_grad(1, param_shape, [&](T* dst, bool add) { kernel::add_or_assign(dst, gw, m, add); });
        }
        if (need_b) {
            c.add_grad(bias_index(), param_shape,
                       [&](T* dst, bool add) { kernel::add_or_assign(dst, static_cast<const T*>(gb), m, add); });
        }
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        const std::size_t lead = xs.size() - dims;
        std::vector<std::ptrdiff_t> axes;
        for (std::size_t j = lead; j < xs.size(); ++j) axes.push_back(static_cast<std::ptrdiff_t>(j));
        const std::vector<std::size_t> normalized(xs.begin() + static_cast<std::ptrdiff_t>(lead), xs.end());
        const Var<T>& g = v.grad_out();
        const bool need_x = v.needs_grad(0);
        const bool need_w = has_weight && v.needs_grad(1);
        if (has_bias && v.needs_grad(bias_index())) v.add_grad(bias_index(), sum_to(g, normalized));
        if (!need_x && !need_w) return;
        const Var<T> x = v.input(0);
        const Var<T> centred = x - mean(x, axes, true);
        const Var<T> invstd = T(1) / sqrt(mean(centred * centred, axes, true) + static_cast<T>(eps));
        const Var<T> xhat = centred * invstd;
        if (need_x) {
            const Var<T> gxhat = has_weight ? g * v.input(1) : g;
            v.add_grad(0, invstd * (gxhat - mean(gxhat, axes, true) - xhat * mean(gxhat * xhat, axes, true)));
        }
        if (need_w) v.add_grad(1, sum_to(g * xhat, normalized));
    }
};

}  // namespace

template <class T>
Var<T> layer_norm(const Var<T>& x, const std::vector<std::size_t>& normalized_shape, const Var<T>& weight,
                  const Var<T>& bias, double eps)
{
    const char* op = LayerNorm::name;
    const auto& s = input_shape(op, x);
    if (normalized_shape.empty()) {
        throw Error(std::string(op) + ": normalized_shape must have at least one dimension, got []");
    }
    const std::size_t k = normalized_shape.size();
    bool fits = s.size() >= k;
    for (std::size_t j = 0; fits && j < k; ++j) fits = s[s.size() - k + j] == normalized_shape[j];
    if (!fits) {
        throw Error(std::string(op) + ": normalized_shape " + format_shape(normalized_shape) +
                    " does not match the trailing dims of x " + format_shape(s));
    }
    auto check = [&](const char* what, const Var<T>& p) {
        const auto& ps = input_shape(op, p);
        if (!detail::shapes_equal(ps, normalized_shape)) {
            throw Error(std::string(op) + ": " + what + " must have shape " + format_shape(normalized_shape) +
                        " (normalized_shape), got " + format_shape(ps));
        }
    };
    if (weight.defined()) check("weight", weight);
    if (bias.defined()) check("bias", bias);
    if (!(eps >= 0 && std::isfinite(eps))) {
        throw Error(std::string(op) + ": eps must be finite and >= 0, got " + format_number(eps));
    }
    const LayerNorm ln{k, eps, weight.defined(), bias.defined()};
    if (weight.defined() && bias.defined()) return record(ln, x, weight, bias);
    if (weight.defined()) return record(ln, x, weight);
    if (bias.defined()) return record(ln, x, bias);
    return record(ln, x);
}

template Var<float> layer_norm<float>(const Var<float>&, const std::vector<std::size_t>&, const Var<float>&,
                                      const Var<float>&, double);
template Var<double> layer_norm<double>(const Var<double>&, const std::vector<std::size_t>&, const Var<double>&,
                                        const Var<double>&, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s, double lo = -2.0, double hi = 2.0) {
        return tg::sample_uniform(rng, s, lo, hi);
    };
    // The plain formula, row by row over the trailing `dims` dims.
    struct Ref {
        std::size_t dims;
        bool weight, bias;
        double eps;
        xt::xarray<double> operator()(const std::vector<xt::xarray<double>>& in) const
        {
            const xt::xarray<double>& x = in[0];
            std::size_t m = 1;
            for (std::size_t j = x.dimension() - dims; j < x.dimension(); ++j) m *= x.shape()[j];
            const std::size_t rows = x.size() / m;
            xt::xarray<double> y = xt::zeros<double>(x.shape());
            for (std::size_t r = 0; r < rows; ++r) {
                double mean = 0, var = 0;
                for (std::size_t j = 0; j < m; ++j) mean += x.data()[r * m + j];
                mean /= static_cast<double>(m);
                for (std::size_t j = 0; j < m; ++j) var += (x.data()[r * m + j] - mean) * (x.data()[r * m + j] - mean);
                var /= static_cast<double>(m);
                for (std::size_t j = 0; j < m; ++j) {
                    const double wj = weight ? in[1].data()[j] : 1.0, bj = bias ? in[weight ? 2 : 1].data()[j] : 0.0;
                    y.data()[r * m + j] = (x.data()[r * m + j] - mean) / std::sqrt(var + eps) * wj + bj;
                }
            }
            return y;
        }
    };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::size_t dims, bool weight, bool bias,
                      double eps) {
        const std::vector<std::size_t> normalized(shape.end() - static_cast<std::ptrdiff_t>(dims), shape.end());
        std::vector<xt::xarray<double>> inputs{u(shape)};
        if (weight) inputs.push_back(u(normalized, 0.5, 1.5));
        if (bias) inputs.push_back(u(normalized));
        std::vector<std::size_t> optional;  // the weight and the bias, when given
        for (std::size_t j = 1; j < inputs.size(); ++j) optional.push_back(j);
        std::string ns = "[";
        for (std::size_t j = 0; j < dims; ++j) ns += (j ? ", " : "") + std::to_string(normalized[j]);
        ns += "]";
        // PyTorch 1.13 fails in the second-order backward of layer_norm given a bias but no
        // weight: that bias is added outside the call (the same function).
        const bool bias_outside = bias && !weight;
        const std::string wb = std::string(weight ? "x[1]" : "None") + ", " + (bias && weight ? "x[2]" : "None");
        out.push_back(tg::make_sample(
                          std::move(label), inputs,
                          [normalized, weight, bias, eps](const auto& v) {
                              using V = std::decay_t<decltype(v[0])>;
                              const V w = weight ? v[1] : V();
                              const V b = bias ? v[weight ? 2 : 1] : V();
                              return tg::layer_norm(v[0], normalized, w, b, eps);
                          },
                          Ref{dims, weight, bias, eps})
                          .with_torch("torch.nn.functional.layer_norm(x[0], " + ns + ", " + wb + ", " +
                                      tg::format_number(eps) + ")" + (bias_outside ? " + x[1]" : ""))
                          .with_optional(optional));
    };
    sample("(3,4) [4] weight bias", {3, 4}, 1, true, true, 1e-5);
    sample("(2,2,3) [2,3] weight bias", {2, 2, 3}, 2, true, true, 1e-5);
    sample("(2,9) [9] weight bias", {2, 9}, 1, true, true, 1e-5);
    sample("(2,3,5) [5] no weight no bias", {2, 3, 5}, 1, false, false, 1e-5);
    sample("(4,) [4] weight only eps 1e-3", {4}, 1, true, false, 1e-3);
    sample("(2,2,3) [3] bias only", {2, 2, 3}, 1, false, true, 1e-5);
    sample("(0,3) [3] empty weight bias", {0, 3}, 1, true, true, 1e-5);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    const auto ones = [](Shape s) { return xt::xarray<double>(xt::ones<double>(s)); };
    const xt::xarray<double> x = ones({2, 3, 4});
    std::vector<tg::ErrorInput> errors{
        tg::make_error_input(
            "normalized_shape empty", {x},
            [](const auto& v) { return tg::layer_norm(v[0], Shape{}, std::decay_t<decltype(v[0])>(), v[0]); },
            "normalized_shape must have at least one dimension, got []"),
        tg::make_error_input(
            "normalized_shape (3,) for (2,3,4)", {x, ones({3}), ones({3})},
            [](const auto& v) { return tg::layer_norm(v[0], Shape{3}, v[1], v[2]); },
            "normalized_shape [3] does not match the trailing dims of x [2, 3, 4]"),
        tg::make_error_input(
            "normalized_shape longer than x", {ones({4}), ones({2, 4}), ones({2, 4})},
            [](const auto& v) {
                return tg::layer_norm(v[0], Shape{2, 4}, v[1], v[2]);
            },
            "normalized_shape [2, 4] does not match the trailing dims of x [4]"),
        tg::make_error_input(
            "weight (3,) for normalized_shape (4,)", {x, ones({3}), ones({4})},
            [](const auto& v) { return tg::layer_norm(v[0], Shape{4}, v[1], v[2]); },
            "weight must have shape [4] (normalized_shape), got [3]"),
        tg::make_error_input(
            "bias (3,4) for normalized_shape (4,)", {x, ones({4}), ones({3, 4})},
            [](const auto& v) { return tg::layer_norm(v[0], Shape{4}, v[1], v[2]); },
            "bias must have shape [4] (normalized_shape), got [3, 4]")};
    for (const double eps : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        const std::string shown = tg::format_number(eps);
        errors.push_back(tg::make_error_input(
            "eps " + shown, {x, ones({4}), ones({4})},
            [eps](const auto& v) { return tg::layer_norm(v[0], Shape{4}, v[1], v[2], eps); },
            "eps must be finite and >= 0, got " + shown));
    }
    return errors;
}
