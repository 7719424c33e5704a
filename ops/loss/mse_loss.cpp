// ops/loss/mse_loss.cpp — l = (pred - target)^2 per element, reduced (mean by default)
//   vjp: grad_pred = grad_out * 2 (pred - target) (times 1 / n for the mean),
//        grad_target = -grad_pred

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Squared error (pred - target)^2, reduced by mean (the default), sum, or none.
template <class T> Var<T> mse_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction = Reduction::mean);
//! end

namespace {

struct MseLoss : losses::Pointwise<MseLoss> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V loss(const V& p, const V& t) const { return (p - t) * (p - t); }
    template <class V> V dp(const V& g, const V& p, const V& t) const { return g * (2 * (p - t)); }
    template <class V> V dt(const V& g, const V& p, const V& t) const { return g * (2 * (t - p)); }
};

}  // namespace

template <class T> Var<T> mse_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction)
{
    losses::check_same_shape(MseLoss::name, pred, target);
    MseLoss op;
    op.reduction = reduction;
    return record(op, pred, target);
}

template Var<float> mse_loss<float>(const Var<float>&, const Var<float>&, Reduction);
template Var<double> mse_loss<double>(const Var<double>&, const Var<double>&, Reduction);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::Reduction;
    auto cases = tg::losses::basic_difference_cases();
    cases.push_back({"(1,2)", {1, 2}});
    return tg::losses::difference_samples(
        rng, cases, [](const auto& p, const auto& t, Reduction r, double) { return tg::mse_loss(p, t, r); },
        [](const xt::xarray<double>& d, double) { return xt::xarray<double>(d * d); }, "torch.nn.functional.mse_loss");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> a = xt::ones<double>({2, 3});
    std::vector<tg::ErrorInput> errors{tg::make_error_input(
                                           "(2,3) against (3,2)", {a, xt::ones<double>({3, 2})},
                                           [](const auto& v) { return tg::mse_loss(v[0], v[1]); },
                                           "pred is [2, 3] but target is [3, 2]; the shapes must be equal"),
                                       tg::make_error_input(
                                           "(2,3) against (3,), no broadcasting", {a, xt::ones<double>({3})},
                                           [](const auto& v) { return tg::mse_loss(v[0], v[1], tg::Reduction::none); },
                                           "pred is [2, 3] but target is [3]; the shapes must be equal")};
    return errors;
}
