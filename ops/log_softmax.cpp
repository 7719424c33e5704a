// ops/log_softmax.cpp — y = x - log(sum(exp(x))) along an axis, computed as
//   x - logsumexp(x) with the maximum factored out: finite for logits of +-1000.
//   backward: grad_x = grad_out - exp(y) * sum(grad_out)     (sum along the same axis)

#include "op_common.hpp"
#include "reduce.hpp"

namespace tg {
namespace {

struct LogSoftmax {
    static constexpr const char* name = "log_softmax";
    std::ptrdiff_t axis;
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.out();
        if (y.shape() != x.shape()) y.resize(x.shape());
        const reduce::Around r = reduce::around(name, x.shape(), axis);
        const T* px = x.data();
        T* py = y.data();
        reduce::for_slices(r, [&](std::size_t off, std::size_t st) {
            const T lse = reduce::slice_logsumexp(r.len, px + off, st);
            for (std::size_t l = 0; l < r.len; ++l) py[off + l * st] = px[off + l * st] - lse;
        });
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        const reduce::Around r = reduce::around(name, c.input(0).shape(), axis);
        const T* py = c.out().data();
        const T* g = c.grad_out().data();
        GradSlot<T> s = c.grad_slot(0);
        reduce::for_slices(r, [&](std::size_t off, std::size_t st) {
            T total = 0;
            for (std::size_t l = 0; l < r.len; ++l) total += g[off + l * st];
            for (std::size_t l = 0; l < r.len; ++l) {
                const std::size_t k = off + l * st;
                const T v = g[k] - std::exp(py[k]) * total;
                s.data[k] = s.add ? s.data[k] + v : v;
            }
        });
    }
};

}  // namespace

template <class T> Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis)
{
    reduce::around("log_softmax", x.shape(), axis);  // checks the axis
    return record(LogSoftmax{axis}, x);
}

template Var<float> log_softmax<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> log_softmax<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_REGISTER_OP(log_softmax)
{
    return {"log_softmax", [](std::mt19937_64& rng) {
                auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -3.0, 3.0); };
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(3,4) axis -1", {u({3, 4})},
                                              [](const auto& v) { return tg::log_softmax(v[0], -1); }));
                out.push_back(tg::make_sample("(3,4) axis 0", {u({3, 4})},
                                              [](const auto& v) { return tg::log_softmax(v[0], 0); }));
                out.push_back(tg::make_sample("(2,3,4) axis 1", {u({2, 3, 4})},
                                              [](const auto& v) { return tg::log_softmax(v[0], 1); }));
                out.push_back(
                    tg::make_sample("(5,) axis 0", {u({5})}, [](const auto& v) { return tg::log_softmax(v[0], 0); }));
                out.push_back(tg::make_sample("(3,1) axis 1", {u({3, 1})},
                                              [](const auto& v) { return tg::log_softmax(v[0], 1); }));
                out.push_back(tg::make_sample("transposed (4,3) axis 1", {u({4, 3})},
                                              [](const auto& v) { return tg::log_softmax(tg::transpose(v[0]), 1); }));
                return out;
            }};
}
