#pragma once
/// \file autograd.hpp
/// Gradients as values: `tg::grad` (torch.autograd.grad), gradients of gradients, the
/// functional transforms (jacobian, hessian, hvp, vjp, jvp), anomaly mode and graph export.

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/var.hpp"

namespace tg {

namespace nn {
template <class T> class Module;
}  // namespace nn

/// Options for tg::grad.
struct GradOptions {
    /// Record the backward itself, so the results can be differentiated again.
    bool create_graph = false;
    /// Keep the pass for another backward (implied by create_graph).
    bool retain_graph = false;
    /// An input the outputs do not depend on gets zeros of its shape instead of an error.
    bool allow_unused = false;
};

/// d(outputs)/d(inputs) contracted with grad_outputs (default: ones for one-element
/// outputs), one Var per input, in order: sum over k of grad_outputs[k] . d outputs[k] / d
/// inputs[i]. Leaves' grad() is left untouched (as torch.autograd.grad). Inputs may be
/// parameters or intermediate Vars of the current pass. With create_graph the results are
/// Vars of the pass that can be differentiated again; without, they are constants.
template <class T>
std::vector<Var<T>> grad(const std::vector<Var<T>>& outputs, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs = {}, GradOptions options = {});

///@{
/// tg::grad for float and double Vars without naming the type, so that braced lists work:
/// `tg::grad({loss}, {w, b}, {}, {true})` (a template cannot deduce T from them).
inline std::vector<Var<double>> grad(const std::vector<Var<double>>& outputs, const std::vector<Var<double>>& inputs,
                                     const std::vector<Var<double>>& grad_outputs = {}, GradOptions options = {})
{
    return grad<double>(outputs, inputs, grad_outputs, options);
}
inline std::vector<Var<float>> grad(const std::vector<Var<float>>& outputs, const std::vector<Var<float>>& inputs,
                                    const std::vector<Var<float>>& grad_outputs = {}, GradOptions options = {})
{
    return grad<float>(outputs, inputs, grad_outputs, options);
}
///@}

/// The same value with no history: a constant (a copy) that requires no grad.
template <class T> Var<T> detach(const Var<T>& v);

// --- functional transforms (as torch.autograd.functional) -------------------------------
// f maps a Var to a Var. Each transform evaluates f on a fresh parameter holding x, on the
// calling thread's tape; when it started in the middle of a pass it leaves that pass as it
// found it (the entries it recorded are dropped).

/// d f(x) / d x, shape f(x).shape + x.shape.
template <class T> xt::xarray<T> jacobian(const std::function<Var<T>(const Var<T>&)>& f, const xt::xarray<T>& x);
/// Second derivatives of a one-element f, shape x.shape + x.shape.
template <class T> xt::xarray<T> hessian(const std::function<Var<T>(const Var<T>&)>& f, const xt::xarray<T>& x);
/// Hessian-vector product H(x) v of a one-element f (double backward), shape of x.
template <class T>
xt::xarray<T> hvp(const std::function<Var<T>(const Var<T>&)>& f, const xt::xarray<T>& x, const xt::xarray<T>& v);
/// Vector-Jacobian product u^T J(x), shape of x; u has the shape of f(x).
template <class T>
xt::xarray<T> vjp(const std::function<Var<T>(const Var<T>&)>& f, const xt::xarray<T>& x, const xt::xarray<T>& u);
/// Jacobian-vector product J(x) v, shape of f(x); v has the shape of x. Computed by the
/// double-vjp trick (the vjp is linear in u, so differentiating it with respect to u gives J v).
template <class T>
xt::xarray<T> jvp(const std::function<Var<T>(const Var<T>&)>& f, const xt::xarray<T>& x, const xt::xarray<T>& v);

/// Hessian-vector product of a module's one-element loss with respect to its parameters:
/// H v by parameter name, for the direction `v` given by parameter name (names not given
/// count as zeros; an unknown name or a shape that differs from the parameter's is a
/// tg::Error). `loss` computes the loss from the module as it stands; what it records is
/// dropped afterwards, as in the other transforms. Every parameter that requires grad gets an
/// entry (zeros when the loss does not depend on it).
template <class T>
std::map<std::string, xt::xarray<T>> hvp(nn::Module<T>& module, const std::function<Var<detail::scalar_t<T>>()>& loss,
                                         const std::map<std::string, xt::xarray<detail::scalar_t<T>>>& v);

namespace detail {
template <class F, class T>
using if_callable = std::enable_if_t<std::is_invocable_r<Var<T>, F, const Var<T>&>::value &&
                                     !std::is_same<std::decay_t<F>, std::function<Var<T>(const Var<T>&)>>::value>;
}  // namespace detail

///@{
/// jacobian, hessian, hvp, vjp and jvp for any callable f taking and returning a Var (a lambda), from whose type
/// the std::function forms cannot deduce T.
template <class F, class T, class = detail::if_callable<F, T>> xt::xarray<T> jacobian(F&& f, const xt::xarray<T>& x)
{
    return jacobian<T>(std::function<Var<T>(const Var<T>&)>(std::forward<F>(f)), x);
}
template <class F, class T, class = detail::if_callable<F, T>> xt::xarray<T> hessian(F&& f, const xt::xarray<T>& x)
{
    return hessian<T>(std::function<Var<T>(const Var<T>&)>(std::forward<F>(f)), x);
}
template <class F, class T, class = detail::if_callable<F, T>>
xt::xarray<T> hvp(F&& f, const xt::xarray<T>& x, const xt::xarray<T>& v)
{
    return hvp<T>(std::function<Var<T>(const Var<T>&)>(std::forward<F>(f)), x, v);
}
template <class F, class T, class = detail::if_callable<F, T>>
xt::xarray<T> vjp(F&& f, const xt::xarray<T>& x, const xt::xarray<T>& u)
{
    return vjp<T>(std::function<Var<T>(const Var<T>&)>(std::forward<F>(f)), x, u);
}
template <class F, class T, class = detail::if_callable<F, T>>
xt::xarray<T> jvp(F&& f, const xt::xarray<T>& x, const xt::xarray<T>& v)
{
    return jvp<T>(std::function<Var<T>(const Var<T>&)>(std::forward<F>(f)), x, v);
}
///@}

// --- anomaly mode -----------------------------------------------------------------------

/// RAII: while a guard is alive, the calling thread checks every op's forward output and
/// every gradient its backward writes for NaN and Inf. The first one found throws a
/// tg::Error naming the op, the shapes, forward or backward, the op's position in the
/// pass, the ops that produced its inputs, and the call stack where the op was recorded.
/// Off by default; costs nothing when off.
class DetectAnomalyGuard {
public:
    DetectAnomalyGuard() noexcept : previous_(detail::thread_flags.detect_anomaly)
    {
        detail::thread_flags.detect_anomaly = true;
    }
    ~DetectAnomalyGuard() { detail::thread_flags.detect_anomaly = previous_; }
    DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
    DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

private:
    bool previous_;
};

/// True while a DetectAnomalyGuard is alive on this thread.
inline bool is_anomaly_enabled() noexcept
{
    return detail::thread_flags.detect_anomaly;
}

// --- graph export -----------------------------------------------------------------------

/// Graphviz DOT text of the recorded graph that leads to `v`: one box per op (name, output
/// shape), one ellipse per leaf (shape; parameters filled, and labelled with their name when
/// `names` has them, e.g. `model.named_parameters()`), edges from inputs to ops. Render with
/// `dot -Tsvg graph.dot -o graph.svg`.
template <class T> std::string to_dot(const Var<T>& v, const std::vector<std::pair<std::string, Var<T>>>& names = {});

}  // namespace tg
