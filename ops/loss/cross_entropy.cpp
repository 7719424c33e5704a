// ops/loss/cross_entropy.cpp — y = mean over the counted rows i of (logsumexp(x[i, :]) - x[i, label_i])
//   for logits x [N, C] and integer labels [N] in [0, C); rank-0 result. A row whose label is
//   ignore_index is not counted: it adds 0 and leaves the mean's divisor (as PyTorch).
//   vjp: grad_x [N, C] = grad_out / n * (softmax(x) - onehot(labels)) on the n counted rows, 0 on the others
// The log-sum-exp is taken around each row's maximum, so logits of +-1000 give finite
// losses and gradients; forward keeps softmax(x) for the fused backward. When every label is
// ignored, the mean is 0 / 0: NaN, as PyTorch, with a zero gradient (not NaN), as PyTorch.

#include <cmath>
#include <limits>

#include "pointwise_loss.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Cross-entropy of logits [N, C] or [N, C, d1, ...] at labels [N] or [N, d1, ...], with label smoothing.
/// `label_smoothing` = e mixes the target with the uniform distribution: (1 - e) nll + e mean over classes
/// of -log_softmax (as PyTorch). Labels equal to `ignore_index` add 0 and are left out of the mean; if every
/// label is ignored the mean is NaN with a zero gradient (as PyTorch).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<std::int64_t>& labels,
                     Reduction reduction = Reduction::mean, double label_smoothing = 0.0,
                     std::int64_t ignore_index = -100);
//! end

namespace {

struct CrossEntropy {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    xt::xarray<std::int64_t> labels;  // owned: backward and the rule read them
    std::int64_t ignore;              // rows with this label are not counted
    std::size_t counted;              // the rows that are

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
            if (idx[i] != ignore) total += lse - row[idx[i]];
            if (keep) {
                T* pr = prob.data() + i * k;
                for (std::size_t j = 0; j < k; ++j) pr[j] = std::exp(row[j] - lse);
            }
        }
        c.output({}).data()[0] = counted == 0 ? std::numeric_limits<T>::quiet_NaN() : total / static_cast<T>(counted);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        const T scale = counted == 0 ? T(0) : c.grad_out().data()[0] / static_cast<T>(counted);
        const std::int64_t* idx = labels.data();
        const T* pr = c.saved(0).data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            for (std::size_t i = 0; i < n; ++i) {
                const bool counts = idx[i] != ignore;
                for (std::size_t j = 0; j < k; ++j) {
                    const T onehot = static_cast<std::int64_t>(j) == idx[i] ? T(1) : T(0);
                    const T v = counts ? scale * (pr[i * k + j] - onehot) : T(0);
                    dst[i * k + j] = add ? dst[i * k + j] + v : v;
                }
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& s = v.input_shape(0);
        xt::xarray<T> onehot = xt::zeros<T>(s);
        xt::xarray<T> weight = xt::zeros<T>({s[0], std::size_t{1}});  // 1 / counted per counted row
        for (std::size_t i = 0; i < s[0]; ++i) {
            if (labels(i) == ignore) continue;
            onehot(i, static_cast<std::size_t>(labels(i))) = T(1);
            weight(i, 0) = T(1) / static_cast<T>(counted);
        }
        v.add_grad(0,
                   (softmax(v.input(0), 1) - constant(std::move(onehot))) * constant(std::move(weight)) * v.grad_out());
    }
};

}  // namespace

