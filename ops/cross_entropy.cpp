// ops/cross_entropy.cpp — y = mean over i of (logsumexp(x[i, :]) - x[i, label_i])
//   for logits x [N, C] and integer labels [N] in [0, C); rank-0 result.
//   backward: grad_x [N, C] = grad_out / N * (softmax(x) - onehot(labels))
// The log-sum-exp is taken around each row's maximum, so logits of +-1000 give finite
// losses and gradients; forward keeps softmax(x) for the backward.

#include "op_common.hpp"
#include "reduce.hpp"

namespace tg {
namespace {

struct CrossEntropy {
    static constexpr const char* name = "cross_entropy";
    const xt::xarray<std::int64_t>* labels;  // only read during forward
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        auto& idx = c.saved_index();
        idx.assign(labels->begin(), labels->end());
        auto& prob = c.saved();
        const bool keep = c.recording();
        if (keep && prob.shape() != x.shape()) prob.resize(x.shape());
        const T* px = x.data();
        T total = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const T* row = px + i * k;
            const T lse = reduce::slice_logsumexp(k, row, 1);
            total += lse - row[idx[i]];
            if (keep) {
                T* pr = prob.data() + i * k;
                for (std::size_t j = 0; j < k; ++j) pr[j] = std::exp(row[j] - lse);
            }
        }
        auto& y = c.out();
        if (y.dimension() != 0) y.resize(typename xt::xarray<T>::shape_type{});
        y.data()[0] = total / static_cast<T>(n);
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        const auto& x = c.input(0);
        const std::size_t n = x.shape()[0], k = x.shape()[1];
        const T scale = c.grad_out().data()[0] / static_cast<T>(n);
        const auto& idx = c.saved_index();
        const T* pr = c.saved().data();
        GradSlot<T> s = c.grad_slot(0);
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t j = 0; j < k; ++j) {
                const T onehot = static_cast<std::int64_t>(j) == idx[i] ? T(1) : T(0);
                const T v = scale * (pr[i * k + j] - onehot);
                s.data[i * k + j] = s.add ? s.data[i * k + j] + v : v;
            }
        }
    }
};

}  // namespace

template <class T> Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<std::int64_t>& labels)
{
    const auto& s = logits.shape();
    if (s.size() != 2) throw Error("cross_entropy: logits must be 2-D [N, C], got " + format_shape(s));
    if (s[0] == 0) throw Error("cross_entropy: the batch is empty (logits " + format_shape(s) + ")");
    if (labels.dimension() != 1 || labels.size() != s[0]) {
        throw Error("cross_entropy: labels must be 1-D with one class index per row of logits " + format_shape(s) +
                    ", got " + format_shape(labels.shape()));
    }
    const auto classes = static_cast<std::int64_t>(s[1]);
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::int64_t l = labels.data()[i];
        if (l < 0 || l >= classes) {
            throw Error("cross_entropy: label " + std::to_string(l) + " at row " + std::to_string(i) +
                        " is out of range for " + std::to_string(classes) + " classes");
        }
    }
    return record(CrossEntropy{&labels}, logits);
}

template Var<float> cross_entropy<float>(const Var<float>&, const xt::xarray<std::int64_t>&);
template Var<double> cross_entropy<double>(const Var<double>&, const xt::xarray<std::int64_t>&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(cross_entropy)
{
    return {"cross_entropy", [](std::mt19937_64& rng) {
                auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -3.0, 3.0); };
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(4,5)", {u({4, 5})}, [](const auto& v) {
                    return tg::cross_entropy(v[0], xt::xarray<std::int64_t>{0, 4, 2, 2});
                }));
                out.push_back(tg::make_sample("(1,3)", {u({1, 3})}, [](const auto& v) {
                    return tg::cross_entropy(v[0], xt::xarray<std::int64_t>{1});
                }));
                out.push_back(tg::make_sample("(3,1)", {u({3, 1})}, [](const auto& v) {
                    return tg::cross_entropy(v[0], xt::xarray<std::int64_t>{0, 0, 0});
                }));
                out.push_back(tg::make_sample("transposed (3,2)", {u({3, 2})}, [](const auto& v) {
                    return tg::cross_entropy(tg::transpose(v[0]), xt::xarray<std::int64_t>{2, 0});
                }));
                return out;
            }};
}
