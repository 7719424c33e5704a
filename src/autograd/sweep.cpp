// The reverse sweeps. A pass's entries are in creation order, so walking them from the
// output's index down to 0 visits every op after all the ops that consumed its output: a
// plain loop, no graph search. Two sweeps share that loop:
//   - first order: gradients are arrays in each node's `grad`; each entry runs its fused
//     kernel (or its vjp rule on plain values);
//   - create_graph: gradients are Vars; each entry runs its vjp rule on Vars, so that what
//     the rule computes is recorded on the same tape (after the entries being swept) and
//     can be differentiated again by a later sweep.
// tg::grad runs either sweep restricted to the entries that lead to the requested inputs.

#include "autograd/sweep.hpp"

#include "autograd/hooks.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include "tapegrad/autograd.hpp"
#include "tapegrad/kit/broadcast.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/tape.hpp"

namespace tg::detail {
// Not an anonymous namespace: tg::grad's lambdas capture these types (-Wsubobject-linkage).
namespace sweep {

// Refuses to run an entry's backward when a leaf it read was changed in place since:
// bumped versions (optimiser steps, set_value) and changed shapes (a value resized through
// a reference taken before the op was recorded, which no version bump saw).
template <class T> [[noreturn]] void throw_changed(const Entry<T>& e, const typename Entry<T>::Seen& seen)
{
    const Node<T>* in = e.inputs[seen.input];
    const Shape shape(in->value.shape().begin(), in->value.shape().end());
    if (in->version != seen.version) throw_version(e.name, seen.input, shape, in->version, seen.version);
    throw_resized(e.name, seen.input, shape);
}

template <class T> TAPEGRAD_ALWAYS_INLINE void check_versions(const Entry<T>& e)
{
    for (const typename Entry<T>::Seen& seen : e.input_seen) {
        const Node<T>* in = e.inputs[seen.input];
        if (in->version != seen.version || (seen.shape != 0 && shape_fingerprint(in->value.shape()) != seen.shape))
            throw_changed(e, seen);
    }
}

[[noreturn]] void throw_released(const char* who, const char* op)
{
    throw Error(std::string(who) + ": this graph was already backpropagated and released (reached op '" + op +
                "' again); pass tg::retain_graph to the first backward to backpropagate through it again");
}

// The tape that recorded a tape node, after checking it is this thread's and that the
// node's own entry was not released by an earlier backward.
template <class T> TAPEGRAD_ALWAYS_INLINE Tape<T>& live_tape(const char* who, const Node<T>* n)
{
    auto& tape = static_cast<Tape<T>&>(*n->tape);
    if (&tape != &Tape<T>::current())
        throw Error(std::string(who) + ": the output was recorded on another thread's tape");
    const Entry<T>& e = tape.entry(n->index);
    if (e.life == EntryState::released) throw_released(who, e.name);
    return tape;
}

// Marks the tape as sweeping for the scope (nothing is reclaimed meanwhile), then collects
// what became unreachable.
template <class T> class Sweeping {
public:
    explicit Sweeping(Tape<T>& tape) noexcept : tape_(tape), was_(tape.flags.sweeping) { tape_.flags.sweeping = true; }
    ~Sweeping()
    {
        tape_.flags.sweeping = was_;
        if (!was_) tape_.collect();
    }
    Sweeping(const Sweeping&) = delete;
    Sweeping& operator=(const Sweeping&) = delete;

private:
    Tape<T>& tape_;
    bool was_;
};

// First-order sweep over entries top..0: every entry whose output received a gradient runs
// its backward and, with `release`, is released. before(i, e) runs first (tg::grad reads
// intermediate gradients there); after(i, e, ran) runs for every entry, whether its
// backward ran or not (hooks).
template <class T, class Before, class After>
void sweep_values(Tape<T>& tape, std::size_t top, bool release, Before before, After after)
{
    const bool check = thread_flags.detect_anomaly;
    Sweeping<T> sweeping(tape);
    try {
        for (std::size_t i = top + 1; i-- > 0;) {
            Entry<T>& e = tape.entry(i);
            if (!e.out.has_grad) {
                after(i, e, false);
                continue;
            }
            if (e.life == EntryState::released) throw_released("backward", e.name);
            before(i, e);
            check_versions(e);
            OpContext<T> c(e.name, e.inputs.data(), e.inputs.size(), &e.out, &e.saved, &e.saved_indices, true, &e,
                           check);
            e.backward(e, c);
            e.out.has_grad = false;
            if (release) tape.release(e);
            after(i, e, true);
        }
    } catch (...) {
        for (std::size_t i = 0; i <= top; ++i) tape.entry(i).out.has_grad = false;
        throw;
    }
}

// No work before or after an entry.
struct Nothing {
    template <class... A> void operator()(const A&...) const noexcept {}
};

// The hooked leaves that entries 0..top use, each with the lowest index of an entry using
// it: once the sweep is past that entry, the leaf's gradient is complete and its hooks run
// (if some entry using it ran its backward in this sweep).
template <class T> class HookPlan {
public:
    HookPlan(Tape<T>& tape, std::size_t top)
    {
        for (std::size_t i = 0; i <= top; ++i) {
            for (Node<T>* in : tape.entry(i).inputs) {
                if (in->tape == nullptr && in->requires_grad) leaves_.push_back({in, i, false});
            }
        }
        std::sort(leaves_.begin(), leaves_.end(), [](const Leaf& a, const Leaf& b) {
            return a.node != b.node ? a.node < b.node : a.first_use < b.first_use;
        });
        leaves_.erase(
            std::unique(leaves_.begin(), leaves_.end(), [](const Leaf& a, const Leaf& b) { return a.node == b.node; }),
            leaves_.end());
        leaves_.erase(std::remove_if(leaves_.begin(), leaves_.end(), [](const Leaf& l) { return !has_hooks(l.node); }),
                      leaves_.end());
        order_.resize(leaves_.size());
        for (std::size_t k = 0; k < order_.size(); ++k) order_[k] = k;
        std::sort(order_.begin(), order_.end(),
                  [&](std::size_t a, std::size_t b) { return leaves_[a].first_use > leaves_[b].first_use; });
    }
    bool empty() const noexcept { return leaves_.empty(); }

    void operator()(std::size_t i, const Entry<T>& e, bool ran)
    {
        if (ran) {
            for (const Node<T>* in : e.inputs) {
                if (in->tape != nullptr) continue;
                auto it = std::lower_bound(leaves_.begin(), leaves_.end(), in,
                                           [](const Leaf& l, const Node<T>* n) { return l.node < n; });
                if (it != leaves_.end() && it->node == in) it->reached = true;
            }
        }
        while (next_ < order_.size() && leaves_[order_[next_]].first_use == i) {
            Leaf& l = leaves_[order_[next_++]];
            if (l.reached) run_hooks(l.node);
        }
    }

private:
    struct Leaf {
        Node<T>* node;
        std::size_t first_use;
        bool reached;
    };
    std::vector<Leaf> leaves_;        // by node address
    std::vector<std::size_t> order_;  // indices into leaves_, latest first use first
    std::size_t next_ = 0;
};

// What tg::grad asks for: the requested nodes, and which entries of 0..top lead to one.
template <class T> class Targets {
public:
    Targets(Tape<T>& tape, std::size_t top, bool any_entries, const std::vector<Node<T>*>& nodes)
        : sorted_(nodes.begin(), nodes.end())
    {
        std::sort(sorted_.begin(), sorted_.end());
        if (!any_entries) return;
        reach_.assign(top + 1, 0);
        for (std::size_t i = 0; i <= top; ++i) {
            for (const Node<T>* in : tape.entry(i).inputs) {
                if (requested(in) || (in->tape != nullptr && reach_[in->index])) {
                    reach_[i] = 1;
                    break;
                }
            }
        }
    }
    bool requested(const Node<T>* n) const { return std::binary_search(sorted_.begin(), sorted_.end(), n); }
    /// Entry i's output leads to a requested node, so its backward must run.
    bool reaches(std::size_t i) const { return reach_[i] != 0; }
    /// Node n is requested or leads to one.
    bool wanted(const Node<T>* n) const
    {
        return requested(n) || (n->tape != nullptr && n->index < reach_.size() && reach_[n->index]);
    }

private:
    std::vector<const Node<T>*> sorted_;
    std::vector<char> reach_;
};

// The create_graph sweep: gradients as Vars, rules run on Vars and recorded.
template <class T> class GraphSweep final : public GradSink<T> {
public:
    GraphSweep(Tape<T>* tape, std::size_t top, const Targets<T>* targets)
        : tape_(tape), targets_(targets), check_(thread_flags.detect_anomaly)
    {
        if (tape_ != nullptr) grads_.resize(top + 1);
    }

    void seed(Node<T>* n, const Var<T>& g) { accumulate(n, g); }

    template <class Before> void run(Before before)
    {
        std::optional<Sweeping<T>> sweeping;
        if (tape_ != nullptr) sweeping.emplace(*tape_);
        for (std::size_t i = grads_.size(); i-- > 0;) {
            if (!grads_[i].defined()) continue;
            Entry<T>& e = tape_->entry(i);
            before(i, grads_[i]);
            if (targets_ != nullptr && !targets_->reaches(i)) continue;
            if (e.life == EntryState::released) throw_released("backward", e.name);
            check_versions(e);
            if (e.vjp == nullptr) {
                throw Error(std::string("backward: op '") + e.name +
                            "' has no vjp rule, so its gradient cannot be recorded (create_graph); give the op a "
                            "`template <class T> void vjp(tg::VjpContext<T>&) const` that computes its gradient "
                            "with tg ops");
            }
            const Var<T> g = std::move(grads_[i]);
            current_ = &e;
            VjpContext<T> v(e, g, this);
            e.vjp(e, v);
        }
    }

    bool needs(const Node<T>* n) const override
    {
        return n->requires_grad && (targets_ == nullptr || targets_->wanted(n));
    }

    void add(const char* op, std::size_t input, Node<T>* n, const Var<T>& g) override
    {
        const auto& shape = n->value.shape();
        Var<T> r = g;
        if (!shapes_equal(g.shape(), shape)) {
            if (!broadcast::broadcasts_to(shape, g.shape())) {
                throw Error(std::string(op) + ": the vjp rule produced a gradient of shape " + format_shape(g.shape()) +
                            " for input " + std::to_string(input) + " of shape " + format_shape(shape) +
                            ", which is neither that shape nor a broadcast of it");
            }
            r = sum_to(g, std::vector<std::size_t>(shape.begin(), shape.end()));
        }
        if (check_) check_finite(op, current_, r.value(), true, input);
        accumulate(n, r);
    }

    /// The leaves that received a gradient, each with its total.
    std::vector<std::pair<Node<T>*, Var<T>>> leaf_grads;

private:
    void accumulate(Node<T>* n, const Var<T>& g)
    {
        if (n->tape != nullptr) {
            Var<T>& slot = grads_[n->index];
            slot = slot.defined() ? slot + g : g;
            return;
        }
        for (auto& lg : leaf_grads) {
            if (lg.first == n) {
                lg.second = lg.second + g;
                return;
            }
        }
        leaf_grads.emplace_back(n, g);
    }

    Tape<T>* tape_;
    const Targets<T>* targets_;
    std::vector<Var<T>> grads_;  // per entry index: the gradient of its output
    const Entry<T>* current_ = nullptr;
    bool check_;
};

// A leaf's gradient after backward(create_graph): the recorded total, added to what the
// leaf already held (as PyTorch accumulates into .grad).
template <class T> void set_recorded_grad(Node<T>* leaf, const Var<T>& g)
{
    Var<T> total = g;
    if (leaf->grad_var.defined() && !leaf->grad_var.stale()) {
        total = leaf->grad_var + g;
    } else if (leaf->has_grad) {
        total = constant(leaf->grad) + g;
    }
    leaf->grad = total.value();
    leaf->has_grad = true;
    leaf->grad_var = total;
}

template <class T> void add_values(Node<T>* n, const xt::xarray<T>& g)
{
    if (n->has_grad) {
        xt::noalias(n->grad) += g;
    } else {
        xt::noalias(n->grad) = g;
        n->has_grad = true;
    }
    n->grad_var.reset();
}

// Restores, at the end of a first-order tg::grad, the leaves' gradients it set aside and
// the requires_grad flags it turned off to prune the sweep.
template <class T> struct Restorer {
    struct Stash {
        Node<T>* leaf;
        xt::xarray<T> grad;
        Var<T> grad_var;
        bool has_grad;
    };
    std::vector<Stash> stashed;
    std::vector<Node<T>*> switched_off;

    void stash(Node<T>* leaf)
    {
        for (const auto& s : stashed) {
            if (s.leaf == leaf) return;
        }
        stashed.push_back({leaf, std::move(leaf->grad), std::move(leaf->grad_var), leaf->has_grad});
        leaf->grad = xt::xarray<T>();
        leaf->has_grad = false;
    }
    void switch_off(Node<T>* n)
    {
        if (!n->requires_grad) return;
        n->requires_grad = false;
        switched_off.push_back(n);
    }
    ~Restorer()
    {
        for (auto& s : stashed) {
            s.leaf->grad = std::move(s.grad);
            s.leaf->grad_var = std::move(s.grad_var);
            s.leaf->has_grad = s.has_grad;
        }
        for (Node<T>* n : switched_off) n->requires_grad = true;
    }
};

}  // namespace sweep

using namespace sweep;

template <class T> void backward_from(const Var<T>& out, const xt::xarray<T>* seed, BackwardOptions options)
{
    Node<T>* n = out.node("backward");
    if (!n->requires_grad) {
        throw Error("backward: the output does not require grad: no parameter reaches it, or it was "
                    "computed under NoGradGuard");
    }
    if (n->tape == nullptr) {  // a parameter is its own output: d(p)/d(p) = 1
        const xt::xarray<T> g = seed != nullptr ? *seed : xt::xarray<T>(xt::ones_like(n->value));
        if (options.create_graph) {
            set_recorded_grad(n, constant(g));
        } else {
            add_values(n, g);
        }
        if (any_hooks<T>()) run_hooks(n);
        return;
    }
    Tape<T>& tape = live_tape("backward", n);
    if (options.create_graph) {
        GraphSweep<T> sweep(&tape, n->index, nullptr);
        sweep.seed(n, constant(seed != nullptr ? *seed : xt::xarray<T>(xt::ones_like(n->value))));
        sweep.run([](std::size_t, const Var<T>&) {});
        for (auto& lg : sweep.leaf_grads) set_recorded_grad(lg.first, lg.second);
        if (any_hooks<T>()) {
            for (auto& lg : sweep.leaf_grads) run_hooks(lg.first);
        }
        return;  // create_graph keeps the pass
    }
    if (seed != nullptr) {
        xt::noalias(n->grad) = *seed;
    } else {
        if (!shapes_equal(n->grad.shape(), n->value.shape())) n->grad.resize(n->value.shape());
        n->grad.data()[0] = T(1);
    }
    n->has_grad = true;
    const bool release = !options.retain_graph;
    if (any_hooks<T>()) {
        HookPlan<T> plan(tape, n->index);
        if (!plan.empty()) {
            sweep_values(tape, n->index, release, Nothing{}, std::ref(plan));
            return;
        }
    }
    sweep_values(tape, n->index, release, Nothing{}, Nothing{});
}

template void backward_from<float>(const Var<float>&, const xt::xarray<float>*, BackwardOptions);
template void backward_from<double>(const Var<double>&, const xt::xarray<double>*, BackwardOptions);

}  // namespace tg::detail

