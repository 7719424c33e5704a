// Convolutions and the layers of convolutional networks: the errors a user can trigger,
// the modules' parameter names, initialisation and buffers, train/eval, saving and loading
// buffers, and a PyTorch state_dict loaded into the same architecture giving PyTorch's
// outputs (tests/reference/make_cnn_state_dict.py wrote it).

#include <malloc.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;
using tg::Var;
namespace nn = tg::nn;
namespace fs = std::filesystem;

namespace {

using tg_test::json_array;
using tg_test::TempDir;
using tg_test::worst_relative;

Var<double> p(std::vector<std::size_t> shape)
{
    return tg::parameter(xt::xarray<double>(xt::ones<double>(shape)));
}

const Var<double> none;

// The architecture of tests/reference/make_cnn_state_dict.py, index for index.
nn::Sequential<double> reference_cnn()
{
    tg::Generator gen(7);
    return nn::Sequential<double>{nn::Conv2d<double>(2, 4, 3, {{1, 1}, {1, 1}, {1, 1}, 1, true}, gen),
                                  nn::BatchNorm2d<double>(4),
                                  nn::ReLU<double>(),
                                  nn::MaxPool2d<double>(2),
                                  nn::Conv2d<double>(4, 6, 3, {{1, 1}, {1, 1}, {1, 1}, 2, false}, gen),
                                  nn::BatchNorm2d<double>(6),
                                  nn::LeakyReLU<double>(0.1),
                                  nn::AvgPool2d<double>(2),
                                  nn::Flatten<double>(),
                                  nn::Linear<double>(24, 5, true, gen)};
}

}  // namespace

TEST_CASE("conv2d names the channels and the weight when they disagree", "[conv][errors]")
{
    CHECK_THROWS_WITH(tg::conv2d(p({2, 3, 8, 8}), p({10, 1, 5, 5}), none),
                      Equals("conv2d: input has 3 channels, weight expects 1 (weight [10, 1, 5, 5])"));
    CHECK_THROWS_WITH(tg::conv2d(p({2, 4, 8, 8}), p({6, 1, 3, 3}), none, {1, 1}, {0, 0}, {1, 1}, 2),
                      Equals("conv2d: input has 4 channels, weight expects 2 (weight [6, 1, 3, 3], groups 2)"));
    CHECK_THROWS_WITH(tg::conv2d(p({2, 4, 8, 8}), p({5, 2, 3, 3}), none, {1, 1}, {0, 0}, {1, 1}, 2),
                      Equals("conv2d: groups (2) must divide the input channels (4) and the output channels (5) "
                             "(weight [5, 2, 3, 3])"));
    CHECK_THROWS_WITH(tg::conv2d(p({2, 3, 8, 8}), p({4, 1, 3, 3}), none, {1, 1}, {0, 0}, {1, 1}, 2),
                      StartsWith("conv2d: groups (2) must divide the input channels (3)"));
    CHECK_THROWS_WITH(tg::conv2d(p({2, 3, 8, 8}), p({4, 3, 3, 3}), none, {1, 1}, {0, 0}, {1, 1}, 0),
                      Equals("conv2d: groups must be at least 1, got 0"));
}

TEST_CASE("conv2d refuses a kernel larger than the padded input, stride or dilation 0, bad ranks and bias",
          "[conv][errors]")
{
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 5, 5}), none),
                      Equals("conv2d: kernel [5, 5] (dilation [1, 1]) is larger than the padded input [4, 4] "
                             "(x [1, 1, 4, 4], padding [0, 0])"));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 3, 3}), none, {1, 1}, {0, 0}, {2, 2}),
                      StartsWith("conv2d: kernel [3, 3] (dilation [2, 2]) is larger than the padded input [4, 4]"));
    CHECK_NOTHROW(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 5, 5}), none, {1, 1}, {1, 1}));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 3, 3}), none, {0, 1}),
                      Equals("conv2d: stride must be at least 1, got [0, 1]"));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 3, 3}), none, {1, 1}, {0, 0}, {1, 0}),
                      Equals("conv2d: dilation must be at least 1, got [1, 0]"));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 4, 4}), p({2, 1, 3, 3}), none),
                      Equals("conv2d: expected x [N, C, H, W], got [1, 4, 4]"));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 3}), none),
                      Equals("conv2d: expected weight [O, C/groups, KH, KW], got [2, 1, 3]"));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), p({2, 1, 3, 3}), p({3})),
                      Equals("conv2d: bias must have shape [2] to match weight [2, 1, 3, 3], got [3]"));
    CHECK_THROWS_WITH(tg::conv2d(p({1, 1, 4, 4}), Var<double>(), none), Contains("conv2d"));
}

