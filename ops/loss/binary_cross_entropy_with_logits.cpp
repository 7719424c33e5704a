// ops/loss/binary_cross_entropy_with_logits.cpp — y = mean over n elements of
//   max(x, 0) - x * t + log(1 + exp(-|x|))     (logits x, targets t, same shape; rank-0)
// which equals -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] without forming either
// log of a sigmoid, so logits of +-1000 stay finite.
//   vjp: grad_x = grad_out / n * (sigmoid(x) - t),  grad_t = -grad_out / n * x

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Sigmoid and binary cross-entropy in one stable step: mean of max(x, 0) - x t + log(1 + exp(-|x|)).
/// `targets` has the logits' shape.
template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets);
//! end

namespace {

struct BceWithLogits {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& t = c.input(1);
        const std::size_t n = x.size();
        const T* px = x.data();
        const T* pt = t.data();
        T s = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const T v = px[i];
            s += std::max(v, T(0)) - v * pt[i] + std::log1p(std::exp(-std::abs(v)));
        }
        c.output({}).data()[0] = s / static_cast<T>(n);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.size();
        const T k = c.grad_out().data()[0] / static_cast<T>(n);
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            kernel::map_to(
                add, n, dst, [k](auto v, auto t) { return decltype(v)(k) * (fn::sigmoid(v) - t); }, x.data(),
                c.input(1).data());
        });
        c.add_grad(1, x.shape(), [&](T* dst, bool add) {
            kernel::map_to(
                add, n, dst, [k](auto v) { return decltype(v)(-k) * v; }, x.data());
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto n = static_cast<T>(detail::element_count(v.input_shape(0)));
        const Var<T> k = v.grad_out() / n;
        const Var<T> x = v.input(0);
        if (v.needs_grad(0)) v.add_grad(0, k * (sigmoid(x) - v.input(1)));
        if (v.needs_grad(1)) v.add_grad(1, -k * x);
    }
};

}  // namespace

template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets)
{
    if (input_shape(TAPEGRAD_OP_NAME, logits) != input_shape(TAPEGRAD_OP_NAME, targets)) {
        throw Error(std::string(BceWithLogits::name) + ": logits are " +
                    format_shape(input_shape(TAPEGRAD_OP_NAME, logits)) + " but targets are " +
                    format_shape(input_shape(TAPEGRAD_OP_NAME, targets)) + "; the shapes must be equal");
    }
    return record(BceWithLogits{}, logits, targets);
}

template Var<float> binary_cross_entropy_with_logits<float>(const Var<float>&, const Var<float>&);
template Var<double> binary_cross_entropy_with_logits<double>(const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s, double lo, double hi) { return tg::sample_uniform(rng, s, lo, hi); };
    auto f = [](const auto& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1]); };
    // The textbook form, fine for the moderate logits of the samples.
    auto bce = [](const xt::xarray<double>& x, const xt::xarray<double>& t) {
        const xt::xarray<double> s = 1.0 / (1.0 + xt::exp(-x));
        return xt::xarray<double>(xt::mean(-(t * xt::log(s) + (1.0 - t) * xt::log(1.0 - s))));
    };
    auto ref = [bce](const auto& x) { return bce(x[0], x[1]); };
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(3,4)", {u({3, 4}, -4, 4), u({3, 4}, 0, 1)}, f, ref)
                      .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0], x[1])"));
    out.push_back(tg::make_sample("(1,)", {u({1}, -4, 4), u({1}, 0, 1)}, f, ref)
                      .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0], x[1])"));
    out.push_back(tg::make_sample("()", {u({}, -4, 4), u({}, 0, 1)}, f, ref)
                      .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0], x[1])"));
    out.push_back(tg::make_sample(
                      "transposed (4,3)", {u({4, 3}, -4, 4), u({3, 4}, 0, 1)},
                      [](const auto& v) { return tg::binary_cross_entropy_with_logits(tg::transpose(v[0]), v[1]); },
                      [bce](const auto& x) { return bce(xt::transpose(x[0]), x[1]); })
                      .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0].T, x[1])"));
    return out;
}
