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

// The loops of a contiguous row (the last axis), as the wide SIMD copy (kit/simd.hpp)
// enrolls them: forward returns false for a row the plain path must take.
template <class T> struct SoftmaxRows {
    bool (*forward)(std::size_t n, const T* x, T* y) noexcept;
    void (*backward)(bool add, std::size_t n, T* dst, const T* g, const T* y) noexcept;
};

struct Softmax {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::ptrdiff_t axis;

    // The wide copy's row loops for rows of n elements, or null. Rows shorter than the wide
    // copy's vector keep the baseline's loops, which vectorise them.
    template <class T> static const SoftmaxRows<T>* wide(std::size_t n) noexcept
    {
#if defined(TAPEGRAD_SIMD_VARIANT)
        (void)n;
        return nullptr;
#else
        if (n < simd::min_elements) return nullptr;
        static const void* const fns = simd::find(name, "rows", simd::dtype<T>, 3);
        if (fns == nullptr || !simd::wide_on.load(std::memory_order_relaxed)) return nullptr;
        return static_cast<const SoftmaxRows<T>*>(fns);
#endif
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const axis::Split r = axis::split(name, x.shape(), axis);
        const T* px = x.data();
        T* py = c.output(x.shape()).data();
        if (x.size() == 0) return;  // nothing to compute, and no pointer to offset into
        const SoftmaxRows<T>* w = wide<T>(r.len);
        axis::for_slices(r, [&](std::size_t off, std::size_t st) {
            if (st == 1 &&
                (w != nullptr ? w->forward(r.len, px + off, py + off) : contiguous_row(r.len, px + off, py + off))) {
                return;
            }
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
        const SoftmaxRows<T>* w = wide<T>(r.len);
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (x.size() == 0) return;
            axis::for_slices(r, [&](std::size_t off, std::size_t st) {
                if (st == 1) {  // the last axis: vectorised
                    if (w != nullptr) {
                        w->backward(add, r.len, dst + off, g + off, py + off);
                    } else {
                        backward_row(add, r.len, dst + off, g + off, py + off);
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

    // dst (=|+=) y * (g - sum(g * y)) over a contiguous row.
    template <class T> static void backward_row(bool add, std::size_t n, T* dst, const T* g, const T* y) noexcept
    {
        const kernel::Bcast<T> d{row_dot(n, g, y)};
        auto rule = [](auto gv, auto yv, auto dv) { return yv * (gv - dv); };
        if (add) {
            kernel::map<true>(n, dst, rule, g, y, d);
        } else {
            kernel::map<false>(n, dst, rule, g, y, d);
        }
    }
    template <class T> static bool forward_row(std::size_t n, const T* x, T* y) noexcept
    {
        return contiguous_row(n, x, y);
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

#if defined(TAPEGRAD_SIMD_VARIANT)
// The wide copy: the row loops, enrolled when the program starts.
template <class T> constexpr SoftmaxRows<T> softmax_rows{&Softmax::forward_row<T>, &Softmax::backward_row<T>};
[[maybe_unused]] const bool softmax_rows_enrolled = [] {
    tapegrad_simd_enroll(Softmax::name, "rows", simd::dtype<float>, 3, &softmax_rows<float>);
    tapegrad_simd_enroll(Softmax::name, "rows", simd::dtype<double>, 3, &softmax_rows<double>);
    return true;
}();
#endif

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
