// ops/elementwise/where.cpp — y = cond ? a : b elementwise, cond, a and b broadcast together
//   vjp: grad_a = where(cond, grad_out, 0), grad_b = where(cond, 0, grad_out), each summed
//        back to its input's shape; cond gets none (it is not differentiable)
// The op states only its vjp rule: a first-order backward runs the same rule on values.

#include <xtensor/xoperation.hpp>

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// cond ? a : b elementwise, with cond, a and b broadcast together (numpy.where).
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, const Var<T>& b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, detail::scalar_t<T> a, const Var<T>& b);
/// Elementwise comparisons of values (broadcast): masks for where(), not differentiable.
template <class T> xt::xarray<bool> operator>(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator<(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator>=(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator<=(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator>(const Var<T>& a, const Var<T>& b);
template <class T> xt::xarray<bool> operator<(const Var<T>& a, const Var<T>& b);
//! end

namespace {

struct Where {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    xt::xarray<bool> cond;  // owned: the rule reads it

    template <class T> void forward(OpContext<T>& c) const
    {
        xt::noalias(c.output()) = xt::where(cond, c.input(0), c.input(1));
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        if (v.needs_grad(0)) v.add_grad(0, tg::where(cond, g, T(0)));
        if (v.needs_grad(1)) v.add_grad(1, tg::where(cond, T(0), g));
    }
};

}  // namespace

template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, const Var<T>& b)
{
    broadcast::shape(Where::name, cond.shape(),
                     broadcast::shape(Where::name, input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b)));
    return record(Where{cond}, a, b);
}
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, detail::scalar_t<T> b)
{
    return tg::where(cond, a, constant(xt::xarray<T>(b)));
}
template <class T> Var<T> where(const xt::xarray<bool>& cond, detail::scalar_t<T> a, const Var<T>& b)
{
    return tg::where(cond, constant(xt::xarray<T>(a)), b);
}

template <class T> xt::xarray<bool> operator>(const Var<T>& a, detail::scalar_t<T> b)
{
    return a.value() > b;
}
template <class T> xt::xarray<bool> operator<(const Var<T>& a, detail::scalar_t<T> b)
{
    return a.value() < b;
}
template <class T> xt::xarray<bool> operator>=(const Var<T>& a, detail::scalar_t<T> b)
{
    return a.value() >= b;
}
template <class T> xt::xarray<bool> operator<=(const Var<T>& a, detail::scalar_t<T> b)
{
    return a.value() <= b;
}
template <class T> xt::xarray<bool> operator>(const Var<T>& a, const Var<T>& b)
{
    broadcast::shape(">", input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b));
    return a.value() > b.value();
}
template <class T> xt::xarray<bool> operator<(const Var<T>& a, const Var<T>& b)
{
    broadcast::shape("<", input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b));
    return a.value() < b.value();
}

#define TAPEGRAD_INSTANTIATE_WHERE(T)                                                                                  \
    template Var<T> where<T>(const xt::xarray<bool>&, const Var<T>&, const Var<T>&);                                   \
    template Var<T> where<T>(const xt::xarray<bool>&, const Var<T>&, T);                                               \
    template Var<T> where<T>(const xt::xarray<bool>&, T, const Var<T>&);                                               \
    template xt::xarray<bool> operator><T>(const Var<T>&, T);                                                          \
    template xt::xarray<bool> operator< <T>(const Var<T>&, T);                                                         \
    template xt::xarray<bool> operator>=<T>(const Var<T>&, T);                                                         \
    template xt::xarray<bool> operator<=<T>(const Var<T>&, T);                                                         \
    template xt::xarray<bool> operator><T>(const Var<T>&, const Var<T>&);                                              \
    template xt::xarray<bool> operator< <T>(const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE_WHERE(float)
TAPEGRAD_INSTANTIATE_WHERE(double)
#undef TAPEGRAD_INSTANTIATE_WHERE

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    const xt::xarray<bool> c34 = u({3, 4}) > 0.0;
    const xt::xarray<bool> c4 = u({4}) > 0.0;
    const xt::xarray<bool> c31 = u({3, 1}) > 0.0;
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, const xt::xarray<bool>& c, std::vector<xt::xarray<double>> in) {
        out.push_back(tg::make_sample(
            std::move(label), std::move(in), [c](const auto& v) { return tg::where(c, v[0], v[1]); },
            [c](const auto& x) { return xt::where(c, x[0], x[1]); }));
    };
    sample("(3,4) ? (3,4) : (3,4)", c34, {u({3, 4}), u({3, 4})});
    sample("(4,) ? (3,4) : ()", c4, {u({3, 4}), u({})});
    sample("(3,1) ? (1,4) : (3,4)", c31, {u({1, 4}), u({3, 4})});
    sample("(3,4) ? (4,) : (3,1)", c34, {u({4}), u({3, 1})});
    out.push_back(tg::make_sample(
        "(3,4) ? (3,4) : scalar", {u({3, 4})}, [c34](const auto& v) { return tg::where(c34, v[0], 0.5); },
        [c34](const auto& x) { return xt::where(c34, x[0], 0.5); }));
    return out;
}
