// ops/loss/huber_loss.cpp — with d = pred - target: l = d^2 / 2 where |d| < delta,
//   delta (|d| - delta / 2) elsewhere, per element, reduced (mean by default): smooth L1 times delta
//   vjp: grad_pred = grad_out * (d where |d| < delta, delta sign(d) elsewhere), grad_target = -grad_pred

#include <cmath>

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Huber: quadratic within delta of the target, linear with slope delta beyond (torch.nn.functional.huber_loss).
template <class T>
Var<T> huber_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction = Reduction::mean, double delta = 1.0);
//! end

namespace {

struct HuberLoss : losses::QuadraticThenLinear<HuberLoss> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
};

}  // namespace

template <class T> Var<T> huber_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction, double delta)
{
    losses::check_same_shape(HuberLoss::name, pred, target);
    if (!(delta > 0) || !std::isfinite(delta))
        throw Error(std::string(HuberLoss::name) + ": delta must be finite and positive, got " + format_number(delta));
    HuberLoss op;  // smooth L1 with beta = delta, times delta
    op.beta = delta;
    op.quad = 0.5;
    op.slope = delta;
    op.reduction = reduction;
    return record(op, pred, target);
}

template Var<float> huber_loss<float>(const Var<float>&, const Var<float>&, Reduction, double);
template Var<double> huber_loss<double>(const Var<double>&, const Var<double>&, Reduction, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::Reduction;
    return tg::losses::difference_samples(
        rng,
        {{"(3,4) delta 1", {3, 4}, Reduction::mean, false, 1.0},
         {"() delta 1", {}, Reduction::mean, false, 1.0},
         {"transposed (4,3) delta 0.5", {3, 4}, Reduction::mean, true, 0.5},
         {"(2,3,2) sum delta 2", {2, 3, 2}, Reduction::sum, false, 2.0},
         {"(3,4) none delta 1", {3, 4}, Reduction::none, false, 1.0},
         {"(3,4) delta 3", {3, 4}, Reduction::mean, false, 3.0},
         {"(0,3) sum delta 1", {0, 3}, Reduction::sum, false, 1.0}},
        [](const auto& p, const auto& t, Reduction r, double k) { return tg::huber_loss(p, t, r, k); },
        [](const xt::xarray<double>& d, double k) {
            const xt::xarray<double> a = xt::abs(d);
            return xt::xarray<double>(xt::where(a < k, 0.5 * d * d, k * (a - 0.5 * k)));
        },
        "torch.nn.functional.huber_loss", "delta");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> a = xt::ones<double>({2, 3});
    std::vector<tg::ErrorInput> errors{
        tg::make_error_input(
            "(2,3) against (3,2)", {a, xt::ones<double>({3, 2})},
            [](const auto& v) { return tg::huber_loss(v[0], v[1]); },
            "pred is [2, 3] but target is [3, 2]; the shapes must be equal"),
        tg::make_error_input(
            "(2,3) against (3,), no broadcasting", {a, xt::ones<double>({3})},
            [](const auto& v) { return tg::huber_loss(v[0], v[1], tg::Reduction::none); },
            "pred is [2, 3] but target is [3]; the shapes must be equal")};
    for (const double delta :
         {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        const std::string shown = tg::format_number(delta);
        errors.push_back(tg::make_error_input(
            "delta " + shown, {a, a},
            [delta](const auto& v) { return tg::huber_loss(v[0], v[1], tg::Reduction::mean, delta); },
            "delta must be finite and positive, got " + shown));
    }
    return errors;
}
