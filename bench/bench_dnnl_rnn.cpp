// oneDNN's RNN training primitives against tapegrad's recurrent layers (bench_tapegrad.cpp's
// W8), float32 forward + backward, on the same weights and the same input.
//
//   A  LSTM 32 -> 64, batch 8, 50 steps, 1 layer
//   B  LSTM 64 -> 256, 2 layers, batch 32, 64 steps (the char_lm sample's shape)
//   C  GRU 64 -> 256, 2 layers, batch 32, 64 steps
//   D  LSTM 32 -> 128, batch 8, 50 steps, 1 layer  (below the automatic backend's threshold)
//   E  LSTM 64 -> 128, batch 16, 50 steps, 1 layer (above it)
//
// tapegrad's side is W8's loop: forward over a [T, N, I] constant, loss = sum of the output,
// backward, zero_grad; twice, with the default recurrent backend (automatic: shapes B and C run
// oneDNN's primitives inside the layer) and with the tape's cells (tg::set_recurrent_backend). oneDNN's side runs, each
// iteration, a forward_training primitive (with its workspace) and then a backward primitive with diff_dst = ones (the
// gradient of the sum), which gives diff_src, the weight gradients (layer and iter) and the bias gradient. The
// primitives and buffers are made once, as tapegrad reuses its buffers too; what a real
// training step has to repeat stays in the loop: reordering the plain weights (ldigo, the
// layout an optimizer would update) into the layouts the primitives chose, zeroing the weight
// gradients (oneDNN accumulates into them) and reordering those back to the plain layout.
//
// oneDNN stacks layers in one primitive only when each layer's input is as wide as its output,
// so the two-layer shapes run two single-layer primitives chained: layer 0's dst is layer 1's
// src, and layer 1's diff_src is layer 0's diff_dst. oneDNN always computes the input's
// gradient, which tapegrad skips (its input is a constant). The initial state is zeros on both
// sides, given to oneDNN as explicit zero memories: left out, oneDNN 2.6's LSTM backward gets
// the recurrent weights' gradient wrong. PyTorch's GRU, and so tapegrad's, is oneDNN's
// linear-before-reset GRU (lbr_gru): its gates are ordered (update, reset, candidate), i.e.
// PyTorch's (z, r, n), and its fourth bias is the candidate's hidden-side bias b_hn.
//
// Before timing a shape for the first time, its oneDNN benchmark runs one step on the tapegrad
// model's weights and compares the output, the input gradient and every parameter gradient
// with tapegrad's; a mismatch ends the program with a message. Each oneDNN benchmark's label
// names the implementations (impl_info_str) of its forward and backward primitives.
//
// Threads: both sides run on OpenMP's threads (oneDNN's; tapegrad's float gemm is oneDNN's
// here) and OpenBLAS's: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 for one thread.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <tapegrad/tapegrad.hpp>

#include "workloads.hpp"

