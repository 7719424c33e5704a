// tapegrad's side of the side-by-side benchmarks (bench_libtorch.cpp runs the same
// workloads against libtorch), plus a hand-written C++ backprop of the seed network as
// the floor that no tape can beat.
//
//   W1  one online training step of the tutorial's 2-3-2 sigmoid network (MSE, SGD 0.5)
//   W3  a chain of 1000 elementwise ops, forward + backward, on 1 and 1000 elements
//   W2  MLP 784-256-256-10, batch 128, forward + backward
//   W4  Hessian-vector products (double backward): of the W2 MLP's loss and of the W1 seed
//       network's loss, with respect to all their parameters
//   W5  batched matmul on attention shapes, forward + backward
//   W6  a self-attention block, forward + backward; a variant without the copying shape ops
//       (chunk, transpose) measures what those copies cost
//   W8  recurrent layers (LSTM, GRU) over padded batches, forward + backward; and a
//       bidirectional LSTM over a packed batch of sequences of different lengths
//   W9  a Transformer encoder layer and MultiheadAttention alone, forward + backward

#include <cmath>
#include <cstdlib>

#include <benchmark/benchmark.h>

#include <xtensor/xadapt.hpp>

#include <tapegrad/tapegrad.hpp>

#include "workloads.hpp"

namespace {

using V = tg::Var<float>;

xt::xarray<float> from(const std::vector<float>& v, std::vector<std::size_t> shape)
{
    xt::xarray<float> a(shape);
    std::copy(v.begin(), v.end(), a.begin());
    return a;
}

void sgd_step(std::initializer_list<V*> params, float lr)
{
    for (V* p : params) {
        auto& value = p->mutable_value();
        const auto& g = p->grad();
        float* pv = value.data();
        const float* pg = g.data();
        for (std::size_t i = 0; i < value.size(); ++i) pv[i] -= lr * pg[i];
        p->zero_grad();
    }
}

void W1_seed_step_tapegrad(benchmark::State& state)
{
    const auto init = bench::seed_weights();
    V w1 = tg::parameter(from(init.w1, {2, 3})), b1 = tg::parameter(from(init.b1, {3}));
    V w2 = tg::parameter(from(init.w2, {3, 2})), b2 = tg::parameter(from(init.b2, {2}));
    std::vector<V> rows, targets;
    for (int i = 0; i < 10; ++i) {
        rows.push_back(tg::constant(xt::xarray<float>{{bench::seed_rows[i][0], bench::seed_rows[i][1]}}));
        xt::xarray<float> t = xt::zeros<float>({1, 2});
        t(0, bench::seed_classes[i]) = 1.0f;
        targets.push_back(tg::constant(t));
    }
    int r = 0;
    for (auto _ : state) {
        V h = tg::sigmoid(tg::linear(rows[r], w1, b1));
        V y = tg::sigmoid(tg::linear(h, w2, b2));
        V loss = tg::mse_loss(y, targets[r]);
        loss.backward();
        sgd_step({&w1, &b1, &w2, &b2}, 0.5f);
        benchmark::DoNotOptimize(loss.item());
        r = (r + 1) % 10;
    }
}
BENCHMARK(W1_seed_step_tapegrad);

// The same step with every derivative written out by hand on plain arrays.
void W1_seed_step_handwritten(benchmark::State& state)
{
    const auto init = bench::seed_weights();
    float w1[2][3], b1[3], w2[3][2], b2[2];
    std::copy(init.w1.begin(), init.w1.end(), &w1[0][0]);
    std::copy(init.b1.begin(), init.b1.end(), b1);
    std::copy(init.w2.begin(), init.w2.end(), &w2[0][0]);
    std::copy(init.b2.begin(), init.b2.end(), b2);
    const float lr = 0.5f;
    int r = 0;
    for (auto _ : state) {
        const float* x = bench::seed_rows[r].data();
        const float t[2] = {bench::seed_classes[r] == 0 ? 1.0f : 0.0f, bench::seed_classes[r] == 1 ? 1.0f : 0.0f};
        float h[3], y[2];
        for (int j = 0; j < 3; ++j) h[j] = 1.0f / (1.0f + std::exp(-(b1[j] + x[0] * w1[0][j] + x[1] * w1[1][j])));
        for (int j = 0; j < 2; ++j)
            y[j] = 1.0f / (1.0f + std::exp(-(b2[j] + h[0] * w2[0][j] + h[1] * w2[1][j] + h[2] * w2[2][j])));
        const float loss = ((y[0] - t[0]) * (y[0] - t[0]) + (y[1] - t[1]) * (y[1] - t[1])) / 2.0f;
        float dy[2], dh[3];
        for (int j = 0; j < 2; ++j) dy[j] = (y[j] - t[j]) * y[j] * (1.0f - y[j]);  // d(mse)/dz2 without the 2/n
        for (int i = 0; i < 3; ++i) dh[i] = (w2[i][0] * dy[0] + w2[i][1] * dy[1]) * h[i] * (1.0f - h[i]);
        const float k = lr * 2.0f / 2.0f;  // mse's 2/n with n = 2 outputs
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 2; ++j) w2[i][j] -= k * h[i] * dy[j];
        for (int j = 0; j < 2; ++j) b2[j] -= k * dy[j];
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j) w1[i][j] -= k * x[i] * dh[j];
        for (int j = 0; j < 3; ++j) b1[j] -= k * dh[j];
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
        r = (r + 1) % 10;
    }
}
BENCHMARK(W1_seed_step_handwritten);

