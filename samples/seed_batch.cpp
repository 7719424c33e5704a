// The tutorial's numpy program, as whole-batch matrix ops: the same 2-3-2 sigmoid network
// and MSE, but each step sees all 10 rows at once as a [10, 2] matrix, so the forward pass
// is two matrix products and the gradient is the mean over the batch. Full-batch steps
// average the rows' gradients, so they take more epochs (and a larger rate) than online steps.
//
//   seed_batch [epochs=3000] [lr=2.0] [seed=1]

#include <cstdio>
#include <cstdlib>

#include <tapegrad/tapegrad.hpp>

#include "seed_data.hpp"

int main(int argc, char** argv)
{
    const int epochs = argc > 1 ? std::atoi(argv[1]) : 3000;
    const double lr = argc > 2 ? std::atof(argv[2]) : 2.0;
    const int seed = argc > 3 ? std::atoi(argv[3]) : 1;
    if (epochs < 1 || !(lr > 0)) {
        std::fprintf(stderr, "seed_batch: usage: seed_batch [epochs > 0] [lr > 0] [seed]\n");
        return 2;
    }

    tg::nn::Sequential<double> model = seed::tutorial_model(seed);
    tg::optim::SGDOptions options;
    options.lr = lr;
    tg::optim::SGD<double> sgd(model.parameters(), options);

    const tg::Var<double> x = tg::constant(seed::rows());     // [10, 2]
    const tg::Var<double> t = tg::constant(seed::one_hot());  // [10, 2]
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        sgd.zero_grad();
        tg::Var<double> loss = tg::mse_loss(model(x), t);  // [10, 2] @ [2, 3] -> [10, 3] @ [3, 2]
        loss.backward();
        if (epoch <= 5 || epoch % (epochs / 20 > 0 ? epochs / 20 : 1) == 0) {
            std::printf("epoch %5d  mse %.6f\n", epoch, loss.item());
        }
        sgd.step();
    }

    tg::NoGradGuard no_grad;
    return seed::report(model(x).value()) == 10 ? 0 : 1;
}
