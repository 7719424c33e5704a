// ops/shape/pad.cpp — y = x with `before` zeros ahead of it and `after` zeros behind it along `axis`
//   vjp: grad_x = narrow(grad_out, axis, before, len)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x with `before` zeros ahead and `after` zeros behind along axis (torch.nn.functional.pad of one axis).
template <class T> Var<T> pad(const Var<T>& x, std::ptrdiff_t axis, std::size_t before, std::size_t after);
//! end

namespace {

struct Pad {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis, before, after;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto shape = x.shape();
        const std::size_t len = shape[axis], total = len + before + after;
        shape[axis] = total;
        auto& y = c.output(shape);
        std::fill(y.begin(), y.end(), T(0));
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t block = len * r.inner;
        for (std::size_t o = 0; o < r.outer; ++o)
            std::copy(x.data() + o * block, x.data() + (o + 1) * block, y.data() + (o * total + before) * r.inner);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* g = c.grad_out().data();
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t total = r.len + before + after, block = r.len * r.inner;
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            for (std::size_t o = 0; o < r.outer; ++o)
                kernel::add_or_assign(dst + o * block, g + (o * total + before) * r.inner, block, add);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        v.add_grad(0, narrow(v.grad_out(), static_cast<std::ptrdiff_t>(axis), before, v.input_shape(0)[axis]));
    }
};

}  // namespace

template <class T> Var<T> pad(const Var<T>& x, std::ptrdiff_t axis, std::size_t before, std::size_t after)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(Pad::name, s, axis);
    std::vector<std::size_t> padded(s.begin(), s.end());
    if (__builtin_add_overflow(padded[a], before, &padded[a]) || __builtin_add_overflow(padded[a], after, &padded[a])) {
        throw Error(std::string(Pad::name) + ": padding " + std::to_string(before) + " before and " +
                    std::to_string(after) + " after axis " + std::to_string(axis) + " of shape " + format_shape(s) +
                    " overflows its length");
    }
    checked_size(TAPEGRAD_OP_NAME, padded);
    return record(Pad{a, before, after}, x);
}

template Var<float> pad<float>(const Var<float>&, std::ptrdiff_t, std::size_t, std::size_t);
template Var<double> pad<double>(const Var<double>&, std::ptrdiff_t, std::size_t, std::size_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a, std::size_t before,
                      std::size_t after) {
        const std::size_t rank = shape.size();
        const std::size_t r = static_cast<std::size_t>(a < 0 ? a + static_cast<std::ptrdiff_t>(rank) : a);
        // torch's pad lists (before, after) pairs from the last axis backwards.
        std::string pads;
        for (std::size_t j = rank; j-- > r;) {
            pads += (pads.empty() ? "" : ", ") +
                    std::string(j == r ? std::to_string(before) + ", " + std::to_string(after) : "0, 0");
        }
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [a, before, after](const auto& v) { return tg::pad(v[0], a, before, after); },
                          [r, before, after](const auto& x) {
                              auto padded = x[0].shape();
                              padded[r] += before + after;
                              xt::xarray<double> y = xt::zeros<double>(padded);
                              xt::xstrided_slice_vector sv(x[0].dimension(), xt::all());
                              sv[r] = xt::range(before, before + x[0].shape()[r]);
                              xt::strided_view(y, sv) = x[0];
                              return y;
                          })
                          .with_torch("torch.nn.functional.pad(x[0], (" + pads + "))"));
    };
    sample("(3,2) axis 0 1+2", {3, 2}, 0, 1, 2);
    sample("(3,2) axis 1 0+3", {3, 2}, 1, 0, 3);
    sample("(2,3,4) axis -2 2+0", {2, 3, 4}, -2, 2, 0);
    sample("(4,) axis 0 1+1", {4}, 0, 1, 1);
    sample("(0,2) axis 0 1+1", {0, 2}, 0, 1, 1);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::pad(x, axis, 1, 1); });
    errors.push_back(tg::make_error_input(
        "padding that overflows", {xt::ones<double>({2, 3})},
        [](const auto& v) { return tg::pad(v[0], 1, std::numeric_limits<std::size_t>::max(), 1); },
        "padding 18446744073709551615 before and 1 after axis 1 of shape [2, 3] overflows its length"));
    errors.push_back(tg::make_error_input(
        "padding too large to index", {xt::ones<double>({2, 3})},
        [](const auto& v) { return tg::pad(v[0], 1, std::size_t(1) << 62, 0); }, "has too many elements"));
    return errors;
}
