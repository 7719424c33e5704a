// A float LSTM or GRU layer direction over a whole sequence as one tape entry:
//   inputs  x [T N, I], h0 [N, H], c0 [N, H] (LSTM only), w_ih [G H, I], w_hh [G H, H],
//           and b_ih, b_hh [G H] when the layer has biases
//   output  [T N, H] = every step's h (rows t N .. for step t), then, for the LSTM, N rows
//           more: the final c. The final h is y's rows of the last step read.
// Forward and the first-order backward are oneDNN's training primitives (forward_training
// leaves a workspace, saved in the entry, that the backward reads). The vjp rule replays the
// sequence with tg ops and runs backpropagation through time with them, step by step with
// the cells' formulas (ops/nn/lstm_cell.cpp, ops/nn/gru_cell.cpp), so the layer stays
// differentiable twice:
//   LSTM, from step t's gh = grad of h_t (upstream + from step t+1) and gc = grad of c_t:
//     dc = gc + gh o (1 - tanh(c_t)^2),  d = (dc g i (1 - i), dc c_{t-1} f (1 - f), dc i (1 - g^2),
//     gh tanh(c_t) o (1 - o));  grad h_{t-1} = d w_hh,  grad c_{t-1} = dc f
//   GRU: dn = gh (1 - z) (1 - n^2),  dz = gh (h_{t-1} - n) z (1 - z),  dr = dn b_n r (1 - r),
//     d_a = (dr, dz, dn),  d_b = (dr, dz, dn r);  grad h_{t-1} = d_b w_hh + gh z
//   then, with the steps' d (d_a) stacked as D and their d_b and h_{t-1} as D_h and H_prev:
//     grad x = D w_ih, grad w_ih = D^T x, grad b_ih = column sums of D,
//     grad w_hh = D_h^T H_prev, grad b_hh = column sums of D_h

#include "nn/recurrent_onednn.hpp"

#include <atomic>
#include <vector>

#include "kernels/rnn.hpp"
#include "tapegrad/kit.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/runtime.hpp"

namespace tg {

namespace {

std::atomic<RecurrentBackend> backend{RecurrentBackend::automatic};

// Automatic: oneDNN once a step's products reach this many multiply-adds (batch x gates x
// hidden x (input + hidden)), or on one thread. Below it, on two threads, oneDNN's threading
// costs more than it saves (bench/RESULTS.md, "Recurrent layers").
constexpr std::size_t onednn_min_step_work = std::size_t{1} << 20;

}  // namespace

void set_recurrent_backend(RecurrentBackend b)
{
    if (b != RecurrentBackend::automatic && b != RecurrentBackend::tape && b != RecurrentBackend::onednn) {
        throw Error("set_recurrent_backend: unknown backend " + std::to_string(static_cast<int>(b)));
    }
    backend.store(b);
}

RecurrentBackend get_recurrent_backend()
{
    return backend.load();
}

bool onednn_recurrent_available() noexcept
{
    return rnn_kernel::available();
}

namespace nn::detail {

namespace {

using V = Var<float>;

rnn_kernel::Cell cell_of(RecurrentKind kind)
{
    return kind == RecurrentKind::lstm ? rnn_kernel::Cell::lstm : rnn_kernel::Cell::gru;
}

struct OnednnRecurrent {
    static constexpr const char* name = "onednn_recurrent";
    rnn_kernel::Geometry g;
    bool bias = false;

    bool lstm() const noexcept { return g.cell == rnn_kernel::Cell::lstm; }
    std::size_t w_ih() const noexcept { return lstm() ? 3 : 2; }
    std::size_t w_hh() const noexcept { return w_ih() + 1; }
    std::size_t b_ih() const noexcept { return w_ih() + 2; }
    std::size_t b_hh() const noexcept { return w_ih() + 3; }

    const float* bias_data(const OpContext<float>& c, std::size_t i) const
    {
        return bias ? c.input(i).data() : nullptr;
    }

