// ops/nn/log_softmax.cpp — y = x - log(sum(exp(x))) along an axis, computed as
//   x - logsumexp(x) with the maximum factored out: finite for logits of +-1000.
//   vjp: grad_x = grad_out - exp(y) * sum(grad_out)     (sum along the same axis, kept)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x - log(sum(exp(x))) along an axis, computed stably.
template <class T> Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis);
//! end

namespace {

struct LogSoftmax {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::ptrdiff_t axis;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const axis::Split r = axis::split(name, x.shape(), axis);
        const T* px = x.data();
        T* py = c.output(x.shape()).data();
        if (x.size() == 0) return;  // nothing to compute, and no pointer to offset into
        axis::for_slices(r, [&](std::size_t off, std::size_t st) {
            const T lse = axis::slice_logsumexp(r.len, px + off, st);
            for (std::size_t l = 0; l < r.len; ++l) py[off + l * st] = px[off + l * st] - lse;
        });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const axis::Split r = axis::split(name, x.shape(), axis);
        const T* py = c.output().data();
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (x.size() == 0) return;
            axis::for_slices(r, [&](std::size_t off, std::size_t st) {
                T total = 0;
                for (std::size_t l = 0; l < r.len; ++l) total += g[off + l * st];
                for (std::size_t l = 0; l < r.len; ++l) {
                    const std::size_t k = off + l * st;
                    const T v = g[k] - std::exp(py[k]) * total;
                    dst[k] = add ? dst[k] + v : v;
                }
            });
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        v.add_grad(0, g - exp(v.output()) * sum(g, {axis}, true));
    }
};

}  // namespace

template <class T> Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis)
{
    axis::split(LogSoftmax::name, input_shape(TAPEGRAD_OP_NAME, x), axis);  // checks the axis
    return record(LogSoftmax{axis}, x);
}

template Var<float> log_softmax<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> log_softmax<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -3.0, 3.0); };
    auto ref = [](const xt::xarray<double>& x, std::size_t a) {
        // The sum is evaluated first: xtensor 0.24 mis-broadcasts a lazy keep_dims sum
        // nested in a further expression.
        const xt::xarray<double> total = xt::sum(xt::exp(x), {a}, xt::keep_dims);
        return xt::xarray<double>(x - xt::log(total));
    };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a, std::size_t r) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [a](const auto& v) { return tg::log_softmax(v[0], a); },
                          [ref, r](const auto& x) { return ref(x[0], r); })
                          .with_torch("torch.log_softmax(x[0], dim=" + std::to_string(a) + ")"));
    };
    sample("(3,4) axis -1", {3, 4}, -1, 1);
    sample("(3,4) axis 0", {3, 4}, 0, 0);
    sample("(2,3,4) axis 1", {2, 3, 4}, 1, 1);
    sample("(5,) axis 0", {5}, 0, 0);
    sample("(3,1) axis 1", {3, 1}, 1, 1);
    out.push_back(tg::make_sample(
                      "transposed (4,3) axis 1", {u({4, 3})},
                      [](const auto& v) { return tg::log_softmax(tg::transpose(v[0]), 1); },
                      [ref](const auto& x) { return ref(xt::transpose(x[0]), 1); })
                      .with_torch("torch.log_softmax(x[0].T, dim=1)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::log_softmax(x, axis); });
}
