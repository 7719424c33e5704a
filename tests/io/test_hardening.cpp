// Regression tests for the memory-safety and silent-misbehaviour defects found by fuzzing
// the loaders and by trying the API as a hostile user would. Each case crashed, read out
// of bounds, allocated gigabytes or computed garbage before its fix.

#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include <catch2/catch.hpp>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/data.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

using Catch::Contains;
using Catch::EndsWith;
using Catch::Equals;
using Catch::StartsWith;
using tg::Var;
namespace nn = tg::nn;
namespace optim = tg::optim;
namespace fs = std::filesystem;

namespace {

using tg_test::TempDir;
using tg_test::write_bytes;

// An IDX header of unsigned bytes with the given dimensions, followed by `data`.
std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims, std::size_t data)
{
    std::vector<std::uint8_t> out{0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) {
        for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
    }
    out.resize(out.size() + data, 7);
    return out;
}

// Peak resident memory of the process so far, in bytes.
std::size_t peak_rss()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<std::size_t>(u.ru_maxrss) * 1024;
}

template <class T> Var<T> zeros(std::vector<std::size_t> shape, bool grad = true)
{
    xt::xarray<T> v = xt::zeros<T>(shape);
    return grad ? tg::parameter(v) : tg::constant(v);
}

}  // namespace

// --- 1. broadcast reduction over an empty batch ----------------------------------------------

TEMPLATE_TEST_CASE("backward through a broadcast over an empty batch gives zero gradients", "[hardening][broadcast]",
                   float, double)
{
    Var<TestType> x = zeros<TestType>({0, 3});
    SECTION("add with a suffix [3]")
    {
        Var<TestType> b = tg::parameter(xt::xarray<TestType>{1, 2, 3});
        tg::sum(x + b).backward();
        CHECK(b.grad() == xt::xarray<TestType>{0, 0, 0});
        CHECK(x.grad().shape() == std::vector<std::size_t>{0, 3});
    }
    SECTION("mul with [1, 3]")
    {
        Var<TestType> b = tg::parameter(xt::xarray<TestType>{{1, 2, 3}});
        tg::sum(x * b).backward();
        CHECK(b.grad() == xt::xarray<TestType>{{0, 0, 0}});
    }
    SECTION("a gradient added twice to the same bias (accumulation path)")
    {
        Var<TestType> b = tg::parameter(xt::xarray<TestType>{1, 2, 3});
        tg::sum(x + b + (x - b)).backward();
        CHECK(b.grad() == xt::xarray<TestType>{0, 0, 0});
    }
    SECTION("a Dense layer on an empty batch, as PyTorch: output [0, out], zero gradients")
    {
        nn::Dense<TestType> layer(3, 2, nn::Activation::sigmoid);
        Var<TestType> y = layer(x);
        CHECK(y.shape() == std::vector<std::size_t>{0, 2});
        tg::sum(y).backward();
        CHECK(layer.weight().grad() == xt::zeros<TestType>({3, 2}));
        CHECK(layer.bias().grad() == xt::zeros<TestType>({2}));
    }
    SECTION("a broadcast that is no suffix ([3, 1] against [0, 3, 4]), sum over axes and sum_to of an empty Var")
    {
        Var<TestType> e = zeros<TestType>({0, 3, 4});
        Var<TestType> b = tg::parameter(xt::xarray<TestType>(xt::ones<TestType>({3, 1})));
        tg::sum(e + b).backward();
        CHECK(b.grad() == xt::zeros<TestType>({3, 1}));
        Var<TestType> e2 = zeros<TestType>({0, 3, 4});
        Var<TestType> s = tg::sum(e2, std::vector<std::ptrdiff_t>{0, 2});
        CHECK(s.value() == xt::zeros<TestType>({3}));
        Var<TestType> t = tg::sum_to(e2, {3, 1});
        CHECK(t.value() == xt::zeros<TestType>({3, 1}));
        tg::sum(s + tg::reshape(t, {3})).backward();
        CHECK(e2.grad().shape() == std::vector<std::size_t>{0, 3, 4});
    }
    SECTION("mse_loss summed over an empty batch is 0, with zero gradients")
    {
        nn::Dense<TestType> layer(3, 2);
        Var<TestType> loss = tg::mse_loss(layer(x), zeros<TestType>({0, 2}, false), tg::Reduction::sum);
        CHECK(loss.item() == 0);
        loss.backward();
        CHECK(layer.weight().grad() == xt::zeros<TestType>({3, 2}));
    }
}

