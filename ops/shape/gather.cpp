// ops/shape/gather.cpp — y[i] = x[i with index[i] along axis]   (torch.gather; y has index's shape)
//   vjp: grad_x = scatter_add(zeros like x, axis, index, grad_out)   (repeated picks add up)

#include "gather_scatter.hpp"

namespace tg {

//! public
/// y[i] = x[i's coordinates with index[i] along axis] (torch.gather); y has index's shape.
template <class T> Var<T> gather(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index);
//! end

namespace {

struct Gather {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis;
    xt::xarray<std::int64_t> index;  // owned: the backward and the rule read it

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        T* y = c.output(index.shape()).data();
        gather_scatter::for_each(x.shape(), axis, index, [&](std::size_t i, std::size_t at) { y[i] = x.data()[at]; });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            std::vector<T> scattered(x.size(), T(0));  // then added once, see index_select
            gather_scatter::for_each(x.shape(), axis, index,
                                     [&](std::size_t i, std::size_t at) { scattered[at] += g[i]; });
            kernel::add_or_assign(dst, static_cast<const T*>(scattered.data()), x.size(), add);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T> zeros = constant(xt::xarray<T>(xt::zeros<T>(v.input_shape(0))));
        v.add_grad(0, scatter_add(zeros, static_cast<std::ptrdiff_t>(axis), index, v.grad_out()));
    }
};

}  // namespace

template <class T> Var<T> gather(const Var<T>& x, std::ptrdiff_t axis, const xt::xarray<std::int64_t>& index)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    const std::size_t a = axis::resolve(Gather::name, s, axis);
    gather_scatter::check(Gather::name, s, a, axis, index);
    return record(Gather{a, index}, x);
}

template Var<float> gather<float>(const Var<float>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&);
template Var<double> gather<double>(const Var<double>&, std::ptrdiff_t, const xt::xarray<std::int64_t>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::ptrdiff_t a,
                      xt::xarray<std::int64_t> index) {
        const auto r = static_cast<std::size_t>(a < 0 ? a + static_cast<std::ptrdiff_t>(shape.size()) : a);
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)},
                          [a, index](const auto& v) { return tg::gather(v[0], a, index); },
                          [r, index](const auto& x) {
                              xt::xarray<double> y = xt::zeros<double>(index.shape());
                              for (std::size_t i = 0; i < index.size(); ++i) {
                                  auto at = xt::unravel_index(i, index.shape());
                                  at[r] = static_cast<std::size_t>(index.data()[i]);
                                  y.data()[i] = x[0].element(at.begin(), at.end());
                              }
                              return y;
                          })
                          .with_torch("torch.gather(x[0], " + std::to_string(a) + ", " +
                                      tg::samples::torch_literal(index) + ")"));
    };
    sample("(3,4) axis 1", {3, 4}, 1, xt::xarray<std::int64_t>{{0, 3}, {2, 2}, {1, 0}});
    sample("(3,4) axis 0", {3, 4}, 0,
           xt::xarray<std::int64_t>(xt::reshape_view(xt::xarray<std::int64_t>{2, 0, 1, 1}, {1, 4})));
    sample("(2,3,2) axis -1", {2, 3, 2}, -1,
           xt::xarray<std::int64_t>(xt::reshape_view(xt::xarray<std::int64_t>{1, 0, 1, 0, 0, 1}, {2, 3, 1})));
    sample("(5,) axis 0", {5}, 0, xt::xarray<std::int64_t>{4, 4, 0});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Index = xt::xarray<std::int64_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    auto errors = tg::samples::axis_errors([](const auto& v, std::ptrdiff_t axis) {
        return tg::gather(v, axis, Index(xt::zeros<std::int64_t>({1, 1})));
    });
    errors.pop_back();  // a rank-0 x: its index would need rank 0 as well
    errors.push_back(tg::make_error_input(
        "index 3 along axis 1 of (2,3)", {x},
        [](const auto& v) {
            return tg::gather(v[0], 1, Index{{0, 3}, {1, 1}});
        },
        "index 3 at flat position 1 is out of range for axis 1 of shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "index -1", {x},
        [](const auto& v) {
            return tg::gather(v[0], 1, Index{{0, -1}, {1, 1}});
        },
        "index -1 at flat position 1 is out of range for axis 1 of shape [2, 3]"));
    errors.push_back(tg::make_error_input(
        "index of rank 1 for x of rank 2", {x},
        [](const auto& v) {
            return tg::gather(v[0], 1, Index{0, 1});
        },
        "index has shape [2] but x has [2, 3]; it needs x's rank and no dim larger than x's except along axis 1"));
    errors.push_back(tg::make_error_input(
        "index (3,1) larger than x along axis 0", {x},
        [](const auto& v) {
            return tg::gather(v[0], 1, Index(xt::reshape_view(xt::arange<std::int64_t>(3), {3, 1})));
        },
        "index has shape [3, 1] but x has [2, 3]"));
    return errors;
}
