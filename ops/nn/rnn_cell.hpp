#pragma once
// What the recurrent cells (lstm_cell, gru_cell, rnn_tanh_cell, rnn_relu_cell) share: the
// layout of their inputs on the tape, the checks at entry, the gate pre-activations
// (two gemms into one buffer, the biases written first), the bias gradient (column sums of
// the gates' gradient) and the same pre-activations as tg ops for the vjp rules; and their
// projected form (Layout), in which the recurrent layers run them.

#include <algorithm>
#include <string>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::rnn {

// Where each input sits among a cell's recorded inputs: x, h, then c (lstm only), w_ih,
// w_hh and the biases that were given (an undefined Var is no bias). A projected cell (the
// recurrent layers' form) has neither w_ih nor b_ih: its input 0 is the projection
// x w_ih^T + b_ih of a whole sequence's steps, [rows, G*H], and the cell reads its N rows
// from `row` on in place.
struct Layout {
    std::size_t gates = 1;  // 4 (lstm), 3 (gru), 1 (plain rnn)
    bool has_c = false, has_b_ih = false, has_b_hh = false;
    bool projected = false;
    std::size_t row = 0;  // projected only: the first of the cell's rows of input 0

    std::size_t c() const noexcept { return 2; }
    std::size_t w_ih() const noexcept { return has_c ? 3 : 2; }  // unless projected
    std::size_t w_hh() const noexcept { return (has_c ? 3 : 2) + (projected ? 0 : 1); }
    std::size_t b_ih() const noexcept { return w_hh() + 1; }
    std::size_t b_hh() const noexcept { return w_hh() + (has_b_ih ? 2 : 1); }
};

// The sizes of one call: batch N, input size I, hidden size H.
struct Sizes {
    std::size_t n = 0, in = 0, hidden = 0;
};

// Checks a cell's arguments (c null for the cells without one) and sets the layout. The
// messages are built only when a check fails: a valid call allocates nothing here.
template <class T>
void check_cell(const char* op, Layout& layout, const Var<T>& x, const Var<T>& h, const Var<T>* c, const Var<T>& w_ih,
                const Var<T>& w_hh, const Var<T>& b_ih, const Var<T>& b_hh)
{
    const auto& sx = input_shape(op, x);
    const auto& sh = input_shape(op, h);
    if (sx.size() != 2) throw Error(std::string(op) + ": x must be [N, input_size], got " + format_shape(sx));
    if (sh.size() != 2 || sh[0] != sx[0]) {
        throw Error(std::string(op) + ": h must be [N, hidden_size] with N = " + std::to_string(sx[0]) + " as x " +
                    format_shape(sx) + ", got " + format_shape(sh));
    }
    const std::size_t in = sx[1], hidden = sh[1], gh = layout.gates * hidden;
    layout.has_c = c != nullptr;
    if (c != nullptr) {
        const auto& sc = input_shape(op, *c);
        if (!detail::shapes_equal(sc, sh)) {
            throw Error(std::string(op) + ": c must have h's shape " + format_shape(sh) + ", got " + format_shape(sc));
        }
    }
    auto gates = [&] { return std::to_string(layout.gates) + " gates x hidden_size " + std::to_string(hidden); };
    auto matrix = [](std::size_t rows, std::size_t cols) { return format_shape(std::vector<std::size_t>{rows, cols}); };
    const auto& si = layout.projected ? sx : input_shape(op, w_ih);
    if (!layout.projected && (si.size() != 2 || si[0] != gh || si[1] != in)) {
        throw Error(std::string(op) + ": w_ih must be " + matrix(gh, in) + " (" + gates() + ", input_size " +
                    std::to_string(in) + " from x " + format_shape(sx) + "), got " + format_shape(si));
    }
    const auto& shh = input_shape(op, w_hh);
    if (shh.size() != 2 || shh[0] != gh || shh[1] != hidden) {
        throw Error(std::string(op) + ": w_hh must be " + matrix(gh, hidden) + " (" + gates() + " from h " +
                    format_shape(sh) + "), got " + format_shape(shh));
    }
    auto bias = [&](const char* what, const Var<T>& b) {
        if (!b.defined()) return false;
        const auto& sb = input_shape(op, b);
        if (sb.size() != 1 || sb[0] != gh) {
            throw Error(std::string(op) + ": " + what + " must be [" + std::to_string(gh) + "] (" + gates() +
                        "), got " + format_shape(sb));
        }
        return true;
    };
    layout.has_b_ih = bias("b_ih", b_ih);
    layout.has_b_hh = bias("b_hh", b_hh);
}