namespace {

using V = tg::Var<float>;
using dnnl::memory;
using tag = memory::format_tag;

enum class Cell { lstm, gru };

/// One workload: the cell and its sizes.
struct Shape {
    Cell cell;
    memory::dim input, hidden, batch, steps, layers;
};

constexpr Shape shape_a{Cell::lstm, 32, 64, 8, 50, 1};
constexpr Shape shape_b{Cell::lstm, 64, 256, 32, 64, 2};
constexpr Shape shape_c{Cell::gru, 64, 256, 32, 64, 2};
// Either side of the automatic backend's threshold (2^20 multiply-adds per step, at two threads):
constexpr Shape shape_d{Cell::lstm, 32, 128, 8, 50, 1};   // 8 x 4 x 128 x 160 = 0.66 M: the cells
constexpr Shape shape_e{Cell::lstm, 64, 128, 16, 50, 1};  // 16 x 4 x 128 x 192 = 1.6 M: oneDNN

std::size_t sz(memory::dim d)
{
    return static_cast<std::size_t>(d);
}

std::string cell_name(Cell c)
{
    return c == Cell::lstm ? "LSTM" : "GRU";
}

std::string shape_name(const Shape& s)
{
    return cell_name(s.cell) + " " + std::to_string(s.input) + "->" + std::to_string(s.hidden) + " N" +
           std::to_string(s.batch) + " T" + std::to_string(s.steps) + " L" + std::to_string(s.layers);
}

/// tapegrad's layer for a shape, drawn from the same generator seed as W8's.
std::shared_ptr<tg::nn::RecurrentLayer<float>> make_model(const Shape& s)
{
    tg::Generator gen(80);
    if (s.cell == Cell::lstm) {
        tg::nn::LSTMOptions o;
        o.num_layers = sz(s.layers);
        return std::make_shared<tg::nn::LSTM<float>>(sz(s.input), sz(s.hidden), o, gen);
    }
    tg::nn::GRUOptions o;
    o.num_layers = sz(s.layers);
    return std::make_shared<tg::nn::GRU<float>>(sz(s.input), sz(s.hidden), o, gen);
}

/// W8's input: [T, N, I], uniform in [-1, 1) from seed 81.
xt::xarray<float> make_input(const Shape& s)
{
    const auto values = bench::uniform_values(sz(s.steps * s.batch * s.input), -1.0f, 1.0f, 81);
    xt::xarray<float> x = xt::xarray<float>::from_shape({sz(s.steps), sz(s.batch), sz(s.input)});
    std::copy(values.begin(), values.end(), x.begin());
    return x;
}

float* data(const memory& m)
{
    return static_cast<float*>(m.get_data_handle());
}

/// The name of a weights layout: its dimensions from outermost to innermost in ldigo's letters
/// (ldigo, ldgoi, ...), with " padded" when its rows are longer than the data (oneDNN pads the
/// leading dimension of the matrices it multiplies); else its kind.
std::string layout_name(const memory::desc& md)
{
    const dnnl_memory_desc_t& c = md.data;
    if (c.format_kind == dnnl_format_kind_rnn_packed) return "rnn_packed";
    if (c.format_kind != dnnl_blocked || c.format_desc.blocking.inner_nblks != 0 || c.ndims != 5) return "other";
    std::array<int, 5> order{0, 1, 2, 3, 4};
    const dnnl_dims_t& strides = c.format_desc.blocking.strides;
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return strides[x] > strides[y]; });
    std::string name;
    for (int d : order) name += "ldigo"[d];
    std::size_t elements = 1;
    for (const memory::dim d : md.dims()) elements *= sz(d);
    return md.get_size() > elements * sizeof(float) ? name + " padded" : name;
}

/// A reorder from one memory into another, run each step; nothing when both are the same memory
/// (the primitive wants the plain layout).
class Copy {
public:
    Copy() = default;
    Copy(const memory& from, const memory& to) : from_(from), to_(to), needed_(from.get() != to.get())
    {
        if (needed_) prim_ = dnnl::reorder(from_, to_);
    }
    void run(dnnl::stream& s)
    {
        if (needed_) prim_.execute(s, from_, to_);
    }

private:
    memory from_, to_;
    dnnl::reorder prim_;
    bool needed_ = false;
};

/// The plain memory itself when the primitive wants its layout, else a new memory in the
/// primitive's layout.
memory in_layout(const memory& plain, const memory::desc& want, const dnnl::engine& eng)
{
    return want == plain.get_desc() ? plain : memory(want, eng);
}

/// Zeroes a memory's whole buffer (padding included).
void zero(const memory& m)
{
    std::memset(m.get_data_handle(), 0, m.get_desc().get_size());
}

