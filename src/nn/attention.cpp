// Attention layers: MultiheadAttention and the Transformer's layers and stacks, following
// torch.nn's arguments, parameter names, initialisation and semantics.
//
// MultiheadAttention projects the rows of its inputs as they are laid out (sequence first or
// batch first; unbatched input is one batch-first sequence) with one product over all rows;
// heads are [N, H, L, d], split from the rows and joined back with one copy each. torch.nn's masks (true = not allowed)
// are merged into one [N, H, L, S] array of blocked pairs. Without need_weights the fused scaled_dot_product_attention
// op runs; with it, the weights are computed with plain ops (blocked scores filled with the lowest finite value, then
// the weights of blocked pairs set to 0), so a query with no allowed key gets zero weights and a zero gradient, never
// NaN.

#include <cmath>
#include <limits>

#include "tapegrad/attention.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/tensor.hpp"

namespace tg::nn {

namespace {

std::string heads_text(std::size_t embed, std::size_t heads)
{
    return "MultiheadAttention(embed_dim " + std::to_string(embed) + ", " + std::to_string(heads) + " heads)";
}

void check_dropout(const std::string& who, double p)
{
    if (!(p >= 0.0 && p < 1.0)) throw Error(who + ": dropout must be in [0, 1), got " + format_number(p));
}

// Input [L, N, F] (or [N, L, F] batch first) as it is; unbatched [L, F] as [1, L, F]. The
// projections work on rows, whatever their order, so nothing is transposed before them.
template <class T> Var<T> batched(const Var<T>& x)
{
    const auto& s = x.shape();
    return s.size() == 2 ? reshape(x, {std::size_t{1}, s[0], s[1]}) : x;
}

// x [..., F] @ w^T + b for w [E, F]: one product over all rows; [..., E].
template <class T> Var<T> project(const Var<T>& x, const Var<T>& w, const Var<T>& b)
{
    return b.defined() ? linear_t(x, w, b) : matmul(x, w, false, true);
}

// Rows [A, B, E] in the caller's layout ([N, L] batch first, else [L, N]) as heads
// [N, H, L, E / H]: one copy.
template <class T> Var<T> split_heads(const Var<T>& x, std::size_t heads, bool batch_first)
{
    const auto& s = x.shape();
    const Var<T> r = reshape(x, {s[0], s[1], heads, s[2] / heads});
    return batch_first ? permute(r, {0, 2, 1, 3}) : permute(r, {1, 2, 0, 3});
}

// Heads [N, H, L, d] back to rows [A, B, H * d] in the caller's layout: one copy.
template <class T> Var<T> join_heads(const Var<T>& o, bool batch_first)
{
    const auto& s = o.shape();
    const std::size_t e = s[1] * s[3];
    if (batch_first) return reshape(permute(o, {0, 2, 1, 3}), {s[0], s[2], e});
    return reshape(permute(o, {2, 0, 1, 3}), {s[2], s[0], e});
}

}  // namespace

xt::xarray<bool> square_subsequent_mask(std::size_t size)
{
    xt::xarray<bool> m = xt::zeros<bool>({size, size});
    for (std::size_t i = 0; i < size; ++i)
        for (std::size_t j = i + 1; j < size; ++j) m(i, j) = true;
    return m;
}

// --- MultiheadAttention -------------------------------------------------------------------

template <class T>
MultiheadAttention<T>::MultiheadAttention(std::size_t embed_dim, std::size_t num_heads,
                                          MultiheadAttentionOptions options, Generator& gen)
    : embed_(embed_dim), heads_(num_heads), options_(options)
{
    const std::string who = "MultiheadAttention";
    if (embed_dim == 0 || num_heads == 0) {
        throw Error(who + ": embed_dim and num_heads must be positive, got " + std::to_string(embed_dim) + " and " +
                    std::to_string(num_heads));
    }
    if (embed_dim % num_heads != 0) {
        throw Error(who + ": embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " +
                    std::to_string(num_heads));
    }
    check_dropout(who, options.dropout);
    if (!(static_cast<T>(options.dropout) < T(1)))
        throw Error(who + ": dropout must be in [0, 1), got " + format_number(options.dropout) + ", which rounds to 1");
    if (options_.kdim == 0) options_.kdim = embed_dim;
    if (options_.vdim == 0) options_.vdim = embed_dim;
    packed_ = options_.kdim == embed_dim && options_.vdim == embed_dim;
    const auto glorot = init::glorot_uniform();
    if (packed_) {
        this->register_parameter("in_proj_weight",
                                 parameter(glorot.make<T>({3 * embed_dim, embed_dim}, embed_dim, 3 * embed_dim, gen)));
    } else {
        const std::size_t e = embed_dim;
        this->register_parameter("q_proj_weight", parameter(glorot.make<T>({e, e}, e, e, gen)));
        this->register_parameter("k_proj_weight", parameter(glorot.make<T>({e, options_.kdim}, options_.kdim, e, gen)));
        this->register_parameter("v_proj_weight", parameter(glorot.make<T>({e, options_.vdim}, options_.vdim, e, gen)));
    }
    if (options_.bias)
        this->register_parameter("in_proj_bias", parameter(xt::xarray<T>(xt::zeros<T>({3 * embed_dim}))));
    auto out = std::make_shared<Linear<T>>(embed_dim, embed_dim, options_.bias, gen);
    if (options_.bias) out->bias().mutable_value().fill(T(0));
    out_proj_ = this->register_module("out_proj", out);
    if (options_.dropout > 0.0) this->register_generator("generator", Generator(gen()));
}

template <class T>
AttentionOutput<T> MultiheadAttention<T>::forward(const Var<T>& query, const Var<T>& key, const Var<T>& value,
                                                  const AttentionMasks& masks, bool need_weights,
                                                  bool average_attn_weights)
{
    const std::string who = heads_text(embed_, heads_);
    if (!query.defined() || !key.defined() || !value.defined()) throw Error(who + ": query, key or value is undefined");
    const auto &qs = query.shape(), &ks = key.shape(), &vs = value.shape();
    const bool bf = options_.batch_first;
    const std::string layout = bf ? "[N, L, F] (batch_first)" : "[L, N, F]";
    if ((qs.size() != 2 && qs.size() != 3) || ks.size() != qs.size() || vs.size() != qs.size() || qs.back() != embed_ ||
        ks.back() != options_.kdim || vs.back() != options_.vdim) {
        throw Error(who + ": expected query, key and value " + layout +
                    " (or [L, F] unbatched) with F = " + std::to_string(embed_) + ", " + std::to_string(options_.kdim) +
                    " and " + std::to_string(options_.vdim) + ", got " + format_shape(qs) + ", " + format_shape(ks) +
                    " and " + format_shape(vs));
    }
    const bool unbatched = qs.size() == 2;
    const std::size_t seq_axis = unbatched || !bf ? 0 : 1;
    const std::size_t n = unbatched ? 1 : qs[bf ? 0 : 1];
    const std::size_t l = qs[seq_axis], s = ks[seq_axis];
    if (!unbatched && (ks[bf ? 0 : 1] != n || vs[bf ? 0 : 1] != n)) {
        throw Error(who + ": query, key and value must have the same batch size, got " + format_shape(qs) + ", " +
                    format_shape(ks) + " and " + format_shape(vs));
    }
    if (vs[seq_axis] != s) {
        throw Error(who + ": key and value must have the same length, got " + format_shape(ks) + " and " +
                    format_shape(vs));
    }

    // torch.nn's masks merged: blocked(b, h, i, j) is true where query i may not see key j.
    std::optional<xt::xarray<bool>> blocked;
    const std::size_t heads = heads_;
    if (masks.attn_mask || masks.key_padding_mask) blocked = xt::xarray<bool>(xt::zeros<bool>({n, heads, l, s}));
    if (masks.attn_mask) {
        const auto& m = *masks.attn_mask;
        const auto& ms = m.shape();
        const bool per_head = ms.size() == 3 && ms[0] == n * heads && ms[1] == l && ms[2] == s;
        if (!(ms.size() == 2 && ms[0] == l && ms[1] == s) && !per_head) {
            throw Error(who + ": attn_mask must be [L, S] = [" + std::to_string(l) + ", " + std::to_string(s) +
                        "] or [N * num_heads, L, S] = [" + std::to_string(n * heads) + ", " + std::to_string(l) + ", " +
                        std::to_string(s) + "], got " + format_shape(ms));
        }
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t h = 0; h < heads; ++h)
                for (std::size_t i = 0; i < l; ++i)
                    for (std::size_t j = 0; j < s; ++j)
                        (*blocked)(b, h, i, j) = per_head ? m(b * heads + h, i, j) : m(i, j);
    }
    if (masks.key_padding_mask) {
        const auto& m = *masks.key_padding_mask;
        const auto& ms = m.shape();
        const bool ok = unbatched ? (ms.size() == 1 && ms[0] == s) || (ms.size() == 2 && ms[0] == 1 && ms[1] == s)
                                  : ms.size() == 2 && ms[0] == n && ms[1] == s;
        if (!ok) {
            throw Error(who + ": key_padding_mask must be [N, S] = [" + std::to_string(n) + ", " + std::to_string(s) +
                        "]" + (unbatched ? " (or [S] unbatched)" : "") + ", got " + format_shape(ms));
        }
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t j = 0; j < s; ++j) {
                if (!(ms.size() == 1 ? m(j) : m(b, j))) continue;
                for (std::size_t h = 0; h < heads; ++h)
                    for (std::size_t i = 0; i < l; ++i) (*blocked)(b, h, i, j) = true;
            }
    }

    // Projections: self-attention with one in_proj_weight is one product for q, k and v.
    const Var<T> none;
    const Var<T>& bias = options_.bias ? this->own_parameter(packed_ ? 1 : 3) : none;
    const std::size_t e = embed_;
    auto bias_part = [&](std::size_t i) { return bias.defined() ? narrow(bias, 0, i * e, e) : none; };
    Var<T> q, k, v;
    const Var<T> xq = batched(query);
    if (packed_) {
        const Var<T>& w = this->own_parameter(0);
        if (query.raw_node() == key.raw_node() && key.raw_node() == value.raw_node()) {
            const auto qkv = chunk(project(xq, w, bias), 3, 2);
            q = qkv[0], k = qkv[1], v = qkv[2];
        } else {
            q = project(xq, narrow(w, 0, 0, e), bias_part(0));
            k = project(batched(key), narrow(w, 0, e, e), bias_part(1));
            v = project(batched(value), narrow(w, 0, 2 * e, e), bias_part(2));
        }
    } else {
        q = project(xq, this->own_parameter(0), bias_part(0));
        k = project(batched(key), this->own_parameter(1), bias_part(1));
        v = project(batched(value), this->own_parameter(2), bias_part(2));
    }
    // Unbatched input is one batch-first sequence.
    const bool rows_bf = bf || unbatched;
    const Var<T> qh = split_heads(q, heads, rows_bf), kh = split_heads(k, heads, rows_bf),
                 vh = split_heads(v, heads, rows_bf);
    const double p = this->training_ ? options_.dropout : 0.0;

    AttentionOutput<T> out;
    Var<T> o;  // [N, H, L, d]
    if (!need_weights) {
        AttentionOptions ao;
        ao.dropout_p = p;
        if (p > 0.0) ao.generator = &this->own_generator(0);
        o = blocked ? scaled_dot_product_attention(qh, kh, vh, xt::xarray<bool>(!*blocked), ao)
                    : scaled_dot_product_attention(qh, kh, vh, ao);
    } else {
        const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim()));
        Var<T> scores = mul(matmul(qh, kh, false, true), static_cast<T>(scale));
        if (blocked) scores = masked_fill(scores, *blocked, std::numeric_limits<T>::lowest());
        Var<T> w = softmax(scores, -1);
        if (blocked) w = masked_fill(w, *blocked, T(0));
        if (p > 0.0) w = dropout(w, static_cast<T>(p), this->own_generator(0));
        o = matmul(w, vh);
        Var<T> weights = average_attn_weights ? mean(w, 1) : w;
        out.weights = unbatched ? squeeze(weights, 0) : weights;
    }
    const Var<T> y = (*out_proj_)(join_heads(o, rows_bf));
    out.output = unbatched ? reshape(y, {l, e}) : y;
    return out;
}

