// batch_norm, layer_norm, embedding and dropout2d: what the generic op tests cannot see.
// batch_norm's running statistics (updated in forward, as PyTorch does) are replayed step
// by step against PyTorch (tests/reference/batch_norm_running.json, written by
// tests/reference/make_batch_norm_reference.py); every error names the op and the values.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

using Catch::Equals;
using Catch::StartsWith;
using json = nlohmann::json;
using tg::Var;

namespace {

using tg_test::json_array;
using tg_test::worst_relative;

Var<double> p(std::vector<std::size_t> shape)
{
    xt::xarray<double> a = xt::zeros<double>(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = std::sin(static_cast<double>(i) + 0.5);
    return tg::parameter(a);
}
}  // namespace

TEST_CASE("batch_norm updates its running statistics as PyTorch does: three training steps, then eval",
          "[ops][batch_norm][reference]")
{
    std::ifstream in(TAPEGRAD_REFERENCE_DIR "/batch_norm_running.json");
    INFO("tests/reference/batch_norm_running.json is missing; run tests/reference/make_batch_norm_reference.py");
    REQUIRE(in);
    const json ref = json::parse(in);
    REQUIRE(ref.at("cases").size() == 2);
    for (const json& c : ref.at("cases")) {
        INFO("case " << c.at("name").get<std::string>());
        const double momentum = c.at("momentum").get<double>(), eps = c.at("eps").get<double>();
        const Var<double> weight = tg::parameter(json_array(c.at("weight")));
        const Var<double> bias = tg::parameter(json_array(c.at("bias")));
        xt::xarray<double> running_mean = json_array(c.at("running_mean"));
        xt::xarray<double> running_var = json_array(c.at("running_var"));
        std::size_t step = 0;
        for (const json& s : c.at("steps")) {
            INFO("step " << step++);
            const bool training = s.at("training").get<bool>();
            const Var<double> x = tg::parameter(json_array(s.at("input")));
            const Var<double> y = tg::batch_norm(x, &running_mean, &running_var, weight, bias, training, momentum, eps);
            CHECK(worst_relative(y.value(), json_array(s.at("output")), 1e-3) <= 1e-12);
            CHECK(worst_relative(running_mean, json_array(s.at("running_mean")), 1e-3) <= 1e-12);
            CHECK(worst_relative(running_var, json_array(s.at("running_var")), 1e-3) <= 1e-12);
            // The update belongs to forward: a backward leaves the statistics alone.
            const xt::xarray<double> mean_before = running_mean, var_before = running_var;
            tg::sum(y * y).backward();
            CHECK((running_mean == mean_before));
            CHECK((running_var == var_before));
        }
    }
}

TEST_CASE("batch_norm updates only the running statistics it is given, and every forward updates them",
          "[ops][batch_norm]")
{
    const Var<double> x = p({4, 2, 3});
    xt::xarray<double> running_mean = xt::zeros<double>({2});
    const Var<double> a = tg::batch_norm(x, &running_mean, nullptr, Var<double>(), Var<double>(), true, 0.5);
    const xt::xarray<double> batch_mean = xt::mean(x.value(), {0, 2});
    CHECK(xt::allclose(running_mean, 0.5 * batch_mean, 1e-14, 1e-15));
    const Var<double> b = tg::batch_norm(x, &running_mean, nullptr, Var<double>(), Var<double>(), true, 0.5);
    CHECK(xt::allclose(running_mean, 0.75 * batch_mean, 1e-14, 1e-15));
    CHECK((a.value() == b.value()));  // the output does not depend on the running statistics in training
    // Without recording (no input requires grad), forward updates them all the same.
    {
        tg::NoGradGuard no_grad;
        tg::batch_norm(x, &running_mean, nullptr, Var<double>(), Var<double>(), true, 0.5);
    }
    CHECK(xt::allclose(running_mean, 0.875 * batch_mean, 1e-14, 1e-15));
}

TEST_CASE("batch_norm reports bad shapes, missing statistics and bad settings", "[ops][batch_norm][errors]")
{
    const Var<double> x = p({2, 3, 4});
    const Var<double> none;
    xt::xarray<double> mean3 = xt::zeros<double>({3}), var3 = xt::ones<double>({3});
    xt::xarray<double> mean4 = xt::zeros<double>({4});
    CHECK_THROWS_WITH(tg::batch_norm(p({3}), nullptr, nullptr, none, none, true),
                      Equals("batch_norm: x must be [N, C] or [N, C, *], got [3]"));
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, p({4}), none, true),
                      Equals("batch_norm: weight must have shape [3] (the channels of x [2, 3, 4]), got [4]"));
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, none, p({3, 1}), true),
                      Equals("batch_norm: bias must have shape [3] (the channels of x [2, 3, 4]), got [3, 1]"));
    CHECK_THROWS_WITH(tg::batch_norm(x, &mean4, &var3, none, none, true),
                      Equals("batch_norm: running_mean must have shape [3] (the channels of x [2, 3, 4]), got [4]"));
    CHECK_THROWS_WITH(tg::batch_norm(x, &mean3, &mean4, none, none, false),
                      Equals("batch_norm: running_var must have shape [3] (the channels of x [2, 3, 4]), got [4]"));
    CHECK_THROWS_WITH(
        tg::batch_norm(x, nullptr, nullptr, none, none, false),
        Equals("batch_norm: running_mean and running_var are required in evaluation mode (training = false)"));
    CHECK_THROWS_WITH(tg::batch_norm(x, &mean3, nullptr, none, none, false),
                      StartsWith("batch_norm: running_mean and running_var are required in evaluation mode"));
    CHECK_THROWS_WITH(tg::batch_norm(p({1, 3}), nullptr, nullptr, none, none, true),
                      Equals("batch_norm: expected more than 1 value per channel when training, got x [1, 3]"));
    CHECK_THROWS_WITH(tg::batch_norm(p({1, 3, 1, 1}), &mean3, &var3, none, none, true),
                      Equals("batch_norm: expected more than 1 value per channel when training, got x [1, 3, 1, 1]"));
    CHECK_NOTHROW(tg::batch_norm(p({1, 3}), &mean3, &var3, none, none, false));  // eval takes a batch of one
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, none, none, true, 1.5),
                      Equals("batch_norm: momentum must be in [0, 1], got 1.5"));
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, none, none, true, -0.1),
                      Equals("batch_norm: momentum must be in [0, 1], got -0.1"));
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, none, none, true, std::nan("")),
                      Equals("batch_norm: momentum must be in [0, 1], got nan"));
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, none, none, true, 0.1, -1e-5),
                      Equals("batch_norm: eps must be finite and >= 0, got -1e-05"));
    CHECK_THROWS_WITH(tg::batch_norm(x, nullptr, nullptr, none, none, true, 0.1, HUGE_VAL),
                      Equals("batch_norm: eps must be finite and >= 0, got inf"));
    CHECK_THROWS_WITH(tg::batch_norm(none, nullptr, nullptr, none, none, true), StartsWith("batch_norm: "));
    // Checked at entry: a refused call leaves the running statistics alone.
    CHECK((mean3 == xt::xarray<double>(xt::zeros<double>({3}))));
    CHECK((var3 == xt::xarray<double>(xt::ones<double>({3}))));
}

