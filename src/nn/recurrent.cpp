// Recurrent layers (LSTM, GRU, RNN), their one-step cells as modules, and packing of
// sequences of different lengths, following torch.nn's arguments, names and semantics.
//
// For each layer and direction a layer projects the input of all steps at once (one gemm),
// then runs its cell op once per step; the cell reads its step's rows of that projection.
// Padded input is the packed case with every step's batch size equal to N, so one loop serves
// both: at each step only the first batch_sizes[t] rows of the state take part (packed rows
// are sorted longest first), rows that have finished leave the state as their final value,
// and the reverse direction takes rows in from the initial state as they start. With equal
// batch sizes no narrow or concat of the state is recorded.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "nn/recurrent_onednn.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/recurrent.hpp"
#include "tapegrad/tensor.hpp"

namespace tg::nn {

namespace {

using detail::RecurrentKind;

std::size_t gates_of(RecurrentKind k)
{
    switch (k) {
    case RecurrentKind::lstm:
        return 4;
    case RecurrentKind::gru:
        return 3;
    default:
        return 1;
    }
}

template <class T> Var<T> hidden_uniform(const std::vector<std::size_t>& shape, std::size_t hidden, Generator& gen)
{
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
    return parameter(init::uniform(-bound, bound).make<T>(shape, hidden, 0, gen));
}

std::string sizes_text(const std::vector<std::size_t>& v)
{
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

template <class T> Var<T> zeros_state(std::size_t n, std::size_t h)
{
    return constant(xt::xarray<T>(xt::zeros<T>({n, h})));
}

xt::xarray<std::int64_t> index_array(const std::vector<std::size_t>& v)
{
    xt::xarray<std::int64_t> a = xt::zeros<std::int64_t>({v.size()});
    for (std::size_t i = 0; i < v.size(); ++i) a(i) = static_cast<std::int64_t>(v[i]);
    return a;
}

void check_cell_sizes(const char* name, std::size_t in, std::size_t hidden)
{
    if (in == 0 || hidden == 0) {
        throw Error(std::string(name) + ": input_size and hidden_size must be positive, got " + std::to_string(in) +
                    " and " + std::to_string(hidden));
    }
}

// Checks batch sizes against the rows of data; returns the number of sequences.
template <class T> std::size_t check_packed(const char* who, const PackedSequence<T>& x)
{
    if (!x.data.defined()) throw Error(std::string(who) + ": the packed sequence has no data");
    const auto& s = x.data.shape();
    if (x.batch_sizes.empty() || x.batch_sizes[0] == 0)
        throw Error(std::string(who) + ": batch_sizes must be non-empty and positive, got " +
                    sizes_text(x.batch_sizes));
    std::size_t total = 0;
    for (std::size_t t = 0; t < x.batch_sizes.size(); ++t) {
        if (x.batch_sizes[t] == 0 || (t > 0 && x.batch_sizes[t] > x.batch_sizes[t - 1])) {
            throw Error(std::string(who) + ": batch_sizes must be positive and non-increasing, got " +
                        sizes_text(x.batch_sizes));
        }
        total += x.batch_sizes[t];
    }
    if (s.empty() || s[0] != total) {
        throw Error(std::string(who) + ": data must have sum(batch_sizes) = " + std::to_string(total) + " rows, got " +
                    format_shape(s));
    }
    const std::size_t n = x.batch_sizes[0];
    if (x.sorted_indices.size() != x.unsorted_indices.size() ||
        (!x.sorted_indices.empty() && x.sorted_indices.size() != n)) {
        throw Error(std::string(who) + ": sorted_indices and unsorted_indices must both be empty or both hold " +
                    std::to_string(n) + " indices, got " + std::to_string(x.sorted_indices.size()) + " and " +
                    std::to_string(x.unsorted_indices.size()));
    }
    for (std::size_t i = 0; i < x.sorted_indices.size(); ++i) {
        if (x.sorted_indices[i] >= n || x.unsorted_indices[x.sorted_indices[i]] != i)
            throw Error(std::string(who) + ": sorted_indices and unsorted_indices are not inverse permutations");
    }
    return n;
}

}  // namespace

// --- the layers ---------------------------------------------------------------------------

template <class T>
RecurrentLayer<T>::RecurrentLayer(const char* name, detail::RecurrentConfig config, Generator& gen)
    : name_(name), config_(config)
{
    const auto& c = config_;
    if (c.input_size == 0 || c.hidden_size == 0 || c.num_layers == 0) {
        throw Error(std::string(name) + ": input_size, hidden_size and num_layers must be positive, got " +
                    std::to_string(c.input_size) + ", " + std::to_string(c.hidden_size) + " and " +
                    std::to_string(c.num_layers));
    }
    if (!(c.dropout >= 0.0 && c.dropout < 1.0) || !(static_cast<T>(c.dropout) < T(1)))
        throw Error(std::string(name) + ": dropout must be in [0, 1), got " + format_number(c.dropout));
    if (c.proj_size > 0 && c.proj_size >= c.hidden_size) {
        throw Error(std::string(name) + ": proj_size must be smaller than hidden_size (" +
                    std::to_string(c.hidden_size) + "), got " + std::to_string(c.proj_size));
    }
    const std::size_t g = gates_of(c.kind) * c.hidden_size, hout = out_hidden();
    for (std::size_t layer = 0; layer < c.num_layers; ++layer) {
        const std::size_t in = layer == 0 ? c.input_size : num_directions() * hout;
        for (std::size_t d = 0; d < num_directions(); ++d) {
            const std::string suffix = "_l" + std::to_string(layer) + (d == 1 ? "_reverse" : "");
            this->register_parameter("weight_ih" + suffix, hidden_uniform<T>({g, in}, c.hidden_size, gen));
            this->register_parameter("weight_hh" + suffix, hidden_uniform<T>({g, hout}, c.hidden_size, gen));
            if (c.bias) {
                this->register_parameter("bias_ih" + suffix, hidden_uniform<T>({g}, c.hidden_size, gen));
                this->register_parameter("bias_hh" + suffix, hidden_uniform<T>({g}, c.hidden_size, gen));
            }
            if (c.proj_size > 0) {
                this->register_parameter("weight_hr" + suffix,
                                         hidden_uniform<T>({c.proj_size, c.hidden_size}, c.hidden_size, gen));
            }
        }
    }
    per_direction_ = 2 + (c.bias ? 2 : 0) + (c.proj_size > 0 ? 1 : 0);
    // Dropout masks between layers come from a generator of the layer's own, seeded from gen:
    // the same gen gives the same masks, and training checkpoints save its state.
    if (c.dropout > 0.0 && c.num_layers > 1) this->register_generator("generator", Generator(gen()));
}

template <class T> std::optional<std::size_t> RecurrentLayer<T>::output_features(std::optional<std::size_t>) const
{
    return num_directions() * out_hidden();
}

template <class T> void RecurrentLayer<T>::check_state(const RecurrentState<T>& s, std::size_t n) const
{
    const std::size_t rows = config_.num_layers * num_directions();
    auto check = [&](const char* what, const Var<T>& v, std::size_t h) {
        if (!v.defined()) return;
        const std::vector<std::size_t> want{rows, n, h};
        const auto& got = v.shape();
        if (got.size() != 3 || got[0] != rows || got[1] != n || got[2] != h) {
            throw Error(std::string(name_) + ": initial " + what + " must be " + format_shape(want) +
                        " (num_layers * directions, batch, " +
                        (h == config_.hidden_size ? "hidden_size" : "proj_size") + "), got " + format_shape(got));
        }
    };
    check("h", s.h, out_hidden());
    if (config_.kind == RecurrentKind::lstm) {
        check("c", s.c, config_.hidden_size);
    } else if (s.c.defined()) {
        throw Error(std::string(name_) + ": the initial state has a c " + format_shape(s.c.shape()) +
                    ", but only an LSTM has a cell state");
    }
}

// The stacked layers over the steps' rows `input` [sum(sizes), F] (step t: the next sizes[t]
// rows); returns the last layer's output in the same rows and sets final_state ([layers *
// directions, N, H], rows in the order of the steps' rows). Each layer and direction projects
// its input for all steps with one product, x w_ih^T + b_ih; each step's cell reads its rows
// of that projection in place.
template <class T>
Var<T> RecurrentLayer<T>::run(Var<T> input, const std::vector<std::size_t>& sizes, const RecurrentState<T>& initial,
                              RecurrentState<T>& final_state)
{
    const auto& cfg = config_;
    const std::size_t nsteps = sizes.size(), n = sizes[0], dirs = num_directions(), hout = out_hidden();
    std::vector<std::size_t> first_row(nsteps, 0);  // step t's rows begin here
    for (std::size_t t = 1; t < nsteps; ++t) first_row[t] = first_row[t - 1] + sizes[t - 1];
    const std::size_t rows = cfg.num_layers * dirs;
    const bool lstm = cfg.kind == RecurrentKind::lstm;
    std::vector<Var<T>> h0, c0;
    if (initial.h.defined()) {
        h0 = chunk(initial.h, rows, 0);
        for (auto& v : h0) v = reshape(v, {n, hout});
    }
    if (lstm && initial.c.defined()) {
        c0 = chunk(initial.c, rows, 0);
        for (auto& v : c0) v = reshape(v, {n, cfg.hidden_size});
    }
    std::vector<Var<T>> hn, cn;
    const Var<T> none;
    // Float LSTM and GRU layers over sequences of equal length may run as one oneDNN entry
    // per layer and direction (tg::set_recurrent_backend).
    bool onednn = false;
    if constexpr (std::is_same<T, float>::value) {
        const bool equal = std::all_of(sizes.begin(), sizes.end(), [n](std::size_t b) { return b == n; });
        onednn = equal && detail::use_onednn(cfg.kind, nsteps, n, cfg.input_size, cfg.hidden_size, cfg.proj_size);
        if (onednn && cfg.num_layers > 1) {
            onednn = detail::use_onednn(cfg.kind, nsteps, n, dirs * hout, cfg.hidden_size, cfg.proj_size);
        }
    }
    for (std::size_t layer = 0; layer < cfg.num_layers; ++layer) {
        std::vector<Var<T>> ys(dirs);  // each direction's output, all steps' rows
        for (std::size_t d = 0; d < dirs; ++d) {
            const std::size_t k = layer * dirs + d, base = k * per_direction_;
            const Var<T>& w_ih = this->own_parameter(base);
            const Var<T>& w_hh = this->own_parameter(base + 1);
            const Var<T>& b_ih = cfg.bias ? this->own_parameter(base + 2) : none;
            const Var<T>& b_hh = cfg.bias ? this->own_parameter(base + 3) : none;
            const Var<T>& w_hr = cfg.proj_size > 0 ? this->own_parameter(base + (cfg.bias ? 4 : 2)) : none;
            const Var<T> h_init = h0.empty() ? zeros_state<T>(n, hout) : h0[k];
            const Var<T> c_init = !lstm ? none : (c0.empty() ? zeros_state<T>(n, cfg.hidden_size) : c0[k]);
            if constexpr (std::is_same<T, float>::value) {
                if (onednn) {
                    const detail::OnednnLayer r =
                        detail::onednn_layer(cfg.kind, input, nsteps, h_init, c_init, w_ih, w_hh, b_ih, b_hh, d == 1);
                    ys[d] = r.y;
                    hn.push_back(r.h);
                    if (lstm) cn.push_back(r.c);
                    continue;
                }
            }
            std::vector<Var<T>> outs(nsteps);
            const Var<T> p = b_ih.defined() ? linear_t(input, w_ih, b_ih) : matmul(input, w_ih, false, true);
            auto step = [&](std::size_t t, Var<T>& h, Var<T>& c) {
                const std::size_t row = first_row[t];
                switch (cfg.kind) {
                case RecurrentKind::lstm: {
                    if (cfg.proj_size == 0) {
                        auto hc = tg::detail::lstm_cell_rows(p, row, h, c, w_hh, b_hh);
                        h = hc.first;
                        c = hc.second;
                    } else {
                        // h is projected ([N, proj_size]) and w_hh [4H, proj_size]: the fused cell
                        // takes h of c's width, so this step is written with plain ops.
                        Var<T> pre = add(narrow(p, 0, row, sizes[t]), matmul(h, w_hh, false, true));
                        if (b_hh.defined()) pre = add(pre, b_hh);
                        const auto g = chunk(pre, 4, 1);
                        c = add(mul(sigmoid(g[1]), c), mul(sigmoid(g[0]), tanh(g[2])));
                        h = matmul(mul(sigmoid(g[3]), tanh(c)), w_hr, false, true);
                    }
                    break;
                }
                case RecurrentKind::gru:
                    h = tg::detail::gru_cell_rows(p, row, h, w_hh, b_hh);
                    break;
                case RecurrentKind::rnn_tanh:
                    h = tg::detail::rnn_tanh_cell_rows(p, row, h, w_hh, b_hh);
                    break;
                case RecurrentKind::rnn_relu:
                    h = tg::detail::rnn_relu_cell_rows(p, row, h, w_hh, b_hh);
                    break;
                }
            };
            Var<T> h = h_init, c = c_init;
            if (d == 0) {
                // Rows leave (shortest sequences last in the batch) as their sequences end.
                std::vector<Var<T>> left_h, left_c;
                std::size_t cur = n;
                for (std::size_t t = 0; t < nsteps; ++t) {
                    const std::size_t b = sizes[t];
                    if (b < cur) {
                        left_h.push_back(narrow(h, 0, b, cur - b));
                        h = narrow(h, 0, 0, b);
                        if (lstm) {
                            left_c.push_back(narrow(c, 0, b, cur - b));
                            c = narrow(c, 0, 0, b);
                        }
                        cur = b;
                    }
                    step(t, h, c);
                    outs[t] = h;
                }
                if (!left_h.empty()) {
                    left_h.push_back(h);
                    std::reverse(left_h.begin(), left_h.end());
                    h = concat(left_h, 0);
                    if (lstm) {
                        left_c.push_back(c);
                        std::reverse(left_c.begin(), left_c.end());
                        c = concat(left_c, 0);
                    }
                }
            } else {
                // From the last step back: rows join from the initial state as their sequences start.
                std::size_t cur = sizes[nsteps - 1];
                if (cur < n) {
                    h = narrow(h_init, 0, 0, cur);
                    if (lstm) c = narrow(c_init, 0, 0, cur);
                }
                for (std::size_t t = nsteps; t-- > 0;) {
                    const std::size_t b = sizes[t];
                    if (b > cur) {
                        h = concat(std::vector<Var<T>>{h, narrow(h_init, 0, cur, b - cur)}, 0);
                        if (lstm) c = concat(std::vector<Var<T>>{c, narrow(c_init, 0, cur, b - cur)}, 0);
                        cur = b;
                    }
                    step(t, h, c);
                    outs[t] = h;
                }
            }
            ys[d] = nsteps == 1 ? outs[0] : concat(outs, 0);
            hn.push_back(h);
            if (lstm) cn.push_back(c);
        }
        // The next layer's input: both directions side by side, dropped out between layers
        // (one mask for all steps).
        input = dirs == 2 ? concat(ys, 1) : ys[0];
        if (this->training_ && cfg.dropout > 0.0 && layer + 1 < cfg.num_layers)
            input = dropout(input, static_cast<T>(cfg.dropout), this->own_generator(0));
    }
    final_state.h = stack(hn, 0);
    if (lstm) final_state.c = stack(cn, 0);
    return input;
}

template <class T> RecurrentOutput<T> RecurrentLayer<T>::forward(const Var<T>& x, const RecurrentState<T>& initial)
{
    if (!x.defined()) throw Error(std::string(name_) + ": the input is undefined");
    const auto& s = x.shape();
    const std::size_t in = config_.input_size;
    if (s.size() != 3 || s[2] != in || s[0] == 0 || s[1] == 0) {
        const std::string want = config_.batch_first ? "[N, T, " + std::to_string(in) + "] (batch_first)"
                                                     : "[T, N, " + std::to_string(in) + "]";
        throw Error(std::string(name_) + "(" + std::to_string(in) + " -> " + std::to_string(config_.hidden_size) +
                    "): expected input " + want + ", got " + format_shape(s));
    }
    const Var<T> xt_ = config_.batch_first ? transpose(x, 0, 1) : x;
    const std::size_t steps = xt_.shape()[0], n = xt_.shape()[1];
    check_state(initial, n);
    RecurrentOutput<T> out;
    const Var<T> ys = run(reshape(xt_, {steps * n, in}), std::vector<std::size_t>(steps, n), initial, out.state);
    const Var<T> y = reshape(ys, {steps, n, ys.shape()[1]});
    out.output = config_.batch_first ? transpose(y, 0, 1) : y;
    return out;
}

template <class T>
PackedRecurrentOutput<T> RecurrentLayer<T>::forward(const PackedSequence<T>& x, const RecurrentState<T>& initial)
{
    const std::string who = std::string(name_) + " (packed input)";
    const std::size_t n = check_packed(who.c_str(), x);
    const auto& s = x.data.shape();
    const std::size_t in = config_.input_size;
    if (s.size() != 2 || s[1] != in) {
        throw Error(who + ": expected data [sum(batch_sizes), " + std::to_string(in) + "], got " + format_shape(s));
    }
    check_state(initial, n);
    // The initial state comes in the original batch order; the steps' rows are sorted.
    RecurrentState<T> sorted = initial;
    if (!x.sorted_indices.empty()) {
        const xt::xarray<std::int64_t> idx = index_array(x.sorted_indices);
        if (sorted.h.defined()) sorted.h = index_select(sorted.h, 1, idx);
        if (sorted.c.defined()) sorted.c = index_select(sorted.c, 1, idx);
    }
    PackedRecurrentOutput<T> out;
    out.output.data = run(x.data, x.batch_sizes, sorted, out.state);
    out.output.batch_sizes = x.batch_sizes;
    out.output.sorted_indices = x.sorted_indices;
    out.output.unsorted_indices = x.unsorted_indices;
    if (!x.unsorted_indices.empty()) {
        const xt::xarray<std::int64_t> idx = index_array(x.unsorted_indices);
        out.state.h = index_select(out.state.h, 1, idx);
        if (out.state.c.defined()) out.state.c = index_select(out.state.c, 1, idx);
    }
    return out;
}

template <class T> Var<T> RecurrentLayer<T>::forward(const Var<T>& x)
{
    return forward(x, RecurrentState<T>{}).output;
}

template <class T>
LSTM<T>::LSTM(std::size_t input_size, std::size_t hidden_size, LSTMOptions options, Generator& gen)
    : RecurrentLayer<T>("LSTM",
                        detail::RecurrentConfig{RecurrentKind::lstm, input_size, hidden_size, options.num_layers,
                                                options.bias, options.batch_first, options.dropout,
                                                options.bidirectional, options.proj_size},
                        gen),
      options_(options)
{}

template <class T>
GRU<T>::GRU(std::size_t input_size, std::size_t hidden_size, GRUOptions options, Generator& gen)
    : RecurrentLayer<T>("GRU",
                        detail::RecurrentConfig{RecurrentKind::gru, input_size, hidden_size, options.num_layers,
                                                options.bias, options.batch_first, options.dropout,
                                                options.bidirectional, 0},
                        gen),
      options_(options)
{}

template <class T>
RNN<T>::RNN(std::size_t input_size, std::size_t hidden_size, RNNOptions options, Generator& gen)
    : RecurrentLayer<T>("RNN",
                        detail::RecurrentConfig{options.nonlinearity == RNNNonlinearity::tanh ? RecurrentKind::rnn_tanh
                                                                                              : RecurrentKind::rnn_relu,
                                                input_size, hidden_size, options.num_layers, options.bias,
                                                options.batch_first, options.dropout, options.bidirectional, 0},
                        gen),
      options_(options)
{}

// --- the cells ----------------------------------------------------------------------------

namespace {
template <class T>
void register_cell(Module<T>& m, std::size_t gates, std::size_t in, std::size_t hidden, bool bias, Generator& gen)
{
    m.register_parameter("weight_ih", hidden_uniform<T>({gates * hidden, in}, hidden, gen));
    m.register_parameter("weight_hh", hidden_uniform<T>({gates * hidden, hidden}, hidden, gen));
    if (bias) {
        m.register_parameter("bias_ih", hidden_uniform<T>({gates * hidden}, hidden, gen));
        m.register_parameter("bias_hh", hidden_uniform<T>({gates * hidden}, hidden, gen));
    }
}

template <class T>
Var<T> cell_state(const char* name, const Var<T>& x, const Var<T>& h, std::size_t in, std::size_t hidden)
{
    const auto& s = x.shape();
    if (s.size() != 2 || s[1] != in) {
        throw Error(std::string(name) + "(" + std::to_string(in) + " -> " + std::to_string(hidden) +
                    "): expected input [N, " + std::to_string(in) + "], got " + format_shape(s));
    }
    if (!h.defined()) return zeros_state<T>(s[0], hidden);
    const auto& sh = h.shape();
    if (sh.size() != 2 || sh[0] != s[0] || sh[1] != hidden) {
        throw Error(std::string(name) + ": state must be " + format_shape(std::vector<std::size_t>{s[0], hidden}) +
                    " for input " + format_shape(s) + ", got " + format_shape(sh));
    }
    return h;
}
}  // namespace

template <class T>
LSTMCell<T>::LSTMCell(std::size_t input_size, std::size_t hidden_size, bool bias, Generator& gen)
    : input_(input_size), hidden_(hidden_size), bias_(bias)
{
    check_cell_sizes("LSTMCell", input_size, hidden_size);
    register_cell(*this, 4, input_size, hidden_size, bias, gen);
}

template <class T> RecurrentState<T> LSTMCell<T>::forward(const Var<T>& x, const RecurrentState<T>& state)
{
    const Var<T> h = cell_state("LSTMCell", x, state.h, input_, hidden_);
    const Var<T> c = cell_state("LSTMCell", x, state.c, input_, hidden_);
    const Var<T> none;
    auto hc = lstm_cell(x, h, c, this->own_parameter(0), this->own_parameter(1), bias_ ? this->own_parameter(2) : none,
                        bias_ ? this->own_parameter(3) : none);
    return {hc.first, hc.second};
}

template <class T>
GRUCell<T>::GRUCell(std::size_t input_size, std::size_t hidden_size, bool bias, Generator& gen)
    : input_(input_size), hidden_(hidden_size), bias_(bias)
{
    check_cell_sizes("GRUCell", input_size, hidden_size);
    register_cell(*this, 3, input_size, hidden_size, bias, gen);
}

template <class T> Var<T> GRUCell<T>::forward(const Var<T>& x, const Var<T>& h)
{
    const Var<T> h0 = cell_state("GRUCell", x, h, input_, hidden_);
    const Var<T> none;
    return gru_cell(x, h0, this->own_parameter(0), this->own_parameter(1), bias_ ? this->own_parameter(2) : none,
                    bias_ ? this->own_parameter(3) : none);
}

template <class T>
RNNCell<T>::RNNCell(std::size_t input_size, std::size_t hidden_size, bool bias, RNNNonlinearity nonlinearity,
                    Generator& gen)
    : input_(input_size), hidden_(hidden_size), bias_(bias), nonlinearity_(nonlinearity)
{
    check_cell_sizes("RNNCell", input_size, hidden_size);
    register_cell(*this, 1, input_size, hidden_size, bias, gen);
}

template <class T> Var<T> RNNCell<T>::forward(const Var<T>& x, const Var<T>& h)
{
    const Var<T> h0 = cell_state("RNNCell", x, h, input_, hidden_);
    const Var<T> none;
    const Var<T>& b_ih = bias_ ? this->own_parameter(2) : none;
    const Var<T>& b_hh = bias_ ? this->own_parameter(3) : none;
    return nonlinearity_ == RNNNonlinearity::tanh
               ? rnn_tanh_cell(x, h0, this->own_parameter(0), this->own_parameter(1), b_ih, b_hh)
               : rnn_relu_cell(x, h0, this->own_parameter(0), this->own_parameter(1), b_ih, b_hh);
}

// --- packing ------------------------------------------------------------------------------

template <class T>
PackedSequence<T> pack_padded_sequence(const Var<T>& x, const std::vector<std::size_t>& lengths, bool batch_first,
                                       bool enforce_sorted)
{
    const char* who = "pack_padded_sequence";
    if (!x.defined()) throw Error(std::string(who) + ": the input is undefined");
    const auto& s = x.shape();
    if (s.size() < 2) throw Error(std::string(who) + ": x must be [T, N, *] or [N, T, *], got " + format_shape(s));
    const std::size_t steps = batch_first ? s[1] : s[0], n = batch_first ? s[0] : s[1];
    if (lengths.size() != n) {
        throw Error(std::string(who) + ": expected " + std::to_string(n) + " lengths (the batch of x " +
                    format_shape(s) + "), got " + std::to_string(lengths.size()));
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (lengths[i] == 0 || lengths[i] > steps) {
            throw Error(std::string(who) + ": lengths must be in 1.." + std::to_string(steps) +
                        " (the padded length of x " + format_shape(s) + "), got " + std::to_string(lengths[i]) +
                        " at position " + std::to_string(i));
        }
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    PackedSequence<T> p;
    if (enforce_sorted) {
        for (std::size_t i = 1; i < n; ++i) {
            if (lengths[i] > lengths[i - 1]) {
                throw Error(std::string(who) + ": lengths must be non-increasing with enforce_sorted, got " +
                            sizes_text(lengths) + " (pass enforce_sorted = false to sort them)");
            }
        }
    } else {
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return lengths[a] > lengths[b]; });
        p.sorted_indices = order;
        p.unsorted_indices.assign(n, 0);
        for (std::size_t i = 0; i < n; ++i) p.unsorted_indices[order[i]] = i;
    }
    const std::size_t longest = lengths[order[0]];
    std::vector<std::size_t> rows;
    for (std::size_t t = 0; t < longest; ++t) {
        std::size_t b = 0;
        for (std::size_t i = 0; i < n && lengths[order[i]] > t; ++i, ++b)
            rows.push_back(batch_first ? order[i] * steps + t : t * n + order[i]);
        p.batch_sizes.push_back(b);
    }
    std::vector<std::size_t> flat{steps * n};
    flat.insert(flat.end(), s.begin() + 2, s.end());
    p.data = index_select(reshape(x, flat), 0, index_array(rows));
    return p;
}

template <class T>
std::pair<Var<T>, std::vector<std::size_t>> pad_packed_sequence(const PackedSequence<T>& x, bool batch_first,
                                                                double padding_value, std::size_t total_length)
{
    const char* who = "pad_packed_sequence";
    const std::size_t n = check_packed(who, x);
    const std::size_t longest = x.batch_sizes.size();
    if (total_length != 0 && total_length < longest) {
        throw Error(std::string(who) + ": total_length (" + std::to_string(total_length) +
                    ") is shorter than the longest sequence (" + std::to_string(longest) + ")");
    }
    const std::size_t steps = std::max(total_length, longest);
    const auto& s = x.data.shape();
    const std::size_t total = s[0];
    std::vector<std::size_t> lengths(n, 0);  // by sorted slot first
    for (std::size_t b : x.batch_sizes)
        for (std::size_t i = 0; i < b; ++i) ++lengths[i];
    auto original = [&](std::size_t slot) { return x.sorted_indices.empty() ? slot : x.sorted_indices[slot]; };
    // Row of data for (t, slot), or `total` (the padding row) past the sequence's end.
    std::vector<std::size_t> rows(steps * n, total);
    std::size_t offset = 0;
    for (std::size_t t = 0; t < longest; ++t) {
        for (std::size_t i = 0; i < x.batch_sizes[t]; ++i) {
            const std::size_t b = original(i);
            rows[batch_first ? b * steps + t : t * n + b] = offset + i;
        }
        offset += x.batch_sizes[t];
    }
    std::vector<std::size_t> pad_shape(s.begin(), s.end());
    pad_shape[0] = 1;
    xt::xarray<T> pad_value = xt::zeros<T>(pad_shape);
    std::fill(pad_value.begin(), pad_value.end(), static_cast<T>(padding_value));
    const Var<T> with_pad = concat(std::vector<Var<T>>{x.data, constant(std::move(pad_value))}, 0);
    std::vector<std::size_t> shape{batch_first ? n : steps, batch_first ? steps : n};
    shape.insert(shape.end(), s.begin() + 1, s.end());
    const Var<T> padded = reshape(index_select(with_pad, 0, index_array(rows)), shape);
    std::vector<std::size_t> out_lengths(n);
    for (std::size_t i = 0; i < n; ++i) out_lengths[original(i)] = lengths[i];
    return {padded, out_lengths};
}

template <class T> PackedSequence<T> pack_sequence(const std::vector<Var<T>>& sequences, bool enforce_sorted)
{
    const char* who = "pack_sequence";
    if (sequences.empty()) throw Error(std::string(who) + ": no sequences given");
    std::vector<std::size_t> lengths, starts;
    std::size_t start = 0;
    for (std::size_t i = 0; i < sequences.size(); ++i) {
        if (!sequences[i].defined())
            throw Error(std::string(who) + ": sequence " + std::to_string(i) + " is undefined");
        const auto& s = sequences[i].shape();
        const auto& s0 = sequences[0].shape();
        if (s.empty() || s[0] == 0 || s.size() != s0.size() || !std::equal(s.begin() + 1, s.end(), s0.begin() + 1)) {
            throw Error(std::string(who) + ": each sequence must be [L > 0, *] with the trailing shape of the first " +
                        format_shape(s0) + ", got " + format_shape(s) + " at position " + std::to_string(i));
        }
        lengths.push_back(s[0]);
        starts.push_back(start);
        start += s[0];
    }
    if (enforce_sorted && !std::is_sorted(lengths.rbegin(), lengths.rend())) {
        throw Error(std::string(who) + ": lengths must be non-increasing with enforce_sorted, got " +
                    sizes_text(lengths) + " (pass enforce_sorted = false to sort them)");
    }
    const std::size_t longest = *std::max_element(lengths.begin(), lengths.end());
    // Pack through a padded [longest, N, *] layout: rows index into the concatenation.
    const Var<T> all = sequences.size() == 1 ? sequences[0] : concat(sequences, 0);
    const std::size_t n = sequences.size();
    std::vector<std::size_t> rows(longest * n, 0);
    for (std::size_t t = 0; t < longest; ++t)
        for (std::size_t b = 0; b < n; ++b) rows[t * n + b] = t < lengths[b] ? starts[b] + t : starts[b];
    std::vector<std::size_t> shape{longest, n};
    shape.insert(shape.end(), sequences[0].shape().begin() + 1, sequences[0].shape().end());
    const Var<T> padded = reshape(index_select(all, 0, index_array(rows)), shape);
    return pack_padded_sequence(padded, lengths, false, enforce_sorted);
}

template <class T> using VarList = std::vector<Var<T>>;  // a type the instantiation macro can name

#define TAPEGRAD_RECURRENT_INSTANTIATE(T)                                                                              \
    template class RecurrentLayer<T>;                                                                                  \
    template class LSTM<T>;                                                                                            \
    template class GRU<T>;                                                                                             \
    template class RNN<T>;                                                                                             \
    template class LSTMCell<T>;                                                                                        \
    template class GRUCell<T>;                                                                                         \
    template class RNNCell<T>;                                                                                         \
    template PackedSequence<T> pack_padded_sequence<T>(const Var<T>&, const std::vector<std::size_t>&, bool, bool);    \
    template std::pair<Var<T>, std::vector<std::size_t>> pad_packed_sequence<T>(const PackedSequence<T>&, bool,        \
                                                                                double, std::size_t);                  \
    template PackedSequence<T> pack_sequence<T>(const VarList<T>&, bool);
TAPEGRAD_RECURRENT_INSTANTIATE(float)
TAPEGRAD_RECURRENT_INSTANTIATE(double)
#undef TAPEGRAD_RECURRENT_INSTANTIATE

}  // namespace tg::nn
