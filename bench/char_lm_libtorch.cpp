// libtorch's twin of the char_lm main job: the same recipe on the same batches from the same
// initial weights. The text, its split, the batches of each epoch and the learning-rate
// schedule come from the sample's own code (samples/char_lm/corpus.hpp); the starting weights
// are those of tapegrad's model built with the same seed, copied by name (embedding.weight,
// rnn.weight_ih_l0, ..., fc.bias). Dropout masks come from each library's own generator, so
// the two runs agree in distribution, not bit for bit.
//
//   char_lm_libtorch [--model lstm|gru] [--epochs 4] [--steps 0] [--seed 1] [--threads 2]
//                    [--data-dir /usr/share/games/fortunes]
//
// The rest of the recipe is char_lm's defaults: Embedding 64, 2 layers of 256, dropout 0.1,
// batch 32 x 64 characters, Adam 3e-3 with 100 warm-up steps and a cosine to a tenth,
// gradient norm clipped to 1. --steps > 0 stops after that many steps (for timing). Prints
// the same epoch lines as char_lm: training and validation bits per character, ms per step.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "corpus.hpp"
#include "model.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Net : torch::nn::Module {
    Net(bool gru, std::int64_t vocabulary, std::int64_t embedding, std::int64_t hidden, std::int64_t layers, double p)
        : embed(vocabulary, embedding), drop(p), fc(hidden, vocabulary)
    {
        register_module("embedding", embed);
        if (gru) {
            g = torch::nn::GRU(torch::nn::GRUOptions(embedding, hidden).num_layers(layers).dropout(p));
            register_module("rnn", g);
        } else {
            l = torch::nn::LSTM(torch::nn::LSTMOptions(embedding, hidden).num_layers(layers).dropout(p));
            register_module("rnn", l);
        }
        register_module("dropout", drop);
        register_module("fc", fc);
    }
    // x [T, N] -> logits [T, N, V]; the state carried in h (and c), detached.
    torch::Tensor forward(const torch::Tensor& x, torch::Tensor& h, torch::Tensor& c)
    {
        torch::Tensor out;
        if (g) {
            auto r = h.defined() ? g->forward(embed->forward(x), h) : g->forward(embed->forward(x));
            out = std::get<0>(r);
            h = std::get<1>(r).detach();
        } else {
            auto r = h.defined() ? l->forward(embed->forward(x), std::make_tuple(h, c)) : l->forward(embed->forward(x));
            out = std::get<0>(r);
            h = std::get<0>(std::get<1>(r)).detach();
            c = std::get<1>(std::get<1>(r)).detach();
        }
        return fc->forward(drop->forward(out));
    }
    torch::nn::Embedding embed;
    torch::nn::LSTM l{nullptr};
    torch::nn::GRU g{nullptr};
    torch::nn::Dropout drop;
    torch::nn::Linear fc;
};

torch::Tensor to_tensor(const xt::xarray<std::int64_t>& a)
{
    return torch::from_blob(const_cast<std::int64_t*>(a.data()),
                            {static_cast<long>(a.shape()[0]), static_cast<long>(a.shape()[1])}, torch::kLong)
        .clone();
}

double evaluate(Net& net, const charlm::Streams& streams)
{
    torch::NoGradGuard no_grad;
    net.eval();
    torch::Tensor h, c;
    xt::xarray<std::int64_t> input, target;
    double nats = 0;
    std::size_t count = 0;
    for (std::size_t s = 0; s < streams.steps(); ++s) {
        streams.fill(s, input, target);
        const torch::Tensor logits = net.forward(to_tensor(input), h, c);
        nats += torch::nn::functional::cross_entropy(
                    logits.reshape({-1, logits.size(2)}), to_tensor(target).reshape({-1}),
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
        count += input.size();
    }
    net.train();
    return nats / (double(count) * std::log(2.0));
}

}  // namespace

