#pragma once
/// \file tensor.hpp
/// Tensors as torch's functions make and show them: constants filled with random or fixed
/// values (randn, rand, zeros, ones, full, arange), reshape with one size inferred (-1), and
/// printing a Var.
///
/// \code
/// tg::Var<float> x = tg::randn({2, 3});            // float unless asked: tg::randn<double>({2, 3})
/// tg::Var<float> y = tg::reshape(x, {-1});          // [6]
/// std::cout << y << '\n';                           // tensor([...], shape=[6], dtype=float32)
/// \endcode

#include <cstddef>
#include <initializer_list>
#include <iosfwd>
#include <type_traits>
#include <vector>

#include "tapegrad/random.hpp"
#include "tapegrad/var.hpp"

namespace tg {

// --- constants (torch's factory functions; T is float unless given) ----------------------

/// Samples of the standard normal distribution (torch.randn), drawn in double from `gen`
/// and rounded to T. A constant: wrap its value in tg::parameter to train it.
template <class T = float> Var<T> randn(const std::vector<std::size_t>& shape, Generator& gen = default_generator());
/// Samples uniform in [0, 1) (torch.rand), drawn as randn's.
template <class T = float> Var<T> rand(const std::vector<std::size_t>& shape, Generator& gen = default_generator());
/// All zeros (torch.zeros).
template <class T = float> Var<T> zeros(const std::vector<std::size_t>& shape);
/// All ones (torch.ones).
template <class T = float> Var<T> ones(const std::vector<std::size_t>& shape);
/// Every element `value` (torch.full).
template <class T = float> Var<T> full(const std::vector<std::size_t>& shape, double value);
/// 0, 1, ..., n - 1 (torch.arange(n)).
template <class T = float> Var<T> arange(std::size_t n);
/// start, start + step, ... up to but excluding end (torch.arange(start, end, step)):
/// ceil((end - start) / step) elements; step must be nonzero and point from start to end
/// (or the result is empty when start == end).
template <class T = float> Var<T> arange(double start, double end, double step = 1.0);

// --- reshape with an inferred size -------------------------------------------------------

/// One size in a braced shape given to reshape: any integer, and -1 for the size inferred
/// from the others. It lets `tg::reshape(x, {n, 320})` (n a std::size_t) and
/// `tg::reshape(x, {-1, 4})` both pick the braced overload below.
class ShapeDim {
public:
    /// Any integer but bool; a negative one is kept as negative_size() (reshape accepts only -1).
    template <class I, class = std::enable_if_t<std::is_integral<I>::value && !std::is_same<I, bool>::value>>
    constexpr ShapeDim(I value) noexcept  // implicit: the elements of a braced list convert
    {
        if constexpr (std::is_signed<I>::value) {
            if (value < 0) {
                negative_ = static_cast<std::ptrdiff_t>(value);
                return;
            }
        }
        size_ = static_cast<std::size_t>(value);
    }
    /// True for a negative size (-1, or an invalid one).
    constexpr bool negative() const noexcept { return negative_ != 0; }
    /// The negative size, when negative().
    constexpr std::ptrdiff_t negative_size() const noexcept { return negative_; }
    /// The size, when not negative().
    constexpr std::size_t size() const noexcept { return size_; }

private:
    std::size_t size_ = 0;
    std::ptrdiff_t negative_ = 0;
};

/// x with a new shape of the same number of elements (row-major order), where at most one
/// size may be -1: that size is inferred from x's element count and the others (torch's
/// reshape). Throws tg::Error, naming reshape and the shapes, for two -1s, another negative
/// size, an element count that the other sizes do not divide, or a -1 beside a zero size.
template <class T> Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& shape);

/// reshape for a braced shape of any integers, -1 included: `tg::reshape(h, {h.shape()[0], -1})`.
template <class T> Var<T> reshape(const Var<T>& x, std::initializer_list<ShapeDim> shape);

// --- printing ----------------------------------------------------------------------------

/// Writes the Var as torch prints a tensor: its values, nested by dimension, in one format
/// for all elements (integers as "1.", otherwise 4 decimals, or scientific notation when
/// the magnitudes span more than 1000x or leave [1e-4, 1e8]), long dimensions summarised
/// with `...` beyond 1000 elements, then its shape, its dtype (float32 or float64) and
/// whether it requires grad: `tensor([[ 0.5000, -1.2500]], shape=[1, 2], dtype=float32)`.
/// An undefined Var prints as `tensor(undefined)`; a stale one throws, as any use does.
template <class T> std::ostream& operator<<(std::ostream& out, const Var<T>& v);

}  // namespace tg
