// gan: a generator learns to draw from a distribution it only sees through a discriminator,
// written as a PyTorch user writes the training step: one forward of the generator per
// step, the discriminator's loss on real data and on detach(fake), its backward and step,
// then the generator's loss through the same fake and its backward. No retain_graph: the
// discriminator's backward releases only its own graph.
//
// The data are numbers from a mixture of two normals, 0.6 N(-2, 0.4^2) + 0.4 N(3, 0.6^2).
// Both networks are small MLPs (noise 4 -> 32 -> 32 -> 1, and 1 -> 32 -> 32 -> 1 logit).
// At the end the program draws 20000 numbers from the generator and compares them with the
// data: mean, standard deviation, the share below 0.5 (the mixture's weight of the left
// mode, 0.6) and a histogram. It fails (exit status 1) when the generated share of the left
// mode is off by more than --tolerance or its mean and spread are far from the data's.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;
using Var = tg::Var<float>;

namespace {

// A batch of real data: [n, 1].
xt::xarray<float> real_batch(std::size_t n, tg::Generator& gen)
{
    std::bernoulli_distribution left(0.6);
    std::normal_distribution<float> a(-2.0f, 0.4f), b(3.0f, 0.6f);
    xt::xarray<float> x = xt::zeros<float>({n, std::size_t{1}});
    for (std::size_t i = 0; i < n; ++i) x(i, 0) = left(gen) ? a(gen) : b(gen);
    return x;
}

xt::xarray<float> noise(std::size_t n, std::size_t dim, tg::Generator& gen)
{
    std::normal_distribution<float> d(0.0f, 1.0f);
    xt::xarray<float> z = xt::zeros<float>({n, dim});
    for (auto& v : z) v = d(gen);
    return z;
}

struct Summary {
    double mean = 0, stddev = 0, left = 0;
};

Summary summarise(const xt::xarray<float>& x)
{
    Summary s;
    for (float v : x) {
        s.mean += v;
        s.left += v < 0.5f ? 1 : 0;
    }
    s.mean /= static_cast<double>(x.size());
    s.left /= static_cast<double>(x.size());
    for (float v : x) s.stddev += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(s.stddev / static_cast<double>(x.size()));
    return s;
}

void histogram(const char* label, const xt::xarray<float>& x)
{
    constexpr int kBins = 16;
    constexpr float lo = -4.0f, hi = 5.0f;
    std::vector<std::size_t> count(kBins, 0);
    for (float v : x) {
        const int k = static_cast<int>(std::floor((v - lo) / (hi - lo) * kBins));
        if (k >= 0 && k < kBins) ++count[static_cast<std::size_t>(k)];
    }
    const std::size_t top = *std::max_element(count.begin(), count.end());
    std::printf("%s\n", label);
    for (int k = 0; k < kBins; ++k) {
        const float from = lo + (hi - lo) * static_cast<float>(k) / kBins;
        const int bar = top == 0 ? 0
                                 : static_cast<int>(40.0 * static_cast<double>(count[static_cast<std::size_t>(k)]) /
                                                    static_cast<double>(top));
        std::printf("  %5.2f | %s\n", static_cast<double>(from),
                    std::string(static_cast<std::size_t>(bar), '#').c_str());
    }
}

}  // namespace

int main(int argc, char** argv)
{
    CLI::App app{"A small GAN on a one-dimensional mixture of two normals"};
    std::size_t steps = 3000, batch = 128, seed = 1;
    double tolerance = 0.1;
    app.add_option("--steps", steps, "Training steps (one discriminator and one generator update each)")
        ->capture_default_str();
    app.add_option("--batch", batch, "Batch size")->capture_default_str();
    app.add_option("--seed", seed, "Random seed")->capture_default_str();
    app.add_option("--tolerance", tolerance, "Largest accepted error of the generated left-mode share")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    try {
        tg::Generator gen(seed);
        constexpr std::size_t kNoise = 4, kWidth = 32;
        nn::Sequential<float> generator{nn::Linear<float>(kNoise, kWidth, true, gen), nn::LeakyReLU<float>(0.2),
                                        nn::Linear<float>(kWidth, kWidth, true, gen), nn::LeakyReLU<float>(0.2),
                                        nn::Linear<float>(kWidth, 1, true, gen)};
        nn::Sequential<float> discriminator{nn::Linear<float>(1, kWidth, true, gen), nn::LeakyReLU<float>(0.2),
                                            nn::Linear<float>(kWidth, kWidth, true, gen), nn::LeakyReLU<float>(0.2),
                                            nn::Linear<float>(kWidth, 1, true, gen)};
        tg::optim::AdamOptions o;
        o.lr = 1e-3;
        o.beta1 = 0.5;
        tg::optim::Adam<float> g_opt(generator.parameters(), o), d_opt(discriminator.parameters(), o);
        const Var ones = tg::constant(xt::xarray<float>(xt::ones<float>({batch, std::size_t{1}})));
        const Var zeros = tg::constant(xt::xarray<float>(xt::zeros<float>({batch, std::size_t{1}})));

        for (std::size_t step = 1; step <= steps; ++step) {
            const Var real = tg::constant(real_batch(batch, gen));
            const Var fake = generator(tg::constant(noise(batch, kNoise, gen)));

            // The discriminator: real as 1, fake as 0; detach keeps its loss away from G.
            d_opt.zero_grad();
            const Var loss_d = tg::binary_cross_entropy_with_logits(discriminator(real), ones) +
                               tg::binary_cross_entropy_with_logits(discriminator(tg::detach(fake)), zeros);
            loss_d.backward();
            d_opt.step();

            // The generator, through the same fake: it wants D to say 1.
            g_opt.zero_grad();
            const Var loss_g = tg::binary_cross_entropy_with_logits(discriminator(fake), ones);
            loss_g.backward();
            g_opt.step();

            if (step % 500 == 0 || step == 1) {
                std::printf("step %5zu  loss D %.4f  loss G %.4f\n", step, static_cast<double>(loss_d.item()),
                            static_cast<double>(loss_g.item()));
            }
        }

        xt::xarray<float> drawn;
        {
            tg::NoGradGuard no_grad;
            drawn = generator(tg::constant(noise(20000, kNoise, gen))).value();
        }
        const xt::xarray<float> data = real_batch(20000, gen);
        histogram("data:", data);
        histogram("generated:", drawn);
        const Summary want = summarise(data), got = summarise(drawn);
        std::printf("data:      mean %6.3f  std %5.3f  share below 0.5 %.3f\n", want.mean, want.stddev, want.left);
        std::printf("generated: mean %6.3f  std %5.3f  share below 0.5 %.3f\n", got.mean, got.stddev, got.left);
        const bool ok = std::abs(got.left - want.left) <= tolerance && std::abs(got.mean - want.mean) <= 0.5 &&
                        std::abs(got.stddev - want.stddev) <= 0.5;
        std::printf("gan: %s\n", ok ? "the generator draws both modes in about the right proportions: ok"
                                    : "the generator does not match the data: FAILED");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gan: %s\n", e.what());
        return 1;
    }
}
