// libtorch's side of the Fashion-MNIST comparison, with the same batches in the same order
// and the same initial weights as tapegrad's fashion_mnist (its data loader supplies the
// batches; its layers' initialisers the starting weights). Two recipes:
//   --model mlp: MLP 784-256-128-10, ReLU, cross-entropy, Adam lr 1e-3, batch 128, as
//     fashion_mnist --model mlp --hidden 256,128 --dropout 0 --optimizer adam --lr 1e-3
//                   --weight-decay 0 --schedule none --batch-size 128 --seed 1
//   --model cnn: the main job's CNN (conv 32 and 64, batch norm, max pooling, fc 128,
//     dropout 0.3), Adam lr 1e-3 with the cosine schedule, batch 128, as
//     fashion_mnist --model cnn --seed 1 (its defaults)
//
//   fashion_mnist_libtorch [--model mlp] [--epochs 10] [--seed 1] [--threads 1] [--data-dir DIR]
// --threads sets torch's intra-op threads (oneDNN's convolutions); BLAS threads:
// OPENBLAS_NUM_THREADS (libtorch's gemm is OpenBLAS's here).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <tapegrad/data.hpp>

#include "trainer.hpp"
#include <tapegrad/nn.hpp>

namespace {

struct Net : torch::nn::Module {
    Net() : l1(784, 256), l2(256, 128), l3(128, 10)
    {
        register_module("l1", l1);
        register_module("l2", l2);
        register_module("l3", l3);
    }
    torch::Tensor forward(torch::Tensor x)
    {
        return l3->forward(torch::relu(l2->forward(torch::relu(l1->forward(x)))));
    }
    torch::nn::Linear l1, l2, l3;
};

// The main job's CNN, in PyTorch's layout: the same indices as tapegrad's Sequential, so
// the parameter names ("0.weight", ...) match one to one.
torch::nn::Sequential make_cnn()
{
    namespace tn = torch::nn;
    return tn::Sequential(tn::Conv2d(tn::Conv2dOptions(1, 32, 3).padding(1).bias(false)), tn::BatchNorm2d(32),
                          tn::ReLU(), tn::MaxPool2d(2), tn::Conv2d(tn::Conv2dOptions(32, 64, 3).padding(1).bias(false)),
                          tn::BatchNorm2d(64), tn::ReLU(), tn::MaxPool2d(2), tn::Flatten(), tn::Linear(64 * 7 * 7, 128),
                          tn::ReLU(), tn::Dropout(0.3), tn::Linear(128, 10));
}

void copy_from(torch::nn::Linear& lin, const tg::nn::Dense<float>& d)
{
    torch::NoGradGuard g;
    const auto& w = d.weight().value();  // [in, out]
    auto wt = torch::from_blob(const_cast<float*>(w.data()),
                               {static_cast<long>(w.shape()[0]), static_cast<long>(w.shape()[1])}, torch::kFloat32);
    lin->weight.copy_(wt.t());
    const auto& b = d.bias().value();
    lin->bias.copy_(torch::from_blob(const_cast<float*>(b.data()), {static_cast<long>(b.size())}, torch::kFloat32));
}

}  // namespace

