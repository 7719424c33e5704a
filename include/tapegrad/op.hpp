#pragma once
/// \file op.hpp
/// The kit for writing differentiable ops, used by every built-in op in `ops/` and
/// available unchanged to user code.
///
/// An op is a struct with a `name`, a `forward` and a `backward`:
/// \code
/// // y = log(1 + exp(x));  grad_x = grad_out * sigmoid(x)
/// struct Softplus {
///     static constexpr const char* name = "softplus";
///     template <class T> void forward(tg::Ctx<T>& c) const {
///         xt::noalias(c.out()) = xt::log1p(xt::exp(c.input(0)));
///     }
///     template <class T> void backward(tg::Ctx<T>& c) const {
///         c.accumulate(0, c.grad_out() / (1 + xt::exp(-c.input(0))));
///     }
/// };
/// tg::Var<double> softplus(const tg::Var<double>& x) { return tg::record(Softplus{}, x); }
/// \endcode
/// `record` runs the forward and, when an input requires grad and recording is on,
/// appends one tape entry holding the op, its inputs and its output.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnoalias.hpp>

#include "tapegrad/tape.hpp"
#include "tapegrad/var.hpp"

namespace tg {

namespace detail {
/// Adds `full` (shaped `full_shape`, a broadcast of the node's shape) into the node's
/// gradient, summing over the broadcast axes. Assigns when the node has no gradient yet.
/// Throws tg::Error naming `op` and `input` when `full_shape` is not a broadcast of the
/// node's shape.
template <class T>
void accumulate_reduced(const char* op, std::size_t input, Node<T>& node, const T* full,
                        const typename xt::xarray<T>::shape_type& full_shape);

/// Scratch used as an op's `saved()` storage when nothing is recorded.
template <class T> struct Scratch {
    xt::xarray<T> saved;
    std::vector<std::int64_t> saved_index;
};
template <class T> Scratch<T>& scratch();

[[noreturn]] void throw_other_thread(const char* op);
[[noreturn]] void throw_version(const char* op, std::size_t input, std::uint32_t now, std::uint32_t then);
}  // namespace detail

/// A writable view of one input's gradient for kernels that write raw memory:
/// `data` has the input's size; `add` says whether to add (a gradient is already there)
/// or to assign.
template <class T> struct GradSlot {
    T* data;
    bool add;
};

/// What an op sees in forward and backward.
template <class T> class Ctx {
public:
    using array_type = xt::xarray<T>;

    Ctx(const char* name, detail::Node<T>* const* inputs, std::size_t n, detail::Node<T>* out, array_type* saved,
        std::vector<std::int64_t>* saved_index, bool recording) noexcept
        : name_(name), inputs_(inputs), n_(n), out_(out), saved_(saved), saved_index_(saved_index),
          recording_(recording)
    {}

    /// The op's name, for error messages.
    const char* name() const noexcept { return name_; }

    std::size_t num_inputs() const noexcept { return n_; }
    const array_type& input(std::size_t i) const noexcept { return inputs_[i]->value; }

    /// The output: forward writes it, backward reads it (it is the saved output).
    array_type& out() noexcept { return out_->value; }
    const array_type& out() const noexcept { return out_->value; }

    /// Per-entry scratch kept for backward (e.g. softmax probabilities, a dropout mask).
    /// Reused across passes, so writing the same shape again allocates nothing.
    array_type& saved() noexcept { return *saved_; }
    std::vector<std::int64_t>& saved_index() noexcept { return *saved_index_; }

    /// True in forward when the op is being recorded (its backward will run).
    bool recording() const noexcept { return recording_; }

    /// Backward only: the gradient of the loss with respect to the output.
    const array_type& grad_out() const noexcept { return out_->grad; }

    /// Backward only: whether input i wants a gradient.
    bool needs_grad(std::size_t i) const noexcept { return inputs_[i]->requires_grad; }

    /// Backward only: adds `g` to input i's gradient. `g` may have the input's shape or a
    /// shape the input was broadcast to; broadcast axes are summed away here, once for
    /// every op.
    template <class E> void accumulate(std::size_t i, const xt::xexpression<E>& expr)
    {
        detail::Node<T>& n = *inputs_[i];
        if (!n.requires_grad) return;
        const E& g = expr.derived_cast();
        const auto& in_shape = n.value.shape();
        if (g.dimension() == in_shape.size() && std::equal(in_shape.begin(), in_shape.end(), g.shape().begin())) {
            if (n.has_grad) {
                xt::noalias(n.grad) += g;
            } else {
                xt::noalias(n.grad) = g;
                n.has_grad = true;
            }
            return;
        }
        array_type full = g;
        detail::accumulate_reduced(name_, i, n, full.data(), full.shape());
    }

    /// Backward only: raw access to input i's gradient (sized like the input).
    GradSlot<T> grad_slot(std::size_t i)
    {
        detail::Node<T>& n = *inputs_[i];
        const bool add = n.has_grad;
        if (!add) {
            if (!same_shape(n.grad, n.value)) n.grad.resize(n.value.shape());
            n.has_grad = true;
        }
        return {n.grad.data(), add};
    }

    /// Backward only: adds a full-size gradient (shaped like the output of a
    /// broadcasting op) into input i, reducing broadcast axes.
    void accumulate_full(std::size_t i, const T* full, const typename array_type::shape_type& shape)
    {
        if (inputs_[i]->requires_grad) detail::accumulate_reduced(name_, i, *inputs_[i], full, shape);
    }

private:
    static bool same_shape(const array_type& a, const array_type& b) noexcept { return a.shape() == b.shape(); }

    const char* name_;
    detail::Node<T>* const* inputs_;
    std::size_t n_;
    detail::Node<T>* out_;
    array_type* saved_;
    std::vector<std::int64_t>* saved_index_;
    bool recording_;
};

namespace detail {

template <class Op, class T> void backward_thunk(Entry<T>& e)
{
    for (std::size_t i = 0; i < e.inputs.size(); ++i) {
        if (e.inputs[i]->version != e.input_versions[i])
            throw_version(e.name, i, e.inputs[i]->version, e.input_versions[i]);
    }
    Ctx<T> c(e.name, e.inputs.data(), e.inputs.size(), &e.out, &e.saved, &e.saved_index, true);
    static_cast<const Op*>(e.state)->backward(c);
}

template <class Op> void destroy_thunk(void* p) noexcept
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
    if constexpr (!std::is_trivially_destructible<O>::value) e.destroy = &destroy_thunk<O>;
}

template <class T> constexpr bool all_vars()
{
    return true;
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
    using O = std::decay_t<Op>;
    constexpr std::size_t n = 1 + sizeof...(More);
    const std::array<const Var<T>*, n> vars{&first, &more...};
    std::array<detail::Node<T>*, n> nodes{};
    bool any_grad = false;
    for (std::size_t i = 0; i < n; ++i) {
        nodes[i] = vars[i]->node(O::name);
        any_grad = any_grad || nodes[i]->requires_grad;
    }

    if (!(any_grad && detail::grad_enabled)) {
        auto* out = new detail::Node<T>();
        Var<T> result = Var<T>::adopt(out, 0);
        auto& s = detail::scratch<T>();
        Ctx<T> c(O::name, nodes.data(), n, out, &s.saved, &s.saved_index, false);
        op.forward(c);
        return result;
    }

    detail::Tape<T>& tape = detail::Tape<T>::current();
    for (std::size_t i = 0; i < n; ++i) {
        if (vars[i]->pass() != 0) {
            if (nodes[i]->tape != &tape) detail::throw_other_thread(O::name);
            if (tape.spent) detail::throw_stale(O::name, vars[i]->pass(), tape.pass + 1, true);
        }
    }
    detail::Entry<T>& e = tape.append();
    e.name = O::name;
    for (std::size_t i = 0; i < n; ++i) {
        detail::Node<T>* in = nodes[i];
        if (in->tape == nullptr) ++in->refs;
        e.inputs.push_back(in);
        e.input_versions.push_back(in->version);
    }
    e.out.requires_grad = true;
    e.out.has_grad = false;
    try {
        detail::place_op(e, std::forward<Op>(op));
        Ctx<T> c(O::name, nodes.data(), n, &e.out, &e.saved, &e.saved_index, true);
        static_cast<const O*>(e.state)->forward(c);
    } catch (...) {
        tape.pop();
        throw;
    }
    e.backward = &detail::backward_thunk<O, T>;
    return Var<T>::adopt(&e.out, tape.pass);
}

// ---------------------------------------------------------------------------------------
// Registration: an OpInfo tells the generic tests how to exercise an op.

/// One way to call an op: input values (float64; converted for the float32 pass) and the
/// call itself for both scalar types.
struct OpSample {
    std::string label;
    std::vector<xt::xarray<double>> inputs;
    std::function<Var<double>(const std::vector<Var<double>>&)> f64;
    std::function<Var<float>(const std::vector<Var<float>>&)> f32;
};

/// Builds an OpSample from a generic lambda `[](const auto& v) { return tg::mul(v[0], v[1]); }`.
template <class F> OpSample make_sample(std::string label, std::vector<xt::xarray<double>> inputs, F f)
{
    OpSample s;
    s.label = std::move(label);
    s.inputs = std::move(inputs);
    s.f64 = [f](const std::vector<Var<double>>& v) { return f(v); };
    s.f32 = [f](const std::vector<Var<float>>& v) { return f(v); };
    return s;
}

/// The registration entry of one op: its name (also its file name in `ops/`) and a
/// generator of sample calls that covers broadcasting, size-1 dims and rank-0 scalars,
/// with inputs drawn inside the op's domain.
struct OpInfo {
    std::string name;
    std::function<std::vector<OpSample>(std::mt19937_64&)> samples;
};

/// Every registered op: the built-in ones, then those added with register_op.
const std::vector<OpInfo>& registered_ops();

/// Adds a user op to the registry so that generic checks (gradcheck over its samples)
/// cover it. Throws if the name is taken.
void register_op(OpInfo info);

/// Random values in [lo, hi) with the given shape (for sample generators).
xt::xarray<double> sample_uniform(std::mt19937_64& rng, const std::vector<std::size_t>& shape, double lo, double hi);

/// Like sample_uniform, but every value is at least `gap` away from zero (for ops with a
/// kink or pole at zero such as relu or division).
xt::xarray<double> sample_away_from_zero(std::mt19937_64& rng, const std::vector<std::size_t>& shape, double lo,
                                         double hi, double gap);

}  // namespace tg

/// Defines the registration function of a built-in op; the build calls one such function
/// for every file in `ops/`, so a file without it does not link.
/// Usage: `TAPEGRAD_REGISTER_OP(sigmoid) { return tg::OpInfo{"sigmoid", ...}; }`
#define TAPEGRAD_REGISTER_OP(NAME) ::tg::OpInfo tapegrad_op_info_##NAME()