// --- 2. softmax / log_softmax over a zero-length axis ----------------------------------------

TEMPLATE_TEST_CASE("softmax and log_softmax over a zero-length axis give empty results", "[hardening][softmax]", float,
                   double)
{
    const std::vector<std::pair<std::vector<std::size_t>, std::ptrdiff_t>> cases{
        {{3, 0}, 1}, {{0}, 0}, {{2, 0}, 1}, {{2, 0}, -1}, {{0, 4}, 0}};
    for (const auto& c : cases) {
        CAPTURE(c.first, c.second);
        for (int which = 0; which < 2; ++which) {
            Var<TestType> x = zeros<TestType>(c.first);
            Var<TestType> y = which == 0 ? tg::softmax(x, c.second) : tg::log_softmax(x, c.second);
            CHECK(y.shape() == x.shape());
            tg::sum(y).backward();
            CHECK(x.grad().shape() == x.shape());
        }
    }
}

// --- 3. products of dims that overflow -------------------------------------------------------

TEST_CASE("reshape refuses a new shape whose element count overflows", "[hardening][shape][overflow]")
{
    const std::size_t big = (std::size_t{1} << 62) + 1;
    Var<double> x = tg::parameter(xt::xarray<double>{1, 2, 3, 4});
    CHECK_THROWS_WITH(tg::reshape(x, {big, 4}),
                      Equals("reshape: shape [4611686018427387905, 4] has too many elements"));
    Var<double> empty = zeros<double>({0});
    const std::size_t two32 = std::size_t{1} << 32;
    CHECK_THROWS_WITH(tg::reshape(empty, {two32, two32}),
                      Equals("reshape: shape [4294967296, 4294967296] has too many elements"));
    CHECK_THROWS_WITH(tg::reshape(empty, {0, two32, two32}),
                      Equals("reshape: shape [0, 4294967296, 4294967296] has too many elements"));
    CHECK(tg::reshape(empty, {0, two32}).shape() == std::vector<std::size_t>{0, two32});  // fine: indexable
    CHECK_THROWS_WITH(tg::expand(x, {big, 4}), Equals("expand: shape [4611686018427387905, 4] has too many elements"));
    CHECK_THROWS_WITH(tg::pad(x, 0, std::numeric_limits<std::size_t>::max(), 2),
                      StartsWith("pad: padding 18446744073709551615 before and 2 after axis 0 of shape [4]"));
    CHECK_THROWS_WITH(tg::split(x, {std::numeric_limits<std::size_t>::max(), 5}, 0),
                      StartsWith("split: sizes [18446744073709551615, 5] add up to more than"));
    CHECK_THROWS_WITH(nn::Dense<float>(std::size_t{1} << 40, std::size_t{1} << 40),
                      Equals("Dense: shape [1099511627776, 1099511627776] has too many elements"));
}

