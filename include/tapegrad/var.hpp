#pragma once
/// \file var.hpp
/// `tg::Var<T>`: a cheap handle to a value recorded on the tape (or to a leaf).

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"

/// For the few tiny functions on every op's path (handle checks, shape compares): the
/// compiler's size heuristics otherwise leave them out of line once the callers grow.
#define TAPEGRAD_ALWAYS_INLINE inline __attribute__((always_inline))

namespace tg {

template <class T> class Var;

namespace detail {

/// What a Var needs to know about the tape that owns its node: which pass is current and
/// which thread records on it.
struct TapeState {
    std::uint64_t pass = 1;
    /// Why the previous pass ended, for the message of a stale Var: every graph in it had
    /// been backpropagated (and the next op recycled its storage), or end_pass/clear_tape.
    bool ended_by_backward = false;
    /// The thread that owned the tape has exited: its entries are freed and the state is
    /// kept (never freed, reused by a later thread) so that Vars still pointing here read
    /// a pass that is no longer theirs instead of freed memory.
    bool retired = false;
    /// The recording thread's token (the address of its thread_flags): handles count
    /// references to tape nodes only on that thread, so that a Var destroyed on another
    /// thread never races with the recording one.
    const void* owner = nullptr;
};

/// One value in the program: a leaf (parameter or constant, heap-allocated and
/// reference-counted) or the output of a recorded op (owned by a tape entry and reused
/// pass after pass).
template <class T> struct Node {
    xt::xarray<T> value;
    xt::xarray<T> grad;
    /// Leaves only: the gradient as a recorded value, left by backward(create_graph) so
    /// that a function of it can be differentiated again. Reset by every other write.
    Var<T> grad_var;
    TapeState* tape = nullptr;  ///< non-null for nodes that live in a tape entry
    std::size_t index = 0;      ///< entry index in the tape (tape nodes only)
    /// Heap nodes: the handles and tape entries holding the node. Tape nodes: the handles
    /// (on the recording thread) and the later entries of the pass that still need it; at
    /// zero an entry that was never backpropagated is unreachable and is reclaimed.
    std::uint32_t refs = 0;
    std::uint32_t version = 0;  ///< bumped by every in-place change of a leaf's value
    bool requires_grad = false;
    bool has_grad = false;
    bool queued = false;  ///< tape nodes: waiting in the tape's queue of unreferenced nodes
    /// Leaves only: mutable_value() handed out a reference, through which the value may be
    /// resized without a version bump; ops record such a leaf's shape to check it later.
    bool exposed = false;
};

template <class T> struct identity {
    using type = T;
};
/// Blocks deduction so that `x * 2` converts 2 to the Var's scalar type.
template <class T> using scalar_t = typename identity<T>::type;

/// Per-thread switches, in one thread-local object so that an op reads both at once.
struct ThreadFlags {
    bool grad_enabled = true;       ///< off under NoGradGuard
    bool detect_anomaly = false;    ///< on under DetectAnomalyGuard
    const char* in_rule = nullptr;  ///< the op whose vjp rule is running (for anomaly reports)
};
inline thread_local ThreadFlags thread_flags;

/// The last handle to a tape node of the current pass went away (see Node::refs).
template <class T> void node_unreferenced(Node<T>* n) noexcept;

/// True when two shapes (any containers of sizes) are equal.
template <class S, class U> TAPEGRAD_ALWAYS_INLINE bool shapes_equal(const S& s, const U& u) noexcept
{
    const std::size_t r = s.size();
    if (r != u.size()) return false;
    auto a = s.begin();
    auto b = u.begin();
    for (std::size_t j = 0; j < r; ++j) {
        if (static_cast<std::size_t>(a[j]) != static_cast<std::size_t>(b[j])) return false;
    }
    return true;
}

/// The number of elements of a shape.
template <class S> TAPEGRAD_ALWAYS_INLINE std::size_t element_count(const S& shape) noexcept
{
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
}

/// Deletes a leaf node whose last handle went away; its large buffers go to the thread's
/// buffer pool (see acquire) instead of back to malloc.
template <class T> void delete_leaf(Node<T>* n) noexcept;

/// Sizes `a` to `shape`, taking a pooled buffer of the same element count when `a` has to
/// grow from empty: large arrays that a program frees and allocates again every step (the
/// results of tg::grad, the outputs of ops run under NoGradGuard) then reuse the same
/// memory instead of going back to malloc, which on glibc would hand fresh, page-faulting
/// memory every time.
template <class T> void acquire(xt::xarray<T>& a, const typename xt::xarray<T>::shape_type& shape);

[[noreturn]] void throw_stale(const char* where, std::uint64_t var_pass, std::uint64_t tape_pass,
                              bool ended_by_backward);
/// The same for a Var whose tape is `tape` (which may have been retired by its thread's exit).
[[noreturn]] void throw_stale(const char* where, std::uint64_t var_pass, const TapeState& tape);
[[noreturn]] void throw_undefined(const char* where);

}  // namespace detail

/// True when ops on the calling thread are recorded (no NoGradGuard active).
inline bool is_grad_enabled() noexcept
{
    return detail::thread_flags.grad_enabled;
}

/// RAII: nothing is recorded on this thread while a guard is alive. Evaluation and
/// optimiser updates under a guard run at plain xtensor speed and allocate no tape entry.
class NoGradGuard {
public:
    NoGradGuard() noexcept : previous_(detail::thread_flags.grad_enabled) { detail::thread_flags.grad_enabled = false; }
    ~NoGradGuard() { detail::thread_flags.grad_enabled = previous_; }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

/// Options for Var::backward.
struct BackwardOptions {
    /// Keep the pass usable for another backward (gradients then accumulate again).
    bool retain_graph = false;
    /// Record the backward itself, so that the leaves' gradients (`grad_var()`) can be
    /// differentiated again. Implies retain_graph.
    bool create_graph = false;
};

/// `loss.backward(tg::retain_graph)` keeps the pass for a second backward.
inline constexpr BackwardOptions retain_graph{true, false};

/// `loss.backward(tg::create_graph)` records the backward: every leaf's gradient is then a
/// Var of the pass (`p.grad_var()`), and a function of it can be backpropagated again
/// (gradient penalties, Hessian-vector products).
inline constexpr BackwardOptions create_graph{true, true};

/// A cheap handle to a recorded value. Copies refer to the same node: `set_value` through
/// any copy of a parameter changes that parameter.
///
/// Vars that are outputs of recorded ops belong to one pass of the thread's tape. A
/// backward releases the graph it walked; every other Var of the pass stays usable. Once
/// every graph of the pass has been released (or is unreachable), the next op recorded
/// starts a new pass in the same storage: the old pass's Vars are then *stale* and using
/// one throws tg::Error.
template <class T> class Var {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "tg::Var<T>: T must be float or double");

public:
    /// The scalar type, float or double.
    using value_type = T;
    /// The array type of values and gradients.
    using array_type = xt::xarray<T>;
    /// The shape type of those arrays.
    using shape_type = typename array_type::shape_type;

