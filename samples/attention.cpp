// Scaled dot-product self-attention, built from the N-D ops, on a toy sequence task: each
// sequence holds L tokens of C kinds, and one position is marked; the model must name the
// kind of the marked token, wherever it is. Attention can do that in one layer (every
// position learns to attend to the marked one), a bag of tokens cannot.
//
//   x [B, L, C + 1]   one-hot kind, plus a marker feature
//   q, k, v = chunk(x @ W_qkv, 3, -1)              each [B, L, H]
//   a = softmax(q @ transpose(k, 1, 2) / sqrt(H))  [B, L, L]  (batched matmul)
//   logits = mean over L of (a @ v) @ W_out        [B, C]
//
// Trained with Adam on fresh random sequences; the program prints the loss and accuracy on
// a held-out set as it trains, and fails (exit status 1) below 95% held-out accuracy.

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace {

constexpr std::size_t kKinds = 5, kLength = 6, kHidden = 16, kBatch = 64;

using Var = tg::Var<double>;

struct Sequences {
    xt::xarray<double> x;
    xt::xarray<std::int64_t> labels;
};

Sequences draw(std::size_t n, tg::Generator& gen)
{
    std::uniform_int_distribution<std::size_t> kind(0, kKinds - 1), position(0, kLength - 1);
    Sequences s{xt::zeros<double>({n, kLength, kKinds + 1}), xt::zeros<std::int64_t>({n})};
    for (std::size_t b = 0; b < n; ++b) {
        for (std::size_t l = 0; l < kLength; ++l) s.x(b, l, kind(gen)) = 1;
        const std::size_t marked = position(gen);
        s.x(b, marked, kKinds) = 1;
        for (std::size_t c = 0; c < kKinds; ++c) {
            if (s.x(b, marked, c) == 1) s.labels(b) = static_cast<std::int64_t>(c);
        }
    }
    return s;
}

struct Model {
    Var w_qkv, w_out, b_out;

    Var logits(const Var& x) const
    {
        const std::vector<Var> qkv = tg::chunk(tg::matmul(x, w_qkv), 3, -1);
        const Var scores = tg::matmul(qkv[0], tg::transpose(qkv[1], 1, 2)) * (1.0 / std::sqrt(double(kHidden)));
        const Var attended = tg::matmul(tg::softmax(scores, -1), qkv[2]);  // [B, L, H]
        return tg::matmul(tg::mean(attended, 1), w_out) + b_out;           // [B, C]
    }
};

double accuracy(const Var& logits, const xt::xarray<std::int64_t>& labels)
{
    const auto& v = logits.value();
    std::size_t right = 0;
    for (std::size_t b = 0; b < labels.size(); ++b) {
        std::size_t best = 0;
        for (std::size_t c = 1; c < kKinds; ++c) {
            if (v(b, c) > v(b, best)) best = c;
        }
        right += static_cast<std::int64_t>(best) == labels(b) ? 1 : 0;
    }
    return double(right) / double(labels.size());
}

}  // namespace

int main()
{
    tg::Generator gen(11);
    auto init = [&](std::vector<std::size_t> shape, double scale) {
        std::normal_distribution<double> normal(0.0, scale);
        xt::xarray<double> a(shape);
        for (auto& v : a) v = normal(gen);
        return tg::parameter(a);
    };
    Model model{init({kKinds + 1, 3 * kHidden}, 0.5), init({kHidden, kKinds}, 0.5),
                tg::parameter(xt::xarray<double>(xt::zeros<double>({kKinds})))};
    tg::optim::AdamOptions options;
    options.lr = 1e-2;
    tg::optim::Adam<double> adam({model.w_qkv, model.w_out, model.b_out}, options);

    const Sequences held_out = draw(1000, gen);
    double acc = 0;
    for (int step = 1; step <= 600; ++step) {
        const Sequences batch = draw(kBatch, gen);
        adam.zero_grad();
        const Var loss = tg::cross_entropy(model.logits(tg::constant(batch.x)), batch.labels);
        loss.backward();
        adam.step();
        if (step % 100 == 0) {
            tg::NoGradGuard no_grad;
            const Var logits = model.logits(tg::constant(held_out.x));
            acc = accuracy(logits, held_out.labels);
            std::printf("step %3d  loss %.4f  held-out accuracy %.1f%%\n", step, loss.item(), 100 * acc);
        }
    }
    std::printf("attention: %.1f%% of 1000 held-out sequences named right (chance %.0f%%): %s\n", 100 * acc,
                100.0 / kKinds, acc >= 0.95 ? "ok" : "FAILED (below 95%)");
    return acc >= 0.95 ? 0 : 1;
}
