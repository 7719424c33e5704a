// StreamingLoader throughput on a dataset whose get() waits 1 ms per example (a disk or a
// decoder standing in), with 0, 1, 2 and 4 worker threads: examples per second.
//   build/bench/bench/bench_streaming --benchmark_repetitions=5

#include <chrono>
#include <thread>

#include <benchmark/benchmark.h>

#include "tapegrad/data.hpp"

namespace {

class Slow : public tg::data::MapDataset<float> {
public:
    std::size_t size() const override { return 256; }
    tg::data::Example<float> get(std::size_t i) const override
    {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        tg::data::Example<float> e{xt::xarray<float>::from_shape({3, 32, 32}),
                                   xt::xarray<std::int64_t>(static_cast<std::int64_t>(i % 10))};
        std::fill(e.data.begin(), e.data.end(), 0.5f);
        return e;
    }
};

void streaming_epoch(benchmark::State& state)
{
    auto data = std::make_shared<Slow>();
    const auto workers = static_cast<std::size_t>(state.range(0));
    tg::data::StreamingLoader<float> loader(data, {16, true, false, workers, 2, 1});
    std::uint64_t epoch = 0;
    std::size_t examples = 0;
    for (auto _ : state) {
        loader.set_epoch(epoch++);
        for (const auto& b : loader) {
            benchmark::DoNotOptimize(b.data.data());
            examples += b.target.size();
        }
    }
    state.counters["examples_per_s"] = benchmark::Counter(static_cast<double>(examples), benchmark::Counter::kIsRate);
}
BENCHMARK(streaming_epoch)->Arg(0)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
