// ops/elementwise/div.cpp — y = a / b with numpy broadcasting; also a / s and s / a for a scalar s
//   vjp: grad_a = grad_out / b, grad_b = -grad_out * a / b^2, each summed back to its input's shape
//        (scalar forms: the same with the scalar held fixed)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
///@{
/// a / b, broadcast (also operator/, and either side a scalar).
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> div(detail::scalar_t<T> a, const Var<T>& b);
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b)
{
    return div(a, b);
}
template <class T> Var<T> operator/(const Var<T>& a, detail::scalar_t<T> b)
{
    return div(a, b);
}
template <class T> Var<T> operator/(detail::scalar_t<T> a, const Var<T>& b)
{
    return div(a, b);
}
///@}
//! end

namespace {

struct Div : elementwise::Binary<Div> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& a, const V& b) const { return a / b; }
    template <class V> V da(const V& g, const V&, const V& b, const V&) const { return g / b; }
    template <class V> V db(const V& g, const V& a, const V& b, const V&) const { return -g * a / (b * b); }
};

// s / x
template <class T> struct DivScalarFirst : elementwise::Unary<DivScalarFirst<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T s;
    explicit DivScalarFirst(T scalar) : s(scalar) {}
    template <class V> V f(const V& x) const { return s / x; }
    template <class V> V df(const V& g, const V& x, const V&) const { return -g * s / (x * x); }
};

// x / s
template <class T> struct DivScalarSecond : elementwise::Unary<DivScalarSecond<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T s;
    explicit DivScalarSecond(T scalar) : s(scalar) {}
    template <class V> V f(const V& x) const { return x / s; }
    template <class V> V df(const V& g, const V&, const V&) const { return g / s; }
};

}  // namespace

template <class T> Var<T> div(const Var<T>& a, const Var<T>& b)
{
    broadcast::shape(Div::name, input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b));
    return record(Div{}, a, b);
}
template <class T> Var<T> div(const Var<T>& a, detail::scalar_t<T> b)
{
    return record(DivScalarSecond<T>(b), a);
}
template <class T> Var<T> div(detail::scalar_t<T> a, const Var<T>& b)
{
    return record(DivScalarFirst<T>(a), b);
}

TAPEGRAD_INSTANTIATE_BINARY(div)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::binary(
        rng, -2.0, 2.0, 0.5, [](const auto& v) { return v[0] / v[1]; }, [](const auto& x, double s) { return x / s; },
        [](double s, const auto& x) { return s / x; }, [](const auto& a, const auto& b) { return a / b; }, "{0} / {1}");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::broadcast_errors([](const auto& v) { return v[0] / v[1]; });
}
