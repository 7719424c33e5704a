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
#include "tapegrad/kit/simd.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/testing/registry.hpp"

// NOLINTBEGIN(bugprone-macro-parentheses): NAME is the name of a function template here
#if defined(TAPEGRAD_SIMD_VARIANT)
// The wide SIMD copy of an op file (kit/simd.hpp) defines no function of the library: it
// only names the op's float and double forms in a function that is never emitted, so that
// the rules they record (e.g. a template rule for a scalar operand) are instantiated and
// enroll their wide loops.
#define TAPEGRAD_SIMD_TOUCH(FN, ...)                                                                                   \
    [[maybe_unused]] static void TAPEGRAD_OP_CAT(TAPEGRAD_OP_CAT(tapegrad_simd_touch_, TAPEGRAD_OP_ID), __LINE__)()    \
    {                                                                                                                  \
        (void)static_cast<__VA_ARGS__>(&FN);                                                                           \
    }
#define TAPEGRAD_INSTANTIATE_UNARY(NAME)                                                                               \
    [[maybe_unused]] static void TAPEGRAD_OP_CAT(tapegrad_simd_touch_, TAPEGRAD_OP_ID)()                               \
    {                                                                                                                  \
        (void)&NAME<float>;                                                                                            \
        (void)&NAME<double>;                                                                                           \
    }
#define TAPEGRAD_INSTANTIATE_BINARY(NAME)                                                                              \
    [[maybe_unused]] static void TAPEGRAD_OP_CAT(tapegrad_simd_touch_, TAPEGRAD_OP_ID)()                               \
    {                                                                                                                  \
        (void)static_cast<::tg::Var<float> (*)(const ::tg::Var<float>&, const ::tg::Var<float>&)>(&NAME<float>);       \
        (void)static_cast<::tg::Var<double> (*)(const ::tg::Var<double>&, const ::tg::Var<double>&)>(&NAME<double>);   \
        (void)static_cast<::tg::Var<float> (*)(const ::tg::Var<float>&, float)>(&NAME<float>);                         \
        (void)static_cast<::tg::Var<double> (*)(const ::tg::Var<double>&, double)>(&NAME<double>);                     \
        (void)static_cast<::tg::Var<float> (*)(float, const ::tg::Var<float>&)>(&NAME<float>);                         \
        (void)static_cast<::tg::Var<double> (*)(double, const ::tg::Var<double>&)>(&NAME<double>);                     \
    }
#else
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
#endif
// NOLINTEND(bugprone-macro-parentheses)
