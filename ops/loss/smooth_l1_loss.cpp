// ops/loss/smooth_l1_loss.cpp — with d = pred - target: l = d^2 / (2 beta) where |d| < beta,
//   |d| - beta / 2 elsewhere (beta = 0: plain |d|), per element, reduced (mean by default)
//   vjp: grad_pred = grad_out * (d / beta where |d| < beta, sign(d) elsewhere), grad_target = -grad_pred

#include <cmath>

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Smooth L1: quadratic within beta of the target, linear beyond (torch.nn.functional.smooth_l1_loss).
template <class T>
Var<T> smooth_l1_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);
//! end

namespace {

struct Loss : losses::Pointwise<Loss> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    double beta = 1.0;
    template <class V> V loss(const V& p, const V& t) const
    {
        using S = fn::scalar_of_t<V>;
        const V d = p - t, a = losses::abs_of(d);
        if (beta == 0) return a;
        return fn::where(a < S(beta), d * d * S(0.5 / beta), a - S(0.5 * beta));
    }
    template <class V> V dp(const V& g, const V& p, const V& t) const
    {
        using S = fn::scalar_of_t<V>;
        const V d = p - t;
        const V sign = fn::where(d > 0, g, fn::where(d < 0, -g, 0));
        if (beta == 0) return sign;
        return fn::where(losses::abs_of(d) < S(beta), g * d * S(1 / beta), sign);
    }
    template <class V> V dt(const V& g, const V& p, const V& t) const { return dp(g, t, p); }
};

}  // namespace

template <class T> Var<T> smooth_l1_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction, double beta)
{
    losses::check_same_shape(Loss::name, pred, target);
    if (!(beta >= 0) || !std::isfinite(beta))
        throw Error(std::string(Loss::name) + ": beta must be finite and not negative, got " + format_number(beta));
    Loss op;
    op.beta = beta;
    op.reduction = reduction;
    return record(op, pred, target);
}

template Var<float> smooth_l1_loss<float>(const Var<float>&, const Var<float>&, Reduction, double);
template Var<double> smooth_l1_loss<double>(const Var<double>&, const Var<double>&, Reduction, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, tg::Reduction r, bool transposed, double k) {
        std::vector<std::size_t> first = shape;
        if (transposed) std::swap(first[0], first[1]);
        out.push_back(tg::make_sample(
                          std::move(label), {u(first), u(shape)},
                          [r, transposed, k](const auto& v) {
                              return tg::smooth_l1_loss(transposed ? tg::transpose(v[0]) : v[0], v[1], r, k);
                          },
                          [r, transposed, k](const auto& x) {
                              const xt::xarray<double> p = transposed ? xt::xarray<double>(xt::transpose(x[0])) : x[0];
                              const xt::xarray<double> d = p - x[1];
                              const xt::xarray<double> a = xt::abs(d);
                              const xt::xarray<double> l =
                                  k == 0 ? a : xt::xarray<double>(xt::where(a < k, 0.5 * d * d / k, a - 0.5 * k));
                              return r == tg::Reduction::none  ? l
                                     : r == tg::Reduction::sum ? xt::xarray<double>(xt::sum(l))
                                                               : xt::xarray<double>(xt::mean(l));
                          })
                          .with_torch(std::string("torch.nn.functional.smooth_l1_loss(") +
                                      (transposed ? "x[0].T" : "x[0]") + ", x[1], reduction=" +
                                      tg::losses::torch_reduction(r) + ", beta=" + std::to_string(k) + ")"));
    };
    sample("(3,4) beta 1", {3, 4}, tg::Reduction::mean, false, 1.0);
    sample("() beta 1", {}, tg::Reduction::mean, false, 1.0);
    sample("transposed (4,3) beta 0.5", {3, 4}, tg::Reduction::mean, true, 0.5);
    sample("(2,3,2) sum beta 2", {2, 3, 2}, tg::Reduction::sum, false, 2.0);
    sample("(3,4) none beta 1", {3, 4}, tg::Reduction::none, false, 1.0);
    sample("(3,4) beta 0", {3, 4}, tg::Reduction::mean, false, 0.0);
    sample("(0,3) sum beta 1", {0, 3}, tg::Reduction::sum, false, 1.0);
    return out;
}
