// The recurrent layers (LSTM, GRU, RNN, the cells as modules) and packed sequences: against
// PyTorch float64 (tests/reference/make_recurrent_reference.py) in outputs, final states and
// every gradient; a packed run against each sequence run alone; dropout between layers; the
// errors; and a PyTorch LSTM language model loaded by name.

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "helpers.hpp"
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

namespace nn = tg::nn;
using Catch::Contains;
using tg::Var;
using tg_test::json_array;
using tg_test::worst_relative;

namespace {

// Relative to max(|want|, 1e-3): gradients and outputs are O(1), so this is 1e-10 relative
// for every element that is not itself tiny.
constexpr double floor_ = 1e-3;
constexpr double tolerance = 1e-10;

nlohmann::json reference(const char* file)
{
    return tg_test::reference_json(TAPEGRAD_REFERENCE_DIR, file, "make_recurrent_reference.py");
}

std::shared_ptr<nn::RecurrentLayer<double>> make_layer(const nlohmann::json& c)
{
    const std::string kind = c.at("kind");
    const std::size_t in = c.at("input_size"), hidden = c.at("hidden_size");
    tg::Generator gen(1);
    if (kind == "lstm") {
        nn::LSTMOptions o;
        o.num_layers = c.at("num_layers");
        o.bias = c.at("bias");
        o.batch_first = c.at("batch_first");
        o.bidirectional = c.at("bidirectional");
        o.proj_size = c.at("proj_size");
        return std::make_shared<nn::LSTM<double>>(in, hidden, o, gen);
    }
    if (kind == "gru") {
        nn::GRUOptions o;
        o.num_layers = c.at("num_layers");
        o.bias = c.at("bias");
        o.batch_first = c.at("batch_first");
        o.bidirectional = c.at("bidirectional");
        return std::make_shared<nn::GRU<double>>(in, hidden, o, gen);
    }
    nn::RNNOptions o;
    o.num_layers = c.at("num_layers");
    o.bias = c.at("bias");
    o.batch_first = c.at("batch_first");
    o.bidirectional = c.at("bidirectional");
    o.nonlinearity = c.at("nonlinearity") == "relu" ? nn::RNNNonlinearity::relu : nn::RNNNonlinearity::tanh;
    return std::make_shared<nn::RNN<double>>(in, hidden, o, gen);
}

void check_close(const std::string& what, const xt::xarray<double>& got, const nlohmann::json& want)
{
    tg_test::check_close(what, got, want, floor_, tolerance);
}

template <class S> std::vector<std::size_t> dims(const S& shape)
{
    return std::vector<std::size_t>(shape.begin(), shape.end());
}

Var<double> weighted(const Var<double>& v, const nlohmann::json& w)
{
    return tg::sum(tg::mul(v, tg::constant(json_array(w))));
}

}  // namespace

