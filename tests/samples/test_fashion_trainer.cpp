// The fashion_mnist training loop on a small synthetic data set: checkpoints resume to
// bit-identical parameters, and the loop learns.

#include <unistd.h>

#include <filesystem>
#include <random>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"
#include "trainer.hpp"

#include "helpers.hpp"

namespace {

using tg_test::TempDir;

// Three Gaussian blobs in 12 dimensions.
tg::data::Dataset<float> blobs(std::size_t n, std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> noise(0.0f, 0.7f);
    xt::xarray<float> x = xt::zeros<float>({n, std::size_t(12)});
    xt::xarray<std::int64_t> y = xt::zeros<std::int64_t>({n});
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<std::int64_t>(i % 3);
        y(i) = c;
        for (std::size_t j = 0; j < 12; ++j)
            x(i, j) = noise(rng) + (j % 3 == static_cast<std::size_t>(c) ? 1.5f : 0.0f);
    }
    return tg::data::Dataset<float>(x, y);
}

fashion::Config small_config(const std::string& schedule)
{
    fashion::Config c = fashion::Config::mlp();  // 12 synthetic features: no images
    c.epochs = 6;
    c.batch_size = 32;
    c.hidden = {16, 8};
    c.dropout = 0.3;
    c.optimizer = "adamw";
    c.lr = 0.01;
    c.schedule = schedule;
    c.seed = 42;
    return c;
}

std::vector<xt::xarray<float>> weights(fashion::Trainer& t)
{
    std::vector<xt::xarray<float>> out;
    for (const auto& p : t.model().parameters()) out.push_back(p.value());
    return out;
}
}  // namespace

TEST_CASE("a run stopped after 3 epochs and resumed to 6 ends bit-identical to an uninterrupted run",
          "[fashion][resume]")
{
    const auto train = blobs(300, 1), test = blobs(90, 2);
    TempDir dir;
    const std::string ckpt = (dir.path / "run.safetensors").string();
    for (const std::string schedule : {"cosine", "step", "none"}) {
        INFO("schedule " << schedule);
        fashion::Progress quiet(false);
        fashion::Trainer straight(small_config(schedule), train, test);
        straight.run(quiet, [](const fashion::EpochResult&) {});

        fashion::Config first = small_config(schedule);
        first.stop_after = 3;
        first.checkpoint = ckpt;
        fashion::Trainer part1(first, train, test);
        part1.run(quiet, [](const fashion::EpochResult&) {});
        REQUIRE(part1.completed_epochs() == 3);

        // A fresh process would start here: new model, new optimiser, then resume.
        fashion::Trainer part2(small_config(schedule), train, test);
        part2.resume(ckpt);
        CHECK(part2.completed_epochs() == 3);
        CHECK(part2.history().size() == 3);
        part2.run(quiet, [](const fashion::EpochResult&) {});
        CHECK(part2.completed_epochs() == 6);

        const auto a = weights(straight), b = weights(part2);
        REQUIRE(a.size() == b.size());
        for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);  // exact, not approximate
        CHECK(straight.history().back().test_loss == part2.history().back().test_loss);
    }
}

TEST_CASE("a finished 3-epoch run extended to 6 epochs matches a 6-epoch run when the schedule has no horizon",
          "[fashion][resume]")
{
    const auto train = blobs(300, 3), test = blobs(90, 4);
    TempDir dir;
    const std::string ckpt = (dir.path / "three.safetensors").string();
    fashion::Progress quiet(false);
    fashion::Config three = small_config("step");
    three.epochs = 3;
    three.checkpoint = ckpt;
    // StepLR's step size comes from the planned epochs, so pin the plan with "none".
    three.schedule = "none";
    fashion::Trainer a(three, train, test);
    a.run(quiet, [](const fashion::EpochResult&) {});
    fashion::Trainer b(small_config("none"), train, test);
    b.resume(ckpt);
    b.run(quiet, [](const fashion::EpochResult&) {});
    fashion::Trainer c(small_config("none"), train, test);
    c.run(quiet, [](const fashion::EpochResult&) {});
    const auto wb = weights(b), wc = weights(c);
    for (std::size_t i = 0; i < wb.size(); ++i) CHECK(wb[i] == wc[i]);
}

TEST_CASE("resuming with a different architecture is refused with both described", "[fashion][resume][errors]")
{
    const auto train = blobs(120, 5), test = blobs(30, 6);
    TempDir dir;
    const std::string ckpt = (dir.path / "arch.safetensors").string();
    fashion::Progress quiet(false);
    fashion::Config c = small_config("none");
    c.stop_after = 1;
    c.checkpoint = ckpt;
    fashion::Trainer a(c, train, test);
    a.run(quiet, [](const fashion::EpochResult&) {});
    fashion::Config other = small_config("none");
    other.hidden = {20};
    fashion::Trainer b(other, train, test);
    CHECK_THROWS_WITH(b.resume(ckpt),
                      Catch::Contains("the checkpoint is for 12-16-8-3") && Catch::Contains("this run is 12-20-3"));
}

TEST_CASE("the training loop learns the synthetic blobs", "[fashion]")
{
    const auto train = blobs(600, 7), test = blobs(150, 8);
    fashion::Progress quiet(false);
    fashion::Trainer t(small_config("cosine"), train, test);
    const double before = t.evaluate(test).second;
    t.run(quiet, [](const fashion::EpochResult&) {});
    INFO("accuracy before " << before << ", after " << t.history().back().test_acc);
    CHECK(t.history().back().test_acc > 0.9);
    CHECK(t.history().back().train_loss < t.history().front().train_loss);
}