int main(int argc, char** argv)
{
    std::string model = "lstm", dir = "/usr/share/games/fortunes";
    std::size_t epochs = 4, max_steps = 0;
    std::uint64_t seed = 1;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--model")
            model = v;
        else if (a == "--epochs")
            epochs = std::stoul(v);
        else if (a == "--steps")
            max_steps = std::stoul(v);
        else if (a == "--seed")
            seed = std::stoull(v);
        else if (a == "--threads")
            threads = std::stoi(v);
        else if (a == "--data-dir")
            dir = v;
        else {
            std::fprintf(stderr, "char_lm_libtorch: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    const std::size_t batch = 32, bptt = 64, embedding = 64, hidden = 256, layers = 2, warmup = 100;
    const double lr = 3e-3, floor = 0.1, dropout = 0.1, clip = 1.0;
    torch::set_num_threads(threads);
    torch::manual_seed(seed);

    const charlm::Corpus corpus = charlm::load_fortunes(dir, charlm::kSplitSeed);
    const charlm::Vocabulary vocab(corpus);
    const std::vector<std::int64_t> first_epoch = charlm::epoch_text(corpus, vocab, seed, 1);
    const charlm::Streams validation(vocab.encode(corpus.validation), 64, bptt);

    // tapegrad's model with char_lm's settings and seed: its initial weights, by name.
    charlm::ModelConfig config;
    config.kind = charlm::parse_kind(model);
    config.vocabulary = vocab.size();
    config.embedding = embedding;
    config.hidden = hidden;
    config.layers = layers;
    config.dropout = dropout;
    config.context = bptt;
    tg::Generator gen(seed);
    charlm::CharModel start(config, gen);
    const auto weights = start.state_dict();
    Net net(config.kind == charlm::Kind::gru, static_cast<long>(vocab.size()), embedding, hidden, layers, dropout);
    {
        torch::NoGradGuard no_grad;
        for (auto& item : net.named_parameters()) {
            const auto it = weights.find(item.key());
            if (it == weights.end()) {
                std::fprintf(stderr, "char_lm_libtorch: tapegrad's model has no %s\n", item.key().c_str());
                return 1;
            }
            const xt::xarray<double>& w = it->second;
            std::vector<long> shape(w.shape().begin(), w.shape().end());
            if (item.value().sizes() != torch::IntArrayRef(shape)) {
                std::fprintf(stderr, "char_lm_libtorch: %s has another shape in tapegrad's model\n",
                             item.key().c_str());
                return 1;
            }
            item.value().copy_(torch::from_blob(const_cast<double*>(w.data()), shape, torch::kDouble));
        }
    }
    torch::optim::Adam optimizer(net.parameters(), torch::optim::AdamOptions(lr));

    const std::size_t steps = charlm::Streams(first_epoch, batch, bptt).steps(), total = steps * epochs;
    std::printf("libtorch %s: %zu epochs of %zu steps, %d threads\n", model.c_str(), epochs, steps, threads);
    std::size_t global = 0;
    xt::xarray<std::int64_t> input, target;
    double trained_seconds = 0, validation_bpc = 0;
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        const charlm::Streams train(epoch == 1 ? first_epoch : charlm::epoch_text(corpus, vocab, seed, epoch), batch,
                                    bptt);
        torch::Tensor h, c;
        double nats = 0;
        std::size_t done = 0;
        const auto begin = Clock::now();
        for (std::size_t s = 0; s < train.steps() && !(max_steps > 0 && global >= max_steps); ++s, ++global) {
            train.fill(s, input, target);
            const torch::Tensor logits = net.forward(to_tensor(input), h, c);
            const torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(2)}),
                                                                            to_tensor(target).reshape({-1}));
            optimizer.zero_grad();
            loss.backward();
            torch::nn::utils::clip_grad_norm_(net.parameters(), clip);
            for (auto& group : optimizer.param_groups()) {
                static_cast<torch::optim::AdamOptions&>(group.options())
                    .lr(charlm::scheduled_lr(global, total, lr, floor, warmup));
            }
            optimizer.step();
            nats += loss.item<double>();
            ++done;
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
        trained_seconds += seconds;
        validation_bpc = evaluate(net, validation);
        std::printf("epoch %zu/%zu: training %.3f bpc, validation %.3f bpc; %.1f minutes of training, %.0f ms per "
                    "step\n",
                    epoch, epochs, nats / double(std::max<std::size_t>(done, 1)) / std::log(2.0), validation_bpc,
                    trained_seconds / 60, 1000 * seconds / double(std::max<std::size_t>(done, 1)));
        std::fflush(stdout);
        if (max_steps > 0 && global >= max_steps) break;
    }
    std::printf("final validation: %.3f bits per character after %zu steps\n", validation_bpc, global);
    return 0;
}
