#pragma once
/// \file gradcheck.hpp
/// Checks a function's tape gradients against central finite differences, element by
/// element of the full Jacobian, and says exactly where they disagree.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/var.hpp"

namespace tg {

namespace nn {
template <class T> class Module;
}  // namespace nn

/// Tolerances; the defaults are PyTorch's gradcheck defaults.
struct GradcheckOptions {
    double eps = 1e-6;   ///< finite-difference step
    double atol = 1e-5;  ///< absolute tolerance
    double rtol = 1e-3;  ///< relative tolerance: |analytic - numerical| <= atol + rtol * |numerical|
};

/// What gradcheck found. Converts to bool (true when ok).
struct GradcheckResult {
    /// Whether every entry was within tolerance.
    bool ok = true;
    double max_abs_error = 0;  ///< largest |analytic - numerical| over the Jacobian
    double max_rel_error = 0;  ///< largest |analytic - numerical| / |numerical| (numerical != 0)
    // The entry that fails worst (or, when ok, the one closest to failing):
    std::size_t output = 0;                 ///< which output (gradgradcheck: the gradient of which input)
    std::size_t input = 0;                  ///< which input (gradgradcheck: the last is grad_outputs)
    std::vector<std::size_t> input_index;   ///< which element of that input
    std::vector<std::size_t> output_index;  ///< which element of the output
    double analytic = 0;                    ///< d output / d input from the tape
    double numerical = 0;                   ///< the same by central differences
    std::string parameter;                  ///< module checks: that input's parameter name ("" otherwise)
    std::string message;                    ///< one readable line
    /// ok.
    explicit operator bool() const noexcept { return ok; }
};

/// A function checked by gradcheck, in float64: inputs to one output.
using GradcheckFn = std::function<Var<double>(const std::vector<Var<double>>&)>;
/// The same in float32.
using GradcheckFnF = std::function<Var<float>(const std::vector<Var<float>>&)>;

/// Runs f on parameters made from `inputs`, builds the full Jacobian from the tape (one
/// vector-Jacobian product per output element) and by central differences (two
/// evaluations per input element), and compares them entry by entry. Also fails when the
/// tape's gradient is all zeros but the numerical one is not. f may itself call tg::grad
/// (a gradient penalty); what it records is dropped after each evaluation.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                          const GradcheckOptions& options = {});

/// The same in float32 (use a larger eps, about 1e-3, and looser tolerances).
GradcheckResult gradcheck(const GradcheckFnF& f, const std::vector<xt::xarray<float>>& inputs,
                          const GradcheckOptions& options);

/// Second order: checks the derivatives of the vector-Jacobian product
/// g(x, v) = tg::grad(f(x), x, v, create_graph) with respect to every input x_i and to the
/// grad_outputs v (drawn uniformly in [-1, 1) from a fixed seed), the tape's (a backward
/// through the recorded backward) against central differences of first-order tg::grad, as
/// torch.autograd.gradgradcheck does. Fails when an op on the way has no vjp rule (the
/// message says which).
GradcheckResult gradgradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                              const GradcheckOptions& options = {});

/// gradcheck of a module's loss with respect to every parameter that requires grad
/// (named_parameters()): `loss` computes the loss from the module as it stands, and is
/// evaluated with the module's own parameters perturbed in place. The result names the
/// parameter (`result.parameter`), e.g. `gradcheck: parameter 'blocks.1.fc.weight' element
/// [2, 0]: analytic ... vs numerical ...`. Before every evaluation the module's buffers and
/// generators and the thread's default generator are put back as they were at the start, so
/// BatchNorm's running statistics and Dropout's masks are the same in each; afterwards
/// parameters, buffers and generators are as they were before the check.
GradcheckResult gradcheck(nn::Module<double>& module, const std::function<Var<double>()>& loss,
                          const GradcheckOptions& options = {});

/// gradgradcheck of a module's loss with respect to every parameter that requires grad: the
/// derivatives of tg::grad(loss, parameters, v, create_graph) with respect to the parameters
/// and v, as gradgradcheck; messages name the parameter and the gradient, e.g.
/// `gradgradcheck: parameter 'fc.weight' element [0, 1], gradient of 'fc.bias' element [1]: ...`.
GradcheckResult gradgradcheck(nn::Module<double>& module, const std::function<Var<double>()>& loss,
                              const GradcheckOptions& options = {});

}  // namespace tg
