// Float LSTM and GRU layers run through oneDNN's RNN primitives (tg::set_recurrent_backend)
// against the same layers run through the tape's cells: outputs, final states and every
// gradient, first and second order, stacked, bidirectional, batch_first, with and without
// biases, from given states and with dropout between layers; and which way a layer takes.

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "helpers.hpp"

#include "tapegrad/tapegrad.hpp"

namespace nn = tg::nn;
using Catch::Contains;
using tg::Var;

namespace {

using V = Var<float>;

// Sets the backend for a scope.
class Backend {
public:
    explicit Backend(tg::RecurrentBackend b) : before_(tg::get_recurrent_backend()) { tg::set_recurrent_backend(b); }
    ~Backend() { tg::set_recurrent_backend(before_); }
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

private:
    tg::RecurrentBackend before_;
};

struct Config {
    bool gru = false;
    std::size_t input = 5, hidden = 7, layers = 1;
    bool bias = true, batch_first = false, bidirectional = false, with_state = false;
    double dropout = 0.0;
    std::size_t steps = 6, batch = 3;

    std::string name() const
    {
        return std::string(gru ? "GRU" : "LSTM") + " layers " + std::to_string(layers) + (bias ? "" : " no bias") +
               (batch_first ? " batch_first" : "") + (bidirectional ? " bidirectional" : "") +
               (with_state ? " from a given state" : "") + (dropout > 0 ? " dropout" : "");
    }
};

// The options GRUOptions and LSTMOptions share, from the configuration.
template <class Options> Options options_of(const Config& c)
{
    Options o;
    o.num_layers = c.layers;
    o.bias = c.bias;
    o.batch_first = c.batch_first;
    o.bidirectional = c.bidirectional;
    o.dropout = c.dropout;
    return o;
}

std::shared_ptr<nn::RecurrentLayer<float>> make(const Config& c)
{
    tg::Generator gen(5);
    if (c.gru) return std::make_shared<nn::GRU<float>>(c.input, c.hidden, options_of<nn::GRUOptions>(c), gen);
    return std::make_shared<nn::LSTM<float>>(c.input, c.hidden, options_of<nn::LSTMOptions>(c), gen);
}

template <class S> xt::xarray<float> uniform(const S& shape, unsigned seed)
{
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    xt::xarray<float> a = xt::xarray<float>::from_shape(std::vector<std::size_t>(shape.begin(), shape.end()));
    for (float& v : a) v = u(gen);
    return a;
}
xt::xarray<float> uniform(std::initializer_list<std::size_t> shape, unsigned seed)
{
    return uniform(std::vector<std::size_t>(shape), seed);
}

// What one run gives: output, final states and every gradient, by name.
using Results = std::map<std::string, xt::xarray<float>>;

// The layer's loss: weighted sums of the output and the final states (fixed random weights),
// so that every output element and both states carry a different gradient.
V loss_of(const Config& c, const nn::RecurrentOutput<float>& out)
{
    V loss = tg::sum(tg::mul(out.output, tg::constant(uniform(out.output.shape(), 21))));
    loss = tg::add(loss, tg::sum(tg::mul(out.state.h, tg::constant(uniform(out.state.h.shape(), 22)))));
    if (!c.gru) loss = tg::add(loss, tg::sum(tg::mul(out.state.c, tg::constant(uniform(out.state.c.shape(), 23)))));
    return loss;
}

struct Run {
    std::shared_ptr<nn::RecurrentLayer<float>> layer;
    V x, h0, c0;
    nn::RecurrentOutput<float> out;
};

Run forward(const Config& c)
{
    Run r;
    r.layer = make(c);
    const std::vector<std::size_t> xs = c.batch_first ? std::vector<std::size_t>{c.batch, c.steps, c.input}
                                                      : std::vector<std::size_t>{c.steps, c.batch, c.input};
    r.x = tg::parameter(uniform(xs, 11));
    nn::RecurrentState<float> initial;
    if (c.with_state) {
        const std::vector<std::size_t> ss{c.layers * (c.bidirectional ? 2 : 1), c.batch, c.hidden};
        r.h0 = initial.h = tg::parameter(uniform(ss, 12));
        if (!c.gru) r.c0 = initial.c = tg::parameter(uniform(ss, 13));
    }
    r.out = r.layer->forward(r.x, initial);
    return r;
}

Results first_order(const Config& c)
{
    Run r = forward(c);
    Results res{{"output", r.out.output.value()}, {"h", r.out.state.h.value()}};
    if (!c.gru) res["c"] = r.out.state.c.value();
    loss_of(c, r.out).backward();
    res["grad x"] = r.x.grad();
    if (c.with_state) {
        res["grad h0"] = r.h0.grad();
        if (!c.gru) res["grad c0"] = r.c0.grad();
    }
    for (const auto& [name, p] : r.layer->named_parameters()) res["grad " + name] = p.grad();
    return res;
}

// Second order: the gradient of the squared norm of the loss's parameter gradients.
Results second_order(const Config& c)
{
    Run r = forward(c);
    std::vector<V> inputs{r.x};
    std::vector<std::string> names{"x"};
    for (const auto& [name, p] : r.layer->named_parameters()) {
        inputs.push_back(p);
        names.push_back(name);
    }
    const std::vector<V> g = tg::grad({loss_of(c, r.out)}, inputs, {}, {true});
    V penalty = tg::sum(tg::mul(g[0], g[0]));
    for (std::size_t k = 1; k < g.size(); ++k) penalty = tg::add(penalty, tg::sum(tg::mul(g[k], g[k])));
    penalty.backward();
    Results res;
    for (std::size_t k = 0; k < inputs.size(); ++k) res["second-order grad " + names[k]] = inputs[k].grad();
    return res;
}

// The largest difference over the largest magnitude of the expected values.
double scaled_error(const xt::xarray<float>& got, const xt::xarray<float>& want)
{
    REQUIRE(got.shape() == want.shape());
    double diff = 0, scale = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
        diff = std::max(diff, std::abs(static_cast<double>(got.data()[k]) - want.data()[k]));
        scale = std::max(scale, std::abs(static_cast<double>(want.data()[k])));
    }
    return scale > 0 ? diff / scale : diff;
}

