// ops/sum.cpp — y = sum of x (all elements -> rank 0, or along one axis, which is removed)
//   backward: grad_x = grad_out broadcast back over the summed elements

#include "op_common.hpp"
#include "reduce.hpp"

namespace tg {
namespace {

struct SumAll {
    static constexpr const char* name = "sum";
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.out();
        if (y.dimension() != 0) y.resize(typename xt::xarray<T>::shape_type{});
        y.data()[0] = kernel::sum(x.size(), x.data()) * (T(1));
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        const auto& x = c.input(0);
        const T g = c.grad_out().data()[0] * (T(1));
        GradSlot<T> s = c.grad_slot(0);
        kernel::map_to(
            s.add, x.size(), s.data, [](auto v) { return v; }, kernel::Bcast<T>{g});
    }
};

struct SumAxis {
    static constexpr const char* name = "sum";
    std::ptrdiff_t axis;
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        const reduce::Around r = reduce::around(name, x.shape(), axis);
        auto& y = c.out();
        const auto shape = reduce::without(x.shape(), r.axis);
        if (y.shape() != shape) y.resize(shape);
        reduce::sum_axis(r, x.data(), y.data(), T(1));
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        const auto& x = c.input(0);
        const reduce::Around r = reduce::around(name, x.shape(), axis);
        GradSlot<T> s = c.grad_slot(0);
        reduce::spread_axis(r, c.grad_out().data(), s.data, T(1), s.add);
    }
};

}  // namespace

template <class T> Var<T> sum(const Var<T>& x)
{
    return record(SumAll{}, x);
}

template <class T> Var<T> sum(const Var<T>& x, std::ptrdiff_t axis)
{
    reduce::around("sum", x.shape(), axis);  // checks the axis
    return record(SumAxis{axis}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(sum)
template Var<float> sum<float>(const Var<float>&, std::ptrdiff_t);
template Var<double> sum<double>(const Var<double>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_REGISTER_OP(sum)
{
    return {
        "sum", [](std::mt19937_64& rng) {
            auto out = tg::samples::unary(rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::sum(v[0]); });
            auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
            out.push_back(tg::make_sample("(3,4) axis 0", {u({3, 4})}, [](const auto& v) { return tg::sum(v[0], 0); }));
            out.push_back(
                tg::make_sample("(3,4) axis -1", {u({3, 4})}, [](const auto& v) { return tg::sum(v[0], -1); }));
            out.push_back(
                tg::make_sample("(2,3,4) axis 1", {u({2, 3, 4})}, [](const auto& v) { return tg::sum(v[0], 1); }));
            out.push_back(tg::make_sample("(1,) axis 0", {u({1})}, [](const auto& v) { return tg::sum(v[0], 0); }));
            return out;
        }};
}
