// ops/nn/lstm_cell.cpp — one LSTM step (torch.nn.LSTMCell), for x [N, I], h and c [N, H],
//   w_ih [4H, I], w_hh [4H, H], b_ih and b_hh [4H] (each optional):
//     a [N, 4H] = x w_ih^T + b_ih + h w_hh^T + b_hh = (a_i, a_f, a_g, a_o), each [N, H]
//     i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
//     c' = f c + i g,   h' = o tanh(c')
//   vjp, from gh = grad of h' and gc = grad of c' (both [N, H]), with t = tanh(c'):
//     dc = gc + gh o (1 - t^2)
//     d [N, 4H] = (dc g i (1 - i), dc c f (1 - f), dc i (1 - g^2), gh t o (1 - o))
//     grad_x = d w_ih,  grad_h = d w_hh,  grad_c = dc f,
//     grad_w_ih = d^T x,  grad_w_hh = d^T h,  grad_b_ih = grad_b_hh = d summed over the batch
// One fused entry computes both outputs, stacked as [2, N, H]: the two gemms into one buffer
// (the biases written first), then one pass over the gates; it keeps the activated gates for
// its fused backward. Two small entries take h' and c' out of the stack (a copy of N H values
// each). The rule recomputes the gates with tg ops, so the cell is differentiable twice, which
// PyTorch's fused cell is not.

#include <utility>

#include "rnn_cell.hpp"
#include "rnn_cell_samples.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// One LSTM step (torch.nn.LSTMCell), gates (i, f, g, o); returns (h', c'), each [N, H].
/// x [N, I], h and c [N, H], w_ih [4H, I], w_hh [4H, H], the biases b_ih and b_hh [4H] (an undefined Var: none).
template <class T>
std::pair<Var<T>, Var<T>> lstm_cell(const Var<T>& x, const Var<T>& h, const Var<T>& c, const Var<T>& w_ih,
                                    const Var<T>& w_hh, const Var<T>& b_ih, const Var<T>& b_hh);
namespace detail {
/// The recurrent layers' form of tg::lstm_cell: the input's part x w_ih^T + b_ih comes precomputed for a whole
/// sequence as `p` [rows, 4H] (one gemm for all steps), and the step reads its N rows from `row` on in place.
template <class T>
std::pair<Var<T>, Var<T>> lstm_cell_rows(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& c,
                                         const Var<T>& w_hh, const Var<T>& b_hh);
}  // namespace detail
//! end

