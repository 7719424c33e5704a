#pragma once
// The registry behind tg::register_post_accumulate_grad_hook (hooks.cpp), as the engine
// sees it: a count that is zero while no hook exists (so that backward and leaf deletion
// pay one relaxed load for the feature), and the calls that look hooks up and run them.

#include <atomic>
#include <cstddef>

#include "tapegrad/var.hpp"

namespace tg::detail {

/// Leaves of scalar type T with at least one hook.
template <class T> inline std::atomic<std::size_t> hooked_leaves{0};

/// True when some leaf of type T has a hook.
template <class T> inline bool any_hooks() noexcept
{
    return hooked_leaves<T>.load(std::memory_order_relaxed) != 0;
}

/// True when `leaf` has a hook.
template <class T> bool has_hooks(const Node<T>* leaf);

/// Runs `leaf`'s hooks in registration order, with recording off.
template <class T> void run_hooks(Node<T>* leaf);

/// Forgets `leaf`'s hooks (its last handle went away).
template <class T> void drop_hooks(const Node<T>* leaf) noexcept;

}  // namespace tg::detail
