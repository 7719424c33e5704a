#pragma once
// What gather and scatter_add share: the walk over an index array of x's rank that pairs
// each of its positions with the element of x it names along `axis`.

#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::gather_scatter {

/// Calls f(i, offset) for every flat position i of `index` (same rank as x, each dim at
/// most x's except along axis): offset is the flat position in x of the element whose
/// coordinates are i's, with index[i] in place of the coordinate along `axis`.
template <class S, class F>
void for_each(const S& x_shape, std::size_t axis, const xt::xarray<std::int64_t>& index, F f)
{
    const std::size_t rank = x_shape.size();
    std::vector<std::size_t> stride(rank, 1), coord(rank, 0);
    for (std::size_t j = rank; j-- > 1;) stride[j - 1] = stride[j] * x_shape[j];
    const auto& is = index.shape();
    std::size_t base = 0;  // the offset of coord without its axis component
    for (std::size_t i = 0; i < index.size(); ++i) {
        f(i, base + static_cast<std::size_t>(index.data()[i]) * stride[axis]);
        for (std::size_t j = rank; j-- > 0;) {  // next coordinate, row-major
            if (++coord[j] < is[j]) {
                if (j != axis) base += stride[j];
                break;
            }
            if (j != axis) base -= (coord[j] - 1) * stride[j];
            coord[j] = 0;
        }
    }
}

/// Checks index against x for gather and scatter_add: same rank, each dim at most x's off
/// the axis, every value inside axis's range.
template <class S>
void check(const char* op, const S& x_shape, std::size_t axis, std::ptrdiff_t axis_arg,
           const xt::xarray<std::int64_t>& index)
{
    const auto& is = index.shape();
    bool fits = is.size() == x_shape.size();
    for (std::size_t j = 0; fits && j < is.size(); ++j) fits = j == axis || is[j] <= x_shape[j];
    if (!fits) {
        throw Error(std::string(op) + ": index has shape " + format_shape(is) + " but x has " + format_shape(x_shape) +
                    "; it needs x's rank and no dim larger than x's except along axis " + std::to_string(axis_arg));
    }
    for (std::size_t i = 0; i < index.size(); ++i) {
        const std::int64_t k = index.data()[i];
        if (k < 0 || static_cast<std::size_t>(k) >= x_shape[axis]) {
            throw Error(std::string(op) + ": index " + std::to_string(k) + " at flat position " + std::to_string(i) +
                        " is out of range for axis " + std::to_string(axis_arg) + " of shape " + format_shape(x_shape));
        }
    }
}

}  // namespace tg::gather_scatter
