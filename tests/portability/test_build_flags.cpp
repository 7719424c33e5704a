// What the build's own flags must not break: constants built in one translation unit and
// passed by value into another. GCC 12.2 with AVX-512, or with AVX2 and Intel's recent
// tunings (so -march=native on those CPUs), stores some 32-byte constants as a broadcast of
// their first element (GCC PR target/108599): nn::Conv2d(1, 10, 5, {}) then got padding
// {1, 1} and the LeNet sample a wrong shape. These tests are compiled with the flags of
// tapegrad's own targets, so a build whose flags miscompile fails here, in the unit tests,
// and not only in a sample whose shape check happens to catch it.

#include <array>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "probe.hpp"  // cmake/codegen_check: the configure-time probe, compiled here as well
#include "tapegrad/tapegrad.hpp"

namespace nn = tg::nn;
using tg::Var;

namespace {

std::vector<std::size_t> shape_of(const Var<float>& v)
{
    return std::vector<std::size_t>(v.shape().begin(), v.shape().end());
}

Var<float> zeros(std::vector<std::size_t> shape)
{
    return tg::constant(xt::xarray<float>(xt::zeros<float>(shape)));
}

using Pair = std::array<std::size_t, 2>;

}  // namespace

TEST_CASE("constant aggregates passed by value arrive intact with the build's flags", "[build]")
{
    using namespace tapegrad_probe;
    CHECK(check_defaults({}) == 0);
    CHECK(check_padding(0, {}) == 0);
    CHECK(check_padding(2, {{1, 1}, {2, 2}, {1, 1}, 1, true}) == 0);
    CHECK(check_quad(16, 0, 0, 0, {16, 0, 0, 0}) == 0);
    CHECK(check_quad(16, 16, 0, 0, {16, 16, 0, 0}) == 0);
    CHECK(check_quad(7, 7, 7, 9, {7, 7, 7, 9}) == 0);
    CHECK(check_list({1.0, 1.0, 1.0, 0.0}, 1.0, 1.0, 1.0, 0.0) == 0);
    CHECK(check_list({-1.0, 2.0, 2.0, 2.0}, -1.0, 2.0, 2.0, 2.0) == 0);
}

TEST_CASE("layers built with {} options read back PyTorch's defaults", "[build][nn]")
{
    tg::Generator gen(3);
    const nn::Conv1d<float> c1(2, 3, 3, {}, gen);
    CHECK(c1.options().stride == 1);
    CHECK(c1.options().padding == 0);
    CHECK(c1.options().dilation == 1);
    CHECK(c1.options().groups == 1);
    CHECK(c1.options().bias);

    const nn::Conv2d<float> c2(1, 10, 5, {}, gen);
    CHECK(c2.options().stride == Pair{1, 1});
    CHECK(c2.options().padding == Pair{0, 0});
    CHECK(c2.options().dilation == Pair{1, 1});
    CHECK(c2.options().groups == 1);
    CHECK(c2.options().bias);
    CHECK(shape_of(c2.weight()) == std::vector<std::size_t>{10, 1, 5, 5});

    const nn::Conv2d<float> c2r(1, 10, Pair{5, 3}, {}, gen);
    CHECK(c2r.options().padding == Pair{0, 0});
    CHECK(c2r.options().stride == Pair{1, 1});

    const nn::ConvTranspose2d<float> t2(4, 2, 3, {}, gen);
    CHECK(t2.options().stride == Pair{1, 1});
    CHECK(t2.options().padding == Pair{0, 0});
    CHECK(t2.options().output_padding == Pair{0, 0});
    CHECK(t2.options().dilation == Pair{1, 1});
    CHECK(t2.options().groups == 1);
    CHECK(t2.options().bias);

    // One option given, the rest defaulted, as designated initialisers would.
    nn::Conv2dOptions strided;
    strided.stride = {2, 2};
    const nn::Conv2d<float> c2s(1, 4, 3, strided, gen);
    CHECK(c2s.options().stride == Pair{2, 2});
    CHECK(c2s.options().padding == Pair{0, 0});
    CHECK(c2s.options().dilation == Pair{1, 1});
}

