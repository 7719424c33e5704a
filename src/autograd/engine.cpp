// The engine's data: the per-thread tape, leaves, the Var handle's methods, and the one
// place where a gradient of a broadcast shape is summed back into a node.

#include <algorithm>
#include <mutex>
#include <string>

#include "autograd/hooks.hpp"
#include "autograd/sweep.hpp"
#include "tapegrad/kit/broadcast.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/var.hpp"

namespace tg {
namespace detail {

namespace {

// Tapes of exited threads. A Var keeps a pointer to its tape's state, and a Var may
// outlive the thread that recorded it (handed to another thread, kept in a global), so a
// tape is never freed: when its thread exits it frees its entries, moves to a new pass
// (every Var recorded on it is then stale) and waits here for the next thread. The tapes
// alive at any time are bounded by the threads alive at once.
template <class T> struct RetiredTapes {
    std::mutex mutex;
    std::vector<Tape<T>*> tapes;

    static RetiredTapes& get()
    {
        static auto* pool = new RetiredTapes();  // never destroyed: threads may exit after main
        return *pool;
    }
};

template <class T> struct TapeHolder {
    Tape<T>* tape = nullptr;

    TapeHolder()
    {
        RetiredTapes<T>& retired = RetiredTapes<T>::get();
        {
            std::lock_guard<std::mutex> lock(retired.mutex);
            if (!retired.tapes.empty()) {
                tape = retired.tapes.back();
                retired.tapes.pop_back();
            }
        }
        if (tape == nullptr) tape = new Tape<T>();
        tape->retired = false;
        tape->owner = &thread_flags;
    }
    ~TapeHolder()
    {
        tape->clear();  // frees the entries; the pass moves on, so the thread's Vars are stale
        tape->retired = true;
        tape->owner = nullptr;
        RetiredTapes<T>& retired = RetiredTapes<T>::get();
        std::lock_guard<std::mutex> lock(retired.mutex);
        try {
            retired.tapes.push_back(tape);
        } catch (...) {  // out of memory: the tape is simply not reused
        }
    }
    TapeHolder(const TapeHolder&) = delete;
    TapeHolder& operator=(const TapeHolder&) = delete;
};

}  // namespace

template <class T> Tape<T>& Tape<T>::current()
{
    static thread_local TapeHolder<T> holder;
    return *holder.tape;
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

namespace {

// A thread's pool of large buffers, by element count. Small arrays are left to malloc,
// which recycles them well; a few large ones repeating every step are what glibc returns
// to the kernel and maps afresh (a page fault per 4 KB). Bounded in count and bytes.
template <class T> class BufferPool {
public:
    static constexpr std::size_t min_bytes = std::size_t{64} << 10;
    static constexpr std::size_t max_bytes = std::size_t{512} << 20;
    static constexpr std::size_t max_buffers = 64;

    static BufferPool* get() noexcept
    {
        static thread_local Holder holder;
        return holder.alive ? &holder.pool : nullptr;  // null while the thread exits
    }

    void put(xt::xarray<T>& a) noexcept
    {
        const std::size_t bytes = a.size() * sizeof(T);
        if (bytes < min_bytes || bytes > max_bytes) return;
        try {
            while (!buffers_.empty() && (buffers_.size() >= max_buffers || bytes_ + bytes > max_bytes)) {
                bytes_ -= buffers_.front().size() * sizeof(T);
                buffers_.erase(buffers_.begin());
            }
            buffers_.push_back(std::move(a));
            bytes_ += bytes;
        } catch (...) {  // the pool is an optimisation: on failure the buffer is simply freed
        }
    }

    bool take(std::size_t n, xt::xarray<T>& into) noexcept
    {
        for (std::size_t i = buffers_.size(); i-- > 0;) {
            if (buffers_[i].size() != n) continue;
            into = std::move(buffers_[i]);
            bytes_ -= n * sizeof(T);
            buffers_.erase(buffers_.begin() + static_cast<std::ptrdiff_t>(i));
            return true;
        }
        return false;
    }

    void clear() noexcept
    {
        buffers_.clear();
        bytes_ = 0;
    }

private:
    struct Holder {
        BufferPool pool;
        bool alive = true;
        ~Holder() { alive = false; }
    };
    std::vector<xt::xarray<T>> buffers_;
    std::size_t bytes_ = 0;
};

}  // namespace

template <class T> void delete_leaf(Node<T>* n) noexcept
{
    if (any_hooks<T>()) drop_hooks<T>(n);
    if (BufferPool<T>* pool = BufferPool<T>::get()) {
        pool->put(n->value);
        pool->put(n->grad);
    }
    delete n;
}
template void delete_leaf<float>(Node<float>*) noexcept;
template void delete_leaf<double>(Node<double>*) noexcept;

template <class T> void acquire(xt::xarray<T>& a, const typename xt::xarray<T>::shape_type& shape)
{
    const std::size_t n = element_count(shape);
    if (a.size() == 0 && n * sizeof(T) >= BufferPool<T>::min_bytes) {
        if (BufferPool<T>* pool = BufferPool<T>::get()) pool->take(n, a);
    }
    a.resize(shape);
}
template void acquire<float>(xt::xarray<float>&, const xt::xarray<float>::shape_type&);
template void acquire<double>(xt::xarray<double>&, const xt::xarray<double>::shape_type&);

template <class T> void release_pooled_buffers() noexcept
{
    if (BufferPool<T>* pool = BufferPool<T>::get()) pool->clear();
}
template void release_pooled_buffers<float>() noexcept;
template void release_pooled_buffers<double>() noexcept;

template <class T> std::vector<T>& reduce_buffer()
{
    static thread_local std::vector<T> buf;
    return buf;
}
template std::vector<float>& reduce_buffer<float>();
template std::vector<double>& reduce_buffer<double>();

void throw_stale(const char* where, std::uint64_t var_pass, std::uint64_t tape_pass, bool ended_by_backward)
{
    std::string msg = std::string(where) + ": this Var is stale: it was recorded in pass " + std::to_string(var_pass) +
                      " of the tape, which ";
    if (ended_by_backward && tape_pass == var_pass + 1)
        msg += "was backpropagated, and its storage was reused by pass " + std::to_string(tape_pass) +
               " when a new op was recorded";
    else
        msg += "has ended (the tape is on pass " + std::to_string(tape_pass) + ")";
    msg += "; recompute it in the current pass, or read what you need before the next op is recorded";
    throw Error(msg);
}

void throw_stale(const char* where, std::uint64_t var_pass, const TapeState& tape)
{
    if (tape.retired) {
        throw Error(std::string(where) + ": this Var was recorded on another thread's tape (pass " +
                    std::to_string(var_pass) +
                    "), and that thread has exited; each thread records its own passes, so compute it on this "
                    "thread (or pass its value, not the Var)");
    }
    throw_stale(where, var_pass, tape.pass, tape.ended_by_backward);
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

void throw_version(const char* op, std::size_t input, const Shape& shape, std::uint32_t now, std::uint32_t then)
{
    throw Error("backward: input " + std::to_string(input) + " of " + op + " (a leaf of shape " + format_shape(shape) +
                ") was modified in place after it was recorded (its version is " + std::to_string(now) +
                ", the op saw version " + std::to_string(then) +
                "); update parameters after backward, not between forward and backward");
}

void throw_resized(const char* op, std::size_t input, const Shape& now)
{
    throw Error("backward: input " + std::to_string(input) + " of " + op +
                ", a leaf, was resized in place after it was recorded (it is now " + format_shape(now) +
                "); update parameters after backward, not between forward and backward");
}

template <class T> void node_unreferenced(Node<T>* n) noexcept
{
    static_cast<Tape<T>*>(n->tape)->unreferenced(n);
}
template void node_unreferenced<float>(Node<float>*) noexcept;
template void node_unreferenced<double>(Node<double>*) noexcept;

template <class T>
void reduce_into(const char* op, std::size_t input, Node<T>& node, const T* full, const Shape& full_shape)
{
    const auto& in_shape = node.value.shape();
    if (!broadcast::broadcasts_to(in_shape, full_shape)) {
        throw Error(std::string(op) + ": backward produced a gradient of shape " + format_shape(full_shape) +
                    " for input " + std::to_string(input) + " of shape " + format_shape(in_shape) +
                    ", which is neither that shape nor a broadcast of it");
    }
    const bool add = node.has_grad;
    if (!add && !shapes_equal(node.grad.shape(), in_shape)) acquire(node.grad, in_shape);
    const std::size_t m = node.value.size();
    if (m == element_count(full_shape)) {  // same elements in the same order (leading 1s differ)
        kernel::add_or_assign(node.grad.data(), full, m, add);
        return;
    }
    broadcast::reduce(full, full_shape, node.grad.data(), in_shape, add);
}

template void reduce_into<float>(const char*, std::size_t, Node<float>&, const float*, const Shape&);
template void reduce_into<double>(const char*, std::size_t, Node<double>&, const double*, const Shape&);

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

template <class T> Var<T> Var<T>::grad_var() const
{
    const detail::Node<T>* n = node("grad_var");
    const xt::xarray<T>& g = grad();  // throws when there is none
    if (n->grad_var.defined() && !n->grad_var.stale()) return n->grad_var;
    return constant(g);
}

template <class T> T Var<T>::item() const
{
    detail::Node<T>* n = node("item");
    if (n->value.size() != 1)
        throw Error("item: expected a Var with one element, got shape " + format_shape(n->value.shape()));
    return n->value.data()[0];
}

template <class T> void Var<T>::backward(BackwardOptions options) const
{
    detail::Node<T>* n = node("backward");
    if (n->value.size() != 1) {
        throw Error("backward: output must have one element or be given a seed, got shape " +
                    format_shape(n->value.shape()));
    }
    detail::backward_from<T>(*this, nullptr, options);
}

template <class T> void Var<T>::backward(const xt::xarray<T>& seed, BackwardOptions options) const
{
    detail::Node<T>* n = node("backward");
    if (seed.shape() != n->value.shape()) {
        throw Error("backward: seed shape " + format_shape(seed.shape()) + " differs from the output's shape " +
                    format_shape(n->value.shape()));
    }
    detail::backward_from(*this, &seed, options);
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
    n->exposed = true;
    return n->value;
}

template <class T> void Var<T>::zero_grad() const
{
    detail::Node<T>* n = node("zero_grad");
    n->has_grad = false;
    n->grad_var.reset();
}

template <class T> void Var<T>::set_grad(const xt::xarray<T>& g) const
{
    detail::Node<T>* n = node("set_grad");
    if (n->tape != nullptr)
        throw Error("set_grad: only a leaf (parameter or constant) keeps a gradient; this Var is the output of an op");
    if (g.shape() != n->value.shape()) {
        throw Error("set_grad: shape " + format_shape(g.shape()) + " differs from the leaf's shape " +
                    format_shape(n->value.shape()));
    }
    n->grad = g;
    n->has_grad = true;
    n->grad_var.reset();
}

template class Var<float>;
template class Var<double>;

template <class T> Var<T> parameter(xt::xarray<T> value)
{
    auto* n = new detail::Node<T>();
    n->value = std::move(value);
    n->requires_grad = true;
    return Var<T>::from_node(n, 0);
}

template <class T> Var<T> constant(xt::xarray<T> value)
{
    auto* n = new detail::Node<T>();
    n->value = std::move(value);
    return Var<T>::from_node(n, 0);
}

template <class T> Var<T> detach(const Var<T>& v)
{
    return constant(v.value());
}

template Var<float> parameter<float>(xt::xarray<float>);
template Var<double> parameter<double>(xt::xarray<double>);
template Var<float> constant<float>(xt::xarray<float>);
template Var<double> constant<double>(xt::xarray<double>);
template Var<float> detach<float>(const Var<float>&);
template Var<double> detach<double>(const Var<double>&);

}  // namespace tg
