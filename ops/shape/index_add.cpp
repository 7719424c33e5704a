// ops/shape/index_add.cpp — y = x, then y[..., index[j], ...] += source[..., j, ...] along `axis`
//   vjp: grad_x = grad_out,  grad_source = index_select(grad_out, axis, index)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x with source's entries added at the positions index[j] of axis (torch.index_add); index is 1-D.
template <class T>
Var<T> index_add(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index, const Var<T>& source);
//! end

namespace {

struct IndexAdd {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis;
    xt::xarray<std::int64_t> index;  // owned: the backward and the rule read it

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& src = c.input(1);
        auto& y = c.output(x.shape());
        std::copy(x.begin(), x.end(), y.begin());
        const axis::Split r = axis::split(name, x.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t k = index.size();
        for (std::size_t o = 0; o < r.outer; ++o) {
            for (std::size_t j = 0; j < k; ++j) {
                T* to = y.data() + (o * r.len + static_cast<std::size_t>(index(j))) * r.inner;
                kernel::add_or_assign(to, src.data() + (o * k + j) * r.inner, r.inner, true);
            }
        }
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.grad_out();
        c.add_grad(0, g);
        const axis::Split r = axis::split(name, g.shape(), static_cast<std::ptrdiff_t>(axis));
        const std::size_t k = index.size();
        c.add_grad(1, c.input(1).shape(), [&](T* dst, bool add) {
            for (std::size_t o = 0; o < r.outer; ++o) {
                for (std::size_t j = 0; j < k; ++j) {
                    const T* from = g.data() + (o * r.len + static_cast<std::size_t>(index(j))) * r.inner;
                    kernel::add_or_assign(dst + (o * k + j) * r.inner, from, r.inner, add);
                }
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        v.add_grad(0, v.grad_out());
        if (v.needs_grad(1)) v.add_grad(1, index_select(v.grad_out(), static_cast<std::ptrdiff_t>(axis), index));
    }
};

}  // namespace

template <class T>
Var<T> index_add(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index, const Var<T>& source)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const auto& ss = input_shape(TAPEGRAD_OP_NAME, source);
    const std::size_t a = axis::resolve(IndexAdd::name, s, axis);
    if (index.dimension() != 1) {
        throw Error(std::string(IndexAdd::name) + ": index must be 1-D, got shape " + format_shape(index.shape()));
    }
    bool fits = ss.size() == s.size();
    for (std::size_t j = 0; fits && j < s.size(); ++j) fits = ss[j] == (j == a ? index.size() : s[j]);
    if (!fits) {
        throw Error(std::string(IndexAdd::name) + ": source has shape " + format_shape(ss) + " but x is " +
                    format_shape(s) + " with " + std::to_string(index.size()) + " indices along axis " +
                    std::to_string(axis));
    }
    for (std::size_t j = 0; j < index.size(); ++j) {
        if (index(j) < 0 || static_cast<std::size_t>(index(j)) >= s[a]) {
            throw Error(std::string(IndexAdd::name) + ": index " + std::to_string(index(j)) + " at position " +
                        std::to_string(j) + " is out of range for axis " + std::to_string(axis) + " of shape " +
                        format_shape(s));
        }
    }
    return record(IndexAdd{a, index}, x, source);
}

template Var<float> index_add<float>(const Var<float>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&,
                                     const Var<float>&);
template Var<double> index_add<double>(const Var<double>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&,
                                       const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a,
                      std::vector<std::int64_t> idx) {
        const xt::xarray<std::int64_t> index = xt::adapt(idx, {idx.size()});
        const auto r = static_cast<std::size_t>(a < 0 ? a + static_cast<std::ptrdiff_t>(shape.size()) : a);
        std::vector<std::size_t> src_shape = shape;
        src_shape[r] = idx.size();
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape), u(src_shape)},
                          [a, index](const auto& v) { return tg::index_add(v[0], a, index, v[1]); },
                          [r, idx](const auto& x) {
                              xt::xarray<double> y = x[0];
                              for (std::size_t j = 0; j < idx.size(); ++j) {
                                  xt::xstrided_slice_vector to(y.dimension(), xt::all()),
                                      from(y.dimension(), xt::all());
                                  to[r] = static_cast<std::size_t>(idx[j]);
                                  from[r] = j;
                                  xt::strided_view(y, to) += xt::strided_view(x[1], from);
                              }
                              return y;
                          })
                          .with_torch("torch.index_add(x[0], " + std::to_string(a) + ", " +
                                      tg::samples::torch_literal(index) + ", x[1])"));
    };
    sample("(4,3) axis 0 [2,0,2]", {4, 3}, 0, {2, 0, 2});
    sample("(3,5) axis 1 [4,1]", {3, 5}, 1, {4, 1});
    sample("(2,3,2) axis -2 [1]", {2, 3, 2}, -2, {1});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Index = xt::xarray<std::int64_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    auto errors = tg::samples::axis_errors(
        [](const auto& v, std::ptrdiff_t axis) { return tg::index_add(v, axis, Index{0}, v); });
    errors.push_back(tg::make_error_input(
        "index 5 along axis 0 of (2,3)", {x, xt::ones<double>({1, 3})},
        [](const auto& v) { return tg::index_add(v[0], 0, Index{5}, v[1]); },
        "index 5 at position 0 is out of range for axis 0 of shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "index -1", {x, xt::ones<double>({1, 3})},
        [](const auto& v) { return tg::index_add(v[0], 0, Index{-1}, v[1]); },
        "index -1 at position 0 is out of range"));
    errors.push_back(tg::make_error_input(
        "2-D index", {x, xt::ones<double>({1, 3})},
        [](const auto& v) {
            return tg::index_add(v[0], 0, Index(xt::zeros<std::int64_t>({1, 1})), v[1]);
        },
        "index must be 1-D, got shape [1, 1]"));
    errors.push_back(tg::make_error_input(
        "source (2,3) for 1 index", {x, x}, [](const auto& v) { return tg::index_add(v[0], 0, Index{1}, v[1]); },
        "source has shape [2, 3] but x is [2, 3] with 1 indices along axis 0"));
    errors.push_back(tg::make_error_input(
        "source (1,2) for (2,3)", {x, xt::ones<double>({1, 2})},
        [](const auto& v) { return tg::index_add(v[0], 0, Index{1}, v[1]); },
        "source has shape [1, 2] but x is [2, 3]"));
    return errors;
}
