#pragma once
/// \file error.hpp
/// The single exception type thrown for every bad input, and shape formatting.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tg {

/// Thrown for every bad input: shape mismatches, stale Vars, spent tapes, bad files.
/// The message starts with the op or function name, e.g.
/// `matmul: inner dimensions differ: a is [10, 3], b is [2, 4]`.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Formats a shape as `[2, 3]` (`[]` for a rank-0 scalar).
template <class Shape> std::string format_shape(const Shape& shape)
{
    std::ostringstream out;
    out << '[';
    bool first = true;
    for (auto d : shape) {
        if (!first) out << ", ";
        out << d;
        first = false;
    }
    out << ']';
    return out.str();
}

namespace detail {

/// The number of elements of `shape`, or nothing when the shape cannot be indexed: when
/// the product of its nonzero dims exceeds PTRDIFF_MAX (xtensor's strides are signed and
/// are products of the trailing dims, zero or not), so [0, 2^32, 2^32] is refused although
/// it holds no element.
template <class Shape> std::optional<std::size_t> checked_size(const Shape& shape)
{
    constexpr std::size_t limit = static_cast<std::size_t>(PTRDIFF_MAX);
    std::size_t nonzero = 1;
    bool empty = false;
    for (auto d : shape) {
        const auto u = static_cast<std::size_t>(d);
        if (u == 0) {
            empty = true;
            continue;
        }
        if (__builtin_mul_overflow(nonzero, u, &nonzero) || nonzero > limit) return std::nullopt;
    }
    return empty ? 0 : nonzero;
}

}  // namespace detail

/// The number of elements of `shape`; throws `<who>: shape [...] has too many elements`
/// when the product of its dims overflows (see detail::checked_size).
template <class Shape> std::size_t checked_size(const char* who, const Shape& shape)
{
    const std::optional<std::size_t> n = detail::checked_size(shape);
    if (!n) {
        throw Error(std::string(who) + ": shape " + format_shape(shape) + " has too many elements");
    }
    return *n;
}

/// A number as a message shows it: the shortest form that reads back the same (1.5, 1e-30, inf).
inline std::string format_number(double v)
{
    std::ostringstream out;
    out.precision(17);
    out << v;
    std::string s = out.str();
    std::ostringstream shorter;
    shorter << v;  // 6 significant digits, as people write numbers
    return std::stod(shorter.str()) == v ? shorter.str() : s;
}

}  // namespace tg
