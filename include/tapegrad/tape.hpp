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
namespace detail {

template <class T> struct Entry;

template <class T> using BackwardFn = void (*)(Entry<T>&);

/// One recorded op: its output node, its inputs, its backward and what that needs.
/// Entries and their buffers are kept across passes; a steady-state training step writes
/// into the same memory every time.
template <class T> struct Entry {
    Node<T> out;
    std::vector<Node<T>*> inputs;
    std::vector<std::uint32_t> input_versions;
    BackwardFn<T> backward = nullptr;
    void (*destroy)(void*) = nullptr;  ///< destroys a non-trivial op state
    void* state = nullptr;             ///< the op object (inline_state or heap)
    bool state_on_heap = false;
    const char* name = "";
    alignas(16) unsigned char inline_state[64];
    xt::xarray<T> saved;                    ///< scratch an op may keep for its backward
    std::vector<std::int64_t> saved_index;  ///< integer scratch (labels, argmax, ...)

    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry() { clear(); }

    /// Releases the inputs and the op state of the previous use of this entry.
    void clear() noexcept
    {
        for (Node<T>* n : inputs) {
            if (n->tape == nullptr && --n->refs == 0) delete n;
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

    /// The next entry of the current pass. Starts a new pass (and makes every Var of the
    /// previous one stale) when the current pass has been backpropagated.
    Entry<T>& append()
    {
        if (spent) {
            ++pass;
            spent = false;
            size_ = 0;
        }
        if (size_ == capacity_) grow();
        Entry<T>& e = chunks_[size_ / kChunk][size_ % kChunk];
        e.clear();
        e.out.index = size_;
        ++size_;
        return e;
    }

    /// Drops the last entry (an op whose forward threw).
    void pop() noexcept
    {
        --size_;
        chunks_[size_ / kChunk][size_ % kChunk].clear();
    }

    std::size_t size() const noexcept { return size_; }
    Entry<T>& entry(std::size_t i) noexcept { return chunks_[i / kChunk][i % kChunk]; }

    /// Frees every entry and its buffers; every Var of the tape becomes stale.
    void clear()
    {
        ++pass;
        spent = false;
        size_ = 0;
        chunks_.clear();
        capacity_ = 0;
    }

    /// Number of entries allocated (kept across passes).
    std::size_t capacity() const noexcept { return capacity_; }

private:
    static constexpr std::size_t kChunk = 128;
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

/// Frees the calling thread's tape (all entries and buffers). Every Var recorded on it
/// becomes stale. Useful after recording ops that were never backpropagated.
template <class T> void clear_tape()
{
    detail::Tape<T>::current().clear();
}

}  // namespace tg
