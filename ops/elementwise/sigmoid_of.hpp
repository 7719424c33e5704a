#pragma once
// sigmoid(z) as the rules of log_sigmoid and softplus need it: for the kernel, the plain
// sigmoid; for the rule's Vars, exp(log_sigmoid(z)), whose own derivative
// sigmoid(z) sigmoid(-z) keeps full precision where sigmoid(z) is near 1 (sigmoid's rule,
// y (1 - y), cancels there).

#include "tapegrad/kit.hpp"

namespace tg {

// Declared here as well as in log_sigmoid.cpp's public block, without a default argument,
// so that softplus.cpp can use it whichever of the two files its translation unit sees first.
template <class T> Var<T> log_sigmoid(const Var<T>& x);

namespace elementwise_detail {

template <class V> V sigmoid_of(const V& z)
{
    return fn::sigmoid(z);
}
template <class T> Var<T> sigmoid_of(const Var<T>& z)
{
    return exp(log_sigmoid(z));
}

}  // namespace elementwise_detail
}  // namespace tg