/// One single-layer, left-to-right oneDNN RNN (LSTM or linear-before-reset GRU) and the
/// memories of one training step. The activations and their gradients (src, dst, diff_src,
/// diff_dst, all [T, N, C] plain) belong to the stack and are shared with the neighbouring
/// layers. The weights and their gradients are kept plain, as tapegrad's parameters are but
/// transposed: ldigo [1, 1, input, gates, hidden] and ldgo [1, 1, bias gates, hidden].
class DnnlLayer {
public:
    DnnlLayer(Cell cell, memory::dim input, memory::dim hidden, const memory& src, const memory& dst,
              const memory& diff_src, const memory& diff_dst, const dnnl::engine& eng)
        : cell_(cell), input_(input), hidden_(hidden), gates_(cell == Cell::lstm ? 4 : 3)
    {
        using dt = memory::data_type;
        const memory::dim batch = src.get_desc().dims()[1], bias_gates = 4;  // lbr GRU: 3 gates, 4 biases
        const memory::dims wl_dims{1, 1, input_, gates_, hidden_}, wi_dims{1, 1, hidden_, gates_, hidden_},
            b_dims{1, 1, bias_gates, hidden_};
        // The plain weights (an optimizer's view) and gradients.
        w_layer_ = memory({wl_dims, dt::f32, tag::ldigo}, eng);
        w_iter_ = memory({wi_dims, dt::f32, tag::ldigo}, eng);
        bias_ = memory({b_dims, dt::f32, tag::ldgo}, eng);
        dw_layer_ = memory({wl_dims, dt::f32, tag::ldigo}, eng);
        dw_iter_ = memory({wi_dims, dt::f32, tag::ldigo}, eng);
        dbias_ = memory({b_dims, dt::f32, tag::ldgo}, eng);

        // The initial state (h and, for the LSTM, c) is zeros, as tapegrad's, but passed
        // explicitly: with src_iter left out (a zero descriptor), oneDNN 2.6's LSTM backward
        // returns a wrong diff_weights_iter (nonzero even for a single step, where h_{-1} = 0).
        // Its gradients (diff_src_iter) are computed and ignored. The final state and its
        // gradient are not needed: zero descriptors.
        const memory::desc state_md({1, 1, batch, hidden_}, dt::f32, tag::ldnc), none;
        h0_ = memory(state_md, eng);
        c0_ = memory(state_md, eng);
        diff_h0_ = memory(state_md, eng);
        diff_c0_ = memory(state_md, eng);
        zero(h0_);
        zero(c0_);

        // The weights' layouts are left to oneDNN.
        const memory::desc wl_any(wl_dims, dt::f32, tag::any), wi_any(wi_dims, dt::f32, tag::any);
        const memory::desc src_md = src.get_desc(), dst_md = dst.get_desc(), b_md = bias_.get_desc();
        const auto fwd_kind = dnnl::prop_kind::forward_training, bwd_kind = dnnl::prop_kind::backward;
        const auto dir = dnnl::rnn_direction::unidirectional_left2right;
        if (cell_ == Cell::lstm) {
            const dnnl::lstm_forward::desc fd(fwd_kind, dir, src_md, state_md, state_md, wl_any, wi_any, b_md, dst_md,
                                              none, none);
            const dnnl::lstm_forward::primitive_desc fpd(fd, eng);
            const dnnl::lstm_backward::desc bd(bwd_kind, dir, src_md, state_md, state_md, wl_any, wi_any, b_md, dst_md,
                                               none, none,  // the forward's arguments, then their gradients
                                               src_md, state_md, state_md, wl_any, wi_any, b_md, dst_md, none, none);
            const dnnl::lstm_backward::primitive_desc bpd(bd, eng, fpd);
            fwd_pd_ = fpd;
            bwd_pd_ = bpd;
            fwd_ = dnnl::lstm_forward(fpd);
            bwd_ = dnnl::lstm_backward(bpd);
        } else {
            const dnnl::lbr_gru_forward::desc fd(fwd_kind, dir, src_md, state_md, wl_any, wi_any, b_md, dst_md, none);
            const dnnl::lbr_gru_forward::primitive_desc fpd(fd, eng);
            const dnnl::lbr_gru_backward::desc bd(bwd_kind, dir, src_md, state_md, wl_any, wi_any, b_md, dst_md,
                                                  none,  // the forward's arguments, then their gradients
                                                  src_md, state_md, wl_any, wi_any, b_md, dst_md, none);
            const dnnl::lbr_gru_backward::primitive_desc bpd(bd, eng, fpd);
            fwd_pd_ = fpd;
            bwd_pd_ = bpd;
            fwd_ = dnnl::lbr_gru_forward(fpd);
            bwd_ = dnnl::lbr_gru_backward(bpd);
        }

        // The primitives' own copies of the weights and gradients, and the reorders between
        // those and the plain ones (none when the primitive chose the plain layout).
        const memory fwd_w_layer = in_layout(w_layer_, fwd_pd_.weights_layer_desc(), eng);
        const memory fwd_w_iter = in_layout(w_iter_, fwd_pd_.weights_iter_desc(), eng);
        const memory bwd_w_layer = in_layout(w_layer_, bwd_pd_.weights_layer_desc(), eng);
        const memory bwd_w_iter = in_layout(w_iter_, bwd_pd_.weights_iter_desc(), eng);
        prim_dw_layer_ = in_layout(dw_layer_, bwd_pd_.diff_weights_layer_desc(), eng);
        prim_dw_iter_ = in_layout(dw_iter_, bwd_pd_.diff_weights_iter_desc(), eng);
        to_fwd_ = {Copy(w_layer_, fwd_w_layer), Copy(w_iter_, fwd_w_iter)};
        to_bwd_ = {Copy(w_layer_, bwd_w_layer), Copy(w_iter_, bwd_w_iter)};
        from_bwd_ = {Copy(prim_dw_layer_, dw_layer_), Copy(prim_dw_iter_, dw_iter_)};

        const memory workspace(fwd_pd_.workspace_desc(), eng);
        // The arguments both primitives take, then each one's own.
        const std::unordered_map<int, memory> both{{DNNL_ARG_SRC_LAYER, src},
                                                   {DNNL_ARG_SRC_ITER, h0_},
                                                   {DNNL_ARG_BIAS, bias_},
                                                   {DNNL_ARG_DST_LAYER, dst},
                                                   {DNNL_ARG_WORKSPACE, workspace}};
        fwd_args_ = both;
        fwd_args_.insert({{DNNL_ARG_WEIGHTS_LAYER, fwd_w_layer}, {DNNL_ARG_WEIGHTS_ITER, fwd_w_iter}});
        bwd_args_ = both;
        bwd_args_.insert({{DNNL_ARG_WEIGHTS_LAYER, bwd_w_layer},
                          {DNNL_ARG_WEIGHTS_ITER, bwd_w_iter},
                          {DNNL_ARG_DIFF_DST_LAYER, diff_dst},
                          {DNNL_ARG_DIFF_SRC_LAYER, diff_src},
                          {DNNL_ARG_DIFF_SRC_ITER, diff_h0_},
                          {DNNL_ARG_DIFF_WEIGHTS_LAYER, prim_dw_layer_},
                          {DNNL_ARG_DIFF_WEIGHTS_ITER, prim_dw_iter_},
                          {DNNL_ARG_DIFF_BIAS, dbias_}});
        if (cell_ == Cell::lstm) {
            fwd_args_.insert({DNNL_ARG_SRC_ITER_C, c0_});
            bwd_args_.insert({{DNNL_ARG_SRC_ITER_C, c0_}, {DNNL_ARG_DIFF_SRC_ITER_C, diff_c0_}});
        }
    }

