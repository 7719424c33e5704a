#pragma once
/// \file kit/elementwise.hpp
/// Elementwise ops whose derivative is stated once.
///
/// An elementwise op gives its function and its derivative as generic formulas, written
/// once for any value type V: a scalar, an xsimd batch, or a tg::Var:
/// \code
/// struct Sigmoid : tg::elementwise::Unary<Sigmoid> {
///     static constexpr const char* name = "sigmoid";
///     template <class V> V f(const V& x) const { return 1 / (1 + tg::fn::exp(-x)); }
///     template <class V> V df(const V& grad_out, const V& x, const V& y) const { return grad_out * y * (1 - y); }
/// };
/// \endcode
/// The forward runs `f` on SIMD batches; the first-order backward runs `df` on batches
/// too (one fused loop, no temporaries); the vjp rule runs the very same `df` on Vars, so
/// that with create_graph the derivative is itself recorded and can be differentiated
/// again. `tg::fn` holds the functions that work on all three.

#include <cmath>
#include <type_traits>
#include <typeinfo>

#include <xsimd/xsimd.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "tapegrad/kit/broadcast.hpp"
#include "tapegrad/kit/kernels.hpp"
#include "tapegrad/kit/simd.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"

namespace tg {
// The ops that tg::fn forwards Vars to (declared again here because an op's own file
// sees its declaration only after the kit).
template <class T> Var<T> exp(const Var<T>& x);
template <class T> Var<T> log(const Var<T>& x);
template <class T> Var<T> sqrt(const Var<T>& x);
template <class T> Var<T> tanh(const Var<T>& x);
template <class T> Var<T> sigmoid(const Var<T>& x);
template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent);
template <class T> Var<T> pow(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> abs(const Var<T>& x);
template <class T> Var<T> sin(const Var<T>& x);
template <class T> Var<T> cos(const Var<T>& x);
template <class T> Var<T> log1p(const Var<T>& x);
template <class T> Var<T> expm1(const Var<T>& x);
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> maximum(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, const Var<T>& b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> where(const xt::xarray<bool>& cond, detail::scalar_t<T> a, const Var<T>& b);
}  // namespace tg

namespace tg::fn {

namespace detail {
template <class V> struct scalar_of {
    using type = V;
};

/// a (cmp) b elementwise for arrays broadcast together (numpy rules; `op` names the caller
/// in the error for shapes that do not broadcast). A plain loop over operands broadcast
/// first: xtensor 0.24 with xsimd assigns a broadcast comparison such as (4,) < (3, 4)
/// into a bool array wrongly.
template <class T, class Cmp>
xt::xarray<bool> compare(const char* op, const xt::xarray<T>& a, const xt::xarray<T>& b, Cmp cmp)
{
    const auto shape = ::tg::broadcast::shape(op, a.shape(), b.shape());
    xt::xarray<T> a_full, b_full;
    const T* pa = a.data();
    const T* pb = b.data();
    if (!::tg::detail::shapes_equal(a.shape(), shape)) {
        a_full = xt::broadcast(a, shape);
        pa = a_full.data();
    }
    if (!::tg::detail::shapes_equal(b.shape(), shape)) {
        b_full = xt::broadcast(b, shape);
        pb = b_full.data();
    }
    xt::xarray<bool> out(shape);
    for (std::size_t i = 0; i < out.size(); ++i) out.data()[i] = cmp(pa[i], pb[i]);
    return out;
}
template <class T, class A> struct scalar_of<xsimd::batch<T, A>> {
    using type = T;
};
template <class T> struct scalar_of<Var<T>> {
    using type = T;
};
}  // namespace detail

/// The scalar type behind V (T for T, batch<T> and Var<T>); not deduced from arguments.
template <class V> using scalar_of_t = typename detail::scalar_of<V>::type;

/// Enables an overload only for arithmetic T (a plain scalar, not a batch or a Var).
template <class T> using if_scalar = std::enable_if_t<std::is_arithmetic<T>::value, int>;

namespace detail {
// xsimd 8's double exp (and expm1, tanh and erfc, which use it) converts its exponent to int64
// with a plain per-lane cast on every x86 target below AVX-512DQ (SSE2 and the default AVX2
// build alike): for NaN, +-inf and |x| past ~6e18 that cast is undefined behaviour (clang's
// UBSan stops there). Give them only [lo, hi], where they have already saturated, and put
// NaN back afterwards. (Float goes through a vector instruction, defined for every input.)
template <class A, class F>
inline xsimd::batch<double, A> saturated(const xsimd::batch<double, A>& x, double lo, double hi, F f)
{
    using B = xsimd::batch<double, A>;
    const auto number = x == x;
    const B inside = xsimd::select(number, xsimd::min(xsimd::max(x, B(lo)), B(hi)), B(0.0));
    return xsimd::select(number, f(inside), x);
}
template <class A> inline xsimd::batch<double, A> exp(const xsimd::batch<double, A>& x)
{
    return saturated(x, -1000.0, 1000.0, [](const auto& v) { return xsimd::exp(v); });
}
template <class A> inline xsimd::batch<float, A> exp(const xsimd::batch<float, A>& x)
{
    return xsimd::exp(x);
}
template <class A> inline xsimd::batch<double, A> expm1(const xsimd::batch<double, A>& x)
{
    return saturated(x, -1000.0, 1000.0, [](const auto& v) { return xsimd::expm1(v); });
}
template <class A> inline xsimd::batch<float, A> expm1(const xsimd::batch<float, A>& x)
{
    return xsimd::expm1(x);
}
// tanh(x) is +-1 past +-30.
template <class A> inline xsimd::batch<double, A> tanh(const xsimd::batch<double, A>& x)
{
    return saturated(x, -30.0, 30.0, [](const auto& v) { return xsimd::tanh(v); });
}
template <class A> inline xsimd::batch<float, A> tanh(const xsimd::batch<float, A>& x)
{
    return xsimd::tanh(x);
}
// erfc(x) is 2 below -30 and 0 (past the smallest subnormal) above 30.
template <class A> inline xsimd::batch<double, A> erfc(const xsimd::batch<double, A>& x)
{
    return saturated(x, -30.0, 30.0, [](const auto& v) { return xsimd::erfc(v); });
}
template <class A> inline xsimd::batch<float, A> erfc(const xsimd::batch<float, A>& x)
{
    return xsimd::erfc(x);
}
}  // namespace detail

/// Declares the scalar, batch and Var overloads of one tg::fn function (undefined again below).
#define TAPEGRAD_FN_UNARY(NAME, SCALAR_EXPR, BATCH_EXPR)                                                               \
    template <class T, if_scalar<T> = 0> inline T NAME(T x)                                                            \
    {                                                                                                                  \
        return SCALAR_EXPR;                                                                                            \
    }                                                                                                                  \
    template <class T, class A> inline xsimd::batch<T, A> NAME(const xsimd::batch<T, A>& x)                            \
    {                                                                                                                  \
        return BATCH_EXPR;                                                                                             \
    }                                                                                                                  \
    template <class T> inline Var<T> NAME(const Var<T>& x)                                                             \
    {                                                                                                                  \
        return ::tg::NAME(x);                                                                                          \
    }

///@{
/// exp, log, sqrt, tanh, sigmoid, abs, sin, cos, log1p and expm1 of a scalar (std::), of an xsimd batch (double
/// exp, expm1 and tanh clamped where they have saturated, so NaN and +-inf stay defined) or of a Var (the tg op).
TAPEGRAD_FN_UNARY(exp, std::exp(x), detail::exp(x))
TAPEGRAD_FN_UNARY(log, std::log(x), xsimd::log(x))
TAPEGRAD_FN_UNARY(sqrt, std::sqrt(x), xsimd::sqrt(x))
TAPEGRAD_FN_UNARY(tanh, std::tanh(x), detail::tanh(x))
TAPEGRAD_FN_UNARY(sigmoid, T(1) / (T(1) + std::exp(-x)), T(1) / (T(1) + detail::exp(-x)))
TAPEGRAD_FN_UNARY(abs, std::abs(x), xsimd::abs(x))
TAPEGRAD_FN_UNARY(sin, std::sin(x), xsimd::sin(x))
TAPEGRAD_FN_UNARY(cos, std::cos(x), xsimd::cos(x))
TAPEGRAD_FN_UNARY(log1p, std::log1p(x), xsimd::log1p(x))
TAPEGRAD_FN_UNARY(expm1, std::expm1(x), detail::expm1(x))
///@}
#undef TAPEGRAD_FN_UNARY

///@{
/// erfc(x) = 1 - erf(x), without the cancellation of 1 - erf(x) where erf(x) is close to 1
/// (so 0.5 erfc(-x / sqrt(2)) is the normal CDF far into its lower tail). xsimd's erfc is
/// good to 5e-15 relative for x < 2, 4e-12 up to 10 and 6e-9 beyond (where erfc < 1e-45).
/// Scalars and batches only: there is no erfc op, so a rule that needs it on Vars records
/// an op of its own (gelu).
template <class T, if_scalar<T> = 0> inline T erfc(T x)
{
    return std::erfc(x);
}
template <class T, class A> inline xsimd::batch<T, A> erfc(const xsimd::batch<T, A>& x)
{
    return detail::erfc(x);
}
///@}

///@{
/// Whether x is NaN, as a mask for where(): a bool, a batch_bool, or for a Var an
/// xt::xarray<bool> of its shape (not differentiable).
template <class T, if_scalar<T> = 0> inline bool isnan(T x)
{
    return std::isnan(x);
}
template <class T, class A> inline xsimd::batch_bool<T, A> isnan(const xsimd::batch<T, A>& x)
{
    return xsimd::isnan(x);
}
template <class T> inline xt::xarray<bool> isnan(const Var<T>& x)
{
    return xt::isnan(x.value());
}
///@}

///@{
/// a == b elementwise, as a mask for where() (false where either is NaN); b may be a
/// literal. For Vars the mask has the broadcast shape of a and b.
template <class A, class B, if_scalar<A> = 0, if_scalar<B> = 0> inline bool equal(A a, B b)
{
    using C = std::common_type_t<A, B>;
    return C(a) == C(b);
}
template <class T, class A>
inline xsimd::batch_bool<T, A> equal(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b)
{
    return a == b;
}
template <class T, class A>
inline xsimd::batch_bool<T, A> equal(const xsimd::batch<T, A>& a, ::tg::detail::scalar_t<T> b)
{
    return a == xsimd::batch<T, A>(b);
}
template <class T> inline xt::xarray<bool> equal(const Var<T>& a, const Var<T>& b)
{
    return detail::compare("equal", a.value(), b.value(), [](T u, T w) { return u == w; });
}
template <class T> inline xt::xarray<bool> equal(const Var<T>& a, ::tg::detail::scalar_t<T> b)
{
    return detail::compare("equal", a.value(), xt::xarray<T>(b), [](T u, T w) { return u == w; });
}
///@}

///@{
/// x ** p for a scalar exponent.
template <class T, if_scalar<T> = 0> inline T pow(T x, T p)
{
    return std::pow(x, p);
}
template <class T> inline Var<T> pow(const Var<T>& x, T p)
{
    return ::tg::pow(x, p);
}
///@}

///@{
/// a ** b, elementwise, both operands varying: std::pow lane by lane, so that the edge values
/// are C's (and PyTorch's): 0 ** b is +-inf for b < 0, a ** 0 and 1 ** b are 1 even for NaN.
/// (xsimd::pow is exp(b log|a|), which gets those edges wrong and, for double, reaches the
/// undefined integer conversion in exp for an infinite or NaN b log|a|.)
template <class T, class A> inline xsimd::batch<T, A> pow(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b)
{
    using B = xsimd::batch<T, A>;
    alignas(A::alignment()) T x[B::size];
    alignas(A::alignment()) T y[B::size];
    a.store_aligned(x);
    b.store_aligned(y);
    for (std::size_t i = 0; i < B::size; ++i) x[i] = std::pow(x[i], y[i]);
    return B::load_aligned(x);
}
template <class T> inline Var<T> pow(const Var<T>& a, const Var<T>& b)
{
    return ::tg::pow(a, b);
}
///@}
/// x ** p for a scalar exponent, on a batch: the same edge handling as a ** b, so that the SIMD body and the
/// scalar tail of a kernel agree (0 ** -1.5 is inf in both).
template <class T, class A> inline xsimd::batch<T, A> pow(const xsimd::batch<T, A>& x, T p)
{
    return fn::pow(x, xsimd::batch<T, A>(p));
}

///@{
/// The smaller and the larger of a and b, elementwise; NaN when either is NaN (as
/// torch.minimum and torch.maximum, unlike std::min and xsimd::min).
template <class T, if_scalar<T> = 0> inline T minimum(T a, T b)
{
    return std::isnan(b) || b < a ? b : a;
}
template <class T, class A> inline xsimd::batch<T, A> minimum(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b)
{
    return xsimd::select(xsimd::isnan(b) || b < a, b, a);
}
template <class T> inline Var<T> minimum(const Var<T>& a, const Var<T>& b)
{
    return ::tg::minimum(a, b);
}
template <class T, if_scalar<T> = 0> inline T maximum(T a, T b)
{
    return std::isnan(b) || a < b ? b : a;
}
template <class T, class A> inline xsimd::batch<T, A> maximum(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b)
{
    return xsimd::select(xsimd::isnan(b) || a < b, b, a);
}
template <class T> inline Var<T> maximum(const Var<T>& a, const Var<T>& b)
{
    return ::tg::maximum(a, b);
}
///@}

///@{
/// cond ? a : b, elementwise; the condition comes from a comparison of the same kind of
/// value (`x > 0` is a bool, a batch_bool, or for a Var an xt::xarray<bool>), and either
/// branch may be a literal (`where(x > 0, g, 0)`). For Vars the gradient flows to the
/// branch taken and not at all to the condition.
template <class A, class B, if_scalar<A> = 0, if_scalar<B> = 0> inline std::common_type_t<A, B> where(bool c, A a, B b)
{
    using C = std::common_type_t<A, B>;
    return c ? C(a) : C(b);
}
template <class T, class A>
inline xsimd::batch<T, A> where(const xsimd::batch_bool<T, A>& c, const xsimd::batch<T, A>& a,
                                const xsimd::batch<T, A>& b)
{
    return xsimd::select(c, a, b);
}
template <class T, class A>
inline xsimd::batch<T, A> where(const xsimd::batch_bool<T, A>& c, const xsimd::batch<T, A>& a,
                                ::tg::detail::scalar_t<T> b)
{
    return xsimd::select(c, a, xsimd::batch<T, A>(b));
}
template <class T, class A>
inline xsimd::batch<T, A> where(const xsimd::batch_bool<T, A>& c, ::tg::detail::scalar_t<T> a,
                                const xsimd::batch<T, A>& b)
{
    return xsimd::select(c, xsimd::batch<T, A>(a), b);
}
template <class T> inline Var<T> where(const xt::xarray<bool>& c, const Var<T>& a, const Var<T>& b)
{
    return ::tg::where(c, a, b);
}
template <class T> inline Var<T> where(const xt::xarray<bool>& c, const Var<T>& a, ::tg::detail::scalar_t<T> b)
{
    return ::tg::where(c, a, b);
}
template <class T> inline Var<T> where(const xt::xarray<bool>& c, ::tg::detail::scalar_t<T> a, const Var<T>& b)
{
    return ::tg::where(c, a, b);
}
///@}

}  // namespace tg::fn

namespace tg::elementwise {

namespace simd_detail {

// The key under which a rule's wide loops are enrolled and found: its type's name. The wide
// copy spells the library's namespaces with a suffix, which the registry takes out again.
template <class Derived> inline const char* type_key() noexcept
{
#if defined(__GXX_RTTI)
    return typeid(Derived).name();
#else
    return nullptr;
#endif
}

// Rules whose wide loops can be called with the baseline's object: plain data of the same
// layout in both copies.
template <class Derived>
constexpr bool dispatchable = std::is_trivially_copyable<Derived>::value&& std::is_standard_layout<Derived>::value;

#if defined(TAPEGRAD_SIMD_VARIANT)
// The wide copy: the raw loops of a rule, enrolled when the program starts.

// Whether a rule is made for values of type T: a rule template for one value type
// (AddScalarFirst<float>) only for that type, any other rule for both.
template <class Derived, class T> struct for_type : std::true_type {};
template <template <class> class Rule, class U, class T>
struct for_type<Rule<U>, T> : std::bool_constant<!std::is_floating_point<U>::value || std::is_same<U, T>::value> {};

template <class Derived, class T, class Fns> void enroll_one(int arity, const Fns& fns) noexcept
{
    if constexpr (dispatchable<Derived> && for_type<Derived, T>::value) {
        tapegrad_simd_enroll(Derived::name, type_key<Derived>(), simd::dtype<T>, arity, &fns);
    }
}
template <class Derived> const Derived& rule(const void* op) noexcept
{
    return *static_cast<const Derived*>(op);
}
template <class Derived> struct WideUnary {
    template <class T> static void forward(const void* op, std::size_t n, T* y, const T* x) noexcept
    {
        kernel::map<false>(
            n, y, [&d = rule<Derived>(op)](auto v) { return d.f(v); }, x);
    }
    template <class T>
    static void backward(const void* op, bool add, std::size_t n, T* dst, const T* g, const T* x, const T* y) noexcept
    {
        kernel::map_to(
            add, n, dst, [&d = rule<Derived>(op)](auto gv, auto xv, auto yv) { return d.df(gv, xv, yv); }, g, x, y);
    }
    template <class T> static constexpr simd::UnaryFns<T> fns{&forward<T>, &backward<T>};
    static bool enroll() noexcept
    {
        if constexpr (for_type<Derived, float>::value) enroll_one<Derived, float>(1, fns<float>);
        if constexpr (for_type<Derived, double>::value) enroll_one<Derived, double>(1, fns<double>);
        return true;
    }
};
template <class Derived> struct WideBinary {
    template <class T> static const broadcast::Args<T>& plan(const void* args) noexcept
    {
        return *static_cast<const broadcast::Args<T>*>(args);
    }
    template <class T> static void forward(const void* op, const void* args, bool add, T* dst) noexcept
    {
        broadcast::eval(plan<T>(args), add, dst, [&d = rule<Derived>(op)](auto a, auto b) { return d.f(a, b); });
    }
    template <class T>
    static void da(const void* op, const void* args, bool add, T* dst, const T* g, const T* y) noexcept
    {
        broadcast::eval(
            plan<T>(args), add, dst,
            [&d = rule<Derived>(op)](auto gv, auto yv, auto a, auto b) { return d.da(gv, a, b, yv); }, g, y);
    }
    template <class T>
    static void db(const void* op, const void* args, bool add, T* dst, const T* g, const T* y) noexcept
    {
        broadcast::eval(
            plan<T>(args), add, dst,
            [&d = rule<Derived>(op)](auto gv, auto yv, auto a, auto b) { return d.db(gv, a, b, yv); }, g, y);
    }
    template <class T> static constexpr simd::BinaryFns<T> fns{&forward<T>, &da<T>, &db<T>};
    static bool enroll() noexcept
    {
        if constexpr (for_type<Derived, float>::value) enroll_one<Derived, float>(2, fns<float>);
        if constexpr (for_type<Derived, double>::value) enroll_one<Derived, double>(2, fns<double>);
        return true;
    }
};
// Names a static member in a template argument, which makes the compiler instantiate (and
// so initialise) it along with the class that names it.
template <const bool*> struct Touch {};
#endif

// The baseline: the wide loops of a rule for T, looked up once, or null.
template <class Fns, class Derived, class T> const Fns* wide(int arity, std::size_t n) noexcept
{
#if defined(TAPEGRAD_SIMD_VARIANT)
    (void)arity;
    (void)n;
    return nullptr;
#else
    if constexpr (!dispatchable<Derived>) {
        (void)arity;
        (void)n;
        return nullptr;
    } else {
        if (n < simd::min_elements) return nullptr;
        static const void* const fns = simd::find(Derived::name, type_key<Derived>(), simd::dtype<T>, arity);
        if (fns == nullptr || !simd::wide_on.load(std::memory_order_relaxed)) return nullptr;
        return static_cast<const Fns*>(fns);
    }
#endif
}

}  // namespace simd_detail

/// A unary elementwise op y = f(x), grad_x = df(grad_out, x, y). Derived gives
/// `template <class V> V f(const V& x) const` and
/// `template <class V> V df(const V& grad_out, const V& x, const V& y) const`.
template <class Derived> struct Unary {
    /// y = f(x), evaluated on SIMD batches in one pass.
    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.output(x.shape());
        if (const auto* w = simd_detail::wide<simd::UnaryFns<T>, Derived, T>(1, x.size())) {
            w->forward(&self(), x.size(), y.data(), x.data());
            return;
        }
        kernel::map<false>(
            x.size(), y.data(), [d = self()](auto v) { return d.f(v); }, x.data());
    }
    /// The fused first-order backward: grad_x += df(grad_out, x, y) on SIMD batches.
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* g = c.grad_out().data();
        const T* y = c.output().data();
        const auto* w = simd_detail::wide<simd::UnaryFns<T>, Derived, T>(1, x.size());
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            if (w != nullptr) {
                w->backward(&self(), add, x.size(), dst, g, x.data(), y);
                return;
            }
            kernel::map_to(
                add, x.size(), dst, [d = self()](auto gv, auto xv, auto yv) { return d.df(gv, xv, yv); }, g, x.data(),
                y);
        });
    }
    /// The vjp rule: df on Vars, so that the gradient is recorded and can be differentiated again.
    template <class T> void vjp(VjpContext<T>& v) const
    {
        if (v.needs_grad(0)) v.add_grad(0, self().df(v.grad_out(), v.input(0), v.output()));
    }

