// The training loop of the fashion_mnist sample. See trainer.hpp.

#include "trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include <xtensor/xview.hpp>

#include <tapegrad/checkpoint.hpp>
#include <tapegrad/ops.hpp>

namespace fashion {
namespace {

using Clock = std::chrono::steady_clock;
namespace nn = tg::nn;
namespace optim = tg::optim;

int rank()
{
#ifdef TAPEGRAD_HAVE_DIST
    return tg::dist::rank();
#else
    return 0;
#endif
}

double seconds_since(Clock::time_point t)
{
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::size_t count_correct(const xt::xarray<float>& logits, const xt::xarray<std::int64_t>& labels)
{
    const std::size_t n = logits.shape()[0], k = logits.shape()[1];
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const float* row = logits.data() + i * k;
        std::size_t best = 0;
        for (std::size_t j = 1; j < k; ++j) best = row[j] > row[best] ? j : best;
        correct += static_cast<std::int64_t>(best) == labels(i);
    }
    return correct;
}

std::unique_ptr<optim::Optimizer<float>> make_optimizer(const Config& c, std::vector<tg::Var<float>> params)
{
    if (c.optimizer == "sgd") {
        optim::SGDOptions o;
        o.lr = c.lr;
        o.momentum = c.momentum;
        o.nesterov = c.momentum > 0;
        o.weight_decay = c.weight_decay;
        return std::make_unique<optim::SGD<float>>(std::move(params), o);
    }
    if (c.optimizer == "adam") {
        optim::AdamOptions o;
        o.lr = c.lr;
        o.weight_decay = c.weight_decay;
        return std::make_unique<optim::Adam<float>>(std::move(params), o);
    }
    if (c.optimizer == "adamw") {
        optim::AdamWOptions o;
        o.lr = c.lr;
        o.weight_decay = c.weight_decay;
        return std::make_unique<optim::AdamW<float>>(std::move(params), o);
    }
    throw tg::Error("fashion_mnist: unknown optimizer '" + c.optimizer + "' (use sgd, adam or adamw)");
}

std::unique_ptr<optim::LRScheduler<float>> make_schedule(const Config& c, optim::Optimizer<float>& opt)
{
    if (c.schedule == "cosine") return std::make_unique<optim::CosineAnnealingLR<float>>(opt, c.epochs, c.lr * 0.01);
    if (c.schedule == "step") {
        const auto every = static_cast<std::uint64_t>(std::max(1, c.epochs / 3));
        return std::make_unique<optim::StepLR<float>>(opt, every, 0.2);
    }
    if (c.schedule == "none") return nullptr;
    throw tg::Error("fashion_mnist: unknown schedule '" + c.schedule + "' (use none, cosine or step)");
}

std::string history_to_text(const std::vector<EpochResult>& h)
{
    std::ostringstream s;
    s.precision(17);
    for (const auto& r : h) {
        s << r.epoch << ',' << r.train_loss << ',' << r.train_acc << ',' << r.test_loss << ',' << r.test_acc << ','
          << r.train_seconds << ',' << r.eval_seconds << ',' << r.samples_per_second << ',' << r.lr << '\n';
    }
    return s.str();
}

std::vector<EpochResult> history_from_text(const std::string& text)
{
    std::vector<EpochResult> out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        EpochResult r;
        char c = 0;
        std::istringstream f(line);
        f >> r.epoch >> c >> r.train_loss >> c >> r.train_acc >> c >> r.test_loss >> c >> r.test_acc >> c >>
            r.train_seconds >> c >> r.eval_seconds >> c >> r.samples_per_second >> c >> r.lr;
        if (f) out.push_back(r);
    }
    return out;
}

}  // namespace

void flip_images(float* rows, const std::size_t* ids, std::size_t count, std::uint64_t seed, std::uint64_t epoch)
{
    for (std::size_t i = 0; i < count; ++i) {
        // splitmix64 of the three: a fair, independent coin per (seed, epoch, image).
        std::uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (epoch << 32) + ids[i] + 0x632be59bd9b4e019ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        if ((z & 1) == 0) continue;
        float* image = rows + i * 28 * 28;
        for (std::size_t r = 0; r < 28; ++r) std::reverse(image + r * 28, image + r * 28 + 28);
    }
}

