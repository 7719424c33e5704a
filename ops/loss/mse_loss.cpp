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
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, tg::Reduction r, bool transposed) {
        std::vector<std::size_t> first = shape;
        if (transposed) std::swap(first[0], first[1]);
        out.push_back(tg::make_sample(
                          std::move(label), {u(first), u(shape)},
                          [r, transposed](const auto& v) {
                              return tg::mse_loss(transposed ? tg::transpose(v[0]) : v[0], v[1], r);
                          },
                          [r, transposed](const auto& x) {
                              const xt::xarray<double> p = transposed ? xt::xarray<double>(xt::transpose(x[0])) : x[0];
                              const xt::xarray<double> l = xt::square(p - x[1]);
                              return r == tg::Reduction::none  ? l
                                     : r == tg::Reduction::sum ? xt::xarray<double>(xt::sum(l))
                                                               : xt::xarray<double>(xt::mean(l));
                          })
                          .with_torch(std::string("torch.nn.functional.mse_loss(") + (transposed ? "x[0].T" : "x[0]") +
                                      ", x[1], reduction=" + tg::losses::torch_reduction(r) + ")"));
    };
    sample("(3,4)", {3, 4}, tg::Reduction::mean, false);
    sample("(1,2)", {1, 2}, tg::Reduction::mean, false);
    sample("()", {}, tg::Reduction::mean, false);
    sample("transposed (4,3)", {3, 4}, tg::Reduction::mean, true);
    sample("(2,3,2) sum", {2, 3, 2}, tg::Reduction::sum, false);
    sample("(3,4) none", {3, 4}, tg::Reduction::none, false);
    sample("(0,3) sum", {0, 3}, tg::Reduction::sum, false);
    return out;
}
