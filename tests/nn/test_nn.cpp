// Layers: Dense, activations, Sequential, initialisers, summary, Dropout.

#include <malloc.h>

#include <numeric>

#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

using tg::Var;
namespace nn = tg::nn;

namespace {
xt::xarray<double> one_by_one(double v)
{
    return xt::xarray<double>(xt::xarray<double>::shape_type{1, 1}, v);
}
}  // namespace

TEST_CASE("Dense computes x @ W + b with W [in, out] and b [out]", "[nn][dense]")
{
    nn::Dense<double> d(2, 3);
    CHECK(d.weight().shape() == std::vector<std::size_t>{2, 3});
    CHECK(d.bias().shape() == std::vector<std::size_t>{3});
    d.weight().set_value(xt::xarray<double>{{1, 2, 3}, {4, 5, 6}});
    d.bias().set_value(xt::xarray<double>{0.5, 0.5, 0.5});
    Var<double> y = d(tg::constant(xt::xarray<double>{{1, 1}, {2, 0}}));
    CHECK(y.value() == xt::xarray<double>{{5.5, 7.5, 9.5}, {2.5, 4.5, 6.5}});
    CHECK((d.forward(tg::constant(xt::xarray<double>{{1, 1}})).value() == xt::xarray<double>{{5.5, 7.5, 9.5}}));
}

TEST_CASE("Dense with an activation applies it after the affine map", "[nn][dense]")
{
    nn::Dense<double> d(1, 1, nn::Activation::sigmoid);
    d.weight().set_value(one_by_one(2.0));
    d.bias().set_value(xt::xarray<double>{-1.0});
    CHECK(d(tg::constant(one_by_one(1.5))).item() == Approx(1.0 / (1.0 + std::exp(-2.0))));
    nn::Dense<double> r(1, 1, nn::Activation::relu, nn::init::constant(-1.0), nn::init::zeros());
    CHECK(r(tg::constant(one_by_one(3.0))).item() == 0.0);
}

TEST_CASE("Dense gradients flow to its weight and bias", "[nn][dense]")
{
    nn::Dense<double> d(3, 2, nn::Activation::tanh);
    Var<double> x = tg::constant(xt::xarray<double>{{0.1, -0.2, 0.3}});
    tg::sum(d(x)).backward();
    REQUIRE(d.weight().has_grad());
    REQUIRE(d.bias().has_grad());
    CHECK(d.weight().grad().shape() == d.weight().shape());
}

TEST_CASE("Dense reports an input of the wrong width", "[nn][dense][errors]")
{
    nn::Dense<double> d(2, 3);
    CHECK_THROWS_WITH(d(tg::constant(xt::xarray<double>{{1, 2, 3}})),
                      Catch::Equals("Dense(2 -> 3): expected input [batch, 2], got [1, 3]"));
    CHECK_THROWS_WITH(d(tg::constant(xt::xarray<double>{1, 2})), Catch::StartsWith("Dense(2 -> 3): expected input"));
    CHECK_THROWS_WITH(nn::Dense<double>(0, 3), Catch::StartsWith("Dense: in and out features must be positive"));
}

TEST_CASE("Sequential chains modules and names parameters by position", "[nn][sequential]")
{
    nn::Sequential<float> model{nn::Dense<float>(2, 3), nn::Sigmoid<float>(), nn::Dense<float>(3, 2)};
    model.add(nn::Tanh<float>());
    CHECK(model.size() == 4);
    const auto named = model.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "0.weight");
    CHECK(named[1].first == "0.bias");
    CHECK(named[2].first == "2.weight");
    CHECK(named[3].first == "2.bias");
    CHECK(model.parameters().size() == 4);
    CHECK(model.num_parameters() == 17);
    Var<float> y = model(tg::constant(xt::xarray<float>{{1, 2}, {3, 4}, {5, 6}}));
    CHECK(y.shape() == std::vector<std::size_t>{3, 2});
    // Layers are reachable and share their parameters with the model.
    auto& first = model.at<nn::Dense<float>>(0);
    first.bias().set_value(xt::xarray<float>{1, 1, 1});
    CHECK(model.parameters()[1].value() == xt::xarray<float>{1, 1, 1});
    CHECK_THROWS_WITH(model.at<nn::Dense<float>>(1), Catch::Contains("module 1 is a Sigmoid"));
    CHECK_THROWS_WITH(model[7], Catch::Contains("index 7 is out of range for 4 modules"));
}

TEST_CASE("summary prints a Keras-style table with 9, 8 and 17 parameters for the tutorial model", "[nn][summary]")
{
    nn::Sequential<float> model{nn::Dense<float>(2, 3, nn::Activation::sigmoid), nn::Dense<float>(3, 2)};
    const std::string s = model.summary();
    INFO(s);
    CHECK_THAT(s, Catch::Contains("Layer (type)") && Catch::Contains("Output Shape") && Catch::Contains("Param #"));
    CHECK_THAT(s, Catch::Contains("0 (Dense, sigmoid)") && Catch::Contains("(None, 3)"));
    CHECK_THAT(s, Catch::Contains("1 (Dense)") && Catch::Contains("(None, 2)"));
    CHECK_THAT(s, Catch::Contains("Total params: 17 (68 bytes)"));
    // The parameter counts sit in their rows.
    CHECK(s.find("(None, 3)                 9") != std::string::npos);
    CHECK(s.find("(None, 2)                 8") != std::string::npos);
}

