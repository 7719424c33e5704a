// ops/shape/narrow.cpp — y = x[..., start : start + length, ...] along `axis`
//   vjp: grad_x = pad(grad_out, axis, start, len - start - length)   (zeros elsewhere)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// The slice start .. start + length of x along axis (torch.narrow), copied.
template <class T> Var<T> narrow(const Var<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length);
//! end

namespace {

struct Narrow {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis, start, length;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto shape = x.shape();
        shape[axis] = length;
        T* y = c.output(shape).data();
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t block = length * r.inner;
        for (std::size_t o = 0; o < r.outer; ++o) {
            const T* from = x.data() + (o * r.len + start) * r.inner;
            std::copy(from, from + block, y + o * block);
        }
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* g = c.grad_out().data();
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t block = length * r.inner;
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (!add) std::fill(dst, dst + x.size(), T(0));
            for (std::size_t o = 0; o < r.outer; ++o)
                kernel::add_or_assign(dst + (o * r.len + start) * r.inner, g + o * block, block, add);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const std::size_t len = v.input_shape(0)[axis];
        v.add_grad(0, pad(v.grad_out(), static_cast<std::ptrdiff_t>(axis), start, len - start - length));
    }
};

}  // namespace

template <class T> Var<T> narrow(const Var<T>& x, std::ptrdiff_t axis, std::size_t start, std::size_t length)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(Narrow::name, s, axis);
    if (start > s[a] || length > s[a] - start) {
        throw Error(std::string(Narrow::name) + ": start " + std::to_string(start) + " and length " +
                    std::to_string(length) + " run past axis " + std::to_string(axis) + " of size " +
                    std::to_string(s[a]) + " (shape " + format_shape(s) + ")");
    }
    return record(Narrow{a, start, length}, x);
}

template Var<float> narrow<float>(const Var<float>&, std::ptrdiff_t, std::size_t, std::size_t);
template Var<double> narrow<double>(const Var<double>&, std::ptrdiff_t, std::size_t, std::size_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a, std::size_t start,
                      std::size_t length) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [a, start, length](const auto& v) { return tg::narrow(v[0], a, start, length); },
                          [a, start, length](const auto& x) {
                              xt::xstrided_slice_vector sv(x[0].dimension(), xt::all());
                              const std::size_t r = static_cast<std::size_t>(
                                  a < 0 ? a + static_cast<std::ptrdiff_t>(x[0].dimension()) : a);
                              sv[r] = xt::range(start, start + length);
                              return xt::xarray<double>(xt::strided_view(x[0], sv));
                          })
                          .with_torch("torch.narrow(x[0], " + std::to_string(a) + ", " + std::to_string(start) + ", " +
                                      std::to_string(length) + ")"));
    };
    sample("(5,3) axis 0 [1,4)", {5, 3}, 0, 1, 3);
    sample("(3,5) axis 1 [0,2)", {3, 5}, 1, 0, 2);
    sample("(2,4,3) axis -2 [3,4)", {2, 4, 3}, -2, 3, 1);
    sample("(4,) axis 0 whole", {4}, 0, 0, 4);
    sample("(4,2) axis 0 empty", {4, 2}, 0, 2, 0);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors =
        tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::narrow(x, axis, 0, 1); });
    const xt::xarray<double> x = xt::ones<double>({4});
    errors.push_back(tg::make_error_input(
        "start 3 length 2 of 4", {x}, [](const auto& v) { return tg::narrow(v[0], 0, 3, 2); },
        "start 3 and length 2 run past axis 0 of size 4 (shape [4])"));
    errors.push_back(tg::make_error_input(
        "start 5 of 4", {x}, [](const auto& v) { return tg::narrow(v[0], 0, 5, 0); },
        "start 5 and length 0 run past axis 0 of size 4"));
    errors.push_back(tg::make_error_input(
        "start at SIZE_MAX", {x},
        [](const auto& v) { return tg::narrow(v[0], 0, std::numeric_limits<std::size_t>::max(), 2); },
        "start 18446744073709551615 and length 2 run past axis 0"));
    return errors;
}
