// ops/loss/cross_entropy.cpp — y = mean over i of (logsumexp(x[i, :]) - x[i, label_i])
//   for logits x [N, C] and integer labels [N] in [0, C); rank-0 result.
//   vjp: grad_x [N, C] = grad_out / N * (softmax(x) - onehot(labels))
// The log-sum-exp is taken around each row's maximum, so logits of +-1000 give finite
// losses and gradients; forward keeps softmax(x) for the fused backward.

#include <cmath>

#include "pointwise_loss.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Cross-entropy of logits [N, C] or [N, C, d1, ...] at labels [N] or [N, d1, ...], with label smoothing.
/// `label_smoothing` = e mixes the target with the uniform distribution: (1 - e) nll + e mean over classes
/// of -log_softmax (as PyTorch).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<std::int64_t>& labels,
                     Reduction reduction = Reduction::mean, double label_smoothing = 0.0);
//! end

namespace {

struct CrossEntropy {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    xt::xarray<std::int64_t> labels;  // owned: backward and the rule read them

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        const bool keep = c.recording();
        auto& prob = c.saved(0);
        if (keep && prob.shape() != x.shape()) prob.resize(x.shape());
        const T* px = x.data();
        const std::int64_t* idx = labels.data();
        T total = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const T* row = px + i * k;
            const T lse = axis::slice_logsumexp(k, row, 1);
            total += lse - row[idx[i]];
            if (keep) {
                T* pr = prob.data() + i * k;
                for (std::size_t j = 0; j < k; ++j) pr[j] = std::exp(row[j] - lse);
            }
        }
        c.output({}).data()[0] = total / static_cast<T>(n);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        const T scale = c.grad_out().data()[0] / static_cast<T>(n);
        const std::int64_t* idx = labels.data();
        const T* pr = c.saved(0).data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            for (std::size_t i = 0; i < n; ++i) {
                for (std::size_t j = 0; j < k; ++j) {
                    const T onehot = static_cast<std::int64_t>(j) == idx[i] ? T(1) : T(0);
                    const T v = scale * (pr[i * k + j] - onehot);
                    dst[i * k + j] = add ? dst[i * k + j] + v : v;
                }
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& s = v.input_shape(0);
        xt::xarray<T> onehot = xt::zeros<T>(s);
        for (std::size_t i = 0; i < s[0]; ++i) onehot(i, static_cast<std::size_t>(labels(i))) = T(1);
        v.add_grad(0, (softmax(v.input(0), 1) - constant(std::move(onehot))) * (v.grad_out() / static_cast<T>(s[0])));
    }
};

}  // namespace

template <class T>
Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<std::int64_t>& labels, Reduction reduction,
                     double label_smoothing)
{
    const char* op = CrossEntropy::name;
    const auto& s = input_shape(op, logits);
    if (s.size() < 2)
        throw Error(std::string(op) + ": logits must be [N, C] or [N, C, d1, ...], got " + format_shape(s));
    if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
        throw Error(std::string(op) + ": label_smoothing must be in [0, 1], got " + format_number(label_smoothing));
    }
    // The common case in one fused entry; the rest composed from log_softmax and nll_loss.
    if (s.size() == 2 && reduction == Reduction::mean && label_smoothing == 0 && s[0] > 0) {
        if (labels.dimension() != 1 || labels.size() != s[0]) {
            throw Error(std::string(op) + ": labels must be 1-D with one class index per row of logits " +
                        format_shape(s) + ", got " + format_shape(labels.shape()));
        }
        const auto classes = static_cast<std::int64_t>(s[1]);
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const std::int64_t l = labels.data()[i];
            if (l < 0 || l >= classes) {
                throw Error(std::string(op) + ": label " + std::to_string(l) + " at row " + std::to_string(i) +
                            " is out of range for " + std::to_string(classes) + " classes");
            }
        }
        return record(CrossEntropy{labels}, logits);
    }
    // Checked here, not left to nll_loss, so that the message names this op.
    losses::check_labels(op, s, labels, "logits", true);
    const Var<T> lsm = log_softmax(logits, 1);
    const Var<T> nll = nll_loss(lsm, labels, Reduction::none);
    Var<T> l = nll;
    if (label_smoothing > 0) {
        const auto e = static_cast<T>(label_smoothing);
        const Var<T> uniform = sum(lsm, {1}) * (-1 / static_cast<T>(s[1]));
        l = nll * (1 - e) + uniform * e;
    }
    return reduction == Reduction::none ? l : reduction == Reduction::sum ? sum(l) : mean(l);
}