namespace {

// y = stacked[k] for stacked [2, N, H]: how h' (k = 0) and c' (k = 1) leave the cell's entry.
//   vjp: grad_stacked = grad_out in slot k, zeros in the other (pad of grad_out along axis 0)
struct LstmCellOutput {
    static constexpr const char* name = "lstm_cell_output";
    std::size_t k;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& s = c.input(0);
        const std::size_t n = s.size() / 2;
        auto& y = c.output({s.shape()[1], s.shape()[2]});
        std::copy_n(s.data() + k * n, n, y.data());
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& s = c.input(0);
        const std::size_t n = s.size() / 2;
        const T* g = c.grad_out().data();
        c.add_grad(0, s.shape(), [&](T* dst, bool add) {
            if (!add) std::fill_n(dst + (1 - k) * n, n, T(0));
            kernel::add_or_assign(dst + k * n, g, n, add);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const { v.add_grad(0, pad(unsqueeze(v.grad_out(), 0), 0, k, 1 - k)); }
};

struct LstmCell {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    rnn::Layout layout;

    template <class T> void forward(OpContext<T>& c) const
    {
        const rnn::Sizes s = rnn::sizes_of(layout, c);
        const std::size_t hn = s.hidden, g4 = 4 * hn;
        auto& act = c.saved(0);
        if (act.shape() != typename xt::xarray<T>::shape_type{s.n, g4}) act.resize({s.n, g4});
        rnn::gate_preactivations(layout, c, s, act.data());
        T* y = c.output({std::size_t{2}, s.n, hn}).data();
        T* hy = y;
        T* cy = y + s.n * hn;
        const T* cx = c.input(layout.c()).data();
        for (std::size_t r = 0; r < s.n; ++r) {
            T* a = act.data() + r * g4;
            const std::size_t o = r * hn;
            kernel::for_each_lane<T>(hn, [&](std::size_t j, auto lane) {
                using V = decltype(lane);
                const V i = fn::sigmoid(kernel::load<V>(a, j));
                const V f = fn::sigmoid(kernel::load<V>(a + hn, j));
                const V g = fn::tanh(kernel::load<V>(a + 2 * hn, j));
                const V og = fn::sigmoid(kernel::load<V>(a + 3 * hn, j));
                const V c2 = f * kernel::load<V>(cx + o, j) + i * g;
                kernel::store(a, j, i);
                kernel::store(a + hn, j, f);
                kernel::store(a + 2 * hn, j, g);
                kernel::store(a + 3 * hn, j, og);
                kernel::store(cy + o, j, c2);
                kernel::store(hy + o, j, V(og * fn::tanh(c2)));
            });
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const rnn::Sizes s = rnn::sizes_of(layout, c);
        const std::size_t hn = s.hidden, g4 = 4 * hn;
        auto& colsum = c.saved(4);  // the highest slot first: creating a slot may move the others
        auto& h_sum = c.saved(3);
        auto& grad_c = c.saved(2);
        auto& d = c.saved(1);
        const auto& act = c.saved(0);
        if (d.shape() != act.shape()) d.resize(act.shape());
        const bool need_c = c.needs_grad(layout.c());
        if (need_c && grad_c.shape() != c.input(layout.c()).shape()) grad_c.resize(c.input(layout.c()).shape());
        const T* gh = c.grad_out().data();
        const T* gc = gh + s.n * hn;
        const T* cy = c.output().data() + s.n * hn;
        const T* cx = c.input(layout.c()).data();
        for (std::size_t r = 0; r < s.n; ++r) {
            const T* a = act.data() + r * g4;
            T* dr = d.data() + r * g4;
            const std::size_t o = r * hn;
            kernel::for_each_lane<T>(hn, [&](std::size_t j, auto lane) {
                using V = decltype(lane);
                const V i = kernel::load<V>(a, j), f = kernel::load<V>(a + hn, j), g = kernel::load<V>(a + 2 * hn, j),
                        og = kernel::load<V>(a + 3 * hn, j);
                const V t = fn::tanh(kernel::load<V>(cy + o, j));
                const V ghv = kernel::load<V>(gh + o, j);
                const V dc = kernel::load<V>(gc + o, j) + ghv * og * (V(1) - t * t);
                kernel::store(dr, j, V(dc * g * i * (V(1) - i)));
                kernel::store(dr + hn, j, V(dc * kernel::load<V>(cx + o, j) * f * (V(1) - f)));
                kernel::store(dr + 2 * hn, j, V(dc * i * (V(1) - g * g)));
                kernel::store(dr + 3 * hn, j, V(ghv * t * og * (V(1) - og)));
                if (need_c) kernel::store(grad_c.data() + o, j, V(dc * f));
            });
        }
        if (need_c) {
            c.add_grad(layout.c(), grad_c.shape(), [&](T* dst, bool add) {
                kernel::add_or_assign(dst, static_cast<const T*>(grad_c.data()), grad_c.size(), add);
            });
        }
        rnn::cell_grads(layout, c, s, d.data(), static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), h_sum,
                        colsum);
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const std::size_t hn = v.input_shape(1)[1];
        const Var<T> a = rnn::x_part(layout, v) + rnn::h_part(layout, v);
        const std::vector<Var<T>> parts = split(a, {hn, hn, hn, hn}, 1);
        const Var<T> i = sigmoid(parts[0]), f = sigmoid(parts[1]), g = tanh(parts[2]), o = sigmoid(parts[3]);
        const Var<T> cx = v.input(layout.c());
        const Var<T> t = tanh(f * cx + i * g);
        const Var<T> gh = record(LstmCellOutput{0}, v.grad_out());
        const Var<T> gc = record(LstmCellOutput{1}, v.grad_out());
        const Var<T> dc = gc + gh * o * (T(1) - t * t);
        const Var<T> d = concat(std::vector<Var<T>>{dc * g * i * (T(1) - i), dc * cx * f * (T(1) - f),
                                                    dc * i * (T(1) - g * g), gh * t * o * (T(1) - o)},
                                1);
        if (v.needs_grad(layout.c())) v.add_grad(layout.c(), dc * f);
        rnn::rule_grads(layout, v, d, d);
    }
};

}  // namespace

template <class T>
std::pair<Var<T>, Var<T>> lstm_cell(const Var<T>& x, const Var<T>& h, const Var<T>& c, const Var<T>& w_ih,
                                    const Var<T>& w_hh, const Var<T>& b_ih, const Var<T>& b_hh)
{
    rnn::Layout layout;
    layout.gates = 4;
    rnn::check_cell(LstmCell::name, layout, x, h, &c, w_ih, w_hh, b_ih, b_hh);
    const Var<T> both = rnn::record_cell(LstmCell{layout}, layout, x, h, &c, w_ih, w_hh, b_ih, b_hh);
    return {record(LstmCellOutput{0}, both), record(LstmCellOutput{1}, both)};
}

#define TAPEGRAD_INSTANTIATE_LSTM_CELL(T)                                                                              \
    template std::pair<Var<T>, Var<T>> lstm_cell<T>(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&,        \
                                                    const Var<T>&, const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE_LSTM_CELL(float)
TAPEGRAD_INSTANTIATE_LSTM_CELL(double)
#undef TAPEGRAD_INSTANTIATE_LSTM_CELL

template <class T>
std::pair<Var<T>, Var<T>> detail::lstm_cell_rows(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& c,
                                                 const Var<T>& w_hh, const Var<T>& b_hh)
{
    rnn::Layout layout;
    layout.gates = 4;
    rnn::check_projected_cell(LstmCell::name, layout, p, row, h, &c, w_hh, b_hh);
    const Var<T> none;
    const Var<T> both = rnn::record_cell(LstmCell{layout}, layout, p, h, &c, none, w_hh, none, b_hh);
    return {record(LstmCellOutput{0}, both), record(LstmCellOutput{1}, both)};
}

template std::pair<Var<float>, Var<float>> detail::lstm_cell_rows<float>(const Var<float>&, std::size_t,
                                                                         const Var<float>&, const Var<float>&,
                                                                         const Var<float>&, const Var<float>&);
template std::pair<Var<double>, Var<double>> detail::lstm_cell_rows<double>(const Var<double>&, std::size_t,
                                                                            const Var<double>&, const Var<double>&,
                                                                            const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::rnn_samples::cell_samples(rng, tg::rnn_samples::Kind::lstm);
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::rnn_samples::cell_errors(tg::rnn_samples::Kind::lstm);
}
