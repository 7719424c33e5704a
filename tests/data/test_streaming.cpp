// tg::data::StreamingLoader over a MapDataset: the same batches with and without workers,
// bounded memory on a large dataset, errors that name the example and leave the loader
// usable.

#include <atomic>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"

using Catch::Matchers::Contains;
using tg::data::DataLoaderOptions;
using tg::data::Example;
using tg::data::MapDataset;
using tg::data::StreamingLoader;

namespace {

// Example i: data [2, 3] = i + k / 10 (k the flat position), target i % 5 as a 0-d array.
class Counting : public MapDataset<float> {
public:
    explicit Counting(std::size_t n) : n_(n) {}
    std::size_t size() const override { return n_; }
    Example<float> get(std::size_t i) const override
    {
        calls.fetch_add(1);
        if (fail_at == static_cast<long>(i)) throw std::runtime_error("disk on fire");
        xt::xarray<float> d = xt::xarray<float>::from_shape({2, 3});
        for (std::size_t k = 0; k < d.size(); ++k) d.data()[k] = static_cast<float>(i) + static_cast<float>(k) / 10;
        return {d, xt::xarray<std::int64_t>(static_cast<std::int64_t>(i % 5))};
    }
    mutable std::atomic<long> calls{0};
    std::atomic<long> fail_at{-1};

private:
    std::size_t n_;
};

std::vector<Example<float>> collect(StreamingLoader<float>& loader)
{
    std::vector<Example<float>> out;
    for (const auto& b : loader) out.push_back(b);
    return out;
}

long resident_peak_kb()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

}  // namespace

TEST_CASE("a streaming loader yields the same batches, bit for bit, with 0, 1, 2 or 3 workers", "[data][threads]")
{
    auto data = std::make_shared<Counting>(103);
    for (std::uint64_t epoch : {0u, 1u, 7u}) {
        DataLoaderOptions o{8, true, false, 0, 2, 42};
        StreamingLoader<float> serial(data, o);
        serial.set_epoch(epoch);
        const auto want = collect(serial);
        REQUIRE(want.size() == 13);  // 12 of 8 and one of 7
        CHECK(want.back().data.shape()[0] == 7);
        // The order is RandomSampler's (DataLoader's shuffle) for (seed, epoch).
        const auto order = tg::data::epoch_order(103, true, 42, epoch);
        for (std::size_t b = 0; b < want.size(); ++b) {
            for (std::size_t r = 0; r < want[b].target.size(); ++r)
                CHECK(want[b].data(r, 0, 0) == static_cast<float>(order[b * 8 + r]));
        }
        for (std::size_t workers : {1u, 2u, 3u}) {
            o.num_workers = workers;
            o.prefetch = workers == 3 ? 1 : 2;
            StreamingLoader<float> parallel(data, o);
            parallel.set_epoch(epoch);
            const auto got = collect(parallel);
            REQUIRE(got.size() == want.size());
            for (std::size_t b = 0; b < got.size(); ++b) {
                CHECK(got[b].data.shape() == want[b].data.shape());
                CHECK(got[b].target.shape() == want[b].target.shape());
                CHECK(got[b].data == want[b].data);
                CHECK(got[b].target == want[b].target);
            }
        }
    }
}

TEST_CASE("a streaming loader stacks data and targets, drops a short last batch on request", "[data]")
{
    auto data = std::make_shared<Counting>(10);
    StreamingLoader<float> loader(data, {4, false, true});
    REQUIRE(loader.num_batches() == 2);
    const auto batches = collect(loader);
    REQUIRE(batches.size() == 2);
    CHECK(batches[1].data.shape() == std::vector<std::size_t>{4, 2, 3});
    CHECK(batches[1].target == xt::xarray<std::int64_t>{4, 0, 1, 2});
    CHECK(batches[1].data(2, 1, 2) == 6.5f);
    // Without shuffle or sampler: in order.
    StreamingLoader<float> all(data, {3});
    const auto b = collect(all);
    REQUIRE(b.size() == 4);
    CHECK(b[3].data.shape()[0] == 1);
    CHECK(b[3].data(0, 0, 0) == 9.0f);
}

TEST_CASE("a transform given to data::map runs on every example, on the workers too", "[data][threads]")
{
    auto data = tg::data::map<float>(std::make_shared<Counting>(20), [](Example<float> e) {
        e.data = e.data * 2.0f;
        e.target = e.target + 100;
        return e;
    });
    StreamingLoader<float> loader(data, {5, false, false, 2});
    std::size_t seen = 0;
    for (const auto& b : loader) {
        for (std::size_t r = 0; r < 5; ++r) {
            const std::size_t i = seen++;
            CHECK(b.data(r, 0, 1) == 2.0f * (static_cast<float>(i) + 0.1f));
            CHECK(b.target(r) == static_cast<std::int64_t>(100 + i % 5));
        }
    }
    CHECK(seen == 20);
    CHECK_THROWS_WITH(tg::data::map<float>(nullptr, [](Example<float> e) { return e; }),
                      Contains("data::map: the dataset is null"));
    CHECK_THROWS_WITH(tg::data::map<float>(std::make_shared<Counting>(1), nullptr),
                      Contains("data::map: the transform is empty"));
}