namespace tg {

template <class T>
std::vector<Var<T>> grad(const std::vector<Var<T>>& outputs, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs, GradOptions options)
{
    using detail::Node;
    if (outputs.empty()) throw Error("grad: no outputs given");
    if (inputs.empty()) throw Error("grad: no inputs given");
    if (!grad_outputs.empty() && grad_outputs.size() != outputs.size()) {
        throw Error("grad: " + std::to_string(grad_outputs.size()) + " grad_outputs for " +
                    std::to_string(outputs.size()) + " outputs; give one per output, or none");
    }
    detail::Tape<T>& tape = detail::Tape<T>::current();
    std::vector<Node<T>*> outs, ins;
    bool any_entries = false;
    std::size_t top = 0;
    for (std::size_t k = 0; k < outputs.size(); ++k) {
        Node<T>* n = outputs[k].node("grad");
        if (!n->requires_grad) {
            throw Error("grad: output " + std::to_string(k) +
                        " does not require grad: no input reaches it, or it was computed under NoGradGuard");
        }
        if (n->tape != nullptr) {
            if (n->tape != &tape)
                throw Error("grad: output " + std::to_string(k) + " was recorded on another thread's tape");
            any_entries = true;
            top = std::max(top, n->index);
        }
        if (!grad_outputs.empty()) {
            const auto& s = grad_outputs[k].node("grad")->value.shape();
            if (s != n->value.shape()) {
                throw Error("grad: grad_outputs[" + std::to_string(k) + "] has shape " + format_shape(s) +
                            " but output " + std::to_string(k) + " has shape " + format_shape(n->value.shape()));
            }
        } else if (n->value.size() != 1) {
            throw Error("grad: output " + std::to_string(k) + " has shape " + format_shape(n->value.shape()) +
                        "; give grad_outputs for outputs with more than one element");
        }
        outs.push_back(n);
    }
    for (const Node<T>* n : outs) {
        if (n->tape != nullptr && tape.entry(n->index).life == detail::EntryState::released) {
            throw Error("grad: this graph was already backpropagated and released; pass retain_graph (or "
                        "create_graph) to the first backward or grad to differentiate through it again");
        }
    }
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        Node<T>* n = inputs[k].node("grad");
        if (!n->requires_grad) {
            throw Error("grad: input " + std::to_string(k) +
                        " does not require grad (a constant, or computed under NoGradGuard)");
        }
        if (n->tape != nullptr && n->tape != &tape)
            throw Error("grad: input " + std::to_string(k) + " was recorded on another thread's tape");
        ins.push_back(n);
    }
    auto seed_of = [&](std::size_t k) {
        return grad_outputs.empty() ? xt::xarray<T>(xt::ones_like(outs[k]->value)) : grad_outputs[k].value();
    };

