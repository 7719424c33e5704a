// The attention layers (MultiheadAttention, the Transformer's encoder and decoder layers and
// stacks): against PyTorch float64 (tests/reference/make_attention_reference.py) in outputs,
// attention weights and every gradient; a query with no allowed key; dropout that follows the
// generator; second order; the errors; and a PyTorch TransformerEncoder loaded by name.

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

#include "tapegrad/attention.hpp"
#include "tapegrad/tapegrad.hpp"

namespace nn = tg::nn;
using Catch::Contains;
using tg::Var;
using tg_test::json_array;
using tg_test::worst_relative;

namespace {

constexpr double floor_ = 1e-3;  // relative to max(|want|, 1e-3)
constexpr double tolerance = 1e-10;

nlohmann::json reference(const char* file)
{
    return tg_test::reference_json(TAPEGRAD_REFERENCE_DIR, file, "make_attention_reference.py");
}

xt::xarray<bool> json_mask(const nlohmann::json& j)
{
    const auto shape = j.at("shape").get<std::vector<std::size_t>>();
    xt::xarray<bool> m = xt::zeros<bool>(shape);
    const auto values = j.at("values").get<std::vector<bool>>();
    REQUIRE(values.size() == m.size());
    std::copy(values.begin(), values.end(), m.begin());
    return m;
}

void check_close(const std::string& what, const xt::xarray<double>& got, const nlohmann::json& want)
{
    tg_test::check_close(what, got, want, floor_, tolerance);
}

Var<double> weighted(const Var<double>& v, const nlohmann::json& w)
{
    return tg::sum(tg::mul(v, tg::constant(json_array(w))));
}

template <class T> bool same(const xt::xarray<T>& a, const xt::xarray<T>& b)
{
    return a == b;
}

nn::AttentionMasks masks_of(const nlohmann::json& c, const std::string& prefix)
{
    nn::AttentionMasks m;
    if (c.contains(prefix + "attn_mask")) m.attn_mask = json_mask(c.at(prefix + "attn_mask"));
    if (c.contains(prefix + "key_padding_mask")) m.key_padding_mask = json_mask(c.at(prefix + "key_padding_mask"));
    return m;
}

void check_grads(const nn::Module<double>& layer, const nlohmann::json& c)
{
    for (const auto& [name, p] : layer.named_parameters()) {
        INFO(name);
        REQUIRE(c.at("grads").contains(name));
        check_close("grad of " + name, p.grad(), c.at("grads").at(name));
    }
}

nn::TransformerLayerOptions layer_options(const nlohmann::json& c)
{
    nn::TransformerLayerOptions o;
    o.dim_feedforward = c.at("dim_feedforward");
    o.dropout = 0.0;
    o.activation = c.at("activation") == "gelu" ? nn::TransformerActivation::gelu : nn::TransformerActivation::relu;
    o.norm_first = c.at("norm_first");
    o.batch_first = c.at("batch_first");
    return o;
}

}  // namespace

TEST_CASE("MultiheadAttention agrees with PyTorch float64 in outputs, weights and every gradient",
          "[nn][attention][pytorch]")
{
    const nlohmann::json ref = reference("attention_reference.json");
    for (const auto& c : ref.at("multihead_attention")) {
        const std::string name = c.at("name");
        SECTION(name)
        {
            nn::MultiheadAttentionOptions o;
            o.bias = c.at("bias");
            o.batch_first = c.at("batch_first");
            o.kdim = c.at("kdim");
            o.vdim = c.at("vdim");
            tg::Generator gen(3);
            nn::MultiheadAttention<double> mha(c.at("embed_dim"), c.at("num_heads"), o, gen);
            CHECK(mha.state_dict_keys() == c.at("state_dict_keys").get<std::vector<std::string>>());
            mha.load_state_dict(tg_test::state_dict_of(c));
            const Var<double> q = tg::parameter(json_array(c.at("query")));
            const bool self = c.at("self_attention");
            const Var<double> k = self ? q : tg::parameter(json_array(c.at("key")));
            const Var<double> v = self ? q : tg::parameter(json_array(c.at("value")));
            const bool need_weights = c.at("need_weights");
            const auto out = mha(q, k, v, masks_of(c, ""), need_weights, c.at("average_attn_weights"));
            check_close("output", out.output.value(), c.at("output"));
            Var<double> loss = weighted(out.output, c.at("weight_output"));
            CHECK(out.weights.defined() == need_weights);
            if (need_weights) {
                check_close("weights", out.weights.value(), c.at("weights"));
                loss = tg::add(loss, weighted(out.weights, c.at("weight_weights")));
            }
            loss.backward();
            check_close("grad of the query", q.grad(), c.at("grad_query"));
            if (!self) {
                check_close("grad of the key", k.grad(), c.at("grad_key"));
                check_close("grad of the value", v.grad(), c.at("grad_value"));
            }
            check_grads(mha, c);
        }
    }
}

