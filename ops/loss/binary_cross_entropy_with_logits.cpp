// ops/loss/binary_cross_entropy_with_logits.cpp — l = max(x, 0) - x t + log(1 + exp(-|x|)) per
// element (logits x, targets t, same shape), reduced (mean by default). It equals
// -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] without forming either log of a sigmoid,
// so logits of +-1000 stay finite.
//   vjp: grad_x = grad_out (sigmoid(x) - t),  grad_t = -grad_out x   (times 1 / n for the mean)

#include "pointwise_loss.hpp"

namespace tg {

//! public
/// Sigmoid and binary cross-entropy in one stable step: max(x, 0) - x t + log(1 + exp(-|x|)), reduced.
/// `targets` has the logits' shape.
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets,
                                        Reduction reduction = Reduction::mean);
//! end

namespace {

struct BceWithLogits {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    Reduction reduction = Reduction::mean;

    template <class T> T scale(std::size_t n) const
    {
        return reduction == Reduction::mean ? T(1) / static_cast<T>(n) : T(1);
    }
    template <class T> static T loss(T v, T t)
    {
        return std::max(v, T(0)) - v * t + std::log1p(std::exp(-std::abs(v)));
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* px = x.data();
        const T* pt = c.input(1).data();
        const std::size_t n = x.size();
        if (reduction == Reduction::none) {
            T* y = c.output(x.shape()).data();
            for (std::size_t i = 0; i < n; ++i) y[i] = loss(px[i], pt[i]);
            return;
        }
        T s = 0;
        for (std::size_t i = 0; i < n; ++i) s += loss(px[i], pt[i]);
        c.output({}).data()[0] = s * scale<T>(n);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t n = x.size();
        auto run = [&](auto k) {
            c.add_grad(0, x.shape(), [&](T* dst, bool add) {
                kernel::map_to(
                    add, n, dst, [](auto kv, auto v, auto t) { return kv * (fn::sigmoid(v) - t); }, k, x.data(),
                    c.input(1).data());
            });
            c.add_grad(1, x.shape(), [&](T* dst, bool add) {
                kernel::map_to(
                    add, n, dst, [](auto kv, auto v) { return -kv * v; }, k, x.data());
            });
        };
        if (reduction == Reduction::none) {
            run(c.grad_out().data());
        } else {
            run(kernel::Bcast<T>{c.grad_out().data()[0] * scale<T>(n)});
        }
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const std::size_t n = detail::element_count(v.input_shape(0));
        const Var<T> k = reduction == Reduction::none ? v.grad_out() : v.grad_out() * scale<T>(n);
        const Var<T> x = v.input(0);
        if (v.needs_grad(0)) v.add_grad(0, k * (sigmoid(x) - v.input(1)));
        if (v.needs_grad(1)) v.add_grad(1, -k * x);
    }
};

}  // namespace

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets, Reduction reduction)
{
    losses::check_same_shape(BceWithLogits::name, logits, targets, "logits are", "targets are");
    BceWithLogits op;
    op.reduction = reduction;
    return record(op, logits, targets);
}

template Var<float> binary_cross_entropy_with_logits<float>(const Var<float>&, const Var<float>&, Reduction);
template Var<double> binary_cross_entropy_with_logits<double>(const Var<double>&, const Var<double>&, Reduction);

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
    out.push_back(
        tg::make_sample(
            "(2,3) sum", {u({2, 3}, -4, 4), u({2, 3}, 0, 1)},
            [](const auto& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1], tg::Reduction::sum); },
            [bce](const auto& x) { return xt::xarray<double>(bce(x[0], x[1]) * 6.0); })
            .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0], x[1], reduction='sum')"));
    out.push_back(
        tg::make_sample(
            "(2,3) none", {u({2, 3}, -4, 4), u({2, 3}, 0, 1)},
            [](const auto& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1], tg::Reduction::none); },
            [](const auto& x) {
                const xt::xarray<double> sg = 1.0 / (1.0 + xt::exp(-x[0]));
                return xt::xarray<double>(-(x[1] * xt::log(sg) + (1.0 - x[1]) * xt::log(1.0 - sg)));
            })
            .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0], x[1], reduction='none')"));
    out.push_back(tg::make_sample(
                      "transposed (4,3)", {u({4, 3}, -4, 4), u({3, 4}, 0, 1)},
                      [](const auto& v) { return tg::binary_cross_entropy_with_logits(tg::transpose(v[0]), v[1]); },
                      [bce](const auto& x) { return bce(xt::transpose(x[0]), x[1]); })
                      .with_torch("torch.nn.functional.binary_cross_entropy_with_logits(x[0].T, x[1])"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<double> a = xt::ones<double>({2, 3});
    std::vector<tg::ErrorInput> errors{
        tg::make_error_input(
            "(2,3) against (3,2)", {a, xt::ones<double>({3, 2})},
            [](const auto& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1]); },
            "logits are [2, 3] but targets are [3, 2]; the shapes must be equal"),
        tg::make_error_input(
            "(2,3) against (3,), no broadcasting", {a, xt::ones<double>({3})},
            [](const auto& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1], tg::Reduction::none); },
            "logits are [2, 3] but targets are [3]; the shapes must be equal")};
    return errors;
}