    void forward(OpContext<float>& c) const
    {
        const std::size_t rows = g.steps * g.batch;
        float* out = c.output({rows + (lstm() ? g.batch : 0), g.hidden}).data();
        auto& ws = c.saved(0);
        const std::size_t wsize = rnn_kernel::workspace_size(g);
        if (ws.size() != wsize) ws.resize({wsize});
        rnn_kernel::forward(g, c.input(0).data(), c.input(1).data(), lstm() ? c.input(2).data() : nullptr,
                            c.input(w_ih()).data(), c.input(w_hh()).data(), bias_data(c, b_ih()), bias_data(c, b_hh()),
                            out, lstm() ? out + rows * g.hidden : nullptr, ws.data());
    }

    void backward(OpContext<float>& c) const
    {
        const std::size_t rows = g.steps * g.batch;
        const float* out = c.output().data();
        const float* gout = c.grad_out().data();
        const rnn_kernel::Grads d =
            rnn_kernel::backward(g, c.input(0).data(), c.input(1).data(), lstm() ? c.input(2).data() : nullptr,
                                 c.input(w_ih()).data(), c.input(w_hh()).data(), bias_data(c, b_ih()),
                                 bias_data(c, b_hh()), out, lstm() ? out + rows * g.hidden : nullptr, c.saved(0).data(),
                                 gout, lstm() ? gout + rows * g.hidden : nullptr);
        auto give = [&c](std::size_t i, const float* grad) {
            c.add_grad(i, c.input(i).shape(),
                       [&](float* dst, bool add) { kernel::add_or_assign(dst, grad, c.input(i).size(), add); });
        };
        give(0, d.x);
        give(1, d.h0);
        if (lstm()) give(2, d.c0);
        give(w_ih(), d.w_ih);
        give(w_hh(), d.w_hh);
        if (bias) {
            give(b_ih(), d.b_ih);
            give(b_hh(), d.b_hh);
        }
    }

