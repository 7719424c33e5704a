// libtorch's side of the side-by-side benchmarks: the workloads of bench_tapegrad.cpp,
// written the way a libtorch user would (nn::Linear, torch::optim::SGD, autograd).
// Threads: TAPEGRAD_BENCH_TORCH_THREADS sets torch's intra-op pool (default 1, its best
// setting on this 2-core machine while OpenBLAS keeps its own threads).

#include <cmath>
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

// The W2 MLP with bench_tapegrad.cpp's weights (ours are [in, out], nn::Linear's [out, in]),
// its batch and labels.
struct Mlp {
    std::vector<torch::nn::Linear> layers;
    torch::Tensor x, labels;
    Mlp()
    {
        const auto& s = bench::mlp_sizes;
        for (std::size_t l = 0; l + 1 < s.size(); ++l) {
            torch::nn::Linear lin(s[l], s[l + 1]);
            const float bound = 1.0f / std::sqrt(static_cast<float>(s[l]));
            torch::NoGradGuard g;
            lin->weight.copy_(
                from(bench::uniform_values(s[l] * s[l + 1], -bound, bound, 10 + l), {s[l], s[l + 1]}).t());
            lin->bias.copy_(from(bench::uniform_values(s[l + 1], -bound, bound, 20 + l), {s[l + 1]}));
            layers.push_back(lin);
        }
        x = from(bench::uniform_values(bench::mlp_batch * s[0], 0.0f, 1.0f, 3), {bench::mlp_batch, s[0]});
        const auto lv = bench::labels(bench::mlp_batch, s.back(), 4);
        labels = torch::from_blob(const_cast<std::int64_t*>(lv.data()), {bench::mlp_batch}, torch::kInt64).clone();
    }
    torch::Tensor loss()
    {
        auto h = x;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            h = layers[l]->forward(h);
            if (l + 1 < layers.size()) h = torch::relu(h);
        }
        return torch::nn::functional::cross_entropy(h, labels);
    }
};

void W2_mlp_libtorch(benchmark::State& state)
{
    Mlp mlp;
    for (auto _ : state) {
        auto loss = mlp.loss();
        loss.backward();
        for (auto& lin : mlp.layers) {
            for (auto& p : lin->parameters()) p.mutable_grad().reset();
        }
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W2_mlp_libtorch)->Unit(benchmark::kMicrosecond);

// H v for the loss with respect to params: the gradient recorded (create_graph), then
// the gradient of sum_k <g_k, v_k>.
std::vector<torch::Tensor> hessian_vector_product(const torch::Tensor& loss, const std::vector<torch::Tensor>& params,
                                                  const std::vector<torch::Tensor>& v)
{
    const auto g = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/true, /*create_graph=*/true);
    torch::Tensor dot = (g[0] * v[0]).sum();
    for (std::size_t k = 1; k < g.size(); ++k) dot = dot + (g[k] * v[k]).sum();
    return torch::autograd::grad({dot}, params);
}

// The directions of bench_tapegrad.cpp: uniform [-1, 1) from seeds 40, 41, ... in the
// parameters' order and layout (ours [in, out], transposed for nn::Linear's [out, in]).
std::vector<torch::Tensor> directions(const std::vector<std::vector<std::int64_t>>& shapes)
{
    std::vector<torch::Tensor> v;
    unsigned seed = 40;
    for (const auto& s : shapes) {
        std::int64_t n = 1;
        for (auto d : s) n *= d;
        auto t = from(bench::uniform_values(static_cast<std::size_t>(n), -1.0f, 1.0f, seed++), s);
        v.push_back(s.size() == 2 ? t.t().contiguous() : t);
    }
    return v;
}

void W4_hvp_mlp_libtorch(benchmark::State& state)
{
    Mlp mlp;
    std::vector<torch::Tensor> params;
    std::vector<std::vector<std::int64_t>> shapes;
    const auto& s = bench::mlp_sizes;
    for (std::size_t l = 0; l < mlp.layers.size(); ++l) {
        params.push_back(mlp.layers[l]->weight);
        params.push_back(mlp.layers[l]->bias);
        shapes.push_back({s[l], s[l + 1]});
        shapes.push_back({s[l + 1]});
    }
    const auto v = directions(shapes);
    for (auto _ : state) {
        const auto hv = hessian_vector_product(mlp.loss(), params, v);
        benchmark::DoNotOptimize(hv[0].data_ptr());
    }
}
BENCHMARK(W4_hvp_mlp_libtorch)->Unit(benchmark::kMicrosecond);

