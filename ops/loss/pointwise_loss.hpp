#pragma once
// The pointwise losses (mse, l1, smooth L1, Huber, binary cross-entropy): a per-element loss
// l(pred, target) and its derivatives, stated once as generic formulas (scalars, SIMD
// batches, Vars), then reduced as PyTorch's `reduction` asks. One entry per loss: the
// kernel evaluates l in one loop and the backward in another; the vjp rule runs the same
// derivative formulas on Vars.

#include <string>

#include "tapegrad/kit.hpp"

namespace tg::losses {

/// Derived gives `template <class V> V loss(const V& p, const V& t) const` and the
/// derivatives times the upstream gradient, `dp(g, p, t)` and `dt(g, p, t)`.
template <class Derived> struct Pointwise {
    Reduction reduction = Reduction::mean;

    template <class T> T scale(std::size_t n) const
    {
        return reduction == Reduction::mean ? T(1) / static_cast<T>(n) : T(1);
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& p = c.input(0);
        const auto& t = c.input(1);
        const Derived d = self();
        if (reduction == Reduction::none) {
            kernel::map<false>(
                p.size(), c.output(p.shape()).data(), [d](auto pv, auto tv) { return d.loss(pv, tv); }, p.data(),
                t.data());
            return;
        }
        T s = 0;
        for (std::size_t i = 0; i < p.size(); ++i) s += d.loss(p.data()[i], t.data()[i]);
        c.output({}).data()[0] = s * scale<T>(p.size());  // the mean of nothing is NaN, as PyTorch's
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& p = c.input(0);
        const auto& t = c.input(1);
        const Derived d = self();
        const std::size_t n = p.size();
        for (std::size_t i = 0; i < 2; ++i) {
            c.add_grad(i, p.shape(), [&](T* dst, bool add) {
                auto run = [&](auto g) {
                    if (i == 0) {
                        kernel::map_to(
                            add, n, dst, [d](auto gv, auto pv, auto tv) { return d.dp(gv, pv, tv); }, g, p.data(),
                            t.data());
                    } else {
                        kernel::map_to(
                            add, n, dst, [d](auto gv, auto pv, auto tv) { return d.dt(gv, pv, tv); }, g, p.data(),
                            t.data());
                    }
                };
                if (reduction == Reduction::none) {
                    run(c.grad_out().data());
                } else {
                    run(kernel::Bcast<T>{c.grad_out().data()[0] * scale<T>(n)});
                }
            });
        }
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const std::size_t n = detail::element_count(v.input_shape(0));
        const Var<T> g = reduction == Reduction::none ? v.grad_out() : v.grad_out() * scale<T>(n);
        const Var<T> p = v.input(0), t = v.input(1);
        if (v.needs_grad(0)) v.add_grad(0, self().dp(g, p, t));
        if (v.needs_grad(1)) v.add_grad(1, self().dt(g, p, t));
    }

private:
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

/// The checks every pointwise loss makes: pred and target of the same shape.
/// `first` and `second` name the inputs in the message ("pred is", "logits are").
template <class T>
void check_same_shape(const char* op, const Var<T>& pred, const Var<T>& target, const char* first = "pred is",
                      const char* second = "target is")
{
    const auto& sp = input_shape(op, pred);
    const auto& st = input_shape(op, target);
    if (!detail::shapes_equal(sp, st)) {
        throw Error(std::string(op) + ": " + first + " " + format_shape(sp) + " but " + second + " " +
                    format_shape(st) + "; the shapes must be equal");
    }
}

/// torch expression of a reduction argument.
inline std::string torch_reduction(Reduction r)
{
    return r == Reduction::mean ? "'mean'" : r == Reduction::sum ? "'sum'" : "'none'";
}

/// |x| on scalars, batches and Vars (as a where: the subgradient at 0 comes from the callers' formulas).
template <class V> V abs_of(const V& x)
{
    return fn::where(x < 0, -x, x);
}

}  // namespace tg::losses
