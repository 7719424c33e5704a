// The tutorial's first program, with the tape doing the calculus: 2 inputs, 3 sigmoid
// hidden units, 2 sigmoid outputs, mean squared error against one-hot targets, online SGD
// (one step per row) with learning rate 0.5, weights drawn from uniform [0, 1) as the
// tutorial's random.random(). No derivative is written by hand.
//
//   seed_network [epochs=100] [seed=1]

#include <cstdio>
#include <cstdlib>

#include <xtensor/xview.hpp>

#include <tapegrad/tapegrad.hpp>

#include "seed_data.hpp"

int main(int argc, char** argv)
{
    const int epochs = argc > 1 ? std::atoi(argv[1]) : 100;
    const int seed = argc > 2 ? std::atoi(argv[2]) : 1;
    if (epochs < 1) {
        std::fprintf(stderr, "seed_network: epochs must be a positive integer, got '%s'\n", argv[1]);
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

    tg::NoGradGuard no_grad;
    return seed::report(model(tg::constant(x)).value()) == 10 ? 0 : 1;
}
