// ops/reduction/norm.cpp — y = ||x||_p = (sum |x|^p)^(1/p) over all elements (rank 0) or along
//   one axis (removed unless keepdim), for p > 0: p = 1 is sum |x|, p = inf is max |x|
//   (torch.linalg.vector_norm). Computed around m = max |x|, as m * (sum (|x| / m)^p)^(1/p),
//   so that no power overflows or underflows: the 2-norm of [1e200, 1e200] is 1.41e200
//   (PyTorch's is inf, and its gradient 0). An empty slice has norm 0 for every p (as
//   torch.norm; torch.linalg.vector_norm refuses the inf-norm of an empty slice).
//   x [..., n, ...] -> y [..., ...] (or [..., 1, ...] with keepdim; [] over all elements)
//   vjp (grad_out and y read in the keepdim shape), s = sign(x) (0 at 0, and at NaN):
//     p = 1:        grad_x = grad_out * s                          (0 at x = 0, as PyTorch)
//     p = inf:      grad_x = grad_out * s * [|x| == y or NaN] / count   (ties share evenly)
//     p = 2:        grad_x = grad_out * x / y,                       0 where y = 0
//     other p:      grad_x = grad_out * s * (|x| / y)^(p - 1),       0 where x = 0 or y = 0
//   Subgradients at the kinks are PyTorch's: the gradient of the 2-norm (and of every p-norm)
//   at x = 0 is 0, and for p < 1 an element at 0 gets 0 (the derivative there is infinite).
//   The rule keeps the masked branches finite (|x| and y replaced by 1 where masked), so
//   that its own derivative has no 0 * inf either.

#include <cmath>
#include <limits>

#include "along_axis.hpp"

namespace tg {

//! public
/// The p-norm (sum |x|^p)^(1/p) of all elements, for p > 0 or inf (max |x|); the gradient at 0 is 0 (as PyTorch).
template <class T> Var<T> norm(const Var<T>& x, double p = 2);
/// The p-norm along an axis, removed unless keepdim (torch.linalg.vector_norm(x, p, dim)); negative counts from the
/// end; a rank-0 x takes axis 0 or -1. An empty axis has norm 0.
template <class T> Var<T> norm(const Var<T>& x, double p, std::ptrdiff_t axis, bool keepdim = false);
//! end

namespace {

template <class T> T sgn(T v)
{
    return static_cast<T>((v > 0) - (v < 0));
}

struct Norm {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    enum Kind { one, two, inf, general };
    double p;
    bool all;  // over all elements, else along axis
    std::ptrdiff_t axis;
    bool keepdim;

    Kind kind() const { return p == 1 ? one : p == 2 ? two : std::isinf(p) ? inf : general; }

    template <class S> reduction::AlongAxis layout(const S& shape) const
    {
        if (!all) return reduction::along(name, shape, axis, keepdim);
        reduction::AlongAxis r;  // one slice of every element; keep and out stay rank 0
        for (auto d : shape) r.split.len *= d;
        return r;
    }

    template <class T> T slice_norm(std::size_t n, const T* x, std::size_t st) const
    {
        if (n == 0) return T(0);
        if (kind() == one) {
            T total = 0;
            for (std::size_t l = 0; l < n; ++l) total += std::abs(x[l * st]);
            return total;
        }
        T m = 0;
        for (std::size_t l = 0; l < n; ++l) {
            const T a = std::abs(x[l * st]);
            if (a != a) return a;
            if (a > m) m = a;
        }
        if (kind() == inf || m == 0 || std::isinf(m)) return m;
        T total = 0;
        if (kind() == two) {
            for (std::size_t l = 0; l < n; ++l) {
                const T q = std::abs(x[l * st]) / m;
                total += q * q;
            }
            return m * std::sqrt(total);
        }
        const auto pt = static_cast<T>(p);
        for (std::size_t l = 0; l < n; ++l) total += std::pow(std::abs(x[l * st]) / m, pt);
        return m * std::pow(total, T(1) / pt);
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const reduction::AlongAxis r = layout(x.shape());
        T* y = c.output(r.out).data();
        const T* px = x.data();
        std::size_t o = 0;
        axis::for_slices(r.split,
                         [&](std::size_t off, std::size_t st) { y[o++] = slice_norm(r.split.len, px + off, st); });
    }

