#pragma once
/// \file tape.hpp
/// The per-thread tape: a linear record of the ops of one pass, reused pass after pass.
///
/// Most users never touch it directly; `tg::tape_size<T>()` and `tg::clear_tape<T>()`
/// are the public handles. Extension authors use it through `tg::record` (op.hpp).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/var.hpp"

namespace tg {

template <class T> class OpContext;
template <class T> class VjpContext;

namespace detail {

template <class T> struct Entry;

/// The first-order backward of an entry: the op's fused kernel, or its vjp rule run on
/// plain values when the op has no kernel.
template <class T> using BackwardFn = void (*)(Entry<T>&, OpContext<T>&);
/// The op's vjp rule, run on Vars so that what it computes is recorded (create_graph).
template <class T> using VjpFn = void (*)(Entry<T>&, VjpContext<T>&);

/// One recorded op: its output node, its inputs, its backward and what that needs.
/// Entries and their buffers are kept across passes; a steady-state training step writes
/// into the same memory every time.
template <class T> struct Entry {
    Node<T> out;
    std::vector<Node<T>*> inputs;
    std::vector<std::uint32_t> input_versions;
    BackwardFn<T> backward = nullptr;
    VjpFn<T> vjp = nullptr;            ///< null when the op states no vjp rule
    void (*destroy)(void*) = nullptr;  ///< destroys a non-trivial op state
    void* state = nullptr;             ///< the op object (inline_state or heap)
    bool state_on_heap = false;
    const char* name = "";
    alignas(16) unsigned char inline_state[160];          ///< room for an op holding two shapes (sum, mean)
    std::vector<xt::xarray<T>> saved;                     ///< values an op keeps for its backward
    std::vector<xt::xarray<std::int64_t>> saved_indices;  ///< integers it keeps (labels, arg-max positions)
    std::vector<void*> recorded_at;                       ///< return addresses, in anomaly mode only

    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry() { clear(); }

    /// Releases the inputs and the op state of the previous use of this entry.
    void clear() noexcept
    {
        for (Node<T>* n : inputs) {
            if (n->tape == nullptr && --n->refs == 0) delete_leaf(n);
        }
        inputs.clear();
        input_versions.clear();
        if (state != nullptr) {
            if (destroy != nullptr) destroy(state);
            if (state_on_heap) ::operator delete(state);
        }
        state = nullptr;
        destroy = nullptr;
        state_on_heap = false;
        backward = nullptr;
        vjp = nullptr;
        recorded_at.clear();
    }
};

/// The tape of one thread for one scalar type.
template <class T> class Tape : public TapeState {
public:
    /// The calling thread's tape.
    static Tape& current();

    Tape() = default;
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;
    ~Tape() { free_entries(); }

    /// The next entry of the current pass. Starts a new pass (and makes every Var of the
    /// previous one stale) when the current pass's graph has been freed by a backward.
    Entry<T>& append()
    {
        if (graph_freed) {
            ++pass;
            graph_freed = false;
            size_ = 0;
        }
        if (size_ == capacity_) grow();
        Entry<T>& e = chunks_[size_ / kChunk][size_ % kChunk];
        e.clear();
        e.out.index = size_;
        ++size_;
        return e;
    }

    /// Drops the entries from `n` on (an op whose forward threw; a functional transform
    /// that leaves the pass as it found it). Their buffers stay for reuse.
    void truncate(std::size_t n) noexcept
    {
        while (size_ > n) {
            --size_;
            chunks_[size_ / kChunk][size_ % kChunk].clear();
        }
    }

    std::size_t size() const noexcept { return size_; }
    Entry<T>& entry(std::size_t i) noexcept { return chunks_[i / kChunk][i % kChunk]; }
    const Entry<T>& entry(std::size_t i) const noexcept { return chunks_[i / kChunk][i % kChunk]; }

    /// Frees every entry and its buffers; every Var of the tape becomes stale.
    void clear()
    {
        ++pass;
        graph_freed = false;
        size_ = 0;
        free_entries();
    }

    /// Number of entries allocated (kept across passes).
    std::size_t capacity() const noexcept { return capacity_; }

private:
    static constexpr std::size_t kChunk = 128;
    // Every entry lets go of its inputs before any chunk is freed: an entry's inputs may be
    // nodes of entries in other chunks (and entries of ended passes still hold theirs).
    void free_entries() noexcept
    {
        for (std::size_t i = 0; i < capacity_; ++i) entry(i).clear();
        chunks_.clear();
        capacity_ = 0;
    }

    void grow()
    {
        chunks_.emplace_back(new Entry<T>[kChunk]);
        for (std::size_t i = 0; i < kChunk; ++i) chunks_.back()[i].out.tape = this;
        capacity_ += kChunk;
    }

    std::vector<std::unique_ptr<Entry<T>[]>> chunks_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

extern template class Tape<float>;
extern template class Tape<double>;

/// Frees the calling thread's pool of large buffers (see acquire in var.hpp).
template <class T> void release_pooled_buffers() noexcept;

}  // namespace detail

/// Number of ops recorded in the calling thread's current pass.
template <class T> std::size_t tape_size()
{
    return detail::Tape<T>::current().size();
}

/// Number of tape entries the calling thread keeps allocated for reuse.
template <class T> std::size_t tape_capacity()
{
    return detail::Tape<T>::current().capacity();
}

/// Frees the calling thread's tape (all entries and buffers) and its pool of large buffers
/// kept for reuse. Every Var recorded on it becomes stale.
template <class T> void clear_tape()
{
    detail::Tape<T>::current().clear();
    detail::release_pooled_buffers<T>();
}

/// Ends the calling thread's current pass as a backward without retain_graph would: the
/// next op starts a new pass in the same entries and buffers, and the pass's Vars become
/// stale once it does. For passes that no backward ends: ones kept by retain_graph or
/// create_graph (a Newton iteration's Hessian-vector products), or evaluations recorded
/// and never backpropagated.
template <class T> void end_pass()
{
    detail::Tape<T>::current().graph_freed = true;
}

}  // namespace tg