TEST_CASE("initialisers draw from the documented distributions", "[nn][init]")
{
    tg::Generator gen(99);
    const std::size_t fi = 200, fo = 300;
    auto stats = [&](const nn::init::Initializer& init) {
        const xt::xarray<double> w = init.make<double>({fi, fo}, fi, fo, gen);
        const double mean = xt::mean(w)();
        const double sd = std::sqrt(xt::mean(xt::square(w - mean))());
        return std::make_tuple(mean, sd, xt::amin(w)(), xt::amax(w)());
    };
    auto [m1, s1, lo1, hi1] = stats(nn::init::glorot_uniform());
    const double l = std::sqrt(6.0 / (fi + fo));
    CHECK(std::abs(m1) < 0.01);
    CHECK(s1 == Approx(l / std::sqrt(3.0)).epsilon(0.02));
    CHECK(lo1 >= -l);
    CHECK(hi1 < l);
    auto [m2, s2, lo2, hi2] = stats(nn::init::he_normal());
    CHECK(s2 == Approx(std::sqrt(2.0 / fi)).epsilon(0.02));
    (void)m2, (void)lo2, (void)hi2;
    auto [m3, s3, lo3, hi3] = stats(nn::init::uniform());
    CHECK(m3 == Approx(0.5).epsilon(0.02));
    CHECK(lo3 >= 0.0);
    CHECK(hi3 < 1.0);
    (void)s3;
    auto [m4, s4, lo4, hi4] = stats(nn::init::glorot_normal());
    CHECK(s4 == Approx(std::sqrt(2.0 / (fi + fo))).epsilon(0.02));
    (void)m4, (void)lo4, (void)hi4;
    auto [m5, s5, lo5, hi5] = stats(nn::init::he_uniform());
    CHECK(hi5 < std::sqrt(6.0 / fi));
    CHECK(s5 == Approx(std::sqrt(6.0 / fi) / std::sqrt(3.0)).epsilon(0.02));
    (void)m5, (void)lo5;
    auto [m6, s6, lo6, hi6] = stats(nn::init::normal(1.0, 0.5));
    CHECK(m6 == Approx(1.0).epsilon(0.01));
    CHECK(s6 == Approx(0.5).epsilon(0.02));
    (void)lo6, (void)hi6;
    const xt::xarray<double> c = nn::init::constant(0.25).make<double>({3}, 1, 1, gen);
    CHECK(c == xt::xarray<double>{0.25, 0.25, 0.25});
    CHECK_THROWS_WITH(nn::init::uniform(1.0, 1.0), Catch::StartsWith("init::uniform: needs a < b"));
    CHECK_THROWS_WITH(nn::init::normal(0.0, 0.0), Catch::StartsWith("init::normal: stddev must be positive"));
}

TEST_CASE("initialisation is reproducible from tg::manual_seed", "[nn][init]")
{
    tg::manual_seed(3);
    nn::Dense<float> a(4, 5);
    tg::manual_seed(3);
    nn::Dense<float> b(4, 5);
    nn::Dense<float> c(4, 5);
    CHECK(a.weight().value() == b.weight().value());
    CHECK_FALSE(a.weight().value() == c.weight().value());
    CHECK(xt::all(xt::equal(a.bias().value(), 0.0f)));  // default bias init: zeros
}

TEST_CASE("Dropout drops and rescales in training and is the identity in eval", "[nn][dropout]")
{
    nn::Dropout<double> drop(0.25, 7);
    Var<double> x = tg::parameter(xt::xarray<double>(xt::ones<double>({1000})));
    Var<double> y = drop(x);
    const auto& v = y.value();
    const auto zeros = std::count(v.begin(), v.end(), 0.0);
    CHECK(zeros > 200);
    CHECK(zeros < 300);
    CHECK(std::all_of(v.begin(), v.end(), [](double e) { return e == 0.0 || e == Approx(1.0 / 0.75); }));
    tg::sum(y).backward();
    CHECK(x.grad() == v);  // grad = mask
    drop.eval();
    CHECK_FALSE(drop.is_training());
    CHECK((drop(x).value() == x.value()));
    CHECK_THROWS_WITH(nn::Dropout<double>(1.0), Catch::StartsWith("Dropout: p must be in [0, 1)"));
}

TEST_CASE("Dropout masks repeat for the same seed and Sequential propagates eval", "[nn][dropout]")
{
    nn::Sequential<float> a{nn::Dense<float>(3, 3), nn::Dropout<float>(0.5, 11)};
    nn::Dropout<float> d1(0.5, 11), d2(0.5, 11);
    Var<float> x = tg::constant(xt::xarray<float>(xt::ones<float>({4, 3})));
    CHECK((d1(x).value() == d2(x).value()));
    a.eval();
    CHECK_FALSE(a[1].is_training());
    a.train();
    CHECK(a[1].is_training());
}