TEST_CASE("LSTM, GRU and RNN agree with PyTorch float64 in outputs, final states and every gradient",
          "[nn][recurrent][pytorch]")
{
    const nlohmann::json ref = reference("recurrent_reference.json");
    for (const auto& c : ref.at("layers")) {
        const std::string name = c.at("name");
        SECTION(name)
        {
            auto layer = make_layer(c);
            CHECK(layer->state_dict_keys() == c.at("state_dict_keys").get<std::vector<std::string>>());
            layer->load_state_dict(tg_test::state_dict_of(c));
            const Var<double> x = tg::parameter(json_array(c.at("x")));
            nn::RecurrentState<double> initial;
            if (c.contains("h0")) initial.h = tg::parameter(json_array(c.at("h0")));
            if (c.contains("c0")) initial.c = tg::parameter(json_array(c.at("c0")));
            const bool batch_first = c.at("batch_first");
            Var<double> y;
            nn::RecurrentState<double> final_state;
            if (c.contains("lengths")) {
                const auto lengths = c.at("lengths").get<std::vector<std::size_t>>();
                const nn::PackedSequence<double> packed = nn::pack_padded_sequence(x, lengths, batch_first, false);
                CHECK(packed.batch_sizes == c.at("batch_sizes").get<std::vector<std::size_t>>());
                CHECK(packed.sorted_indices == c.at("sorted_indices").get<std::vector<std::size_t>>());
                CHECK(packed.unsorted_indices == c.at("unsorted_indices").get<std::vector<std::size_t>>());
                const nn::PackedRecurrentOutput<double> out = layer->forward(packed, initial);
                y = out.output.data;
                final_state = out.state;
                const auto padded = nn::pad_packed_sequence(out.output, batch_first);
                check_close("padded output", padded.first.value(), c.at("padded_output"));
                CHECK(padded.second == lengths);
            } else {
                const nn::RecurrentOutput<double> out = layer->forward(x, initial);
                y = out.output;
                final_state = out.state;
            }
            check_close("output", y.value(), c.at("output"));
            check_close("h_n", final_state.h.value(), c.at("h_n"));
            Var<double> loss = weighted(y, c.at("weight_output")) + weighted(final_state.h, c.at("weight_h"));
            if (c.contains("c_n")) {
                check_close("c_n", final_state.c.value(), c.at("c_n"));
                loss = loss + weighted(final_state.c, c.at("weight_c"));
            } else {
                CHECK_FALSE(final_state.c.defined());
            }
            loss.backward();
            check_close("grad x", x.grad(), c.at("grad_x"));
            if (c.contains("grad_h0")) check_close("grad h0", initial.h.grad(), c.at("grad_h0"));
            if (c.contains("grad_c0")) check_close("grad c0", initial.c.grad(), c.at("grad_c0"));
            std::size_t checked = 0;
            for (const auto& [pname, p] : layer->named_parameters()) {
                INFO(pname);
                REQUIRE(c.at("grads").contains(pname));
                check_close(pname.c_str(), p.grad(), c.at("grads").at(pname));
                ++checked;
            }
            CHECK(checked == c.at("grads").size());
        }
    }
}

TEST_CASE("LSTMCell, GRUCell and RNNCell agree with PyTorch float64", "[nn][recurrent][pytorch]")
{
    const nlohmann::json ref = reference("recurrent_reference.json");
    for (const auto& c : ref.at("cells")) {
        const std::string name = c.at("name"), kind = c.at("kind");
        SECTION(name)
        {
            const std::size_t in = c.at("input_size"), hidden = c.at("hidden_size");
            const bool bias = c.at("bias");
            std::shared_ptr<nn::Module<double>> cell;
            const Var<double> x = tg::parameter(json_array(c.at("x")));
            const Var<double> h0 = tg::parameter(json_array(c.at("h0")));
            Var<double> loss;
            Var<double> c0;
            if (kind == "lstm") {
                auto m = std::make_shared<nn::LSTMCell<double>>(in, hidden, bias);
                m->load_state_dict(tg_test::state_dict_of(c));
                c0 = tg::parameter(json_array(c.at("c0")));
                const nn::RecurrentState<double> s = m->forward(x, {h0, c0});
                check_close("h", s.h.value(), c.at("h_n"));
                check_close("c", s.c.value(), c.at("c_n"));
                loss = weighted(s.h, c.at("weight_h")) + weighted(s.c, c.at("weight_c"));
                cell = m;
            } else {
                Var<double> h;
                if (kind == "gru") {
                    auto m = std::make_shared<nn::GRUCell<double>>(in, hidden, bias);
                    m->load_state_dict(tg_test::state_dict_of(c));
                    h = m->forward(x, h0);
                    cell = m;
                } else {
                    const auto act =
                        c.at("nonlinearity") == "relu" ? nn::RNNNonlinearity::relu : nn::RNNNonlinearity::tanh;
                    auto m = std::make_shared<nn::RNNCell<double>>(in, hidden, bias, act);
                    m->load_state_dict(tg_test::state_dict_of(c));
                    h = m->forward(x, h0);
                    cell = m;
                }
                check_close("h", h.value(), c.at("h_n"));
                loss = weighted(h, c.at("weight_h"));
            }
            CHECK(cell->state_dict_keys() == c.at("state_dict_keys").get<std::vector<std::string>>());
            loss.backward();
            check_close("grad x", x.grad(), c.at("grad_x"));
            check_close("grad h0", h0.grad(), c.at("grad_h0"));
            if (kind == "lstm") check_close("grad c0", c0.grad(), c.at("grad_c0"));
            for (const auto& [pname, p] : cell->named_parameters()) {
                INFO(pname);
                check_close(pname.c_str(), p.grad(), c.at("grads").at(pname));
            }
        }
    }
}

