#pragma once
/// \file tape.hpp
/// The per-thread tape: a linear record of the ops of one pass, reused pass after pass.
///
/// Most users never touch it directly; `tg::tape_size<T>()` and `tg::clear_tape<T>()`
/// are the public handles. Extension authors use it through `tg::record` (op.hpp).

#include <cstddef>
#include <cstdint>
#include <cstring>
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

/// Where an entry is in its life within a pass.
enum class EntryState : std::uint8_t {
    pending,   ///< recorded; a backward may still walk it
    released,  ///< a backward walked it without retain_graph: walking it again is an error
    dead       ///< never backpropagated, and no handle or later entry can reach it any more
};

/// One recorded op: its output node, its inputs, its backward and what that needs.
/// Entries and their buffers are kept across passes; a steady-state training step writes
/// into the same memory every time.
template <class T> struct Entry {
    Node<T> out;
    std::vector<Node<T>*> inputs;
    /// What each leaf input was when the op was recorded: its version, and for a leaf whose
    /// value was ever handed out by mutable_value() a fingerprint of its shape (else 0:
    /// its shape cannot change), so that a leaf changed or resized in place afterwards is
    /// refused by the backward instead of read past its end. Tape inputs need no record:
    /// an op's output is never changed in place.
    struct Seen {
        std::uint64_t shape;
        std::uint32_t version;
        std::uint32_t input;  ///< which input of the op
    };
    std::vector<Seen> input_seen;
    EntryState life = EntryState::pending;
    bool inputs_dropped = false;  ///< its references to tape inputs are given back
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

    /// Releases the inputs and the op state of the previous use of this entry. Inlined into
    /// every op's record (through Tape::append): as a call it cost an elementwise op on a
    /// one-element tensor 22 more instructions, 5% of its time on the tape.
    TAPEGRAD_ALWAYS_INLINE void clear() noexcept
    {
        for (Node<T>* n : inputs) {
            if (n->tape == nullptr && --n->refs == 0) delete_leaf(n);
        }
        inputs.clear();
        input_seen.clear();
        life = EntryState::pending;
        inputs_dropped = false;
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

/// A fingerprint of a shape; 0 is never returned. Taken for leaves on the path of every op
/// and again by its backward, so the first two dimensions, which most leaves have at most,
/// are mixed in without a loop.
template <class S> TAPEGRAD_ALWAYS_INLINE std::uint64_t shape_fingerprint(const S& shape) noexcept
{
    const std::size_t rank = shape.size();
    const auto* d = shape.data();
    std::uint64_t h = 0x9E3779B97F4A7C15ull * (rank + 1);
    if (rank >= 1) h += static_cast<std::uint64_t>(d[0]) * 0xC2B2AE3D27D4EB4Full;
    if (rank >= 2) h += static_cast<std::uint64_t>(d[1]) * 0x165667B19E3779F9ull;
    for (std::size_t i = 2; i < rank; ++i) h = (h ^ static_cast<std::uint64_t>(d[i])) * 1099511628211ull;
    return h | 1;
}

/// The tape of one thread for one scalar type.
///
/// Entries of a pass live in creation order, so each entry's inputs sit below it. An entry
/// is *pending* until a backward walks it without retain_graph (*released*) or until no
/// handle and no later entry needs it any more (*dead*). Dead and released entries with no
/// handle are popped off the top as soon as they are there, so that evaluations recorded
/// and dropped (an evaluation loop without NoGradGuard) reuse the same entries; once no
/// entry is pending, the next op recycles the whole pass, and the Vars still pointing into
/// it become stale.
template <class T> class Tape : public TapeState {
public:
    /// The calling thread's tape.
    static Tape& current();

    Tape() = default;
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;
    ~Tape() { free_entries(); }

    /// The next entry. Starts a new pass (and makes every Var of the previous one stale)
    /// when no entry of the current one is pending, unless the new op reads an output of
    /// the current pass (`uses_pass`), or when end_pass asked for it.
    TAPEGRAD_ALWAYS_INLINE Entry<T>& append(bool uses_pass)
    {
        // One test on the path of every op: nothing to do while some entry is pending and
        // nothing was released or dropped since the last op.
        if (__builtin_expect((pending_ == 0) | flags.any(), 0)) prepare(uses_pass);
        if (size_ == capacity_) grow();
        Entry<T>& e = chunks_[size_ / kChunk][size_ % kChunk];
        e.clear();
        e.out.index = size_;
        e.out.refs = 0;
        e.out.queued = false;
        ++size_;
        ++pending_;
        return e;
    }

    /// Drops the last entry, recorded by an op whose forward threw (no handle refers to it).
    void drop_last() noexcept
    {
        Entry<T>& e = entry(size_ - 1);
        if (e.life == EntryState::pending) --pending_;
        drop_inputs(e);
        --size_;
        e.clear();
        kill_doomed();
    }

    /// A tape node of the current pass lost its last reference: an entry that no backward
    /// walked is then unreachable, and so are the inputs it alone kept. Pops what it can.
    void unreferenced(Node<T>* n) noexcept;

    /// Marks an entry that a backward walked without retain_graph. Its references to its
    /// inputs are given back later, and only if the pass goes on (fixup): a training step
    /// releases every entry, and the next op reuses the whole pass without that work.
    TAPEGRAD_ALWAYS_INLINE void release(Entry<T>& e) noexcept
    {
        if (e.life == EntryState::pending) --pending_;
        e.life = EntryState::released;
        flags.needs_fixup = true;
    }

    /// After a backward (during which nothing is reclaimed): kills the entries found
    /// unreferenced meanwhile that the backward did not release, then pops the top.
    void collect() noexcept { kill_doomed(); }

    /// What makes the next op take the slow path of append; one word, tested at once.
    struct Flags {
        bool sweeping = false;       ///< a backward runs: entries are marked, never popped or killed
        bool end_requested = false;  ///< set by end_pass: the next op starts a new pass
        bool may_pop = false;        ///< an entry lost its last reference since the last pop
        bool needs_fixup = false;    ///< released entries still hold references to their inputs
        TAPEGRAD_ALWAYS_INLINE bool any() const noexcept
        {
            std::uint32_t word;
            static_assert(sizeof(Flags) == sizeof(word), "tg::detail::Tape::Flags: four bytes");
            std::memcpy(&word, this, sizeof(word));
            return word != 0;
        }
    } flags;

    /// The entries of the pass, after popping what can be popped off the top.
    std::size_t size() noexcept
    {
        if (!flags.sweeping) {
            if (flags.needs_fixup) fixup();
            if (flags.may_pop) pop_top();
        }
        return size_;
    }
    /// Entries of the pass that a backward may still walk.
    std::size_t pending() const noexcept { return pending_; }
    Entry<T>& entry(std::size_t i) noexcept { return chunks_[i / kChunk][i % kChunk]; }
    const Entry<T>& entry(std::size_t i) const noexcept { return chunks_[i / kChunk][i % kChunk]; }

    /// Frees every entry and its buffers; every Var of the tape becomes stale.
    void clear()
    {
        new_pass(false);
        free_entries();
    }

    /// Number of entries allocated (kept across passes).
    std::size_t capacity() const noexcept { return capacity_; }

private:
    static constexpr std::size_t kChunk = 128;

    // The slow path of append: reclaim, and start a new pass when nothing is pending.
    void prepare(bool uses_pass) noexcept
    {
        if (flags.sweeping) return;
        if (pending_ != 0 && flags.needs_fixup) fixup();  // may leave nothing pending
        if ((pending_ == 0 && !uses_pass) || flags.end_requested) {
            if (size_ != 0 || flags.end_requested) new_pass(!flags.end_requested);
            return;
        }
        if (flags.may_pop) pop_top();
    }

    // Released entries give back their references to their inputs: an entry that only
    // released ones referenced, and that no backward walked, is unreachable now.
    void fixup() noexcept
    {
        flags.needs_fixup = false;
        for (std::size_t i = size_; i-- > 0;) {
            Entry<T>& e = entry(i);
            if (e.life == EntryState::released) drop_inputs(e);
        }
        kill_doomed();
    }

    // Starts the next pass in the same entries: every Var of this one becomes stale.
    void new_pass(bool by_backward) noexcept
    {
        ++pass;
        ended_by_backward = by_backward;
        flags.end_requested = false;
        size_ = 0;
        pending_ = 0;
        flags.may_pop = false;
        flags.needs_fixup = false;
        for (Node<T>* n : doomed_) n->queued = false;
        doomed_.clear();
    }

    // Kills the doomed entries that no backward walked, and what they alone kept alive.
    void kill_doomed() noexcept
    {
        while (!doomed_.empty()) {
            Node<T>* d = doomed_.back();
            doomed_.pop_back();
            d->queued = false;
            Entry<T>& e = entry(d->index);
            if (e.life != EntryState::pending || d->refs != 0) continue;
            e.life = EntryState::dead;
            --pending_;
            drop_inputs(e);
            flags.may_pop = true;
        }
    }

    // Gives back the references an entry holds on tape inputs (leaves stay held until the
    // entry is reused); an input left without any is queued to be killed.
    void drop_inputs(Entry<T>& e) noexcept
    {
        if (e.inputs_dropped) return;
        e.inputs_dropped = true;
        for (Node<T>* in : e.inputs) {
            // An input the running backward has already sent a gradient to will be walked
            // and released by it: nothing to queue.
            if (in->tape == nullptr || in->refs == 0 || --in->refs != 0) continue;
            flags.may_pop = true;
            doom(in);
        }
    }

    // Each node is queued once at a time, so the queue never outgrows its reserve.
    void doom(Node<T>* n) noexcept
    {
        if (n->queued) return;
        n->queued = true;
        doomed_.push_back(n);
    }

    // Released and dead entries that nothing references leave the top; their contents stay
    // until the entry is reused. Done lazily, when the next op is recorded on a pass that
    // goes on (a pass that ends is reused whole anyway).
    void pop_top() noexcept
    {
        flags.may_pop = false;
        while (size_ != 0) {
            const Entry<T>& e = entry(size_ - 1);
            if (e.out.refs != 0 || e.life == EntryState::pending) break;
            --size_;
        }
    }

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
        doomed_.reserve(capacity_);
    }

    std::vector<std::unique_ptr<Entry<T>[]>> chunks_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    std::size_t pending_ = 0;
    std::vector<Node<T>*> doomed_;  // nodes found unreferenced, still to be killed
};

template <class T> void Tape<T>::unreferenced(Node<T>* n) noexcept
{
    flags.may_pop = true;
    if (entry(n->index).life == EntryState::pending) {
        doom(n);
        if (!flags.sweeping) kill_doomed();  // else the backward collects when it is done
    }
}

extern template class Tape<float>;
extern template class Tape<double>;

/// Frees the calling thread's pool of large buffers (see acquire in var.hpp).
template <class T> void release_pooled_buffers() noexcept;

}  // namespace detail

/// Number of entries in the calling thread's current pass (ops recorded and not yet
/// reclaimed; the pass's storage is reused whole once nothing in it is pending).
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

/// Ends the calling thread's current pass: the next op starts a new pass in the same
/// entries and buffers, and every Var of this pass becomes stale once it does, whether or
/// not a backward released its graph. Rarely needed: a pass whose graphs are all released
/// or unreachable is recycled by itself; this is for passes kept alive on purpose (by
/// retain_graph or create_graph, a Newton iteration's Hessian-vector products) once they
/// are no longer wanted.
template <class T> void end_pass()
{
    detail::Tape<T>::current().flags.end_requested = true;
}

}  // namespace tg