TEST_CASE("conv1d and conv_transpose2d check their arguments the same way", "[conv][errors]")
{
    CHECK_THROWS_WITH(tg::conv1d(p({2, 3, 8}), p({4, 2, 3}), none),
                      Equals("conv1d: input has 3 channels, weight expects 2 (weight [4, 2, 3])"));
    CHECK_THROWS_WITH(
        tg::conv1d(p({2, 3, 2}), p({4, 3, 3}), none),
        Equals("conv1d: kernel 3 (dilation 1) is larger than the padded input 2 (x [2, 3, 2], padding 0)"));
    CHECK_THROWS_WITH(tg::conv1d(p({2, 3, 8}), p({4, 3, 3}), none, 0),
                      Equals("conv1d: stride must be at least 1, got 0"));
    CHECK_THROWS_WITH(tg::conv1d(p({2, 3, 8, 8}), p({4, 3, 3}), none),
                      Equals("conv1d: expected x [N, C, L], got [2, 3, 8, 8]"));
    CHECK_THROWS_WITH(tg::conv_transpose2d(p({1, 3, 4, 4}), p({2, 5, 3, 3}), none),
                      Equals("conv_transpose2d: input has 3 channels, weight expects 2 (weight [2, 5, 3, 3])"));
    CHECK_THROWS_WITH(tg::conv_transpose2d(p({1, 2, 4, 4}), p({2, 5, 3, 3}), none, {2, 2}, {0, 0}, {2, 0}),
                      Equals("conv_transpose2d: output_padding [2, 0] must be smaller than the stride [2, 2] or the "
                             "dilation [1, 1]"));
    CHECK_THROWS_WITH(tg::conv_transpose2d(p({1, 3, 4, 4}), p({3, 1, 3, 3}), none, {1, 1}, {0, 0}, {0, 0}, 2),
                      Equals("conv_transpose2d: groups (2) must divide the input channels (3)"));
    CHECK_THROWS_WITH(tg::conv_transpose2d(p({1, 2, 1, 1}), p({2, 1, 1, 1}), none, {1, 1}, {1, 1}),
                      StartsWith("conv_transpose2d: the output would be empty"));
    CHECK_THROWS_WITH(
        tg::conv_transpose2d(p({1, 2, 4, 4}), p({2, 3, 3, 3}), p({2})),
        Equals("conv_transpose2d: bias must have shape [3] to match weight [2, 3, 3, 3] and groups 1, got [2]"));
}

TEST_CASE("zero-size batches and channels flow through convolutions", "[conv][empty]")
{
    Var<double> x = p({0, 3, 5, 5});
    Var<double> w = p({4, 3, 3, 3});
    Var<double> b = p({4});
    Var<double> y = tg::conv2d(x, w, b, {1, 1}, {1, 1});
    CHECK(y.shape() == std::vector<std::size_t>{0, 4, 5, 5});
    tg::sum(y).backward();
    CHECK(w.grad() == xt::zeros<double>({4, 3, 3, 3}));
    CHECK(b.grad() == xt::zeros<double>({4}));
    // No input channels: the output is the bias.
    Var<double> y2 = tg::conv2d(p({2, 0, 4, 4}), p({3, 0, 3, 3}), p({3}));
    CHECK(y2.shape() == std::vector<std::size_t>{2, 3, 2, 2});
    CHECK(xt::all(xt::equal(y2.value(), 1.0)));
}

