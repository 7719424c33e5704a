// ops/shape/scatter_add.cpp — y = x, then y[i with index[i] along axis] += src[i]   (torch.scatter_add)
//   vjp: grad_x = grad_out,  grad_src = gather(grad_out, axis, index)

#include "gather_scatter.hpp"

namespace tg {

//! public
/// x with src[i] added at i's coordinates with index[i] along axis (torch.scatter_add); src has index's shape.
template <class T>
Var<T> scatter_add(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index, const Var<T>& src);
//! end

namespace {

struct ScatterAdd {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis;
    xt::xarray<std::int64_t> index;  // owned: the backward and the rule read it

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* src = c.input(1).data();
        auto& y = c.output(x.shape());
        std::copy(x.begin(), x.end(), y.begin());
        gather_scatter::for_each(x.shape(), axis, index,
                                 [&](std::size_t i, std::size_t at) { y.data()[at] += src[i]; });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.grad_out();
        c.add_grad(0, g);
        c.add_grad(1, index.shape(), [&](T* dst, bool add) {
            gather_scatter::for_each(g.shape(), axis, index, [&](std::size_t i, std::size_t at) {
                dst[i] = add ? dst[i] + g.data()[at] : g.data()[at];
            });
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        v.add_grad(0, v.grad_out());
        if (v.needs_grad(1)) v.add_grad(1, gather(v.grad_out(), static_cast<std::ptrdiff_t>(axis), index));
    }
};

}  // namespace

template <class T>
Var<T> scatter_add(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index, const Var<T>& src)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const auto& ss = input_shape(TAPEGRAD_OP_NAME, src);
    const std::size_t a = axis::resolve(ScatterAdd::name, s, axis);
    gather_scatter::check(ScatterAdd::name, s, a, axis, index);
    if (!detail::shapes_equal(ss, index.shape())) {
        throw Error(std::string(ScatterAdd::name) + ": src has shape " + format_shape(ss) + " but index has " +
                    format_shape(index.shape()) + "; they must be equal");
    }
    return record(ScatterAdd{a, index}, x, src);
}

template Var<float> scatter_add<float>(const Var<float>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&,
                                       const Var<float>&);
template Var<double> scatter_add<double>(const Var<double>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&,
                                         const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a,
                      xt::xarray<std::int64_t> index) {
        const auto r = static_cast<std::size_t>(a < 0 ? a + static_cast<std::ptrdiff_t>(shape.size()) : a);
        const std::vector<std::size_t> src_shape(index.shape().begin(), index.shape().end());
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape), u(src_shape)},
                          [a, index](const auto& v) { return tg::scatter_add(v[0], a, index, v[1]); },
                          [r, index](const auto& x) {
                              xt::xarray<double> y = x[0];
                              for (std::size_t i = 0; i < index.size(); ++i) {
                                  auto at = xt::unravel_index(i, index.shape());
                                  at[r] = static_cast<std::size_t>(index.data()[i]);
                                  y.element(at.begin(), at.end()) += x[1].data()[i];
                              }
                              return y;
                          })
                          .with_torch("torch.scatter_add(x[0], " + std::to_string(a) + ", " +
                                      tg::samples::torch_literal(index) + ", x[1])"));
    };
    sample("(3,4) axis 1", {3, 4}, 1, xt::xarray<std::int64_t>{{0, 3}, {2, 2}, {1, 0}});
    sample("(3,4) axis 0", {3, 4}, 0,
           xt::xarray<std::int64_t>(xt::reshape_view(xt::xarray<std::int64_t>{2, 0, 1, 1}, {1, 4})));
    sample("(2,3,2) axis -1", {2, 3, 2}, -1,
           xt::xarray<std::int64_t>(xt::reshape_view(xt::xarray<std::int64_t>{1, 0, 1, 0, 0, 1}, {2, 3, 1})));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Index = xt::xarray<std::int64_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    auto errors = tg::samples::axis_errors([](const auto& v, std::ptrdiff_t axis) {
        using V = std::decay_t<decltype(v)>;
        return tg::scatter_add(v, axis, Index(xt::zeros<std::int64_t>({1, 1})), V(v));
    });
    errors.pop_back();  // a rank-0 x: its index would need rank 0 as well
    errors.push_back(tg::make_error_input(
        "index 3 along axis 1 of (2,3)", {x, xt::ones<double>({2, 2})},
        [](const auto& v) {
            return tg::scatter_add(v[0], 1, Index{{0, 3}, {1, 1}}, v[1]);
        },
        "index 3 at flat position 1 is out of range for axis 1 of shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "index -1", {x, xt::ones<double>({2, 2})},
        [](const auto& v) {
            return tg::scatter_add(v[0], 1, Index{{0, -1}, {1, 1}}, v[1]);
        },
        "index -1 at flat position 1 is out of range for axis 1 of shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "index of rank 1 for x of rank 2", {x, xt::ones<double>({2})},
        [](const auto& v) {
            return tg::scatter_add(v[0], 1, Index{0, 1}, v[1]);
        },
        "index has shape [2] but x has [2, 3]; it needs x's rank and no dim larger than x's except along axis 1"));
    errors.push_back(tg::make_error_input(
        "index (3,1) larger than x along axis 0", {x, xt::ones<double>({3, 1})},
        [](const auto& v) {
            return tg::scatter_add(v[0], 1, Index(xt::reshape_view(xt::arange<std::int64_t>(3), {3, 1})), v[1]);
        },
        "index has shape [3, 1] but x has [2, 3]"));
    errors.push_back(tg::make_error_input(
        "src (1,3) for index (1,2)", {x, xt::ones<double>({1, 3})},
        [](const auto& v) {
            return tg::scatter_add(v[0], 1, Index{{0, 2}}, v[1]);
        },
        "src has shape [1, 3] but index has [1, 2]; they must be equal"));
    return errors;
}
