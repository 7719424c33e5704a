#pragma once
/// \file op.hpp
/// The kit for writing differentiable ops, used by every built-in op in `ops/` and
/// available unchanged to user code.
///
/// An op is a struct with a `name`, a `forward` and its derivative, stated once as a
/// **vjp rule** written with tg ops, so that the derivative can itself be differentiated:
/// \code
/// // y = log(1 + exp(x));  grad_x = grad_out * sigmoid(x)
/// struct MySoftplus {  // tapegrad has its own tg::softplus; a user op needs a name of its own
///     static constexpr const char* name = "my_softplus";
///     template <class T> void forward(tg::OpContext<T>& c) const {
///         xt::noalias(c.output()) = xt::log1p(xt::exp(c.input(0)));
///     }
///     template <class T> void vjp(tg::VjpContext<T>& v) const {
///         v.add_grad(0, v.grad_out() * tg::sigmoid(v.input(0)));
///     }
/// };
/// tg::Var<double> my_softplus(const tg::Var<double>& x) { return tg::record(MySoftplus{}, x); }
/// \endcode
/// `record` runs the forward and, when an input requires grad and recording is on,
/// appends one tape entry holding the op, its inputs and its output.
///
/// A first-order backward runs the vjp rule on plain values. An op may also give a fused
/// kernel, `backward(OpContext&)`, that computes the same first-order gradient straight
/// into the gradient buffers; the first-order backward then uses it, and
/// `backward(tg::create_graph)` and `tg::grad(..., create_graph)` use the rule. The generic
/// op test checks that the two agree. Elementwise ops state their derivative once as a
/// generic formula that serves both (see tapegrad/kit/elementwise.hpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnoalias.hpp>

#include "tapegrad/tape.hpp"
#include "tapegrad/testing/registry.hpp"  // OpSample, OpInfo, registration (for code written before it moved)
#include "tapegrad/var.hpp"