    /// Reorders the weights for the forward primitive and runs it.
    void forward(dnnl::stream& s)
    {
        for (Copy& c : to_fwd_) c.run(s);
        fwd_.execute(s, fwd_args_);
    }

    /// Reorders the weights for the backward primitive, zeroes the gradients it accumulates
    /// into, runs it and reorders the weight gradients to the plain layout.
    void backward(dnnl::stream& s)
    {
        for (Copy& c : to_bwd_) c.run(s);
        zero(prim_dw_layer_);
        zero(prim_dw_iter_);
        zero(dbias_);
        bwd_.execute(s, bwd_args_);
        for (Copy& c : from_bwd_) c.run(s);
    }

    /// Copies layer `layer` of a tapegrad model into the plain weights: each weight matrix
    /// [gates * H, in] transposed to [in, gates, H] with the gates in oneDNN's order, and the
    /// two biases summed (but for the GRU candidate's, which stay apart).
    void load(const tg::nn::RecurrentLayer<float>& model, std::size_t layer)
    {
        const std::string l = "_l" + std::to_string(layer);
        transpose_in(model.weight("weight_ih" + l).value().data(), data(w_layer_), input_);
        transpose_in(model.weight("weight_hh" + l).value().data(), data(w_iter_), hidden_);
        const float* b_ih = model.weight("bias_ih" + l).value().data();
        const float* b_hh = model.weight("bias_hh" + l).value().data();
        float* b = data(bias_);
        for (memory::dim g = 0; g < gates_; ++g) {
            const bool apart = cell_ == Cell::gru && g == 2;  // lbr GRU: b_in here, b_hn in the fourth
            for (memory::dim h = 0; h < hidden_; ++h) {
                const std::size_t from = sz(tg_gate(g) * hidden_ + h);
                b[g * hidden_ + h] = b_ih[from] + (apart ? 0.0f : b_hh[from]);
            }
        }
        if (cell_ == Cell::gru)
            for (memory::dim h = 0; h < hidden_; ++h) b[3 * hidden_ + h] = b_hh[sz(2 * hidden_ + h)];
    }