TEST_CASE("float convolutions agree with double ones on the main job's shapes", "[conv][float32]")
{
    // Float runs through oneDNN when the build has it, double through im2col + gemm.
    std::mt19937_64 rng(91);
    const xt::xarray<double> xd = tg::sample_uniform(rng, {3, 8, 14, 14}, -1, 1);
    const xt::xarray<double> wd = tg::sample_uniform(rng, {16, 8, 3, 3}, -1, 1);
    const xt::xarray<double> gd = tg::sample_uniform(rng, {3, 16, 7, 7}, -1, 1);
    auto run = [&](auto zero) {
        using T = decltype(zero);
        Var<T> x = tg::parameter(xt::xarray<T>(xt::cast<T>(xd)));
        Var<T> w = tg::parameter(xt::xarray<T>(xt::cast<T>(wd)));
        Var<T> y = tg::conv2d(x, w, Var<T>(), {2, 2}, {1, 1});
        y.backward(xt::xarray<T>(xt::cast<T>(gd)));
        return std::vector<xt::xarray<double>>{xt::cast<double>(y.value()), xt::cast<double>(x.grad()),
                                               xt::cast<double>(w.grad())};
    };
    const auto d = run(0.0);
    const auto f = run(0.0f);
    for (std::size_t i = 0; i < d.size(); ++i) {
        INFO("result " << i);
        CHECK(xt::allclose(f[i], d[i], 1e-4, 1e-4));
    }
}

TEST_CASE("convolution layers have PyTorch's parameter names, shapes and initial ranges", "[conv][nn]")
{
    tg::Generator gen(3);
    nn::Conv2d<float> c(4, 8, {3, 5}, {{1, 1}, {1, 2}, {1, 1}, 2, true}, gen);
    auto params = c.named_parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].first == "weight");
    CHECK(params[0].second.shape() == std::vector<std::size_t>{8, 2, 3, 5});
    CHECK(params[1].first == "bias");
    const double bound = 1.0 / std::sqrt(2.0 * 3 * 5);
    CHECK(xt::amax(xt::abs(params[0].second.value()))() <= bound);
    CHECK(xt::amax(xt::abs(params[0].second.value()))() > 0.8 * bound);
    CHECK(c(tg::constant(xt::xarray<float>(xt::ones<float>({2, 4, 6, 6})))).shape() ==
          std::vector<std::size_t>{2, 8, 6, 6});

    nn::Conv2d<float> no_bias(1, 2, 3, {{1, 1}, {0, 0}, {1, 1}, 1, false}, gen);
    CHECK(no_bias.named_parameters().size() == 1);
    nn::ConvTranspose2d<float> t(4, 6, 3, {{2, 2}, {1, 1}, {1, 1}, 2, true}, gen);
    CHECK(t.weight().shape() == std::vector<std::size_t>{4, 3, 3, 3});
    CHECK(t(tg::constant(xt::xarray<float>(xt::ones<float>({1, 4, 5, 5})))).shape() ==
          std::vector<std::size_t>{1, 6, 10, 10});
    nn::Conv1d<float> c1(3, 5, 4, {2, 1, 1, 1, true}, gen);
    CHECK(c1.weight().shape() == std::vector<std::size_t>{5, 3, 4});
    nn::Linear<float> lin(6, 3, true, gen);
    CHECK(lin.weight().shape() == std::vector<std::size_t>{3, 6});
    CHECK_THROWS_WITH(nn::Conv2d<float>(3, 4, 3, {{1, 1}, {0, 0}, {1, 1}, 2, true}),
                      Equals("Conv2d: groups (2) must divide the in (3) and out (4) channels"));
    CHECK_THROWS_WITH(nn::MaxPool2d<float>(0), StartsWith("MaxPool2d: kernel size must be positive"));
}