TEST_CASE("a packed run equals running each sequence alone, outputs, states and gradients", "[nn][recurrent][packed]")
{
    const std::uint64_t seed = 2024;
    INFO("seed " << seed);
    tg::Generator gen(seed);
    nn::LSTMOptions o;
    o.num_layers = 2;
    o.bidirectional = true;
    o.proj_size = 2;
    nn::LSTM<double> lstm(3, 4, o, gen);
    const std::vector<std::size_t> lengths{2, 5, 1, 5, 3};
    const std::size_t n = lengths.size(), steps = 5;
    std::normal_distribution<double> normal;
    auto random = [&](std::vector<std::size_t> shape) {
        xt::xarray<double> a = xt::zeros<double>(shape);
        for (auto& v : a) v = normal(gen);
        return a;
    };
    const xt::xarray<double> xv = random({steps, n, 3}), h0v = random({4, n, 2}), c0v = random({4, n, 4});
    const xt::xarray<double> wy = random({steps, n, 4});

    // Packed, unsorted lengths.
    const Var<double> x = tg::constant(xv);
    const auto packed = nn::pack_padded_sequence(x, lengths, false, false);
    const auto out = lstm.forward(packed, {tg::constant(h0v), tg::constant(c0v)});
    const auto padded = nn::pad_packed_sequence(out.output);
    REQUIRE(dims(padded.first.shape()) == std::vector<std::size_t>{steps, n, 4});
    tg::sum(tg::mul(padded.first, tg::constant(wy))).backward();
    std::map<std::string, xt::xarray<double>> packed_grads;
    for (const auto& [name, p] : lstm.named_parameters()) packed_grads[name] = p.grad();
    lstm.zero_grad();

    // Each sequence alone, from its own slice of the initial state.
    for (std::size_t b = 0; b < n; ++b) {
        INFO("sequence " << b << " of length " << lengths[b]);
        const std::size_t len = lengths[b];
        const xt::xarray<double> xb = xt::view(xv, xt::range(0, len), xt::range(b, b + 1), xt::all());
        const xt::xarray<double> hb = xt::view(h0v, xt::all(), xt::range(b, b + 1), xt::all());
        const xt::xarray<double> cb = xt::view(c0v, xt::all(), xt::range(b, b + 1), xt::all());
        const auto alone = lstm.forward(tg::constant(xb), {tg::constant(hb), tg::constant(cb)});
        const xt::xarray<double> want_y =
            xt::view(padded.first.value(), xt::range(0, len), xt::range(b, b + 1), xt::all());
        CHECK(worst_relative(alone.output.value(), want_y, floor_) <= 1e-13);
        if (len < steps) {  // padding after the sequence's end is zero
            const xt::xarray<double> pad_rest = xt::view(padded.first.value(), xt::range(len, steps), b, xt::all());
            CHECK(xt::amax(xt::abs(pad_rest))() == 0.0);
        }
        const xt::xarray<double> want_h = xt::view(out.state.h.value(), xt::all(), xt::range(b, b + 1), xt::all());
        const xt::xarray<double> want_c = xt::view(out.state.c.value(), xt::all(), xt::range(b, b + 1), xt::all());
        CHECK(worst_relative(alone.state.h.value(), want_h, floor_) <= 1e-13);
        CHECK(worst_relative(alone.state.c.value(), want_c, floor_) <= 1e-13);
        const xt::xarray<double> wb = xt::view(wy, xt::range(0, len), xt::range(b, b + 1), xt::all());
        tg::sum(tg::mul(alone.output, tg::constant(wb))).backward();
    }
    for (const auto& [name, p] : lstm.named_parameters()) {
        INFO(name);
        CHECK(worst_relative(p.grad(), packed_grads.at(name), floor_) <= 1e-12);
    }
}

