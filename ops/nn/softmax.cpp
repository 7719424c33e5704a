// ops/nn/softmax.cpp — y = exp(x) / sum(exp(x)) along an axis, computed as
//   exp(x - logsumexp(x)) so that no exponent overflows (logits of +-1000 are fine); along
//   the last axis, vectorised, as exp(x - max) / sum(exp(x - max)), the same safeguard.
//   vjp: grad_x = y * (grad_out - sum(grad_out * y))   (sum along the same axis, kept)

#include <cmath>

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// exp(x) / sum(exp(x)) along an axis, computed stably (max subtracted).
template <class T> Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis);
//! end

namespace {

struct Softmax {
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
            if (st == 1 && contiguous_row(r.len, px + off, py + off)) return;
            const T lse = axis::slice_logsumexp(r.len, px + off, st);
            for (std::size_t l = 0; l < r.len; ++l) py[off + l * st] = std::exp(px[off + l * st] - lse);
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
                if (st == 1) {  // the last axis: vectorised
                    const T dot = row_dot(r.len, g + off, py + off);
                    const kernel::Bcast<T> d{dot};
                    auto rule = [](auto gv, auto yv, auto dv) { return yv * (gv - dv); };
                    if (add) {
                        kernel::map<true>(r.len, dst + off, rule, g + off, py + off, d);
                    } else {
                        kernel::map<false>(r.len, dst + off, rule, g + off, py + off, d);
                    }
                    return;
                }
                T dot = 0;
                for (std::size_t l = 0; l < r.len; ++l) dot += g[off + l * st] * py[off + l * st];
                for (std::size_t l = 0; l < r.len; ++l) {
                    const std::size_t k = off + l * st;
                    const T v = py[k] * (g[k] - dot);
                    dst[k] = add ? dst[k] + v : v;
                }
            });
        });
    }
    // A contiguous slice (the last axis), vectorised: the maximum m, the exponentials of x - m
    // with their sum, then the scaling. Returns false, leaving the slice to the plain path,
    // for a slice shorter than a SIMD batch or whose maximum is not finite (NaN, or
    // infinities, which the plain path's log-sum-exp handles as it always has).
    template <class T> static bool contiguous_row(std::size_t n, const T* x, T* y)
    {
        using B = kernel::batch<T>;
        constexpr std::size_t w = B::size;
        if (n < w) return false;
        B vm = B::load_unaligned(x);
        std::size_t j = w;
        for (; j + w <= n; j += w) vm = xsimd::max(vm, B::load_unaligned(x + j));
        alignas(64) T lanes[w];
        vm.store_aligned(lanes);
        T m = lanes[0];
        for (std::size_t i = 1; i < w; ++i) m = lanes[i] > m ? lanes[i] : m;
        for (; j < n; ++j) m = x[j] > m ? x[j] : m;
        if (!std::isfinite(m)) return false;
        const B bm(m);
        B vt(T(0));
        for (j = 0; j + w <= n; j += w) {
            const B e = fn::exp(B::load_unaligned(x + j) - bm);
            e.store_unaligned(y + j);
            vt += e;
        }
        T total = xsimd::hadd(vt);
        for (; j < n; ++j) {
            y[j] = std::exp(x[j] - m);
            total += y[j];
        }
        const kernel::Bcast<T> inv{T(1) / total};
        kernel::map<false>(
            n, y, [](auto a, auto f) { return a * f; }, static_cast<const T*>(y), inv);
        return true;
    }

    // sum(a * b) over n contiguous values.
    template <class T> static T row_dot(std::size_t n, const T* a, const T* b)
    {
        using B = kernel::batch<T>;
        constexpr std::size_t w = B::size;
        std::size_t j = 0;
        T total = 0;
        if (n >= w) {
            B acc(T(0));
            for (; j + w <= n; j += w) acc += B::load_unaligned(a + j) * B::load_unaligned(b + j);
            total = xsimd::hadd(acc);
        }
        for (; j < n; ++j) total += a[j] * b[j];
        return total;
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        const Var<T> y = v.output();
        v.add_grad(0, y * (g - sum(g * y, {axis}, true)));
    }
};

}  // namespace

template <class T> Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis)
{
    axis::split(Softmax::name, input_shape(TAPEGRAD_OP_NAME, x), axis);  // checks the axis
    return record(Softmax{axis}, x);
}

template Var<float> softmax<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> softmax<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -3.0, 3.0); };
    auto ref = [](const xt::xarray<double>& x, std::size_t a) {
        const xt::xarray<double> e = xt::exp(x);
        const xt::xarray<double> total = xt::sum(e, {a}, xt::keep_dims);  // evaluated first (see log_softmax)
        return xt::xarray<double>(e / total);
    };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a, std::size_t r) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [a](const auto& v) { return tg::softmax(v[0], a); },
                          [ref, r](const auto& x) { return ref(x[0], r); })
                          .with_torch("torch.softmax(x[0], dim=" + std::to_string(a) + ")"));
    };
    sample("(3,4) axis -1", {3, 4}, -1, 1);
    sample("(3,4) axis 0", {3, 4}, 0, 0);
    sample("(2,3,4) axis 1", {2, 3, 4}, 1, 1);
    sample("(5,) axis 0", {5}, 0, 0);
    sample("(3,1) axis 1", {3, 1}, 1, 1);
    out.push_back(tg::make_sample(
                      "transposed (4,3) axis 1", {u({4, 3})},
                      [](const auto& v) { return tg::softmax(tg::transpose(v[0]), 1); },
                      [ref](const auto& x) { return ref(xt::transpose(x[0]), 1); })
                      .with_torch("torch.softmax(x[0].T, dim=1)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::softmax(x, axis); });
}