tg::nn::Sequential<float> make_cnn(std::size_t classes, double dropout, tg::Generator& gen)
{
    // PyTorch's default initialisation throughout (the layers' own defaults).
    const nn::Conv2dOptions no_bias{{1, 1}, {1, 1}, {1, 1}, 1, false};
    nn::Sequential<float> m;
    m.add(nn::Conv2d<float>(1, 32, 3, no_bias, gen))
        .add(nn::BatchNorm2d<float>(32))
        .add(nn::ReLU<float>())
        .add(nn::MaxPool2d<float>(2))
        .add(nn::Conv2d<float>(32, 64, 3, no_bias, gen))
        .add(nn::BatchNorm2d<float>(64))
        .add(nn::ReLU<float>())
        .add(nn::MaxPool2d<float>(2))
        .add(nn::Flatten<float>())
        .add(nn::Linear<float>(64 * 7 * 7, 128, true, gen))
        .add(nn::ReLU<float>());
    if (dropout > 0) m.add(nn::Dropout<float>(dropout, gen()));
    m.add(nn::Linear<float>(128, classes, true, gen));
    return m;
}

Trainer::Trainer(const Config& config, const tg::data::Dataset<float>& train, const tg::data::Dataset<float>& test)
    : config_(config), train_(train), test_(test), loader_(train, [&] {
          tg::data::DataLoader<float>::Options o;
          o.batch_size = config.batch_size;
          o.shuffle = true;
          o.seed = config.seed;
          return o;
      }())
{
    if (config.epochs < 1) throw tg::Error("fashion_mnist: --epochs must be at least 1");
    tg::Generator gen(config.seed);
    const auto classes = static_cast<std::size_t>(std::max(train.num_classes(), test.num_classes()));
    if (config.model == "cnn") {
        if (train.num_features() != 28 * 28)
            throw tg::Error("fashion_mnist: the cnn model needs 28x28 images, got " +
                            std::to_string(train.num_features()) + " features");
        model_ = make_cnn(classes, config.dropout, gen);
    } else if (config.model == "mlp") {
        std::size_t in = train.num_features();
        for (std::size_t h : config.hidden) {
            model_.add(nn::Dense<float>(in, h, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), gen));
            if (config.dropout > 0) model_.add(nn::Dropout<float>(config.dropout, gen()));
            in = h;
        }
        model_.add(
            nn::Dense<float>(in, classes, nn::Activation::none, nn::init::glorot_uniform(), nn::init::zeros(), gen));
    } else {
        throw tg::Error("fashion_mnist: unknown model '" + config.model + "' (use cnn or mlp)");
    }
    optimizer_ = make_optimizer(config, model_.parameters());
    schedule_ = make_schedule(config, *optimizer_);
    if (config.distributed) {
#ifdef TAPEGRAD_HAVE_DIST
        const int ranks = tg::dist::size(), rank = tg::dist::rank();
        if (config.batch_size % static_cast<std::size_t>(ranks) != 0) {
            throw tg::Error("fashion_mnist: --batch-size " + std::to_string(config.batch_size) +
                            " does not split evenly over " + std::to_string(ranks) + " ranks");
        }
        // The same seed as one process: rank r's shards of global batch i are the rows one
        // process would put in its batch i, so the runs differ only in rounding.
        sampler_ = std::make_unique<tg::dist::DistributedSampler>(
            train.size(), config.batch_size / static_cast<std::size_t>(ranks), ranks, rank,
            tg::dist::SamplerOptions{true, config.seed, false});
        parallel_ = std::make_unique<tg::dist::DataParallel<float>>(model_.named_parameters());
        reseed_dropout_for_rank();
#else
        throw tg::Error("fashion_mnist: this build has no MPI, so no --distributed (install libopenmpi-dev and "
                        "openmpi-bin, then rebuild)");
#endif
    }
}

// Rank 0 keeps the one-process dropout stream; every other rank gets a stream of its own,
// derived from the current state, so that the ranks' masks are not copies of each other.
void Trainer::reseed_dropout_for_rank()
{
#ifdef TAPEGRAD_HAVE_DIST
    const auto rank = static_cast<std::uint64_t>(tg::dist::rank());
    if (rank == 0) return;
    for (auto& [name, gen] : model_.named_generators()) {
        const std::uint64_t base = (*gen)();
        gen->seed(base ^ (0x9e3779b97f4a7c15ULL * rank));
    }
#endif
}

// A distributed checkpoint also holds every other rank's dropout generators, so that a
// resumed run draws the same masks as an uninterrupted one: rank r's as the extra entry
// "rng.rank<r>", one "name state" line per generator. Collective: every rank calls it, and
// rank 0 gets them all.
std::map<std::string, std::string> Trainer::rank_generator_states()
{
    std::map<std::string, std::string> out;
#ifdef TAPEGRAD_HAVE_DIST
    std::ostringstream mine;
    for (auto& [name, gen] : model_.named_generators()) mine << name << ' ' << *gen << '\n';
    const std::string text = mine.str();
    for (int r = 1; r < tg::dist::size(); ++r) {
        xt::xarray<std::int64_t> chars = xt::zeros<std::int64_t>({tg::dist::rank() == r ? text.size() : 0});
        if (tg::dist::rank() == r) std::copy(text.begin(), text.end(), chars.begin());
        tg::dist::broadcast(chars, r);
        if (tg::dist::rank() == 0) out["rng.rank" + std::to_string(r)] = std::string(chars.begin(), chars.end());
    }
#endif
    return out;
}

