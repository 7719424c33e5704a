// ops/reduction/var.cpp — y = sum((x - mean(x))^2) / max(0, n - correction) along one axis
//   (removed unless keepdim), n the axis's length: torch.var(x, dim, correction=c). The
//   mean is taken first (two passes), so a large common offset costs no precision.
//   correction 1 (the default) is the unbiased sample variance, 0 the population variance.
//   As PyTorch, n - correction <= 0 divides by 0: inf, or NaN where the sum is 0 (n = 1
//   with correction 1, and an empty axis).
//   x [..., n, ...] -> y [..., ...] (or [..., 1, ...] with keepdim)
//   vjp: grad_x = (x - mean(x)) * (grad_out * 2 / max(0, n - correction))
//        (mean and grad_out in the keepdim shape)

#include <algorithm>

#include "along_axis.hpp"

namespace tg {

//! public
/// Variance along an axis with Bessel's correction by default: sum((x - mean)^2) / (n - correction) (torch.var).
/// The axis is removed unless keepdim; negative counts from the end; a rank-0 x takes axis 0 or -1. As PyTorch,
/// n - correction <= 0 gives inf (NaN where every deviation is 0, as for n = 1 and an empty axis).
template <class T> Var<T> var(const Var<T>& x, std::ptrdiff_t axis, std::size_t correction = 1, bool keepdim = false);
//! end

namespace {

struct Variance {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::ptrdiff_t axis;
    std::size_t correction;
    bool keepdim;

    // max(0, n - correction) as PyTorch clamps it: 0 makes the result inf or NaN.
    template <class T> T divisor(std::size_t n) const { return n > correction ? static_cast<T>(n - correction) : T(0); }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const reduction::AlongAxis r = reduction::along(name, x.shape(), axis, keepdim);
        T* y = c.output(r.out).data();
        // The slice means are kept for the fused backward.
        T* means = nullptr;
        if (c.recording()) {
            auto& saved = c.saved(0);
            if (!detail::shapes_equal(saved.shape(), r.out)) saved.resize(r.out);
            means = saved.data();
        }
        const std::size_t n = r.split.len;
        const T d = divisor<T>(n);
        const T* px = x.data();
        std::size_t o = 0;
        axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
            T total = 0;
            for (std::size_t l = 0; l < n; ++l) total += px[off + l * st];
            const T m = total / static_cast<T>(n);
            T squares = 0;
            for (std::size_t l = 0; l < n; ++l) {
                const T dev = px[off + l * st] - m;
                squares += dev * dev;
            }
            y[o] = squares / d;
            if (means != nullptr) means[o] = m;
            ++o;
        });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const reduction::AlongAxis r = reduction::along(name, x.shape(), axis, keepdim);
        const T scale = T(2) / divisor<T>(r.split.len);
        const T* px = x.data();
        const T* means = c.saved(0).data();
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            std::size_t o = 0;
            axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
                const T gs = g[o] * scale;
                for (std::size_t l = 0; l < r.split.len; ++l) {
                    const std::size_t k = off + l * st;
                    const T v = (px[k] - means[o]) * gs;
                    dst[k] = add ? dst[k] + v : v;
                }
                ++o;
            });
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        const reduction::AlongAxis r = reduction::along(name, xs, axis, keepdim);
        const T scale = T(2) / divisor<T>(r.split.len);
        const Var<T> x = v.input(0);
        // A rank-0 x is its own mean (mean() takes no axis of a rank-0 Var).
        const Var<T> dev = xs.empty() ? x - x : x - mean(x, {static_cast<std::ptrdiff_t>(r.split.axis)}, true);
        v.add_grad(0, dev * (reduction::kept(v.grad_out(), r.keep) * scale));
    }
};

}  // namespace

template <class T> Var<T> var(const Var<T>& x, std::ptrdiff_t axis, std::size_t correction, bool keepdim)
{
    reduction::along(Variance::name, input_shape(TAPEGRAD_OP_NAME, x), axis, keepdim);  // checks the axis
    return record(Variance{axis, correction, keepdim}, x);
}

template Var<float> var<float>(const Var<float>&, std::ptrdiff_t, std::size_t, bool);
template Var<double> var<double>(const Var<double>&, std::ptrdiff_t, std::size_t, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto draw = [&](const auto& s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    auto samples = [&](std::size_t correction, std::vector<tg::reduction::AxisCase> cases) {
        return tg::reduction::axis_samples(
            cases, draw, [correction](const auto& x, std::ptrdiff_t a, bool k) { return tg::var(x, a, correction, k); },
            [correction](const xt::xarray<double>& x, std::size_t a) {
                return tg::reduction::per_slice(x, a, [correction](const std::vector<double>& s) {
                    double m = 0;
                    for (double v : s) m += v;
                    m /= static_cast<double>(s.size());
                    double squares = 0;
                    for (double v : s) squares += (v - m) * (v - m);
                    const double n = static_cast<double>(s.size());
                    return squares / std::max(0.0, n - static_cast<double>(correction));
                });
            },
            [correction](const std::string& in, std::ptrdiff_t a, bool k) {
                return "torch.var(" + in + ", dim=" + std::to_string(a) + ", correction=" + std::to_string(correction) +
                       tg::reduction::torch_keepdim(k) + ")";
            });
    };
    // With the default correction 1 a slice of one element has no variance (0 / 0, NaN,
    // which gradcheck cannot check): those shapes, the empty axes among them, go with
    // correction 0, which gives 0 for one element and NaN for none, as PyTorch.
    std::vector<tg::reduction::AxisCase> unbiased, population;
    for (auto c : tg::reduction::axis_cases(true, true)) {
        const bool one = c.shape.empty() || c.label.find("(1,)") != std::string::npos ||
                         c.label.find("(3,1) axis 1") != std::string::npos;
        const bool empty = c.label.find("empty axis") != std::string::npos;
        (one || empty ? population : unbiased).push_back(std::move(c));
    }
    population.push_back({"(2,3,4) axis -1", {2, 3, 4}, -1, false, false});
    for (auto& c : population) c.label += " correction 0";
    auto out = samples(1, unbiased);
    auto more = samples(0, population);
    out.insert(out.end(), more.begin(), more.end());
    auto two = samples(2, {{"(3,5) axis 1 correction 2", {3, 5}, 1, false, false}});
    out.insert(out.end(), two.begin(), two.end());
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::var(x, axis); });
}
