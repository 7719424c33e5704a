#pragma once
/// \file recurrent.hpp
/// Recurrent layers with torch.nn's constructor arguments, initialisation and state_dict
/// names: LSTM, GRU and RNN over whole sequences (padded or packed), the one-step cells
/// LSTMCell, GRUCell and RNNCell, and packing of sequences of different lengths
/// (pack_padded_sequence, pad_packed_sequence, pack_sequence).
///
/// \code
/// tg::nn::LSTMOptions options;
/// options.num_layers = 2;
/// tg::nn::LSTM<float> lstm(32, 64, options);
/// tg::nn::RecurrentOutput<float> out = lstm.forward(x, {});   // x: [T, N, 32]; out.output: [T, N, 64]
/// \endcode

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/nn.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/var.hpp"

namespace tg::nn {

/// Options of LSTM, as torch.nn.LSTM's keyword arguments.
struct LSTMOptions {
    std::size_t num_layers = 1;  ///< stacked layers, each taking the previous one's output
    bool bias = true;            ///< whether each layer has bias_ih and bias_hh
    bool batch_first = false;    ///< inputs and outputs [N, T, F] instead of [T, N, F]
    double dropout = 0.0;        ///< dropout on each layer's output but the last's, in training mode
    bool bidirectional = false;  ///< a second direction per layer, run from the end, outputs concatenated
    std::size_t proj_size = 0;   ///< when > 0, h is projected to proj_size features by weight_hr
};

/// Options of GRU, as torch.nn.GRU's keyword arguments.
struct GRUOptions {
    std::size_t num_layers = 1;  ///< stacked layers, each taking the previous one's output
    bool bias = true;            ///< whether each layer has bias_ih and bias_hh
    bool batch_first = false;    ///< inputs and outputs [N, T, F] instead of [T, N, F]
    double dropout = 0.0;        ///< dropout on each layer's output but the last's, in training mode
    bool bidirectional = false;  ///< a second direction per layer, run from the end, outputs concatenated
};

/// The nonlinearity of a plain RNN: h' = act(x w_ih^T + b_ih + h w_hh^T + b_hh).
enum class RNNNonlinearity { tanh, relu };

/// Options of RNN, as torch.nn.RNN's keyword arguments.
struct RNNOptions {
    std::size_t num_layers = 1;                            ///< stacked layers
    RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;  ///< tanh or relu
    bool bias = true;                                      ///< whether each layer has bias_ih and bias_hh
    bool batch_first = false;                              ///< inputs and outputs [N, T, F] instead of [T, N, F]
    double dropout = 0.0;        ///< dropout on each layer's output but the last's, in training mode
    bool bidirectional = false;  ///< a second direction per layer, run from the end, outputs concatenated
};

/// The hidden state of a recurrent layer: h [num_layers * directions, N, H (proj_size if set)]
/// and, for the LSTM only, c [num_layers * directions, N, H]. An undefined Var stands for zeros.
template <class T> struct RecurrentState {
    Var<T> h;  ///< the hidden state
    Var<T> c;  ///< the LSTM's cell state (undefined for GRU and RNN)
};

/// What a recurrent layer returns for a padded input: the output of the last layer at every
/// step, [T, N, directions * H] ([N, T, ...] with batch_first), and the final state.
template <class T> struct RecurrentOutput {
    Var<T> output;            ///< every step's output of the last layer
    RecurrentState<T> state;  ///< the state after the last step of every layer and direction
};

/// Sequences of different lengths packed step by step (torch.nn.utils.rnn.PackedSequence):
/// `data` holds, for each step t, the rows of the batch_sizes[t] sequences still running,
/// longest first. sorted_indices[i] is the original batch position of the i-th longest
/// sequence and unsorted_indices its inverse; both are empty when the batch was already sorted.
template <class T> struct PackedSequence {
    Var<T> data;                                ///< [sum of batch_sizes, *]
    std::vector<std::size_t> batch_sizes;       ///< sequences running at each step, non-increasing
    std::vector<std::size_t> sorted_indices;    ///< original position of each packed row slot (or empty)
    std::vector<std::size_t> unsorted_indices;  ///< the inverse permutation (or empty)
};

/// What a recurrent layer returns for a packed input: the packed output (same batch_sizes and
/// indices as the input) and the final state of every sequence, in the original batch order.
template <class T> struct PackedRecurrentOutput {
    PackedSequence<T> output;  ///< data [sum of batch_sizes, directions * H]
    RecurrentState<T> state;   ///< each sequence's state after its own last step
};

namespace detail {
/// Which cell a recurrent layer runs.
enum class RecurrentKind { lstm, gru, rnn_tanh, rnn_relu };
/// Everything a recurrent layer is built from.
struct RecurrentConfig {
    RecurrentKind kind = RecurrentKind::lstm;  ///< the cell
    std::size_t input_size = 0;                ///< features of the input
    std::size_t hidden_size = 0;               ///< features of the hidden state
    std::size_t num_layers = 1;                ///< stacked layers
    bool bias = true;                          ///< biases present
    bool batch_first = false;                  ///< [N, T, F] layout
    double dropout = 0.0;                      ///< between layers
    bool bidirectional = false;                ///< two directions
    std::size_t proj_size = 0;                 ///< LSTM projection (0: none)
};
}  // namespace detail

/// What LSTM, GRU and RNN share: the parameters of every layer and direction, registered with
/// torch.nn's names and order (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_hr_l0,
/// then the same with _reverse, then layer 1, ...), all drawn from U(-1/sqrt(H), 1/sqrt(H)), and
/// the forward over padded or packed sequences. Each layer and direction projects the input of
/// all its steps with one product (x w_ih^T + b_ih); each step then runs the fused cell op
/// (tg::lstm_cell, tg::gru_cell, tg::rnn_tanh_cell, tg::rnn_relu_cell) in the form that reads
/// its rows of that projection in place (tg::detail::lstm_cell_rows, ...), so the layer is
/// differentiable twice. A float LSTM or GRU layer over sequences of one length (no proj_size)
/// may instead run each layer and direction as one oneDNN entry, which is differentiable twice
/// too (tg::set_recurrent_backend, tapegrad/runtime.hpp).
template <class T> class RecurrentLayer : public Module<T> {
public:
    /// Runs every layer over x [T, N, input_size] ([N, T, input_size] with batch_first) from the
    /// initial state (undefined parts: zeros). Throws tg::Error naming the layer and the shapes
    /// when x's feature size or the state's shape is wrong.
    RecurrentOutput<T> forward(const Var<T>& x, const RecurrentState<T>& initial);
    /// Runs every layer over packed sequences; the initial state is in the original batch order,
    /// as is the final one. Each sequence's output and state are those of running it alone.
    PackedRecurrentOutput<T> forward(const PackedSequence<T>& x, const RecurrentState<T>& initial);
    /// The output alone from a zero state, so the layer fits in a Sequential.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x, initial).
    RecurrentOutput<T> operator()(const Var<T>& x, const RecurrentState<T>& initial) { return forward(x, initial); }
    /// Same as forward(x, initial).
    PackedRecurrentOutput<T> operator()(const PackedSequence<T>& x, const RecurrentState<T>& initial)
    {
        return forward(x, initial);
    }
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }

    /// Features of the input.
    std::size_t input_size() const noexcept { return config_.input_size; }
    /// Features of the hidden state.
    std::size_t hidden_size() const noexcept { return config_.hidden_size; }
    /// Stacked layers.
    std::size_t num_layers() const noexcept { return config_.num_layers; }
    /// 2 when bidirectional, else 1.
    std::size_t num_directions() const noexcept { return config_.bidirectional ? 2 : 1; }
    /// The parameter of this name, e.g. "weight_ih_l0_reverse" (tg::Error when there is none).
    const Var<T>& weight(const std::string& name) const { return this->get_parameter(name); }
    std::string type_name() const override { return name_; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override;

protected:
    /// Registers the parameters of `config` for the layer called `name` (in errors and summaries),
    /// drawn from gen. Throws tg::Error for a zero size, a dropout outside [0, 1) or
    /// proj_size >= hidden_size.
    RecurrentLayer(const char* name, detail::RecurrentConfig config, Generator& gen);

private:
    Var<T> run(Var<T> input, const std::vector<std::size_t>& sizes, const RecurrentState<T>& initial,
               RecurrentState<T>& final_state);
    void check_state(const RecurrentState<T>& s, std::size_t n) const;
    std::size_t out_hidden() const noexcept { return config_.proj_size > 0 ? config_.proj_size : config_.hidden_size; }

    const char* name_;
    detail::RecurrentConfig config_;
    std::size_t per_direction_ = 0;  // parameters registered per layer and direction
};

/// A multi-layer LSTM (torch.nn.LSTM): gates (i, f, g, o), c' = f c + i g, h' = o tanh(c'),
/// with proj_size > 0 h' = (o tanh(c')) weight_hr^T.
template <class T> class LSTM : public RecurrentLayer<T> {
public:
    /// Throws tg::Error when a size is 0, dropout is outside [0, 1) or proj_size >= hidden_size.
    LSTM(std::size_t input_size, std::size_t hidden_size, LSTMOptions options = {},
         Generator& gen = default_generator());
    /// The options the layer was built with.
    const LSTMOptions& options() const noexcept { return options_; }

private:
    LSTMOptions options_;
};

/// A multi-layer GRU (torch.nn.GRU): gates (r, z, n), n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
/// h' = (1 - z) n + z h.
template <class T> class GRU : public RecurrentLayer<T> {
public:
    /// Throws tg::Error when a size is 0 or dropout is outside [0, 1).
    GRU(std::size_t input_size, std::size_t hidden_size, GRUOptions options = {}, Generator& gen = default_generator());
    /// The options the layer was built with.
    const GRUOptions& options() const noexcept { return options_; }

private:
    GRUOptions options_;
};

/// A multi-layer Elman RNN (torch.nn.RNN): h' = act(x w_ih^T + b_ih + h w_hh^T + b_hh), act tanh or relu.
template <class T> class RNN : public RecurrentLayer<T> {
public:
    /// Throws tg::Error when a size is 0 or dropout is outside [0, 1).
    RNN(std::size_t input_size, std::size_t hidden_size, RNNOptions options = {}, Generator& gen = default_generator());
    /// The options the layer was built with.
    const RNNOptions& options() const noexcept { return options_; }

private:
    RNNOptions options_;
};

/// One LSTM step as a module (torch.nn.LSTMCell): parameters weight_ih [4H, I], weight_hh [4H, H],
/// bias_ih and bias_hh [4H], all U(-1/sqrt(H), 1/sqrt(H)).
template <class T> class LSTMCell : public Module<T> {
public:
    /// Throws tg::Error when a size is 0.
    LSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias = true, Generator& gen = default_generator());
    /// (h', c') from x [N, I] and state (h, c) [N, H] (undefined: zeros), as tg::lstm_cell.
    RecurrentState<T> forward(const Var<T>& x, const RecurrentState<T>& state = {});
    /// Same as forward(x, state).
    RecurrentState<T> operator()(const Var<T>& x, const RecurrentState<T>& state = {}) { return forward(x, state); }
    /// Features of the hidden state.
    std::size_t hidden_size() const noexcept { return hidden_; }
    std::string type_name() const override { return "LSTMCell"; }

private:
    std::size_t input_, hidden_;
    bool bias_;
};