private:
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
#if defined(TAPEGRAD_SIMD_VARIANT)
    static inline const bool enrolled_ = simd_detail::WideUnary<Derived>::enroll();
    using touch_ = simd_detail::Touch<&enrolled_>;
#endif
};

/// A broadcasting binary elementwise op y = f(a, b), grad_a = da(grad_out, a, b, y),
/// grad_b = db(grad_out, a, b, y) (each summed back to its input's shape by the kit).
template <class Derived> struct Binary {
    /// y = f(a, b) over the broadcast shape of a and b; throws tg::Error when the shapes do not broadcast.
    template <class T> void forward(OpContext<T>& c) const
    {
        const broadcast::Plan<T> p(c.name(), c.input(0), c.input(1));
        auto& y = c.output(p.shape);
        if (const auto* w = simd_detail::wide<simd::BinaryFns<T>, Derived, T>(2, p.n)) {
            const broadcast::Args<T> args = p.args();
            w->forward(&self(), &args, false, y.data());
            return;
        }
        p.eval(false, y.data(), [d = self()](auto a, auto b) { return d.f(a, b); });
    }
    /// The fused first-order backward: da and db on SIMD batches, each reduced to its input's shape.
    template <class T> void backward(OpContext<T>& c) const
    {
        const broadcast::Plan<T> p(c.name(), c.input(0), c.input(1));
        const T* g = c.grad_out().data();
        const T* y = c.output().data();
        const auto* w = simd_detail::wide<simd::BinaryFns<T>, Derived, T>(2, p.n);
        const broadcast::Args<T> args = p.args();
        c.add_grad(0, p.shape, [&](T* dst, bool add) {
            if (w != nullptr) {
                w->da(&self(), &args, add, dst, g, y);
                return;
            }
            p.eval(
                add, dst, [d = self()](auto gv, auto yv, auto a, auto b) { return d.da(gv, a, b, yv); }, g, y);
        });
        c.add_grad(1, p.shape, [&](T* dst, bool add) {
            if (w != nullptr) {
                w->db(&self(), &args, add, dst, g, y);
                return;
            }
            p.eval(
                add, dst, [d = self()](auto gv, auto yv, auto a, auto b) { return d.db(gv, a, b, yv); }, g, y);
        });
    }
    /// The vjp rule: da and db on Vars (for the inputs that need a gradient), so that they can be differentiated again.
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T> g = v.grad_out(), a = v.input(0), b = v.input(1), y = v.output();
        if (v.needs_grad(0)) v.add_grad(0, self().da(g, a, b, y));
        if (v.needs_grad(1)) v.add_grad(1, self().db(g, a, b, y));
    }

private:
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
#if defined(TAPEGRAD_SIMD_VARIANT)
    static inline const bool enrolled_ = simd_detail::WideBinary<Derived>::enroll();
    using touch_ = simd_detail::Touch<&enrolled_>;
#endif
};

}  // namespace tg::elementwise
