// ops/shape/index_select.cpp — y = x with the entries index[0], index[1], ... of `axis`, in that order
//   y[..., j, ...] = x[..., index[j], ...]
//   vjp: grad_x = index_add(zeros like x, axis, index, grad_out)   (repeated indices add up)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// The entries index[0], index[1], ... of x along axis (torch.index_select); index is 1-D.
template <class T> Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index);
//! end

namespace {

struct IndexSelect {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis;
    xt::xarray<std::int64_t> index;  // owned: the backward and the rule read it

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto shape = x.shape();
        shape[axis] = index.size();
        T* y = c.output(shape).data();
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t k = index.size();
        for (std::size_t o = 0; o < r.outer; ++o) {
            for (std::size_t j = 0; j < k; ++j) {
                const T* from = x.data() + (o * r.len + static_cast<std::size_t>(index(j))) * r.inner;
                std::copy(from, from + r.inner, y + (o * k + j) * r.inner);
            }
        }
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* g = c.grad_out().data();
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t k = index.size();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            // Scatter into zeros first, then add once: with repeated indices, adding the same
            // gradient twice still gives exactly twice.
            std::vector<T> scattered(x.size(), T(0));
            for (std::size_t o = 0; o < r.outer; ++o) {
                for (std::size_t j = 0; j < k; ++j) {
                    T* to = scattered.data() + (o * r.len + static_cast<std::size_t>(index(j))) * r.inner;
                    kernel::add_or_assign(to, g + (o * k + j) * r.inner, r.inner, true);
                }
            }
            kernel::add_or_assign(dst, static_cast<const T*>(scattered.data()), x.size(), add);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T> zeros = constant(xt::xarray<T>(xt::zeros<T>(v.input_shape(0))));
        v.add_grad(0, index_add(zeros, static_cast<std::ptrdiff_t>(axis), index, v.grad_out()));
    }
};

}  // namespace

template <class T> Var<T> index_select(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(IndexSelect::name, s, axis);
    if (index.dimension() != 1) {
        throw Error(std::string(IndexSelect::name) + ": index must be 1-D, got shape " + format_shape(index.shape()));
    }
    for (std::size_t j = 0; j < index.size(); ++j) {
        if (index(j) < 0 || static_cast<std::size_t>(index(j)) >= s[a]) {
            throw Error(std::string(IndexSelect::name) + ": index " + std::to_string(index(j)) + " at position " +
                        std::to_string(j) + " is out of range for axis " + std::to_string(axis) + " of shape " +
                        format_shape(s));
        }
    }
    return record(IndexSelect{a, index}, x);
}

template Var<float> index_select<float>(const Var<float>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&);
template Var<double> index_select<double>(const Var<double>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a,
                      std::vector<std::int64_t> idx) {
        const xt::xarray<std::int64_t> index = xt::adapt(idx, {idx.size()});
        out.push_back(
            tg::make_sample(
                std::move(label), {u(shape)}, [a, index](const auto& v) { return tg::index_select(v[0], a, index); },
                [a, idx](const auto& x) {
                    const auto r =
                        static_cast<std::size_t>(a < 0 ? a + static_cast<std::ptrdiff_t>(x[0].dimension()) : a);
                    auto out_shape = x[0].shape();
                    out_shape[r] = idx.size();
                    xt::xarray<double> y = xt::zeros<double>(out_shape);
                    for (std::size_t j = 0; j < idx.size(); ++j) {
                        xt::xstrided_slice_vector to(y.dimension(), xt::all()), from(y.dimension(), xt::all());
                        to[r] = j;
                        from[r] = static_cast<std::size_t>(idx[j]);
                        xt::strided_view(y, to) = xt::strided_view(x[0], from);
                    }
                    return y;
                })
                .with_torch("torch.index_select(x[0], " + std::to_string(a) + ", " + tg::samples::torch_literal(index) +
                            ")"));
    };
    sample("(4,3) axis 0 [2,0,2]", {4, 3}, 0, {2, 0, 2});
    sample("(3,5) axis 1 [4,1]", {3, 5}, 1, {4, 1});
    sample("(3,5) axis -1 []", {3, 5}, -1, {});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Index = xt::xarray<std::int64_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    auto errors = tg::samples::axis_errors(
        [](const auto& v, std::ptrdiff_t axis) { return tg::index_select(v, axis, Index{0}); });
    errors.push_back(tg::make_error_input(
        "index 2 along axis 0 of (2,3)", {x},
        [](const auto& v) {
            return tg::index_select(v[0], 0, Index{1, 2});
        },
        "index 2 at position 1 is out of range for axis 0 of shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "index of int64's minimum", {x},
        [](const auto& v) { return tg::index_select(v[0], 0, Index{std::numeric_limits<std::int64_t>::min()}); },
        "index -9223372036854775808 at position 0 is out of range"));
    errors.push_back(tg::make_error_input(
        "2-D index", {x},
        [](const auto& v) {
            return tg::index_select(v[0], 1, Index{{0, 1}});
        },
        "index must be 1-D, got shape [1, 2]"));
    return errors;
}
