// char_lm: a character-level language model of English text, the second main job. The text is
// the fortunes corpus (Debian package fortunes, /usr/share/games/fortunes: 41 files but the
// ASCII-art ones, about 14,700 entries), split 90/10 at entry boundaries with a fixed seed.
//
//   characters [T, N] -> Embedding 64 -> 2-layer LSTM 256 (dropout 0.1) -> Dropout -> Linear
//   -> logits over the corpus's bytes -> cross_entropy; Adam with a cosine schedule, gradient
//   clipping, truncated backpropagation through time (each batch row reads its own stream of
//   text, the state carried from window to window and detached at each window's start).
//
//   char_lm [--model lstm|gru|transformer] [--epochs 4] [--minutes 10] [--batch-size 32]
//           [--bptt 64] [--lr 0.003] [--hidden 256] [--layers 2] [--embedding 64]
//           [--dropout 0.1] [--clip 1] [--seed 1] [--plot FILE] [--checkpoint FILE]
//           [--resume FILE] [--stop-after E] [--sample 400] [--steps S] [--quiet] ...
//
// After every epoch it prints validation bits per character beside a bigram baseline (add-one
// smoothing) it computes itself. --minutes bounds the training time: training stops at the
// first step after it, and the run ends with a last validation. The end is a generated
// sample. --max-bpc B makes the exit status 1 when the final validation is above B.
// Characters are bytes: the few non-ASCII characters of the corpus are several bytes each.

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <tapegrad/tapegrad.hpp>

#include "corpus.hpp"
#include "model.hpp"
#include "plot.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string model = "lstm", data_dir = "/usr/share/games/fortunes", plot, checkpoint, resume;
    std::size_t epochs = 4, batch = 32, bptt = 64, hidden = 256, layers = 2, embedding = 64, heads = 4;
    std::size_t entries = 0, sample = 400, eval_batch = 64, warmup = 100, steps = 0, eval_every = 0;
    double minutes = 10, lr = 3e-3, min_lr = 0.1, dropout = 0.1, clip = 1.0, temperature = 0.8, max_bpc = 0;
    std::uint64_t seed = 1;
    int threads = 0, stop_after = 0;
    bool quiet = false;
};

// The settings that must match for --resume to continue the same run.
std::string run_signature(const Options& o, const charlm::Vocabulary& vocab)
{
    std::ostringstream s;
    s << "model=" << o.model << " hidden=" << o.hidden << " layers=" << o.layers << " embedding=" << o.embedding
      << " heads=" << o.heads << " dropout=" << o.dropout << " batch=" << o.batch << " bptt=" << o.bptt
      << " lr=" << o.lr << " min_lr=" << o.min_lr << " warmup=" << o.warmup << " clip=" << o.clip
      << " epochs=" << o.epochs << " seed=" << o.seed << " entries=" << o.entries << " vocabulary=" << vocab.size();
    return s.str();
}

// Validation bits per character: the text as eval_batch streams, each read window after
// window with the state carried (recurrent models) or window by window (the Transformer).
double evaluate(charlm::CharModel& model, const charlm::Streams& streams)
{
    tg::NoGradGuard no_grad;
    model.eval();
    tg::nn::RecurrentState<float> state;
    xt::xarray<std::int64_t> input, target;
    double nats = 0;
    std::size_t count = 0;
    for (std::size_t s = 0; s < streams.steps(); ++s) {
        streams.fill(s, input, target);
        const tg::Var<float> logits = model.forward(input, state);
        const std::size_t n = input.size(), v = logits.shape()[2];
        nats += static_cast<double>(tg::cross_entropy(tg::reshape(logits, {n, v}),
                                                      xt::xarray<std::int64_t>(xt::flatten(target)), tg::Reduction::sum)
                                        .item());
        count += n;
    }
    model.train();
    return nats / (double(count) * std::log(2.0));
}