void compare(const Results& onednn, const Results& tape, double tolerance)
{
    REQUIRE(onednn.size() == tape.size());
    for (const auto& [name, want] : tape) {
        INFO(name);
        REQUIRE(onednn.count(name) == 1);
        CHECK(scaled_error(onednn.at(name), want) <= tolerance);
    }
}

std::vector<Config> configs()
{
    std::vector<Config> all;
    Config c;
    all.push_back(c);  // one-layer LSTM
    c.layers = 2;
    c.bidirectional = true;
    c.batch_first = true;
    c.with_state = true;
    all.push_back(c);  // stacked, bidirectional, batch_first LSTM from a given state
    c.gru = true;
    all.push_back(c);  // the same GRU
    c = Config{};
    c.gru = true;
    c.bias = false;
    c.steps = 1;
    all.push_back(c);  // a one-step GRU without biases
    c = Config{};
    c.bias = false;
    c.layers = 3;
    c.dropout = 0.4;
    all.push_back(c);  // a three-layer LSTM without biases, dropout between layers
    return all;
}

// Whether the recorded graph of `v` has a oneDNN layer in it.
bool ran_onednn(const V& v)
{
    return tg::to_dot(v).find("onednn_recurrent") != std::string::npos;
}

// Runs every configuration on the tape's cells and through oneDNN and compares what `run` gives.
void compare_backends(Results (*run)(const Config&), double tolerance)
{
    for (const Config& c : configs()) {
        INFO(c.name());
        Results tape, onednn;
        {
            Backend b(tg::RecurrentBackend::tape);
            CHECK_FALSE(ran_onednn(forward(c).out.output));
            tape = run(c);
        }
        {
            Backend b(tg::RecurrentBackend::onednn);
            CHECK(ran_onednn(forward(c).out.output) == tg::onednn_recurrent_available());
            onednn = run(c);
        }
        compare(onednn, tape, tolerance);
    }
}

}  // namespace

TEST_CASE("float LSTM and GRU layers through oneDNN equal the tape's cells in outputs, states and gradients",
          "[nn][recurrent][onednn]")
{
    compare_backends(first_order, 1e-5);
}

TEST_CASE("float LSTM and GRU layers through oneDNN are differentiable twice, as through the tape's cells",
          "[nn][recurrent][onednn][second-order]")
{
    compare_backends(second_order, 1e-4);
}