TEST_CASE("BatchNorm keeps running statistics as buffers, switched by train() and eval()", "[conv][nn][buffers]")
{
    nn::Sequential<double> m{nn::Conv2d<double>(1, 2, 1), nn::BatchNorm2d<double>(2)};
    auto& bn = m.at<nn::BatchNorm2d<double>>(1);
    auto buffers = m.named_buffers();
    REQUIRE(buffers.size() == 3);
    CHECK(buffers[0].first == "1.running_mean");
    CHECK(buffers[1].first == "1.running_var");
    CHECK(buffers[2].first == "1.num_batches_tracked");
    CHECK(m.named_parameters().size() == 4);  // the buffers are not parameters: optimisers never see them

    std::mt19937_64 rng(5);
    Var<double> x = tg::constant(tg::sample_uniform(rng, {4, 1, 3, 3}, 0, 2));
    m(x);
    m(x);
    CHECK(bn.num_batches_tracked() == 2);
    CHECK(xt::all(xt::not_equal(bn.running_mean(), 0.0)));
    const xt::xarray<double> mean = bn.running_mean();
    m.eval();
    Var<double> y = m(x);  // normalised with the running statistics: not zero-mean per channel
    CHECK(bn.num_batches_tracked() == 2);
    CHECK(bn.running_mean() == mean);
    CHECK(std::abs(xt::mean(xt::view(y.value(), xt::all(), 0))()) > 1e-3);
    m.train();
    Var<double> z = m(x);  // batch statistics: each channel's mean is 0
    CHECK(std::abs(xt::mean(xt::view(z.value(), xt::all(), 0))()) < 1e-12);
    CHECK_THROWS_WITH(bn(tg::constant(xt::xarray<double>(xt::ones<double>({4, 3, 2, 2})))),
                      Equals("BatchNorm2d: expected input [N, 2, H, W], got [4, 3, 2, 2]"));
}

TEST_CASE("save_parameters, load_parameters and checkpoints carry the buffers", "[conv][nn][buffers][io]")
{
    TempDir dir;
    nn::Sequential<float> a{nn::Conv2d<float>(1, 2, 3), nn::BatchNorm2d<float>(2), nn::Flatten<float>()};
    std::mt19937_64 rng(9);
    a(tg::constant(xt::xarray<float>(xt::cast<float>(tg::sample_uniform(rng, {3, 1, 5, 5}, -1, 1)))));
    const std::string path = (dir.path / "m.safetensors").string();
    tg::io::save_parameters(path, a);
    const tg::io::File f = tg::io::load(path);
    CHECK(f.tensors.at("1.num_batches_tracked").dtype == tg::io::Dtype::i64);
    CHECK(f.tensors.at("1.num_batches_tracked").shape.empty());
    CHECK(f.tensors.at("1.running_var").dtype == tg::io::Dtype::f32);

    nn::Sequential<float> b{nn::Conv2d<float>(1, 2, 3), nn::BatchNorm2d<float>(2), nn::Flatten<float>()};
    tg::io::load_parameters(path, b);
    auto& bn_a = a.at<nn::BatchNorm2d<float>>(1);
    auto& bn_b = b.at<nn::BatchNorm2d<float>>(1);
    CHECK(bn_b.running_mean() == bn_a.running_mean());
    CHECK(bn_b.running_var() == bn_a.running_var());
    CHECK(bn_b.num_batches_tracked() == 1);

    // A file without the buffers is refused, naming them, and changes nothing.
    tg::io::File partial = f;
    partial.tensors.erase("1.running_var");
    tg::io::save(path, partial);
    nn::Sequential<float> c{nn::Conv2d<float>(1, 2, 3), nn::BatchNorm2d<float>(2), nn::Flatten<float>()};
    CHECK_THROWS_WITH(tg::io::load_parameters(path, c), Contains("missing buffers '1.running_var'"));
    CHECK(c.at<nn::BatchNorm2d<float>>(1).num_batches_tracked() == 0);

    tg::optim::Adam<float> opt(a.parameters());
    const std::string ck = (dir.path / "ck.safetensors").string();
    tg::io::save_checkpoint(ck, a, opt);
    nn::Sequential<float> d{nn::Conv2d<float>(1, 2, 3), nn::BatchNorm2d<float>(2), nn::Flatten<float>()};
    tg::optim::Adam<float> opt_d(d.parameters());
    tg::io::load_checkpoint(ck, d, opt_d);
    CHECK(d.at<nn::BatchNorm2d<float>>(1).running_mean() == bn_a.running_mean());
    CHECK(d.at<nn::BatchNorm2d<float>>(1).num_batches_tracked() == 1);
}

