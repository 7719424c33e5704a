// image_folder: training from a folder of PNG files, as torchvision's ImageFolder reads
// them. The sample first writes Fashion-MNIST images as PNGs (root/train/<class>/<n>.png,
// root/test/<class>/<n>.png), then trains libtorch's MNIST example network (LeNet, as in
// samples/lenet.cpp) on them through tg::data::ImageFolder and a StreamingLoader whose
// worker threads decode the PNGs ahead of the training step, and reports the test accuracy.
//
// With --compare it trains the same network again from memory (the IDX files read by
// load_idx_dataset, rows put in the folder's order) with a DataLoader of the same seed: the
// PNGs are lossless and both loaders shuffle alike, so both runs see the same batches and
// reach the same accuracy, which the sample checks.
//
//   image_folder [--root DIR] [--train-images 6000] [--test-images 1000] [--epochs 2]
//                [--workers 2] [--lr 0.05] [--compare] [--min-accuracy A] [--data-dir DIR]
//
// Exits with status 1 when the accuracy is below --min-accuracy or the two runs differ.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include <tapegrad/image.hpp>
#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;
namespace data = tg::data;
namespace fs = std::filesystem;

namespace {

// libtorch's MNIST example network (samples/lenet.cpp).
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

// Folder names in label order (sorted, they give back the labels 0 .. 9).
const char* const class_names[10] = {"0-tshirt", "1-trouser", "2-pullover", "3-dress", "4-coat",
                                     "5-sandal", "6-shirt",   "7-sneaker",  "8-bag",   "9-boot"};

// Writes the first `count` images of an IDX pair as root/<class>/<index>.png.
void write_pngs(const data::Idx& images, const data::Idx& labels, std::size_t count, const fs::path& root)
{
    fs::remove_all(root);
    for (const char* c : class_names) fs::create_directories(root / c);
    const std::size_t pixels = images.shape[1] * images.shape[2];
    xt::xarray<std::uint8_t> img = xt::xarray<std::uint8_t>::from_shape({1, images.shape[1], images.shape[2]});
    for (std::size_t i = 0; i < count; ++i) {
        std::copy_n(images.data.data() + i * pixels, pixels, img.data());
        char name[32];
        std::snprintf(name, sizeof name, "%05zu.png", i);
        data::write_image((root / class_names[labels.data[i]] / name).string(), img);
    }
}

double seconds_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The index of the largest of the 10 log-probabilities in row i.
std::int64_t predicted(const xt::xarray<float>& logp, std::size_t i)
{
    std::size_t best = 0;
    for (std::size_t k = 1; k < 10; ++k) best = logp(i, k) > logp(i, best) ? k : best;
    return static_cast<std::int64_t>(best);
}

struct Settings {
    int epochs = 2;
    std::size_t batch = 64, workers = 2;
    double lr = 0.05;
};

tg::optim::SGDOptions sgd_options(const Settings& s)
{
    tg::optim::SGDOptions o;
    o.lr = s.lr;
    o.momentum = 0.5;
    return o;
}

// One training step on images [B, 1, 28, 28]; returns the batch's mean loss.
double step(LeNet& model, tg::optim::SGD<float>& sgd, xt::xarray<float> images, const xt::xarray<std::int64_t>& labels)
{
    sgd.zero_grad();
    tg::Var<float> loss = tg::nll_loss(model.forward(tg::constant(std::move(images))), labels);
    loss.backward();
    sgd.step();
    return static_cast<double>(loss.item());
}

// From the image folders, through StreamingLoaders; returns the final test accuracy (%).
double train_from_folders(const fs::path& root, const Settings& s)
{
    data::ImageFolderOptions options;
    options.channels = 1;  // Fashion-MNIST is gray: [1, 28, 28]
    auto train = std::make_shared<data::ImageFolder<float>>((root / "train").string(), options);
    auto test = std::make_shared<data::ImageFolder<float>>((root / "test").string(), options);
    data::DataLoaderOptions lo;
    lo.batch_size = s.batch;
    lo.shuffle = true;
    lo.num_workers = s.workers;
    lo.seed = 1;
    data::StreamingLoader<float> loader(train, lo);
    data::DataLoaderOptions to;
    to.batch_size = 500;
    to.num_workers = s.workers;
    data::StreamingLoader<float> test_loader(test, to);

    tg::Generator gen(1);
    LeNet model(gen);
    tg::optim::SGD<float> sgd(model.parameters(), sgd_options(s));
    double accuracy = 0;
    for (int epoch = 1; epoch <= s.epochs; ++epoch) {
        const auto t0 = std::chrono::steady_clock::now();
        loader.set_epoch(static_cast<std::uint64_t>(epoch - 1));
        model.train();
        double loss_sum = 0;
        std::size_t seen = 0;
        for (const data::Example<float>& b : loader) {
            loss_sum += step(model, sgd, b.data, b.target) * static_cast<double>(b.target.size());
            seen += b.target.size();
        }
        tg::NoGradGuard no_grad;
        model.eval();
        std::size_t correct = 0;
        for (const data::Example<float>& b : test_loader) {
            const xt::xarray<float> logp = model.forward(tg::constant(b.data)).value();
            for (std::size_t i = 0; i < b.target.size(); ++i) correct += predicted(logp, i) == b.target(i);
        }
        accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(test->size());
        std::printf("image folder: epoch %d/%d  train loss %.4f  test accuracy %.2f%%  (%.1f s)\n", epoch, s.epochs,
                    loss_sum / static_cast<double>(seen), accuracy, seconds_since(t0));
    }
    return accuracy;
}

// The in-memory path on the same images: features [N, 784] in the folder's order (the
// folder sorts by class, then by file name, which is the image's index in the IDX file).
data::Dataset<float> in_folder_order(const data::Dataset<float>& all, const data::ImageFolder<float>& folder)
{
    const std::size_t n = folder.size(), d = all.num_features();
    xt::xarray<float> features = xt::xarray<float>::from_shape({n, d});
    xt::xarray<std::int64_t> labels = xt::xarray<std::int64_t>::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t row = std::stoul(fs::path(folder.samples()[i].first).stem().string());
        std::copy_n(all.features().data() + row * d, d, features.data() + i * d);
        labels(i) = all.labels()(row);
    }
    return data::Dataset<float>(std::move(features), std::move(labels));
}