// W3: v = sigmoid(v) and v = v * 1.5 alternately, 1000 ops, then sum and backward.
void W3_chain_tapegrad(benchmark::State& state)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    V x = tg::parameter(xt::xarray<float>(xt::ones<float>({n}) * 0.5f));
    for (auto _ : state) {
        V v = x;
        for (int i = 0; i < bench::chain_length; ++i) v = i % 2 == 0 ? tg::sigmoid(v) : v * 1.5f;
        V loss = tg::sum(v);
        loss.backward();
        x.zero_grad();
    }
    state.counters["ops"] = bench::chain_length;
}
BENCHMARK(W3_chain_tapegrad)->Arg(1)->Arg(1000);

// The W2 MLP: weights, a batch and its labels.
struct Mlp {
    std::vector<V> ws, bs;
    V x;
    xt::xarray<std::int64_t> labels;
    Mlp()
    {
        const auto& s = bench::mlp_sizes;
        for (std::size_t l = 0; l + 1 < s.size(); ++l) {
            const float bound = 1.0f / std::sqrt(static_cast<float>(s[l]));
            ws.push_back(tg::parameter(from(bench::uniform_values(s[l] * s[l + 1], -bound, bound, 10 + l),
                                            {std::size_t(s[l]), std::size_t(s[l + 1])})));
            bs.push_back(
                tg::parameter(from(bench::uniform_values(s[l + 1], -bound, bound, 20 + l), {std::size_t(s[l + 1])})));
        }
        x = tg::constant(from(bench::uniform_values(bench::mlp_batch * s[0], 0.0f, 1.0f, 3),
                              {std::size_t(bench::mlp_batch), std::size_t(s[0])}));
        const auto lv = bench::labels(bench::mlp_batch, s.back(), 4);
        labels = xt::adapt(lv, {lv.size()});
    }
    V loss() const
    {
        V h = x;
        for (std::size_t l = 0; l < ws.size(); ++l) {
            h = tg::linear(h, ws[l], bs[l]);
            if (l + 1 < ws.size()) h = tg::relu(h);
        }
        return tg::cross_entropy(h, labels);
    }
    std::vector<V> parameters() const
    {
        std::vector<V> p;
        for (std::size_t l = 0; l < ws.size(); ++l) {
            p.push_back(ws[l]);
            p.push_back(bs[l]);
        }
        return p;
    }
};

