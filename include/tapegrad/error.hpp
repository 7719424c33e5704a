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

}  // namespace tg