void W4_hvp_seed_libtorch(benchmark::State& state)
{
    const auto init = bench::seed_weights();
    torch::nn::Linear l1(2, 3), l2(3, 2);
    {
        torch::NoGradGuard g;
        l1->weight.copy_(from(init.w1, {2, 3}).t());
        l1->bias.copy_(from(init.b1, {3}));
        l2->weight.copy_(from(init.w2, {3, 2}).t());
        l2->bias.copy_(from(init.b2, {2}));
    }
    const std::vector<torch::Tensor> params{l1->weight, l1->bias, l2->weight, l2->bias};
    const auto v = directions({{2, 3}, {3}, {3, 2}, {2}});
    auto row = torch::tensor({bench::seed_rows[0][0], bench::seed_rows[0][1]}).reshape({1, 2});
    auto target = torch::tensor({1.0f, 0.0f}).reshape({1, 2});
    for (auto _ : state) {
        auto y = torch::sigmoid(l2->forward(torch::sigmoid(l1->forward(row))));
        const auto hv = hessian_vector_product(torch::mse_loss(y, target), params, v);
        benchmark::DoNotOptimize(hv[0].data_ptr());
    }
}
BENCHMARK(W4_hvp_seed_libtorch)->Unit(benchmark::kMicrosecond);

void W5_bmm_libtorch(benchmark::State& state)
{
    const auto b = state.range(0), m = state.range(1), k = state.range(2), n = state.range(3);
    auto x = from(bench::uniform_values(static_cast<std::size_t>(b * m * k), -1.0f, 1.0f, 50), {b, m, k})
                 .requires_grad_(true);
    auto y = from(bench::uniform_values(static_cast<std::size_t>(b * k * n), -1.0f, 1.0f, 51), {b, k, n})
                 .requires_grad_(true);
    for (auto _ : state) {
        auto loss = torch::matmul(x, y).sum();
        loss.backward();
        x.mutable_grad().reset();
        y.mutable_grad().reset();
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W5_bmm_libtorch)->Args({8, 64, 128, 64})->Args({32, 16, 16, 16})->Unit(benchmark::kMicrosecond);

// W6: the same self-attention block; torch's chunk and transpose are views.
void W6_attention_libtorch(benchmark::State& state)
{
    const std::int64_t b = 8, l = 64, d = 64;
    auto x = from(bench::uniform_values(static_cast<std::size_t>(b * l * 3 * d), -1.0f, 1.0f, 60), {b, l, 3 * d})
                 .requires_grad_(true);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    for (auto _ : state) {
        auto qkv = x.chunk(3, -1);
        auto weights = torch::softmax(torch::matmul(qkv[0], qkv[1].transpose(1, 2)) * scale, -1);
        auto loss = torch::matmul(weights, qkv[2]).sum();
        loss.backward();
        x.mutable_grad().reset();
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W6_attention_libtorch)->Unit(benchmark::kMicrosecond);

// W7: the same conv2d forward + backward (oneDNN through ATen), grad_out ones.
void W7_conv2d_libtorch(benchmark::State& state)
{
    const auto n = state.range(0), c = state.range(1), hw = state.range(2), o = state.range(3);
    const bool input_grad = c > 1;
    auto x = from(bench::uniform_values(static_cast<std::size_t>(n * c * hw * hw), -1.0f, 1.0f, 70), {n, c, hw, hw})
                 .requires_grad_(input_grad);
    auto w = from(bench::uniform_values(static_cast<std::size_t>(o * c * 9), -0.2f, 0.2f, 71), {o, c, 3, 3})
                 .requires_grad_(true);
    const auto seed = torch::ones({n, o, hw, hw});
    for (auto _ : state) {
        auto y = torch::conv2d(x, w, {}, 1, 1);
        y.backward(seed);
        if (input_grad) x.mutable_grad().reset();
        w.mutable_grad().reset();
        benchmark::DoNotOptimize(y.data_ptr());
    }
}
BENCHMARK(W7_conv2d_libtorch)
    ->Args({128, 1, 28, 32})
    ->Args({128, 32, 14, 64})
    ->Args({64, 64, 56, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// W8: the same recurrent layers (torch::nn::LSTM, GRU), loss = sum of the outputs.
void W8_recurrent_libtorch(benchmark::State& state)
{
    const auto kind = state.range(0), in = state.range(1), hidden = state.range(2), n = state.range(3),
               steps = state.range(4), layers = state.range(5);
    torch::nn::LSTM lstm(torch::nn::LSTMOptions(in, hidden).num_layers(layers));
    torch::nn::GRU gru(torch::nn::GRUOptions(in, hidden).num_layers(layers));
    const auto x =
        from(bench::uniform_values(static_cast<std::size_t>(steps * n * in), -1.0f, 1.0f, 81), {steps, n, in});
    for (auto _ : state) {
        auto y = kind == 0 ? std::get<0>(lstm->forward(x)) : std::get<0>(gru->forward(x));
        auto loss = y.sum();
        loss.backward();
        for (auto& p : kind == 0 ? lstm->parameters() : gru->parameters()) p.mutable_grad().reset();
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W8_recurrent_libtorch)
    ->Args({0, 32, 64, 8, 50, 1})
    ->Args({0, 64, 256, 32, 64, 2})
    ->Args({1, 64, 256, 32, 64, 2})
    ->Unit(benchmark::kMillisecond);

// W8 packed: the same bidirectional LSTM over the same packed lengths.
void W8_packed_bilstm_libtorch(benchmark::State& state)
{
    const std::int64_t in = 32, hidden = 64, n = 8, steps = 50;
    torch::nn::LSTM lstm(torch::nn::LSTMOptions(in, hidden).bidirectional(true));
    std::vector<std::int64_t> lengths;
    for (std::int64_t b = 0; b < n; ++b) lengths.push_back(steps - 5 * b);
    const auto lengths_t = torch::tensor(lengths);
    const auto x =
        from(bench::uniform_values(static_cast<std::size_t>(steps * n * in), -1.0f, 1.0f, 83), {steps, n, in});
    for (auto _ : state) {
        auto packed = torch::nn::utils::rnn::pack_padded_sequence(x, lengths_t);
        auto out = std::get<0>(lstm->forward_with_packed_input(packed));
        auto loss = out.data().sum();
        loss.backward();
        for (auto& p : lstm->parameters()) p.mutable_grad().reset();
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W8_packed_bilstm_libtorch)->Unit(benchmark::kMillisecond);

// W9: the same Transformer encoder layer (dropout 0), forward + backward.
void W9_transformer_layer_libtorch(benchmark::State& state)
{
    const std::int64_t d = 128, l = 64, n = 16;
    torch::nn::TransformerEncoderLayer layer(
        torch::nn::TransformerEncoderLayerOptions(d, 4).dim_feedforward(512).dropout(0.0));
    auto x = from(bench::uniform_values(static_cast<std::size_t>(l * n * d), -1.0f, 1.0f, 91), {l, n, d})
                 .requires_grad_(true);
    for (auto _ : state) {
        auto loss = layer->forward(x).sum();
        loss.backward();
        for (auto& p : layer->parameters()) p.mutable_grad().reset();
        x.mutable_grad().reset();
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W9_transformer_layer_libtorch)->Unit(benchmark::kMillisecond);

// W9: the same MultiheadAttention, need_weights = false.
void W9_multihead_attention_libtorch(benchmark::State& state)
{
    const std::int64_t d = 128, l = 64, n = 16;
    torch::nn::MultiheadAttention mha(torch::nn::MultiheadAttentionOptions(d, 4));
    auto x = from(bench::uniform_values(static_cast<std::size_t>(l * n * d), -1.0f, 1.0f, 91), {l, n, d})
                 .requires_grad_(true);
    for (auto _ : state) {
        auto loss = std::get<0>(mha->forward(x, x, x, {}, false)).sum();
        loss.backward();
        for (auto& p : mha->parameters()) p.mutable_grad().reset();
        x.mutable_grad().reset();
        benchmark::DoNotOptimize(loss.item<float>());
    }
}
BENCHMARK(W9_multihead_attention_libtorch)->Unit(benchmark::kMillisecond);

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