TEST_CASE("layer_norm reports a normalized_shape that does not fit x and bad parameters", "[ops][layer_norm][errors]")
{
    const Var<double> x = p({2, 3});
    const Var<double> none;
    CHECK_THROWS_WITH(tg::layer_norm(x, {}, none, none),
                      Equals("layer_norm: normalized_shape must have at least one dimension, got []"));
    CHECK_THROWS_WITH(tg::layer_norm(x, {4}, none, none),
                      Equals("layer_norm: normalized_shape [4] does not match the trailing dims of x [2, 3]"));
    CHECK_THROWS_WITH(tg::layer_norm(x, {2}, none, none),
                      Equals("layer_norm: normalized_shape [2] does not match the trailing dims of x [2, 3]"));
    CHECK_THROWS_WITH(tg::layer_norm(x, {1, 2, 3}, none, none),
                      Equals("layer_norm: normalized_shape [1, 2, 3] does not match the trailing dims of x [2, 3]"));
    CHECK_THROWS_WITH(tg::layer_norm(x, {3}, p({4}), none),
                      Equals("layer_norm: weight must have shape [3] (normalized_shape), got [4]"));
    CHECK_THROWS_WITH(tg::layer_norm(x, {2, 3}, none, p({3})),
                      Equals("layer_norm: bias must have shape [2, 3] (normalized_shape), got [3]"));
    CHECK_THROWS_WITH(tg::layer_norm(x, {3}, none, none, -0.5),
                      Equals("layer_norm: eps must be finite and >= 0, got -0.5"));
    CHECK_NOTHROW(tg::layer_norm(x, {2, 3}, p({2, 3}), p({2, 3})));
}

