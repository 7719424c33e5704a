// ops/elementwise/where.cpp — y = cond ? a : b elementwise, cond, a and b broadcast together
//   vjp: grad_a = where(cond, grad_out, 0), grad_b = where(cond, 0, grad_out), each summed
//        back to its input's shape; cond gets none (it is not differentiable)

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
    xt::xarray<bool> cond;  // owned: the backward and the rule read it

    // The common case runs one loop: cond with the output's shape and each branch either of
    // that shape or a single value (relu's rule: where(x > 0, g, 0)).
    template <class T> bool plain(const OpContext<T>& c) const
    {
        const auto n = cond.size();
        return (c.input(0).size() == n || c.input(0).size() == 1) &&
               (c.input(1).size() == n || c.input(1).size() == 1) &&
               detail::shapes_equal(cond.shape(), c.input(0).size() == n ? c.input(0).shape() : c.input(1).shape());
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        if (!plain(c)) {
            xt::noalias(c.output()) = xt::where(cond, c.input(0), c.input(1));
            return;
        }
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        T* y = c.output(cond.shape()).data();
        const bool* m = cond.data();
        const std::size_t sa = a.size() == 1 ? 0 : 1, sb = b.size() == 1 ? 0 : 1;
        for (std::size_t i = 0; i < cond.size(); ++i) y[i] = m[i] ? a.data()[i * sa] : b.data()[i * sb];
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.grad_out();
        if (!plain(c)) {
            c.add_grad(0, xt::where(cond, g, T(0)));
            c.add_grad(1, xt::where(cond, T(0), g));
            return;
        }
        const bool* m = cond.data();
        const std::size_t n = cond.size();
        for (std::size_t k = 0; k < 2; ++k) {
            const bool taken = k == 0;
            c.add_grad(k, cond.shape(), [&](T* dst, bool add) {
                for (std::size_t i = 0; i < n; ++i) {
                    const T v = m[i] == taken ? g.data()[i] : T(0);
                    dst[i] = add ? dst[i] + v : v;
                }
            });
        }
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        if (v.needs_grad(0)) v.add_grad(0, tg::where(cond, g, T(0)));
        if (v.needs_grad(1)) v.add_grad(1, tg::where(cond, T(0), g));
    }
};

// a (op) b elementwise into a bool mask, b a scalar or a Var broadcast against a.
template <class T, class Cmp> xt::xarray<bool> compare(const char* op, const Var<T>& a, T b, Cmp cmp)
{
    const auto& x = input_value(op, a);
    xt::xarray<bool> out(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) out.data()[i] = cmp(x.data()[i], b);
    return out;
}

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
    return compare(">", a, b, [](T u, T w) { return u > w; });
}
template <class T> xt::xarray<bool> operator<(const Var<T>& a, detail::scalar_t<T> b)
{
    return compare("<", a, b, [](T u, T w) { return u < w; });
}
template <class T> xt::xarray<bool> operator>=(const Var<T>& a, detail::scalar_t<T> b)
{
    return compare(">=", a, b, [](T u, T w) { return u >= w; });
}
template <class T> xt::xarray<bool> operator<=(const Var<T>& a, detail::scalar_t<T> b)
{
    return compare("<=", a, b, [](T u, T w) { return u <= w; });
}
// Not `a.value() > b.value()`: xtensor 0.24 with xsimd gets that wrong for a trailing-dims
// broadcast such as (4,) against (3, 4) (see fn::detail::compare).
template <class T> xt::xarray<bool> operator>(const Var<T>& a, const Var<T>& b)
{
    return fn::detail::compare(">", input_value(TAPEGRAD_OP_NAME, a), input_value(TAPEGRAD_OP_NAME, b),
                               [](T u, T w) { return u > w; });
}
template <class T> xt::xarray<bool> operator<(const Var<T>& a, const Var<T>& b)
{
    return fn::detail::compare("<", input_value(TAPEGRAD_OP_NAME, a), input_value(TAPEGRAD_OP_NAME, b),
                               [](T u, T w) { return u < w; });
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
                          [c](const auto& x) { return xt::where(c, x[0], x[1]); })
                          .with_torch("torch.where(" + tg::samples::torch_literal(c) + ", x[0], x[1])"));
    };
    sample("(3,4) ? (3,4) : (3,4)", c34, {u({3, 4}), u({3, 4})});
    sample("(4,) ? (3,4) : ()", c4, {u({3, 4}), u({})});
    sample("(3,1) ? (1,4) : (3,4)", c31, {u({1, 4}), u({3, 4})});
    sample("(3,4) ? (4,) : (3,1)", c34, {u({4}), u({3, 1})});
    out.push_back(tg::make_sample(
                      "(3,4) ? (3,4) : scalar", {u({3, 4})}, [c34](const auto& v) { return tg::where(c34, v[0], 0.5); },
                      [c34](const auto& x) { return xt::where(c34, x[0], 0.5); })
                      .with_torch("torch.where(" + tg::samples::torch_literal(c34) + ", x[0], " +
                                  tg::samples::torch_scalar(0.5) + ")"));
    return out;
}