template <class T>
Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<std::int64_t>& labels, Reduction reduction,
                     double label_smoothing, std::int64_t ignore_index)
{
    const char* op = CrossEntropy::name;
    const auto& s = input_shape(op, logits);
    if (s.size() < 2)
        throw Error(std::string(op) + ": logits must be [N, C] or [N, C, d1, ...], got " + format_shape(s));
    if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
        throw Error(std::string(op) + ": label_smoothing must be in [0, 1], got " + format_number(label_smoothing));
    }
    std::size_t ignored = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) ignored += labels.data()[i] == ignore_index ? 1 : 0;
    // The common case in one fused entry; the rest composed from log_softmax and nll_loss.
    if (s.size() == 2 && reduction == Reduction::mean && label_smoothing == 0 && s[0] > 0) {
        if (labels.dimension() != 1 || labels.size() != s[0]) {
            throw Error(std::string(op) + ": labels must be 1-D with one class index per row of logits " +
                        format_shape(s) + ", got " + format_shape(labels.shape()));
        }
        const auto classes = static_cast<std::int64_t>(s[1]);
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const std::int64_t l = labels.data()[i];
            if (l != ignore_index && (l < 0 || l >= classes)) {
                throw Error(std::string(op) + ": label " + std::to_string(l) + " at row " + std::to_string(i) +
                            " is out of range for " + std::to_string(classes) + " classes");
            }
        }
        return record(CrossEntropy{labels, ignore_index, labels.size() - ignored}, logits);
    }
    // Ignored labels become class 0 for nll_loss (which checks the rest, so that the message
    // names this op), and their losses are then replaced by 0, their gradients with them.
    xt::xarray<bool> skip;
    xt::xarray<std::int64_t> counted_labels;
    if (ignored > 0) {
        skip = xt::xarray<bool>::from_shape(labels.shape());
        counted_labels = labels;
        for (std::size_t i = 0; i < labels.size(); ++i) {
            skip.data()[i] = labels.data()[i] == ignore_index;
            if (skip.data()[i]) counted_labels.data()[i] = 0;
        }
    }
    const xt::xarray<std::int64_t>& used = ignored > 0 ? counted_labels : labels;
    losses::check_labels(op, s, used, "logits", true);
    const Var<T> lsm = log_softmax(logits, 1);
    const Var<T> nll = nll_loss(lsm, used, Reduction::none);
    Var<T> l = nll;
    if (label_smoothing > 0) {
        const auto e = static_cast<T>(label_smoothing);
        const Var<T> uniform = sum(lsm, {1}) * (-1 / static_cast<T>(s[1]));
        l = nll * (1 - e) + uniform * e;
    }
    if (ignored > 0) l = tg::masked_fill(l, skip, T(0));
    if (reduction == Reduction::none) return l;
    if (reduction == Reduction::sum) return sum(l);
    if (ignored == 0) return mean(l);
    const std::size_t counted = labels.size() - ignored;
    // Every label ignored: 0 / 0 is NaN (as PyTorch), and the gradient stays 0 (masked_fill's).
    if (counted == 0) return sum(l) + std::numeric_limits<T>::quiet_NaN();
    return sum(l) * (T(1) / static_cast<T>(counted));
}

template Var<float> cross_entropy<float>(const Var<float>&, const xt::xarray<std::int64_t>&, Reduction, double,
                                         std::int64_t);
