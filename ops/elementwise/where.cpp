// ops/elementwise/where.cpp — y = cond ? a : b elementwise, cond, a and b broadcast together
//   vjp: grad_a = where(cond, grad_out, 0), grad_b = where(cond, 0, grad_out), each summed
//        back to its input's shape; cond gets none (it is not differentiable)

#include <xtensor/xoperation.hpp>

#include "tapegrad/kit.hpp"

namespace tg {

//! public
///@{
/// cond ? a : b elementwise, with cond, a and b broadcast together (numpy.where).
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, const Var<T>& b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, detail::scalar_t<T> a, const Var<T>& b);
///@}
///@{
/// Elementwise comparisons of values (broadcast): masks for where(), not differentiable.
template <class T> xt::xarray<bool> operator>(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator<(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator>=(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator<=(const Var<T>& a, detail::scalar_t<T> b);
template <class T> xt::xarray<bool> operator>(const Var<T>& a, const Var<T>& b);
template <class T> xt::xarray<bool> operator<(const Var<T>& a, const Var<T>& b);
///@}
//! end

namespace {

struct Where {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    // Owned (the backward and the rule read it), always of the output's shape: a smaller
    // mask is repeated out once, in where(), so that no xtensor expression ever broadcasts
    // a bool array (see broadcast::materialise).
    xt::xarray<bool> cond;

    // One loop: each branch is of the output's shape or a single value (relu's rule:
    // where(x > 0, g, 0)); any other branch is repeated out to the output's shape first.
    template <class T> void forward(OpContext<T>& c) const
    {
        const std::size_t n = cond.size();
        xt::xarray<T> a_full, b_full;
        auto branch = [&](const xt::xarray<T>& x, xt::xarray<T>& full, std::size_t& stride) -> const T* {
            stride = x.size() == 1 && n != 1 ? 0 : 1;
            if (x.size() == n || x.size() == 1) return x.data();
            full = broadcast::materialise(x, cond.shape());
            return full.data();
        };
        std::size_t sa = 1, sb = 1;
        const T* a = branch(c.input(0), a_full, sa);
        const T* b = branch(c.input(1), b_full, sb);
        T* y = c.output(cond.shape()).data();
        const bool* m = cond.data();
        for (std::size_t i = 0; i < n; ++i) y[i] = m[i] ? a[i * sa] : b[i * sb];
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const T* g = c.grad_out().data();
        const bool* m = cond.data();
        const std::size_t n = cond.size();
        for (std::size_t k = 0; k < 2; ++k) {
            const bool taken = k == 0;
            c.add_grad(k, cond.shape(), [&](T* dst, bool add) {
                for (std::size_t i = 0; i < n; ++i) {
                    const T v = m[i] == taken ? g[i] : T(0);
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
    const auto shape = broadcast::shape(
        Where::name, cond.shape(),
        broadcast::shape(Where::name, input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b)));
    if (detail::shapes_equal(cond.shape(), shape)) return record(Where{cond}, a, b);
    return record(Where{broadcast::materialise(cond, shape)}, a, b);
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
    // The reference broadcasts in double through xtensor and selects in a plain loop: it
    // shares no code with the op, and never lets xtensor broadcast a bool array.
    auto reference = [](const xt::xarray<bool>& c, const xt::xarray<double>& a, const xt::xarray<double>& b) {
        const auto shape =
            tg::broadcast::shape("where", c.shape(), tg::broadcast::shape("where", a.shape(), b.shape()));
        xt::xarray<double> cd = xt::xarray<double>::from_shape(c.shape());
        for (std::size_t i = 0; i < c.size(); ++i) cd.data()[i] = c.data()[i] ? 1.0 : 0.0;
        const xt::xarray<double> cf = xt::broadcast(cd, shape), af = xt::broadcast(a, shape),
                                 bf = xt::broadcast(b, shape);
        xt::xarray<double> y = xt::xarray<double>::from_shape(shape);
        for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = cf.data()[i] != 0.0 ? af.data()[i] : bf.data()[i];
        return y;
    };
    auto sample = [&](std::string label, const xt::xarray<bool>& c, std::vector<xt::xarray<double>> in) {
        out.push_back(tg::make_sample(
                          std::move(label), std::move(in), [c](const auto& v) { return tg::where(c, v[0], v[1]); },
                          [c, reference](const auto& x) { return reference(c, x[0], x[1]); })
                          .with_torch("torch.where(" + tg::samples::torch_literal(c) + ", x[0], x[1])"));
    };
    sample("(3,4) ? (3,4) : (3,4)", c34, {u({3, 4}), u({3, 4})});
    sample("(4,) ? (3,4) : ()", c4, {u({3, 4}), u({})});
    sample("(3,1) ? (1,4) : (3,4)", c31, {u({1, 4}), u({3, 4})});
    sample("(3,4) ? (4,) : (3,1)", c34, {u({4}), u({3, 1})});
    // Masks repeated along leading dims with rows that are not a multiple of any SIMD width.
    // Draws in statements of their own: the order of a call's arguments is unspecified, and gcc
    // and clang differ, which would give each compiler different samples.
    {
        std::vector<xt::xarray<double>> in = {u({3, 5}), u({})};
        const xt::xarray<bool> mask = u({5}) > 0.0;
        sample("(5,) ? (3,5) : ()", mask, std::move(in));
    }
    {
        std::vector<xt::xarray<double>> in = {u({9}), u({2, 3, 1})};
        const xt::xarray<bool> mask = u({2, 1, 9}) > 0.0;
        sample("(2,1,9) ? (9,) : (2,3,1)", mask, std::move(in));
    }
    out.push_back(tg::make_sample(
                      "(3,4) ? (3,4) : scalar", {u({3, 4})}, [c34](const auto& v) { return tg::where(c34, v[0], 0.5); },
                      [c34, reference](const auto& x) { return reference(c34, x[0], xt::xarray<double>(0.5)); })
                      .with_torch("torch.where(" + tg::samples::torch_literal(c34) + ", x[0], " +
                                  tg::samples::torch_scalar(0.5) + ")"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const xt::xarray<bool> mask3{true, false, true};
    auto errors =
        tg::samples::broadcast_errors([](const auto& v) { return tg::where(xt::xarray<bool>{true}, v[0], v[1]); });
    errors.push_back(tg::make_error_input(
        "mask (3,) with (2,)", {xt::ones<double>({2}), xt::ones<double>({2})},
        [mask3](const auto& v) { return tg::where(mask3, v[0], v[1]); },
        "shapes cannot be broadcast together: a is [3], b is [2]"));
    errors.push_back(tg::make_error_input(
        "mask (3,) with (2,) and a scalar", {xt::ones<double>({2})},
        [mask3](const auto& v) { return tg::where(mask3, v[0], 0.5); }, "a is [3], b is [2]"));
    return errors;
}