TEST_CASE("recurrent layers are twice differentiable: gradcheck and gradgradcheck over packed, stacked layers",
          "[nn][recurrent][gradcheck]")
{
    // Each layer projects all its steps' inputs at once and every cell reads its rows of that
    // projection: the rows, their gradients and the rules' second derivatives are checked here
    // with sequences of different lengths in both directions.
    const std::uint64_t seed = 77;
    INFO("seed " << seed);
    tg::Generator gen(seed);
    std::normal_distribution<double> normal;
    auto random = [&](std::vector<std::size_t> shape) {
        xt::xarray<double> a = xt::zeros<double>(shape);
        for (auto& v : a) v = 0.5 * normal(gen);
        return a;
    };
    const std::vector<std::size_t> lengths{2, 3, 1};
    const Var<double> x = tg::constant(random({3, 3, 2}));
    const xt::xarray<double> w = random({6, 6});
    // Output rows [sum(lengths) = 6, 6 features]; the loss weighs each one differently.
    auto check_layer = [&](nn::RecurrentLayer<double>& layer) {
        tg_test::check_twice_differentiable(layer, [&] {
            const auto packed = nn::pack_padded_sequence(x, lengths, false, false);
            return tg::sum(tg::mul(layer.forward(packed, {}).output.data, tg::constant(w)));
        });
    };
    nn::LSTMOptions lstm;
    lstm.num_layers = 2;
    lstm.bidirectional = true;
    nn::GRUOptions gru;
    gru.num_layers = 2;
    gru.bidirectional = true;
    nn::RNNOptions tanh_rnn;  // without biases
    tanh_rnn.num_layers = 2;
    tanh_rnn.bias = false;
    nn::RNNOptions relu_rnn;
    relu_rnn.nonlinearity = nn::RNNNonlinearity::relu;
    relu_rnn.bidirectional = true;
    nn::LSTM<double> a(2, 3, lstm, gen);
    nn::GRU<double> b(2, 3, gru, gen);
    nn::RNN<double> c(2, 6, tanh_rnn, gen), d(2, 3, relu_rnn, gen);
    const std::vector<nn::RecurrentLayer<double>*> layers{&a, &b, &c, &d};
    for (std::size_t k = 0; k < layers.size(); ++k) {
        INFO("layer " << k
                      << " (bidirectional LSTM, bidirectional GRU, tanh RNN, relu RNN): " << layers[k]->type_name());
        check_layer(*layers[k]);
    }
}

TEST_CASE("pack_sequence and pad_packed_sequence round trip, with padding_value and total_length",
          "[nn][recurrent][packed]")
{
    const Var<double> a = tg::constant(xt::xarray<double>{{1, 2}, {3, 4}});
    const Var<double> b = tg::constant(xt::xarray<double>{{5, 6}, {7, 8}, {9, 10}});
    const Var<double> c = tg::constant(xt::xarray<double>{{11, 12}});
    const auto packed = nn::pack_sequence<double>({a, b, c}, false);
    CHECK(packed.batch_sizes == std::vector<std::size_t>{3, 2, 1});
    CHECK(packed.sorted_indices == std::vector<std::size_t>{1, 0, 2});
    CHECK(packed.unsorted_indices == std::vector<std::size_t>{1, 0, 2});
    const xt::xarray<double> want_data{{5, 6}, {1, 2}, {11, 12}, {7, 8}, {3, 4}, {9, 10}};
    CHECK(bool(packed.data.value() == want_data));
    const auto padded = nn::pad_packed_sequence(packed, true, -1.0, 4);
    CHECK(padded.second == std::vector<std::size_t>{2, 3, 1});
    const xt::xarray<double> want{{{1, 2}, {3, 4}, {-1, -1}, {-1, -1}},
                                  {{5, 6}, {7, 8}, {9, 10}, {-1, -1}},
                                  {{11, 12}, {-1, -1}, {-1, -1}, {-1, -1}}};
    CHECK(bool(padded.first.value() == want));
    CHECK_THROWS_WITH(nn::pad_packed_sequence(packed, true, 0.0, 2),
                      Contains("pad_packed_sequence") && Contains("total_length (2)"));
    CHECK_THROWS_WITH(nn::pack_sequence<double>({a, b, c}), Contains("pack_sequence") && Contains("[2, 3, 1]"));
}

