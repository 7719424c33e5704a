#pragma once
// The reverse sweeps behind Var::backward and tg::grad (sweep.cpp).

#include <xtensor/xarray.hpp>

#include "tapegrad/var.hpp"

namespace tg::detail {

/// Backpropagates from `out` (seeded with `seed`, or ones when null) into every leaf that
/// requires grad: first order into grad(), or, with create_graph, recorded (grad_var()).
template <class T> void backward_from(const Var<T>& out, const xt::xarray<T>* seed, BackwardOptions options);

}  // namespace tg::detail