double train_in_memory(const data::Dataset<float>& train, const data::Dataset<float>& test, const Settings& s)
{
    auto images = [](const xt::xarray<float>& rows) {  // [N, 784] -> [N, 1, 28, 28]
        xt::xarray<float> a = rows;
        a.reshape({rows.shape()[0], std::size_t(1), std::size_t(28), std::size_t(28)});
        return a;
    };
    data::LoaderOptions lo;
    lo.batch_size = s.batch;
    lo.shuffle = true;
    lo.seed = 1;
    data::DataLoader<float> loader(train, lo);
    tg::Generator gen(1);
    LeNet model(gen);
    tg::optim::SGD<float> sgd(model.parameters(), sgd_options(s));
    double accuracy = 0;
    for (int epoch = 1; epoch <= s.epochs; ++epoch) {
        const auto t0 = std::chrono::steady_clock::now();
        loader.set_epoch(static_cast<std::uint64_t>(epoch - 1));
        model.train();
        double loss_sum = 0;
        for (std::size_t b = 0; b < loader.num_batches(); ++b) {
            const auto& batch = loader.batch(b);
            loss_sum += step(model, sgd, images(batch.features), batch.labels) * static_cast<double>(batch.size());
        }
        tg::NoGradGuard no_grad;
        model.eval();
        const xt::xarray<float> logp = model.forward(tg::constant(images(test.features()))).value();
        std::size_t correct = 0;
        for (std::size_t i = 0; i < test.size(); ++i) correct += predicted(logp, i) == test.labels()(i);
        accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(test.size());
        std::printf("in memory:    epoch %d/%d  train loss %.4f  test accuracy %.2f%%  (%.1f s)\n", epoch, s.epochs,
                    loss_sum / static_cast<double>(train.size()), accuracy, seconds_since(t0));
    }
    return accuracy;
}

}  // namespace