TEST_CASE("safetensors refuses a shape with a zero dim whose other dims overflow", "[hardening][io][overflow]")
{
    // [0, 2^32, 2^32] of F32 holds no byte, but an array of that shape has strides that wrap.
    const std::string header = R"({"t":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i)
        bytes[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    bytes += header;
    CHECK_THROWS_WITH(tg::io::parse(bytes, "zero.safetensors"),
                      Equals("zero.safetensors: tensor 't': shape [0, 4294967296, 4294967296] has too many elements"));
    tg::io::Tensor t;
    t.dtype = tg::io::Dtype::f32;
    t.shape = {0, std::size_t{1} << 32, std::size_t{1} << 32};
    CHECK_THROWS_WITH(t.to<float>(), Equals("Tensor::to: the tensor has shape [0, 4294967296, 4294967296], too many "
                                            "elements"));
    CHECK_THROWS_WITH(t.numel(), Equals("Tensor::numel: shape [0, 4294967296, 4294967296] has too many elements"));
}

// --- 4. checkpoint optimiser state -----------------------------------------------------------

namespace {

struct SmallRun {
    nn::Sequential<float> model{nn::Dense<float>(2, 3, nn::Activation::sigmoid), nn::Dense<float>(3, 1)};
    optim::Adam<float> opt{model.parameters()};
    void step()
    {
        opt.zero_grad();
        tg::mse_loss(model(tg::constant(xt::xarray<float>{{1, 2}})),
                     tg::constant(xt::xarray<float>(xt::ones<float>({1, 1}))))
            .backward();
        opt.step();
    }
};

// The checkpoint at `from` with one tensor replaced (or added), saved to `to` with a valid CRC.
void with_tensor(const std::string& from, const std::string& to, const std::string& name, tg::io::Tensor t)
{
    tg::io::File f = tg::io::load(from);
    f.tensors[name] = std::move(t);
    tg::io::save(to, f);
}
}  // namespace

TEST_CASE("a checkpoint's optimiser step of 1e30 or inf, or a 20-digit state index, is refused by name",
          "[hardening][checkpoint]")
{
    TempDir dir;
    SmallRun run;
    run.step();
    const std::string good = dir.file("good.safetensors");
    tg::io::save_checkpoint(good, run.model, run.opt);
    const auto weights = run.model.parameters()[0].value();
    const auto state = run.opt.state_dict();

    for (double bad : {1e30, std::numeric_limits<double>::infinity(), -1.0, 2.5}) {
        CAPTURE(bad);
        const std::string path = dir.file("step.safetensors");
        with_tensor(good, path, "optim.0.step", tg::io::Tensor::from(xt::xarray<double>(bad)));
        SmallRun other;
        CHECK_THROWS_WITH(tg::io::load_checkpoint(path, other.model, other.opt),
                          StartsWith(path + ": the optimiser state does not fit: Adam: state entry '0.step' must be "
                                            "a count (an integer in [0, 2^53]), got"));
        CHECK(other.opt.step_count() == 0);
    }
    const std::string path = dir.file("index.safetensors");
    with_tensor(good, path, "optim.123456789012345678901.step", tg::io::Tensor::from(xt::xarray<double>(1.0)));
    SmallRun other;
    CHECK_THROWS_WITH(tg::io::load_checkpoint(path, other.model, other.opt),
                      StartsWith(path + ": the optimiser state does not fit: Adam: unknown state entry "
                                        "'123456789012345678901.step'"));
    // The run the checkpoint came from is untouched, and the good file still loads.
    CHECK(run.model.parameters()[0].value() == weights);
    CHECK(tg::io::load_checkpoint(good, other.model, other.opt).step == 0);
    CHECK(other.opt.state_dict().size() == state.size());
}

TEST_CASE("a failed optimiser restore leaves the optimiser exactly as it was", "[hardening][optim]")
{
    SmallRun run;
    run.step();
    run.step();
    const auto before = run.opt.state_dict();
    auto bad = before;
    bad["1.exp_avg"] = xt::zeros<double>({7});  // wrong shape, after entries that fit
    bad["0.step"] = xt::xarray<double>(99.0);
    bad["step"] = xt::xarray<double>(99.0);
    CHECK_THROWS_WITH(run.opt.load_state_dict(bad),
                      Equals("Adam: state entry '1.exp_avg' has shape [7], parameter 1 has shape [3]"));
    const auto after = run.opt.state_dict();
    REQUIRE(after.size() == before.size());
    for (const auto& kv : before) {
        CAPTURE(kv.first);
        CHECK(after.at(kv.first) == kv.second);
    }
    CHECK(run.opt.step_count() == 2);
    CHECK_THROWS_WITH(run.opt.set_state("step", xt::xarray<double>(std::nan(""))),
                      StartsWith("Adam: state entry 'step' must be a count"));
    CHECK_THROWS_WITH(run.opt.set_state("lr", xt::xarray<double>(std::numeric_limits<double>::infinity())),
                      Equals("Adam: state entry 'lr' must be a finite learning rate >= 0, got inf"));
    CHECK(run.opt.step_count() == 2);
}

TEST_CASE("checkpoint conversion errors name the file and the entry", "[hardening][checkpoint]")
{
    TempDir dir;
    SmallRun run;
    run.step();
    const std::string good = dir.file("good.safetensors");
    tg::io::save_checkpoint(good, run.model, run.opt);
    const std::string path = dir.file("nan.safetensors");
    // A generator state must be integers; a float64 NaN cannot become one.
    tg::io::Tensor t = tg::io::Tensor::from(xt::xarray<double>{std::nan("")});
    with_tensor(good, path, "rng.default", t);
    SmallRun other;
    CHECK_THROWS_WITH(tg::io::load_checkpoint(path, other.model, other.opt),
                      StartsWith(path + ": tensor 'rng.default': element 0"));
    // A float64 parameter value that no float holds.
    tg::io::File f = tg::io::load(good);
    f.tensors["model.1.bias"] = tg::io::Tensor::from(xt::xarray<double>{1e300});
    tg::io::save(path, f);
    CHECK_THROWS_WITH(
        tg::io::load_checkpoint(path, other.model, other.opt),
        StartsWith(path + ": tensor 'model.1.bias': element 0 of the F64 tensor (1e+300) is out of range"));
    f = tg::io::load(good);
    f.tensors["optim.0.exp_avg"] = tg::io::Tensor::from(xt::xarray<std::int64_t>{1});
    tg::io::save(path, f);
    CHECK_THROWS_WITH(tg::io::load_checkpoint(path, other.model, other.opt),
                      StartsWith(path + ": the optimiser state does not fit: Adam: state entry '0.exp_avg' has shape"));
}

// --- 5. IDX loader trusts the header ---------------------------------------------------------

TEST_CASE("the IDX loader allocates only as its data arrives", "[hardening][data][idx]")
{
    TempDir dir;
    // A 16-byte images file claiming [1, 16384, 16384] (256 MB of pixels, 1 GB of float
    // features) and a 9-byte labels file: refused as truncated without the gigabyte.
    const std::string images = dir.file("images.idx"), labels = dir.file("labels.idx");
    write_bytes(images, idx_bytes({1, 16384, 16384}, 0));
    write_bytes(labels, idx_bytes({1}, 1));
    const std::size_t before = peak_rss();
    CHECK_THROWS_WITH(tg::data::load_idx_dataset<float>(images, labels),
                      Equals(images + ": truncated: dimensions [1, 16384, 16384] need 268435456 data bytes, found 0"));
    // 17 bytes claiming [1, 469763073, 1]: read_idx stops at the end of the data.
    const std::string tall = dir.file("tall.idx");
    write_bytes(tall, idx_bytes({1, 469763073, 1}, 1));
    CHECK_THROWS_WITH(tg::data::read_idx(tall),
                      Equals(tall + ": truncated: dimensions [1, 469763073, 1] need 469763073 data bytes, found 1"));
    // The same claims gzip'd: the trailer does not back them either.
    const std::string gz = dir.file("tall.idx.gz");
    {
        const auto raw = idx_bytes({1, 469763073, 1}, 1000);
        gzFile out = gzopen(gz.c_str(), "wb");
        REQUIRE(out != nullptr);
        REQUIRE(gzwrite(out, raw.data(), static_cast<unsigned>(raw.size())) == static_cast<int>(raw.size()));
        REQUIRE(gzclose(out) == Z_OK);
    }
    CHECK_THROWS_WITH(tg::data::read_idx(gz), Equals(gz + ": truncated: dimensions [1, 469763073, 1] need 469763073 "
                                                          "data bytes, found 1000 after decompression"));
    CHECK(peak_rss() - before < (std::size_t{200} << 20));
}

TEST_CASE("load_idx_dataset's size limit counts the features in memory", "[hardening][data][idx]")
{
    TempDir dir;
    const std::string images = dir.file("images.idx"), labels = dir.file("labels.idx");
    write_bytes(images, idx_bytes({1, 32768, 32768}, 0));  // 1 GB of pixels: 4 GB as float
    write_bytes(labels, idx_bytes({1}, 1));
    CHECK_THROWS_WITH(tg::data::load_idx_dataset<float>(images, labels),
                      Equals("load_idx_dataset: " + images +
                             ": dimensions [1, 32768, 32768] make 1073741824 features of 4 bytes, more than the "
                             "2147483648-byte limit"));
    CHECK_THROWS_WITH(tg::data::load_idx_dataset<double>(images, labels),
                      EndsWith("make 1073741824 features of 8 bytes, more than the 2147483648-byte limit"));
}

TEST_CASE("gzip read errors say what happened, never \"Success\"", "[hardening][data][gzip]")
{
    TempDir dir;
    const std::string gz = dir.file("cut.idx.gz");
    {
        const auto raw = idx_bytes({100}, 100);
        gzFile out = gzopen(gz.c_str(), "wb");
        REQUIRE(out != nullptr);
        REQUIRE(gzwrite(out, raw.data(), static_cast<unsigned>(raw.size())) == static_cast<int>(raw.size()));
        REQUIRE(gzclose(out) == Z_OK);
    }
    auto cut = [&] {
        std::ifstream in(gz, std::ios::binary);
        std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(in)), {});
        b.resize(b.size() - 12);
        return b;
    }();
    write_bytes(gz, cut);
    CHECK_THROWS_WITH(tg::data::read_idx(gz), StartsWith(gz + ": ") && !Contains("Success"));
    CHECK_THROWS_WITH(tg::data::read_idx(dir.file("missing.gz")),
                      Equals(dir.file("missing.gz") + ": cannot open (No such file or directory)"));
}