    const detail::sweep::Targets<T> targets(tape, top, any_entries, ins);
    std::vector<Var<T>> result(inputs.size());
    // Gives the gradient of node n to every input slot that asks for n (make() runs once).
    auto deliver = [&](const Node<T>* n, const auto& make) {
        Var<T> g;
        for (std::size_t k = 0; k < ins.size(); ++k) {
            if (ins[k] != n) continue;
            if (!g.defined()) g = make();
            result[k] = g;
        }
    };

    if (options.create_graph) {
        detail::sweep::GraphSweep<T> sweep(any_entries ? &tape : nullptr, top, &targets);
        for (std::size_t k = 0; k < outs.size(); ++k) {
            sweep.seed(outs[k], grad_outputs.empty() ? constant(seed_of(k)) : grad_outputs[k]);
        }
        sweep.run([&](std::size_t i, const Var<T>& g) {
            if (targets.requested(&tape.entry(i).out)) deliver(&tape.entry(i).out, [&] { return g; });
        });
        for (const auto& lg : sweep.leaf_grads) deliver(lg.first, [&] { return lg.second; });
    } else {
        detail::sweep::Restorer<T> restore;
        // Prune: set aside the requested leaves' own gradients, and turn off every other
        // leaf and every entry that leads to no requested input, so that no kernel computes
        // a gradient nobody asked for and no leaf's grad() changes.
        if (any_entries) {
            for (std::size_t i = 0; i <= top; ++i) {
                detail::Entry<T>& e = tape.entry(i);
                for (Node<T>* in : e.inputs) {
                    if (in->tape != nullptr || !in->requires_grad) continue;
                    if (targets.requested(in)) {
                        restore.stash(in);
                    } else {
                        restore.switch_off(in);
                    }
                }
                if (!targets.wanted(&e.out)) restore.switch_off(&e.out);
            }
        }
        for (Node<T>* n : ins) {
            if (n->tape == nullptr) restore.stash(n);
        }
        for (std::size_t k = 0; k < outs.size(); ++k) {
            Node<T>* n = outs[k];
            const bool seeded = n->tape != nullptr ? n->requires_grad : targets.requested(n);
            if (seeded) detail::sweep::add_values(n, seed_of(k));
        }
        if (any_entries) {
            detail::sweep::sweep_values(
                tape, top, !options.retain_graph,
                [&](std::size_t, const detail::Entry<T>& e) {
                    if (targets.requested(&e.out)) deliver(&e.out, [&] { return constant(e.out.grad); });
                },
                detail::sweep::Nothing{});
        }
        for (Node<T>* n : ins) {
            if (n->tape == nullptr && n->has_grad) deliver(n, [&] { return constant(std::move(n->grad)); });
        }
    }

    for (std::size_t k = 0; k < result.size(); ++k) {
        if (result[k].defined()) continue;
        if (!options.allow_unused) {
            throw Error("grad: input " + std::to_string(k) + " (shape " + format_shape(ins[k]->value.shape()) +
                        ") is not used by the outputs, so it has no gradient; pass allow_unused to get zeros");
        }
        result[k] = constant(xt::xarray<T>(xt::zeros<T>(ins[k]->value.shape())));
    }
    return result;
}

template std::vector<Var<float>> grad<float>(const std::vector<Var<float>>&, const std::vector<Var<float>>&,
                                             const std::vector<Var<float>>&, GradOptions);
template std::vector<Var<double>> grad<double>(const std::vector<Var<double>>&, const std::vector<Var<double>>&,
                                               const std::vector<Var<double>>&, GradOptions);

}  // namespace tg
