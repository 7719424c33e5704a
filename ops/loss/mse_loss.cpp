// ops/loss/mse_loss.cpp — y = mean((pred - target)^2) over all n elements (rank-0 result)
//   vjp: grad_pred = grad_out * 2 (pred - target) / n,  grad_target = -grad_pred

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// mean((pred - target)^2) over all elements (PyTorch's default reduction).
template <class T> Var<T> mse_loss(const Var<T>& pred, const Var<T>& target);
//! end

namespace {

struct MseLoss {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class T> void forward(OpContext<T>& c) const
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
        c.output({}).data()[0] = s / static_cast<T>(n);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& p = c.input(0);
        const std::size_t n = p.size();
        const T k = T(2) * c.grad_out().data()[0] / static_cast<T>(n);
        for (std::size_t i = 0; i < 2; ++i) {
            const T ki = i == 0 ? k : -k;
            c.add_grad(i, p.shape(), [&](T* dst, bool add) {
                kernel::map_to(
                    add, n, dst, [ki](auto a, auto b) { return decltype(a)(ki) * (a - b); }, p.data(),
                    c.input(1).data());
            });
        }
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto n = static_cast<T>(detail::element_count(v.input_shape(0)));
        const Var<T> grad_pred = v.grad_out() * (v.input(0) - v.input(1)) * (T(2) / n);
        v.add_grad(0, grad_pred);
        if (v.needs_grad(1)) v.add_grad(1, -grad_pred);
    }
};

}  // namespace

template <class T> Var<T> mse_loss(const Var<T>& pred, const Var<T>& target)
{
    if (input_shape(TAPEGRAD_OP_NAME, pred) != input_shape(TAPEGRAD_OP_NAME, target)) {
        throw Error(std::string(MseLoss::name) + ": pred is " + format_shape(input_shape(TAPEGRAD_OP_NAME, pred)) +
                    " but target is " + format_shape(input_shape(TAPEGRAD_OP_NAME, target)) +
                    "; the shapes must be equal");
    }
    return record(MseLoss{}, pred, target);
}

template Var<float> mse_loss<float>(const Var<float>&, const Var<float>&);
template Var<double> mse_loss<double>(const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    auto f = [](const auto& v) { return tg::mse_loss(v[0], v[1]); };
    auto ref = [](const auto& x) { return xt::xarray<double>(xt::mean(xt::square(x[0] - x[1]))); };
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(3,4)", {u({3, 4}), u({3, 4})}, f, ref)
                      .with_torch("torch.nn.functional.mse_loss(x[0], x[1])"));
    out.push_back(tg::make_sample("(1,2)", {u({1, 2}), u({1, 2})}, f, ref)
                      .with_torch("torch.nn.functional.mse_loss(x[0], x[1])"));
    out.push_back(tg::make_sample("()", {u({}), u({})}, f, ref).with_torch("torch.nn.functional.mse_loss(x[0], x[1])"));
    out.push_back(
        tg::make_sample(
            "transposed (4,3)", {u({4, 3}), u({3, 4})},
            [](const auto& v) { return tg::mse_loss(tg::transpose(v[0]), v[1]); },
            [](const auto& x) { return xt::xarray<double>(xt::mean(xt::square(xt::transpose(x[0]) - x[1]))); })
            .with_torch("torch.nn.functional.mse_loss(x[0].T, x[1])"));
    return out;
}