// Characters drawn from the model one at a time (temperature-scaled softmax), after "%\n".
std::string generate(charlm::CharModel& model, const charlm::Vocabulary& vocab, std::size_t length, double temperature,
                     std::uint64_t seed)
{
    tg::NoGradGuard no_grad;
    model.eval();
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const bool transformer = model.config().kind == charlm::Kind::transformer;
    std::vector<std::int64_t> window = {vocab.index('%'), vocab.index('\n')};
    tg::nn::RecurrentState<float> state;
    std::string out;
    std::vector<std::int64_t> feed = window;
    while (out.size() < length) {
        xt::xarray<std::int64_t> input = xt::zeros<std::int64_t>({feed.size(), std::size_t(1)});
        for (std::size_t t = 0; t < feed.size(); ++t) input(t, 0) = feed[t];
        const xt::xarray<float> logits = model.forward(input, state).value();
        const std::size_t last = feed.size() - 1, v = vocab.size();
        std::vector<double> p(v);
        double top = -HUGE_VAL, total = 0;
        for (std::size_t k = 0; k < v; ++k) top = std::max(top, double(logits(last, 0, k)) / temperature);
        for (std::size_t k = 0; k < v; ++k) total += p[k] = std::exp(double(logits(last, 0, k)) / temperature - top);
        double r = uniform(rng) * total;
        std::size_t pick = 0;
        while (pick + 1 < v && (r -= p[pick]) > 0) ++pick;
        out += vocab.byte(static_cast<std::int64_t>(pick));
        if (transformer) {
            window.push_back(static_cast<std::int64_t>(pick));
            if (window.size() > model.config().context) window.erase(window.begin());
            feed = window;
        } else {
            feed = {static_cast<std::int64_t>(pick)};
        }
    }
    model.train();
    return out;
}

// A progress bar redrawn in place on a terminal, at most ten times a second.
class Progress {
public:
    explicit Progress(bool live) : live_(live) {}
    void start(std::size_t epoch, std::size_t epochs, std::size_t steps)
    {
        epoch_ = epoch;
        epochs_ = epochs;
        steps_ = steps;
        begin_ = Clock::now();
        drawn_ = begin_ - std::chrono::seconds(1);
    }
    void update(std::size_t done, std::size_t chars, double bpc)
    {
        if (!live_) return;
        const auto now = Clock::now();
        if (done < steps_ && now - drawn_ < std::chrono::milliseconds(100)) return;
        drawn_ = now;
        const double seconds = std::chrono::duration<double>(now - begin_).count();
        const int width = 28, filled = static_cast<int>(width * done / std::max<std::size_t>(steps_, 1));
        std::string bar(static_cast<std::size_t>(filled), '#');
        bar.resize(width, '.');
        std::printf("\r\033[Kepoch %zu/%zu |%s| %zu/%zu  %.0f chars/s  %.3f bpc  %.0fs left", epoch_, epochs_,
                    bar.c_str(), done, steps_, seconds > 0 ? chars / seconds : 0.0, bpc,
                    done > 0 ? seconds * double(steps_ - done) / double(done) : 0.0);
        std::fflush(stdout);
    }
    void clear()
    {
        if (!live_) return;
        std::printf("\r\033[K");
        std::fflush(stdout);
    }

private:
    bool live_;
    std::size_t epoch_ = 0, epochs_ = 0, steps_ = 0;
    Clock::time_point begin_, drawn_;
};

// History entries of a checkpoint: "minutes:bpc;minutes:bpc;..." and back.
std::string encode_points(const std::vector<charlm::Point>& points)
{
    std::ostringstream s;
    s.precision(17);
    for (const auto& p : points) s << p.minutes << ':' << p.bpc << ';';
    return s.str();
}

std::vector<charlm::Point> decode_points(const std::string& text)
{
    std::vector<charlm::Point> points;
    std::istringstream s(text);
    std::string item;
    while (std::getline(s, item, ';')) {
        const auto colon = item.find(':');
        if (colon == std::string::npos) throw tg::Error("char_lm: the checkpoint's history is damaged");
        points.push_back({std::stod(item.substr(0, colon)), std::stod(item.substr(colon + 1))});
    }
    return points;
}