template Var<float> cross_entropy<float>(const Var<float>&, const xt::xarray<std::int64_t>&, Reduction, double);
template Var<double> cross_entropy<double>(const Var<double>&, const xt::xarray<std::int64_t>&, Reduction, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -3.0, 3.0); };
    auto ref = [](const xt::xarray<double>& x, const std::vector<std::int64_t>& labels) {
        double total = 0;
        for (std::size_t i = 0; i < labels.size(); ++i) {
            double z = 0;
            for (std::size_t j = 0; j < x.shape()[1]; ++j) z += std::exp(x(i, j));
            total += std::log(z) - x(i, static_cast<std::size_t>(labels[i]));
        }
        return xt::xarray<double>(total / static_cast<double>(labels.size()));
    };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::vector<std::int64_t> l, bool t) {
        const xt::xarray<std::int64_t> labels = xt::adapt(l, {l.size()});
        out.push_back(
            tg::make_sample(
                std::move(label), {u(shape)},
                [labels, t](const auto& v) { return tg::cross_entropy(t ? tg::transpose(v[0]) : v[0], labels); },
                [ref, l, t](const auto& x) { return ref(t ? xt::xarray<double>(xt::transpose(x[0])) : x[0], l); })
                .with_torch(std::string("torch.nn.functional.cross_entropy(") + (t ? "x[0].T" : "x[0]") + ", " +
                            tg::samples::torch_literal(labels) + ")"));
    };
    sample("(4,5)", {4, 5}, {0, 4, 2, 2}, false);
    sample("(1,3)", {1, 3}, {1}, false);
    sample("(3,1)", {3, 1}, {0, 0, 0}, false);
    sample("transposed (3,2)", {3, 2}, {2, 0}, true);
    auto general = [&](std::string label, std::vector<std::size_t> shape, xt::xarray<std::int64_t> labels,
                       tg::Reduction r, double e) {
        const std::string red = r == tg::Reduction::mean ? "'mean'" : r == tg::Reduction::sum ? "'sum'" : "'none'";
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [labels, r, e](const auto& v) { return tg::cross_entropy(v[0], labels, r, e); },
                          [labels, r, e](const auto& x) {
                              // log_softmax along axis 1 by hand, then the smoothed nll per element.
                              const xt::xarray<double> ex = xt::exp(x[0]);
                              const xt::xarray<double> z = xt::sum(ex, {1}, xt::keep_dims);
                              const xt::xarray<double> lsm = x[0] - xt::log(z);
                              const std::size_t classes = x[0].shape()[1];
                              xt::xarray<double> l = xt::zeros<double>(labels.shape());
                              for (std::size_t i = 0; i < labels.size(); ++i) {
                                  auto at = xt::unravel_index(i, labels.shape());
                                  std::vector<std::size_t> e0(at.begin(), at.end());
                                  e0.insert(e0.begin() + 1, 0);
                                  double all = 0;
                                  for (std::size_t cl = 0; cl < classes; ++cl) {
                                      e0[1] = cl;
                                      all += lsm.element(e0.begin(), e0.end());
                                  }
                                  e0[1] = static_cast<std::size_t>(labels.data()[i]);
                                  l.data()[i] =
                                      -(1 - e) * lsm.element(e0.begin(), e0.end()) - e * all / double(classes);
                              }
                              return tg::losses::reduce_reference(l, r);
                          })
                          .with_torch("torch.nn.functional.cross_entropy(x[0], " + tg::samples::torch_literal(labels) +
                                      ", reduction=" + red + ", label_smoothing=" + std::to_string(e) + ")"));
    };
    general("(4,3) sum", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::sum, 0.0);
    general("(4,3) none", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::none, 0.0);
    general("(4,3) smoothing 0.1", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::mean, 0.1);
    general("(2,3,4) N-D", {2, 3, 4}, xt::xarray<std::int64_t>{{0, 1, 2, 2}, {1, 1, 0, 2}}, tg::Reduction::mean, 0.0);
    general("(2,3,2,2) N-D smoothing 0.2 none", {2, 3, 2, 2},
            xt::xarray<std::int64_t>{{{0, 1}, {2, 2}}, {{1, 0}, {0, 2}}}, tg::Reduction::none, 0.2);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Labels = xt::xarray<std::int64_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    std::vector<tg::ErrorInput> errors{tg::make_error_input(
                                           "logits of rank 1", {xt::ones<double>({3})},
                                           [](const auto& v) { return tg::cross_entropy(v[0], Labels{0}); },
                                           "logits must be [N, C] or [N, C, d1, ...], got [3]"),
                                       tg::make_error_input(
                                           "label_smoothing 1.5", {x},
                                           [](const auto& v) {
                                               return tg::cross_entropy(v[0], Labels{0, 1}, tg::Reduction::mean, 1.5);
                                           },
                                           "label_smoothing must be in [0, 1], got 1.5"),
                                       tg::make_error_input(
                                           "label_smoothing NaN", {x},
                                           [](const auto& v) {
                                               return tg::cross_entropy(v[0], Labels{0, 1}, tg::Reduction::mean,
                                                                        std::numeric_limits<double>::quiet_NaN());
                                           },
                                           "label_smoothing must be in [0, 1], got nan"),
                                       tg::make_error_input(
                                           "labels (3,) for (2,3)", {x},
                                           [](const auto& v) {
                                               return tg::cross_entropy(v[0], Labels{0, 1, 2});
                                           },
                                           "labels must be 1-D with one class index per row of logits [2, 3], got [3]"),
                                       tg::make_error_input(
                                           "label 3 of 3 classes", {x},
                                           [](const auto& v) {
                                               return tg::cross_entropy(v[0], Labels{0, 3});
                                           },
                                           "label 3 at row 1 is out of range for 3 classes"),
                                       tg::make_error_input(
                                           "label -1", {x},
                                           [](const auto& v) {
                                               return tg::cross_entropy(v[0], Labels{-1, 0});
                                           },
                                           "label -1 at row 0 is out of range for 3 classes")};
    // The same mistakes on the composed path (another reduction, smoothing, or more dims).
    errors.push_back(tg::make_error_input(
        "label 3 of 3 classes, summed", {x},
        [](const auto& v) {
            return tg::cross_entropy(v[0], Labels{0, 3}, tg::Reduction::sum);
        },
        "label 3 at flat position 1 is out of range for 3 classes"));
    errors.push_back(tg::make_error_input(
        "label -1 with smoothing", {x},
        [](const auto& v) {
            return tg::cross_entropy(v[0], Labels{-1, 0}, tg::Reduction::mean, 0.1);
        },
        "label -1 at flat position 0 is out of range for 3 classes"));
    errors.push_back(tg::make_error_input(
        "labels (2,) for (2,3,4)", {xt::ones<double>({2, 3, 4})},
        [](const auto& v) {
            return tg::cross_entropy(v[0], Labels{0, 1});
        },
        "logits [2, 3, 4] need labels of shape [N, d1, ...] without their class axis (1), got [2]"));
    return errors;
}