    /// An undefined Var; every use but assignment throws.
    Var() noexcept = default;
    /// Another handle to the same node (value, gradient and graph are shared, not copied).
    Var(const Var& other) noexcept : node_(other.node_), tape_(other.tape_), pass_(other.pass_) { retain(); }
    /// Takes over other's node; other becomes undefined.
    Var(Var&& other) noexcept : node_(other.node_), tape_(other.tape_), pass_(other.pass_) { other.node_ = nullptr; }
    /// Makes this a handle to other's node, releasing the node it held.
    // NOLINTNEXTLINE(bugprone-unhandled-self-assignment): copy and swap, safe for self-assignment
    Var& operator=(const Var& other) noexcept
    {
        Var copy(other);
        swap(copy);
        return *this;
    }
    /// Takes over other's node, releasing the node it held; other becomes undefined.
    Var& operator=(Var&& other) noexcept
    {
        Var moved(std::move(other));
        swap(moved);
        return *this;
    }
    ~Var() { release(); }

    /// Exchanges the nodes two handles refer to.
    void swap(Var& other) noexcept
    {
        std::swap(node_, other.node_);
        std::swap(tape_, other.tape_);
        std::swap(pass_, other.pass_);
    }

    /// True unless default-constructed, moved from or reset.
    bool defined() const noexcept { return node_ != nullptr; }

    /// Makes the handle undefined (as a default-constructed one).
    void reset() noexcept { release(); }

    /// True for the output of an op recorded in a pass that has since ended (using it
    /// throws); false for leaves and for Vars of the current pass.
    bool stale() const noexcept { return node_ != nullptr && pass_ != 0 && tape_->pass != pass_; }

    /// The value. Throws tg::Error if the Var is undefined or stale.
    const array_type& value() const& { return node("value")->value; }
    /// On a temporary Var (`f(x).value()`) the value is returned by copy, so that binding
    /// it to a reference cannot outlive the node.
    array_type value() && { return node("value")->value; }

    /// The gradient left by backward(). Throws tg::Error when there is none: a leaf that
    /// no backward reached (or after zero_grad), or an intermediate value (only leaves
    /// keep gradients, as in PyTorch).
    const array_type& grad() const&;
    /// On a temporary Var the gradient is returned by copy (see value()).
    array_type grad() && { return static_cast<const Var&>(*this).grad(); }

    /// True when grad() would return a gradient.
    bool has_grad() const { return node("has_grad")->has_grad; }

    /// The gradient as a Var: after backward(tg::create_graph), the recorded gradient,
    /// which can be differentiated again; otherwise a constant holding grad(). Throws as
    /// grad() does when there is no gradient.
    Var grad_var() const;

    /// The value's shape. Throws tg::Error if the Var is undefined or stale (as do size() and dim()).
    const shape_type& shape() const { return node("shape")->value.shape(); }
    /// The number of elements.
    std::size_t size() const { return node("size")->value.size(); }
    /// The rank (number of axes); 0 for a scalar.
    std::size_t dim() const { return node("dim")->value.dimension(); }

    /// The single element of a one-element Var (e.g. a loss).
    T item() const;

