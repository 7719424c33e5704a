#pragma once
/// \file kit.hpp
/// Everything an op file needs, built-in or user-written: the op kit (tg::record, the
/// contexts), registration (tapegrad/testing/registry.hpp), raw-memory kernels,
/// broadcasting, axis helpers, BLAS, the elementwise helpers whose derivative is stated
/// once, and sample generators.

#include "tapegrad/kit/axis.hpp"
#include "tapegrad/kit/blas.hpp"
#include "tapegrad/kit/broadcast.hpp"
#include "tapegrad/kit/elementwise.hpp"
#include "tapegrad/kit/kernels.hpp"
#include "tapegrad/kit/parallel.hpp"
#include "tapegrad/kit/samples.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/testing/registry.hpp"

// NOLINTBEGIN(bugprone-macro-parentheses): NAME is the name of a function template here
/// Instantiates `Var<T> NAME(const Var<T>&)` for float and double.
#define TAPEGRAD_INSTANTIATE_UNARY(NAME)                                                                               \
    template ::tg::Var<float> NAME<float>(const ::tg::Var<float>&);                                                    \
    template ::tg::Var<double> NAME<double>(const ::tg::Var<double>&);

/// Instantiates the Var-Var, Var-scalar and scalar-Var forms of a binary op.
#define TAPEGRAD_INSTANTIATE_BINARY(NAME)                                                                              \
    template ::tg::Var<float> NAME<float>(const ::tg::Var<float>&, const ::tg::Var<float>&);                           \
    template ::tg::Var<double> NAME<double>(const ::tg::Var<double>&, const ::tg::Var<double>&);                       \
    template ::tg::Var<float> NAME<float>(const ::tg::Var<float>&, float);                                             \
    template ::tg::Var<double> NAME<double>(const ::tg::Var<double>&, double);                                         \
    template ::tg::Var<float> NAME<float>(float, const ::tg::Var<float>&);                                             \
    template ::tg::Var<double> NAME<double>(double, const ::tg::Var<double>&);
// NOLINTEND(bugprone-macro-parentheses)
