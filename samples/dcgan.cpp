// dcgan: the DCGAN of libtorch's examples (transposed convolutions with batch norm and
// ReLU in the generator, strided convolutions with batch norm and leaky ReLU in the
// discriminator, binary cross-entropy, Adam lr 2e-4 beta1 0.5), with the channel counts
// divided by `--width-divisor` (default 4) so that it trains in minutes on two cores,
// trained on Fashion-MNIST. Writes a grid of generated images as a PNG.
//
//   dcgan [--steps 600] [--batch-size 64] [--out dcgan.png] [--train-limit N] [--data-dir DIR]
//
// It also prints the median time of a training step (both updates; the first 10 steps, which
// make oneDNN's kernels, left out), which bench/dcgan-compare sets beside a libtorch twin.
// The discriminator ends in logits and the loss is binary_cross_entropy_with_logits (the
// example's sigmoid + binary_cross_entropy, computed stably). Its check: the mean of the
// generated images must resemble the mean training image (correlation of the pixel means,
// printed), which an untrained generator's output does not; exit status 1 otherwise.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <zlib.h>

#include <CLI/CLI.hpp>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

namespace {

// A greyscale PNG: signature, IHDR, one zlib-compressed IDAT of filter-0 rows, IEND.
void write_png(const std::string& path, const std::vector<unsigned char>& grey, std::size_t w, std::size_t h)
{
    auto be32 = [](std::string& s, std::uint32_t v) {
        for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
    };
    auto chunk = [&](std::string& out, const char* type, const std::string& data) {
        be32(out, static_cast<std::uint32_t>(data.size()));
        const std::string body = std::string(type, 4) + data;
        out += body;
        be32(out, static_cast<std::uint32_t>(
                      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
    };
    std::string raw;
    for (std::size_t y = 0; y < h; ++y) {
        raw.push_back(0);
        raw.append(reinterpret_cast<const char*>(grey.data() + y * w), w);
    }
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    std::string packed(size, '\0');
    if (compress(reinterpret_cast<Bytef*>(packed.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                 static_cast<uLong>(raw.size())) != Z_OK)
        throw tg::Error("dcgan: compressing the image failed");
    packed.resize(size);
    std::string ihdr;
    be32(ihdr, static_cast<std::uint32_t>(w));
    be32(ihdr, static_cast<std::uint32_t>(h));
    ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit greyscale, no interlace
    std::string png("\x89PNG\r\n\x1a\n", 8);
    chunk(png, "IHDR", ihdr);
    chunk(png, "IDAT", packed);
    chunk(png, "IEND", "");
    std::ofstream f(path, std::ios::binary);
    f << png;
    if (!f) throw tg::Error("dcgan: cannot write " + path);
}

double correlation(const xt::xarray<double>& a, const xt::xarray<double>& b)
{
    const double ma = xt::mean(a)(), mb = xt::mean(b)();
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double u = a.data()[i] - ma, v = b.data()[i] - mb;
        ab += u * v;
        aa += u * u;
        bb += v * v;
    }
    return ab / std::sqrt(aa * bb + 1e-300);
}

}  // namespace

int main(int argc, char** argv)
{
    std::string dir = "/usr/share/datasets/fashion-mnist", out = "dcgan.png";
    int steps = 600;
    std::size_t batch = 64, train_limit = 0, divisor = 4, nz = 32;
    double min_correlation = 0.5;
    CLI::App app{"A DCGAN on Fashion-MNIST; writes a grid of generated images."};
    app.add_option("--data-dir", dir, "Folder with the gzip'd IDX files")->capture_default_str();
    app.add_option("--steps", steps, "Training steps (one discriminator and one generator update each)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--batch-size", batch, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--width-divisor", divisor, "Divide the example's channel counts by this")
        ->check(CLI::IsMember({1, 2, 4, 8}))
        ->capture_default_str();
    app.add_option("--train-limit", train_limit, "Use the first N training images only (0: all)");
    app.add_option("--out", out, "Where to write the PNG grid of 64 generated images")->capture_default_str();
    app.add_option("--min-correlation", min_correlation, "Exit with status 1 below this (see the file comment)")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    try {
        const std::filesystem::path d(dir);
        auto data = tg::data::load_idx_dataset<float>((d / "train-images-idx3-ubyte.gz").string(),
                                                      (d / "train-labels-idx1-ubyte.gz").string());
        if (train_limit > 0 && train_limit < data.size()) data = data.subset(0, train_limit);

        tg::Generator gen(1);
        const std::size_t g1 = 256 / divisor, g2 = 128 / divisor, g3 = 64 / divisor;
        const nn::ConvTranspose2dOptions up{{2, 2}, {1, 1}, {0, 0}, 1, false};
        // noise [N, nz, 1, 1] -> 4x4 -> 7x7 -> 14x14 -> 28x28 in [-1, 1]
        nn::Sequential<float> generator{nn::ConvTranspose2d<float>(nz, g1, 4, {{1, 1}, {0, 0}, {0, 0}, 1, false}, gen),
                                        nn::BatchNorm2d<float>(g1),
                                        nn::ReLU<float>(),
                                        nn::ConvTranspose2d<float>(g1, g2, 3, up, gen),
                                        nn::BatchNorm2d<float>(g2),
                                        nn::ReLU<float>(),
                                        nn::ConvTranspose2d<float>(g2, g3, 4, up, gen),
                                        nn::BatchNorm2d<float>(g3),
                                        nn::ReLU<float>(),
                                        nn::ConvTranspose2d<float>(g3, 1, 4, up, gen),
                                        nn::Tanh<float>()};
        const nn::Conv2dOptions down{{2, 2}, {1, 1}, {1, 1}, 1, false};
        // image [N, 1, 28, 28] -> 14x14 -> 7x7 -> 3x3 -> one logit
        nn::Sequential<float> discriminator{nn::Conv2d<float>(1, g3, 4, down, gen),
                                            nn::LeakyReLU<float>(0.2),
                                            nn::Conv2d<float>(g3, g2, 4, down, gen),
                                            nn::BatchNorm2d<float>(g2),
                                            nn::LeakyReLU<float>(0.2),
                                            nn::Conv2d<float>(g2, g1, 4, down, gen),
                                            nn::BatchNorm2d<float>(g1),
                                            nn::LeakyReLU<float>(0.2),
                                            nn::Conv2d<float>(g1, 1, 3, {{1, 1}, {0, 0}, {1, 1}, 1, false}, gen),
                                            nn::Flatten<float>()};
        tg::optim::AdamOptions o;
        o.lr = 2e-4;
        o.beta1 = 0.5;
        tg::optim::Adam<float> g_opt(generator.parameters(), o), d_opt(discriminator.parameters(), o);

        tg::data::LoaderOptions lo;
        lo.batch_size = batch;
        lo.drop_last = true;
        lo.seed = 1;
        tg::data::DataLoader<float> loader(data, lo);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        auto noise = [&](std::size_t n) {
            xt::xarray<float> z = xt::zeros<float>({n, nz, std::size_t(1), std::size_t(1)});
            for (auto& v : z) v = normal(gen);
            return tg::constant(std::move(z));
        };
        const tg::Var<float> ones = tg::constant(xt::xarray<float>(xt::ones<float>({batch, std::size_t(1)})));
        const tg::Var<float> zeros = tg::constant(xt::xarray<float>(xt::zeros<float>({batch, std::size_t(1)})));
        std::size_t b = loader.num_batches();
        std::uint64_t epoch = 0;
        std::vector<double> step_ms;
        for (int step = 1; step <= steps; ++step) {
            const auto start = std::chrono::steady_clock::now();
            if (b == loader.num_batches()) {
                loader.set_epoch(epoch++);
                b = 0;
            }
            xt::xarray<float> real = loader.batch(b++).features * 2.0f - 1.0f;  // pixels in [-1, 1]
            real.reshape({batch, std::size_t(1), std::size_t(28), std::size_t(28)});
            // Discriminator: real images toward 1, generated ones (not backpropagated into the
            // generator) toward 0.
            const tg::Var<float> z = noise(batch);
            xt::xarray<float> fake_images;
            {
                tg::NoGradGuard no_grad;
                fake_images = generator(z).value();
            }
            d_opt.zero_grad();
            tg::Var<float> d_loss =
                tg::binary_cross_entropy_with_logits(discriminator(tg::constant(real)), ones) +
                tg::binary_cross_entropy_with_logits(discriminator(tg::constant(fake_images)), zeros);
            d_loss.backward();
            d_opt.step();
            const double d_value = static_cast<double>(d_loss.item());
            // Generator: make the discriminator call its images real. The backward above
            // ended the pass, so the generator runs again, recorded, on the same noise.
            g_opt.zero_grad();
            tg::Var<float> g_loss = tg::binary_cross_entropy_with_logits(discriminator(generator(z)), ones);
            g_loss.backward();
            g_opt.step();
            const double g_value = static_cast<double>(g_loss.item());
            if (step > 10)
                step_ms.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
            if (step % 100 == 0 || step == steps)
                std::printf("step %4d/%d  discriminator loss %.4f  generator loss %.4f\n", step, steps, d_value,
                            g_value);
        }

        if (!step_ms.empty()) {
            std::nth_element(step_ms.begin(), step_ms.begin() + step_ms.size() / 2, step_ms.end());
            std::printf("median step time %.2f ms (steps 11-%d)\n", step_ms[step_ms.size() / 2], steps);
        }

        // 64 samples in eval mode, as an 8 x 8 grid with 2-pixel gaps.
        tg::NoGradGuard no_grad;
        generator.eval();
        const xt::xarray<float> samples = generator(noise(64)).value();  // [64, 1, 28, 28]
        const std::size_t cell = 30, side = 8 * cell + 2;
        std::vector<unsigned char> grid(side * side, 0);
        for (std::size_t k = 0; k < 64; ++k)
            for (std::size_t y = 0; y < 28; ++y)
                for (std::size_t x = 0; x < 28; ++x) {
                    const float v = samples(k, 0, y, x);
                    grid[(2 + (k / 8) * cell + y) * side + 2 + (k % 8) * cell + x] =
                        static_cast<unsigned char>(std::lround(std::clamp((v + 1.0f) * 127.5f, 0.0f, 255.0f)));
                }
        write_png(out, grid, side, side);
        const xt::xarray<double> mean_fake = xt::mean(xt::cast<double>(samples), {0, 1});
        xt::xarray<double> mean_real = xt::mean(xt::cast<double>(data.features()), {0}) * 2.0 - 1.0;
        mean_real.reshape({28, 28});
        const double r = correlation(mean_fake, mean_real);
        std::printf("dcgan: wrote %s (8 x 8 generated images); mean image correlation with the data %.3f\n",
                    out.c_str(), r);
        return r >= min_correlation ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "dcgan: %s\n", e.what());
        return 2;
    }
}
