#pragma once
// One float LSTM or GRU layer and direction over a whole sequence as one tape entry, run by
// oneDNN's RNN primitives (src/kernels/rnn_dnnl.cpp); the recurrent layers use it where
// tg::set_recurrent_backend allows and it applies.

#include <cstddef>

#include "tapegrad/recurrent.hpp"

namespace tg::nn::detail {

/// Whether a layer direction of this kind and size runs through oneDNN: float LSTM or GRU,
/// every sequence T steps long, no projection, and the backend setting (automatic: where
/// oneDNN was measured faster).
bool use_onednn(RecurrentKind kind, std::size_t steps, std::size_t batch, std::size_t input, std::size_t hidden,
                std::size_t proj_size);

/// One layer direction's result: y [T N, H] (step t's h in rows t N ..), the final h and c [N, H].
struct OnednnLayer {
    Var<float> y, h, c;
};

/// Runs one layer direction over x [T N, I] from h0 (and, for the LSTM, c0) [N, H]; the
/// weights and biases (undefined: none) as the layer registers them.
OnednnLayer onednn_layer(RecurrentKind kind, const Var<float>& x, std::size_t steps, const Var<float>& h0,
                         const Var<float>& c0, const Var<float>& w_ih, const Var<float>& w_hh, const Var<float>& b_ih,
                         const Var<float>& b_hh, bool reverse);

}  // namespace tg::nn::detail