TEST_CASE("layers with default arguments give PyTorch's output shapes", "[build][nn]")
{
    tg::Generator gen(4);
    const Var<float> x = zeros({2, 3, 9, 9});
    CHECK(shape_of(nn::Conv2d<float>(3, 5, 3, {}, gen)(x)) == std::vector<std::size_t>{2, 5, 7, 7});
    CHECK(shape_of(nn::ConvTranspose2d<float>(3, 5, 3, {}, gen)(x)) == std::vector<std::size_t>{2, 5, 11, 11});
    CHECK(shape_of(nn::MaxPool2d<float>(2)(x)) == std::vector<std::size_t>{2, 3, 4, 4});
    CHECK(shape_of(nn::AvgPool2d<float>(3)(x)) == std::vector<std::size_t>{2, 3, 3, 3});
    CHECK(shape_of(nn::MaxPool2d<float>(Pair{3, 2})(x)) == std::vector<std::size_t>{2, 3, 3, 4});
    CHECK(shape_of(nn::Conv1d<float>(3, 4, 4, {}, gen)(zeros({2, 3, 10}))) == std::vector<std::size_t>{2, 4, 7});
    CHECK(shape_of(nn::MaxPool1d<float>(3)(zeros({2, 3, 10}))) == std::vector<std::size_t>{2, 3, 3});
    CHECK(shape_of(nn::BatchNorm2d<float>(3)(x)) == std::vector<std::size_t>{2, 3, 9, 9});
}

TEST_CASE("the LeNet sample's layers give its shapes", "[build][nn]")
{
    // As samples/lenet.cpp builds them: x [N, 1, 28, 28] -> 24 -> 12 -> 8 -> 4, 320 features.
    tg::Generator gen(1);
    nn::Conv2d<float> conv1(1, 10, 5, {}, gen), conv2(10, 20, 5, {}, gen);
    nn::Linear<float> fc1(320, 50, true, gen);
    Var<float> h = conv1(zeros({3, 1, 28, 28}));
    CHECK(shape_of(h) == std::vector<std::size_t>{3, 10, 24, 24});
    h = tg::max_pool2d(h, {2, 2});
    CHECK(shape_of(h) == std::vector<std::size_t>{3, 10, 12, 12});
    h = conv2(h);
    CHECK(shape_of(h) == std::vector<std::size_t>{3, 20, 8, 8});
    h = tg::max_pool2d(h, {2, 2});
    REQUIRE(shape_of(h) == std::vector<std::size_t>{3, 20, 4, 4});
    CHECK(shape_of(fc1(tg::reshape(h, {3, 320}))) == std::vector<std::size_t>{3, 50});
}

TEST_CASE("the DCGAN sample's generator and discriminator give its shapes", "[build][nn]")
{
    // As samples/dcgan.cpp builds them (width divisor 8): noise [N, nz, 1, 1] -> 4 -> 7 -> 14
    // -> 28, and an image [N, 1, 28, 28] -> 14 -> 7 -> 3 -> one logit.
    tg::Generator gen(1);
    const std::size_t nz = 32, g1 = 32, g2 = 16, g3 = 8;
    const nn::ConvTranspose2dOptions up{{2, 2}, {1, 1}, {0, 0}, 1, false};
    nn::ConvTranspose2d<float> t1(nz, g1, 4, {{1, 1}, {0, 0}, {0, 0}, 1, false}, gen), t2(g1, g2, 3, up, gen),
        t3(g2, g3, 4, up, gen), t4(g3, 1, 4, up, gen);
    Var<float> z = t1(zeros({2, nz, 1, 1}));
    CHECK(shape_of(z) == std::vector<std::size_t>{2, g1, 4, 4});
    z = t2(z);
    CHECK(shape_of(z) == std::vector<std::size_t>{2, g2, 7, 7});
    z = t3(z);
    CHECK(shape_of(z) == std::vector<std::size_t>{2, g3, 14, 14});
    CHECK(shape_of(t4(z)) == std::vector<std::size_t>{2, 1, 28, 28});

    const nn::Conv2dOptions down{{2, 2}, {1, 1}, {1, 1}, 1, false};
    nn::Conv2d<float> d1(1, g3, 4, down, gen), d2(g3, g2, 4, down, gen), d3(g2, g1, 4, down, gen),
        d4(g1, 1, 3, {{1, 1}, {0, 0}, {1, 1}, 1, false}, gen);
    CHECK(d4.options().padding == Pair{0, 0});
    CHECK(d4.options().dilation == Pair{1, 1});
    Var<float> x = d1(zeros({2, 1, 28, 28}));
    CHECK(shape_of(x) == std::vector<std::size_t>{2, g3, 14, 14});
    x = d2(x);
    CHECK(shape_of(x) == std::vector<std::size_t>{2, g2, 7, 7});
    x = d3(x);
    CHECK(shape_of(x) == std::vector<std::size_t>{2, g1, 3, 3});
    CHECK(shape_of(d4(x)) == std::vector<std::size_t>{2, 1, 1, 1});
}