namespace {

// PyTorch's outputs of the reference CNN (tests/reference/cnn_outputs.json).
nlohmann::json reference_cnn_outputs()
{
    std::ifstream in(std::string(TAPEGRAD_REFERENCE_DIR) + "/cnn_outputs.json");
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

// The model's outputs in eval and in train mode against PyTorch's, at 1e-12.
void check_reference_outputs(nn::Sequential<double>& m, const nlohmann::json& ref)
{
    const Var<double> x = tg::constant(json_array(ref.at("input")));
    m.eval();
    const double eval_error = worst_relative(m(x).value(), json_array(ref.at("eval_output")), 1e-300);
    INFO("eval: worst relative difference " << eval_error);
    CHECK(eval_error <= 1e-12);
    m.train();
    const double train_error = worst_relative(m(x).value(), json_array(ref.at("train_output")), 1e-300);
    INFO("train: worst relative difference " << train_error);
    CHECK(train_error <= 1e-12);
}

}  // namespace

TEST_CASE("a PyTorch state_dict loads into the same architecture and gives PyTorch's outputs",
          "[conv][nn][reference][pytorch]")
{
    const std::string dir = TAPEGRAD_REFERENCE_DIR;
    const nlohmann::json ref = reference_cnn_outputs();
    nn::Sequential<double> m = reference_cnn();
    tg::io::load_parameters(dir + "/cnn_state_dict.safetensors", m);
    // The same keys, in PyTorch's order.
    std::vector<std::string> keys;
    for (const auto& np : m.named_parameters()) keys.push_back(np.first);
    for (const auto& nb : m.named_buffers()) keys.push_back(nb.first);
    std::vector<std::string> want = ref.at("keys").get<std::vector<std::string>>();
    std::sort(keys.begin(), keys.end());
    std::sort(want.begin(), want.end());
    CHECK(keys == want);

    check_reference_outputs(m, ref);  // leaves m in train mode, its buffers updated
    for (const auto& nb : m.named_buffers()) {
        INFO(nb.first);
        const auto& after = ref.at("after_train").at(nb.first);
        if (nb.second.values != nullptr) {
            CHECK(worst_relative(*nb.second.values, json_array(after), 1e-300) <= 1e-12);
        } else {
            CHECK(*nb.second.count == static_cast<std::int64_t>(after.at("values").at(0).get<double>()));
        }
    }

    // The reverse: what tapegrad saves has PyTorch's names, dtypes and shapes and the same
    // values (make_cnn_state_dict.py --check loads such a file into PyTorch).
    TempDir tmp;
    nn::Sequential<double> fresh = reference_cnn();
    tg::io::load_parameters(dir + "/cnn_state_dict.safetensors", fresh);
    const std::string out = (tmp.path / "from_tapegrad.safetensors").string();
    tg::io::save_parameters(out, fresh);
    const tg::io::File mine = tg::io::load(out);
    const tg::io::File theirs = tg::io::load(dir + "/cnn_state_dict.safetensors");
    CHECK(mine.tensors == theirs.tensors);
}

TEST_CASE("the same CNN's state_dict as torch.save wrote it loads by load_parameters and gives PyTorch's outputs",
          "[conv][nn][reference][pytorch][torch]")
{
    // tests/reference/make_torch_files.py saved cnn_state_dict.safetensors's model with
    // torch.save and checked there that it gives cnn_outputs.json's outputs.
    nn::Sequential<double> m = reference_cnn();
    tg::io::load_parameters(std::string(TAPEGRAD_REFERENCE_DIR) + "/torch/cnn_state_dict.pt", m);
    check_reference_outputs(m, reference_cnn_outputs());
}

TEST_CASE("a CNN training loop reaches a steady state: the heap does not grow", "[conv][nn][memory]")
{
    tg::Generator gen(11);
    nn::Sequential<float> m{nn::Conv2d<float>(1, 4, 3, {{1, 1}, {1, 1}, {1, 1}, 1, false}, gen),
                            nn::BatchNorm2d<float>(4),
                            nn::ReLU<float>(),
                            nn::MaxPool2d<float>(2),
                            nn::Dropout2d<float>(0.2, 5),
                            nn::Flatten<float>(),
                            nn::Linear<float>(4 * 4 * 4, 3, true, gen)};
    tg::optim::Adam<float> opt(m.parameters());
    std::mt19937_64 rng(13);
    Var<float> x = tg::constant(xt::xarray<float>(xt::cast<float>(tg::sample_uniform(rng, {8, 1, 8, 8}, 0, 1))));
    const xt::xarray<std::int64_t> labels{0, 1, 2, 0, 1, 2, 0, 1};
    auto step = [&] {
        opt.zero_grad();
        Var<float> loss = tg::cross_entropy(m(x), labels);
        loss.backward();
        opt.step();
    };
    // Settling first: oneDNN's OpenMP workers make their one-time per-thread allocations
    // when the scheduler first gives them work, which on a loaded machine can be many
    // steps in. Then 1000 steps may not grow the heap by more than 4 bytes a step.
    for (int i = 0; i < 300; ++i) step();
    const auto heap_before = mallinfo2().uordblks;
    for (int i = 0; i < 1000; ++i) step();
    CHECK(mallinfo2().uordblks <= heap_before + 4096);
}

TEST_CASE("parallel_for hands every item to exactly one chunk, at any size and thread count", "[conv][parallel]")
{
    const int before = tg::get_num_threads();
    for (int threads : {1, 2, 3}) {
        tg::set_num_threads(threads);
        for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(2), std::size_t(7), std::size_t(1000)}) {
            for (std::size_t cost : {std::size_t(1), std::size_t(1) << 20}) {
                std::vector<std::atomic<int>> seen(n);
                for (auto& s : seen) s = 0;
                std::atomic<int> calls{0};
                tg::kernel::parallel_for(n, cost, [&](std::size_t b, std::size_t e) {
                    ++calls;
                    for (std::size_t i = b; i < e; ++i) ++seen[i];
                });
                INFO("threads " << threads << ", n " << n << ", cost " << cost);
                for (std::size_t i = 0; i < n; ++i) CHECK(seen[i] == 1);
                CHECK(calls <= std::max(threads, 1));
                if (n > 0) CHECK(calls >= 1);
            }
        }
    }
    tg::set_num_threads(before);
}