TEST_CASE("recurrent layers name the layer and the shapes in their errors", "[nn][recurrent][errors]")
{
    nn::LSTMOptions o;
    o.num_layers = 2;
    nn::LSTM<double> lstm(3, 4, o);
    const Var<double> x = tg::constant(xt::xarray<double>(xt::zeros<double>({5, 2, 3})));
    CHECK_THROWS_WITH(lstm.forward(tg::constant(xt::xarray<double>(xt::zeros<double>({5, 2, 7})))),
                      Contains("LSTM(3 -> 4)") && Contains("[T, N, 3]") && Contains("[5, 2, 7]"));
    const Var<double> bad_h = tg::constant(xt::xarray<double>(xt::zeros<double>({1, 2, 4})));
    CHECK_THROWS_WITH(lstm.forward(x, {bad_h, Var<double>()}),
                      Contains("LSTM: initial h must be [2, 2, 4]") && Contains("[1, 2, 4]"));
    const Var<double> bad_c = tg::constant(xt::xarray<double>(xt::zeros<double>({2, 2, 5})));
    CHECK_THROWS_WITH(lstm.forward(x, {Var<double>(), bad_c}), Contains("LSTM: initial c must be [2, 2, 4]"));
    nn::GRU<double> gru(3, 4);
    CHECK_THROWS_WITH(gru.forward(x, {Var<double>(), bad_c}), Contains("GRU") && Contains("only an LSTM"));
    CHECK_THROWS_WITH(nn::pack_padded_sequence(x, {6, 2}), Contains("pack_padded_sequence: lengths must be in 1..5") &&
                                                               Contains("[5, 2, 3]") && Contains("got 6"));
    CHECK_THROWS_WITH(nn::pack_padded_sequence(x, {3, 0}, false, false), Contains("got 0 at position 1"));
    CHECK_THROWS_WITH(nn::pack_padded_sequence(x, {2, 5}),
                      Contains("non-increasing") && Contains("[2, 5]") && Contains("enforce_sorted = false"));
    CHECK_THROWS_WITH(nn::pack_padded_sequence(x, {2, 5, 1}), Contains("expected 2 lengths"));
    const auto packed = nn::pack_padded_sequence(x, {5, 2});
    nn::LSTM<double> wide(4, 4);
    CHECK_THROWS_WITH(wide.forward(packed, {}), Contains("LSTM (packed input)") && Contains("[7, 3]"));
    CHECK_THROWS_WITH(nn::LSTM<double>(3, 4, nn::LSTMOptions{1, true, false, 0.0, false, 4}),
                      Contains("proj_size must be smaller than hidden_size"));
    CHECK_THROWS_WITH(nn::GRU<double>(3, 4, nn::GRUOptions{2, true, false, 1.0, false}), Contains("dropout"));
    nn::GRUCell<double> cell(3, 4);
    CHECK_THROWS_WITH(cell.forward(tg::constant(xt::xarray<double>(xt::zeros<double>({2, 5})))),
                      Contains("GRUCell(3 -> 4)") && Contains("[2, 5]"));
}

