// ops/elementwise/mul.cpp — y = a * b with numpy broadcasting; also a * s and s * a for a scalar s
//   vjp: grad_a = grad_out * b, grad_b = grad_out * a, each summed back to its input's shape
//        (scalar forms: the same with the scalar held fixed)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
///@{
/// a * b, broadcast (also operator*, and either side a scalar).
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> mul(detail::scalar_t<T> a, const Var<T>& b);
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b)
{
    return mul(a, b);
}
template <class T> Var<T> operator*(const Var<T>& a, detail::scalar_t<T> b)
{
    return mul(a, b);
}
template <class T> Var<T> operator*(detail::scalar_t<T> a, const Var<T>& b)
{
    return mul(a, b);
}
///@}
//! end

namespace {

struct Mul : elementwise::Binary<Mul> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& a, const V& b) const { return a * b; }
    template <class V> V da(const V& g, const V&, const V& b, const V&) const { return g * b; }
    template <class V> V db(const V& g, const V& a, const V&, const V&) const { return g * a; }
};

// s * x
template <class T> struct MulScalarFirst : elementwise::Unary<MulScalarFirst<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T s;
    explicit MulScalarFirst(T scalar) : s(scalar) {}
    template <class V> V f(const V& x) const { return s * x; }
    template <class V> V df(const V& g, const V&, const V&) const { return g * s; }
};

// x * s
template <class T> struct MulScalarSecond : elementwise::Unary<MulScalarSecond<T>> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T s;
    explicit MulScalarSecond(T scalar) : s(scalar) {}
    template <class V> V f(const V& x) const { return x * s; }
    template <class V> V df(const V& g, const V&, const V&) const { return g * s; }
};

}  // namespace

template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b)
{
    broadcast::shape(Mul::name, input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b));
    return record(Mul{}, a, b);
}
template <class T> Var<T> mul(const Var<T>& a, detail::scalar_t<T> b)
{
    return record(MulScalarSecond<T>(b), a);
}
template <class T> Var<T> mul(detail::scalar_t<T> a, const Var<T>& b)
{
    return record(MulScalarFirst<T>(a), b);
}

TAPEGRAD_INSTANTIATE_BINARY(mul)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::samples::binary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return v[0] * v[1]; }, [](const auto& x, double s) { return x * s; },
        [](double s, const auto& x) { return s * x; }, [](const auto& a, const auto& b) { return a * b; }, "{0} * {1}");
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::broadcast_errors([](const auto& v) { return v[0] * v[1]; });
}