int run(const Options& o)
{
    if (o.threads > 0) tg::set_num_threads(o.threads);
    const charlm::Kind kind = charlm::parse_kind(o.model);
    if (o.epochs == 0) throw tg::Error("char_lm: --epochs must be positive");
    if (!(o.lr > 0)) throw tg::Error("char_lm: --lr must be positive");

    const charlm::Corpus corpus = charlm::load_fortunes(o.data_dir, charlm::kSplitSeed, 0.1, o.entries);
    const charlm::Vocabulary vocab(corpus);
    const std::vector<std::int64_t> validation_text = vocab.encode(corpus.validation);
    const std::vector<std::int64_t> first_epoch = charlm::epoch_text(corpus, vocab, o.seed, 1);
    std::printf("corpus: %zu files in %s, %zu bytes, sha256 %s\n", corpus.files.size(), o.data_dir.c_str(),
                corpus.bytes, corpus.sha256.c_str());
    std::printf("entries: %zu training (%zu characters), %zu validation (%zu characters); vocabulary %zu bytes\n",
                corpus.train.size(), first_epoch.size(), corpus.validation.size(), validation_text.size(),
                vocab.size());
    const double bigram = charlm::bigram_bits_per_char(first_epoch, validation_text, vocab.size());
    std::printf("bigram baseline (add-one smoothing): %.3f bits per character on validation\n", bigram);

    charlm::ModelConfig config;
    config.kind = kind;
    config.vocabulary = vocab.size();
    config.embedding = o.embedding;
    config.hidden = o.hidden;
    config.layers = o.layers;
    config.dropout = o.dropout;
    config.heads = o.heads;
    config.context = o.bptt;
    tg::Generator gen(o.seed);
    charlm::CharModel model(config, gen);
    tg::optim::AdamOptions adam;
    adam.lr = o.lr;
    tg::optim::Adam<float> optimizer(model.parameters(), adam);
    std::printf("model: %s, %zu layers of %zu, %zu parameters; batch %zu x %zu characters, Adam %g (cosine to %g), "
                "clip %g, %zu epochs",
                o.model.c_str(), o.layers, o.hidden, model.num_parameters(), o.batch, o.bptt, o.lr, o.lr * o.min_lr,
                o.clip, o.epochs);
    if (o.minutes > 0) std::printf(", at most %g minutes", o.minutes);
    std::printf("\n");

    const std::string signature = run_signature(o, vocab);
    charlm::LossCurves curves;
    curves.bigram = bigram;
    std::size_t first = 1;
    double trained_seconds = 0;
    if (!o.resume.empty()) {
        const tg::io::CheckpointInfo peek = tg::io::read_checkpoint_info(o.resume);
        const auto it = peek.extra.find("signature");
        if (it == peek.extra.end() || it->second != signature) {
            throw tg::Error("char_lm: " + o.resume + " is a checkpoint of another run (" +
                            (it == peek.extra.end() ? std::string("no settings") : it->second) + "), not of " +
                            signature);
        }
        const tg::io::CheckpointInfo info = tg::io::load_checkpoint(o.resume, model, optimizer);
        curves.train = decode_points(info.extra.at("train"));
        curves.validation = decode_points(info.extra.at("validation"));
        trained_seconds = std::stod(info.extra.at("seconds"));
        first = info.epoch + 1;
        std::printf("resumed from %s after epoch %zu (%.1f minutes of training)\n", o.resume.c_str(),
                    static_cast<std::size_t>(info.epoch), trained_seconds / 60);
    }

    const charlm::Streams validation(validation_text, o.eval_batch, o.bptt);
    const std::size_t steps = charlm::Streams(first_epoch, o.batch, o.bptt).steps(), total = steps * o.epochs;
    Progress progress(!o.quiet && isatty(fileno(stdout)));
    const double ln2 = std::log(2.0);
    bool out_of_time = false;
    double validation_bpc = curves.validation.empty() ? HUGE_VAL : curves.validation.back().bpc;
    xt::xarray<std::int64_t> input, target;
    for (std::size_t epoch = first; epoch <= o.epochs && !out_of_time; ++epoch) {
        const charlm::Streams train(epoch == 1 ? first_epoch : charlm::epoch_text(corpus, vocab, o.seed, epoch),
                                    o.batch, o.bptt);
        tg::nn::RecurrentState<float> state;
        progress.start(epoch, o.epochs, steps);
        double epoch_nats = 0, window_nats = 0;
        std::size_t done = 0, window = 0;
        const auto epoch_begin = Clock::now();
        double paused = 0;  // seconds of validation within the epoch, not training
        const auto trained = [&] {
            return trained_seconds + std::chrono::duration<double>(Clock::now() - epoch_begin).count() - paused;
        };
        for (std::size_t s = 0; s < train.steps(); ++s) {
            const std::size_t global = (epoch - 1) * steps + s;
            train.fill(s, input, target);
            const tg::Var<float> logits = model.forward(input, state);
            const tg::Var<float> loss = tg::cross_entropy(tg::reshape(logits, {input.size(), vocab.size()}),
                                                          xt::xarray<std::int64_t>(xt::flatten(target)));
            optimizer.zero_grad();
            loss.backward();
            if (o.clip > 0) tg::optim::clip_grad_norm(optimizer.parameters(), o.clip);
            optimizer.set_lr(charlm::scheduled_lr(global, total, o.lr, o.min_lr, o.warmup));
            optimizer.step();
            const double nats = static_cast<double>(loss.item());
            epoch_nats += nats;
            window_nats += nats;
            ++done;
            ++window;
            const double seconds = trained();
            if (window == 50 || s + 1 == train.steps()) {
                curves.train.push_back({seconds / 60, window_nats / window / ln2});
                window_nats = 0;
                window = 0;
            }
            if (o.eval_every > 0 && (global + 1) % o.eval_every == 0 && s + 1 < train.steps()) {
                const auto pause = Clock::now();
                progress.clear();
                const double bpc = evaluate(model, validation);
                curves.validation.push_back({seconds / 60, bpc});
                std::printf("  step %zu: validation %.3f bpc after %.2f minutes of training\n", global + 1, bpc,
                            seconds / 60);
                std::fflush(stdout);
                paused += std::chrono::duration<double>(Clock::now() - pause).count();
            }
            progress.update(done, done * input.size(), epoch_nats / double(done) / ln2);
            if ((o.minutes > 0 && seconds >= o.minutes * 60) || (o.steps > 0 && optimizer.step_count() >= o.steps)) {
                out_of_time = true;
                break;
            }
        }
        const double epoch_seconds = trained() - trained_seconds;
        trained_seconds += epoch_seconds;
        progress.clear();
        const auto eval_begin = Clock::now();
        validation_bpc = evaluate(model, validation);
        const double eval_seconds = std::chrono::duration<double>(Clock::now() - eval_begin).count();
        curves.validation.push_back({trained_seconds / 60, validation_bpc});
        std::printf("epoch %zu/%zu: training %.3f bpc, validation %.3f bpc (bigram %.3f); %.1f minutes of training, "
                    "%.0f ms per step%s; evaluation %.1f s\n",
                    epoch, o.epochs, epoch_nats / double(std::max<std::size_t>(done, 1)) / ln2, validation_bpc, bigram,
                    trained_seconds / 60, 1000 * epoch_seconds / double(std::max<std::size_t>(done, 1)),
                    out_of_time ? ", stopped early (--minutes or --steps)" : "", eval_seconds);
        std::fflush(stdout);
        if (!o.plot.empty()) charlm::write_loss_svg(o.plot, curves, "char_lm: " + o.model + " on fortunes");
        if (!o.checkpoint.empty() && !out_of_time) {
            tg::io::CheckpointInfo info;
            info.epoch = epoch;
            info.step = optimizer.step_count();
            info.extra = {{"signature", signature},
                          {"train", encode_points(curves.train)},
                          {"validation", encode_points(curves.validation)},
                          {"seconds", std::to_string(trained_seconds)}};
            tg::io::save_checkpoint(o.checkpoint, model, optimizer, info);
        }
        if (o.stop_after > 0 && epoch == static_cast<std::size_t>(o.stop_after)) {
            std::printf("stopped after epoch %zu%s\n", epoch,
                        o.checkpoint.empty() ? "" : (" (continue with --resume " + o.checkpoint + ")").c_str());
            break;
        }
    }
    if (first > o.epochs) std::printf("nothing to train: the checkpoint has all %zu epochs\n", o.epochs);
    std::printf("final validation: %.3f bits per character after %.1f minutes of training\n", validation_bpc,
                trained_seconds / 60);
    if (!o.plot.empty()) std::printf("loss curves: %s\n", o.plot.c_str());
    if (!o.checkpoint.empty()) std::printf("checkpoint: %s\n", o.checkpoint.c_str());
    if (o.sample > 0) {
        std::printf("sample (temperature %g):\n%s\n", o.temperature,
                    generate(model, vocab, o.sample, o.temperature, o.seed).c_str());
    }
    if (o.max_bpc > 0 && !(validation_bpc <= o.max_bpc)) {
        std::printf("FAILED: validation %.3f bits per character is above --max-bpc %.3f\n", validation_bpc, o.max_bpc);
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    CLI::App app{"char_lm: a character-level language model of the fortunes corpus"};
    app.add_option("--model", o.model, "lstm, gru or transformer")->capture_default_str();
    app.add_option("--epochs", o.epochs, "Passes over the training text")->capture_default_str();
    app.add_option("--minutes", o.minutes, "Stop training after this many minutes (0: no limit)")
        ->capture_default_str();
    app.add_option("--steps", o.steps, "Stop training after this many steps (0: no limit; for timing)")
        ->capture_default_str();
    app.add_option("--batch-size", o.batch, "Streams of text read side by side")->capture_default_str();
    app.add_option("--bptt", o.bptt, "Characters per window (backpropagation stops at its start)")
        ->capture_default_str();
    app.add_option("--lr", o.lr, "Adam's peak learning rate")->capture_default_str();
    app.add_option("--min-lr", o.min_lr, "The cosine schedule ends at this fraction of --lr")->capture_default_str();
    app.add_option("--warmup", o.warmup, "Steps of linear warm-up")->capture_default_str();
    app.add_option("--hidden", o.hidden, "Hidden size (the Transformer's d_model)")->capture_default_str();
    app.add_option("--layers", o.layers, "Recurrent or Transformer layers")->capture_default_str();
    app.add_option("--embedding", o.embedding, "Embedding size of the recurrent models")->capture_default_str();
    app.add_option("--heads", o.heads, "Attention heads of the Transformer")->capture_default_str();
    app.add_option("--dropout", o.dropout, "Dropout probability")->capture_default_str();
    app.add_option("--clip", o.clip, "Clip the gradient's norm to this (0: no clipping)")->capture_default_str();
    app.add_option("--seed", o.seed, "Initial weights, batch order and dropout masks")->capture_default_str();
    app.add_option("--threads", o.threads,
                   "Threads (0: the library's default, all cores less those other processes keep busy)")
        ->capture_default_str();
    app.add_option("--data-dir", o.data_dir, "The fortunes files")->capture_default_str();
    app.add_option("--entries", o.entries, "Use only this many entries (0: all)")->capture_default_str();
    app.add_option("--eval-every", o.eval_every, "Also validate every this many steps (0: after each epoch only)")
        ->capture_default_str();
    app.add_option("--eval-batch", o.eval_batch, "Streams read side by side in validation")->capture_default_str();
    app.add_option("--plot", o.plot, "Write the loss curves here (SVG)");
    app.add_option("--checkpoint", o.checkpoint, "Save a checkpoint (safetensors) here after every epoch");
    app.add_option("--resume", o.resume, "Continue training from this checkpoint");
    app.add_option("--stop-after", o.stop_after, "Stop after this epoch (continue later with --resume)");
    app.add_option("--sample", o.sample, "Characters to generate at the end (0: none)")->capture_default_str();
    app.add_option("--temperature", o.temperature, "Sampling temperature")->capture_default_str();
    app.add_option("--max-bpc", o.max_bpc, "Exit with status 1 when the final validation is above this");
    app.add_flag("--quiet", o.quiet, "No progress bar");
    CLI11_PARSE(app, argc, argv);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
