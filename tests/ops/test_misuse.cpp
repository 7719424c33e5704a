// The misuse suite: the API used as a hostile or careless user would. Two parts:
//  - a sweep over every registered op and every one of its samples, with each input in
//    turn made undefined, stale, another thread's, zero-size, or NaN/inf-filled: the op
//    either works (zero-size and NaN follow PyTorch: an empty or NaN result) or throws a
//    tg::Error whose message names an op; it never crashes (the sanitizer builds run this);
//  - a table of inputs outside the domain of each public function that is not an op, each
//    checked by message. (Each op's own misuse, bad axes, indices, shapes and
//    hyperparameters, is in its file's error inputs, run by tests/ops/test_ops_generic.cpp.)

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "tapegrad/data.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;
using tg::Var;
namespace nn = tg::nn;
namespace optim = tg::optim;

namespace {

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// True when `message` starts with the name of a registered op or a known public function
// followed by ": ".
bool names_an_op(const std::string& message)
{
    const auto colon = message.find(": ");
    if (colon == std::string::npos) return false;
    const std::string who = message.substr(0, colon);
    for (const auto& op : tg::registered_ops()) {
        if (op.name == who) return true;
    }
    for (const char* f : {"backward", "value", "grad", "item", "shape", "size", "gradcheck"}) {
        if (who == f) return true;
    }
    return false;
}

// Runs a sample's function on `inputs`, then a backward through its result. Returns the
// message of the tg::Error it threw, or "" when it worked.
std::string run(const tg::OpSample& s, const std::vector<Var<double>>& inputs)
{
    try {
        Var<double> y = s.f64(inputs);
        const auto& v = y.value();
        tg::sum(y).backward();
        (void)v;
    } catch (const tg::Error& e) {
        tg::end_pass<double>();
        return e.what();
    }
    tg::end_pass<double>();
    return "";
}

std::vector<Var<double>> params_of(const tg::OpSample& s)
{
    std::vector<Var<double>> v;
    for (const auto& x : s.inputs) v.push_back(tg::parameter(x));
    return v;
}

}  // namespace

TEST_CASE("every op refuses an undefined, stale or other thread's input by name", "[misuse][ops]")
{
    std::mt19937_64 rng(20261130);
    std::size_t checked = 0;
    for (const auto& op : tg::registered_ops()) {
        for (const auto& s : op.samples(rng)) {
            for (std::size_t i = 0; i < s.inputs.size(); ++i) {
                CAPTURE(op.name, s.label, i);
                std::vector<Var<double>> in = params_of(s);

                in[i] = Var<double>();
                const std::string undefined = run(s, in);
                if (std::find(s.optional.begin(), s.optional.end(), i) == s.optional.end()) {
                    CHECK(names_an_op(undefined));
                    CHECK_THAT(undefined, Contains("the Var is undefined (default-constructed or moved from)"));
                } else {
                    CHECK(undefined.empty());  // an optional weight or bias left out
                }

                in = params_of(s);
                Var<double> stale = tg::parameter(s.inputs[i]) * 1.0;
                tg::sum(stale).backward();
                const Var<double> next_pass = tg::parameter(s.inputs[i]) * 1.0;  // recycles the released pass
                in[i] = stale;
                const std::string old = run(s, in);
                CHECK(names_an_op(old));
                CHECK_THAT(old, Contains("this Var is stale: it was recorded in pass"));

                in = params_of(s);
                std::thread([&] { in[i] = tg::parameter(s.inputs[i]) * 1.0; }).join();
                const std::string exited = run(s, in);
                CHECK(names_an_op(exited));
                CHECK_THAT(exited, Contains("recorded on another thread's tape") && Contains("exited"));
                ++checked;
            }
        }
    }
    CHECK(checked > 150);
}

