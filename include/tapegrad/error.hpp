#pragma once
/// \file error.hpp
/// The single exception type thrown for every bad input, and shape formatting.

#include <cstddef>
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
