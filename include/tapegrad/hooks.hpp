#pragma once
/// \file hooks.hpp
/// Gradient-ready hooks: code that runs as soon as backward has finished a parameter's
/// gradient, while the rest of the backward is still to come (as torch's
/// Tensor.register_post_accumulate_grad_hook). What they are for: starting work on a
/// gradient early, such as the allreduce of a data-parallel run (tg::dist::DataParallel
/// overlaps communication with backward this way), per-parameter optimiser steps, or
/// gradient statistics.

#include <cstdint>
#include <functional>

#include "tapegrad/var.hpp"

namespace tg {

/// A registered hook. remove() unregisters it; letting the handle go does not (keep the
/// handle to remove the hook later). Copies refer to the same registration.
class HookHandle {
public:
    HookHandle() = default;
    /// Unregisters the hook; does nothing if it was removed already or its parameter is gone.
    void remove() noexcept;
    /// True until remove() (or the parameter's end).
    bool active() const noexcept;

private:
    template <class T>
    friend HookHandle register_post_accumulate_grad_hook(const Var<T>&, std::function<void(const Var<T>&)>);
    bool (*find_)(const void* node, std::uint64_t id, bool erase) noexcept = nullptr;
    const void* node_ = nullptr;
    std::uint64_t id_ = 0;
};

/// Runs `hook(param)` each time a backward has finished accumulating `param`'s gradient:
/// after the last op of the pass that uses `param` has run its backward, so `param.grad()`
/// holds its final value for this backward, and before the ops recorded earlier than that
/// use have run theirs. Hooks of different parameters therefore run in the order backward
/// completes the gradients (for a feed-forward model, the last layer's first).
///
/// - Only Var::backward runs hooks (first order and create_graph); tg::grad does not, since
///   it leaves grad() untouched (as torch.autograd.grad).
/// - A backward that does not reach `param` does not run its hooks.
/// - Hooks run on the thread that calls backward, in registration order, with recording
///   off (as under NoGradGuard). A hook may read and change `param`'s gradient; it must not
///   change values that the rest of the backward reads. An exception from a hook ends the
///   backward and propagates out of it.
/// - The registry holds `hook` until remove() or until the parameter's last handle goes
///   away; a hook that captures a handle to its own parameter keeps the parameter alive, so
///   use the argument instead.
///
/// Throws tg::Error if `param` is undefined, not a leaf, does not require grad, or `hook`
/// is empty.
template <class T>
HookHandle register_post_accumulate_grad_hook(const Var<T>& param, std::function<void(const Var<T>&)> hook);

///@{
/// register_post_accumulate_grad_hook, compiled once in the library for float and double.
extern template HookHandle register_post_accumulate_grad_hook<float>(const Var<float>&,
                                                                     std::function<void(const Var<float>&)>);
extern template HookHandle register_post_accumulate_grad_hook<double>(const Var<double>&,
                                                                      std::function<void(const Var<double>&)>);
///@}

/// Number of hooks registered on `param` (0 for an undefined Var).
template <class T> std::size_t num_post_accumulate_grad_hooks(const Var<T>& param);

}  // namespace tg
