// ops/binary_cross_entropy_with_logits.cpp — y = mean over n elements of
//   max(x, 0) - x * t + log(1 + exp(-|x|))     (logits x, targets t, same shape; rank-0)
// which equals -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] without forming either
// log of a sigmoid, so logits of +-1000 stay finite.
//   backward: grad_x = grad_out / n * (sigmoid(x) - t),  grad_t = -grad_out / n * x

#include "op_common.hpp"

namespace tg {
namespace {

struct BceWithLogits {
    static constexpr const char* name = "binary_cross_entropy_with_logits";
    template <class T> void forward(Ctx<T>& c) const
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
        auto& y = c.out();
        if (y.dimension() != 0) y.resize(typename xt::xarray<T>::shape_type{});
        y.data()[0] = s / static_cast<T>(n);
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.size();
        const T k = c.grad_out().data()[0] / static_cast<T>(n);
        if (c.needs_grad(0)) {
            GradSlot<T> s = c.grad_slot(0);
            kernel::map_to(
                s.add, n, s.data,
                [k](auto v, auto t) {
                    using V = decltype(v);
                    return V(k) * (V(1) / (V(1) + xsimd::exp(-v)) - t);
                },
                x.data(), c.input(1).data());
        }
        if (c.needs_grad(1)) {
            GradSlot<T> s = c.grad_slot(1);
            kernel::map_to(
                s.add, n, s.data, [k](auto v) { return decltype(v)(-k) * v; }, x.data());
        }
    }
};

}  // namespace

template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets)
{
    if (logits.shape() != targets.shape()) {
        throw Error("binary_cross_entropy_with_logits: logits are " + format_shape(logits.shape()) +
                    " but targets are " + format_shape(targets.shape()) + "; the shapes must be equal");
    }
    return record(BceWithLogits{}, logits, targets);
}

template Var<float> binary_cross_entropy_with_logits<float>(const Var<float>&, const Var<float>&);
template Var<double> binary_cross_entropy_with_logits<double>(const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(binary_cross_entropy_with_logits)
{
    return {"binary_cross_entropy_with_logits", [](std::mt19937_64& rng) {
                auto u = [&](std::vector<std::size_t> s, double lo, double hi) {
                    return tg::sample_uniform(rng, s, lo, hi);
                };
                auto f = [](const auto& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1]); };
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(3,4)", {u({3, 4}, -4, 4), u({3, 4}, 0, 1)}, f));
                out.push_back(tg::make_sample("(1,)", {u({1}, -4, 4), u({1}, 0, 1)}, f));
                out.push_back(tg::make_sample("()", {u({}, -4, 4), u({}, 0, 1)}, f));
                out.push_back(
                    tg::make_sample("transposed (4,3)", {u({4, 3}, -4, 4), u({3, 4}, 0, 1)}, [](const auto& v) {
                        return tg::binary_cross_entropy_with_logits(tg::transpose(v[0]), v[1]);
                    }));
                return out;
            }};
}