namespace tg {
namespace detail {
using Shape = xt::xarray<double>::shape_type;

/// Adds (or, when the node has no gradient yet, assigns) `full`, shaped `full_shape` (the
/// node's shape or a broadcast of it), into the node's gradient, summing over broadcast
/// axes. Throws tg::Error naming `op` and `input` when `full_shape` is not a broadcast of
/// the node's shape.
template <class T>
void reduce_into(const char* op, std::size_t input, Node<T>& node, const T* full, const Shape& full_shape);

/// A buffer for gradients that are reduced before they are added (one per thread).
template <class T> std::vector<T>& reduce_buffer();

/// Where saved values go for an op that is not recorded.
template <class T> struct Scratch {
    std::vector<xt::xarray<T>> saved;
    std::vector<xt::xarray<std::int64_t>> saved_indices;
};
template <class T> Scratch<T>& scratch();

[[noreturn]] void throw_other_thread(const char* op);
[[noreturn]] void throw_version(const char* op, std::size_t input, const Shape& shape, std::uint32_t now,
                                std::uint32_t then);
/// A leaf input whose shape changed in place after the op recorded it.
[[noreturn]] void throw_resized(const char* op, std::size_t input, const Shape& now);

/// Anomaly mode: throw a tg::Error describing where a NaN or Inf appeared (forward
/// output, or the gradient of input `input` in backward). `entry` is null for an op that
/// was not recorded.
template <class T>
void check_finite(const char* op, const Entry<T>* entry, const xt::xarray<T>& values, bool backward, std::size_t input);
template <class T> void note_recording_site(Entry<T>& e);

/// Receives the gradients that a vjp rule computes while `create_graph` records them.
template <class T> class GradSink {
public:
    virtual ~GradSink() = default;
    virtual bool needs(const Node<T>* n) const = 0;
    virtual void add(const char* op, std::size_t input, Node<T>* n, const Var<T>& g) = 0;
};

}  // namespace detail

/// What an op's forward and its fused backward kernel see: values as arrays.
template <class T> class OpContext {
public:
    /// The array type of inputs, output and gradients.
    using array_type = xt::xarray<T>;
    /// Their shape type.
    using shape_type = typename array_type::shape_type;

    /// Built by tg::record and the backward around one op call; ops only use the context they are given.
    OpContext(const char* name, detail::Node<T>* const* inputs, std::size_t n, detail::Node<T>* out,
              std::vector<array_type>* saved, std::vector<xt::xarray<std::int64_t>>* saved_indices, bool recording,
              const detail::Entry<T>* entry, bool check_finite) noexcept
        : name_(name), inputs_(inputs), n_(n), out_(out), saved_(saved), saved_indices_(saved_indices), entry_(entry),
          recording_(recording), check_finite_(check_finite)
    {}

    /// The op's name, for error messages.
    const char* name() const noexcept { return name_; }

    /// The number of inputs.
    std::size_t num_inputs() const noexcept { return n_; }
    /// Input i's value (0 <= i < num_inputs(); not checked).
    const array_type& input(std::size_t i) const noexcept { return inputs_[i]->value; }

    /// Forward: the output, resized to `shape` when its shape differs (the contents are then
    /// unspecified: write every element). Reused pass after pass, so writing the same shape
    /// again allocates nothing.
    /// Inlined into each op's record: it is on the path of every op (as a call, the batched
    /// build of the op files left it out of line).
    template <class S> TAPEGRAD_ALWAYS_INLINE array_type& output(const S& shape)
    {
        array_type& y = out_->value;
        if (!detail::shapes_equal(y.shape(), shape)) detail::acquire(y, shape_type(shape.begin(), shape.end()));
        return y;
    }
    /// The same, for a shape written as a braced list.
    TAPEGRAD_ALWAYS_INLINE array_type& output(std::initializer_list<std::size_t> shape)
    {
        array_type& y = out_->value;
        if (!detail::shapes_equal(y.shape(), shape)) detail::acquire(y, shape_type(shape.begin(), shape.end()));
        return y;
    }
    /// The output as it is: assign to it with `xt::noalias(c.output()) = ...` (which sizes
    /// it); in backward, the saved output.
    array_type& output() noexcept { return out_->value; }
    /// The output, read-only.
    const array_type& output() const noexcept { return out_->value; }

    /// Values kept for the backward, as many as the op needs (slot k is created on first
    /// use). Owned by the tape entry and reused across passes.
    array_type& saved(std::size_t k)
    {
        if (saved_->size() <= k) saved_->resize(k + 1);
        return (*saved_)[k];
    }
    /// Integers kept for the backward (labels, arg-max positions), as saved() does.
    xt::xarray<std::int64_t>& saved_indices(std::size_t k)
    {
        if (saved_indices_->size() <= k) saved_indices_->resize(k + 1);
        return (*saved_indices_)[k];
    }

    /// True in forward when the op is being recorded (its backward will run).
    bool recording() const noexcept { return recording_; }

    /// Backward only: the gradient of the loss with respect to the output.
    const array_type& grad_out() const noexcept { return out_->grad; }

    /// Backward only: whether input i wants a gradient.
    bool needs_grad(std::size_t i) const noexcept { return inputs_[i]->requires_grad; }

    /// Backward only, the one way to write a gradient: adds `g` to input i's gradient.
    /// `g` has the input's shape or a shape the input was broadcast to (summed back here,
    /// once for every op). Does nothing when the input needs no gradient, so `g` is not
    /// evaluated then.
    template <class E> void add_grad(std::size_t i, const xt::xexpression<E>& expr)
    {
        detail::Node<T>& n = *inputs_[i];
        if (!n.requires_grad) return;
        const E& g = expr.derived_cast();
        if (detail::shapes_equal(g.shape(), n.value.shape())) {
            if (n.has_grad) {
                xt::noalias(n.grad) += g;
            } else {
                if (!detail::shapes_equal(n.grad.shape(), n.value.shape())) detail::acquire(n.grad, n.value.shape());
                xt::noalias(n.grad) = g;
            }
        } else if constexpr (std::is_same<E, array_type>::value) {
            detail::reduce_into(name_, i, n, g.data(), g.shape());  // already evaluated: no copy
        } else {
            const array_type full = g;
            detail::reduce_into(name_, i, n, full.data(), full.shape());
        }
        finish(i);
    }

    /// The same for kernels that write raw memory: `kernel(T* dst, bool add)` writes the
    /// gradient, `shape` (the input's shape or a broadcast of it) elements, into dst,
    /// assigning when `add` is false and adding when it is true.
    template <class S, class K> void add_grad(std::size_t i, const S& shape, K&& kernel)
    {
        detail::Node<T>& n = *inputs_[i];
        if (!n.requires_grad) return;
        if (detail::shapes_equal(shape, n.value.shape())) {
            const bool add = n.has_grad;
            if (!add && !detail::shapes_equal(n.grad.shape(), n.value.shape()))
                detail::acquire(n.grad, n.value.shape());
            kernel(n.grad.data(), add);
        } else {
            auto& buf = detail::reduce_buffer<T>();
            buf.resize(detail::element_count(shape));
            kernel(buf.data(), false);
            detail::reduce_into(name_, i, n, buf.data(), detail::Shape(shape.begin(), shape.end()));
        }
        finish(i);
    }

private:
    TAPEGRAD_ALWAYS_INLINE void finish(std::size_t i)
    {
        detail::Node<T>& n = *inputs_[i];
        n.has_grad = true;
        if (n.grad_var.defined()) n.grad_var.reset();  // a leaf's recorded gradient no longer matches
        if (check_finite_) detail::check_finite(name_, entry_, n.grad, true, i);
    }

    const char* name_;
    detail::Node<T>* const* inputs_;
    std::size_t n_;
    detail::Node<T>* out_;
    std::vector<array_type>* saved_;
    std::vector<xt::xarray<std::int64_t>>* saved_indices_;
    const detail::Entry<T>* entry_;
    bool recording_;
    bool check_finite_;
};

/// What an op's vjp rule sees: the op's inputs, output and upstream gradient as Vars.
/// Everything the rule computes with tg ops is recorded when the backward records
/// (create_graph), so the gradients it adds can be differentiated again.
template <class T> class VjpContext {
public:
    /// The shape type of values.
    using shape_type = typename xt::xarray<T>::shape_type;

    /// A rule run for a first-order backward (values only, written through `arrays`).
    VjpContext(detail::Entry<T>& e, const Var<T>& grad_out, OpContext<T>* arrays) noexcept
        : e_(e), grad_out_(grad_out), arrays_(arrays), sink_(nullptr)
    {}
    /// A rule run while the backward records (create_graph).
    VjpContext(detail::Entry<T>& e, const Var<T>& grad_out, detail::GradSink<T>* sink) noexcept
        : e_(e), grad_out_(grad_out), arrays_(nullptr), sink_(sink)
    {}

    /// The op's name, for error messages.
    const char* name() const noexcept { return e_.name; }
    /// The number of inputs.
    std::size_t num_inputs() const noexcept { return e_.inputs.size(); }

    /// Input i, as a Var that ops can use.
    Var<T> input(std::size_t i) const
    {
        detail::Node<T>* n = e_.inputs[i];
        return Var<T>::from_node(n, n->tape != nullptr ? n->tape->pass : 0);
    }
    /// The shape of input i.
    const shape_type& input_shape(std::size_t i) const noexcept { return e_.inputs[i]->value.shape(); }
    /// The op's output (saved by the forward).
    Var<T> output() const { return Var<T>::from_node(&e_.out, e_.out.tape->pass); }
    /// The gradient of the loss with respect to the output.
    const Var<T>& grad_out() const noexcept { return grad_out_; }
    /// What the forward saved.
    const xt::xarray<T>& saved(std::size_t k) const { return e_.saved.at(k); }
    /// What the forward saved as integer indices (argmax positions, gathered rows); throws std::out_of_range if slot k
    /// was never written.
    const xt::xarray<std::int64_t>& saved_indices(std::size_t k) const { return e_.saved_indices.at(k); }

    /// Whether input i wants a gradient.
    bool needs_grad(std::size_t i) const
    {
        return sink_ != nullptr ? sink_->needs(e_.inputs[i]) : arrays_->needs_grad(i);
    }

    /// Adds `g` to input i's gradient; `g` has the input's shape or a broadcast of it
    /// (summed back here). Ignored when the input needs no gradient.
    void add_grad(std::size_t i, const Var<T>& g)
    {
        if (!needs_grad(i)) return;
        if (sink_ != nullptr) {
            sink_->add(e_.name, i, e_.inputs[i], g);
        } else {
            arrays_->add_grad(i, g.value());
        }
    }

private:
    detail::Entry<T>& e_;
    const Var<T>& grad_out_;
    OpContext<T>* arrays_;
    detail::GradSink<T>* sink_;
};

/// The value of an op's input, for the checks an op makes before record(): throws a
/// tg::Error naming `op` when the Var is undefined or stale.
template <class T> const xt::xarray<T>& input_value(const char* op, const Var<T>& x)
{
    return x.node(op)->value;
}

/// The shape of an op's input (see input_value).
template <class T> const typename xt::xarray<T>::shape_type& input_shape(const char* op, const Var<T>& x)
{
    return x.node(op)->value.shape();
}

namespace detail {

template <class Op, class T, class = void> struct has_kernel : std::false_type {};
template <class Op, class T>
struct has_kernel<Op, T, std::void_t<decltype(std::declval<const Op&>().backward(std::declval<OpContext<T>&>()))>>
    : std::true_type {};

template <class Op, class T, class = void> struct has_vjp : std::false_type {};
template <class Op, class T>
struct has_vjp<Op, T, std::void_t<decltype(std::declval<const Op&>().vjp(std::declval<VjpContext<T>&>()))>>
    : std::true_type {};

template <class Op, class T> void run_kernel(Entry<T>& e, OpContext<T>& c)
{
    static_cast<const Op*>(e.state)->backward(c);
}

// A first-order backward from the vjp rule: the rule runs on plain values (nothing is
// recorded) and its results go through the context's writer.
/// Marks, for anomaly reports, that the ops now running belong to `op`'s vjp rule.
class InRule {
public:
    explicit InRule(const char* op) noexcept : previous_(thread_flags.in_rule) { thread_flags.in_rule = op; }
    ~InRule() { thread_flags.in_rule = previous_; }
    InRule(const InRule&) = delete;
    InRule& operator=(const InRule&) = delete;

private:
    const char* previous_;
};

template <class Op, class T> void run_rule_on_values(Entry<T>& e, OpContext<T>& c)
{
    NoGradGuard guard;
    InRule in_rule(e.name);
    // The gradient lends its buffer to a constant for the rule and gets it back after, so
    // the entry keeps reusing it.
    const Var<T> grad_out = constant(std::move(e.out.grad));
    struct GiveBack {
        Entry<T>& e;
        const Var<T>& g;
        ~GiveBack() { e.out.grad = std::move(g.raw_node()->value); }
    } give_back{e, grad_out};
    VjpContext<T> v(e, grad_out, &c);
    static_cast<const Op*>(e.state)->vjp(v);
}

template <class Op, class T> void run_rule(Entry<T>& e, VjpContext<T>& v)
{
    InRule in_rule(e.name);
    static_cast<const Op*>(e.state)->vjp(v);
}

template <class Op> void destroy_op(void* p) noexcept
{
    static_cast<Op*>(p)->~Op();
}

template <class Op, class T> void place_op(Entry<T>& e, Op&& op)
{
    using O = std::decay_t<Op>;
    if constexpr (sizeof(O) <= sizeof(e.inline_state) && alignof(O) <= 16) {
        e.state = ::new (static_cast<void*>(e.inline_state)) O(std::forward<Op>(op));
    } else {
        void* mem = ::operator new(sizeof(O));
        e.state_on_heap = true;
        e.state = mem;
        try {
            ::new (mem) O(std::forward<Op>(op));
        } catch (...) {
            e.state = nullptr;
            e.state_on_heap = false;
            ::operator delete(mem);
            throw;
        }
    }
    if constexpr (!std::is_trivially_destructible<O>::value) e.destroy = &destroy_op<O>;
}

}  // namespace detail

namespace detail {

// The body of record for n inputs (vars and the nodes behind them, nodes already checked).
template <class Op, class T>
TAPEGRAD_ALWAYS_INLINE Var<T> record_nodes(Op&& op, const Var<T>* const* vars, Node<T>** nodes, std::size_t n)
{
    using O = std::decay_t<Op>;
    bool any_grad = false;
    for (std::size_t i = 0; i < n; ++i) any_grad = any_grad || nodes[i]->requires_grad;

    const ThreadFlags flags = thread_flags;
    if (!(any_grad && flags.grad_enabled)) {
        auto* out = new Node<T>();
        Var<T> result = Var<T>::from_node(out, 0);
        auto& s = scratch<T>();
        OpContext<T> c(O::name, nodes, n, out, &s.saved, &s.saved_indices, false, nullptr, false);
        op.forward(c);
        if (flags.detect_anomaly) check_finite<T>(O::name, nullptr, out->value, false, 0);
        return result;
    }

    Tape<T>& tape = Tape<T>::current();
    bool uses_pass = false;  // an input is an output of this pass: the pass goes on
    for (std::size_t i = 0; i < n; ++i) {
        if (vars[i]->pass() != 0) {
            if (nodes[i]->tape != &tape) throw_other_thread(O::name);
            uses_pass = true;
        }
    }
    Entry<T>& e = tape.append(uses_pass);
    e.name = O::name;
    for (std::size_t i = 0; i < n; ++i) {
        Node<T>* in = nodes[i];
        ++in->refs;
        e.inputs.push_back(in);
        if (in->tape == nullptr) {
            e.input_seen.push_back(
                {in->exposed ? shape_fingerprint(in->value.shape()) : 0, in->version, static_cast<std::uint32_t>(i)});
        }
    }
    e.out.requires_grad = true;
    e.out.has_grad = false;
    try {
        place_op(e, std::forward<Op>(op));
        OpContext<T> c(O::name, e.inputs.data(), n, &e.out, &e.saved, &e.saved_indices, true, &e, false);
        static_cast<const O*>(e.state)->forward(c);
        if (flags.detect_anomaly) {
            note_recording_site(e);
            check_finite<T>(O::name, &e, e.out.value, false, 0);
        }
    } catch (...) {
        tape.drop_last();
        throw;
    }
    if constexpr (has_kernel<O, T>::value) {
        e.backward = &run_kernel<O, T>;
    } else {
        e.backward = &run_rule_on_values<O, T>;
    }
    if constexpr (has_vjp<O, T>::value) e.vjp = &run_rule<O, T>;
    return Var<T>::from_new_tape_node(&e.out, tape.pass);
}

template <class Op, class T> constexpr void check_op()
{
    using O = std::decay_t<Op>;
    static_assert(has_vjp<O, T>::value || has_kernel<O, T>::value,
                  "tg::record: the op needs a vjp rule (template <class T> void vjp(tg::VjpContext<T>&) const) "
                  "or at least a first-order backward kernel");
}

}  // namespace detail

/// Runs `op` on the inputs and, when recording is on and an input requires grad, records
/// it on the calling thread's tape. Returns the output.
///
/// Check shapes and arguments before calling: `record` only checks that every input is
/// defined, not stale, and on this thread's tape.
template <class Op, class T, class... More> Var<T> record(Op&& op, const Var<T>& first, const More&... more)
{
    static_assert((std::is_same<More, Var<T>>::value && ...),
                  "tg::record: every input must be a tg::Var of the same type");
    detail::check_op<Op, T>();
    constexpr std::size_t n = 1 + sizeof...(More);
    const std::array<const Var<T>*, n> vars{&first, &more...};
    std::array<detail::Node<T>*, n> nodes{};
    for (std::size_t i = 0; i < n; ++i) nodes[i] = vars[i]->node(std::decay_t<Op>::name);
    return detail::record_nodes(std::forward<Op>(op), vars.data(), nodes.data(), n);
}

/// The same for a number of inputs known only at run time (concat, stack).
template <class Op, class T> Var<T> record(Op&& op, const std::vector<Var<T>>& inputs)
{
    detail::check_op<Op, T>();
    const char* name = std::decay_t<Op>::name;
    if (inputs.empty()) throw Error(std::string(name) + ": no inputs given");
    std::vector<const Var<T>*> vars;
    std::vector<detail::Node<T>*> nodes;
    vars.reserve(inputs.size());
    nodes.reserve(inputs.size());
    for (const auto& v : inputs) {
        vars.push_back(&v);
        nodes.push_back(v.node(name));
    }
    return detail::record_nodes(std::forward<Op>(op), vars.data(), nodes.data(), inputs.size());
}

}  // namespace tg