TEST_CASE("Transformer encoder and decoder layers agree with PyTorch float64, outputs and every gradient",
          "[nn][attention][transformer][pytorch]")
{
    const nlohmann::json ref = reference("attention_reference.json");
    for (const auto& c : ref.at("layers")) {
        const std::string name = c.at("name");
        SECTION(name)
        {
            tg::Generator gen(5);
            const Var<double> x = tg::parameter(json_array(c.at("x")));
            Var<double> y, memory;
            std::shared_ptr<nn::Module<double>> layer;
            if (c.at("kind") == "encoder") {
                auto enc = std::make_shared<nn::TransformerEncoderLayer<double>>(c.at("d_model"), c.at("nhead"),
                                                                                 layer_options(c), gen);
                CHECK(enc->state_dict_keys() == c.at("state_dict_keys").get<std::vector<std::string>>());
                enc->load_state_dict(tg_test::state_dict_of(c));
                y = (*enc)(x, masks_of(c, "mask_"));
                layer = enc;
            } else {
                auto dec = std::make_shared<nn::TransformerDecoderLayer<double>>(c.at("d_model"), c.at("nhead"),
                                                                                 layer_options(c), gen);
                CHECK(dec->state_dict_keys() == c.at("state_dict_keys").get<std::vector<std::string>>());
                dec->load_state_dict(tg_test::state_dict_of(c));
                memory = tg::parameter(json_array(c.at("memory")));
                y = (*dec)(x, memory, masks_of(c, "mask_"), masks_of(c, "memory_mask_"));
                layer = dec;
            }
            check_close("output", y.value(), c.at("output"));
            weighted(y, c.at("weight_output")).backward();
            check_close("grad of the input", x.grad(), c.at("grad_x"));
            if (memory.defined()) check_close("grad of the memory", memory.grad(), c.at("grad_memory"));
            check_grads(*layer, c);
        }
    }
}

TEST_CASE("a PyTorch TransformerEncoder loads by name from safetensors and gives its output",
          "[nn][attention][transformer][pytorch][io]")
{
    const nlohmann::json ref = reference("transformer_encoder.json");
    nn::TransformerLayerOptions o;
    o.dim_feedforward = 32;
    nn::TransformerEncoderLayer<double> layer(16, 4, o);
    nn::TransformerEncoder<double> encoder(layer, 2,
                                           std::make_shared<nn::LayerNorm<double>>(std::vector<std::size_t>{16}));
    CHECK(encoder.state_dict_keys() == ref.at("state_dict_keys").get<std::vector<std::string>>());
    tg::io::load_parameters(std::string(TAPEGRAD_REFERENCE_DIR) + "/transformer_encoder.safetensors", encoder);
    encoder.eval();
    nn::AttentionMasks masks;
    masks.key_padding_mask = json_mask(ref.at("key_padding_mask"));
    const Var<double> y = encoder(tg::constant(json_array(ref.at("src"))), masks);
    const double error = worst_relative(y.value(), json_array(ref.at("output")), floor_);
    INFO("worst relative difference " << error);
    CHECK(error <= 1e-12);
}

