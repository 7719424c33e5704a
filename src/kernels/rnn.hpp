#pragma once
// Float LSTM and GRU layers (one layer, one direction, every sequence of the same length)
// through oneDNN's RNN training primitives (src/kernels/rnn_dnnl.cpp), on arrays in
// PyTorch's layouts: x [T, N, I], states [N, H], w_ih [G H, I], w_hh [G H, H], biases [G H]
// with PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n, linear before reset). Without
// oneDNN in the build, available() is false and nothing else may be called.

#include <cstddef>
#include <vector>

namespace tg::rnn_kernel {

enum class Cell { lstm, gru };

struct Geometry {
    Cell cell = Cell::lstm;
    std::size_t steps = 0, batch = 0, input = 0, hidden = 0;
    bool reverse = false;  // the sequence read from its last step to its first

    std::size_t gates() const noexcept { return cell == Cell::lstm ? 4 : 3; }
};

/// Whether the build has oneDNN.
bool available() noexcept;

/// Whether oneDNN can run this geometry: true once a plan for it was made on this thread.
/// A geometry oneDNN refuses is remembered, and false is returned for it from then on.
bool usable(const Geometry& g);

/// The floats of the workspace a forward leaves for its backward.
std::size_t workspace_size(const Geometry& g);

/// Runs the layer: writes y [T, N, H] (step t's h in rows t N ..), c_last [N, H] (LSTM: the
/// cell state after the last step the direction reads; ignored for the GRU) and the workspace.
/// c0 is ignored for the GRU; b_ih and b_hh may be null (no bias).
void forward(const Geometry& g, const float* x, const float* h0, const float* c0, const float* w_ih, const float* w_hh,
             const float* b_ih, const float* b_hh, float* y, float* c_last, float* workspace);

/// The gradients of one backward, in PyTorch's layouts; owned by this thread's plan and
/// valid until its next call with the same geometry.
struct Grads {
    const float *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh;
};

/// The backward of forward(): from dy [T, N, H] and (LSTM) dc_last [N, H], given the same
/// inputs, the forward's y, c_last and workspace.
Grads backward(const Geometry& g, const float* x, const float* h0, const float* c0, const float* w_ih,
               const float* w_hh, const float* b_ih, const float* b_hh, const float* y, const float* c_last,
               const float* workspace, const float* dy, const float* dc_last);

}  // namespace tg::rnn_kernel