// Checks a projected cell's arguments (c null for the cells without one) and sets the
// layout: p [rows, G*H] with rows row .. row + N - 1 present, h [N, H], w_hh [G*H, H], b_hh.
template <class T>
void check_projected_cell(const char* op, Layout& layout, const Var<T>& p, std::size_t row, const Var<T>& h,
                          const Var<T>* c, const Var<T>& w_hh, const Var<T>& b_hh)
{
    const auto& sp = input_shape(op, p);
    const auto& sh = input_shape(op, h);
    if (sh.size() != 2) throw Error(std::string(op) + ": h must be [N, hidden_size], got " + format_shape(sh));
    const std::size_t n = sh[0], gh = layout.gates * sh[1];
    if (sp.size() != 2 || sp[1] != gh || row > sp[0] || sp[0] - row < n) {
        throw Error(std::string(op) + ": the projection must be [rows, " + std::to_string(gh) + "] (" +
                    std::to_string(layout.gates) + " gates x hidden_size " + std::to_string(sh[1]) + " from h " +
                    format_shape(sh) + ") with rows " + std::to_string(row) + ".." + std::to_string(row + n) +
                    " present, got " + format_shape(sp));
    }
    layout.projected = true;
    layout.row = row;
    check_cell(op, layout, h, h, c, Var<T>(), w_hh, Var<T>(), b_hh);
}

// Records a cell with the inputs its layout names: a fixed number of them for each
// combination, so that no list of inputs is allocated per call.
template <class Op, class T>
Var<T> record_cell(Op&& op, const Layout& l, const Var<T>& x, const Var<T>& h, const Var<T>* c, const Var<T>& w_ih,
                   const Var<T>& w_hh, const Var<T>& b_ih, const Var<T>& b_hh)
{
    auto with_biases = [&](auto&&... head) {
        if (l.has_b_ih && l.has_b_hh) return record(std::forward<Op>(op), head..., w_hh, b_ih, b_hh);
        if (l.has_b_ih) return record(std::forward<Op>(op), head..., w_hh, b_ih);
        if (l.has_b_hh) return record(std::forward<Op>(op), head..., w_hh, b_hh);
        return record(std::forward<Op>(op), head..., w_hh);
    };
    auto with_weights = [&](auto&&... head) { return l.projected ? with_biases(head...) : with_biases(head..., w_ih); };
    return c != nullptr ? with_weights(x, h, *c) : with_weights(x, h);
}

template <class T> Sizes sizes_of(const Layout& l, const OpContext<T>& c)
{
    return Sizes{c.input(1).shape()[0], l.projected ? std::size_t{0} : c.input(0).shape()[1], c.input(1).shape()[1]};
}

// pre [N, G*H] = x w_ih^T + h w_hh^T + b_ih + b_hh (split = false), or, for the GRU, whose
// candidate gate needs the two parts apart, pre = x w_ih^T + b_ih and pre_h = h w_hh^T + b_hh.
// A projected cell copies its rows of the projection in place of x w_ih^T + b_ih.
template <class T>
void gate_preactivations(const Layout& l, OpContext<T>& c, const Sizes& s, T* pre, T* pre_h = nullptr)
{
    const std::size_t gh = l.gates * s.hidden;
    const T* bi = l.has_b_ih ? c.input(l.b_ih()).data() : nullptr;
    const T* bh = l.has_b_hh ? c.input(l.b_hh()).data() : nullptr;
    auto fill = [&](T* dst, const T* b1, const T* b2) {
        if (b1 == nullptr && b2 == nullptr) return false;
        for (std::size_t r = 0; r < s.n; ++r) {
            T* row = dst + r * gh;
            if (b1 != nullptr && b2 != nullptr) {
                kernel::map<false>(
                    gh, row, [](auto a, auto b) { return a + b; }, b1, b2);
            } else {
                std::copy_n(b1 != nullptr ? b1 : b2, gh, row);
            }
        }
        return true;
    };
    const bool split = pre_h != nullptr;
    if (l.projected) {
        const T* p = c.input(0).data() + l.row * gh;
        if (!split && bh != nullptr) {
            for (std::size_t r = 0; r < s.n; ++r) {
                kernel::map<false>(
                    gh, pre + r * gh, [](auto a, auto b) { return a + b; }, p + r * gh, bh);
            }
        } else {
            std::copy_n(p, s.n * gh, pre);
        }
    } else {
        const bool biased = split ? fill(pre, bi, nullptr) : fill(pre, bi, bh);
        blas::gemm(false, true, s.n, gh, s.in, T(1), c.input(0).data(), s.in, c.input(l.w_ih()).data(), s.in,
                   biased ? T(1) : T(0), pre, gh);
    }
    T* hpart = split ? pre_h : pre;
    const bool h_biased = split ? fill(pre_h, bh, nullptr) : true;
    blas::gemm(false, true, s.n, gh, s.hidden, T(1), c.input(1).data(), s.hidden, c.input(l.w_hh()).data(), s.hidden,
               h_biased ? T(1) : T(0), hpart, gh);
}

