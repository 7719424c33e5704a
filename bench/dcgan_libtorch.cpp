// libtorch's twin of samples/dcgan.cpp, for timing its training step: the same generator
// and discriminator (channel counts divided by --width-divisor, default 4), the same losses
// and optimisers (binary cross-entropy on logits, Adam lr 2e-4, betas 0.5 and 0.999), the
// same batches from tapegrad's loader (Fashion-MNIST, batch 64, seed 1, pixels in [-1, 1]).
// Initial weights and noise come from libtorch's own generators: the step's cost does not
// depend on them.
//
//   dcgan_libtorch [--steps 200] [--batch-size 64] [--width-divisor 4] [--threads 1] [--data-dir DIR]
//
// Prints the losses every 100 steps and the median step time over steps 11 and on (the same
// window as the sample). --threads sets torch's intra-op threads (its oneDNN convolutions).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <tapegrad/data.hpp>

int main(int argc, char** argv)
{
    int steps = 200, threads = 1;
    long batch = 64, divisor = 4;
    const long nz = 32;
    std::string dir = "/usr/share/datasets/fashion-mnist";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--steps") {
            steps = std::atoi(argv[i + 1]);
        } else if (a == "--batch-size") {
            batch = std::atol(argv[i + 1]);
        } else if (a == "--width-divisor") {
            divisor = std::atol(argv[i + 1]);
        } else if (a == "--threads") {
            threads = std::atoi(argv[i + 1]);
        } else if (a == "--data-dir") {
            dir = argv[i + 1];
        } else {
            std::fprintf(stderr, "dcgan_libtorch: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (steps < 1 || batch < 1 || divisor < 1 || threads < 1) {
        std::fprintf(stderr, "dcgan_libtorch: --steps, --batch-size, --width-divisor and --threads must be positive\n");
        return 2;
    }
    torch::set_num_threads(threads);
    torch::manual_seed(1);

    const auto data =
        tg::data::load_idx_dataset<float>(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz");
    tg::data::LoaderOptions lo;
    lo.batch_size = static_cast<std::size_t>(batch);
    lo.drop_last = true;
    lo.seed = 1;
    tg::data::DataLoader<float> loader(data, lo);

    namespace tn = torch::nn;
    const long g1 = 256 / divisor, g2 = 128 / divisor, g3 = 64 / divisor;
    // noise [N, nz, 1, 1] -> 4x4 -> 7x7 -> 14x14 -> 28x28 in [-1, 1]
    tn::Sequential generator(
        tn::ConvTranspose2d(tn::ConvTranspose2dOptions(nz, g1, 4).bias(false)), tn::BatchNorm2d(g1), tn::ReLU(),
        tn::ConvTranspose2d(tn::ConvTranspose2dOptions(g1, g2, 3).stride(2).padding(1).bias(false)),
        tn::BatchNorm2d(g2), tn::ReLU(),
        tn::ConvTranspose2d(tn::ConvTranspose2dOptions(g2, g3, 4).stride(2).padding(1).bias(false)),
        tn::BatchNorm2d(g3), tn::ReLU(),
        tn::ConvTranspose2d(tn::ConvTranspose2dOptions(g3, 1, 4).stride(2).padding(1).bias(false)), tn::Tanh());
    // image [N, 1, 28, 28] -> 14x14 -> 7x7 -> 3x3 -> one logit
    const auto leaky = tn::LeakyReLUOptions().negative_slope(0.2);
    tn::Sequential discriminator(
        tn::Conv2d(tn::Conv2dOptions(1, g3, 4).stride(2).padding(1).bias(false)), tn::LeakyReLU(leaky),
        tn::Conv2d(tn::Conv2dOptions(g3, g2, 4).stride(2).padding(1).bias(false)), tn::BatchNorm2d(g2),
        tn::LeakyReLU(leaky), tn::Conv2d(tn::Conv2dOptions(g2, g1, 4).stride(2).padding(1).bias(false)),
        tn::BatchNorm2d(g1), tn::LeakyReLU(leaky), tn::Conv2d(tn::Conv2dOptions(g1, 1, 3).bias(false)), tn::Flatten());
    const auto adam = torch::optim::AdamOptions(2e-4).betas({0.5, 0.999});
    torch::optim::Adam g_opt(generator->parameters(), adam), d_opt(discriminator->parameters(), adam);

    const torch::Tensor ones = torch::ones({batch, 1}), zeros = torch::zeros({batch, 1});
    // The sample's batch order: epoch after epoch, each reshuffled by the loader's seed.
    std::size_t next = loader.num_batches();
    std::uint64_t epochs = 0;
    auto next_features = [&] {
        if (next == loader.num_batches()) {
            loader.set_epoch(epochs++);
            next = 0;
        }
        return loader.batch(next++).features;
    };
    std::vector<double> step_ms;
    for (int step = 1; step <= steps; ++step) {
        const auto start = std::chrono::steady_clock::now();
        auto features = next_features();
        const torch::Tensor real =
            torch::from_blob(features.data(), {batch, 1, 28, 28}, torch::kFloat32).clone() * 2.0 - 1.0;
        const torch::Tensor z = torch::randn({batch, nz, 1, 1});
        torch::Tensor fake;
        {
            torch::NoGradGuard no_grad;
            fake = generator->forward(z);
        }
        d_opt.zero_grad();
        const torch::Tensor d_loss = torch::binary_cross_entropy_with_logits(discriminator->forward(real), ones) +
                                     torch::binary_cross_entropy_with_logits(discriminator->forward(fake), zeros);
        d_loss.backward();
        d_opt.step();
        g_opt.zero_grad();
        const torch::Tensor g_loss =
            torch::binary_cross_entropy_with_logits(discriminator->forward(generator->forward(z)), ones);
        g_loss.backward();
        g_opt.step();
        const double d_value = d_loss.item<double>(), g_value = g_loss.item<double>();
        if (step > 10)
            step_ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        if (step % 100 == 0 || step == steps)
            std::printf("step %4d/%d  discriminator loss %.4f  generator loss %.4f\n", step, steps, d_value, g_value);
    }
    if (!step_ms.empty()) {
        std::nth_element(step_ms.begin(), step_ms.begin() + static_cast<long>(step_ms.size() / 2), step_ms.end());
        std::printf("median step time %.2f ms (steps 11-%d)\n", step_ms[step_ms.size() / 2], steps);
    }
    return 0;
}
