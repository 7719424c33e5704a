#include "model.hpp"

namespace charlm {

namespace nn = tg::nn;

Kind parse_kind(const std::string& name)
{
    if (name == "lstm") return Kind::lstm;
    if (name == "gru") return Kind::gru;
    if (name == "transformer") return Kind::transformer;
    throw tg::Error("char_lm: unknown model '" + name + "' (known: lstm, gru, transformer)");
}

std::string kind_name(Kind kind)
{
    switch (kind) {
    case Kind::lstm:
        return "lstm";
    case Kind::gru:
        return "gru";
    case Kind::transformer:
        return "transformer";
    }
    return "?";
}

CharModel::CharModel(const ModelConfig& config, tg::Generator& gen) : config_(config)
{
    if (config.vocabulary == 0 || config.hidden == 0 || config.layers == 0 || config.embedding == 0) {
        throw tg::Error("char_lm: vocabulary, embedding, hidden size and layers must be positive");
    }
    if (config.kind == Kind::transformer) {
        if (config.context == 0) throw tg::Error("char_lm: the Transformer's context must be positive");
        embedding_ =
            register_module("embedding", std::make_shared<nn::Embedding<float>>(config.vocabulary, config.hidden, gen));
        position_ =
            register_module("position", std::make_shared<nn::Embedding<float>>(config.context, config.hidden, gen));
        nn::TransformerLayerOptions layer;
        layer.dim_feedforward = 4 * config.hidden;
        layer.dropout = config.dropout;
        layer.activation = nn::TransformerActivation::gelu;
        layer.norm_first = true;
        const nn::TransformerEncoderLayer<float> prototype(config.hidden, config.heads, layer, gen);
        encoder_ = register_module(
            "encoder", std::make_shared<nn::TransformerEncoder<float>>(
                           prototype, config.layers,
                           std::make_shared<nn::LayerNorm<float>>(std::vector<std::size_t>{config.hidden}), gen));
    } else {
        embedding_ = register_module("embedding",
                                     std::make_shared<nn::Embedding<float>>(config.vocabulary, config.embedding, gen));
        if (config.kind == Kind::lstm) {
            nn::LSTMOptions o;
            o.num_layers = config.layers;
            o.dropout = config.layers > 1 ? config.dropout : 0.0;
            lstm_ = register_module("rnn", std::make_shared<nn::LSTM<float>>(config.embedding, config.hidden, o, gen));
        } else {
            nn::GRUOptions o;
            o.num_layers = config.layers;
            o.dropout = config.layers > 1 ? config.dropout : 0.0;
            gru_ = register_module("rnn", std::make_shared<nn::GRU<float>>(config.embedding, config.hidden, o, gen));
        }
    }
    dropout_ = register_module("dropout", std::make_shared<nn::Dropout<float>>(config.dropout, gen()));
    fc_ = register_module("fc", std::make_shared<nn::Linear<float>>(config.hidden, config.vocabulary, true, gen));
}

tg::Var<float> CharModel::forward(const xt::xarray<std::int64_t>& indices, nn::RecurrentState<float>& state)
{
    if (indices.dimension() != 2) {
        throw tg::Error("char_lm: the model takes indices [T, N], got " + tg::format_shape(indices.shape()));
    }
    tg::Var<float> hidden;
    if (config_.kind == Kind::transformer) {
        const std::size_t length = indices.shape()[0];
        if (length > config_.context) {
            throw tg::Error("char_lm: a window of " + std::to_string(length) + " characters is longer than the " +
                            "Transformer's context of " + std::to_string(config_.context));
        }
        xt::xarray<std::int64_t> positions = xt::zeros<std::int64_t>({length, std::size_t(1)});
        for (std::size_t t = 0; t < length; ++t) positions(t, 0) = static_cast<std::int64_t>(t);
        nn::AttentionMasks masks;
        masks.attn_mask = nn::square_subsequent_mask(length);
        hidden = encoder_->forward(embedding_->forward(indices) + position_->forward(positions), masks);
    } else {
        const tg::Var<float> x = embedding_->forward(indices);
        nn::RecurrentOutput<float> out = lstm_ ? lstm_->forward(x, state) : gru_->forward(x, state);
        state.h = tg::detach(out.state.h);
        state.c = out.state.c.defined() ? tg::detach(out.state.c) : tg::Var<float>();
        hidden = std::move(out.output);
    }
    return fc_->forward(dropout_->forward(hidden));
}

}  // namespace charlm
