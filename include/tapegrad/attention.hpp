#pragma once

/// \file
/// Attention layers: nn::MultiheadAttention and the Transformer's encoder and decoder layers
/// and stacks, with torch.nn's constructor arguments, initialisation, parameter names and
/// semantics, so that a PyTorch state_dict loads by name. Boolean masks here follow torch.nn's
/// convention: **true = not allowed** (tg::scaled_dot_product_attention, like PyTorch 2's
/// functional form, takes the opposite). A query that may attend to no key at all gives 0 and
/// a zero gradient where PyTorch gives NaN.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <xtensor/xarray.hpp>

#include "tapegrad/nn.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/var.hpp"

namespace tg::nn {

/// Options of MultiheadAttention, as torch.nn.MultiheadAttention's keyword arguments.
struct MultiheadAttentionOptions {
    double dropout = 0.0;      ///< dropout on the attention weights, in training mode
    bool bias = true;          ///< in_proj_bias and out_proj.bias
    bool batch_first = false;  ///< inputs and output [N, L, E] instead of [L, N, E]
    std::size_t kdim = 0;      ///< features of the key (0: embed_dim)
    std::size_t vdim = 0;      ///< features of the value (0: embed_dim)
};

/// Boolean masks of an attention call, true = not allowed (torch.nn's convention).
struct AttentionMasks {
    /// [N, S] (or [S] for unbatched input): true where a key is padding, for every query.
    std::optional<xt::xarray<bool>> key_padding_mask;
    /// [L, S] or [N * num_heads, L, S] (or [num_heads, L, S] unbatched): true where query i may
    /// not attend to key j.
    std::optional<xt::xarray<bool>> attn_mask;
};

/// What MultiheadAttention returns.
template <class T> struct AttentionOutput {
    Var<T> output;   ///< [L, N, E] ([N, L, E] batch_first, [L, E] unbatched)
    Var<T> weights;  ///< [N, L, S] averaged over heads or [N, H, L, S]; undefined unless need_weights
};

/// Multi-head attention (torch.nn.MultiheadAttention): query, key and value projected by
/// in_proj_weight [3E, E] (or q_proj_weight, k_proj_weight, v_proj_weight when kdim or vdim
/// differ from E) and in_proj_bias [3E], split into num_heads heads of E / num_heads features,
/// softmax(q k^T / sqrt(E / num_heads)) v per head, heads joined and projected by out_proj.
/// Projection weights Glorot uniform, biases zero, out_proj.weight as a Linear's.
template <class T> class MultiheadAttention : public Module<T> {
public:
    /// Throws tg::Error when embed_dim or num_heads is 0, embed_dim is not divisible by
    /// num_heads, or dropout is outside [0, 1).
    MultiheadAttention(std::size_t embed_dim, std::size_t num_heads, MultiheadAttentionOptions options = {},
                       Generator& gen = default_generator());
    /// Attention of query [L, N, E] over key [S, N, kdim] and value [S, N, vdim] (batch_first:
    /// [N, L, E] ...; 2-D inputs are one unbatched sequence). With need_weights, also the
    /// attention weights (after dropout, as PyTorch), averaged over heads when
    /// average_attn_weights; without, the fused tg::scaled_dot_product_attention runs (what the
    /// Transformer layers use). Throws tg::Error naming the layer and the shapes for inputs
    /// or masks of the wrong shape.
    AttentionOutput<T> forward(const Var<T>& query, const Var<T>& key, const Var<T>& value,
                               const AttentionMasks& masks = {}, bool need_weights = true,
                               bool average_attn_weights = true);
    /// Same as forward(...).
    AttentionOutput<T> operator()(const Var<T>& query, const Var<T>& key, const Var<T>& value,
                                  const AttentionMasks& masks = {}, bool need_weights = true,
                                  bool average_attn_weights = true)
    {
        return forward(query, key, value, masks, need_weights, average_attn_weights);
    }
    std::size_t embed_dim() const noexcept { return embed_; }                       ///< E
    std::size_t num_heads() const noexcept { return heads_; }                       ///< H
    std::size_t head_dim() const noexcept { return embed_ / heads_; }               ///< E / H
    const MultiheadAttentionOptions& options() const noexcept { return options_; }  ///< as constructed
    std::string type_name() const override { return "MultiheadAttention"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return embed_; }

private:
    std::size_t embed_, heads_;
    MultiheadAttentionOptions options_;
    bool packed_;  // one in_proj_weight (kdim == vdim == E)
    std::shared_ptr<Linear<T>> out_proj_;
};

/// The feed-forward activation of the Transformer layers.
enum class TransformerActivation { relu, gelu };

/// Options of the Transformer layers, as torch.nn.TransformerEncoderLayer's keyword arguments.
struct TransformerLayerOptions {
    std::size_t dim_feedforward = 2048;                              ///< hidden features of the feed-forward block
    double dropout = 0.1;                                            ///< every dropout of the layer
    TransformerActivation activation = TransformerActivation::relu;  ///< of the feed-forward block
    double layer_norm_eps = 1e-5;                                    ///< eps of every LayerNorm
    bool batch_first = false;                                        ///< [N, L, E] instead of [L, N, E]
    bool norm_first = false;                                         ///< LayerNorm before each block (pre-norm)
};

/// torch.nn.TransformerEncoderLayer: self-attention and a feed-forward block, each with a
/// residual connection and a LayerNorm (after, or before with norm_first). Children
/// self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
template <class T> class TransformerEncoderLayer : public Module<T> {
public:
    /// Throws tg::Error as MultiheadAttention for d_model and nhead, and when dim_feedforward is 0.
    TransformerEncoderLayer(std::size_t d_model, std::size_t nhead, TransformerLayerOptions options = {},
                            Generator& gen = default_generator());
    /// src [L, N, E] ([N, L, E] batch_first; [L, E] unbatched) with masks for the self-attention.
    Var<T> forward(const Var<T>& src, const AttentionMasks& masks = {});
    /// Same as forward(src, masks).
    Var<T> operator()(const Var<T>& src, const AttentionMasks& masks = {}) { return forward(src, masks); }
    std::size_t d_model() const noexcept { return d_model_; }                     ///< E
    std::size_t nhead() const noexcept { return nhead_; }                         ///< heads
    const TransformerLayerOptions& options() const noexcept { return options_; }  ///< as constructed
    std::string type_name() const override { return "TransformerEncoderLayer"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return d_model_; }

private:
    std::size_t d_model_, nhead_;
    TransformerLayerOptions options_;
    std::shared_ptr<MultiheadAttention<T>> self_attn_;
    std::shared_ptr<Linear<T>> linear1_, linear2_;
    std::shared_ptr<Dropout<T>> dropout_, dropout1_, dropout2_;
    std::shared_ptr<LayerNorm<T>> norm1_, norm2_;
};

/// torch.nn.TransformerDecoderLayer: self-attention, attention over the encoder's output
/// (memory) and a feed-forward block, each with a residual connection and a LayerNorm.
/// Children self_attn, multihead_attn, linear1, dropout, linear2, norm1, norm2, norm3,
/// dropout1, dropout2, dropout3.
template <class T> class TransformerDecoderLayer : public Module<T> {
public:
    /// Throws tg::Error as TransformerEncoderLayer.
    TransformerDecoderLayer(std::size_t d_model, std::size_t nhead, TransformerLayerOptions options = {},
                            Generator& gen = default_generator());
    /// tgt [T, N, E] attending to itself with tgt_masks and to memory [S, N, E] with memory_masks.
    Var<T> forward(const Var<T>& tgt, const Var<T>& memory, const AttentionMasks& tgt_masks = {},
                   const AttentionMasks& memory_masks = {});
    /// Same as forward(...).
    Var<T> operator()(const Var<T>& tgt, const Var<T>& memory, const AttentionMasks& tgt_masks = {},
                      const AttentionMasks& memory_masks = {})
    {
        return forward(tgt, memory, tgt_masks, memory_masks);
    }
    std::size_t d_model() const noexcept { return d_model_; }                     ///< E
    std::size_t nhead() const noexcept { return nhead_; }                         ///< heads
    const TransformerLayerOptions& options() const noexcept { return options_; }  ///< as constructed
    std::string type_name() const override { return "TransformerDecoderLayer"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return d_model_; }

private:
    std::size_t d_model_, nhead_;
    TransformerLayerOptions options_;
    std::shared_ptr<MultiheadAttention<T>> self_attn_, multihead_attn_;
    std::shared_ptr<Linear<T>> linear1_, linear2_;
    std::shared_ptr<Dropout<T>> dropout_, dropout1_, dropout2_, dropout3_;
    std::shared_ptr<LayerNorm<T>> norm1_, norm2_, norm3_;
};

/// torch.nn.TransformerEncoder: `layer` cloned num_layers times (every clone starts with
/// layer's weights, as PyTorch's deep copies do; gen seeds the clones' dropout), children
/// layers.0, layers.1, ..., then the optional final norm.
template <class T> class TransformerEncoder : public Module<T> {
public:
    /// Throws tg::Error when num_layers is 0.
    TransformerEncoder(const TransformerEncoderLayer<T>& layer, std::size_t num_layers,
                       std::shared_ptr<LayerNorm<T>> norm = nullptr, Generator& gen = default_generator());
    /// Every layer in turn with the same masks, then the norm.
    Var<T> forward(const Var<T>& src, const AttentionMasks& masks = {});
    /// Same as forward(src, masks).
    Var<T> operator()(const Var<T>& src, const AttentionMasks& masks = {}) { return forward(src, masks); }
    /// The i-th layer.
    TransformerEncoderLayer<T>& layer(std::size_t i) const
    {
        return layers_->template at<TransformerEncoderLayer<T>>(i);
    }
    std::size_t num_layers() const noexcept { return layers_->size(); }  ///< as constructed
    std::string type_name() const override { return "TransformerEncoder"; }

private:
    std::shared_ptr<ModuleList<T>> layers_;
    std::shared_ptr<LayerNorm<T>> norm_;
};

/// torch.nn.TransformerDecoder: as TransformerEncoder, of decoder layers.
template <class T> class TransformerDecoder : public Module<T> {
public:
    /// Throws tg::Error when num_layers is 0.
    TransformerDecoder(const TransformerDecoderLayer<T>& layer, std::size_t num_layers,
                       std::shared_ptr<LayerNorm<T>> norm = nullptr, Generator& gen = default_generator());
    /// Every layer in turn with the same memory and masks, then the norm.
    Var<T> forward(const Var<T>& tgt, const Var<T>& memory, const AttentionMasks& tgt_masks = {},
                   const AttentionMasks& memory_masks = {});
    /// Same as forward(...).
    Var<T> operator()(const Var<T>& tgt, const Var<T>& memory, const AttentionMasks& tgt_masks = {},
                      const AttentionMasks& memory_masks = {})
    {
        return forward(tgt, memory, tgt_masks, memory_masks);
    }
    /// The i-th layer.
    TransformerDecoderLayer<T>& layer(std::size_t i) const
    {
        return layers_->template at<TransformerDecoderLayer<T>>(i);
    }
    std::size_t num_layers() const noexcept { return layers_->size(); }  ///< as constructed
    std::string type_name() const override { return "TransformerDecoder"; }

private:
    std::shared_ptr<ModuleList<T>> layers_;
    std::shared_ptr<LayerNorm<T>> norm_;
};

/// A [size, size] mask that is true above the diagonal: position i may not attend to j > i
/// (torch.nn.Transformer.generate_square_subsequent_mask, as a boolean mask).
xt::xarray<bool> square_subsequent_mask(std::size_t size);

}  // namespace tg::nn