/// One GRU step as a module (torch.nn.GRUCell): weight_ih [3H, I], weight_hh [3H, H], bias_ih and
/// bias_hh [3H], all U(-1/sqrt(H), 1/sqrt(H)).
template <class T> class GRUCell : public Module<T> {
public:
    /// Throws tg::Error when a size is 0.
    GRUCell(std::size_t input_size, std::size_t hidden_size, bool bias = true, Generator& gen = default_generator());
    /// h' [N, H] from x [N, I] and h [N, H] (undefined: zeros), as tg::gru_cell.
    Var<T> forward(const Var<T>& x, const Var<T>& h);
    /// h' from a zero state (so the cell fits in a Sequential).
    Var<T> forward(const Var<T>& x) { return forward(x, Var<T>()); }
    /// Same as forward(x, h).
    Var<T> operator()(const Var<T>& x, const Var<T>& h) { return forward(x, h); }
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// Features of the hidden state.
    std::size_t hidden_size() const noexcept { return hidden_; }
    std::string type_name() const override { return "GRUCell"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return hidden_; }

private:
    std::size_t input_, hidden_;
    bool bias_;
};

/// One Elman RNN step as a module (torch.nn.RNNCell): weight_ih [H, I], weight_hh [H, H], bias_ih
/// and bias_hh [H], all U(-1/sqrt(H), 1/sqrt(H)).
template <class T> class RNNCell : public Module<T> {
public:
    /// Throws tg::Error when a size is 0.
    RNNCell(std::size_t input_size, std::size_t hidden_size, bool bias = true,
            RNNNonlinearity nonlinearity = RNNNonlinearity::tanh, Generator& gen = default_generator());
    /// h' [N, H] from x [N, I] and h [N, H] (undefined: zeros), as tg::rnn_tanh_cell or tg::rnn_relu_cell.
    Var<T> forward(const Var<T>& x, const Var<T>& h);
    /// h' from a zero state (so the cell fits in a Sequential).
    Var<T> forward(const Var<T>& x) { return forward(x, Var<T>()); }
    /// Same as forward(x, h).
    Var<T> operator()(const Var<T>& x, const Var<T>& h) { return forward(x, h); }
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// Features of the hidden state.
    std::size_t hidden_size() const noexcept { return hidden_; }
    std::string type_name() const override { return "RNNCell"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return hidden_; }

private:
    std::size_t input_, hidden_;
    bool bias_;
    RNNNonlinearity nonlinearity_;
};