TEST_CASE("dropout between recurrent layers follows the given generator and only trains", "[nn][recurrent][dropout]")
{
    nn::LSTMOptions o;
    o.num_layers = 3;
    o.dropout = 0.5;
    tg::Generator g1(11), g2(11);
    nn::LSTM<double> a(3, 4, o, g1), b(3, 4, o, g2);
    const Var<double> x = tg::constant(xt::xarray<double>(xt::ones<double>({4, 2, 3})));
    const xt::xarray<double> ya = a.forward(x).value();
    CHECK(bool(b.forward(x).value() == ya));
    CHECK_FALSE(bool(a.forward(x).value() == ya));  // the next masks
    a.eval();
    const xt::xarray<double> e1 = a.forward(x).value();
    CHECK(bool(a.forward(x).value() == e1));
    nn::LSTMOptions plain = o;
    plain.dropout = 0.0;
    tg::Generator g3(11);
    nn::LSTM<double> c(3, 4, plain, g3);
    CHECK(bool(c.forward(x).value() == e1));  // same weights: the generator is drawn after them
    CHECK(a.named_generators().size() == 1);
}

TEST_CASE("recurrent layers have PyTorch's initialisation bounds and work in float and in a Sequential",
          "[nn][recurrent]")
{
    nn::GRU<float> gru(3, 16);
    for (const auto& [name, p] : gru.named_parameters()) {
        INFO(name);
        CHECK(xt::amax(xt::abs(p.value()))() <= 0.25f);
        CHECK(xt::amax(xt::abs(p.value()))() > 0.2f);
    }
    nn::Sequential<float> model{nn::LSTM<float>(3, 5), nn::Linear<float>(5, 2)};
    const Var<float> y = model(tg::constant(xt::xarray<float>(xt::ones<float>({4, 2, 3}))));
    CHECK(dims(y.shape()) == std::vector<std::size_t>{4, 2, 2});
}

namespace {
template <class T> class LanguageModel : public nn::Module<T> {
public:
    LanguageModel(std::size_t vocab, std::size_t embed, std::size_t hidden)
    {
        nn::LSTMOptions o;
        o.num_layers = 2;
        embedding_ = this->register_module("embedding", std::make_shared<nn::Embedding<T>>(vocab, embed));
        lstm_ = this->register_module("lstm", std::make_shared<nn::LSTM<T>>(embed, hidden, o));
        decoder_ = this->register_module("decoder", std::make_shared<nn::Linear<T>>(hidden, vocab));
    }
    Var<T> forward(const xt::xarray<std::int64_t>& tokens)
    {
        return decoder_->forward(lstm_->forward(embedding_->forward(tokens)));
    }

private:
    std::shared_ptr<nn::Embedding<T>> embedding_;
    std::shared_ptr<nn::LSTM<T>> lstm_;
    std::shared_ptr<nn::Linear<T>> decoder_;
};
}  // namespace

TEST_CASE("a PyTorch LSTM language model loads by name from safetensors and torch.save and gives its logits",
          "[nn][recurrent][pytorch][io]")
{
    const nlohmann::json ref = reference("recurrent_lm.json");
    const xt::xarray<double> tokens_d = json_array(ref.at("tokens"));
    const xt::xarray<std::int64_t> tokens = xt::cast<std::int64_t>(tokens_d);
    for (const char* file : {"recurrent_lm.safetensors", "recurrent_lm.pt"}) {
        INFO(file);
        LanguageModel<double> model(13, 6, 8);
        CHECK(model.state_dict_keys() == ref.at("state_dict_keys").get<std::vector<std::string>>());
        tg::io::load_parameters(std::string(TAPEGRAD_REFERENCE_DIR) + "/" + file, model);
        model.eval();
        const Var<double> logits = model.forward(tokens);
        const double error = worst_relative(logits.value(), json_array(ref.at("logits")), floor_);
        INFO("worst relative difference " << error);
        CHECK(error <= 1e-12);
    }
}