// --- 6. a Var from a thread that has exited --------------------------------------------------

TEST_CASE("a Var recorded on a thread that has exited is refused, not read after free", "[hardening][threads]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1, 2});
    Var<double> from_thread;
    std::thread([&] { from_thread = w * 2.0; }).join();
    const std::string expected = "recorded on another thread's tape (pass ";
    CHECK_THROWS_WITH(from_thread.value(),
                      StartsWith("value: this Var was") && Contains(expected) && Contains("that thread has exited"));
    CHECK_THROWS_WITH(tg::sum(from_thread), StartsWith("sum: this Var was") && Contains("exited"));
    CHECK_THROWS_WITH(from_thread.backward(), StartsWith("backward: this Var was"));
    // Threads come and go; each new one records on a tape of its own and its Vars work.
    for (int i = 0; i < 3; ++i) {
        double got = 0;
        std::thread([&] { got = tg::sum(w * w).item(); }).join();
        CHECK(got == 5.0);
    }
    CHECK_THROWS_WITH(from_thread.value(), Contains("this Var was recorded"));
}

// --- 7. silent wrong training ----------------------------------------------------------------

TEST_CASE("optimisers refuse duplicate parameters and non-finite hyperparameters", "[hardening][optim]")
{
    Var<float> w = tg::parameter(xt::xarray<float>{1, 2});
    Var<float> v = tg::parameter(xt::xarray<float>{3});
    CHECK_THROWS_WITH(optim::SGD<float>({w, v, w}),
                      Equals("SGD: parameter 2 (shape [2]) is the same Var as parameter 0; each parameter may appear "
                             "once"));
    CHECK_THROWS_WITH(optim::Adam<float>({w, w}), StartsWith("Adam: parameter 1 (shape [2]) is the same Var as"));
    const double inf = std::numeric_limits<double>::infinity();
    optim::SGDOptions o;
    o.lr = inf;
    CHECK_THROWS_WITH(optim::SGD<float>({w}, o), Equals("SGD: lr must be finite, got inf"));
    optim::SGD<float> sgd({w});
    CHECK_THROWS_WITH(optim::ExponentialLR<float>(sgd, inf), Equals("ExponentialLR: gamma must be finite, got inf"));
    CHECK_THROWS_WITH(optim::StepLR<float>(sgd, 1, inf), Equals("StepLR: gamma must be finite, got inf"));
    CHECK_THROWS_WITH(sgd.set_lr(inf), Equals("SGD: lr must be finite, got inf"));
    // A finite gamma whose power overflows is refused when it would, and changes nothing.
    optim::ExponentialLR<float> sched(sgd, 1e300);
    tg::sum(w).backward();
    sgd.step();
    sched.step();  // lr 0.01 * 1e300
    CHECK_THROWS_WITH(sched.step(), Equals("ExponentialLR: the learning rate at epoch 2 would be inf; it must be "
                                           "finite and not negative"));
    CHECK(sgd.lr() == Approx(0.01 * 1e300));
}