TEST_CASE("every op on zero-size inputs works as PyTorch does or refuses by name, never crashes", "[misuse][ops]")
{
    std::mt19937_64 rng(7);
    std::size_t worked = 0, refused = 0;
    for (const auto& op : tg::registered_ops()) {
        for (const auto& s : op.samples(rng)) {
            for (std::size_t i = 0; i < s.inputs.size(); ++i) {
                if (s.inputs[i].dimension() == 0) continue;
                for (std::size_t axis = 0; axis < s.inputs[i].dimension(); ++axis) {
                    CAPTURE(op.name, s.label, i, axis);
                    std::vector<Var<double>> in = params_of(s);
                    auto shape = s.inputs[i].shape();
                    shape[axis] = 0;
                    in[i] = tg::parameter(xt::xarray<double>::from_shape(shape));
                    const std::string message = run(s, in);
                    if (message.empty()) {
                        ++worked;
                    } else {
                        ++refused;
                        CHECK(names_an_op(message));
                    }
                }
            }
        }
    }
    CHECK(worked > 100);
    CHECK(refused > 10);
}

TEST_CASE("every op on NaN and inf inputs gives a result, never a crash", "[misuse][ops]")
{
    std::mt19937_64 rng(11);
    for (const auto& op : tg::registered_ops()) {
        for (const auto& s : op.samples(rng)) {
            for (double bad : {kNan, kInf, -kInf}) {
                CAPTURE(op.name, s.label, bad);
                std::vector<Var<double>> in;
                for (const auto& x : s.inputs) in.push_back(tg::parameter(xt::xarray<double>(xt::full_like(x, bad))));
                const std::string message = run(s, in);
                if (!message.empty()) CHECK(names_an_op(message));
            }
        }
    }
}

TEST_CASE("a Var of a live thread's tape is refused by name", "[misuse][threads]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1, 2});
    Var<double> mine = w * 2.0;
    std::string message;
    std::thread([&] {
        try {
            tg::sum(mine);
        } catch (const tg::Error& e) {
            message = e.what();
        }
    }).join();
    CHECK(message == "sum: an input was recorded on another thread's tape; each thread records its own passes");
}

TEST_CASE("Var methods refuse what they cannot do, with the shapes", "[misuse][var]")
{
    Var<double> undefined;
    CHECK_THROWS_WITH(undefined.value(), Equals("value: the Var is undefined (default-constructed or moved from)"));
    CHECK_THROWS_WITH(undefined.backward(), StartsWith("backward: the Var is undefined"));
    Var<double> w = tg::parameter(xt::xarray<double>{1, 2, 3});
    CHECK_THROWS_WITH(w.backward(), Equals("backward: output must have one element or be given a seed, got shape [3]"));
    CHECK_THROWS_WITH(w.backward(xt::xarray<double>{1, 2}),
                      Equals("backward: seed shape [2] differs from the output's shape [3]"));
    CHECK_THROWS_WITH(w.set_value(xt::xarray<double>{1}),
                      Equals("set_value: shape [1] differs from the leaf's shape [3]"));
    CHECK_THROWS_WITH(w.item(), Equals("item: expected a Var with one element, got shape [3]"));
    CHECK_THROWS_WITH(w.grad(), StartsWith("grad: no gradient yet"));
    Var<double> y = w * 2.0;
    CHECK_THROWS_WITH(y.set_value(xt::xarray<double>{1, 2, 3}), StartsWith("set_value: only a leaf"));
    CHECK_THROWS_WITH(y.mutable_value(), StartsWith("mutable_value: only a leaf"));
    tg::sum(y).backward();
    CHECK_THROWS_WITH(tg::sum(y).backward(), StartsWith("backward: this graph was already backpropagated"));
    const Var<double> next_pass = w * 1.0;
    CHECK_THROWS_WITH(tg::sum(y).backward(), StartsWith("sum: this Var is stale"));
}

