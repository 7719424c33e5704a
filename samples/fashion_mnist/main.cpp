// fashion_mnist: trains a classifier on Fashion-MNIST with tapegrad (a small CNN by default,
// an MLP with --model mlp) and reports accuracy and speed. The README's first command runs
// it with the defaults.

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include <tapegrad/tapegrad.hpp>

#include "plot.hpp"
#include "trainer.hpp"

namespace {

const char* kFiles[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"};

bool data_present(const std::string& dir)
{
    for (const char* f : kFiles) {
        if (!std::filesystem::exists(std::filesystem::path(dir) / f)) return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv)
{
    fashion::Config c;
    CLI::App app{"Train a convolutional network (or an MLP) on Fashion-MNIST with tapegrad."};
    app.add_option("--model", c.model, "cnn, or mlp (whose recipe then changes the defaults marked [cnn])")
        ->check(CLI::IsMember({"cnn", "mlp"}))
        ->capture_default_str();
    app.add_option("--data-dir", c.data_dir, "Folder with the four gzip'd IDX files")->capture_default_str();
    app.add_option("--epochs", c.epochs, "Epochs to train (also the cosine schedule's horizon) [cnn]")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--stop-after", c.stop_after, "Stop after this epoch (resume later with --resume)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--batch-size", c.batch_size, "Mini-batch size")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--lr", c.lr, "Learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--optimizer", c.optimizer, "sgd, adam or adamw [cnn]")
        ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
        ->capture_default_str();
    app.add_option("--momentum", c.momentum, "Momentum (sgd only; Nesterov when > 0)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    app.add_option("--weight-decay", c.weight_decay, "Weight decay (decoupled for adamw) [cnn]")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--hidden", c.hidden, "Hidden layer widths of the mlp, e.g. 256,128")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--dropout", c.dropout,
                   "Dropout before the last layer (cnn), after each hidden layer (mlp); 0: off [cnn]")
        ->check(CLI::Range(0.0, 0.99))
        ->capture_default_str();
    app.add_flag("--flip", c.flip, "cnn: mirror a random half of the training images each epoch");
    app.add_option("--schedule", c.schedule, "Learning-rate schedule: none, cosine or step")
        ->check(CLI::IsMember({"none", "cosine", "step"}))
        ->capture_default_str();
    app.add_option("--seed", c.seed, "Seed for initial weights, shuffling and dropout")->capture_default_str();
    app.add_option("--threads", c.threads,
                   "Threads for matrix products and convolutions (default: the library's, all cores less those "
                   "other processes keep busy)")
        ->check(CLI::PositiveNumber);
    app.add_option("--checkpoint", c.checkpoint, "Save a checkpoint (safetensors) here after every epoch");
    app.add_option("--resume", c.resume, "Continue training from this checkpoint");
    app.add_option("--plot", c.plot, "Write loss and accuracy curves to this SVG file");
    app.add_option("--train-limit", c.train_limit, "Train on the first N rows only (0: all 60000)");
    app.add_option("--test-limit", c.test_limit, "Evaluate on the first N test rows only (0: all 10000)");
    app.add_flag("--quiet", c.quiet, "No progress bar, one line per epoch");
    app.add_flag("--distributed", c.distributed,
                 "Data-parallel over MPI ranks (run under mpirun -np N); --batch-size is the global batch");
    CLI11_PARSE(app, argc, argv);
    if (c.model == "mlp") {
        // The MLP's own recipe for every option the command line left at the CNN's default.
        const fashion::Config mlp = fashion::Config::mlp();
        if (app.count("--epochs") == 0) c.epochs = mlp.epochs;
        if (app.count("--optimizer") == 0) c.optimizer = mlp.optimizer;
        if (app.count("--weight-decay") == 0) c.weight_decay = mlp.weight_decay;
        if (app.count("--dropout") == 0) c.dropout = mlp.dropout;
    }

    if (!data_present(c.data_dir)) {
        std::fprintf(
            stderr,
            "fashion_mnist: Fashion-MNIST not found in %s (expected %s and the three other IDX files).\n"
            "Install Debian's dataset-fashion-mnist package (scripts/install-deps does), or pass --data-dir.\n",
            c.data_dir.c_str(), kFiles[0]);
        return 2;
    }

#ifdef TAPEGRAD_HAVE_DIST
    std::unique_ptr<tg::dist::World> world;
    if (c.distributed) world = std::make_unique<tg::dist::World>(argc, argv);
#else
    if (c.distributed) {
        std::fprintf(stderr, "fashion_mnist: --distributed needs a build with MPI (install libopenmpi-dev and "
                             "openmpi-bin, then rebuild)\n");
        return 2;
    }
#endif
    int rank = 0, ranks = 1, local_ranks = 1;
#ifdef TAPEGRAD_HAVE_DIST
    if (world) rank = world->rank(), ranks = world->size(), local_ranks = world->local_size();
#endif
    // Only rank 0 talks, plots and saves; every rank computes.
    const bool root = rank == 0;
    try {
        if (c.threads > 0) {
            tg::set_num_threads(c.threads);
        } else if (c.distributed) {
            // The ranks on one machine share its cores: BLAS threads that add up to the cores.
            const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
            tg::set_num_threads(std::max(1, cores / local_ranks));
        }
        const std::filesystem::path dir(c.data_dir);
        auto train = tg::data::load_idx_dataset<float>((dir / kFiles[0]).string(), (dir / kFiles[1]).string());
        auto test = tg::data::load_idx_dataset<float>((dir / kFiles[2]).string(), (dir / kFiles[3]).string());
        if (c.train_limit > 0 && c.train_limit < train.size()) train = train.subset(0, c.train_limit);
        if (c.test_limit > 0 && c.test_limit < test.size()) test = test.subset(0, c.test_limit);

        fashion::Trainer trainer(c, train, test);
        if (!c.resume.empty()) {
            trainer.resume(c.resume);
            if (root) std::printf("resumed from %s after epoch %d\n", c.resume.c_str(), trainer.completed_epochs());
        }
        if (root) {
            std::printf("Fashion-MNIST: %zu training and %zu test images; %s; threads %d", train.size(), test.size(),
                        trainer.describe().c_str(), tg::get_num_threads());
            if (c.distributed)
                std::printf("; %d ranks x batch %zu", ranks, c.batch_size / static_cast<std::size_t>(ranks));
            std::printf("\n");
        }

        const bool live = root && !c.quiet && isatty(STDOUT_FILENO) != 0;
        fashion::Progress progress(live);
        double total_train = 0;
        for (const auto& r : trainer.history()) total_train += r.train_seconds;
        trainer.run(progress, [&](const fashion::EpochResult& r) {
            total_train += r.train_seconds;
            if (!root) return;
            std::printf("epoch %2d/%d  train loss %.4f  train acc %.2f%%  test loss %.4f  test acc %.2f%%  "
                        "time %.2f s (%.0f samples/s)  lr %.3g\n",
                        r.epoch, c.epochs, r.train_loss, 100 * r.train_acc, r.test_loss, 100 * r.test_acc,
                        r.train_seconds, r.samples_per_second, r.lr);
            std::fflush(stdout);
        });

        const auto& h = trainer.history();
        if (!root) return 0;
        if (h.empty()) {
            std::printf("nothing to train: the checkpoint already has %d of %d epochs\n", trainer.completed_epochs(),
                        c.epochs);
            return 0;
        }
        std::printf("final test accuracy %.2f%% after %d epochs; training time %.1f s (%.2f s per epoch)\n",
                    100 * h.back().test_acc, h.back().epoch, total_train, total_train / h.size());
        if (c.distributed) {
            double this_run = 0;
            for (const auto& r : h) this_run += r.train_seconds;
            std::printf("gradient averaging on rank 0: %.2f s, %.1f%% of this run's training time\n",
                        trainer.communication_seconds(), 100 * trainer.communication_seconds() / this_run);
        }
        if (!c.plot.empty()) {
            fashion::Curves curves;
            for (const auto& r : h) {
                curves.train_loss.push_back(r.train_loss);
                curves.test_loss.push_back(r.test_loss);
                curves.train_acc.push_back(r.train_acc);
                curves.test_acc.push_back(r.test_acc);
            }
            fashion::write_svg(c.plot, curves, "tapegrad on Fashion-MNIST", trainer.describe());
            std::printf("wrote %s\n", c.plot.c_str());
        }
        if (!c.checkpoint.empty()) std::printf("checkpoint: %s\n", c.checkpoint.c_str());
    } catch (const tg::Error& e) {
#ifdef TAPEGRAD_HAVE_DIST
        if (world) {  // the other ranks cannot know
            const std::string what = e.what();
            world->abort(what.rfind("fashion_mnist: ", 0) == 0 ? what : "fashion_mnist: " + what);
        }
#endif
        std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
        return 1;
    }
    return 0;
}