TEST_CASE("embedding reports a table that is not 2-D and indices out of range", "[ops][embedding][errors]")
{
    using I = xt::xarray<std::int64_t>;
    CHECK_THROWS_WITH(tg::embedding(I{0}, p({4})), Equals("embedding: weight must be 2-D [num, dim], got [4]"));
    CHECK_THROWS_WITH(
        tg::embedding(I{1, 4}, p({4, 2})),
        Equals("embedding: index 4 at flat position 1 is out of range for a table of 4 rows (weight [4, 2])"));
    CHECK_THROWS_WITH(
        tg::embedding(I{{0, 1}, {-1, 2}}, p({4, 2})),
        Equals("embedding: index -1 at flat position 2 is out of range for a table of 4 rows (weight [4, 2])"));
    CHECK_THROWS_WITH(tg::embedding(I(0), p({0, 2})), StartsWith("embedding: index 0 at flat position 0"));
}

TEST_CASE("embedding adds the gradients of repeated indices into one row", "[ops][embedding]")
{
    const Var<double> w = p({3, 2});
    const Var<double> y = tg::embedding(xt::xarray<std::int64_t>{{0, 2}, {0, 0}}, w);
    REQUIRE((y.shape() == Var<double>::shape_type{2, 2, 2}));
    CHECK(y.value()(1, 1, 0) == w.value()(0, 0));
    y.backward(xt::xarray<double>{{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}});
    CHECK((w.grad() == xt::xarray<double>{{13, 16}, {0, 0}, {3, 4}}));
}

TEST_CASE("dropout2d reports inputs of the wrong rank and p out of range", "[ops][dropout2d][errors]")
{
    tg::Generator gen(3);
    CHECK_THROWS_WITH(tg::dropout2d(p({2, 3}), 0.5, gen),
                      Equals("dropout2d: x must be 3-D [N, C, L] or 4-D [N, C, H, W], got [2, 3]"));
    CHECK_THROWS_WITH(tg::dropout2d(p({1, 2, 3, 4, 5}), 0.5, gen),
                      Equals("dropout2d: x must be 3-D [N, C, L] or 4-D [N, C, H, W], got [1, 2, 3, 4, 5]"));
    CHECK_THROWS_WITH(tg::dropout2d(p({2, 3, 4}), 1.0, gen), Equals("dropout2d: p must be in [0, 1), got 1"));
    CHECK_THROWS_WITH(tg::dropout2d(p({2, 3, 4}), -0.25, gen), Equals("dropout2d: p must be in [0, 1), got -0.25"));
}

TEST_CASE("dropout2d keeps or zeroes whole channels, the same ones for float and double", "[ops][dropout2d]")
{
    const xt::xarray<double> ones = xt::ones<double>({8, 16, 3, 3});
    tg::Generator g64(11), g32(11);
    const Var<double> x = tg::parameter(ones);
    const Var<double> y = tg::dropout2d(x, 0.5, g64);
    const Var<float> y32 = tg::dropout2d(tg::constant(xt::xarray<float>(xt::ones<float>({8, 16, 3, 3}))), 0.5f, g32);
    std::size_t dropped = 0;
    for (std::size_t n = 0; n < 8; ++n) {
        for (std::size_t c = 0; c < 16; ++c) {
            const xt::xarray<double> channel = xt::view(y.value(), n, c);
            const double v = channel(0, 0);
            CHECK((v == 0.0 || v == 2.0));
            CHECK(xt::all(xt::equal(channel, v)));
            CHECK(static_cast<double>(y32.value()(n, c, 1, 2)) == v);
            dropped += v == 0.0 ? 1 : 0;
        }
    }
    CHECK(dropped > 40);  // about 64 of 128
    CHECK(dropped < 88);
    tg::sum(y).backward();
    const xt::xarray<double> first = y.value();
    CHECK((x.grad() == first));                                  // grad = mask
    CHECK_FALSE((tg::dropout2d(x, 0.5, g64).value() == first));  // the generator moved on
}
