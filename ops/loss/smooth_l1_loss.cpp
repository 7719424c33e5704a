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

struct SmoothL1Loss : losses::QuadraticThenLinear<SmoothL1Loss> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
};

}  // namespace

template <class T> Var<T> smooth_l1_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction, double beta)
{
    losses::check_same_shape(SmoothL1Loss::name, pred, target);
    if (!(beta >= 0) || !std::isfinite(beta))
        throw Error(std::string(SmoothL1Loss::name) + ": beta must be finite and not negative, got " +
                    format_number(beta));
    SmoothL1Loss op;
    op.beta = beta;
    op.quad = beta == 0 ? 0.0 : 0.5 / beta;
    op.slope = 1.0;
    op.reduction = reduction;
    return record(op, pred, target);
}

template Var<float> smooth_l1_loss<float>(const Var<float>&, const Var<float>&, Reduction, double);
template Var<double> smooth_l1_loss<double>(const Var<double>&, const Var<double>&, Reduction, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::Reduction;
    return tg::losses::difference_samples(
        rng,
        {{"(3,4) beta 1", {3, 4}, Reduction::mean, false, 1.0},
         {"() beta 1", {}, Reduction::mean, false, 1.0},
         {"transposed (4,3) beta 0.5", {3, 4}, Reduction::mean, true, 0.5},
         {"(2,3,2) sum beta 2", {2, 3, 2}, Reduction::sum, false, 2.0},
         {"(3,4) none beta 1", {3, 4}, Reduction::none, false, 1.0},
         {"(3,4) beta 0", {3, 4}, Reduction::mean, false, 0.0},
         {"(0,3) sum beta 1", {0, 3}, Reduction::sum, false, 1.0}},
        [](const auto& p, const auto& t, Reduction r, double k) { return tg::smooth_l1_loss(p, t, r, k); },
        [](const xt::xarray<double>& d, double k) {
            const xt::xarray<double> a = xt::abs(d);
            return k == 0 ? a : xt::xarray<double>(xt::where(a < k, 0.5 * d * d / k, a - 0.5 * k));
        },
        "torch.nn.functional.smooth_l1_loss", "beta");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> a = xt::ones<double>({2, 3});
    std::vector<tg::ErrorInput> errors{
        tg::make_error_input(
            "(2,3) against (3,2)", {a, xt::ones<double>({3, 2})},
            [](const auto& v) { return tg::smooth_l1_loss(v[0], v[1]); },
            "pred is [2, 3] but target is [3, 2]; the shapes must be equal"),
        tg::make_error_input(
            "(2,3) against (3,), no broadcasting", {a, xt::ones<double>({3})},
            [](const auto& v) { return tg::smooth_l1_loss(v[0], v[1], tg::Reduction::none); },
            "pred is [2, 3] but target is [3]; the shapes must be equal")};
    for (const double beta :
         {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        const std::string shown = tg::format_number(beta);
        errors.push_back(tg::make_error_input(
            "beta " + shown, {a, a},
            [beta](const auto& v) { return tg::smooth_l1_loss(v[0], v[1], tg::Reduction::mean, beta); },
            "beta must be finite and not negative, got " + shown));
    }
    return errors;
}
