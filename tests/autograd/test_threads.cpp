// What the README promises about threads, exercised with real threads. These are the tests
// the ThreadSanitizer build runs (tag [threads]).

#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using Catch::StartsWith;
using tg::Var;
namespace nn = tg::nn;

namespace {

constexpr int kThreads = 4;

nn::Sequential<double> small_model(std::uint64_t seed)
{
    tg::Generator g(seed);
    nn::Sequential<double> m;
    m.add(nn::Dense<double>(4, 8, nn::Activation::tanh, nn::init::glorot_uniform(), nn::init::uniform(-0.1, 0.1), g));
    m.add(nn::Dense<double>(8, 3, nn::Activation::none, nn::init::glorot_uniform(), nn::init::zeros(), g));
    return m;
}

xt::xarray<double> batch(int k)
{
    xt::xarray<double> x = xt::zeros<double>({5, 4});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.1 * static_cast<double>((static_cast<int>(i) + k) % 7);
    return x;
}

}  // namespace

TEST_CASE("several threads evaluate one shared model under NoGradGuard", "[threads]")
{
    nn::Sequential<double> model = small_model(1);
    model.eval();
    std::vector<xt::xarray<double>> expected;
    {
        tg::NoGradGuard no_grad;
        for (int t = 0; t < kThreads; ++t) expected.push_back(model(tg::constant(batch(t))).value());
    }
    std::vector<xt::xarray<double>> got(kThreads);
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
        workers.emplace_back([&, t] {
            tg::NoGradGuard no_grad;
            for (int rep = 0; rep < 200; ++rep)
                got[static_cast<std::size_t>(t)] = model(tg::constant(batch(t))).value();
        });
    }
    for (auto& w : workers) w.join();
    for (std::size_t t = 0; t < kThreads; ++t) CHECK(bool(got[t] == expected[t]));
}

TEST_CASE("each thread trains its own model on its own tape", "[threads]")
{
    auto train = [](std::uint64_t seed) {
        nn::Sequential<double> model = small_model(seed);
        tg::optim::SGD<double> sgd(model.parameters());
        const xt::xarray<std::int64_t> labels{0, 1, 2, 1, 0};
        double loss = 0;
        for (int step = 0; step < 100; ++step) {
            sgd.zero_grad();
            Var<double> l = tg::cross_entropy(model(tg::constant(batch(step))), labels);
            l.backward();
            sgd.step();
            loss = l.item();
        }
        return std::make_pair(loss, model.parameters()[0].value());
    };
    std::vector<std::pair<double, xt::xarray<double>>> expected;
    for (int t = 0; t < kThreads; ++t) expected.push_back(train(static_cast<std::uint64_t>(t)));
    std::vector<std::pair<double, xt::xarray<double>>> got(kThreads);
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t)
        workers.emplace_back([&, t] { got[static_cast<std::size_t>(t)] = train(static_cast<std::uint64_t>(t)); });
    for (auto& w : workers) w.join();
    for (int t = 0; t < kThreads; ++t) {
        CHECK(got[static_cast<std::size_t>(t)].first == expected[static_cast<std::size_t>(t)].first);
        CHECK(bool(got[static_cast<std::size_t>(t)].second == expected[static_cast<std::size_t>(t)].second));
    }
}

TEST_CASE("a Var of another thread's tape is refused while that thread lives and after it exits", "[threads]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1, 2, 3});
    Var<double> theirs;
    std::atomic<int> phase{0};
    std::thread worker([&] {
        theirs = w * 3.0;
        phase = 1;
        while (phase.load() != 2) std::this_thread::yield();
    });
    while (phase.load() != 1) std::this_thread::yield();
    CHECK_THROWS_WITH(tg::sum(theirs), StartsWith("sum: an input was recorded on another thread's tape"));
    phase = 2;
    worker.join();
    CHECK_THROWS_WITH(tg::sum(theirs), StartsWith("sum: this Var was recorded on another thread's tape") &&
                                           Contains("that thread has exited"));
}

TEST_CASE("threads that come and go reuse retired tapes safely", "[threads]")
{
    std::vector<Var<double>> left_behind(8);
    for (int round = 0; round < 4; ++round) {
        std::vector<std::thread> workers;
        std::vector<double> sums(2);
        for (std::size_t t = 0; t < 2; ++t) {
            workers.emplace_back([&, t] {
                // Each thread its own parameter: recording on one leaf from several threads
                // at once is not supported (its reference count is a plain integer).
                Var<double> w = tg::parameter(xt::xarray<double>{1, 2, 3});
                Var<double> y = tg::sum(w * w);
                sums[t] = y.item();
                left_behind[static_cast<std::size_t>(round) * 2 + t] = y;
            });
        }
        for (auto& th : workers) th.join();
        CHECK(sums == std::vector<double>{14, 14});
    }
    for (const auto& v : left_behind) CHECK_THROWS_AS(v.item(), tg::Error);
}