TEST_CASE("layers and initialisers refuse bad sizes, inputs and hyperparameters", "[misuse][nn]")
{
    CHECK_THROWS_WITH(nn::Dense<float>(0, 3),
                      Equals("Dense: in and out features must be positive, got in = 0, out = 3"));
    nn::Dense<float> d(3, 2);
    CHECK_THROWS_WITH(d(tg::parameter(xt::xarray<float>{{1, 2}})),
                      Equals("Dense(3 -> 2): expected input [batch, 3], got [1, 2]"));
    CHECK_THROWS_WITH(d(tg::parameter(xt::xarray<float>{1, 2, 3})),
                      Equals("Dense(3 -> 2): expected input [batch, 3], got [3]"));
    CHECK_THROWS_WITH(nn::Dropout<float>(-0.1), Equals("Dropout: p must be in [0, 1), got -0.1"));
    CHECK_THROWS_WITH(nn::Dropout<float>(kInf), Equals("Dropout: p must be in [0, 1), got inf"));
    CHECK_THROWS_WITH(nn::init::uniform(0, kInf),
                      Equals("init::uniform: needs a < b, both finite, got a = 0, b = inf"));
    CHECK_THROWS_WITH(nn::init::uniform(1, 1), Equals("init::uniform: needs a < b, both finite, got a = 1, b = 1"));
    CHECK_THROWS_WITH(nn::init::normal(kNan, 1), Equals("init::normal: mean must be finite, got nan"));
    CHECK_THROWS_WITH(nn::init::normal(0, kInf), Equals("init::normal: stddev must be positive and finite, got inf"));
    CHECK_THROWS_WITH(nn::init::glorot_uniform(kNan), Equals("init::glorot_uniform: gain must be finite, got nan"));
    CHECK_THROWS_WITH(nn::init::glorot_normal(kInf), Equals("init::glorot_normal: gain must be finite, got inf"));
    // Empty batches work as in PyTorch.
    nn::Sequential<float> m{nn::Dense<float>(3, 4, nn::Activation::relu), nn::Dropout<float>(0.5),
                            nn::Dense<float>(4, 2)};
    Var<float> y = m(tg::constant(xt::xarray<float>::from_shape({0, 3})));
    CHECK(y.shape() == std::vector<std::size_t>{0, 2});
    tg::sum(y).backward();
    for (const auto& p : m.parameters()) CHECK(xt::all(xt::equal(p.grad(), 0.0f)));
}