TEST_CASE("Dropout checks p in the type the layer computes with", "[hardening][nn]")
{
    CHECK_THROWS_WITH(nn::Dropout<float>(0.99999999),
                      Equals("Dropout: p must be in [0, 1) in float, got 0.99999998999999995, which rounds to 1"));
    nn::Dropout<double> d(0.99999999, 1);
    CHECK_NOTHROW(d(tg::parameter(xt::xarray<double>{1, 2, 3})));
    CHECK_THROWS_WITH(nn::Dropout<double>(std::nan("")), Equals("Dropout: p must be in [0, 1), got nan"));
}

// --- 8. a parameter's shape changed behind the optimiser's back -------------------------------

TEMPLATE_TEST_CASE("an optimiser refuses a parameter whose shape changed through mutable_value()", "[hardening][optim]",
                   float, double)
{
    Var<TestType> w = tg::parameter(xt::xarray<TestType>{1, 2, 3});
    optim::Adam<TestType> adam({w});
    tg::sum(w * w).backward();
    adam.step();
    tg::sum(w * w).backward();
    w.mutable_value().resize({64});
    CHECK_THROWS_WITH(adam.step(), Equals("Adam: parameter 0 has shape [64] but its gradient has shape [3]; a "
                                          "parameter's shape must not change (mutable_value() may change values "
                                          "only)"));
    w.zero_grad();
    w.mutable_value().resize({3});
    w.mutable_value() = xt::xarray<TestType>{1, 2, 3};
    // The same with a fresh gradient: the moment buffers still have the old shape.
    w.mutable_value().resize({2});
    tg::sum(w * w).backward();
    CHECK_THROWS_WITH(adam.step(), EndsWith("has shape [2] but its exp_avg has shape [3]; a parameter's shape must "
                                            "not change (mutable_value() may change values only)"));
    optim::SGDOptions so;
    so.momentum = 0.9;
    Var<TestType> u = tg::parameter(xt::xarray<TestType>{1, 2});
    optim::SGD<TestType> sgd({u}, so);
    tg::sum(u).backward();
    u.mutable_value().resize({5});
    CHECK_THROWS_WITH(sgd.step(), StartsWith("SGD: parameter 0 has shape [5] but its gradient has shape [2]"));
}

