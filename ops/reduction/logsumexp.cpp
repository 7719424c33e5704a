// ops/reduction/logsumexp.cpp — y = log(sum(exp(x))) along one axis (removed unless keepdim),
//   computed as m + log(sum(exp(x - m))) with m the slice's maximum, so that no exponent
//   overflows or underflows whole (logits of +-1000 are fine). As torch.logsumexp: an
//   empty slice gives -inf (the log of an empty sum), a slice holding +inf gives +inf, one
//   of only -inf gives -inf, and a NaN gives NaN.
//   x [..., n, ...] -> y [..., ...] (or [..., 1, ...] with keepdim)
//   vjp: grad_x = grad_out * exp(x - y), i.e. grad_out * softmax(x) along the axis
//        (grad_out and y read in the keepdim shape); written with the saved output as
//        PyTorch's formula is, so that inf inputs give PyTorch's gradients (NaN where
//        x = y = +inf or all of the slice is -inf, 0 beside an +inf)

#include <cmath>
#include <limits>

#include "along_axis.hpp"

namespace tg {

//! public
/// log(sum(exp(x))) along an axis, computed stably (max subtracted); -inf for an empty axis (torch.logsumexp).
/// The axis is removed unless keepdim; negative counts from the end; a rank-0 x takes axis 0 or -1.
template <class T> Var<T> logsumexp(const Var<T>& x, std::ptrdiff_t axis, bool keepdim = false);
//! end

namespace {

struct LogSumExp {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::ptrdiff_t axis;
    bool keepdim;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const reduction::AlongAxis r = reduction::along(name, x.shape(), axis, keepdim);
        T* y = c.output(r.out).data();
        const T* px = x.data();
        std::size_t o = 0;
        axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
            y[o++] = r.split.len == 0 ? -std::numeric_limits<T>::infinity()
                                      : axis::slice_logsumexp(r.split.len, px + off, st);
        });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const reduction::AlongAxis r = reduction::along(name, x.shape(), axis, keepdim);
        const T* px = x.data();
        const T* y = c.output().data();
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            std::size_t o = 0;
            axis::for_slices(r.split, [&](std::size_t off, std::size_t st) {
                for (std::size_t l = 0; l < r.split.len; ++l) {
                    const std::size_t k = off + l * st;
                    const T v = g[o] * std::exp(px[k] - y[o]);
                    dst[k] = add ? dst[k] + v : v;
                }
                ++o;
            });
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const reduction::AlongAxis r = reduction::along(name, v.input_shape(0), axis, keepdim);
        const Var<T> y = reduction::kept(v.output(), r.keep);
        v.add_grad(0, reduction::kept(v.grad_out(), r.keep) * exp(v.input(0) - y));
    }
};

}  // namespace

template <class T> Var<T> logsumexp(const Var<T>& x, std::ptrdiff_t axis, bool keepdim)
{
    reduction::along(LogSumExp::name, input_shape(TAPEGRAD_OP_NAME, x), axis, keepdim);  // checks the axis
    return record(LogSumExp{axis, keepdim}, x);
}

template Var<float> logsumexp<float>(const Var<float>&, std::ptrdiff_t, bool);
template Var<double> logsumexp<double>(const Var<double>&, std::ptrdiff_t, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto ref = [](const xt::xarray<double>& x, std::size_t a) {
        // The textbook formula: fine for the samples' range, and independent of the kernel.
        return tg::reduction::per_slice(x, a, [](const std::vector<double>& s) {
            double total = 0;
            for (double v : s) total += std::exp(v);
            return std::log(total);
        });
    };
    auto torch = [](const std::string& in, std::ptrdiff_t a, bool k) {
        return "torch.logsumexp(" + in + ", dim=" + std::to_string(a) + tg::reduction::torch_keepdim(k) + ")";
    };
    auto f = [](const auto& x, std::ptrdiff_t a, bool k) { return tg::logsumexp(x, a, k); };
    auto out = tg::reduction::axis_samples(
        tg::reduction::axis_cases(true, true), [&](const auto& s) { return tg::sample_uniform(rng, s, -3.0, 3.0); }, f,
        ref, torch);
    // Beyond float's exp range both ways (exp(100) overflows a float, exp(-100) is below its
    // smallest normal), which the float32 pass compares with float64; the reference
    // computes around the known offset. Offsets far larger (+-1000, beyond double's range)
    // have a test of their own: a central difference at 1000 loses more than gradcheck's
    // tight tolerance allows.
    for (const double shift : {100.0, -100.0}) {
        auto shifted = [ref, shift](const xt::xarray<double>& x, std::size_t a) {
            return xt::xarray<double>(ref(xt::xarray<double>(x - shift), a) + shift);
        };
        auto far = tg::reduction::axis_samples(
            {{"(3,4) axis 1 around " + tg::format_number(shift), {3, 4}, 1, false, false}},
            [&](const auto& s) { return xt::xarray<double>(tg::sample_uniform(rng, s, -3.0, 3.0) + shift); }, f,
            shifted, torch);
        out.insert(out.end(), far.begin(), far.end());
    }
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::logsumexp(x, axis); });
}
