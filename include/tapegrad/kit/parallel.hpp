#pragma once
/// \file kit/parallel.hpp
/// Splitting a kernel's independent items (planes, channels) over the threads that run
/// convolutions. When the build has oneDNN, those are its OpenMP threads, and between two
/// convolutions they sit idle: a pooling or normalisation kernel of a convolutional network
/// can use them. Without oneDNN, or for small work, everything runs on the calling thread.
//
// Each item is handled by exactly one call of `f`, and which items go together never
// depends on timing, so a kernel whose items are independent gives the same result at any
// thread count.

#include <cstddef>
#include <type_traits>
#include <utility>

namespace tg::kernel {

/// Work below this many element operations runs on the calling thread: waking the other
/// threads costs a few microseconds.
inline constexpr std::size_t parallel_min_work = 1 << 15;

/// Calls fn(ctx, begin, end) on contiguous chunks covering [0, n), one chunk per thread,
/// when n * cost_per_item reaches parallel_min_work and more than one thread is set
/// (tg::set_num_threads); otherwise fn(ctx, 0, n). fn must not throw.
void parallel_chunks(std::size_t n, std::size_t cost_per_item, void (*fn)(void*, std::size_t, std::size_t),
                     void* ctx) noexcept;

/// parallel_chunks with a callable f(begin, end).
template <class F> void parallel_for(std::size_t n, std::size_t cost_per_item, F&& f) noexcept
{
    auto call = [](void* c, std::size_t b, std::size_t e) { (*static_cast<std::remove_reference_t<F>*>(c))(b, e); };
    parallel_chunks(n, cost_per_item, call, const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace tg::kernel