template Var<double> cross_entropy<double>(const Var<double>&, const xt::xarray<std::int64_t>&, Reduction, double,
                                           std::int64_t);

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
                       tg::Reduction r, double e, std::int64_t ignore = -100) {
        const std::string red = r == tg::Reduction::mean ? "'mean'" : r == tg::Reduction::sum ? "'sum'" : "'none'";
        out.push_back(
            tg::make_sample(
                std::move(label), {u(shape)},
                [labels, r, e, ignore](const auto& v) { return tg::cross_entropy(v[0], labels, r, e, ignore); },
                [labels, r, e, ignore](const auto& x) {
                    // log_softmax along axis 1 by hand, then the smoothed nll per element.
                    const xt::xarray<double> ex = xt::exp(x[0]);
                    const xt::xarray<double> z = xt::sum(ex, {1}, xt::keep_dims);
                    const xt::xarray<double> lsm = x[0] - xt::log(z);
                    const std::size_t classes = x[0].shape()[1];
                    xt::xarray<double> l = xt::zeros<double>(labels.shape());
                    double counted = 0;
                    for (std::size_t i = 0; i < labels.size(); ++i) {
                        if (labels.data()[i] == ignore) continue;
                        counted += 1;
                        auto at = xt::unravel_index(i, labels.shape());
                        std::vector<std::size_t> e0(at.begin(), at.end());
                        e0.insert(e0.begin() + 1, 0);
                        double all = 0;
                        for (std::size_t cl = 0; cl < classes; ++cl) {
                            e0[1] = cl;
                            all += lsm.element(e0.begin(), e0.end());
                        }
                        e0[1] = static_cast<std::size_t>(labels.data()[i]);
                        l.data()[i] = -(1 - e) * lsm.element(e0.begin(), e0.end()) - e * all / double(classes);
                    }
                    if (r != tg::Reduction::mean) return tg::losses::reduce_reference(l, r);
                    return xt::xarray<double>(xt::sum(l)() / counted);
                })
                .with_torch("torch.nn.functional.cross_entropy(x[0], " + tg::samples::torch_literal(labels) +
                            ", reduction=" + red + ", label_smoothing=" + std::to_string(e) +
                            (ignore == -100 ? std::string() : ", ignore_index=" + std::to_string(ignore)) + ")"));
    };
    general("(4,3) sum", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::sum, 0.0);
    general("(4,3) none", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::none, 0.0);
    general("(4,3) smoothing 0.1", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::mean, 0.1);
    general("(2,3,4) N-D", {2, 3, 4}, xt::xarray<std::int64_t>{{0, 1, 2, 2}, {1, 1, 0, 2}}, tg::Reduction::mean, 0.0);
    general("(2,3,2,2) N-D smoothing 0.2 none", {2, 3, 2, 2},
            xt::xarray<std::int64_t>{{{0, 1}, {2, 2}}, {{1, 0}, {0, 2}}}, tg::Reduction::none, 0.2);
    // ignore_index: on the fused path (2-D, mean, no smoothing) and on the composed one.
    general("(5,4) ignore -100 fused", {5, 4}, xt::xarray<std::int64_t>{3, -100, 0, -100, 1}, tg::Reduction::mean, 0.0);
    general("(4,3) ignore_index 2 fused", {4, 3}, xt::xarray<std::int64_t>{0, 2, 2, 1}, tg::Reduction::mean, 0.0, 2);
    general("(4,3) ignore -100 smoothing 0.1", {4, 3}, xt::xarray<std::int64_t>{-100, 1, 2, 0}, tg::Reduction::mean,
            0.1);
    general("(4,3) ignore -100 smoothing 0.3 sum", {4, 3}, xt::xarray<std::int64_t>{2, -100, -100, 0},
            tg::Reduction::sum, 0.3);
    general("(4,3) ignore_index 0 none", {4, 3}, xt::xarray<std::int64_t>{0, 2, 0, 1}, tg::Reduction::none, 0.0, 0);
    general("(2,3,4) N-D ignore -100", {2, 3, 4}, xt::xarray<std::int64_t>{{0, -100, 2, 1}, {-100, -100, 1, 0}},
            tg::Reduction::mean, 0.0);
    general("(2,3,4) N-D ignore_index 7 smoothing 0.2", {2, 3, 4}, xt::xarray<std::int64_t>{{7, 1, 2, 7}, {1, 7, 0, 2}},
            tg::Reduction::mean, 0.2, 7);
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
        "label 5 of 3 classes with ignore_index 3", {x},
        [](const auto& v) {
            return tg::cross_entropy(v[0], Labels{3, 5}, tg::Reduction::mean, 0.0, 3);
        },
        "label 5 at row 1 is out of range for 3 classes"));
    errors.push_back(tg::make_error_input(
        "label -1 beside an ignored label, summed", {x},
        [](const auto& v) {
            return tg::cross_entropy(v[0], Labels{-100, -1}, tg::Reduction::sum);
        },
        "label -1 at flat position 1 is out of range for 3 classes"));
    errors.push_back(tg::make_error_input(
        "labels (2,) for (2,3,4)", {xt::ones<double>({2, 3, 4})},
        [](const auto& v) {
            return tg::cross_entropy(v[0], Labels{0, 1});
        },
        "logits [2, 3, 4] need labels of shape [N, d1, ...] without their class axis (1), got [2]"));
    return errors;
}
