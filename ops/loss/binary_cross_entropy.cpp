// ops/loss/binary_cross_entropy.cpp — l = -(t log p + (1 - t) log(1 - p)) per element, each log
//   clamped at -100 as PyTorch, so p = 0 or 1 gives a finite loss; reduced (mean by default)
//   vjp: grad_p = grad_out * (p - t) / (p (1 - p)) (the clamped logs' derivatives are 0 where
//        they clamp), grad_t = grad_out * (log(1 - p) - log p) (with the clamped logs)

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Binary cross-entropy of probabilities in [0, 1] against targets, logs clamped at -100 (as PyTorch).
template <class T>
Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets, Reduction reduction = Reduction::mean);
//! end

namespace {

struct BceLoss : losses::Pointwise<BceLoss> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> static V clamped_log(const V& x) { return fn::where(fn::log(x) < -100, -100, fn::log(x)); }
    template <class V> V loss(const V& p, const V& t) const
    {
        return -(t * clamped_log(p) + (1 - t) * clamped_log(1 - p));
    }
    template <class V> V dp(const V& g, const V& p, const V& t) const
    {
        // d/dp of each clamped log is 1/p (or -1/(1 - p)) where it does not clamp, else 0.
        const V a = fn::where(fn::log(p) < -100, 0, t / p);
        const V b = fn::where(fn::log(1 - p) < -100, 0, (1 - t) / (1 - p));
        return g * (b - a);
    }
    template <class V> V dt(const V& g, const V& p, const V&) const
    {
        return g * (clamped_log(1 - p) - clamped_log(p));
    }
};

}  // namespace

template <class T> Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets, Reduction reduction)
{
    losses::check_same_shape(BceLoss::name, probs, targets, "probs are", "targets are");
    const auto& p = input_value(BceLoss::name, probs);
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (!(p.data()[i] >= 0 && p.data()[i] <= 1)) {
            throw Error(std::string(BceLoss::name) + ": probs must be in [0, 1], got " + format_number(p.data()[i]) +
                        " at flat position " + std::to_string(i) + " (shape " + format_shape(p.shape()) + ")");
        }
    }
    BceLoss op;
    op.reduction = reduction;
    return record(op, probs, targets);
}

template Var<float> binary_cross_entropy<float>(const Var<float>&, const Var<float>&, Reduction);
template Var<double> binary_cross_entropy<double>(const Var<double>&, const Var<double>&, Reduction);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    // The targets are data: PyTorch 1.13 does not differentiate binary_cross_entropy with
    // respect to them, so the samples hold them fixed (tapegrad does differentiate them:
    // gradcheck covers that in the tests of the losses).
    auto u = [&](std::vector<std::size_t> s, double lo, double hi) { return tg::sample_uniform(rng, s, lo, hi); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, tg::Reduction r) {
        const xt::xarray<double> t = u(shape, 0.0, 1.0);
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape, 0.05, 0.95)},
                          [r, t](const auto& v) {
                              using V = std::decay_t<decltype(v[0])>;
                              using T = typename V::value_type;
                              return tg::binary_cross_entropy(v[0], tg::constant(xt::xarray<T>(xt::cast<T>(t))), r);
                          },
                          [r, t](const auto& x) {
                              const xt::xarray<double> l = -(t * xt::log(x[0]) + (1.0 - t) * xt::log(1.0 - x[0]));
                              return tg::losses::reduce_reference(l, r);
                          })
                          .with_torch("torch.nn.functional.binary_cross_entropy(x[0], " +
                                      tg::samples::torch_literal(t) + ", reduction=" + tg::losses::torch_reduction(r) +
                                      ")"));
    };
    sample("(3,4)", {3, 4}, tg::Reduction::mean);
    sample("()", {}, tg::Reduction::mean);
    sample("(2,3,2) sum", {2, 3, 2}, tg::Reduction::sum);
    sample("(5,) none", {5}, tg::Reduction::none);
    sample("(0,2) sum", {0, 2}, tg::Reduction::sum);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> a = xt::xarray<double>(xt::ones<double>({2, 3}) * 0.5);
    std::vector<tg::ErrorInput> errors{
        tg::make_error_input(
            "(2,3) against (3,2)", {a, xt::ones<double>({3, 2})},
            [](const auto& v) { return tg::binary_cross_entropy(v[0], v[1]); },
            "probs are [2, 3] but targets are [3, 2]; the shapes must be equal"),
        tg::make_error_input(
            "(2,3) against (3,), no broadcasting", {a, xt::ones<double>({3})},
            [](const auto& v) { return tg::binary_cross_entropy(v[0], v[1], tg::Reduction::none); },
            "probs are [2, 3] but targets are [3]; the shapes must be equal")};
    errors.push_back(tg::make_error_input(
        "a probability above 1", {xt::xarray<double>{0.5, 1.5}, xt::xarray<double>{1.0, 0.0}},
        [](const auto& v) { return tg::binary_cross_entropy(v[0], v[1]); },
        "probs must be in [0, 1], got 1.5 at flat position 1 (shape [2])"));
    errors.push_back(tg::make_error_input(
        "a negative probability", {xt::xarray<double>{-0.5, 0.5}, xt::xarray<double>{1.0, 0.0}},
        [](const auto& v) { return tg::binary_cross_entropy(v[0], v[1]); },
        "probs must be in [0, 1], got -0.5 at flat position 0"));
    errors.push_back(tg::make_error_input(
        "a NaN probability",
        {xt::xarray<double>{0.5, std::numeric_limits<double>::quiet_NaN()}, xt::xarray<double>{1.0, 0.0}},
        [](const auto& v) { return tg::binary_cross_entropy(v[0], v[1]); },
        "probs must be in [0, 1], got nan at flat position 1"));
    return errors;
}
