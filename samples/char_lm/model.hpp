#pragma once
// The char_lm sample's models: characters -> Embedding -> a 2-layer LSTM or GRU, or a small
// causal Transformer -> Linear -> logits over the vocabulary. Parameter names follow
// PyTorch's modules (embedding.weight, rnn.weight_ih_l0, ..., fc.weight), so libtorch's twin
// starts from the same weights by name.

#include <memory>
#include <string>

#include <tapegrad/tapegrad.hpp>

namespace charlm {

enum class Kind { lstm, gru, transformer };

/// "lstm", "gru" or "transformer"; tg::Error for anything else.
Kind parse_kind(const std::string& name);
std::string kind_name(Kind kind);

struct ModelConfig {
    Kind kind = Kind::lstm;
    std::size_t vocabulary = 0;
    std::size_t embedding = 64;  ///< recurrent models; the Transformer embeds straight to `hidden`
    std::size_t hidden = 256;    ///< recurrent hidden size, or the Transformer's d_model
    std::size_t layers = 2;
    double dropout = 0.1;      ///< between recurrent layers and before the output layer; in the Transformer
    std::size_t heads = 4;     ///< Transformer only
    std::size_t context = 64;  ///< Transformer only: the longest input (its learned positions)
};

class CharModel : public tg::nn::Module<float> {
public:
    CharModel(const ModelConfig& config, tg::Generator& gen);

    /// indices [T, N] -> logits [T, N, vocabulary]. Recurrent models start from `state` (empty
    /// = zeros) and leave their final state in it, detached from the tape: the next window
    /// continues where this one stopped, and backpropagation stops at the window's start.
    /// The Transformer ignores `state` and needs T <= context.
    tg::Var<float> forward(const xt::xarray<std::int64_t>& indices, tg::nn::RecurrentState<float>& state);

    const ModelConfig& config() const noexcept { return config_; }
    std::string type_name() const override { return "CharModel"; }

private:
    ModelConfig config_;
    std::shared_ptr<tg::nn::Embedding<float>> embedding_;
    std::shared_ptr<tg::nn::LSTM<float>> lstm_;
    std::shared_ptr<tg::nn::GRU<float>> gru_;
    std::shared_ptr<tg::nn::Embedding<float>> position_;
    std::shared_ptr<tg::nn::TransformerEncoder<float>> encoder_;
    std::shared_ptr<tg::nn::Dropout<float>> dropout_;
    std::shared_ptr<tg::nn::Linear<float>> fc_;
};

}  // namespace charlm
