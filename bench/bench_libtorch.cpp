// libtorch's side of the side-by-side benchmarks: the workloads of bench_tapegrad.cpp,
// written the way a libtorch user would (nn::Linear, torch::optim::SGD, autograd).
// Threads: TAPEGRAD_BENCH_TORCH_THREADS sets torch's intra-op pool (default 1, its best
// setting on this 2-core machine while OpenBLAS keeps its own threads).

#include <cstdlib>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "workloads.hpp"

namespace {

torch::Tensor from(const std::vector<float>& v, std::vector<std::int64_t> shape)
{
    return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

void W1_seed_step_libtorch(benchmark::State& state)
{
    const auto init = bench::seed_weights();
    torch::nn::Linear l1(2, 3), l2(3, 2);
    {
        torch::NoGradGuard g;
        // nn::Linear stores weight as [out, in]; ours is [in, out].
        l1->weight.copy_(from(init.w1, {2, 3}).t());
        l1->bias.copy_(from(init.b1, {3}));
        l2->weight.copy_(from(init.w2, {3, 2}).t());
        l2->bias.copy_(from(init.b2, {2}));
    }
    std::vector<torch::Tensor> rows, targets;
    for (int i = 0; i < 10; ++i) {
        rows.push_back(torch::tensor({bench::seed_rows[i][0], bench::seed_rows[i][1]}).reshape({1, 2}));
        auto t = torch::zeros({1, 2});
        t[0][bench::seed_classes[i]] = 1.0f;
        targets.push_back(t);
    }
    std::vector<torch::Tensor> params = l1->parameters();
    for (auto& p : l2->parameters()) params.push_back(p);
    torch::optim::SGD opt(params, torch::optim::SGDOptions(0.5));
    int r = 0;
    for (auto _ : state) {
        opt.zero_grad();
        auto y = torch::sigmoid(l2->forward(torch::sigmoid(l1->forward(rows[r]))));
        auto loss = torch::mse_loss(y, targets[r]);
        loss.backward();
        opt.step();
        benchmark::DoNotOptimize(loss.item<float>());
        r = (r + 1) % 10;
    }
}
BENCHMARK(W1_seed_step_libtorch);

void W3_chain_libtorch(benchmark::State& state)
{
    auto x = (torch::ones({state.range(0)}) * 0.5).requires_grad_(true);
    for (auto _ : state) {
        auto v = x;
        for (int i = 0; i < bench::chain_length; ++i) v = i % 2 == 0 ? torch::sigmoid(v) : v * 1.5;
        auto loss = v.sum();
        loss.backward();
        x.mutable_grad().reset();
    }
    state.counters["ops"] = bench::chain_length;
}
BENCHMARK(W3_chain_libtorch)->Arg(1)->Arg(1000);

void W2_mlp_libtorch(benchmark::State& state)
{
    const auto& s = bench::mlp_sizes;
    std::vector<torch::nn::Linear> layers;
    for (std::size_t l = 0; l + 1 < s.size(); ++l) {
        torch::nn::Linear lin(s[l], s[l + 1]);
        const float bound = 1.0f / std::sqrt(static_cast<float>(s[l]));
        torch::NoGradGuard g;
        lin->weight.copy_(from(bench::uniform_values(s[l] * s[l + 1], -bound, bound, 10 + l), {s[l], s[l + 1]}).t());
        lin->bias.copy_(from(bench::uniform_values(s[l + 1], -bound, bound, 20 + l), {s[l + 1]}));
        layers.push_back(lin);
    }
    auto x = from(bench::uniform_values(bench::mlp_batch * s[0], 0.0f, 1.0f, 3), {bench::mlp_batch, s[0]});
    const auto lv = bench::labels(bench::mlp_batch, s.back(), 4);
    auto labels = torch::from_blob(const_cast<std::int64_t*>(lv.data()), {bench::mlp_batch}, torch::kInt64).clone();
    for (auto _ : state) {
        auto h = x;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            h = layers[l]->forward(h);
            if (l + 1 < layers.size()) h = torch::relu(h);
        }
        auto loss = torch::nn::functional::cross_entropy(h, labels);
        loss.backward();
        for (auto& lin : layers) {
            for (auto& p : lin->parameters()) p.mutable_grad().reset();
        }
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W2_mlp_libtorch)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv)
{
    const char* threads = std::getenv("TAPEGRAD_BENCH_TORCH_THREADS");
    torch::set_num_threads(threads != nullptr ? std::atoi(threads) : 1);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