int main(int argc, char** argv)
{
    std::string dir = "/usr/share/datasets/fashion-mnist";
    std::string root = (fs::temp_directory_path() / "tapegrad-image-folder").string();
    std::size_t train_images = 6000, test_images = 1000;
    double min_accuracy = 0;
    bool compare = false;
    Settings s;
    CLI::App app{"LeNet trained from a folder of PNG files written from Fashion-MNIST."};
    app.add_option("--data-dir", dir, "Folder with the four gzip'd IDX files")->capture_default_str();
    app.add_option("--root", root, "Where to write root/train/<class>/*.png and root/test/<class>/*.png")
        ->capture_default_str();
    app.add_option("--train-images", train_images, "Training images to write (the first N)")
        ->check(CLI::Range(100, 60000))
        ->capture_default_str();
    app.add_option("--test-images", test_images, "Test images to write (the first N)")
        ->check(CLI::Range(100, 10000))
        ->capture_default_str();
    app.add_option("--epochs", s.epochs, "Epochs")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch-size", s.batch, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--workers", s.workers, "StreamingLoader worker threads")->capture_default_str();
    app.add_option("--lr", s.lr, "SGD learning rate (momentum 0.5)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_flag("--compare", compare, "Also train from memory on the same images; check the accuracies agree");
    app.add_option("--min-accuracy", min_accuracy, "Exit with status 1 below this final test accuracy (percent)");
    CLI11_PARSE(app, argc, argv);
    try {
        const fs::path d(dir);
        if (!fs::exists(d / "train-images-idx3-ubyte.gz")) {
            std::fprintf(stderr, "image_folder: no Fashion-MNIST in %s (install the dataset-fashion-mnist package)\n",
                         dir.c_str());
            return 2;
        }
        const auto t0 = std::chrono::steady_clock::now();
        write_pngs(data::read_idx((d / "train-images-idx3-ubyte.gz").string()),
                   data::read_idx((d / "train-labels-idx1-ubyte.gz").string()), train_images, fs::path(root) / "train");
        write_pngs(data::read_idx((d / "t10k-images-idx3-ubyte.gz").string()),
                   data::read_idx((d / "t10k-labels-idx1-ubyte.gz").string()), test_images, fs::path(root) / "test");
        std::printf("wrote %zu + %zu PNGs under %s (%.1f s)\n", train_images, test_images, root.c_str(),
                    seconds_since(t0));

        const double folder_accuracy = train_from_folders(root, s);
        std::printf("image_folder: test accuracy %.2f%% after %d epochs (ImageFolder, StreamingLoader, %zu workers)\n",
                    folder_accuracy, s.epochs, s.workers);
        bool same = true;
        if (compare) {
            auto train = data::load_idx_dataset<float>((d / "train-images-idx3-ubyte.gz").string(),
                                                       (d / "train-labels-idx1-ubyte.gz").string())
                             .subset(0, train_images);
            auto test = data::load_idx_dataset<float>((d / "t10k-images-idx3-ubyte.gz").string(),
                                                      (d / "t10k-labels-idx1-ubyte.gz").string())
                            .subset(0, test_images);
            data::ImageFolderOptions options;
            options.channels = 1;
            const data::ImageFolder<float> folder((fs::path(root) / "train").string(), options);
            const double memory_accuracy = train_in_memory(in_folder_order(train, folder), test, s);
            same = memory_accuracy == folder_accuracy;
            std::printf("image_folder: in memory %.2f%%, from PNG files %.2f%%: %s\n", memory_accuracy, folder_accuracy,
                        same ? "the same" : "DIFFERENT");
        }
        return folder_accuracy >= min_accuracy && same ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "image_folder: %s\n", e.what());
        return 2;
    }
}
