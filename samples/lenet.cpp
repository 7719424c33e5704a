// lenet: the network of libtorch's MNIST example (two convolutions, Dropout2d, two fully
// connected layers, log_softmax + nll_loss, SGD with momentum 0.5), written as a custom
// module and trained on Fashion-MNIST for a few epochs.
//
//   lenet [--epochs 3] [--lr 0.01] [--train-limit N] [--test-limit N] [--min-accuracy A] [--data-dir DIR]
//
// Prints the test accuracy after every epoch; exits with status 1 when the last one is
// below --min-accuracy (the smoke test's check).

#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

// A module of its own: it registers its layers (PyTorch's names: conv1.weight, ...,
// fc2.bias), and its forward composes them with ops freely, as in PyTorch.
class LeNet : public nn::Module<float> {
public:
    explicit LeNet(tg::Generator& gen)
    {
        conv1_ = register_module("conv1", std::make_shared<nn::Conv2d<float>>(1, 10, 5, nn::Conv2dOptions{}, gen));
        conv2_ = register_module("conv2", std::make_shared<nn::Conv2d<float>>(10, 20, 5, nn::Conv2dOptions{}, gen));
        conv2_drop_ = register_module("conv2_drop", std::make_shared<nn::Dropout2d<float>>(0.5, gen()));
        fc1_ = register_module("fc1", std::make_shared<nn::Linear<float>>(320, 50, true, gen));
        fc2_ = register_module("fc2", std::make_shared<nn::Linear<float>>(50, 10, true, gen));
        dropout_ = register_module("dropout", std::make_shared<nn::Dropout<float>>(0.5, gen()));
    }

    // x [N, 1, 28, 28] -> log-probabilities [N, 10]
    tg::Var<float> forward(const tg::Var<float>& x)
    {
        tg::Var<float> h = tg::relu(tg::max_pool2d(conv1_->forward(x), {2, 2}));             // [N, 10, 12, 12]
        h = tg::relu(tg::max_pool2d(conv2_drop_->forward(conv2_->forward(h)), {2, 2}));      // [N, 20, 4, 4]
        h = dropout_->forward(tg::relu(fc1_->forward(tg::reshape(h, {h.shape()[0], -1}))));  // [N, 50]
        return tg::log_softmax(fc2_->forward(h), 1);
    }

private:
    std::shared_ptr<nn::Conv2d<float>> conv1_, conv2_;
    std::shared_ptr<nn::Dropout2d<float>> conv2_drop_;
    std::shared_ptr<nn::Linear<float>> fc1_, fc2_;
    std::shared_ptr<nn::Dropout<float>> dropout_;
};

int main(int argc, char** argv)
{
    std::string dir = "/usr/share/datasets/fashion-mnist";
    int epochs = 3;
    std::size_t train_limit = 0, test_limit = 0, batch = 64;
    double min_accuracy = 0, lr = 0.01;
    CLI::App app{"LeNet (libtorch's MNIST example network) on Fashion-MNIST."};
    app.add_option("--data-dir", dir, "Folder with the four gzip'd IDX files")->capture_default_str();
    app.add_option("--epochs", epochs, "Epochs")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch-size", batch, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--lr", lr, "SGD learning rate (momentum 0.5)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--train-limit", train_limit, "Train on the first N images only (0: all)");
    app.add_option("--test-limit", test_limit, "Test on the first N images only (0: all)");
    app.add_option("--min-accuracy", min_accuracy, "Exit with status 1 below this final test accuracy (percent)");
    CLI11_PARSE(app, argc, argv);
    try {
        const std::filesystem::path d(dir);
        auto train = tg::data::load_idx_dataset<float>((d / "train-images-idx3-ubyte.gz").string(),
                                                       (d / "train-labels-idx1-ubyte.gz").string());
        auto test = tg::data::load_idx_dataset<float>((d / "t10k-images-idx3-ubyte.gz").string(),
                                                      (d / "t10k-labels-idx1-ubyte.gz").string());
        if (train_limit > 0 && train_limit < train.size()) train = train.subset(0, train_limit);
        if (test_limit > 0 && test_limit < test.size()) test = test.subset(0, test_limit);

        tg::Generator gen(1);
        LeNet model(gen);
        tg::optim::SGDOptions o;
        o.lr = lr;
        o.momentum = 0.5;
        tg::optim::SGD<float> sgd(model.parameters(), o);
        tg::data::LoaderOptions lo;
        lo.batch_size = batch;
        lo.seed = 1;
        tg::data::DataLoader<float> loader(train, lo);
        auto images = [](const xt::xarray<float>& rows) {  // [N, 784] -> [N, 1, 28, 28]
            xt::xarray<float> a = rows;
            a.reshape({rows.shape()[0], std::size_t(1), std::size_t(28), std::size_t(28)});
            return tg::constant(std::move(a));
        };
        double accuracy = 0;
        for (int epoch = 1; epoch <= epochs; ++epoch) {
            loader.set_epoch(static_cast<std::uint64_t>(epoch - 1));
            model.train();
            double loss_sum = 0;
            std::size_t seen = 0;
            for (std::size_t b = 0; b < loader.num_batches(); ++b) {
                const auto& batch_ = loader.batch(b);
                sgd.zero_grad();
                tg::Var<float> loss = tg::nll_loss(model.forward(images(batch_.features)), batch_.labels);
                loss.backward();
                sgd.step();
                loss_sum += static_cast<double>(loss.item()) * batch_.labels.size();
                seen += batch_.labels.size();
            }
            // Test accuracy in eval mode, without recording.
            tg::NoGradGuard no_grad;
            model.eval();
            std::size_t correct = 0;
            for (std::size_t first = 0; first < test.size(); first += 1000) {
                const std::size_t count = std::min<std::size_t>(1000, test.size() - first);
                const auto part = test.subset(first, count);
                const xt::xarray<float> logp = model.forward(images(part.features())).value();
                for (std::size_t i = 0; i < count; ++i) {
                    std::size_t best = 0;
                    for (std::size_t k = 1; k < 10; ++k) best = logp(i, k) > logp(i, best) ? k : best;
                    correct += static_cast<std::int64_t>(best) == part.labels()(i);
                }
            }
            accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(test.size());
            std::printf("epoch %d/%d  train loss %.4f  test accuracy %.2f%%\n", epoch, epochs, loss_sum / seen,
                        accuracy);
        }
        std::printf("lenet: test accuracy %.2f%% after %d epochs\n", accuracy, epochs);
        return accuracy >= min_accuracy ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "lenet: %s\n", e.what());
        return 2;
    }
}