// This rank's generators from its "rng.rank<r>" entry; false when the checkpoint has none
// (one written by a single process or by fewer ranks).
bool Trainer::restore_rank_generators(const tg::io::CheckpointInfo& info)
{
#ifdef TAPEGRAD_HAVE_DIST
    const auto it = info.extra.find("rng.rank" + std::to_string(tg::dist::rank()));
    if (it == info.extra.end()) return false;
    std::istringstream in(it->second);
    std::map<std::string, tg::Generator> states;
    std::string name;
    tg::Generator g;
    while (in >> name >> g) states[name] = g;
    const auto gens = model_.named_generators();
    for (const auto& [n, gen] : gens) {
        if (states.count(n) == 0) return false;  // another model's entry: derive instead
    }
    for (auto& [n, gen] : gens) *gen = states[n];
    return true;
#else
    (void)info;
    return false;
#endif
}

double Trainer::communication_seconds() const
{
#ifdef TAPEGRAD_HAVE_DIST
    if (parallel_) return parallel_->communication_seconds();
#endif
    return 0;
}

Trainer::~Trainer() = default;

// The model's input: images [batch, 1, 28, 28] for the CNN, rows of pixels for the MLP.
tg::Var<float> Trainer::forward(const tg::Var<float>& x)
{
    if (config_.model != "cnn") return model_(x);
    const std::size_t n = x.shape()[0];
    return model_(tg::reshape(x, {n, 1, 28, 28}));
}

std::string Trainer::architecture() const
{
    std::ostringstream s;
    if (config_.model == "cnn") {
        s << "conv32-bn-relu-pool conv64-bn-relu-pool fc128 dropout " << config_.dropout << " fc"
          << model_.output_features(std::nullopt).value_or(0) << ' ' << config_.optimizer
          << (config_.flip ? " flips" : "");
        return s.str();
    }
    s << train_.num_features();
    for (std::size_t h : config_.hidden) s << '-' << h;
    s << '-' << model_.output_features(train_.num_features()).value_or(0) << " dropout " << config_.dropout << ' '
      << config_.optimizer;
    return s.str();
}

std::string Trainer::describe() const
{
    std::ostringstream s;
    s << (config_.model == "cnn" ? "CNN " : "MLP ") << architecture() << " (lr " << config_.lr << ", weight decay "
      << config_.weight_decay << ", " << config_.schedule << " schedule, batch " << config_.batch_size << ", "
      << config_.epochs << " epochs, " << model_.num_parameters() << " parameters)";
    return s.str();
}

std::pair<double, double> Trainer::evaluate(const tg::data::Dataset<float>& data)
{
    tg::NoGradGuard no_grad;
    model_.eval();
    const std::size_t n = data.size(), chunk = 1000;
    double loss = 0;
    std::size_t correct = 0;
    for (std::size_t first = 0; first < n; first += chunk) {
        const std::size_t count = std::min(chunk, n - first);
        tg::Var<float> x =
            tg::constant(xt::xarray<float>(xt::view(data.features(), xt::range(first, first + count), xt::all())));
        const xt::xarray<std::int64_t> labels = xt::view(data.labels(), xt::range(first, first + count));
        tg::Var<float> logits = forward(x);
        loss += static_cast<double>(tg::cross_entropy(logits, labels).item()) * count;
        correct += count_correct(logits.value(), labels);
    }
    model_.train();
    return {loss / n, static_cast<double>(correct) / n};
}