// --- 9. NaN through xsimd's exp --------------------------------------------------------------

TEMPLATE_TEST_CASE("exp and sigmoid of NaN, infinities and huge values on every SIMD lane", "[hardening][numerics]",
                   float, double)
{
    const TestType nan = std::numeric_limits<TestType>::quiet_NaN();
    const TestType inf = std::numeric_limits<TestType>::infinity();
    const TestType huge = std::numeric_limits<TestType>::max();
    // 32 elements: whole SIMD batches, not only the scalar tail, for every width.
    xt::xarray<TestType> v = xt::zeros<TestType>({32});
    for (std::size_t i = 0; i < v.size(); ++i) {
        const TestType special[] = {nan, inf, -inf, huge, -huge, TestType(1e30), TestType(-1e30), TestType(0.5)};
        v(i) = special[i % 8];
    }
    Var<TestType> x = tg::parameter(v);
    const auto e = tg::exp(x).value();
    const auto s = tg::sigmoid(x).value();
    for (std::size_t i = 0; i < v.size(); ++i) {
        CAPTURE(i, v(i));
        switch (i % 8) {
        case 0:
            CHECK(std::isnan(e(i)));
            CHECK(std::isnan(s(i)));
            break;
        case 1:
        case 3:
        case 5:
            CHECK(e(i) == inf);
            CHECK(s(i) == 1);
            break;
        case 2:
        case 4:
        case 6:
            CHECK(e(i) == 0);
            CHECK(s(i) == 0);
            break;
        default:
            CHECK(e(i) == Approx(std::exp(0.5)));
            CHECK(s(i) == Approx(1 / (1 + std::exp(-0.5))));
        }
    }
    tg::sum(tg::sigmoid(x) + tg::exp(x)).backward();
    CHECK(std::isnan(x.grad()(0)));
}