// W2: MLP 784-256-256-10 with ReLU, cross-entropy, batch 128, forward + backward.
void W2_mlp_tapegrad(benchmark::State& state)
{
    Mlp mlp;
    for (auto _ : state) {
        V loss = mlp.loss();
        loss.backward();
        for (auto& w : mlp.ws) w.zero_grad();
        for (auto& b : mlp.bs) b.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W2_mlp_tapegrad)->Unit(benchmark::kMicrosecond);

// H v for the loss L(params): g = dL/dparams recorded (create_graph), then the gradient of
// sum_k <g_k, v_k>, as torch::autograd::grad does it.
std::vector<V> hessian_vector_product(const V& loss, const std::vector<V>& params, const std::vector<V>& v)
{
    const std::vector<V> g = tg::grad<float>({loss}, params, {}, {true, false, false});
    V dot = tg::sum(g[0] * v[0]);
    for (std::size_t k = 1; k < g.size(); ++k) dot = dot + tg::sum(g[k] * v[k]);
    return tg::grad<float>({dot}, params);
}

std::vector<V> directions(const std::vector<V>& params)
{
    std::vector<V> v;
    unsigned seed = 40;
    for (const auto& p : params) {
        const auto& s = p.shape();
        v.push_back(tg::constant(from(bench::uniform_values(p.size(), -1.0f, 1.0f, seed++), {s.begin(), s.end()})));
    }
    return v;
}

// W4: Hessian-vector product of the W2 MLP's loss with respect to all its parameters.
void W4_hvp_mlp_tapegrad(benchmark::State& state)
{
    Mlp mlp;
    const std::vector<V> params = mlp.parameters();
    const std::vector<V> v = directions(params);
    for (auto _ : state) {
        const std::vector<V> hv = hessian_vector_product(mlp.loss(), params, v);
        benchmark::DoNotOptimize(hv[0].value().data());
    }
}
BENCHMARK(W4_hvp_mlp_tapegrad)->Unit(benchmark::kMicrosecond);

// W4: Hessian-vector product of the seed network's loss on one row (W1's forward).
void W4_hvp_seed_tapegrad(benchmark::State& state)
{
    const auto init = bench::seed_weights();
    const std::vector<V> params{tg::parameter(from(init.w1, {2, 3})), tg::parameter(from(init.b1, {3})),
                                tg::parameter(from(init.w2, {3, 2})), tg::parameter(from(init.b2, {2}))};
    const std::vector<V> v = directions(params);
    V row = tg::constant(xt::xarray<float>{{bench::seed_rows[0][0], bench::seed_rows[0][1]}});
    V target = tg::constant(xt::xarray<float>{{1.0f, 0.0f}});
    for (auto _ : state) {
        V y = tg::sigmoid(tg::linear(tg::sigmoid(tg::linear(row, params[0], params[1])), params[2], params[3]));
        const std::vector<V> hv = hessian_vector_product(tg::mse_loss(y, target), params, v);
        benchmark::DoNotOptimize(hv[0].value().data());
    }
}
BENCHMARK(W4_hvp_seed_tapegrad)->Unit(benchmark::kMicrosecond);

// W5: a batched matmul [b, m, k] @ [b, k, n], forward and backward (attention shapes).
void W5_bmm_tapegrad(benchmark::State& state)
{
    const auto b = static_cast<std::size_t>(state.range(0)), m = static_cast<std::size_t>(state.range(1)),
               k = static_cast<std::size_t>(state.range(2)), n = static_cast<std::size_t>(state.range(3));
    V x = tg::parameter(from(bench::uniform_values(b * m * k, -1.0f, 1.0f, 50), {b, m, k}));
    V y = tg::parameter(from(bench::uniform_values(b * k * n, -1.0f, 1.0f, 51), {b, k, n}));
    for (auto _ : state) {
        V loss = tg::sum(tg::matmul(x, y));
        loss.backward();
        x.zero_grad();
        y.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W5_bmm_tapegrad)->Args({8, 64, 128, 64})->Args({32, 16, 16, 16})->Unit(benchmark::kMicrosecond);

// W6: softmax(q k^T / sqrt(d)) v with q, k, v cut from one [b, l, 3d] input by chunk and
// k transposed by transpose(k, 1, 2), as a user would write it; both shape ops copy.
void W6_attention_tapegrad(benchmark::State& state)
{
    const std::size_t b = 8, l = 64, d = 64;
    V x = tg::parameter(from(bench::uniform_values(b * l * 3 * d, -1.0f, 1.0f, 60), {b, l, 3 * d}));
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (auto _ : state) {
        const std::vector<V> qkv = tg::chunk(x, 3, -1);
        const V weights = tg::softmax(tg::matmul(qkv[0], tg::transpose(qkv[1], 1, 2)) * scale, -1);
        V loss = tg::sum(tg::matmul(weights, qkv[2]));
        loss.backward();
        x.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W6_attention_tapegrad)->Unit(benchmark::kMicrosecond);

// The same arithmetic with no copying shape op: q, k, v are separate inputs and k^T is
// folded into the gemm. The difference to W6_attention_tapegrad is the cost of the copies.
void W6_attention_nocopy_tapegrad(benchmark::State& state)
{
    const std::size_t b = 8, l = 64, d = 64;
    V q = tg::parameter(from(bench::uniform_values(b * l * d, -1.0f, 1.0f, 61), {b, l, d}));
    V k = tg::parameter(from(bench::uniform_values(b * l * d, -1.0f, 1.0f, 62), {b, l, d}));
    V v = tg::parameter(from(bench::uniform_values(b * l * d, -1.0f, 1.0f, 63), {b, l, d}));
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (auto _ : state) {
        const V weights = tg::softmax(tg::matmul(q, k, false, true) * scale, -1);
        V loss = tg::sum(tg::matmul(weights, v));
        loss.backward();
        q.zero_grad();
        k.zero_grad();
        v.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W6_attention_nocopy_tapegrad)->Unit(benchmark::kMicrosecond);

// W7: conv2d forward + backward (3x3, padding 1, no bias) on the main job's two layers and
// a ResNet block's, float; grad_out is a fixed array of ones. Threads: TAPEGRAD_BENCH_THREADS
// (default 1) for BLAS and oneDNN alike, while it runs; the benchmarks after it get the
// library's default count back.
void W7_conv2d_tapegrad(benchmark::State& state)
{
    const char* threads = std::getenv("TAPEGRAD_BENCH_THREADS");
    tg::set_num_threads(threads != nullptr ? std::atoi(threads) : 1);
    const auto n = static_cast<std::size_t>(state.range(0)), c = static_cast<std::size_t>(state.range(1)),
               hw = static_cast<std::size_t>(state.range(2)), o = static_cast<std::size_t>(state.range(3));
    const bool input_grad = c > 1;  // the first layer's input is data
    const xt::xarray<float> xv = from(bench::uniform_values(n * c * hw * hw, -1.0f, 1.0f, 70), {n, c, hw, hw});
    V x = input_grad ? tg::parameter(xv) : tg::constant(xv);
    V w = tg::parameter(from(bench::uniform_values(o * c * 9, -0.2f, 0.2f, 71), {o, c, 3, 3}));
    const xt::xarray<float> seed = xt::ones<float>({n, o, hw, hw});
    for (auto _ : state) {
        V y = tg::conv2d(x, w, V(), {1, 1}, {1, 1});
        y.backward(seed);
        benchmark::DoNotOptimize(w.grad().data());
        if (input_grad) x.zero_grad();
        w.zero_grad();
    }
    tg::reset_num_threads();
}
BENCHMARK(W7_conv2d_tapegrad)
    ->Args({128, 1, 28, 32})
    ->Args({128, 32, 14, 64})
    ->Args({64, 64, 56, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// W8: a recurrent layer over [T, N, I], loss = sum of the outputs, forward + backward.
// Arguments: kind (0 LSTM, 1 GRU), input, hidden, batch, steps, layers.
void W8_recurrent_tapegrad(benchmark::State& state)
{
    const auto kind = state.range(0);
    const auto in = static_cast<std::size_t>(state.range(1)), hidden = static_cast<std::size_t>(state.range(2)),
               n = static_cast<std::size_t>(state.range(3)), steps = static_cast<std::size_t>(state.range(4)),
               layers = static_cast<std::size_t>(state.range(5));
    tg::Generator gen(80);
    std::shared_ptr<tg::nn::Module<float>> layer;
    std::function<V(const V&)> run;
    if (kind == 0) {
        tg::nn::LSTMOptions o;
        o.num_layers = layers;
        auto lstm = std::make_shared<tg::nn::LSTM<float>>(in, hidden, o, gen);
        run = [lstm](const V& x) { return lstm->forward(x); };
        layer = lstm;
    } else {
        tg::nn::GRUOptions o;
        o.num_layers = layers;
        auto gru = std::make_shared<tg::nn::GRU<float>>(in, hidden, o, gen);
        run = [gru](const V& x) { return gru->forward(x); };
        layer = gru;
    }
    const V x = tg::constant(from(bench::uniform_values(steps * n * in, -1.0f, 1.0f, 81), {steps, n, in}));
    for (auto _ : state) {
        V loss = tg::sum(run(x));
        loss.backward();
        layer->zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W8_recurrent_tapegrad)
    ->Args({0, 32, 64, 8, 50, 1})
    ->Args({0, 64, 256, 32, 64, 2})
    ->Args({1, 64, 256, 32, 64, 2})
    ->Unit(benchmark::kMillisecond);

// W8 packed: a bidirectional LSTM (32 -> 64) over 8 sequences of lengths 50, 45, ..., 15
// packed, loss = sum of the packed outputs.
void W8_packed_bilstm_tapegrad(benchmark::State& state)
{
    const std::size_t in = 32, hidden = 64, n = 8, steps = 50;
    tg::Generator gen(82);
    tg::nn::LSTMOptions o;
    o.bidirectional = true;
    tg::nn::LSTM<float> lstm(in, hidden, o, gen);
    std::vector<std::size_t> lengths;
    for (std::size_t b = 0; b < n; ++b) lengths.push_back(steps - 5 * b);
    const V x = tg::constant(from(bench::uniform_values(steps * n * in, -1.0f, 1.0f, 83), {steps, n, in}));
    for (auto _ : state) {
        const auto packed = tg::nn::pack_padded_sequence(x, lengths);
        V loss = tg::sum(lstm.forward(packed, {}).output.data);
        loss.backward();
        lstm.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W8_packed_bilstm_tapegrad)->Unit(benchmark::kMillisecond);

// W9: a Transformer encoder layer (d_model 128, 4 heads, feed-forward 512, dropout 0) on
// [L 64, N 16, 128], loss = sum of the output, forward + backward.
void W9_transformer_layer_tapegrad(benchmark::State& state)
{
    const std::size_t d = 128, l = 64, n = 16;
    tg::Generator gen(90);
    tg::nn::TransformerLayerOptions o;
    o.dim_feedforward = 512;
    o.dropout = 0.0;
    tg::nn::TransformerEncoderLayer<float> layer(d, 4, o, gen);
    const V x = tg::parameter(from(bench::uniform_values(l * n * d, -1.0f, 1.0f, 91), {l, n, d}));
    for (auto _ : state) {
        V loss = tg::sum(layer(x));
        loss.backward();
        layer.zero_grad();
        x.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W9_transformer_layer_tapegrad)->Unit(benchmark::kMillisecond);

// W9: MultiheadAttention alone (embed 128, 4 heads), self-attention on the same input,
// need_weights = false, loss = sum of the output.
void W9_multihead_attention_tapegrad(benchmark::State& state)
{
    const std::size_t d = 128, l = 64, n = 16;
    tg::Generator gen(92);
    tg::nn::MultiheadAttention<float> mha(d, 4, {}, gen);
    const V x = tg::parameter(from(bench::uniform_values(l * n * d, -1.0f, 1.0f, 91), {l, n, d}));
    for (auto _ : state) {
        V loss = tg::sum(mha(x, x, x, {}, false).output);
        loss.backward();
        mha.zero_grad();
        x.zero_grad();
        benchmark::DoNotOptimize(loss.item());
    }
}
BENCHMARK(W9_multihead_attention_tapegrad)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