TEST_CASE("max_pool2d and batch_norm give bit-identical results at 1 and 2 threads", "[conv][parallel]")
{
    // Large enough that their kernels split planes and channels over the threads.
    const int before = tg::get_num_threads();
    std::mt19937_64 rng(21);
    const xt::xarray<float> xv = xt::cast<float>(tg::sample_uniform(rng, {8, 16, 28, 28}, -1, 1));
    const xt::xarray<float> gv = xt::cast<float>(tg::sample_uniform(rng, {8, 16, 14, 14}, -1, 1));
    auto run = [&](int threads) {
        tg::set_num_threads(threads);
        Var<float> x = tg::parameter(xv);
        Var<float> w = tg::parameter(xt::xarray<float>(xt::ones<float>({16})));
        Var<float> b = tg::parameter(xt::xarray<float>(xt::zeros<float>({16})));
        xt::xarray<float> rm = xt::zeros<float>({16}), rv = xt::ones<float>({16});
        Var<float> y = tg::max_pool2d(tg::batch_norm(x, &rm, &rv, w, b, true), {2, 2});
        y.backward(gv);
        return std::vector<xt::xarray<float>>{y.value(), x.grad(), w.grad(), b.grad(), rm, rv};
    };
    const auto one = run(1), two = run(2);
    tg::set_num_threads(before);
    for (std::size_t i = 0; i < one.size(); ++i) {
        INFO("result " << i);
        CHECK(one[i] == two[i]);
    }
}
