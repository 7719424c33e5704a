#pragma once
/// \file reduction.hpp
/// How a loss reduces its per-element values (as PyTorch's `reduction=`).

namespace tg {

/// mean: the mean over all elements (the default); sum: their sum; none: the per-element
/// losses, unreduced.
enum class Reduction { mean, sum, none };

}  // namespace tg