    void vjp(VjpContext<float>& v) const
    {
        const std::size_t steps = g.steps, n = g.batch, hn = g.hidden;
        const V x = v.input(0), w_ih_v = v.input(w_ih()), w_hh_v = v.input(w_hh());
        const V b_ih_v = bias ? v.input(b_ih()) : V(), b_hh_v = bias ? v.input(b_hh()) : V();
        const V p = bias ? linear_t(x, w_ih_v, b_ih_v) : matmul(x, w_ih_v, false, true);
        const V& grad = v.grad_out();
        // The replay: each step's state before it, and what its backward reads.
        std::vector<V> h_prev(steps), c_prev(steps), s1(steps), s2(steps), s3(steps), s4(steps), s5(steps);
        V h = v.input(1), cs = lstm() ? v.input(2) : V();
        for (std::size_t k = 0; k < steps; ++k) {
            const std::size_t t = g.reverse ? steps - 1 - k : k;
            h_prev[t] = h;
            c_prev[t] = cs;
            const V a = narrow(p, 0, t * n, n);
            V b = matmul(h, w_hh_v, false, true);
            if (bias) b = b + b_hh_v;
            if (lstm()) {
                const std::vector<V> parts = split(a + b, {hn, hn, hn, hn}, 1);
                const V i = sigmoid(parts[0]), f = sigmoid(parts[1]), gg = tanh(parts[2]), o = sigmoid(parts[3]);
                cs = f * cs + i * gg;
                const V tc = tanh(cs);
                h = o * tc;
                s1[t] = i, s2[t] = f, s3[t] = gg, s4[t] = o, s5[t] = tc;
            } else {
                const std::vector<V> pa = split(a, {hn, hn, hn}, 1), pb = split(b, {hn, hn, hn}, 1);
                const V r = sigmoid(pa[0] + pb[0]), z = sigmoid(pa[1] + pb[1]);
                const V nn_ = tanh(pa[2] + r * pb[2]);
                h = (1.0f - z) * nn_ + z * h;
                s1[t] = r, s2[t] = z, s3[t] = nn_, s4[t] = pb[2];
            }
        }
        // Backpropagation through time, from the last step read to the first.
        std::vector<V> d_x(steps), d_h(steps);
        V gh, gc = lstm() ? narrow(grad, 0, steps * n, n) : V();
        for (std::size_t k = steps; k-- > 0;) {
            const std::size_t t = g.reverse ? steps - 1 - k : k;
            const V gy = narrow(grad, 0, t * n, n);
            gh = gh.defined() ? gy + gh : gy;
            if (lstm()) {
                const V &i = s1[t], &f = s2[t], &gg = s3[t], &o = s4[t], &tc = s5[t];
                const V dc = gc + gh * o * (1.0f - tc * tc);
                d_x[t] = concat(std::vector<V>{dc * gg * i * (1.0f - i), dc * c_prev[t] * f * (1.0f - f),
                                               dc * i * (1.0f - gg * gg), gh * tc * o * (1.0f - o)},
                                1);
                d_h[t] = d_x[t];
                gc = dc * f;
                gh = matmul(d_h[t], w_hh_v);
            } else {
                const V &r = s1[t], &z = s2[t], &nn_ = s3[t], &b_n = s4[t];
                const V dn = gh * (1.0f - z) * (1.0f - nn_ * nn_);
                const V dz = gh * (h_prev[t] - nn_) * z * (1.0f - z);
                const V dr = dn * b_n * r * (1.0f - r);
                d_x[t] = concat(std::vector<V>{dr, dz, dn}, 1);
                d_h[t] = concat(std::vector<V>{dr, dz, dn * r}, 1);
                gh = matmul(d_h[t], w_hh_v) + gh * z;
            }
        }
        if (v.needs_grad(1)) v.add_grad(1, gh);
        if (lstm() && v.needs_grad(2)) v.add_grad(2, gc);
        const V dx_all = steps == 1 ? d_x[0] : concat(d_x, 0);
        const V dh_all = lstm() ? dx_all : (steps == 1 ? d_h[0] : concat(d_h, 0));
        if (v.needs_grad(0)) v.add_grad(0, matmul(dx_all, w_ih_v));
        if (v.needs_grad(w_ih())) v.add_grad(w_ih(), matmul(dx_all, x, true, false));
        if (v.needs_grad(w_hh())) {
            const V hp = steps == 1 ? h_prev[0] : concat(h_prev, 0);
            v.add_grad(w_hh(), matmul(dh_all, hp, true, false));
        }
        if (bias) {
            v.add_grad(b_ih(), dx_all);  // summed over the rows by the kit
            v.add_grad(b_hh(), dh_all);
        }
    }
};

}  // namespace

bool use_onednn(RecurrentKind kind, std::size_t steps, std::size_t batch, std::size_t input, std::size_t hidden,
                std::size_t proj_size)
{
    const RecurrentBackend b = get_recurrent_backend();
    if (b == RecurrentBackend::tape || !rnn_kernel::available()) return false;
    if ((kind != RecurrentKind::lstm && kind != RecurrentKind::gru) || proj_size != 0) return false;
    const rnn_kernel::Geometry g{cell_of(kind), steps, batch, input, hidden, false};
    if (b == RecurrentBackend::automatic && get_num_threads() > 1 &&
        batch * g.gates() * hidden * (input + hidden) < onednn_min_step_work) {
        return false;
    }
    return rnn_kernel::usable(g);
}

OnednnLayer onednn_layer(RecurrentKind kind, const Var<float>& x, std::size_t steps, const Var<float>& h0,
                         const Var<float>& c0, const Var<float>& w_ih, const Var<float>& w_hh, const Var<float>& b_ih,
                         const Var<float>& b_hh, bool reverse)
{
    const auto& xs = x.shape();
    const std::size_t n = h0.shape()[0], hidden = h0.shape()[1];
    OnednnRecurrent op{rnn_kernel::Geometry{cell_of(kind), steps, n, xs[1], hidden, reverse}, b_ih.defined()};
    if (!rnn_kernel::usable(op.g)) {
        throw Error(std::string(OnednnRecurrent::name) + ": oneDNN cannot run this layer (input " + format_shape(xs) +
                    ", state " + format_shape(h0.shape()) + ")");
    }
    const bool lstm = kind == RecurrentKind::lstm;
    V out;
    if (lstm) {
        out = op.bias ? record(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh) : record(op, x, h0, c0, w_ih, w_hh);
    } else {
        out = op.bias ? record(op, x, h0, w_ih, w_hh, b_ih, b_hh) : record(op, x, h0, w_ih, w_hh);
    }
    OnednnLayer r;
    const std::size_t rows = steps * n;
    r.y = lstm ? narrow(out, 0, 0, rows) : out;
    r.h = narrow(out, 0, reverse ? 0 : rows - n, n);
    if (lstm) r.c = narrow(out, 0, rows, n);
    return r;
}

}  // namespace nn::detail
}  // namespace tg