    /// True when gradients flow to this Var: a parameter, or an op output with such an input.
    bool requires_grad() const { return node("requires_grad")->requires_grad; }

    /// True for parameters and constants (values not produced by a recorded op).
    bool is_leaf() const { return node("is_leaf")->tape == nullptr; }

    /// Backpropagates from a one-element output: seeds d(out)/d(out) = 1 and walks the
    /// tape backwards, accumulating into every parameter's grad().
    void backward(BackwardOptions options = {}) const;

    /// Backpropagates with an explicit seed of the output's shape (vector-Jacobian product).
    void backward(const array_type& seed, BackwardOptions options = {}) const;

    /// Replaces the value of a leaf (same shape). Affects every copy of this handle (a
    /// const handle too: constness is the handle's, as with a const std::shared_ptr).
    void set_value(const array_type& value) const;

    /// Write access to a leaf's value for updates in place (what optimisers use):
    /// `xt::noalias(w.mutable_value()) -= lr * w.grad();`. The shape must not change.
    /// Bumps the leaf's version, so a pass recorded before the change refuses to
    /// backpropagate through the old value.
    xt::xarray<T>& mutable_value() const;

    /// Forgets the gradient of a leaf (the next backward assigns instead of adding).
    void zero_grad() const;

    /// Sets the gradient of a leaf to `g` (same shape), as assigning `p.grad` in PyTorch; the
    /// next backward adds to it.
    void set_grad(const array_type& g) const;

    /// The node behind the handle, after checking that the Var is defined and not stale.
    /// `where` names the calling op for the error message.
    TAPEGRAD_ALWAYS_INLINE detail::Node<T>* node(const char* where) const
    {
        if (node_ == nullptr) detail::throw_undefined(where);
        // The tape outlives its entries (clear_tape frees them), so staleness is read off
        // the tape, never off a node that may be gone.
        if (pass_ != 0 && tape_->pass != pass_) detail::throw_stale(where, pass_, *tape_);
        return node_;
    }

    /// The pass this Var was recorded in (0 for leaves).
    std::uint64_t pass() const noexcept { return pass_; }

    /// A handle to `node`: a heap node (pass 0; the handle takes a reference) or the output
    /// node of a tape entry recorded in `pass`.
    static Var from_node(detail::Node<T>* node, std::uint64_t pass) noexcept
    {
        Var v;
        v.node_ = node;
        v.tape_ = node->tape;
        v.pass_ = pass;
        v.retain();
        return v;
    }

    /// The first handle to the output node of an op just recorded on this thread's current
    /// pass (for the engine): counts itself without the checks of a copy.
    static Var from_new_tape_node(detail::Node<T>* node, std::uint64_t pass) noexcept
    {
        Var v;
        v.node_ = node;
        v.tape_ = node->tape;
        v.pass_ = pass;
        node->refs = 1;
        return v;
    }

    /// Raw node pointer without checks (for the engine).
    detail::Node<T>* raw_node() const noexcept { return node_; }

private:
    // A tape node is counted only while its pass is current and only on the recording
    // thread: a stale handle's node may already hold another op's output.
    TAPEGRAD_ALWAYS_INLINE bool counts_tape_node() const noexcept
    {
        return tape_->pass == pass_ && tape_->owner == &detail::thread_flags;
    }
    TAPEGRAD_ALWAYS_INLINE void retain() noexcept
    {
        if (node_ == nullptr) return;
        if (pass_ == 0 || counts_tape_node()) ++node_->refs;
    }
    TAPEGRAD_ALWAYS_INLINE void release() noexcept
    {
        if (node_ == nullptr) return;
        if (pass_ == 0) {
            if (--node_->refs == 0) detail::delete_leaf(node_);
        } else if (counts_tape_node() && node_->refs != 0 && --node_->refs == 0) {
            detail::node_unreferenced(node_);
        }
        node_ = nullptr;
    }

    detail::Node<T>* node_ = nullptr;
    detail::TapeState* tape_ = nullptr;  ///< the owning tape (null for heap nodes)
    std::uint64_t pass_ = 0;             ///< 0: heap node (leaf or unrecorded result)
};

/// A leaf that requires grad and outlives every pass (a trainable weight).
template <class T> Var<T> parameter(xt::xarray<T> value);

/// A leaf that never gets a gradient (data, targets).
template <class T> Var<T> constant(xt::xarray<T> value);

/// parameter() from any xtensor expression, e.g. `tg::parameter(xt::zeros<double>({3}))`.
template <class E, class T = typename E::value_type,
          class = std::enable_if_t<!std::is_same<std::decay_t<E>, xt::xarray<T>>::value>>
Var<T> parameter(const xt::xexpression<E>& e)
{
    return parameter<T>(xt::xarray<T>(e));
}

/// constant() from any xtensor expression.
template <class E, class T = typename E::value_type,
          class = std::enable_if_t<!std::is_same<std::decay_t<E>, xt::xarray<T>>::value>>
Var<T> constant(const xt::xexpression<E>& e)
{
    return constant<T>(xt::xarray<T>(e));
}

}  // namespace tg
