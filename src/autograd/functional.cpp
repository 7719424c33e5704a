// The functional transforms (as torch.autograd.functional), built on tg::grad. Each runs f
// on a fresh parameter on the calling thread's tape and, when it started in the middle of
// a pass, drops the entries it recorded, so the caller's pass is as it was.

#include <string>

#include "autograd/tape_scope.hpp"
#include "tapegrad/autograd.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/tape.hpp"

namespace tg {
namespace {

using detail::TapeScope;

template <class T> using Fn = std::function<Var<T>(const Var<T>&)>;

template <class T> Var<T> call(const char* who, const Fn<T>& f, const Var<T>& x)
{
    if (!f) throw Error(std::string(who) + ": the function is empty");
    Var<T> y = f(x);
    if (!y.defined()) throw Error(std::string(who) + ": the function returned an undefined Var");
    return y;
}

template <class S> void require_shape(const char* who, const char* name, const S& got, const S& want, const char* of)
{
    if (got != want) {
        throw Error(std::string(who) + ": " + name + " has shape " + format_shape(got) + " but " + of + " has shape " +
                    format_shape(want));
    }
}

template <class T> xt::xarray<T> one_hot(const typename xt::xarray<T>::shape_type& shape, std::size_t j)
{
    xt::xarray<T> e = xt::zeros<T>(shape);
    e.data()[j] = T(1);
    return e;
}

template <class T>
typename xt::xarray<T>::shape_type concat(const typename xt::xarray<T>::shape_type& a,
                                          const typename xt::xarray<T>::shape_type& b)
{
    typename xt::xarray<T>::shape_type s(a.begin(), a.end());
    s.insert(s.end(), b.begin(), b.end());
    return s;
}

constexpr GradOptions keep{false, true, true};  // retain the pass, zeros for unused inputs
constexpr GradOptions recorded{true, true, true};

// The gradient of a one-element f at x, recorded so it can be differentiated again; an
// undefined Var when f does not depend on x at all.
template <class T> Var<T> recorded_gradient(const char* who, const Fn<T>& f, const Var<T>& x)
{
    const Var<T> y = call(who, f, x);
    if (y.size() != 1) {
        throw Error(std::string(who) + ": f must return one element, got shape " + format_shape(y.shape()));
    }
    if (!y.requires_grad()) return Var<T>();
    Var<T> g = grad<T>({y}, {x}, {}, recorded)[0];
    return g.requires_grad() ? g : Var<T>();
}

}  // namespace

template <class T> xt::xarray<T> jacobian(const Fn<T>& f, const xt::xarray<T>& x)
{
    TapeScope<T> scope;
    const Var<T> px = parameter(x);
    const Var<T> y = call("jacobian", f, px);
    xt::xarray<T> out = xt::zeros<T>(concat<T>(y.shape(), px.shape()));
    if (!y.requires_grad()) return out;
    const std::size_t n = x.size();
    for (std::size_t j = 0; j < y.size(); ++j) {
        const Var<T> row = grad<T>({y}, {px}, {constant(one_hot<T>(y.shape(), j))}, keep)[0];
        std::copy(row.value().data(), row.value().data() + n, out.data() + j * n);
    }
    return out;
}

template <class T> xt::xarray<T> hessian(const Fn<T>& f, const xt::xarray<T>& x)
{
    TapeScope<T> scope;
    const Var<T> px = parameter(x);
    const Var<T> g = recorded_gradient("hessian", f, px);
    xt::xarray<T> out = xt::zeros<T>(concat<T>(px.shape(), px.shape()));
    if (!g.defined()) return out;
    const std::size_t n = x.size();
    for (std::size_t i = 0; i < n; ++i) {
        const Var<T> row = grad<T>({g}, {px}, {constant(one_hot<T>(g.shape(), i))}, keep)[0];
        std::copy(row.value().data(), row.value().data() + n, out.data() + i * n);
    }
    return out;
}

template <class T> xt::xarray<T> hvp(const Fn<T>& f, const xt::xarray<T>& x, const xt::xarray<T>& v)
{
    require_shape("hvp", "v", v.shape(), x.shape(), "x");
    TapeScope<T> scope;
    const Var<T> px = parameter(x);
    const Var<T> g = recorded_gradient("hvp", f, px);
    if (!g.defined()) return xt::zeros<T>(x.shape());
    return grad<T>({g}, {px}, {constant(v)}, keep)[0].value();
}

template <class T> xt::xarray<T> vjp(const Fn<T>& f, const xt::xarray<T>& x, const xt::xarray<T>& u)
{
    TapeScope<T> scope;
    const Var<T> px = parameter(x);
    const Var<T> y = call("vjp", f, px);
    require_shape("vjp", "u", u.shape(), y.shape(), "f(x)");
    if (!y.requires_grad()) return xt::zeros<T>(x.shape());
    return grad<T>({y}, {px}, {constant(u)}, keep)[0].value();
}

template <class T> xt::xarray<T> jvp(const Fn<T>& f, const xt::xarray<T>& x, const xt::xarray<T>& v)
{
    require_shape("jvp", "v", v.shape(), x.shape(), "x");
    TapeScope<T> scope;
    const Var<T> px = parameter(x);
    const Var<T> y = call("jvp", f, px);
    if (!y.requires_grad()) return xt::zeros<T>(y.shape());
    // u^T J is linear in u; its derivative with respect to u, contracted with v, is J v.
    const Var<T> u = parameter(xt::xarray<T>(xt::zeros<T>(y.shape())));
    const Var<T> ju = grad<T>({y}, {px}, {u}, recorded)[0];
    if (!ju.requires_grad()) return xt::zeros<T>(y.shape());
    return grad<T>({ju}, {u}, {constant(v)}, keep)[0].value();
}

#define TAPEGRAD_INSTANTIATE_FUNCTIONAL(T)                                                                             \
    template xt::xarray<T> jacobian<T>(const Fn<T>&, const xt::xarray<T>&);                                            \
    template xt::xarray<T> hessian<T>(const Fn<T>&, const xt::xarray<T>&);                                             \
    template xt::xarray<T> hvp<T>(const Fn<T>&, const xt::xarray<T>&, const xt::xarray<T>&);                           \
    template xt::xarray<T> vjp<T>(const Fn<T>&, const xt::xarray<T>&, const xt::xarray<T>&);                           \
    template xt::xarray<T> jvp<T>(const Fn<T>&, const xt::xarray<T>&, const xt::xarray<T>&);
TAPEGRAD_INSTANTIATE_FUNCTIONAL(float)
TAPEGRAD_INSTANTIATE_FUNCTIONAL(double)
#undef TAPEGRAD_INSTANTIATE_FUNCTIONAL

}  // namespace tg