TEST_CASE("optimisers, schedules and clipping refuse empty lists and NaN/inf hyperparameters", "[misuse][optim]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1, 2});
    CHECK_THROWS_WITH(optim::SGD<double>({}), Equals("SGD: the parameter list is empty"));
    CHECK_THROWS_WITH(optim::AdamW<double>({}), Equals("AdamW: the parameter list is empty"));
    CHECK_THROWS_WITH(optim::SGD<double>({Var<double>()}), Equals("SGD: parameter 0 is undefined"));
    CHECK_THROWS_WITH(optim::SGD<double>({w * 2.0}), StartsWith("SGD: parameter 0 is the output of an op"));
    CHECK_THROWS_WITH(optim::SGD<double>({tg::constant(xt::xarray<double>{1})}),
                      StartsWith("SGD: parameter 0 (shape [1]) is a constant"));
    CHECK_THROWS_WITH(optim::AdamW<double>({w, tg::parameter(xt::xarray<double>{1}), w}),
                      StartsWith("AdamW: parameter 2 (shape [2]) is the same Var as parameter 0"));
    for (double bad : {kNan, kInf, -kInf}) {
        CAPTURE(bad);
        optim::SGDOptions s;
        s.lr = bad;
        CHECK_THROWS_WITH(optim::SGD<double>({w}, s), StartsWith("SGD: lr must be"));
        s = {};
        s.momentum = bad;
        CHECK_THROWS_WITH(optim::SGD<double>({w}, s), StartsWith("SGD: momentum must"));
        s = {};
        s.weight_decay = bad;
        CHECK_THROWS_WITH(optim::SGD<double>({w}, s), StartsWith("SGD: weight_decay must"));
        optim::AdamOptions a;
        a.eps = bad;
        CHECK_THROWS_WITH(optim::Adam<double>({w}, a), StartsWith("Adam: eps must"));
        a = {};
        a.beta1 = bad;
        CHECK_THROWS_WITH(optim::Adam<double>({w}, a), StartsWith("Adam: beta1 must be in [0, 1)"));
        a = {};
        a.lr = bad;
        CHECK_THROWS_WITH(optim::Adam<double>({w}, a), StartsWith("Adam: lr must be"));
        optim::SGD<double> sgd({w});
        CHECK_THROWS_WITH(sgd.set_lr(bad), StartsWith("SGD: lr must"));
        CHECK_THROWS_WITH(optim::ExponentialLR<double>(sgd, bad), StartsWith("ExponentialLR: gamma must"));
        CHECK_THROWS_WITH(optim::StepLR<double>(sgd, 2, bad), StartsWith("StepLR: gamma must"));
        CHECK_THROWS_WITH(optim::CosineAnnealingLR<double>(sgd, 10, bad),
                          StartsWith("CosineAnnealingLR: eta_min must"));
        optim::PlateauOptions po;
        po.factor = bad;
        CHECK_THROWS_WITH(optim::ReduceLROnPlateau<double>(sgd, po), StartsWith("ReduceLROnPlateau: factor must"));
        po = {};
        po.min_lr = bad;
        CHECK_THROWS_WITH(optim::ReduceLROnPlateau<double>(sgd, po), StartsWith("ReduceLROnPlateau: min_lr must"));
    }
    optim::SGD<double> sgd({w});
    CHECK_THROWS_WITH(optim::StepLR<double>(sgd, 0), Equals("StepLR: step_size must be positive, got 0"));
    CHECK_THROWS_WITH(optim::clip_grad_norm<double>({w}, 1.0, 0.5),
                      Equals("clip_grad_norm: norm_type must be at least 1 (or infinity), got 0.5"));
    CHECK_THROWS_WITH(optim::clip_grad_norm<double>({w}, kNan), StartsWith("clip_grad_norm: max_norm must"));
    CHECK_THROWS_WITH(optim::clip_grad_value<double>({w}, kNan), StartsWith("clip_grad_value: clip_value must"));
    CHECK_THROWS_WITH(sgd.state("0.nothing"), StartsWith("SGD: unknown state entry '0.nothing'"));
    CHECK_THROWS_WITH(sgd.state("7.step"), StartsWith("SGD: unknown state entry '7.step'"));
    CHECK_THROWS_WITH(sgd.set_state("0.step", xt::xarray<double>{1, 2}),
                      Equals("SGD: state entry '0.step' (step count) takes one value, got shape [2]"));
}

TEST_CASE("data sets and loaders refuse bad shapes, labels and sizes", "[misuse][data]")
{
    using tg::data::Dataset;
    CHECK_THROWS_WITH(Dataset<float>(xt::xarray<float>::from_shape({0, 3}), xt::xarray<std::int64_t>::from_shape({0})),
                      StartsWith("Dataset: empty data set"));
    CHECK_THROWS_WITH(Dataset<float>(xt::zeros<float>({2, 3}), xt::xarray<std::int64_t>{0, -1}),
                      Equals("Dataset: labels must be non-negative, found -1 at row 1"));
    Dataset<float> set(xt::zeros<float>({4, 3}), xt::xarray<std::int64_t>{0, 1, 2, 3});
    CHECK_THROWS_WITH(set.subset(3, 2), Equals("Dataset::subset: rows [3, 5) run past the 4 rows of the data set"));
    CHECK_THROWS_WITH(set.subset(1, std::numeric_limits<std::size_t>::max()),
                      StartsWith("Dataset::subset: rows [1, 1 + 18446744073709551615) run past"));
    tg::data::LoaderOptions o;
    o.batch_size = 0;
    CHECK_THROWS_WITH(tg::data::DataLoader<float>(set, o), StartsWith("DataLoader: "));
    CHECK_THROWS_WITH(tg::data::Normalize::standardize(0, 0), StartsWith("Normalize::standardize: std must be"));
    CHECK_THROWS_WITH(tg::data::Normalize::standardize(kNan, 1), StartsWith("Normalize::standardize: mean must be"));
}
