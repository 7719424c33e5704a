// Training checkpoints: round trip, refusals, all-or-nothing, and damaged files.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

namespace nn = tg::nn;
namespace optim = tg::optim;

namespace {

using tg_test::read_bytes;
using tg_test::TempDir;
struct Setup {
    nn::Sequential<float> model;
    std::unique_ptr<optim::Adam<float>> opt;
    explicit Setup(std::uint64_t seed)
    {
        tg::Generator g(seed);
        model.add(nn::Dense<float>(3, 4, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), g));
        model.add(nn::Dropout<float>(0.5, seed));
        model.add(
            nn::Dense<float>(4, 2, nn::Activation::none, nn::init::glorot_uniform(), nn::init::uniform(-1, 1), g));
        opt = std::make_unique<optim::Adam<float>>(model.parameters());
    }
    void train_step()
    {
        opt->zero_grad();
        tg::Var<float> x = tg::constant(xt::xarray<float>{{0.5f, -1.0f, 2.0f}, {1.0f, 1.0f, 1.0f}});
        tg::cross_entropy(model(x), xt::xarray<std::int64_t>{0, 1}).backward();
        opt->step();
    }
    std::vector<xt::xarray<float>> weights() const
    {
        std::vector<xt::xarray<float>> w;
        for (const auto& p : model.parameters()) w.push_back(p.value());
        return w;
    }
};
}  // namespace

TEST_CASE("a checkpoint restores parameters, optimiser state, generators and progress", "[checkpoint]")
{
    TempDir dir;
    Setup a(1);
    for (int i = 0; i < 3; ++i) a.train_step();
    tg::io::CheckpointInfo info;
    info.epoch = 7;
    info.step = 3;
    info.extra["note"] = "hello";
    tg::io::save_checkpoint(dir.file("a.safetensors"), a.model, *a.opt, info);

    Setup b(2);  // different weights and dropout seed
    const auto restored = tg::io::load_checkpoint(dir.file("a.safetensors"), b.model, *b.opt);
    CHECK(restored.epoch == 7);
    CHECK(restored.step == 3);
    CHECK(restored.extra.at("note") == "hello");
    CHECK(b.weights() == a.weights());
    CHECK(b.opt->state_dict() == a.opt->state_dict());
    // The same next step on both: identical, dropout mask included.
    a.train_step();
    b.train_step();
    CHECK(b.weights() == a.weights());
}

TEST_CASE("load_checkpoint refuses a file that does not fit, and changes nothing", "[checkpoint][errors]")
{
    TempDir dir;
    Setup a(1);
    a.train_step();
    tg::io::save_checkpoint(dir.file("a.safetensors"), a.model, *a.opt);

    // A different architecture.
    nn::Sequential<float> other{nn::Dense<float>(3, 5), nn::Dense<float>(5, 2)};
    optim::Adam<float> other_opt(other.parameters());
    const auto before = other.parameters()[0].value();
    CHECK_THROWS_WITH(tg::io::load_checkpoint(dir.file("a.safetensors"), other, other_opt),
                      Catch::Contains("does not fit this model") &&
                          Catch::Contains("parameter '0.weight' is [3, 4] in the file but [3, 5]") &&
                          Catch::Contains("unexpected parameter '2.weight'"));
    CHECK(other.parameters()[0].value() == before);

    // A different optimiser.
    Setup c(3);
    optim::SGD<float> sgd(c.model.parameters());
    CHECK_THROWS_WITH(tg::io::load_checkpoint(dir.file("a.safetensors"), c.model, sgd),
                      Catch::EndsWith("the checkpoint holds the state of Adam, but the optimiser here is SGD"));

    // A plain weights file is not a training checkpoint.
    tg::io::save_parameters(dir.file("w.safetensors"), a.model);
    CHECK_THROWS_WITH(tg::io::load_checkpoint(dir.file("w.safetensors"), c.model, *c.opt),
                      Catch::Contains("not a tapegrad training checkpoint"));
    CHECK_THROWS_WITH(tg::io::load_checkpoint(dir.file("missing.safetensors"), c.model, *c.opt),
                      Catch::StartsWith(dir.file("missing.safetensors")));
}

TEST_CASE("every truncation and every bit flip of a checkpoint's header is caught or harmless", "[checkpoint][fuzz]")
{
    TempDir dir;
    Setup a(1);
    a.train_step();
    const std::string path = dir.file("a.safetensors");
    tg::io::save_checkpoint(path, a.model, *a.opt);
    const std::string good = read_bytes(path);
    std::uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = header * 256 + static_cast<unsigned char>(good[static_cast<std::size_t>(i)]);
    REQUIRE(header + 8 < good.size());

    Setup b(2);
    const auto b_weights = b.weights();
    const auto b_state = b.opt->state_dict();
    std::size_t caught = 0, harmless = 0;
    auto attempt = [&](const std::string& bytes) {
        try {
            tg::io::load_checkpoint(tg::io::parse(bytes, "damaged"), "damaged", b.model, *b.opt);
        } catch (const tg::Error&) {
            ++caught;
            // Nothing changed on failure.
            CHECK(b.weights() == b_weights);
            CHECK(b.opt->state_dict() == b_state);
            return;
        }
        // It loaded: then it must be exactly the original checkpoint's content.
        ++harmless;
        CHECK(b.weights() == a.weights());
        CHECK(b.opt->state_dict() == a.opt->state_dict());
        b = Setup(2);  // back to the reference state (fresh objects)
    };
    for (std::size_t len = 0; len < good.size(); ++len) attempt(good.substr(0, len));
    for (std::size_t i = 0; i < 8 + header; ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string bytes = good;
            bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
            attempt(bytes);
        }
    }
    INFO("caught " << caught << ", loaded unchanged " << harmless);
    CHECK(caught > 8 * header);
}
