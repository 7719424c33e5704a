// The engine: the per-thread tape, the reverse sweep, leaves, and the shared reduction
// of broadcast gradients back to each input's shape.

#include <algorithm>
#include <string>

#include <xtensor/xadapt.hpp>
#include <xtensor/xreducer.hpp>

#include "tapegrad/op.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/var.hpp"

namespace tg {
namespace detail {

template <class T> Tape<T>& Tape<T>::current()
{
    static thread_local Tape<T> tape;
    return tape;
}

template class Tape<float>;
template class Tape<double>;

template <class T> Scratch<T>& scratch()
{
    static thread_local Scratch<T> s;
    return s;
}
template Scratch<float>& scratch<float>();
template Scratch<double>& scratch<double>();

void throw_stale(const char* where, std::uint64_t var_pass, std::uint64_t tape_pass, bool spent)
{
    std::string msg = std::string(where) + ": this Var is stale: it was recorded in pass " + std::to_string(var_pass) +
                      " of the tape, which ";
    if (spent && tape_pass == var_pass + 1)
        msg += "has been backpropagated; recording a new op starts pass " + std::to_string(tape_pass);
    else
        msg += "has ended (the tape is on pass " + std::to_string(tape_pass) + ")";
    msg += "; recompute it in the current pass, or read what you need before the next op is recorded";
    throw Error(msg);
}

void throw_undefined(const char* where)
{
    throw Error(std::string(where) + ": the Var is undefined (default-constructed or moved from)");
}

void throw_other_thread(const char* op)
{
    throw Error(std::string(op) +
                ": an input was recorded on another thread's tape; each thread records its own passes");
}

void throw_version(const char* op, std::size_t input, std::uint32_t now, std::uint32_t then)
{
    throw Error("backward: input " + std::to_string(input) + " of " + op +
                " was modified in place after it was recorded (its version is " + std::to_string(now) +
                ", the op saw version " + std::to_string(then) +
                "); update parameters after backward, not between forward and backward");
}

namespace {

template <class S> std::size_t product(const S& s)
{
    std::size_t p = 1;
    for (auto d : s) p *= d;
    return p;
}

template <class T> void add_or_assign(T* dst, const T* src, std::size_t n, bool add)
{
    if (add) {
        for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
    } else {
        std::copy(src, src + n, dst);
    }
}

}  // namespace

template <class T>
void accumulate_reduced(const char* op, std::size_t input, Node<T>& node, const T* full,
                        const typename xt::xarray<T>::shape_type& full_shape)
{
    const auto& in_shape = node.value.shape();
    const std::size_t r_in = in_shape.size();
    const std::size_t r_full = full_shape.size();
    bool broadcastable = r_in <= r_full;
    for (std::size_t j = 0; broadcastable && j < r_in; ++j) {
        const std::size_t d = in_shape[j];
        broadcastable = d == 1 || d == full_shape[r_full - r_in + j];
    }
    if (!broadcastable) {
        throw Error(std::string(op) + ": backward produced a gradient of shape " + format_shape(full_shape) +
                    " for input " + std::to_string(input) + " of shape " + format_shape(in_shape) +
                    ", which is neither that shape nor a broadcast of it");
    }

    const bool add = node.has_grad;
    if (!add && node.grad.shape() != in_shape) node.grad.resize(in_shape);
    node.has_grad = true;
    T* g = node.grad.data();
    const std::size_t m = node.value.size();
    const std::size_t total = product(full_shape);

    if (m == total) {  // same elements in the same order (shapes differ by leading 1s)
        add_or_assign(g, full, m, add);
        return;
    }
    if (m == 1) {
        T s = 0;
        for (std::size_t i = 0; i < total; ++i) s += full[i];
        g[0] = add ? g[0] + s : s;
        return;
    }
    // Suffix broadcast (the bias of a dense layer): the input, without leading 1s, equals
    // the trailing dims of the full shape, so the full gradient is rows to be summed.
    std::size_t lead = 0;
    while (lead < r_in && in_shape[lead] == 1) ++lead;
    bool suffix = true;
    for (std::size_t j = lead; j < r_in; ++j) suffix = suffix && in_shape[j] == full_shape[r_full - r_in + j];
    if (suffix) {
        // Sum the rows first and add the total once, so that accumulating the same
        // gradient twice gives exactly twice the gradient.
        static thread_local std::vector<T> tmp;
        T* dst = g;
        if (add) {
            tmp.resize(m);
            dst = tmp.data();
        }
        const std::size_t rows = total / m;
        add_or_assign(dst, full, m, false);
        for (std::size_t r = 1; r < rows; ++r) add_or_assign(dst, full + r * m, m, true);
        if (add) add_or_assign(g, dst, m, true);
        return;
    }
    // General case, e.g. [3, 1] broadcast to [3, 4]: sum over the broadcast axes.
    std::vector<std::size_t> axes;
    for (std::size_t j = 0; j < r_full - r_in; ++j) axes.push_back(j);
    for (std::size_t j = 0; j < r_in; ++j) {
        if (in_shape[j] == 1 && full_shape[r_full - r_in + j] != 1) axes.push_back(r_full - r_in + j);
    }
    std::vector<std::size_t> fs(full_shape.begin(), full_shape.end());
    auto view = xt::adapt(full, total, xt::no_ownership(), fs);
    xt::xarray<T> reduced = xt::sum(view, axes, xt::evaluation_strategy::immediate);
    add_or_assign(g, reduced.data(), m, add);
}

template void accumulate_reduced<float>(const char*, std::size_t, Node<float>&, const float*,
                                        const xt::xarray<float>::shape_type&);
template void accumulate_reduced<double>(const char*, std::size_t, Node<double>&, const double*,
                                         const xt::xarray<double>::shape_type&);

// The reverse sweep: seed the output, then walk the entries from the output's down to the
// first, calling each backward whose output received a gradient.
template <class T> void run_backward(Node<T>* out, BackwardOptions options)
{
    if (!out->requires_grad) {
        throw Error("backward: the output does not require grad: no parameter reaches it, or it was "
                    "computed under NoGradGuard");
    }
    auto& tape = static_cast<Tape<T>&>(*out->tape);
    if (&tape != &Tape<T>::current()) throw Error("backward: the output was recorded on another thread's tape");
    if (tape.spent) {
        throw Error("backward: this pass was already backpropagated and its graph freed; pass "
                    "tg::retain_graph to the first backward to backpropagate through it again");
    }
    const std::size_t last = out->index;
    try {
        for (std::size_t i = last + 1; i-- > 0;) {
            Entry<T>& e = tape.entry(i);
            if (!e.out.has_grad) continue;
            e.backward(e);
            e.out.has_grad = false;
        }
    } catch (...) {
        for (std::size_t i = 0; i <= last; ++i) tape.entry(i).out.has_grad = false;
        throw;
    }
    if (!options.retain_graph) tape.spent = true;
}

}  // namespace detail

template <class T> const xt::xarray<T>& Var<T>::grad() const&
{
    detail::Node<T>* n = node("grad");
    if (!n->has_grad) {
        if (n->tape != nullptr)
            throw Error("grad: only leaves keep a gradient after backward; this Var is the output of an op");
        if (!n->requires_grad) throw Error("grad: this Var is a constant and never gets a gradient");
        throw Error("grad: no gradient yet: no backward has reached this parameter since it was created "
                    "or last zeroed");
    }
    return n->grad;
}

template <class T> T Var<T>::item() const
{
    detail::Node<T>* n = node("item");
    if (n->value.size() != 1)
        throw Error("item: expected a Var with one element, got shape " + format_shape(n->value.shape()));
    return n->value.data()[0];
}

template <class T> void Var<T>::backward(BackwardOptions options)
{
    detail::Node<T>* n = node("backward");
    if (n->value.size() != 1) {
        throw Error("backward: output must have one element or be given a seed, got shape " +
                    format_shape(n->value.shape()));
    }
    if (!n->requires_grad) detail::run_backward(n, options);  // throws the message
    if (n->tape == nullptr) {
        // A parameter is its own output: d(p)/d(p) = 1.
        xt::xarray<T> one = xt::ones_like(n->value);
        Ctx<T> c("backward", &n, 1, n, nullptr, nullptr, false);
        c.accumulate(0, one);
        return;
    }
    if (n->grad.shape() != n->value.shape()) n->grad.resize(n->value.shape());
    n->grad.data()[0] = T(1);
    n->has_grad = true;
    detail::run_backward(n, options);
}

template <class T> void Var<T>::backward(const xt::xarray<T>& seed, BackwardOptions options)
{
    detail::Node<T>* n = node("backward");
    if (seed.shape() != n->value.shape()) {
        throw Error("backward: seed shape " + format_shape(seed.shape()) + " differs from the output's shape " +
                    format_shape(n->value.shape()));
    }
    if (!n->requires_grad) detail::run_backward(n, options);  // throws the message
    if (n->tape == nullptr) {
        Ctx<T> c("backward", &n, 1, n, nullptr, nullptr, false);
        c.accumulate(0, seed);
        return;
    }
    xt::noalias(n->grad) = seed;
    n->has_grad = true;
    detail::run_backward(n, options);
}

template <class T> void Var<T>::set_value(const xt::xarray<T>& value) const
{
    detail::Node<T>* n = node("set_value");
    if (n->tape != nullptr)
        throw Error("set_value: only a leaf (parameter or constant) can be set; this Var is the output of an op");
    if (value.shape() != n->value.shape()) {
        throw Error("set_value: shape " + format_shape(value.shape()) + " differs from the leaf's shape " +
                    format_shape(n->value.shape()));
    }
    xt::noalias(n->value) = value;
    ++n->version;
}

template <class T> xt::xarray<T>& Var<T>::mutable_value() const
{
    detail::Node<T>* n = node("mutable_value");
    if (n->tape != nullptr)
        throw Error("mutable_value: only a leaf (parameter or constant) can be changed in place; this Var is the "
                    "output of an op");
    ++n->version;
    return n->value;
}

template <class T> void Var<T>::zero_grad() const
{
    node("zero_grad")->has_grad = false;
}

template class Var<float>;
template class Var<double>;

template <class T> Var<T> parameter(xt::xarray<T> value)
{
    auto* n = new detail::Node<T>();
    n->value = std::move(value);
    n->requires_grad = true;
    n->is_parameter = true;
    return Var<T>::adopt(n, 0);
}

template <class T> Var<T> constant(xt::xarray<T> value)
{
    auto* n = new detail::Node<T>();
    n->value = std::move(value);
    return Var<T>::adopt(n, 0);
}

template Var<float> parameter<float>(xt::xarray<float>);
template Var<double> parameter<double>(xt::xarray<double>);
template Var<float> constant<float>(xt::xarray<float>);
template Var<double> constant<double>(xt::xarray<double>);

}  // namespace tg