// --- Transformer layers -------------------------------------------------------------------

namespace {

template <class T> Var<T> activate(const Var<T>& x, TransformerActivation a)
{
    return a == TransformerActivation::gelu ? gelu(x) : relu(x);
}

std::string layer_text(const char* name, std::size_t d_model, std::size_t nhead)
{
    return std::string(name) + "(d_model " + std::to_string(d_model) + ", " + std::to_string(nhead) + " heads)";
}

void check_layer_args(const char* name, std::size_t d_model, std::size_t nhead, const TransformerLayerOptions& o)
{
    if (o.dim_feedforward == 0)
        throw Error(layer_text(name, d_model, nhead) + ": dim_feedforward must be positive, got 0");
    if (!(o.layer_norm_eps > 0.0))
        throw Error(layer_text(name, d_model, nhead) + ": layer_norm_eps must be positive, got " +
                    format_number(o.layer_norm_eps));
}

// src [L, N, E] / [N, L, E] / [L, E] with E = d_model.
template <class T>
void check_sequence(const std::string& who, const char* what, const Var<T>& x, std::size_t d_model, bool batch_first)
{
    if (!x.defined()) throw Error(who + ": " + what + " is undefined");
    const auto& s = x.shape();
    if ((s.size() != 2 && s.size() != 3) || s.back() != d_model) {
        throw Error(who + ": expected " + what + " " + (batch_first ? "[N, L, " : "[L, N, ") + std::to_string(d_model) +
                    "]" + (batch_first ? " (batch_first)" : "") + " or [L, " + std::to_string(d_model) +
                    "] unbatched, got " + format_shape(s));
    }
}

}  // namespace