    /// The gradient of a parameter ("weight_ih", "weight_hh", "bias_ih" or "bias_hh") in
    /// tapegrad's layout, from the plain gradients of the last backward.
    xt::xarray<float> grad(const std::string& name) const
    {
        const std::size_t rows = sz(gates_ * hidden_);
        if (name == "weight_ih" || name == "weight_hh") {
            const memory::dim cols = name == "weight_ih" ? input_ : hidden_;
            xt::xarray<float> g = xt::xarray<float>::from_shape({rows, sz(cols)});
            transpose_out(data(name == "weight_ih" ? dw_layer_ : dw_iter_), g.data(), cols);
            return g;
        }
        xt::xarray<float> out = xt::xarray<float>::from_shape({rows});
        const float* db = data(dbias_);
        for (memory::dim g = 0; g < gates_; ++g) {
            // The GRU candidate's hidden-side bias has its own gradient, the fourth.
            const memory::dim src_gate = name == "bias_hh" && cell_ == Cell::gru && g == 2 ? 3 : g;
            for (memory::dim h = 0; h < hidden_; ++h) out(sz(tg_gate(g) * hidden_ + h)) = db[src_gate * hidden_ + h];
        }
        return out;
    }

    /// The implementations oneDNN picked.
    std::string impl() const
    {
        return std::string("fwd ") + fwd_pd_.impl_info_str() + ", bwd " + bwd_pd_.impl_info_str();
    }

    /// The weight layouts the primitives chose.
    std::string layouts() const
    {
        return "weights fwd " + layout_name(fwd_pd_.weights_layer_desc()) + "/" +
               layout_name(fwd_pd_.weights_iter_desc()) + ", bwd " + layout_name(bwd_pd_.weights_layer_desc()) + "/" +
               layout_name(bwd_pd_.weights_iter_desc()) + ", diff weights " +
               layout_name(bwd_pd_.diff_weights_layer_desc()) + "/" + layout_name(bwd_pd_.diff_weights_iter_desc()) +
               ", workspace " + std::to_string(fwd_pd_.workspace_desc().get_size() >> 10) + " KiB";
    }

    /// The plain gradient of the input weights (to keep it observable).
    const float* dw_layer() const { return data(dw_layer_); }

private:
    /// The tapegrad (PyTorch) gate that oneDNN's gate g stands for: LSTM (i, f, g, o) in both;
    /// oneDNN's GRU (update, reset, candidate) is PyTorch's (z, r, n) = gates (1, 0, 2).
    memory::dim tg_gate(memory::dim g) const { return cell_ == Cell::lstm || g == 2 ? g : 1 - g; }

    /// [gates * H, cols] (tapegrad) -> [cols, gates, H] (ldigo).
    void transpose_in(const float* w, float* out, memory::dim cols) const
    {
        for (memory::dim c = 0; c < cols; ++c)
            for (memory::dim g = 0; g < gates_; ++g)
                for (memory::dim h = 0; h < hidden_; ++h)
                    out[(c * gates_ + g) * hidden_ + h] = w[(tg_gate(g) * hidden_ + h) * cols + c];
    }

