#pragma once
// The pointwise losses (mse, l1, smooth L1, Huber, binary cross-entropy): a per-element loss
// l(pred, target) and its derivatives, stated once as generic formulas (scalars, SIMD
// batches, Vars), then reduced as PyTorch's `reduction` asks. One entry per loss: the
// kernel evaluates l in one loop and the backward in another; the vjp rule runs the same
// derivative formulas on Vars.

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::losses {

/// Derived gives `template <class V> V loss(const V& p, const V& t) const` and the
/// derivatives times the upstream gradient, `dp(g, p, t)` and `dt(g, p, t)`.
template <class Derived> struct Pointwise {
    Reduction reduction = Reduction::mean;

    template <class T> T scale(std::size_t n) const
    {
        return reduction == Reduction::mean ? T(1) / static_cast<T>(n) : T(1);
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& p = c.input(0);
        const auto& t = c.input(1);
        const Derived d = self();
        if (reduction == Reduction::none) {
            kernel::map<false>(
                p.size(), c.output(p.shape()).data(), [d](auto pv, auto tv) { return d.loss(pv, tv); }, p.data(),
                t.data());
            return;
        }
        T s = 0;
        for (std::size_t i = 0; i < p.size(); ++i) s += d.loss(p.data()[i], t.data()[i]);
        c.output({}).data()[0] = s * scale<T>(p.size());  // the mean of nothing is NaN, as PyTorch's
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& p = c.input(0);
        const auto& t = c.input(1);
        const Derived d = self();
        const std::size_t n = p.size();
        for (std::size_t i = 0; i < 2; ++i) {
            c.add_grad(i, p.shape(), [&](T* dst, bool add) {
                auto run = [&](auto g) {
                    if (i == 0) {
                        kernel::map_to(
                            add, n, dst, [d](auto gv, auto pv, auto tv) { return d.dp(gv, pv, tv); }, g, p.data(),
                            t.data());
                    } else {
                        kernel::map_to(
                            add, n, dst, [d](auto gv, auto pv, auto tv) { return d.dt(gv, pv, tv); }, g, p.data(),
                            t.data());
                    }
                };
                if (reduction == Reduction::none) {
                    run(c.grad_out().data());
                } else {
                    run(kernel::Bcast<T>{c.grad_out().data()[0] * scale<T>(n)});
                }
            });
        }
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const std::size_t n = detail::element_count(v.input_shape(0));
        const Var<T> g = reduction == Reduction::none ? v.grad_out() : v.grad_out() * scale<T>(n);
        const Var<T> p = v.input(0), t = v.input(1);
        if (v.needs_grad(0)) v.add_grad(0, self().dp(g, p, t));
        if (v.needs_grad(1)) v.add_grad(1, self().dt(g, p, t));
    }

private:
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

/// The checks every pointwise loss makes: pred and target of the same shape.
/// `first` and `second` name the inputs in the message ("pred is", "logits are").
template <class S>
[[noreturn]] __attribute__((noinline)) void throw_different_shapes(const char* op, const S& sp, const S& st,
                                                                   const char* first, const char* second)
{
    throw Error(std::string(op) + ": " + first + " " + format_shape(sp) + " but " + second + " " + format_shape(st) +
                "; the shapes must be equal");
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void check_same_shape(const char* op, const Var<T>& pred, const Var<T>& target,
                                             const char* first = "pred is", const char* second = "target is")
{
    const auto& sp = input_shape(op, pred);
    const auto& st = input_shape(op, target);
    if (!detail::shapes_equal(sp, st)) throw_different_shapes(op, sp, st, first, second);
}

/// Checks an input [N, C, d1, ...] against labels [N, d1, ...] with values in [0, C):
/// `<op>: <subject> [2, 3] needs labels of shape [N, d1, ...] without its class axis (1), got [3]`
/// (`plural` for "logits ... need ... their").
template <class S>
void check_labels(const char* op, const S& s, const xt::xarray<std::int64_t>& labels, const char* subject = "input",
                  bool plural = false)
{
    const auto& ls = labels.shape();
    bool ok = s.size() >= 2 && ls.size() + 1 == s.size();
    for (std::size_t j = 0; ok && j < ls.size(); ++j) ok = ls[j] == s[j == 0 ? 0 : j + 1];
    if (!ok) {
        throw Error(std::string(op) + ": " + subject + " " + format_shape(s) + (plural ? " need" : " needs") +
                    " labels of shape [N, d1, ...] without " + (plural ? "their" : "its") + " class axis (1), got " +
                    format_shape(ls));
    }
    const auto classes = static_cast<std::int64_t>(s[1]);
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::int64_t l = labels.data()[i];
        if (l < 0 || l >= classes) {
            throw Error(std::string(op) + ": label " + std::to_string(l) + " at flat position " + std::to_string(i) +
                        " is out of range for " + std::to_string(classes) + " classes");
        }
    }
}

/// torch expression of a reduction argument.
inline std::string torch_reduction(Reduction r)
{
    return r == Reduction::mean ? "'mean'" : r == Reduction::sum ? "'sum'" : "'none'";
}

/// |x| on scalars, batches and Vars (as a where: the subgradient at 0 comes from the callers' formulas).
template <class V> V abs_of(const V& x)
{
    return fn::where(x < 0, -x, x);
}

/// The piecewise losses smooth L1 and Huber: with d = p - t and a = |d|,
///   l = quad d^2 where a < beta, slope (a - beta / 2) elsewhere
/// (smooth L1: quad = 1 / (2 beta), slope 1, and plain |d| when beta = 0; Huber with delta:
/// beta = delta, quad = 1/2, slope = delta). Derived sets the three numbers and its name.
template <class Derived> struct QuadraticThenLinear : Pointwise<Derived> {
    double beta = 1.0;
    double quad = 0.5;
    double slope = 1.0;

    template <class V> V loss(const V& p, const V& t) const
    {
        using S = fn::scalar_of_t<V>;
        const V d = p - t, a = abs_of(d);
        if (beta == 0) return a * S(slope);
        return fn::where(a < S(beta), d * d * S(quad), (a - S(0.5 * beta)) * S(slope));
    }
    template <class V> V dp(const V& g, const V& p, const V& t) const
    {
        using S = fn::scalar_of_t<V>;
        const V d = p - t;
        const V sign = fn::where(d > 0, g, fn::where(d < 0, -g, 0));
        if (beta == 0) return sign * S(slope);
        return fn::where(abs_of(d) < S(beta), g * d * S(2 * quad), sign * S(slope));
    }
    template <class V> V dt(const V& g, const V& p, const V& t) const { return dp(g, t, p); }
};

/// The reference value of a loss from its per-element values, reduced as `r` asks
/// (a plain loop: the mean of nothing is NaN, as PyTorch's).
inline xt::xarray<double> reduce_reference(const xt::xarray<double>& l, Reduction r)
{
    if (r == Reduction::none) return l;
    double s = 0;
    for (double v : l) s += v;
    return xt::xarray<double>(r == Reduction::sum ? s : s / static_cast<double>(l.size()));
}

/// One sample of a loss of the difference pred - target: its label, shape and reduction;
/// pred is recorded transposed (a non-contiguous input) when `transposed`; `k` is the
/// loss's own parameter, if it has one (beta, delta).
struct DifferenceCase {
    std::string label;
    std::vector<std::size_t> shape;
    Reduction reduction = Reduction::mean;
    bool transposed = false;
    double k = 0;
};

/// The cases a loss of the difference with no parameter of its own is sampled on: the
/// default reduction on a matrix and a scalar, a transposed pred, sum on 3-D, none, and sum
/// over a zero-size batch.
inline std::vector<DifferenceCase> basic_difference_cases()
{
    return {{"(3,4)", {3, 4}},
            {"()", {}},
            {"transposed (4,3)", {3, 4}, Reduction::mean, true},
            {"(2,3,2) sum", {2, 3, 2}, Reduction::sum},
            {"(3,4) none", {3, 4}, Reduction::none},
            {"(0,3) sum", {0, 3}, Reduction::sum}};
}

/// The samples of mse, l1, smooth L1 and Huber: pred and target uniform in [-2, 2];
/// `call(pred, target, reduction, k)` records the loss on Vars, `elementwise(d, k)` is the
/// reference per-element loss of d = pred - target, `torch_fn` the PyTorch function and
/// `k_name` its keyword for k (nullptr: none).
template <class Call, class Elementwise>
std::vector<OpSample> difference_samples(std::mt19937_64& rng, const std::vector<DifferenceCase>& cases, Call call,
                                         Elementwise elementwise, const std::string& torch_fn,
                                         const char* k_name = nullptr)
{
    std::vector<OpSample> out;
    for (const DifferenceCase& c : cases) {
        std::vector<std::size_t> first = c.shape;
        if (c.transposed) std::swap(first[0], first[1]);
        xt::xarray<double> pred = sample_uniform(rng, first, -2.0, 2.0);
        xt::xarray<double> target = sample_uniform(rng, c.shape, -2.0, 2.0);
        const Reduction r = c.reduction;
        const bool transposed = c.transposed;
        const double k = c.k;
        std::string torch = torch_fn + "(" + (transposed ? "x[0].T" : "x[0]") +
                            ", x[1], reduction=" + torch_reduction(r) +
                            (k_name ? std::string(", ") + k_name + "=" + std::to_string(k) : "") + ")";
        out.push_back(make_sample(
                          c.label, {std::move(pred), std::move(target)},
                          [call, r, transposed, k](const auto& v) {
                              return call(transposed ? tg::transpose(v[0]) : v[0], v[1], r, k);
                          },
                          [elementwise, r, transposed, k](const auto& x) {
                              const xt::xarray<double> p = transposed ? xt::xarray<double>(xt::transpose(x[0])) : x[0];
                              return reduce_reference(elementwise(xt::xarray<double>(p - x[1]), k), r);
                          })
                          .with_torch(std::move(torch)));
    }
    return out;
}

}  // namespace tg::losses
