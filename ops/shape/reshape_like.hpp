#pragma once
// What flatten, unsqueeze and squeeze share: each is a reshape (same elements, same order)
// whose new shape follows from an axis rule, so each records one reshape entry.

#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::shape_ops {

template <class S> std::vector<std::size_t> as_vector(const S& s)
{
    return std::vector<std::size_t>(s.begin(), s.end());
}

}  // namespace tg::shape_ops