template <class T>
TransformerEncoderLayer<T>::TransformerEncoderLayer(std::size_t d_model, std::size_t nhead,
                                                    TransformerLayerOptions options, Generator& gen)
    : d_model_(d_model), nhead_(nhead), options_(options)
{
    MultiheadAttentionOptions mo;
    mo.dropout = options.dropout;
    mo.batch_first = options.batch_first;
    self_attn_ = this->register_module("self_attn", std::make_shared<MultiheadAttention<T>>(d_model, nhead, mo, gen));
    check_layer_args("TransformerEncoderLayer", d_model, nhead, options);
    linear1_ =
        this->register_module("linear1", std::make_shared<Linear<T>>(d_model, options.dim_feedforward, true, gen));
    dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(options.dropout, gen()));
    linear2_ =
        this->register_module("linear2", std::make_shared<Linear<T>>(options.dim_feedforward, d_model, true, gen));
    const std::vector<std::size_t> shape{d_model};
    norm1_ = this->register_module("norm1", std::make_shared<LayerNorm<T>>(shape, options.layer_norm_eps));
    norm2_ = this->register_module("norm2", std::make_shared<LayerNorm<T>>(shape, options.layer_norm_eps));
    dropout1_ = this->register_module("dropout1", std::make_shared<Dropout<T>>(options.dropout, gen()));
    dropout2_ = this->register_module("dropout2", std::make_shared<Dropout<T>>(options.dropout, gen()));
}

