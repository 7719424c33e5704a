// The tutorial's network, trained through the tape: 2 inputs, 3 sigmoid hidden units,
// 2 sigmoid outputs, mean squared error against one-hot targets, online SGD (one step per
// row) with learning rate 0.5, weights drawn from uniform [0, 1) as the tutorial does.
// No derivative is written by hand: loss.backward() leaves every gradient in place.
//
//   seed_network [epochs] [seed]

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include <tapegrad/tapegrad.hpp>

using Var = tg::Var<double>;

int main(int argc, char** argv)
{
    const int epochs = argc > 1 ? std::atoi(argv[1]) : 100;
    const unsigned seed = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
    if (epochs < 1) {
        std::fprintf(stderr, "seed_network: epochs must be a positive integer, got '%s'\n", argv[1]);
        return 2;
    }

    const double data[10][2] = {{2.7810836, 2.550537003},   {1.465489372, 2.362125076}, {3.396561688, 4.400293529},
                                {1.38807019, 1.850220317},  {3.06407232, 3.005305973},  {7.627531214, 2.759262235},
                                {5.332441248, 2.088626775}, {6.922596716, 1.77106367},  {8.675418651, -0.242068655},
                                {7.673756466, 3.508563011}};
    const int classes[10] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};

    // Rows and one-hot targets as constants, made once and reused every step.
    std::vector<Var> rows, targets;
    for (int i = 0; i < 10; ++i) {
        rows.push_back(tg::constant(xt::xarray<double>{{data[i][0], data[i][1]}}));
        xt::xarray<double> t = xt::zeros<double>({1, 2});
        t(0, classes[i]) = 1.0;
        targets.push_back(tg::constant(t));
    }

    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    auto init = [&](std::vector<std::size_t> shape) {
        xt::xarray<double> a(shape);
        for (auto& v : a) v = uniform(rng);
        return tg::parameter(a);
    };
    Var w1 = init({2, 3}), b1 = init({3}), w2 = init({3, 2}), b2 = init({2});
    const double lr = 0.5;

    auto forward = [&](const Var& x) { return tg::sigmoid(tg::matmul(tg::sigmoid(tg::matmul(x, w1) + b1), w2) + b2); };

    for (int epoch = 0; epoch < epochs; ++epoch) {
        double total = 0;
        for (int i = 0; i < 10; ++i) {
            Var loss = tg::mse_loss(forward(rows[i]), targets[i]);
            loss.backward();
            total += loss.item();
            tg::NoGradGuard no_grad;
            for (Var* p : {&w1, &b1, &w2, &b2}) {
                xt::noalias(p->mutable_value()) -= lr * p->grad();
                p->zero_grad();
            }
        }
        if (epoch < 10 || (epoch + 1) % 10 == 0) std::printf("epoch %3d  mse %.6f\n", epoch + 1, total / 10);
    }

    int correct = 0;
    tg::NoGradGuard no_grad;
    for (int i = 0; i < 10; ++i) {
        const auto& y = forward(rows[i]).value();
        const int got = y(0, 1) > y(0, 0) ? 1 : 0;
        correct += got == classes[i];
        std::printf("row %d  expected %d  got %d  (outputs %.4f %.4f)\n", i, classes[i], got, y(0, 0), y(0, 1));
    }
    std::printf("accuracy: %d/10\n", correct);
    return 0;
}