TEST_CASE("a failing example reaches the loop as a tg::Error naming its index, and the loader stays usable",
          "[data][threads]")
{
    auto data = std::make_shared<Counting>(40);
    for (std::size_t workers : {0u, 2u}) {
        data->fail_at = 13;
        StreamingLoader<float> loader(data, {4, false, false, workers});
        std::size_t ok = 0, failed = 0;
        for (auto it = loader.begin(); it != loader.end(); ++it) {
            try {
                const Example<float>& b = *it;
                CHECK(b.data.shape()[0] == 4);
                ++ok;
            } catch (const tg::Error& e) {
                ++failed;
                CHECK(it.index() == 3);
                CHECK_THAT(e.what(), Contains("StreamingLoader: loading example 13 (batch 3) failed") &&
                                         Contains("disk on fire"));
            }
        }
        CHECK(ok == 9);
        CHECK(failed == 1);
        // A range-for stops at the error, and the next epoch runs as if nothing happened.
        CHECK_THROWS_AS(collect(loader), tg::Error);
        data->fail_at = -1;
        CHECK(collect(loader).size() == 10);
    }
}

TEST_CASE("examples of different shapes in one batch are refused, naming both", "[data]")
{
    struct Ragged : MapDataset<double> {
        std::size_t size() const override { return 6; }
        Example<double> get(std::size_t i) const override
        {
            return {xt::xarray<double>::from_shape({i == 4 ? 3u : 2u}), xt::xarray<std::int64_t>(0)};
        }
    };
    StreamingLoader<double> loader(std::make_shared<Ragged>(), {3, false, false, 1});
    auto it = loader.begin();
    CHECK((*it).data.shape()[0] == 3);
    ++it;
    CHECK_THROWS_WITH(*it, Contains("StreamingLoader: example 4 has data [3] and target []") &&
                               Contains("example 3 has data [2]") && Contains("(batch 1)"));
}

TEST_CASE("a streaming loader refuses bad options and bad samplers", "[data]")
{
    auto data = std::make_shared<Counting>(5);
    CHECK_THROWS_WITH(StreamingLoader<float>(nullptr), Contains("StreamingLoader: the dataset is null"));
    CHECK_THROWS_WITH(StreamingLoader<float>(data, {0}), Contains("batch_size must be positive"));
    CHECK_THROWS_WITH(StreamingLoader<float>(data, {2, false, false, 2, 0}),
                      Contains("prefetch must be positive with 2 workers"));
    struct Wild : tg::data::Sampler {
        std::vector<std::size_t> epoch_indices(std::size_t, std::uint64_t) override { return {0, 9}; }
    };
    StreamingLoader<float> wild(data, {2}, std::make_shared<Wild>());
    CHECK_THROWS_WITH(wild.begin(), Contains("sampler gave index 9 at position 1, out of range for a "
                                             "dataset of 5 examples"));
    StreamingLoader<float> fine(data, {2});
    auto end = fine.end();
    CHECK_THROWS_WITH(*end, Contains("past the end"));
}

TEST_CASE("a custom sampler chooses the examples and their order, and an empty dataset has no batches", "[data]")
{
    struct Evens : tg::data::Sampler {
        std::vector<std::size_t> epoch_indices(std::size_t n, std::uint64_t epoch) override
        {
            std::vector<std::size_t> out;
            for (std::size_t i = epoch % 2; i < n; i += 2) out.push_back(i);
            return out;
        }
    };
    auto data = std::make_shared<Counting>(9);
    StreamingLoader<float> loader(data, {2, false, false, 2}, std::make_shared<Evens>());
    loader.set_epoch(1);
    const auto b = collect(loader);
    REQUIRE(b.size() == 2);
    CHECK(b[1].target == xt::xarray<std::int64_t>{0, 2});  // examples 5 and 7
    StreamingLoader<float> none(std::make_shared<Counting>(0), {4, true, false, 2});
    CHECK(none.num_batches() == 0);
    CHECK(none.begin() == none.end());
}

TEST_CASE("workers load ahead of the loop, at most prefetch batches each", "[data][threads]")
{
    auto data = std::make_shared<Counting>(100);
    StreamingLoader<float> loader(data, {5, false, false, 2, 1});
    auto it = loader.begin();
    CHECK((*it).data(0, 0, 0) == 0.0f);
    // While batch 0 is held, the two workers fill their window: batches 0 and 1 (prefetch 1
    // each, counted from the batch being consumed), and no further.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (data->calls.load() < 10 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(data->calls.load() == 10);
}

TEST_CASE("a million examples of 3x64x64 stream through in bounded memory", "[data]")
{
    // 10^6 x 12288 floats is 49 GB; the loader holds a few batches of 3 MB at a time.
    struct Big : MapDataset<float> {
        std::size_t size() const override { return 1000000; }
        Example<float> get(std::size_t i) const override
        {
            Example<float> e{xt::xarray<float>::from_shape({3, 64, 64}),
                             xt::xarray<std::int64_t>(static_cast<std::int64_t>(i))};
            std::fill(e.data.begin(), e.data.end(), static_cast<float>(i % 251));
            return e;
        }
    };
    StreamingLoader<float> loader(std::make_shared<Big>(), {64, true, false, 2, 2, 3});
    std::size_t examples = 0, batches = 0, in_place = 0;
    for (const auto& b : loader) {
        examples += b.target.size();
        if (b.target(0) == static_cast<std::int64_t>(batches * 64)) ++in_place;
        REQUIRE(b.data(0, 2, 63, 63) == static_cast<float>(b.target(0) % 251));
        ++batches;
    }
    CHECK(examples == 1000000);
    CHECK(batches == 15625);
    CHECK(in_place < 10);  // shuffled
    const long peak_kb = resident_peak_kb();
    INFO("peak resident memory " << peak_kb / 1024 << " MB");
    CHECK(peak_kb > 0);
    CHECK(peak_kb < 200 * 1024);
}