// Every gradient of a cell but c's, from the gradient d [N, G*H] of the gates'
// pre-activations: x = d w_ih, w_ih = d^T x, b_ih = column sums of d, and the same for the
// h side with d_h (the GRU's, which differs from d in its candidate gate; null: d itself),
// h = d_h w_hh + h_direct (the GRU's direct term; null: none). `h_sum` and `colsum` are
// scratch buffers owned by the tape entry.
template <class T>
void cell_grads(const Layout& l, OpContext<T>& c, const Sizes& s, const T* d, const T* d_h, const T* h_direct,
                xt::xarray<T>& h_sum, xt::xarray<T>& colsum)
{
    const std::size_t gh = l.gates * s.hidden;
    if (d_h == nullptr) d_h = d;
    const T* x = c.input(0).data();
    const T* h = c.input(1).data();
    if (l.projected) {
        // The cell's rows of the projection's gradient are d; the first cell to write it
        // (the last step, in a layer's backward) zeroes the other rows.
        const auto& ps = c.input(0).shape();
        c.add_grad(0, ps, [&](T* dst, bool add) {
            if (!add) {
                std::fill_n(dst, l.row * gh, T(0));
                std::fill(dst + (l.row + s.n) * gh, dst + ps[0] * gh, T(0));
            }
            kernel::add_or_assign(dst + l.row * gh, d, s.n * gh, add);
        });
    } else {
        c.add_grad(0, c.input(0).shape(), [&](T* dst, bool add) {
            blas::gemm_to(dst, add, false, false, s.n, s.in, gh, d, gh, c.input(l.w_ih()).data(), s.in);
        });
    }
    if (h_direct == nullptr) {
        c.add_grad(1, c.input(1).shape(), [&](T* dst, bool add) {
            blas::gemm_to(dst, add, false, false, s.n, s.hidden, gh, d_h, gh, c.input(l.w_hh()).data(), s.hidden);
        });
    } else if (c.needs_grad(1)) {
        // The whole gradient into scratch first, then added once, so that a second backward
        // adds exactly the same gradient again.
        const auto& hs = c.input(1).shape();
        if (h_sum.shape() != hs) h_sum.resize(hs);
        std::copy_n(h_direct, s.n * s.hidden, h_sum.data());
        blas::gemm(false, false, s.n, s.hidden, gh, T(1), d_h, gh, c.input(l.w_hh()).data(), s.hidden, T(1),
                   h_sum.data(), s.hidden);
        c.add_grad(1, hs, [&](T* dst, bool add) {
            kernel::add_or_assign(dst, static_cast<const T*>(h_sum.data()), s.n * s.hidden, add);
        });
    }
    if (!l.projected) {
        c.add_grad(l.w_ih(), c.input(l.w_ih()).shape(),
                   [&](T* dst, bool add) { blas::gemm_to(dst, add, true, false, gh, s.in, s.n, d, gh, x, s.in); });
    }
    c.add_grad(l.w_hh(), c.input(l.w_hh()).shape(), [&](T* dst, bool add) {
        blas::gemm_to(dst, add, true, false, gh, s.hidden, s.n, d_h, gh, h, s.hidden);
    });
    // The column sums into scratch first, then added once: a second backward then adds
    // exactly the same gradient again.
    auto bias = [&](std::size_t input, const T* rows) {
        if (colsum.size() != gh) colsum.resize({gh});
        std::fill_n(colsum.data(), gh, T(0));
        for (std::size_t r = 0; r < s.n; ++r) kernel::add_or_assign(colsum.data(), rows + r * gh, gh, true);
        c.add_grad(input, c.input(input).shape(), [&](T* dst, bool add) {
            kernel::add_or_assign(dst, static_cast<const T*>(colsum.data()), gh, add);
        });
    };
    if (l.has_b_ih && c.needs_grad(l.b_ih())) bias(l.b_ih(), d);
    if (l.has_b_hh && c.needs_grad(l.b_hh())) bias(l.b_hh(), d_h);
}

// The same pre-activations as tg ops, for the vjp rules.
template <class T> Var<T> x_part(const Layout& l, const VjpContext<T>& v)
{
    if (l.projected) return narrow(v.input(0), 0, l.row, v.input_shape(1)[0]);
    Var<T> a = matmul(v.input(0), v.input(l.w_ih()), false, true);
    return l.has_b_ih ? a + v.input(l.b_ih()) : a;
}
template <class T> Var<T> h_part(const Layout& l, const VjpContext<T>& v)
{
    Var<T> b = matmul(v.input(1), v.input(l.w_hh()), false, true);
    return l.has_b_hh ? b + v.input(l.b_hh()) : b;
}