    /// [cols, gates, H] (ldigo) -> [gates * H, cols] (tapegrad).
    void transpose_out(const float* w, float* out, memory::dim cols) const
    {
        for (memory::dim c = 0; c < cols; ++c)
            for (memory::dim g = 0; g < gates_; ++g)
                for (memory::dim h = 0; h < hidden_; ++h)
                    out[(tg_gate(g) * hidden_ + h) * cols + c] = w[(c * gates_ + g) * hidden_ + h];
    }

    Cell cell_;
    memory::dim input_, hidden_, gates_;
    memory w_layer_, w_iter_, bias_, dw_layer_, dw_iter_, dbias_, prim_dw_layer_, prim_dw_iter_;
    memory h0_, c0_, diff_h0_, diff_c0_;
    dnnl::rnn_primitive_desc_base fwd_pd_, bwd_pd_;
    dnnl::primitive fwd_, bwd_;
    std::unordered_map<int, memory> fwd_args_, bwd_args_;
    std::array<Copy, 2> to_fwd_, to_bwd_, from_bwd_;  // layer and iter weights
};

/// The layers of a shape chained: activation l is layer l's input and layer l - 1's output,
/// gradient l likewise; the last gradient is the loss's (ones) and the first the input's.
class DnnlStack {
public:
    DnnlStack(const Shape& s, const dnnl::engine& eng)
    {
        for (memory::dim l = 0; l <= s.layers; ++l) {
            const memory::desc md({s.steps, s.batch, l == 0 ? s.input : s.hidden}, memory::data_type::f32, tag::tnc);
            activations_.emplace_back(md, eng);
            gradients_.emplace_back(md, eng);
        }
        for (std::size_t l = 0; l < sz(s.layers); ++l)
            layers_.emplace_back(s.cell, l == 0 ? s.input : s.hidden, s.hidden, activations_[l], activations_[l + 1],
                                 gradients_[l], gradients_[l + 1], eng);
        const memory& seed = gradients_.back();
        std::fill_n(data(seed), seed.get_desc().get_size() / sizeof(float), 1.0f);
    }

    /// Copies the model's weights and the input.
    void load(const tg::nn::RecurrentLayer<float>& model, const xt::xarray<float>& x)
    {
        for (std::size_t l = 0; l < layers_.size(); ++l) layers_[l].load(model, l);
        std::copy(x.begin(), x.end(), data(activations_.front()));
    }

    /// One training step: every layer forward, then every layer backward from the last.
    void step(dnnl::stream& s)
    {
        for (auto& layer : layers_) layer.forward(s);
        for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) it->backward(s);
        s.wait();
    }

    const DnnlLayer& layer(std::size_t l) const { return layers_[l]; }
    std::size_t size() const { return layers_.size(); }
    const float* output() const { return data(activations_.back()); }
    const float* input_grad() const { return data(gradients_.front()); }

private:
    std::vector<memory> activations_, gradients_;
    std::vector<DnnlLayer> layers_;
};

