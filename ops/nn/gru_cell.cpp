// ops/nn/gru_cell.cpp — one GRU step (torch.nn.GRUCell), for x [N, I], h [N, H], w_ih [3H, I],
//   w_hh [3H, H], b_ih and b_hh [3H] (each optional):
//     a [N, 3H] = x w_ih^T + b_ih = (a_r, a_z, a_n),   b [N, 3H] = h w_hh^T + b_hh = (b_r, b_z, b_n)
//     r = sigmoid(a_r + b_r), z = sigmoid(a_z + b_z), n = tanh(a_n + r b_n)
//     h' [N, H] = (1 - z) n + z h
//   vjp, from gh = grad_out [N, H]:
//     dn = gh (1 - z) (1 - n^2),  dz = gh (h - n) z (1 - z),  dr = dn b_n r (1 - r)
//     d_a [N, 3H] = (dr, dz, dn),   d_b [N, 3H] = (dr, dz, dn r)
//     grad_x = d_a w_ih,  grad_h = d_b w_hh + gh z,
//     grad_w_ih = d_a^T x,  grad_w_hh = d_b^T h,  grad_b_ih = d_a and grad_b_hh = d_b summed over the batch
// One fused entry: the two gemms (each onto its bias), then one pass over the gates; it keeps
// the activated gates and b_n for its fused backward. The rule recomputes the gates with tg
// ops, so the cell is differentiable twice, which PyTorch's fused cell is not.

#include "rnn_cell.hpp"
#include "rnn_cell_samples.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// One GRU step (torch.nn.GRUCell), gates (r, z, n), n = tanh(W_in x + b_in + r (W_hn h + b_hn)); returns h' [N, H].
/// x [N, I], h [N, H], w_ih [3H, I], w_hh [3H, H], the biases b_ih and b_hh [3H] (an undefined Var: none).
template <class T>
Var<T> gru_cell(const Var<T>& x, const Var<T>& h, const Var<T>& w_ih, const Var<T>& w_hh, const Var<T>& b_ih,
                const Var<T>& b_hh);
namespace detail {
/// The recurrent layers' form of tg::gru_cell: the input's part x w_ih^T + b_ih comes precomputed for a whole
/// sequence as `p` [rows, 3H] (one gemm for all steps), and the step reads its N rows from `row` on in place.
template <class T>
Var<T> gru_cell_rows(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh);
}  // namespace detail
//! end

namespace {

struct GruCell {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    rnn::Layout layout;

