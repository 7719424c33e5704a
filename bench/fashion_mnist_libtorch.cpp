// libtorch's side of the Fashion-MNIST comparison: the reference recipe (MLP 784-256-128-10,
// ReLU, cross-entropy, Adam lr 1e-3, batch 128, shuffled every epoch, inputs in [0, 1],
// float32) with the same batches in the same order and the same initial weights as
//   fashion_mnist --hidden 256,128 --dropout 0 --optimizer adam --lr 1e-3 --weight-decay 0
//                 --schedule none --batch-size 128 --seed 1
// tapegrad's data loader supplies the batches; tapegrad's initialisers the starting weights.
//
//   fashion_mnist_libtorch [--epochs 10] [--seed 1] [--threads 1] [--data-dir DIR]
// BLAS threads: OPENBLAS_NUM_THREADS (libtorch's gemm is OpenBLAS's here).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <tapegrad/data.hpp>
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
    std::string dir = "/usr/share/datasets/fashion-mnist";
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
    tg::Generator gen(seed);
    namespace nn = tg::nn;
    const nn::Dense<float> d1(784, 256, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), gen);
    const nn::Dense<float> d2(256, 128, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), gen);
    const nn::Dense<float> d3(128, 10, nn::Activation::none, nn::init::glorot_uniform(), nn::init::zeros(), gen);
    auto net = std::make_shared<Net>();
    copy_from(net->l1, d1);
    copy_from(net->l2, d2);
    copy_from(net->l3, d3);
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));

    tg::data::DataLoader<float>::Options lo;
    lo.batch_size = 128;
    lo.shuffle = true;
    lo.seed = seed;
    tg::data::DataLoader<float> loader(train, lo);

    std::vector<double> times;
    double acc = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        loader.set_epoch(static_cast<std::uint64_t>(epoch - 1));
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t b = 0; b < loader.num_batches(); ++b) {
            const auto& batch = loader.batch(b);
            const long n = static_cast<long>(batch.labels.size());
            auto x = torch::from_blob(const_cast<float*>(batch.features.data()), {n, 784}, torch::kFloat32);
            auto y = torch::from_blob(const_cast<std::int64_t*>(batch.labels.data()), {n}, torch::kInt64);
            opt.zero_grad();
            auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
            loss.backward();
            opt.step();
        }
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        times.push_back(t);
        {
            torch::NoGradGuard g;
            auto x = torch::from_blob(const_cast<float*>(test.features().data()), {static_cast<long>(test.size()), 784},
                                      torch::kFloat32);
            auto y = torch::from_blob(const_cast<std::int64_t*>(test.labels().data()), {static_cast<long>(test.size())},
                                      torch::kInt64);
            acc = net->forward(x).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
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
