// The tutorial's first program, with the tape doing the calculus: 2 inputs, 3 sigmoid
// hidden units, 2 sigmoid outputs, mean squared error against one-hot targets, online SGD
// (one step per row) with learning rate 0.5, weights drawn from uniform [0, 1) as the
// tutorial's random.random(). No derivative is written by hand.
//
//   seed_network [epochs=100] [seed=1] [--dot PATH] [--evaluations N]
//
// --dot writes the recorded graph of one training step (Graphviz DOT, parameters named as
// the model names them); `dot -Tsvg PATH -o graph.svg` draws it. --evaluations then runs
// the trained model N times more on every row as a careless evaluation loop does, without
// NoGradGuard: each evaluation is recorded and dropped, and the tape reclaims it (bench/soak
// watches the memory of such a run).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <tapegrad/tapegrad.hpp>

#include "seed_data.hpp"

int main(int argc, char** argv)
{
    std::vector<const char*> args;
    const char* dot_path = nullptr;
    long evaluations = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--dot") == 0 && i + 1 < argc) {
            dot_path = argv[++i];
        } else if (std::strcmp(argv[i], "--evaluations") == 0 && i + 1 < argc) {
            evaluations = std::atol(argv[++i]);
        } else {
            args.push_back(argv[i]);
        }
    }
    const int epochs = !args.empty() ? std::atoi(args[0]) : 100;
    const int seed = args.size() > 1 ? std::atoi(args[1]) : 1;
    if (epochs < 1) {
        std::fprintf(stderr, "seed_network: epochs must be a positive integer, got '%s'\n", args[0]);
        return 2;
    }

    tg::nn::Sequential<double> model = seed::tutorial_model(seed);
    tg::optim::SGDOptions options;
    options.lr = 0.5;
    tg::optim::SGD<double> sgd(model.parameters(), options);

    // One constant per row and target, made once and reused every step.
    const auto x = seed::rows();
    const auto t = seed::one_hot();
    std::vector<tg::Var<double>> rows, targets;
    for (std::size_t i = 0; i < 10; ++i) {
        rows.push_back(tg::constant(xt::xarray<double>(xt::view(x, xt::range(i, i + 1), xt::all()))));
        targets.push_back(tg::constant(xt::xarray<double>(xt::view(t, xt::range(i, i + 1), xt::all()))));
    }

    for (int epoch = 1; epoch <= epochs; ++epoch) {
        double total = 0;
        for (std::size_t i = 0; i < 10; ++i) {
            sgd.zero_grad();
            tg::Var<double> loss = tg::mse_loss(model(rows[i]), targets[i]);
            loss.backward();
            total += loss.item();
            sgd.step();
        }
        if (epoch <= 10 || epoch % 10 == 0) std::printf("epoch %3d  mse %.6f\n", epoch, total / 10);
    }

    if (dot_path != nullptr) {
        const tg::Var<double> loss = tg::mse_loss(model(rows[0]), targets[0]);
        std::ofstream(dot_path) << tg::to_dot(loss, model.named_parameters());
        std::printf("wrote the graph of one training step to %s\n", dot_path);
    }

    if (evaluations > 0) {
        const tg::Var<double> all = tg::constant(x);
        double checksum = 0;
        for (long k = 0; k < evaluations; ++k) checksum += model(all).value()(0, 0);
        std::printf("%ld evaluations without NoGradGuard: tape holds %zu entries (capacity %zu), checksum %.6f\n",
                    evaluations, tg::tape_size<double>(), tg::tape_capacity<double>(), checksum);
    }

    tg::NoGradGuard no_grad;
    return seed::report(model(tg::constant(x)).value()) == 10 ? 0 : 1;
}