int main(int argc, char** argv)
{
    int epochs = 10, threads = 1;
    std::uint64_t seed = 1;
    std::string dir = "/usr/share/datasets/fashion-mnist", model = "mlp";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--epochs")
            epochs = std::atoi(argv[i + 1]);
        else if (a == "--threads")
            threads = std::atoi(argv[i + 1]);
        else if (a == "--seed")
            seed = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--data-dir")
            dir = argv[i + 1];
        else if (a == "--model")
            model = argv[i + 1];
        else {
            std::fprintf(stderr, "fashion_mnist_libtorch: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    torch::set_num_threads(threads);

    const auto train =
        tg::data::load_idx_dataset<float>(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz");
    const auto test =
        tg::data::load_idx_dataset<float>(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");

    // The same initial weights as tapegrad's fashion_mnist with --seed: He-uniform ReLU layers,
    // Glorot-uniform output layer, zero biases, drawn in this order from one generator.
    const bool cnn = model == "cnn";
    if (!cnn && model != "mlp") {
        std::fprintf(stderr, "fashion_mnist_libtorch: unknown model %s (use mlp or cnn)\n", model.c_str());
        return 2;
    }
    tg::Generator gen(seed);
    namespace nn = tg::nn;
    auto net = std::make_shared<Net>();
    torch::nn::Sequential conv_net = make_cnn();
    if (cnn) {
        tg::Generator cnn_gen(seed);  // as fashion_mnist: the same draws in the same order
        const auto mine = fashion::make_cnn(10, 0.3, cnn_gen);
        torch::NoGradGuard g;
        auto theirs = conv_net->named_parameters();
        for (const auto& [name, var] : mine.named_parameters()) {
            const auto& v = var.value();
            std::vector<long> shape(v.shape().begin(), v.shape().end());
            theirs[name].copy_(torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32));
        }
    } else {
        const nn::Dense<float> d1(784, 256, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), gen);
        const nn::Dense<float> d2(256, 128, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), gen);
        const nn::Dense<float> d3(128, 10, nn::Activation::none, nn::init::glorot_uniform(), nn::init::zeros(), gen);
        copy_from(net->l1, d1);
        copy_from(net->l2, d2);
        copy_from(net->l3, d3);
    }
    const double lr = 1e-3;
    torch::optim::Adam opt(cnn ? conv_net->parameters() : net->parameters(), torch::optim::AdamOptions(lr));
    auto forward = [&](const torch::Tensor& x) {
        return cnn ? conv_net->forward(x.reshape({x.size(0), 1, 28, 28})) : net->forward(x);
    };

    tg::data::DataLoader<float>::Options lo;
    lo.batch_size = 128;
    lo.shuffle = true;
    lo.seed = seed;
    tg::data::DataLoader<float> loader(train, lo);

    std::vector<double> times;
    double acc = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        loader.set_epoch(static_cast<std::uint64_t>(epoch - 1));
        if (cnn) {
            // tapegrad's CosineAnnealingLR(epochs, eta_min = lr / 100), stepped per epoch.
            const double eta_min = lr * 0.01, pi = 3.14159265358979323846;
            const double now = eta_min + (lr - eta_min) * (1 + std::cos(pi * (epoch - 1) / epochs)) / 2;
            for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(now);
            conv_net->train();
        }
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t b = 0; b < loader.num_batches(); ++b) {
            const auto& batch = loader.batch(b);
            const long n = static_cast<long>(batch.labels.size());
            auto x = torch::from_blob(const_cast<float*>(batch.features.data()), {n, 784}, torch::kFloat32);
            auto y = torch::from_blob(const_cast<std::int64_t*>(batch.labels.data()), {n}, torch::kInt64);
            opt.zero_grad();
            auto loss = torch::nn::functional::cross_entropy(forward(x), y);
            loss.backward();
            opt.step();
        }
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        times.push_back(t);
        {
            torch::NoGradGuard g;
            if (cnn) conv_net->eval();
            auto x = torch::from_blob(const_cast<float*>(test.features().data()), {static_cast<long>(test.size()), 784},
                                      torch::kFloat32);
            auto y = torch::from_blob(const_cast<std::int64_t*>(test.labels().data()), {static_cast<long>(test.size())},
                                      torch::kInt64);
            long correct = 0;
            for (long first = 0; first < x.size(0); first += 1000) {
                const long count = std::min<long>(1000, x.size(0) - first);
                correct +=
                    forward(x.narrow(0, first, count)).argmax(1).eq(y.narrow(0, first, count)).sum().item<long>();
            }
            acc = static_cast<double>(correct) / static_cast<double>(x.size(0));
        }
        std::printf("epoch %2d/%d  time %.3f s (%.0f samples/s)  test acc %.2f%%\n", epoch, epochs, t, train.size() / t,
                    100 * acc);
        std::fflush(stdout);
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    std::printf("libtorch summary: median epoch %.3f s, %.0f samples/s, final test accuracy %.2f%%\n", median,
                train.size() / median, 100 * acc);
    return 0;
}
