// ops/nn/rnn_tanh_cell.cpp — one step of a plain recurrent cell (torch.nn.RNNCell(nonlinearity='tanh')), for x [N, I],
//   h [N, H], w_ih [H, I], w_hh [H, H], b_ih and b_hh [H] (each optional):
//     h' [N, H] = tanh(x w_ih^T + b_ih + h w_hh^T + b_hh)
//   vjp: d [N, H] = grad_out (1 - h'^2)
//     grad_x = d w_ih,  grad_h = d w_hh,  grad_w_ih = d^T x,  grad_w_hh = d^T h,
//     grad_b_ih = grad_b_hh = d summed over the batch
// One fused entry (rnn_cell.hpp's PlainCell): the gemms write straight into h', activated in
// place; the rule is written with tg ops from the saved output, so the cell is differentiable
// twice, which PyTorch's fused cell is not.

#include "rnn_cell.hpp"
#include "rnn_cell_samples.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// One step of a plain RNN with tanh (torch.nn.RNNCell): h' = tanh(x w_ih^T + b_ih + h w_hh^T + b_hh).
/// x [N, I], h [N, H], w_ih [H, I], w_hh [H, H], the biases b_ih and b_hh [H] (an undefined Var: none).
template <class T>
Var<T> rnn_tanh_cell(const Var<T>& x, const Var<T>& h, const Var<T>& w_ih, const Var<T>& w_hh, const Var<T>& b_ih,
                     const Var<T>& b_hh);
namespace detail {
/// The recurrent layers' form of tg::rnn_tanh_cell: the input's part x w_ih^T + b_ih comes precomputed for a whole
/// sequence as `p` [rows, H] (one gemm for all steps), and the step reads its N rows from `row` on in place.
template <class T>
Var<T> rnn_tanh_cell_rows(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& w_hh, const Var<T>& b_hh);
}  // namespace detail
//! end

namespace {

struct RnnTanhCell : rnn::PlainCell<false> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
};

}  // namespace

template <class T>
Var<T> rnn_tanh_cell(const Var<T>& x, const Var<T>& h, const Var<T>& w_ih, const Var<T>& w_hh, const Var<T>& b_ih,
                     const Var<T>& b_hh)
{
    return rnn::plain_cell<RnnTanhCell>(x, h, w_ih, w_hh, b_ih, b_hh);
}

template Var<float> rnn_tanh_cell<float>(const Var<float>&, const Var<float>&, const Var<float>&, const Var<float>&,
                                         const Var<float>&, const Var<float>&);
template Var<double> rnn_tanh_cell<double>(const Var<double>&, const Var<double>&, const Var<double>&,
                                           const Var<double>&, const Var<double>&, const Var<double>&);

template <class T>
Var<T> detail::rnn_tanh_cell_rows(const Var<T>& p, std::size_t row, const Var<T>& h, const Var<T>& w_hh,
                                  const Var<T>& b_hh)
{
    return rnn::plain_projected_cell<RnnTanhCell>(p, row, h, w_hh, b_hh);
}

template Var<float> detail::rnn_tanh_cell_rows<float>(const Var<float>&, std::size_t, const Var<float>&,
                                                      const Var<float>&, const Var<float>&);
template Var<double> detail::rnn_tanh_cell_rows<double>(const Var<double>&, std::size_t, const Var<double>&,
                                                        const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    return tg::rnn_samples::cell_samples(rng, tg::rnn_samples::Kind::rnn_tanh);
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::rnn_samples::cell_errors(tg::rnn_samples::Kind::rnn_tanh);
}