TEMPLATE_TEST_CASE("every SIMD function of the kit gives std's values on NaN, infinities and huge values",
                   "[hardening][numerics]", float, double)
{
    using T = TestType;
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const T inf = std::numeric_limits<T>::infinity();
    const T huge = std::numeric_limits<T>::max();
    const T special[] = {nan, inf, -inf, huge, -huge, T(1e30), T(-1e30), T(0.5), T(0), T(-0.75), T(40), T(-40)};
    const std::size_t kinds = sizeof(special) / sizeof(special[0]);
    xt::xarray<T> v = xt::zeros<T>({3 * kinds});  // whole SIMD batches, not only the scalar tail
    for (std::size_t i = 0; i < v.size(); ++i) v(i) = special[i % kinds];
    const Var<T> x = tg::constant(v);
    // Same value, or both NaN; relative 1e-5 (float) / 1e-12 (double) off the edges.
    auto same = [](T got, T want) {
        if (std::isnan(want)) return std::isnan(got);
        if (std::isinf(want) || want == 0) return got == want;
        return std::abs(got - want) <= (sizeof(T) == 4 ? 1e-5 : 1e-12) * std::abs(want);
    };
    auto check = [&](const char* name, const xt::xarray<T>& got, auto want) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            CAPTURE(name, i, v(i), got(i), want(v(i)));
            CHECK(same(got(i), want(v(i))));
        }
    };
    check("expm1", tg::expm1(x).value(), [](T a) { return std::expm1(a); });
    check("tanh", tg::tanh(x).value(), [](T a) { return std::tanh(a); });
    check("sin", tg::sin(x).value(), [](T a) { return std::sin(a); });
    check("cos", tg::cos(x).value(), [](T a) { return std::cos(a); });
    check("gelu", tg::gelu(x).value(), [](T a) { return T(0.5) * a * std::erfc(-a / std::sqrt(T(2))); });
    check("pow 2 ** x", tg::pow(tg::constant(xt::xarray<T>(xt::full_like(v, T(2)))), x).value(),
          [](T a) { return std::pow(T(2), a); });
    check("pow x ** 1.5", tg::pow(x, T(1.5)).value(), [](T a) { return std::pow(a, T(1.5)); });
    check("pow x ** -1", tg::pow(x, T(-1)).value(), [](T a) { return std::pow(a, T(-1)); });
}