/// Packs x [T, N, *] ([N, T, *] with batch_first) holding sequences of the given lengths
/// (torch.nn.utils.rnn.pack_padded_sequence). With enforce_sorted the lengths must be
/// non-increasing and sorted_indices stays empty; without, the batch is sorted by decreasing
/// length (ties keep their order). Throws tg::Error when the number of lengths is not N, a
/// length is 0 or longer than T, or, with enforce_sorted, the lengths are not sorted.
template <class T>
PackedSequence<T> pack_padded_sequence(const Var<T>& x, const std::vector<std::size_t>& lengths,
                                       bool batch_first = false, bool enforce_sorted = true);

/// The reverse of pack_padded_sequence (torch.nn.utils.rnn.pad_packed_sequence): [T, N, *]
/// ([N, T, *] with batch_first) in the original batch order, padding_value after each sequence's
/// end, T = max(total_length, longest); and the lengths. Throws tg::Error when total_length is
/// non-zero but shorter than the longest sequence, or the packed sequence is malformed.
template <class T>
std::pair<Var<T>, std::vector<std::size_t>> pad_packed_sequence(const PackedSequence<T>& x, bool batch_first = false,
                                                                double padding_value = 0.0,
                                                                std::size_t total_length = 0);

/// Packs a list of sequences, each [L_i, *] with the same trailing shape
/// (torch.nn.utils.rnn.pack_sequence). Throws tg::Error for an empty list, an empty sequence,
/// trailing shapes that differ, or, with enforce_sorted, lengths that are not non-increasing.
template <class T> PackedSequence<T> pack_sequence(const std::vector<Var<T>>& sequences, bool enforce_sorted = true);

}  // namespace tg::nn
