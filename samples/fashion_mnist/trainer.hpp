#pragma once
// The Fashion-MNIST training loop, shared by the fashion_mnist program and its tests:
// model, optimiser, schedule, evaluation, checkpoints and resume.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <tapegrad/checkpoint.hpp>
#include <tapegrad/data.hpp>
#include <tapegrad/nn.hpp>
#include <tapegrad/optim.hpp>

#ifdef TAPEGRAD_HAVE_DIST
#include <tapegrad/dist.hpp>
#endif

#include "progress.hpp"

namespace fashion {

/// Everything the command line sets. The defaults are the CNN recipe the README explains;
/// Config::mlp() gives the MLP's.
struct Config {
    /// "cnn": conv(1->32, 3x3)-BN-ReLU-maxpool 2, conv(32->64, 3x3)-BN-ReLU-maxpool 2,
    /// flatten, Linear(3136->128)-ReLU-Dropout, Linear(128->10); "mlp": Dense layers of
    /// `hidden` widths with dropout.
    std::string model = "cnn";
    std::string data_dir = "/usr/share/datasets/fashion-mnist";
    int epochs = 12;     ///< planned epochs (the cosine schedule's horizon)
    int stop_after = 0;  ///< stop after this epoch (0: run to `epochs`)
    std::size_t batch_size = 128;
    double lr = 1e-3;
    std::string optimizer = "adam";                ///< sgd | adam | adamw
    double momentum = 0.9;                         ///< sgd only
    double weight_decay = 0;                       ///< adamw: decoupled; sgd/adam: L2 in the gradient
    std::vector<std::size_t> hidden = {512, 256};  ///< mlp only
    double dropout = 0.3;                          ///< before the last layer (cnn), after each hidden layer (mlp)
    bool flip = false;                             ///< cnn: mirror half the training images, left to right
    std::string schedule = "cosine";               ///< none | cosine | step
    std::uint64_t seed = 1;
    int threads = 0;         ///< BLAS threads (0: OpenBLAS's default)
    std::string checkpoint;  ///< save here after every epoch
    std::string resume;      ///< continue from this checkpoint
    std::string plot;        ///< write the curves here (SVG)
    bool quiet = false;
    std::size_t train_limit = 0;  ///< use only the first N training rows (0: all)
    std::size_t test_limit = 0;   ///< use only the first N test rows (0: all)
    /// Data-parallel over the ranks of a tg::dist::World (which must be alive): each rank
    /// trains on its shard of every batch of `batch_size` rows, gradients are averaged, and
    /// only rank 0 writes checkpoints.
    bool distributed = false;

    /// The MLP's recipe: 784-512-256-10, dropout 0.2, AdamW (weight decay 0.05), 20 epochs.
    static Config mlp()
    {
        Config c;
        c.model = "mlp";
        c.epochs = 20;
        c.optimizer = "adamw";
        c.weight_decay = 0.05;
        c.dropout = 0.2;
        return c;
    }
};

/// The main job's CNN for 28x28 images (see Config::model), initialised from `gen` with
/// PyTorch's defaults; its parameter names are those of the same torch.nn.Sequential.
tg::nn::Sequential<float> make_cnn(std::size_t classes, double dropout, tg::Generator& gen);

/// Mirrors, left to right, the 28x28 images among `rows` [count, 784] that the epoch's coin
/// picks: row i is data set row ids[i], flipped in `epoch` when a hash of (seed, epoch, id)
/// is odd, so the same images flip whatever the batching or the number of ranks.
void flip_images(float* rows, const std::size_t* ids, std::size_t count, std::uint64_t seed, std::uint64_t epoch);

/// One epoch's figures.
struct EpochResult {
    int epoch = 0;
    double train_loss = 0, train_acc = 0;  ///< running means over the epoch's batches
    double test_loss = 0, test_acc = 0;    ///< after the epoch, in eval mode
    double train_seconds = 0, eval_seconds = 0;
    double samples_per_second = 0;
    double lr = 0;  ///< the rate the epoch trained with
};

class Trainer {
public:
    Trainer(const Config& config, const tg::data::Dataset<float>& train, const tg::data::Dataset<float>& test);
    ~Trainer();

    /// Restores model, optimiser, schedule, generators and history from a checkpoint
    /// written by a run with the same architecture; training continues after its epoch.
    void resume(const std::string& path);

    /// Trains the remaining epochs, calling `on_epoch` after each.
    void run(Progress& progress, const std::function<void(const EpochResult&)>& on_epoch);

    /// Loss and accuracy on a data set, in eval mode with recording off.
    std::pair<double, double> evaluate(const tg::data::Dataset<float>& data);

    tg::nn::Sequential<float>& model() { return model_; }
    tg::optim::Optimizer<float>& optimizer() { return *optimizer_; }
    int completed_epochs() const { return completed_; }
    const std::vector<EpochResult>& history() const { return history_; }
    /// A one-line description of model and recipe.
    std::string describe() const;
    /// Seconds spent averaging gradients over the ranks so far (0 in one process).
    double communication_seconds() const;

private:
    void save_checkpoint(const std::string& path, const std::map<std::string, std::string>& rank_states = {});
    void reseed_dropout_for_rank();
    std::map<std::string, std::string> rank_generator_states();
    bool restore_rank_generators(const tg::io::CheckpointInfo& info);
    std::string architecture() const;
    tg::Var<float> forward(const tg::Var<float>& x);

    Config config_;
    const tg::data::Dataset<float>& train_;
    const tg::data::Dataset<float>& test_;
    tg::nn::Sequential<float> model_;
    std::unique_ptr<tg::optim::Optimizer<float>> optimizer_;
    std::unique_ptr<tg::optim::LRScheduler<float>> schedule_;
    tg::data::DataLoader<float> loader_;
    int completed_ = 0;
    std::uint64_t steps_ = 0;
    std::vector<EpochResult> history_;
#ifdef TAPEGRAD_HAVE_DIST
    std::unique_ptr<tg::dist::DataParallel<float>> parallel_;
    std::unique_ptr<tg::dist::DistributedSampler> sampler_;
#endif
};

}  // namespace fashion