void Trainer::run(Progress& progress, const std::function<void(const EpochResult&)>& on_epoch)
{
    const int last = config_.stop_after > 0 ? std::min(config_.stop_after, config_.epochs) : config_.epochs;
    tg::Var<float> x = tg::constant(xt::xarray<float>());
    xt::xarray<std::int64_t> labels;
    for (int epoch = completed_ + 1; epoch <= last; ++epoch) {
        loader_.set_epoch(static_cast<std::uint64_t>(epoch - 1));
#ifdef TAPEGRAD_HAVE_DIST
        if (sampler_) sampler_->set_epoch(static_cast<std::uint64_t>(epoch - 1));
        const std::size_t steps = sampler_ ? sampler_->num_batches() : loader_.num_batches();
#else
        const std::size_t steps = loader_.num_batches();
#endif
        model_.train();
        progress.start(epoch, config_.epochs, steps);
        EpochResult r;
        r.epoch = epoch;
        r.lr = optimizer_->lr();
        double loss_sum = 0;
        std::size_t correct = 0, seen = 0;
        const auto start = Clock::now();
        for (std::size_t b = 0; b < steps; ++b) {
            const std::size_t* ids = nullptr;  // the batch's rows of the data set
#ifdef TAPEGRAD_HAVE_DIST
            if (sampler_) {
                sampler_->fill(train_, b, x.mutable_value(), labels);
                ids = sampler_->indices().data() + sampler_->batch_range(b).first;
            } else {
                loader_.fill(b, x.mutable_value(), labels);  // straight into the input's buffer
                ids = loader_.order().data() + b * config_.batch_size;
            }
#else
            loader_.fill(b, x.mutable_value(), labels);  // straight into the input's buffer
            ids = loader_.order().data() + b * config_.batch_size;
#endif
            if (config_.model == "cnn" && config_.flip) {
                flip_images(x.mutable_value().data(), ids, labels.size(), config_.seed,
                            static_cast<std::uint64_t>(epoch - 1));
            }
            optimizer_->zero_grad();
            const std::size_t count = labels.size();
            if (count > 0) {
                tg::Var<float> logits = forward(x);
                tg::Var<float> loss = tg::cross_entropy(logits, labels);
                loss.backward();
                loss_sum += static_cast<double>(loss.item()) * count;
                correct += count_correct(logits.value(), labels);
                seen += count;
            }
#ifdef TAPEGRAD_HAVE_DIST
            if (parallel_) parallel_->synchronize(count);  // the mean over the global batch
#endif
            optimizer_->step();
            ++steps_;
            progress.update(b + 1, seen, loss_sum / seen, static_cast<double>(correct) / seen);
        }
        r.train_seconds = seconds_since(start);
        progress.finish();
#ifdef TAPEGRAD_HAVE_DIST
        if (parallel_) {  // the epoch's figures over all ranks
            xt::xarray<double> totals{loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
            tg::dist::all_reduce(totals);
            loss_sum = totals(0);
            correct = static_cast<std::size_t>(totals(1));
            seen = static_cast<std::size_t>(totals(2));
        }
#endif
        r.train_loss = loss_sum / seen;
        r.train_acc = static_cast<double>(correct) / seen;
        r.samples_per_second = seen / r.train_seconds;
        if (schedule_) schedule_->step();
        const auto eval_start = Clock::now();
        std::tie(r.test_loss, r.test_acc) = evaluate(test_);
        r.eval_seconds = seconds_since(eval_start);
        completed_ = epoch;
        history_.push_back(r);
        // In a distributed run every rank holds the same model and optimiser state: rank 0 saves.
        const bool root = !config_.distributed || rank() == 0;
        if (!config_.checkpoint.empty()) {
            const auto states = config_.distributed ? rank_generator_states() : std::map<std::string, std::string>{};
            if (root) save_checkpoint(config_.checkpoint, states);
        }
        on_epoch(r);
    }
}

void Trainer::save_checkpoint(const std::string& path, const std::map<std::string, std::string>& rank_states)
{
    tg::io::CheckpointInfo info;
    info.extra = rank_states;
    info.epoch = static_cast<std::uint64_t>(completed_);
    info.step = steps_;
    info.extra["architecture"] = architecture();
    info.extra["history"] = history_to_text(history_);
    tg::io::save_checkpoint(path, model_, *optimizer_, info);
}

void Trainer::resume(const std::string& path)
{
    // Check the recipe first, so that a mismatch is reported as such.
    const tg::io::CheckpointInfo peek = tg::io::read_checkpoint_info(path);
    const auto arch = peek.extra.find("architecture");
    if (arch == peek.extra.end() || arch->second != architecture()) {
        throw tg::Error(path + ": the checkpoint is for " +
                        (arch == peek.extra.end() ? "an unknown model" : arch->second) + ", but this run is " +
                        architecture());
    }
    const tg::io::CheckpointInfo info = tg::io::load_checkpoint(path, model_, *optimizer_);
    completed_ = static_cast<int>(info.epoch);
    steps_ = info.step;
    const auto h = info.extra.find("history");
    history_ = h == info.extra.end() ? std::vector<EpochResult>{} : history_from_text(h->second);
    if (schedule_) schedule_->set_epoch(info.epoch);
    if (config_.distributed && !restore_rank_generators(info)) reseed_dropout_for_rank();
}

}  // namespace fashion