    // The inf-norm's constant weights: s * [|x| == y or |x| is NaN] / count, per slice (as
    // PyTorch's mask, which counts a NaN as the maximum).
    template <class T>
    xt::xarray<T> inf_weights(const reduction::AlongAxis& r, const xt::xarray<T>& x, const T* y) const
    {
        xt::xarray<T> w = xt::xarray<T>::from_shape(x.shape());
        const T* px = x.data();
        std::size_t o = 0;
        axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
            std::size_t count = 0;
            for (std::size_t l = 0; l < r.split.len; ++l) {
                const T a = std::abs(px[off + l * st]);
                count += a == y[o] || a != a ? 1 : 0;
            }
            for (std::size_t l = 0; l < r.split.len; ++l) {
                const std::size_t k = off + l * st;
                const T a = std::abs(px[k]);
                w.data()[k] = sgn(px[k]) * (a == y[o] || a != a ? T(1) : T(0)) / static_cast<T>(count);
            }
            ++o;
        });
        return w;
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const reduction::AlongAxis r = layout(x.shape());
        const T* px = x.data();
        const T* y = c.output().data();
        const T* g = c.grad_out().data();
        const Kind k = kind();
        xt::xarray<T> w;
        if (k == inf) w = inf_weights(r, x, y);
        const auto pm1 = static_cast<T>(p - 1);
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            std::size_t o = 0;
            axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
                const T go = g[o], yo = y[o];
                for (std::size_t l = 0; l < r.split.len; ++l) {
                    const std::size_t i = off + l * st;
                    const T xv = px[i];
                    T v;
                    if (k == one) {
                        v = go * sgn(xv);
                    } else if (k == inf) {
                        v = go * w.data()[i];
                    } else if (k == two) {
                        v = yo != 0 ? go * (xv / yo) : T(0);
                    } else {
                        v = xv != 0 && yo != 0 ? (go * sgn(xv)) * std::pow(std::abs(xv) / yo, pm1) : T(0);
                    }
                    dst[i] = add ? dst[i] + v : v;
                }
                ++o;
            });
        });
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T> x = v.input(0);
        const xt::xarray<T>& xv = x.value();
        const reduction::AlongAxis r = layout(xv.shape());
        const Var<T> g = reduction::kept(v.grad_out(), r.keep);
        const Kind k = kind();
        xt::xarray<T> s = xt::xarray<T>::from_shape(xv.shape());
        for (std::size_t i = 0; i < xv.size(); ++i) s.data()[i] = sgn(xv.data()[i]);
        if (k == one) {
            v.add_grad(0, g * constant(std::move(s)));  // constant signs: no second derivative
            return;
        }
        const Var<T> out = v.output();
        const xt::xarray<T>& yv = out.value();
        if (k == inf) {
            v.add_grad(0, g * constant(inf_weights(r, xv, yv.data())));
            return;
        }
        const Var<T> y = reduction::kept(out, r.keep);
        const xt::xarray<bool> y_nonzero = xt::not_equal(y.value(), T(0));
        const Var<T> safe_y = tg::where(y_nonzero, y, T(1));
        if (k == two) {
            v.add_grad(0, tg::where(y_nonzero, g * (x / safe_y), T(0)));
            return;
        }
        xt::xarray<bool> nonzero = xt::xarray<bool>::from_shape(xv.shape());
        std::size_t o = 0;
        axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
            for (std::size_t l = 0; l < r.split.len; ++l) {
                const std::size_t i = off + l * st;
                nonzero.data()[i] = xv.data()[i] != 0 && yv.data()[o] != 0;
            }
            ++o;
        });
        const Var<T> sign = constant(std::move(s));
        const Var<T> safe_abs = tg::where(nonzero, x * sign, T(1));
        v.add_grad(0, tg::where(nonzero, (g * sign) * pow(safe_abs / safe_y, static_cast<T>(p - 1)), T(0)));
    }
};

void check_p(double p)
{
    if (!(p > 0)) {
        throw Error(std::string(Norm::name) + ": p must be positive (or inf for the max norm), got " +
                    format_number(p));
    }
}

}  // namespace

template <class T> Var<T> norm(const Var<T>& x, double p)
{
    input_shape(TAPEGRAD_OP_NAME, x);
    check_p(p);
    return record(Norm{p, true, 0, false}, x);
}

template <class T> Var<T> norm(const Var<T>& x, double p, std::ptrdiff_t axis, bool keepdim)
{
    reduction::along(Norm::name, input_shape(TAPEGRAD_OP_NAME, x), axis, keepdim);  // checks the axis
    check_p(p);
    return record(Norm{p, false, axis, keepdim}, x);
}