TEST_CASE("a query with no allowed key gives the output bias and zero gradients, never NaN", "[nn][attention][masks]")
{
    tg::Generator gen(7);
    nn::MultiheadAttention<double> mha(4, 2, {}, gen);
    for (const auto& [name, p] : mha.named_parameters())
        if (name.find("bias") != std::string::npos) p.mutable_value().fill(0.5);
    tg::Generator data(8);
    const Var<double> q = tg::parameter(tg::randn<double>({3, 1, 4}, data).value());   // L 3, N 1
    const Var<double> kv = tg::parameter(tg::randn<double>({2, 1, 4}, data).value());  // S 2
    nn::AttentionMasks masks;
    masks.attn_mask = xt::xarray<bool>{{false, false}, {true, true}, {false, true}};  // query 1 sees nothing
    for (bool need_weights : {false, true}) {
        INFO("need_weights " << need_weights);
        mha.zero_grad();
        q.zero_grad();
        kv.zero_grad();
        const auto out = mha(q, kv, kv, masks, need_weights);
        // Row 1 attends to nothing: its attention output is 0, so the layer gives out_proj's bias.
        for (std::size_t j = 0; j < 4; ++j) CHECK(out.output.value()(1, 0, j) == Approx(0.5));
        if (need_weights) {
            CHECK(out.weights.value()(0, 1, 0) == 0.0);
            CHECK(out.weights.value()(0, 1, 1) == 0.0);
            CHECK(out.weights.value()(0, 2, 0) == Approx(1.0));
        }
        tg::sum(tg::mul(out.output, out.output)).backward();
        for (std::size_t j = 0; j < 4; ++j) CHECK(q.grad()(1, 0, j) == 0.0);
        CHECK(bool(xt::all(xt::isfinite(q.grad()))));
        CHECK(bool(xt::all(xt::isfinite(kv.grad()))));
        for (const auto& [name, p] : mha.named_parameters()) {
            INFO(name);
            CHECK(bool(xt::all(xt::isfinite(p.grad()))));
        }
    }
}

TEST_CASE("attention dropout follows the layer's generator and acts only in training", "[nn][attention][dropout]")
{
    nn::TransformerLayerOptions o;
    o.dim_feedforward = 8;
    o.dropout = 0.3;
    tg::Generator data(9);
    const Var<double> x = tg::constant(tg::randn<double>({5, 2, 4}, data).value());
    auto run = [&](std::uint64_t seed, bool training) {
        tg::Generator gen(seed);
        nn::TransformerEncoderLayer<double> layer(4, 2, o, gen);
        layer.train(training);
        return xt::xarray<double>(layer(x).value());
    };
    CHECK(same(run(1, true), run(1, true)));
    CHECK_FALSE(same(run(1, true), run(2, true)));
    const xt::xarray<double> eval = run(1, false);
    CHECK(same(eval, run(1, false)));
    CHECK_FALSE(same(eval, run(1, true)));
    // The same in MultiheadAttention alone, with the fused path and with weights.
    for (bool need_weights : {false, true}) {
        nn::MultiheadAttentionOptions mo;
        mo.dropout = 0.5;
        auto attend = [&](std::uint64_t seed) {
            tg::Generator gen(seed);
            nn::MultiheadAttention<double> mha(4, 2, mo, gen);
            return xt::xarray<double>(mha(x, x, x, {}, need_weights).output.value());
        };
        CHECK(same(attend(4), attend(4)));
        CHECK_FALSE(same(attend(4), attend(5)));
    }
}

TEST_CASE("MultiheadAttention and a Transformer layer are differentiable twice", "[nn][attention][second-order]")
{
    tg::Generator gen(11);
    nn::MultiheadAttention<double> mha(4, 2, {}, gen);
    const Var<double> x = tg::constant(tg::randn<double>({3, 2, 4}, gen).value());
    nn::AttentionMasks masks;
    masks.attn_mask = nn::square_subsequent_mask(3);
    tg_test::check_twice_differentiable(mha, [&] { return tg::sum(tg::tanh(mha(x, x, x, masks, true).output)); });

    nn::TransformerLayerOptions o;
    o.dim_feedforward = 6;
    o.dropout = 0.0;
    o.activation = nn::TransformerActivation::gelu;
    nn::TransformerEncoderLayer<double> layer(4, 2, o, gen);
    tg_test::check_twice_differentiable(layer, [&] { return tg::sum(tg::tanh(layer(x, masks))); });
}