template <class T> Var<T> TransformerEncoderLayer<T>::forward(const Var<T>& src, const AttentionMasks& masks)
{
    check_sequence(layer_text("TransformerEncoderLayer", d_model_, nhead_), "src", src, d_model_, options_.batch_first);
    auto self_block = [&](const Var<T>& x) { return (*dropout1_)((*self_attn_)(x, x, x, masks, false).output); };
    auto feed_forward = [&](const Var<T>& x) {
        return (*dropout2_)((*linear2_)((*dropout_)(activate((*linear1_)(x), options_.activation))));
    };
    Var<T> x = src;
    if (options_.norm_first) {
        x = add(x, self_block((*norm1_)(x)));
        return add(x, feed_forward((*norm2_)(x)));
    }
    x = (*norm1_)(add(x, self_block(x)));
    return (*norm2_)(add(x, feed_forward(x)));
}

template <class T>
TransformerDecoderLayer<T>::TransformerDecoderLayer(std::size_t d_model, std::size_t nhead,
                                                    TransformerLayerOptions options, Generator& gen)
    : d_model_(d_model), nhead_(nhead), options_(options)
{
    MultiheadAttentionOptions mo;
    mo.dropout = options.dropout;
    mo.batch_first = options.batch_first;
    self_attn_ = this->register_module("self_attn", std::make_shared<MultiheadAttention<T>>(d_model, nhead, mo, gen));
    multihead_attn_ =
        this->register_module("multihead_attn", std::make_shared<MultiheadAttention<T>>(d_model, nhead, mo, gen));
    check_layer_args("TransformerDecoderLayer", d_model, nhead, options);
    linear1_ =
        this->register_module("linear1", std::make_shared<Linear<T>>(d_model, options.dim_feedforward, true, gen));
    dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(options.dropout, gen()));
    linear2_ =
        this->register_module("linear2", std::make_shared<Linear<T>>(options.dim_feedforward, d_model, true, gen));
    const std::vector<std::size_t> shape{d_model};
    norm1_ = this->register_module("norm1", std::make_shared<LayerNorm<T>>(shape, options.layer_norm_eps));
    norm2_ = this->register_module("norm2", std::make_shared<LayerNorm<T>>(shape, options.layer_norm_eps));
    norm3_ = this->register_module("norm3", std::make_shared<LayerNorm<T>>(shape, options.layer_norm_eps));
    dropout1_ = this->register_module("dropout1", std::make_shared<Dropout<T>>(options.dropout, gen()));
    dropout2_ = this->register_module("dropout2", std::make_shared<Dropout<T>>(options.dropout, gen()));
    dropout3_ = this->register_module("dropout3", std::make_shared<Dropout<T>>(options.dropout, gen()));
}

