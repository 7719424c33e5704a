// ops/loss/l1_loss.cpp — l = |pred - target| per element, reduced (mean by default)
//   vjp: grad_pred = grad_out * sign(pred - target) (0 where they are equal, as PyTorch),
//        grad_target = -grad_pred

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Absolute error |pred - target|, reduced by mean (the default), sum, or none.
template <class T> Var<T> l1_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction = Reduction::mean);
//! end

namespace {

struct L1Loss : losses::Pointwise<L1Loss> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V loss(const V& p, const V& t) const { return losses::abs_of(p - t); }
    template <class V> V dp(const V& g, const V& p, const V& t) const
    {
        return fn::where(p > t, g, fn::where(p < t, -g, 0));
    }
    template <class V> V dt(const V& g, const V& p, const V& t) const
    {
        return fn::where(p > t, -g, fn::where(p < t, g, 0));
    }
};

}  // namespace

template <class T> Var<T> l1_loss(const Var<T>& pred, const Var<T>& target, Reduction reduction)
{
    losses::check_same_shape(L1Loss::name, pred, target);
    L1Loss op;
    op.reduction = reduction;
    return record(op, pred, target);
}

template Var<float> l1_loss<float>(const Var<float>&, const Var<float>&, Reduction);
template Var<double> l1_loss<double>(const Var<double>&, const Var<double>&, Reduction);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::Reduction;
    return tg::losses::difference_samples(
        rng, tg::losses::basic_difference_cases(),
        [](const auto& p, const auto& t, Reduction r, double) { return tg::l1_loss(p, t, r); },
        [](const xt::xarray<double>& d, double) { return xt::xarray<double>(xt::abs(d)); },
        "torch.nn.functional.l1_loss");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> a = xt::ones<double>({2, 3});
    std::vector<tg::ErrorInput> errors{tg::make_error_input(
                                           "(2,3) against (3,2)", {a, xt::ones<double>({3, 2})},
                                           [](const auto& v) { return tg::l1_loss(v[0], v[1]); },
                                           "pred is [2, 3] but target is [3, 2]; the shapes must be equal"),
                                       tg::make_error_input(
                                           "(2,3) against (3,), no broadcasting", {a, xt::ones<double>({3})},
                                           [](const auto& v) { return tg::l1_loss(v[0], v[1], tg::Reduction::none); },
                                           "pred is [2, 3] but target is [3]; the shapes must be equal")};
    return errors;
}