    template <class T> void forward(OpContext<T>& c) const
    {
        const rnn::Sizes s = rnn::sizes_of(layout, c);
        const std::size_t hn = s.hidden, g3 = 3 * hn;
        auto& hpart = c.saved(1);  // the highest slot first: creating a slot may move the others
        auto& act = c.saved(0);
        const typename xt::xarray<T>::shape_type shape{s.n, g3};
        if (act.shape() != shape) act.resize(shape);
        if (hpart.shape() != shape) hpart.resize(shape);
        rnn::gate_preactivations(layout, c, s, act.data(), hpart.data());
        T* y = c.output({s.n, hn}).data();
        const T* hx = c.input(1).data();
        for (std::size_t r = 0; r < s.n; ++r) {
            T* a = act.data() + r * g3;
            const T* b = hpart.data() + r * g3;
            const std::size_t o = r * hn;
            kernel::for_each_lane<T>(hn, [&](std::size_t j, auto lane) {
                using V = decltype(lane);
                const V rg = fn::sigmoid(V(kernel::load<V>(a, j) + kernel::load<V>(b, j)));
                const V z = fn::sigmoid(V(kernel::load<V>(a + hn, j) + kernel::load<V>(b + hn, j)));
                const V n = fn::tanh(V(kernel::load<V>(a + 2 * hn, j) + rg * kernel::load<V>(b + 2 * hn, j)));
                kernel::store(a, j, rg);
                kernel::store(a + hn, j, z);
                kernel::store(a + 2 * hn, j, n);
                kernel::store(y + o, j, V((V(1) - z) * n + z * kernel::load<V>(hx + o, j)));
            });
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const rnn::Sizes s = rnn::sizes_of(layout, c);
        const std::size_t hn = s.hidden, g3 = 3 * hn;
        auto& colsum = c.saved(6);  // the highest slot first: creating a slot may move the others
        auto& h_sum = c.saved(5);
        auto& h_direct = c.saved(4);
        auto& d_b = c.saved(3);
        auto& d_a = c.saved(2);
        const auto& hpart = c.saved(1);
        const auto& act = c.saved(0);
        if (d_a.shape() != act.shape()) d_a.resize(act.shape());
        if (d_b.shape() != act.shape()) d_b.resize(act.shape());
        if (h_direct.shape() != c.input(1).shape()) h_direct.resize(c.input(1).shape());
        const T* g = c.grad_out().data();
        const T* hx = c.input(1).data();
        for (std::size_t r = 0; r < s.n; ++r) {
            const T* a = act.data() + r * g3;
            const T* b = hpart.data() + r * g3;
            T* da = d_a.data() + r * g3;
            T* db = d_b.data() + r * g3;
            const std::size_t o = r * hn;
            kernel::for_each_lane<T>(hn, [&](std::size_t j, auto lane) {
                using V = decltype(lane);
                const V rg = kernel::load<V>(a, j), z = kernel::load<V>(a + hn, j), n = kernel::load<V>(a + 2 * hn, j);
                const V gv = kernel::load<V>(g + o, j);
                const V dn = gv * (V(1) - z) * (V(1) - n * n);
                const V dz = gv * (kernel::load<V>(hx + o, j) - n) * z * (V(1) - z);
                const V dr = dn * kernel::load<V>(b + 2 * hn, j) * rg * (V(1) - rg);
                kernel::store(da, j, dr);
                kernel::store(db, j, dr);
                kernel::store(da + hn, j, dz);
                kernel::store(db + hn, j, dz);
                kernel::store(da + 2 * hn, j, dn);
                kernel::store(db + 2 * hn, j, V(dn * rg));
                kernel::store(h_direct.data() + o, j, V(gv * z));
            });
        }
        rnn::cell_grads(layout, c, s, static_cast<const T*>(d_a.data()), static_cast<const T*>(d_b.data()),
                        static_cast<const T*>(h_direct.data()), h_sum, colsum);
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const std::size_t hn = v.input_shape(1)[1];
        const std::vector<Var<T>> a = split(rnn::x_part(layout, v), {hn, hn, hn}, 1);
        const std::vector<Var<T>> b = split(rnn::h_part(layout, v), {hn, hn, hn}, 1);
        const Var<T> r = sigmoid(a[0] + b[0]), z = sigmoid(a[1] + b[1]);
        const Var<T> n = tanh(a[2] + r * b[2]);
        const Var<T>& g = v.grad_out();
        const Var<T> h = v.input(1);
        const Var<T> dn = g * (T(1) - z) * (T(1) - n * n);
        const Var<T> dz = g * (h - n) * z * (T(1) - z);
        const Var<T> dr = dn * b[2] * r * (T(1) - r);
        rnn::rule_grads(layout, v, concat(std::vector<Var<T>>{dr, dz, dn}, 1),
                        concat(std::vector<Var<T>>{dr, dz, dn * r}, 1));
        if (v.needs_grad(1)) v.add_grad(1, g * z);
    }
};

}  // namespace

template <class T>
Var<T> gru_cell(const Var<T>& x, const Var<T>& h, const Var<T>& w_ih, const Var<T>& w_hh, const Var<T>& b_ih,
                const Var<T>& b_hh)
{
    rnn::Layout layout;
    layout.gates = 3;
    const auto* no_c = static_cast<const Var<T>*>(nullptr);
    rnn::check_cell(GruCell::name, layout, x, h, no_c, w_ih, w_hh, b_ih, b_hh);
    return rnn::record_cell(GruCell{layout}, layout, x, h, no_c, w_ih, w_hh, b_ih, b_hh);
}

#define TAPEGRAD_INSTANTIATE_GRU_CELL(T)                                                                               \
    template Var<T> gru_cell<T>(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&,             \
                                const Var<T>&);
TAPEGRAD_INSTANTIATE_GRU_CELL(float)
TAPEGRAD_INSTANTIATE_GRU_CELL(double)
#undef TAPEGRAD_INSTANTIATE_GRU_CELL

template <class T>
Var<T> detail::gru_cell_rows(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh)
{
    rnn::Layout layout;
    layout.gates = 3;
    const auto* no_c = static_cast<const Var<T>*>(nullptr);
    rnn::check_projected_cell(GruCell::name, layout, p, row, h, no_c, w_hh, b_hh);
    const Var<T> none;
    return rnn::record_cell(GruCell{layout}, layout, p, h, no_c, none, w_hh, none, b_hh);
}

template Var<float> detail::gru_cell_rows<float>(const Var<float>&, std::size_t, const Var<float>&, const Var<float>&,
                                                 const Var<float>&);
template Var<double> detail::gru_cell_rows<double>(const Var<double>&, std::size_t, const Var<double>&,
                                                   const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::rnn_samples::cell_samples(rng, tg::rnn_samples::Kind::gru);
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::rnn_samples::cell_errors(tg::rnn_samples::Kind::gru);
}
