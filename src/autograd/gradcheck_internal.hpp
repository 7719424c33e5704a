#pragma once
// gradcheck's comparison on leaves that already exist, for the module checks (src/nn): the
// function is evaluated with those leaves perturbed in place, and messages name them.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/gradcheck.hpp"

namespace tg::detail {

/// The multi-index of element `flat` of a row-major array of `shape` (for messages).
template <class S> std::vector<std::size_t> unravel(std::size_t flat, const S& shape)
{
    std::vector<std::size_t> idx(shape.size());
    for (std::size_t j = shape.size(); j-- > 0;) {
        idx[j] = flat % shape[j];
        flat /= shape[j];
    }
    return idx;
}

/// The function under check: the leaves -> its outputs; `recorded` is false for the
/// finite-difference evaluations.
using LeafEval = std::function<std::vector<Var<double>>(const std::vector<Var<double>>&, bool recorded)>;

/// gradcheck's comparison with `leaves` as the inputs: the first parameter_names.size() of
/// them are named parameters in messages (a further one is gradgradcheck's grad_outputs);
/// with outputs_are_gradients, output k is the gradient of parameter k.
GradcheckResult gradcheck_leaves(const char* who, const LeafEval& f, const std::vector<Var<double>>& leaves,
                                 const std::vector<std::string>& parameter_names, bool outputs_are_gradients,
                                 const GradcheckOptions& options);

}  // namespace tg::detail