template <class T>
Var<T> TransformerDecoderLayer<T>::forward(const Var<T>& tgt, const Var<T>& memory, const AttentionMasks& tgt_masks,
                                           const AttentionMasks& memory_masks)
{
    const std::string who = layer_text("TransformerDecoderLayer", d_model_, nhead_);
    check_sequence(who, "tgt", tgt, d_model_, options_.batch_first);
    check_sequence(who, "memory", memory, d_model_, options_.batch_first);
    if (tgt.dim() != memory.dim()) {
        throw Error(who + ": tgt and memory must both be batched or both unbatched, got " + format_shape(tgt.shape()) +
                    " and " + format_shape(memory.shape()));
    }
    auto self_block = [&](const Var<T>& x) { return (*dropout1_)((*self_attn_)(x, x, x, tgt_masks, false).output); };
    auto memory_block = [&](const Var<T>& x) {
        return (*dropout2_)((*multihead_attn_)(x, memory, memory, memory_masks, false).output);
    };
    auto feed_forward = [&](const Var<T>& x) {
        return (*dropout3_)((*linear2_)((*dropout_)(activate((*linear1_)(x), options_.activation))));
    };
    Var<T> x = tgt;
    if (options_.norm_first) {
        x = add(x, self_block((*norm1_)(x)));
        x = add(x, memory_block((*norm2_)(x)));
        return add(x, feed_forward((*norm3_)(x)));
    }
    x = (*norm1_)(add(x, self_block(x)));
    x = (*norm2_)(add(x, memory_block(x)));
    return (*norm3_)(add(x, feed_forward(x)));
}

// --- stacks -------------------------------------------------------------------------------

namespace {

// A fresh layer like `layer` (its options; gen seeds its dropout) holding layer's values.
template <class L> std::shared_ptr<L> clone_layer(const L& layer, Generator& gen)
{
    auto copy = std::make_shared<L>(layer.d_model(), layer.nhead(), layer.options(), gen);
    copy->load_state_dict(layer.state_dict());
    copy->train(layer.is_training());
    return copy;
}

}  // namespace

template <class T>
TransformerEncoder<T>::TransformerEncoder(const TransformerEncoderLayer<T>& layer, std::size_t num_layers,
                                          std::shared_ptr<LayerNorm<T>> norm, Generator& gen)
    : norm_(std::move(norm))
{
    if (num_layers == 0) throw Error("TransformerEncoder: num_layers must be positive, got 0");
    layers_ = this->register_module("layers", std::make_shared<ModuleList<T>>());
    for (std::size_t i = 0; i < num_layers; ++i) layers_->push_back(clone_layer(layer, gen));
    if (norm_) this->register_module("norm", norm_);
}

template <class T> Var<T> TransformerEncoder<T>::forward(const Var<T>& src, const AttentionMasks& masks)
{
    Var<T> x = src;
    for (std::size_t i = 0; i < layers_->size(); ++i) x = layer(i)(x, masks);
    return norm_ ? (*norm_)(x) : x;
}

template <class T>
TransformerDecoder<T>::TransformerDecoder(const TransformerDecoderLayer<T>& layer, std::size_t num_layers,
                                          std::shared_ptr<LayerNorm<T>> norm, Generator& gen)
    : norm_(std::move(norm))
{
    if (num_layers == 0) throw Error("TransformerDecoder: num_layers must be positive, got 0");
    layers_ = this->register_module("layers", std::make_shared<ModuleList<T>>());
    for (std::size_t i = 0; i < num_layers; ++i) layers_->push_back(clone_layer(layer, gen));
    if (norm_) this->register_module("norm", norm_);
}

template <class T>
Var<T> TransformerDecoder<T>::forward(const Var<T>& tgt, const Var<T>& memory, const AttentionMasks& tgt_masks,
                                      const AttentionMasks& memory_masks)
{
    Var<T> x = tgt;
    for (std::size_t i = 0; i < layers_->size(); ++i) x = layer(i)(x, memory, tgt_masks, memory_masks);
    return norm_ ? (*norm_)(x) : x;
}

#define TAPEGRAD_ATTENTION_INSTANTIATE(T)                                                                              \
    template class MultiheadAttention<T>;                                                                              \
    template class TransformerEncoderLayer<T>;                                                                         \
    template class TransformerDecoderLayer<T>;                                                                         \
    template class TransformerEncoder<T>;                                                                              \
    template class TransformerDecoder<T>;
TAPEGRAD_ATTENTION_INSTANTIATE(float)
TAPEGRAD_ATTENTION_INSTANTIATE(double)
#undef TAPEGRAD_ATTENTION_INSTANTIATE

}  // namespace tg::nn