template Var<float> norm<float>(const Var<float>&, double);
template Var<double> norm<double>(const Var<double>&, double);
template Var<float> norm<float>(const Var<float>&, double, std::ptrdiff_t, bool);
template Var<double> norm<double>(const Var<double>&, double, std::ptrdiff_t, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto slice_ref = [](double p) {
        return [p](const std::vector<double>& s) {
            double total = 0;
            for (double v : s) total = std::isinf(p) ? std::max(total, std::abs(v)) : total + std::pow(std::abs(v), p);
            return std::isinf(p) ? total : std::pow(total, 1 / p);
        };
    };
    auto torch_p = [](double p) { return std::isinf(p) ? std::string("float('inf')") : tg::format_number(p); };
    std::vector<tg::OpSample> out;
    // Over all elements. Values keep 0.1 away from 0, the kink of p <= 1.
    for (const double p : {2.0, 1.0, std::numeric_limits<double>::infinity(), 3.0, 0.5}) {
        auto all = tg::samples::unary(
            rng, -2.0, 2.0, 0.1, [p](const auto& v) { return tg::norm(v[0], p); },
            [p, slice_ref](const xt::xarray<double>& x) {
                const xt::xarray<double> flat = xt::xarray<double>(xt::flatten(x));
                return tg::reduction::per_slice(flat, 0, slice_ref(p));
            },
            "torch.linalg.vector_norm({0}, ord=" + torch_p(p) + ")");
        for (auto& s : all) {
            s.label += " p=" + tg::format_number(p);
            // torch.linalg.vector_norm refuses the inf-norm of nothing; torch.norm gives 0, as here.
            if (std::isinf(p) && s.label.find("empty") != std::string::npos)
                s.torch = "torch.norm(x[0], p=float('inf'))";
        }
        out.insert(out.end(), all.begin(), all.end());
    }
    // Along an axis: every case for p = 2, a few for the others.
    auto draw = [&](const auto& s) { return tg::sample_away_from_zero(rng, s, -2.0, 2.0, 0.1); };
    auto along = [&](double p, std::vector<tg::reduction::AxisCase> cases) {
        for (auto& c : cases) c.label += " p=" + tg::format_number(p);
        auto more = tg::reduction::axis_samples(
            cases, draw, [p](const auto& x, std::ptrdiff_t a, bool k) { return tg::norm(x, p, a, k); },
            [p, slice_ref](const xt::xarray<double>& x, std::size_t a) {
                return tg::reduction::per_slice(x, a, slice_ref(p));
            },
            [p, torch_p](const std::string& in, std::ptrdiff_t a, bool k) {
                return "torch.linalg.vector_norm(" + in + ", ord=" + torch_p(p) + ", dim=" + std::to_string(a) +
                       tg::reduction::torch_keepdim(k) + ")";
            });
        out.insert(out.end(), more.begin(), more.end());
    };
    along(2.0, tg::reduction::axis_cases(true, true));
    const std::vector<tg::reduction::AxisCase> few = {
        {"(3,4) axis -1", {3, 4}, -1, false, false},
        {"(2,3,4) axis 1 keepdim", {2, 3, 4}, 1, true, false},
        {"() axis 0", {}, 0, false, false},
        {"transposed (4,3) axis 1", {4, 3}, 1, false, true},
        {"(2,0,3) axis 1 (empty axis)", {2, 0, 3}, 1, false, false},
    };
    for (const double p : {1.0, std::numeric_limits<double>::infinity(), 3.0, 0.5}) along(p, few);
    for (auto& s : out) {  // as over all elements: torch.norm gives the inf-norm of an empty axis
        if (s.label.find("(empty axis) p=inf") != std::string::npos)
            s.torch = "torch.norm(x[0], p=float('inf'), dim=1)";
    }
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::norm(x, 2.0, axis); });
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    for (const double p : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
        const std::string shown = tg::format_number(p);
        errors.push_back(tg::make_error_input(
            "p " + shown, {x}, [p](const auto& v) { return tg::norm(v[0], p); },
            "p must be positive (or inf for the max norm), got " + shown));
        errors.push_back(tg::make_error_input(
            "p " + shown + " along axis 1", {x}, [p](const auto& v) { return tg::norm(v[0], p, 1); },
            "p must be positive (or inf for the max norm), got " + shown));
    }
    return errors;
}