TEST_CASE("Transformer stacks clone the layer, name the clones as PyTorch, and summarise",
          "[nn][attention][transformer]")
{
    nn::TransformerLayerOptions o;
    o.dim_feedforward = 8;
    tg::Generator gen(12);
    nn::TransformerDecoderLayer<float> layer(4, 2, o, gen);
    nn::TransformerDecoder<float> decoder(layer, 3, nullptr, gen);
    CHECK(decoder.num_layers() == 3);
    const auto state = decoder.state_dict();
    CHECK(state.count("layers.2.multihead_attn.out_proj.weight") == 1);
    CHECK(state.count("norm.weight") == 0);
    for (const auto& [name, value] : layer.state_dict()) {
        INFO(name);
        CHECK(same(state.at("layers.0." + name), value));
        CHECK(same(state.at("layers.2." + name), value));
    }
    // Clones are independent: training one leaves the others.
    decoder.get_parameter("layers.1.norm1.weight").mutable_value().fill(2.0f);
    CHECK(decoder.get_parameter("layers.0.norm1.weight").value()(0) == 1.0f);
    CHECK(&decoder.layer(2) != &decoder.layer(0));
    const std::string summary = decoder.summary();
    CHECK_THAT(summary, Contains("TransformerDecoderLayer"));
    CHECK_THAT(summary, Contains("MultiheadAttention"));
    // Unbatched input and batch_first give the batched result.
    const Var<float> tgt = tg::constant(tg::randn<float>({3, 1, 4}, gen).value());
    const Var<float> mem = tg::constant(tg::randn<float>({2, 1, 4}, gen).value());
    decoder.eval();
    const xt::xarray<float> batched = decoder(tgt, mem).value();
    const xt::xarray<float> unbatched = decoder(tg::reshape(tgt, {3, 4}), tg::reshape(mem, {2, 4})).value();
    CHECK(bool(xt::allclose(unbatched, xt::reshape_view(batched, {3, 4}), 1e-5, 1e-6)));
}

TEST_CASE("attention layers name the layer and the shapes in their errors", "[nn][attention][errors]")
{
    CHECK_THROWS_WITH(nn::MultiheadAttention<double>(10, 3), Contains("embed_dim 10 is not divisible by num_heads 3"));
    CHECK_THROWS_WITH(nn::MultiheadAttention<double>(0, 1), Contains("must be positive"));
    nn::MultiheadAttentionOptions bad;
    bad.dropout = 1.0;
    CHECK_THROWS_WITH(nn::MultiheadAttention<double>(4, 2, bad), Contains("dropout must be in [0, 1)"));
    nn::MultiheadAttention<double> mha(4, 2);
    const Var<double> q = tg::constant(xt::xarray<double>(xt::zeros<double>({3, 2, 4})));
    const Var<double> k5 = tg::constant(xt::xarray<double>(xt::zeros<double>({5, 2, 4})));
    const Var<double> v6 = tg::constant(xt::xarray<double>(xt::zeros<double>({6, 2, 4})));
    CHECK_THROWS_WITH(mha(q, k5, v6), Contains("key and value must have the same length, got [5, 2, 4] and [6, 2, 4]"));
    const Var<double> wrong = tg::constant(xt::xarray<double>(xt::zeros<double>({3, 2, 5})));
    CHECK_THROWS_WITH(mha(wrong, k5, k5), Contains("MultiheadAttention(embed_dim 4, 2 heads): expected query, key"));
    const Var<double> other_batch = tg::constant(xt::xarray<double>(xt::zeros<double>({5, 3, 4})));
    CHECK_THROWS_WITH(mha(q, other_batch, other_batch), Contains("same batch size"));
    nn::AttentionMasks masks;
    masks.attn_mask = xt::xarray<bool>(xt::zeros<bool>({3, 4}));
    CHECK_THROWS_WITH(mha(q, k5, k5, masks), Contains("attn_mask must be [L, S] = [3, 5] or [N * num_heads, L, S]"));
    masks.attn_mask.reset();
    masks.key_padding_mask = xt::xarray<bool>(xt::zeros<bool>({5, 2}));
    CHECK_THROWS_WITH(mha(q, k5, k5, masks), Contains("key_padding_mask must be [N, S] = [2, 5], got [5, 2]"));

    nn::TransformerLayerOptions o;
    o.dim_feedforward = 0;
    CHECK_THROWS_WITH(nn::TransformerEncoderLayer<double>(4, 2, o), Contains("dim_feedforward must be positive"));
    o.dim_feedforward = 8;
    nn::TransformerEncoderLayer<double> layer(4, 2, o);
    CHECK_THROWS_WITH(layer(wrong), Contains("TransformerEncoderLayer(d_model 4, 2 heads): expected src [L, N, 4]"));
    CHECK_THROWS_WITH(nn::TransformerEncoder<double>(layer, 0), Contains("num_layers must be positive"));
    nn::TransformerDecoderLayer<double> dec(4, 2, o);
    CHECK_THROWS_WITH(dec(q, tg::reshape(k5, {10, 4})), Contains("both be batched or both unbatched"));
    // Empty input is an input too: a zero-length sequence gives a zero-length output.
    const Var<double> empty = tg::constant(xt::xarray<double>(xt::zeros<double>({0, 2, 4})));
    CHECK(mha(empty, k5, k5, {}, false).output.shape()[0] == 0);
}