TEST_CASE("recurrent layers take oneDNN only where it applies and the setting allows", "[nn][recurrent][onednn]")
{
    const bool have = tg::onednn_recurrent_available();
    Backend b(tg::RecurrentBackend::onednn);
    CHECK(tg::get_recurrent_backend() == tg::RecurrentBackend::onednn);
    const V x = tg::constant(uniform({4, 2, 3}, 1));
    CHECK(ran_onednn(nn::LSTM<float>(3, 5)(x)) == have);
    CHECK(ran_onednn(nn::GRU<float>(3, 5)(x)) == have);
    // Not through oneDNN: plain RNNs, proj_size, packed sequences of different lengths, double.
    CHECK_FALSE(ran_onednn(nn::RNN<float>(3, 5)(x)));
    nn::LSTMOptions proj;
    proj.proj_size = 2;
    CHECK_FALSE(ran_onednn(nn::LSTM<float>(3, 5, proj)(x)));
    nn::LSTM<float> lstm(3, 5);
    const auto packed = nn::pack_padded_sequence(x, {4, 2});
    CHECK_FALSE(ran_onednn(lstm(packed, {}).output.data));
    const auto same_length = nn::pack_padded_sequence(x, {4, 4});
    CHECK(ran_onednn(lstm(same_length, {}).output.data) == have);
    nn::LSTM<double> in_double(3, 5);
    const Var<double> xd = tg::constant(xt::xarray<double>(xt::ones<double>({4, 2, 3})));
    CHECK(tg::to_dot(in_double(xd)).find("onednn_recurrent") == std::string::npos);

    // Automatic: a small layer on more than one thread stays on the tape; on one thread, and
    // for a layer whose step reaches 2^20 multiply-adds, oneDNN.
    tg::set_recurrent_backend(tg::RecurrentBackend::automatic);
    const int threads = tg::get_num_threads();
    tg::set_num_threads(2);
    CHECK_FALSE(ran_onednn(nn::LSTM<float>(3, 5)(x)));
    const V big = tg::constant(uniform({2, 32, 64}, 2));
    CHECK(ran_onednn(nn::LSTM<float>(64, 128)(big)) == have);  // 32 x 4 x 128 x 192 = 3.1 M
    tg::set_num_threads(1);
    CHECK(ran_onednn(nn::LSTM<float>(3, 5)(x)) == have);
    tg::set_num_threads(threads);

    CHECK_THROWS_WITH(tg::set_recurrent_backend(static_cast<tg::RecurrentBackend>(7)),
                      Contains("set_recurrent_backend") && Contains("7"));
}

TEST_CASE("a oneDNN layer trains: repeated steps with an optimizer follow the tape's cells", "[nn][recurrent][onednn]")
{
    // Weights change between steps: each step must reorder the new weights for oneDNN.
    Config c;
    c.layers = 2;
    c.hidden = 16;
    auto train = [&](tg::RecurrentBackend backend) {
        Backend b(backend);
        auto layer = make(c);
        tg::optim::SGDOptions o;
        o.lr = 0.1;
        tg::optim::SGD<float> opt(layer->parameters(), o);
        const V x = tg::constant(uniform({c.steps, c.batch, c.input}, 3));
        for (int step = 0; step < 5; ++step) {
            opt.zero_grad();
            const auto out = layer->forward(x, {});
            loss_of(c, out).backward();
            opt.step();
        }
        return layer->forward(x).value();
    };
    const xt::xarray<float> tape = train(tg::RecurrentBackend::tape);
    CHECK(scaled_error(train(tg::RecurrentBackend::onednn), tape) <= 1e-5);
}

TEST_CASE("a oneDNN layer's backward runs again on a retained pass and adds the same gradients",
          "[nn][recurrent][onednn]")
{
    Backend b(tg::RecurrentBackend::onednn);
    for (const bool gru : {false, true}) {
        INFO((gru ? "GRU" : "LSTM"));
        Config c;
        c.gru = gru;
        Run r = forward(c);
        const V loss = loss_of(c, r.out);
        loss.backward(tg::retain_graph);
        std::map<std::string, xt::xarray<float>> once;
        for (const auto& [name, p] : r.layer->named_parameters()) once[name] = p.grad();
        loss.backward();
        for (const auto& [name, p] : r.layer->named_parameters()) {
            INFO(name);
            CHECK(scaled_error(p.grad(), xt::xarray<float>(2.0f * once.at(name))) <= 1e-6);
        }
    }
}
