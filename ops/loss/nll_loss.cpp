// ops/loss/nll_loss.cpp — l[i, ...] = -log_probs[i, labels[i, ...], ...] for log_probs [N, C, d1, ...] and
//   integer labels [N, d1, ...] in [0, C); reduced (mean by default, over N d1 ...)
//   (a gather along the class axis and a negation: their vjps scatter the gradient back)

#include <string>

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Negative log-likelihood of log-probabilities [N, C] or [N, C, d1, ...] at integer labels [N] or [N, d1, ...].
template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const xt::xarray<std::int64_t>& labels, Reduction reduction = Reduction::mean);
//! end

namespace losses {

template <class T> Var<T> reduce(const Var<T>& l, Reduction r)
{
    return r == Reduction::none ? l : r == Reduction::sum ? sum(l) : mean(l);
}

}  // namespace losses

template <class T> Var<T> nll_loss(const Var<T>& log_probs, const xt::xarray<std::int64_t>& labels, Reduction reduction)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, log_probs);
    losses::check_labels(TAPEGRAD_OP_NAME, s, labels);
    std::vector<std::size_t> index_shape(labels.shape().begin(), labels.shape().end());
    index_shape.insert(index_shape.begin() + 1, std::size_t{1});
    xt::xarray<std::int64_t> index = labels;
    index.reshape(index_shape);
    return losses::reduce(-squeeze(gather(log_probs, 1, index), 1), reduction);
}

template Var<float> nll_loss<float>(const Var<float>&, const xt::xarray<std::int64_t>&, Reduction);
template Var<double> nll_loss<double>(const Var<double>&, const xt::xarray<std::int64_t>&, Reduction);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -3.0, 0.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, xt::xarray<std::int64_t> labels,
                      tg::Reduction r) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [labels, r](const auto& v) { return tg::nll_loss(v[0], labels, r); },
                          [labels, r](const auto& x) {
                              xt::xarray<double> l = xt::zeros<double>(labels.shape());
                              for (std::size_t i = 0; i < labels.size(); ++i) {
                                  auto at = xt::unravel_index(i, labels.shape());
                                  std::vector<std::size_t> e(at.begin(), at.end());
                                  e.insert(e.begin() + 1, static_cast<std::size_t>(labels.data()[i]));
                                  l.data()[i] = -x[0].element(e.begin(), e.end());
                              }
                              return tg::losses::reduce_reference(l, r);
                          })
                          .with_torch("torch.nn.functional.nll_loss(x[0], " + tg::samples::torch_literal(labels) +
                                      ", reduction=" + tg::losses::torch_reduction(r) + ")"));
    };
    sample("(4,3)", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::mean);
    sample("(2,3,4) sum", {2, 3, 4}, xt::xarray<std::int64_t>{{0, 1, 2, 2}, {1, 1, 0, 2}}, tg::Reduction::sum);
    sample("(2,3,2,2) none", {2, 3, 2, 2}, xt::xarray<std::int64_t>{{{0, 1}, {2, 2}}, {{1, 0}, {0, 2}}},
           tg::Reduction::none);
    sample("(1,5)", {1, 5}, xt::xarray<std::int64_t>{4}, tg::Reduction::mean);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Labels = xt::xarray<std::int64_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "label 3 of 3 classes", {x},
                [](const auto& v) {
                    return tg::nll_loss(v[0], Labels{0, 3});
                },
                "label 3 at flat position 1 is out of range for 3 classes"),
            tg::make_error_input(
                "label -5", {x},
                [](const auto& v) {
                    return tg::nll_loss(v[0], Labels{-5, 0});
                },
                "label -5 at flat position 0 is out of range for 3 classes"),
            tg::make_error_input(
                "labels (3,) for (2,3)", {x},
                [](const auto& v) {
                    return tg::nll_loss(v[0], Labels{0, 1, 2});
                },
                "input [2, 3] needs labels of shape [N, d1, ...] without its class axis (1), got [3]"),
            tg::make_error_input(
                "labels (2,4) for (2,3,5)", {xt::ones<double>({2, 3, 5})},
                [](const auto& v) {
                    return tg::nll_loss(v[0], Labels::from_shape({2, 4}));
                },
                "input [2, 3, 5] needs labels of shape [N, d1, ...] without its class axis (1), got [2, 4]"),
            tg::make_error_input(
                "input of rank 1", {xt::ones<double>({3})}, [](const auto& v) { return tg::nll_loss(v[0], Labels{0}); },
                "input [3] needs labels of shape [N, d1, ...]")};
}