// The rules' counterpart of cell_grads (h's direct term, if any, added by the cell).
template <class T> void rule_grads(const Layout& l, VjpContext<T>& v, const Var<T>& d, const Var<T>& d_h)
{
    if (l.projected) {
        // d in the cell's rows of the projection, zeros in the others.
        const std::size_t rows = v.input_shape(0)[0], n = v.input_shape(1)[0];
        if (v.needs_grad(0)) v.add_grad(0, pad(d, 0, l.row, rows - l.row - n));
    } else {
        if (v.needs_grad(0)) v.add_grad(0, matmul(d, v.input(l.w_ih())));
        if (v.needs_grad(l.w_ih())) v.add_grad(l.w_ih(), matmul(d, v.input(0), true, false));
    }
    if (v.needs_grad(1)) v.add_grad(1, matmul(d_h, v.input(l.w_hh())));
    if (v.needs_grad(l.w_hh())) v.add_grad(l.w_hh(), matmul(d_h, v.input(1), true, false));
    if (l.has_b_ih) v.add_grad(l.b_ih(), d);  // summed over the batch by the kit
    if (l.has_b_hh) v.add_grad(l.b_hh(), d_h);
}

}  // namespace tg::rnn

namespace tg::rnn {

// The plain recurrent cells, h' = act(x w_ih^T + b_ih + h w_hh^T + b_hh) with act = tanh
// or relu: the gemms write straight into the output, activated in place.
//   vjp: d = grad_out (1 - h'^2) (tanh) or grad_out where h' > 0 (relu), then as every cell
template <bool Relu> struct PlainCell {
    Layout layout;

    template <class T> void forward(OpContext<T>& c) const
    {
        const Sizes s = sizes_of(layout, c);
        T* y = c.output({s.n, s.hidden}).data();
        gate_preactivations(layout, c, s, y);
        const std::size_t n = s.n * s.hidden;
        if constexpr (Relu) {
            kernel::map<false>(
                n, y, [](auto a) { return kernel::lane_max(a, decltype(a)(0)); }, static_cast<const T*>(y));
        } else {
            kernel::map<false>(
                n, y, [](auto a) { return fn::tanh(a); }, static_cast<const T*>(y));
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const Sizes s = sizes_of(layout, c);
        auto& colsum = c.saved(2);  // the highest slot first: creating a slot may move the others
        auto& h_sum = c.saved(1);
        auto& d = c.saved(0);
        const auto& y = c.output();
        if (d.shape() != y.shape()) d.resize(y.shape());
        const T* g = c.grad_out().data();
        if constexpr (Relu) {
            kernel::map<false>(
                y.size(), d.data(),
                [](auto gv, auto yv) { return kernel::select(yv > decltype(yv)(0), gv, decltype(gv)(0)); }, g,
                y.data());
        } else {
            kernel::map<false>(
                y.size(), d.data(), [](auto gv, auto yv) { return gv * (decltype(yv)(1) - yv * yv); }, g, y.data());
        }
        cell_grads(layout, c, s, static_cast<const T*>(d.data()), static_cast<const T*>(nullptr),
                   static_cast<const T*>(nullptr), h_sum, colsum);
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        const Var<T> y = v.output();
        Var<T> d;
        if constexpr (Relu) {
            d = tg::where(y > T(0), g, T(0));
        } else {
            d = g * (T(1) - y * y);
        }
        rule_grads(layout, v, d, d);
    }
};

// The entry point of a plain cell.
template <class Op, class T>
Var<T> plain_cell(const Var<T>& x, const Var<T>& h, const Var<T>& w_ih, const Var<T>& w_hh, const Var<T>& b_ih,
                  const Var<T>& b_hh)
{
    Layout layout;
    check_cell(Op::name, layout, x, h, static_cast<const Var<T>*>(nullptr), w_ih, w_hh, b_ih, b_hh);
    Op op;
    op.layout = layout;
    return record_cell(std::move(op), layout, x, h, static_cast<const Var<T>*>(nullptr), w_ih, w_hh, b_ih, b_hh);
}

// The entry point of a plain cell in its projected form (Layout).
template <class Op, class T>
Var<T> plain_projected_cell(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh)
{
    Layout layout;
    const auto* no_c = static_cast<const Var<T>*>(nullptr);
    check_projected_cell(Op::name, layout, p, row, h, no_c, w_hh, b_hh);
    Op op;
    op.layout = layout;
    const Var<T> none;
    return record_cell(std::move(op), layout, p, h, no_c, none, w_hh, none, b_hh);
}

}  // namespace tg::rnn
