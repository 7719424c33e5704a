// ops/mse_loss.cpp — y = mean((pred - target)^2) over all n elements (rank-0 result)
//   backward: grad_pred = grad_out * 2 (pred - target) / n,  grad_target = -grad_pred

#include "op_common.hpp"

namespace tg {
namespace {

struct MseLoss {
    static constexpr const char* name = "mse_loss";
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& p = c.input(0);
        const auto& t = c.input(1);
        const std::size_t n = p.size();
        const T* pp = p.data();
        const T* pt = t.data();
        T s = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const T d = pp[i] - pt[i];
            s += d * d;
        }
        auto& y = c.out();
        if (y.dimension() != 0) y.resize(typename xt::xarray<T>::shape_type{});
        y.data()[0] = s / static_cast<T>(n);
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        const auto& p = c.input(0);
        const std::size_t n = p.size();
        const T k = T(2) * c.grad_out().data()[0] / static_cast<T>(n);
        for (std::size_t i = 0; i < 2; ++i) {
            if (!c.needs_grad(i)) continue;
            GradSlot<T> s = c.grad_slot(i);
            const T ki = i == 0 ? k : -k;
            kernel::map_to(
                s.add, n, s.data, [ki](auto a, auto b) { return decltype(a)(ki) * (a - b); }, p.data(),
                c.input(1).data());
        }
    }
};

}  // namespace

template <class T> Var<T> mse_loss(const Var<T>& pred, const Var<T>& target)
{
    if (pred.shape() != target.shape()) {
        throw Error("mse_loss: pred is " + format_shape(pred.shape()) + " but target is " +
                    format_shape(target.shape()) + "; the shapes must be equal");
    }
    return record(MseLoss{}, pred, target);
}

template Var<float> mse_loss<float>(const Var<float>&, const Var<float>&);
template Var<double> mse_loss<double>(const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(mse_loss)
{
    return {"mse_loss", [](std::mt19937_64& rng) {
                auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
                auto f = [](const auto& v) { return tg::mse_loss(v[0], v[1]); };
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(3,4)", {u({3, 4}), u({3, 4})}, f));
                out.push_back(tg::make_sample("(1,2)", {u({1, 2}), u({1, 2})}, f));
                out.push_back(tg::make_sample("()", {u({}), u({})}, f));
                out.push_back(tg::make_sample("transposed (4,3)", {u({4, 3}), u({3, 4})},
                                              [](const auto& v) { return tg::mse_loss(tg::transpose(v[0]), v[1]); }));
                return out;
            }};
}