/// The largest absolute difference over the largest magnitude of the expected values.
double relative_error(const float* got, const xt::xarray<float>& want)
{
    double diff = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        diff = std::max(diff, static_cast<double>(std::fabs(got[i] - want.data()[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(want.data()[i])));
    }
    return scale > 0.0 ? diff / scale : diff;
}

/// Runs one step of both (tapegrad on the tape's cells) on the same weights and input and compares the output (to
/// 1e-4), the input gradient and every parameter gradient (to 1e-3); prints the errors and ends the program on a
/// mismatch.
void check_against_tapegrad(const Shape& s, DnnlStack& stack, dnnl::stream& strm)
{
    const auto model = make_model(s);
    const xt::xarray<float> xv = make_input(s);
    const V x = tg::parameter(xv);  // a parameter here, so that the input gradient is compared too
    // Against the tape's cells (the default backend may run oneDNN inside the layer itself).
    const tg::RecurrentBackend before = tg::get_recurrent_backend();
    tg::set_recurrent_backend(tg::RecurrentBackend::tape);
    const V out = model->forward(x);
    tg::set_recurrent_backend(before);
    tg::sum(out).backward();
    stack.load(*model, xv);
    stack.step(strm);

    bool ok = true;
    auto report = [&ok](const std::string& what, double err, double tol) {
        const bool pass = err <= tol;
        ok = ok && pass;
        std::fprintf(stderr, "  %-14s relative error %.2e (tolerance %.0e)%s\n", what.c_str(), err, tol,
                     pass ? "" : "  MISMATCH");
    };
    std::fprintf(stderr, "check %s, oneDNN against tapegrad:\n", shape_name(s).c_str());
    report("output", relative_error(stack.output(), out.value()), 1e-4);
    report("input grad", relative_error(stack.input_grad(), x.grad()), 1e-3);
    for (std::size_t l = 0; l < stack.size(); ++l) {
        for (const char* p : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) {
            const std::string name = std::string(p) + "_l" + std::to_string(l);
            report(name, relative_error(stack.layer(l).grad(p).data(), model->weight(name).grad()), 1e-3);
        }
        std::fprintf(stderr, "  layer %zu: %s; %s\n", l, stack.layer(l).impl().c_str(),
                     stack.layer(l).layouts().c_str());
    }
    if (!ok) {
        std::fprintf(stderr, "oneDNN and tapegrad disagree on %s\n", shape_name(s).c_str());
        std::exit(1);
    }
}

/// oneDNN: forward_training + backward of every layer per iteration, weights from the tapegrad
/// model W8 builds. The first run of each shape checks it against tapegrad first.
void rnn_dnnl(benchmark::State& state, Shape s)
{
    static std::set<std::string> checked;
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream strm(eng);
    DnnlStack stack(s, eng);
    if (checked.insert(shape_name(s)).second) check_against_tapegrad(s, stack, strm);
    stack.load(*make_model(s), make_input(s));

    std::string label;
    for (std::size_t l = 0; l < stack.size(); ++l) {
        const std::string impl = stack.layer(l).impl();
        if (label.find(impl) == std::string::npos) label += (label.empty() ? "" : "; ") + impl;
    }
    state.SetLabel(label);
    for (auto _ : state) {
        stack.step(strm);
        benchmark::DoNotOptimize(stack.layer(0).dw_layer()[0]);
    }
}

/// tapegrad: W8's loop (bench_tapegrad.cpp) on the same shape, with the recurrent backend
/// given (automatic: oneDNN's primitives where tapegrad chooses them; tape: the fused cells).
void run_tapegrad(benchmark::State& state, Shape s, tg::RecurrentBackend backend)
{
    const tg::RecurrentBackend before = tg::get_recurrent_backend();
    tg::set_recurrent_backend(backend);
    const auto model = make_model(s);
    const V x = tg::constant(make_input(s));
    for (auto _ : state) {
        V loss = tg::sum(model->forward(x));
        loss.backward();
        model->zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
    tg::set_recurrent_backend(before);
}

void rnn_tapegrad(benchmark::State& state, Shape s)
{
    run_tapegrad(state, s, tg::RecurrentBackend::automatic);
}

void rnn_tapegrad_tape(benchmark::State& state, Shape s)
{
    run_tapegrad(state, s, tg::RecurrentBackend::tape);
}

}  // namespace

// The three sides alternate, shape by shape.
#define TAPEGRAD_RNN_SIDES(label, shape)                                                                               \
    BENCHMARK_CAPTURE(rnn_dnnl, label, shape)->Unit(benchmark::kMillisecond)->UseRealTime();                           \
    BENCHMARK_CAPTURE(rnn_tapegrad, label, shape)->Unit(benchmark::kMillisecond)->UseRealTime();                       \
    BENCHMARK_CAPTURE(rnn_tapegrad_tape, label, shape)->Unit(benchmark::kMillisecond)->UseRealTime();
TAPEGRAD_RNN_SIDES(A_lstm_32x64_n8_t50_l1, shape_a)
TAPEGRAD_RNN_SIDES(B_lstm_64x256_n32_t64_l2, shape_b)
TAPEGRAD_RNN_SIDES(C_gru_64x256_n32_t64_l2, shape_c)
TAPEGRAD_RNN_SIDES(D_lstm_32x128_n8_t50_l1, shape_d)
TAPEGRAD_RNN_SIDES(E_lstm_64x128_n16_t50_l1, shape_e)
#undef TAPEGRAD_RNN_SIDES

BENCHMARK_MAIN();
