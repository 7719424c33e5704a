#pragma once
/// \file ops.hpp
/// The built-in differentiable ops. Every elementwise binary op follows numpy
/// broadcasting and reduces its gradients back to each input's shape. T is float or double.

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/random.hpp"
#include "tapegrad/var.hpp"

namespace tg {

namespace detail {
template <class T> struct identity {
    using type = T;
};
/// Blocks deduction so that `x * 2` converts 2 to the Var's scalar type.
template <class T> using scalar_t = typename identity<T>::type;
}  // namespace detail

// --- elementwise arithmetic (numpy broadcasting) ---------------------------------------

/// a + b, broadcast.
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> add(const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> add(detail::scalar_t<T> a, const Var<T>& b);
/// a - b, broadcast.
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> sub(detail::scalar_t<T> a, const Var<T>& b);
/// a * b, broadcast.
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> mul(detail::scalar_t<T> a, const Var<T>& b);
/// a / b, broadcast.
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, detail::scalar_t<T> b);
template <class T> Var<T> div(detail::scalar_t<T> a, const Var<T>& b);
/// -x
template <class T> Var<T> neg(const Var<T>& x);

template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b)
{
    return add(a, b);
}
template <class T> Var<T> operator+(const Var<T>& a, detail::scalar_t<T> b)
{
    return add(a, b);
}
template <class T> Var<T> operator+(detail::scalar_t<T> a, const Var<T>& b)
{
    return add(a, b);
}
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b)
{
    return sub(a, b);
}
template <class T> Var<T> operator-(const Var<T>& a, detail::scalar_t<T> b)
{
    return sub(a, b);
}
template <class T> Var<T> operator-(detail::scalar_t<T> a, const Var<T>& b)
{
    return sub(a, b);
}
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
template <class T> Var<T> operator-(const Var<T>& x)
{
    return neg(x);
}

// --- linear algebra and shape ----------------------------------------------------------

/// Matrix product of 2-D a [m, k] and b [k, n] -> [m, n]. Runs BLAS gemm (with the
/// backward's transposes folded into the call) above a small size, a plain loop below.
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
/// x @ w + b for x [batch, in], w [in, out], b [out]: one tape entry instead of two.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b);
/// Transpose of a 2-D Var.
template <class T> Var<T> transpose(const Var<T>& x);
/// Same elements in a new shape with the same number of elements (row-major order).
template <class T> Var<T> reshape(const Var<T>& x, const std::vector<std::size_t>& shape);

// --- reductions (axis may be negative, counted from the end) ---------------------------

/// Sum of all elements (rank-0 result).
template <class T> Var<T> sum(const Var<T>& x);
/// Sum along one axis (the axis is removed).
template <class T> Var<T> sum(const Var<T>& x, std::ptrdiff_t axis);
/// Mean of all elements (rank-0 result).
template <class T> Var<T> mean(const Var<T>& x);
/// Mean along one axis (the axis is removed).
template <class T> Var<T> mean(const Var<T>& x, std::ptrdiff_t axis);

// --- elementwise functions --------------------------------------------------------------

template <class T> Var<T> exp(const Var<T>& x);
template <class T> Var<T> log(const Var<T>& x);
template <class T> Var<T> sqrt(const Var<T>& x);
template <class T> Var<T> square(const Var<T>& x);
/// x ** exponent.
template <class T> Var<T> pow(const Var<T>& x, detail::scalar_t<T> exponent);
/// 1 / (1 + exp(-x)), finite for every finite x.
template <class T> Var<T> sigmoid(const Var<T>& x);
template <class T> Var<T> tanh(const Var<T>& x);
/// max(x, 0); the gradient at exactly 0 is 0 (as PyTorch).
template <class T> Var<T> relu(const Var<T>& x);

/// Zeroes each element with probability p and scales the rest by 1 / (1 - p); the mask
/// is drawn from `gen` (same generator state, same mask). Layers use tg::nn::Dropout.
template <class T> Var<T> dropout(const Var<T>& x, detail::scalar_t<T> p, Generator& gen);

// --- normalisations and losses -----------------------------------------------------------

/// exp(x) / sum(exp(x)) along an axis, computed stably (max subtracted).
template <class T> Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis);
/// x - log(sum(exp(x))) along an axis, computed stably.
template <class T> Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis);
/// mean((pred - target)^2) over all elements (PyTorch's default reduction).
template <class T> Var<T> mse_loss(const Var<T>& pred, const Var<T>& target);
/// mean over N of -log_softmax(logits)[i, labels[i]] for logits [N, C], labels [N] in [0, C).
template <class T> Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<std::int64_t>& labels);
/// mean of max(x, 0) - x * t + log(1 + exp(-|x|)): sigmoid + binary cross-entropy in one
/// stable step. `targets` has the logits' shape.
template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets);

}  // namespace tg
