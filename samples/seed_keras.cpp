// The tutorial's Keras program: Dense(3, sigmoid) then a linear Dense(2) on 2 inputs, MSE,
// Adam with Keras' defaults (lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7), 200 epochs
// with batch size 32 (the 10 rows make one batch, so one step per epoch), Glorot-uniform
// weights and zero biases as Keras initialises them, float32 as Keras computes.
//
//   seed_keras [epochs=200] [seed=1]

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <tapegrad/tapegrad.hpp>

#include "seed_data.hpp"

namespace nn = tg::nn;

int main(int argc, char** argv)
{
    const int epochs = argc > 1 ? std::atoi(argv[1]) : 200;
    const int seed = argc > 2 ? std::atoi(argv[2]) : 1;
    if (epochs < 1) {
        std::fprintf(stderr, "seed_keras: epochs must be a positive integer, got '%s'\n", argv[1]);
        return 2;
    }

    tg::manual_seed(static_cast<std::uint64_t>(seed));
    nn::Sequential<float> model{nn::Dense<float>(2, 3, nn::Activation::sigmoid), nn::Dense<float>(3, 2)};
    model.print_summary(std::cout);

    tg::optim::AdamOptions keras;  // Keras' Adam: as PyTorch's but epsilon 1e-7
    keras.lr = 0.001;
    keras.eps = 1e-7;
    tg::optim::Adam<float> adam(model.parameters(), keras);

    const tg::Var<float> x = tg::constant(xt::xarray<float>(xt::cast<float>(seed::rows())));
    const tg::Var<float> t = tg::constant(xt::xarray<float>(xt::cast<float>(seed::one_hot())));
    const auto classes = seed::classes();
    auto accuracy = [&](const xt::xarray<float>& y) {
        int right = 0;
        for (std::size_t i = 0; i < 10; ++i) right += (y(i, 1) > y(i, 0) ? 1 : 0) == classes(i);
        return right / 10.0;
    };

    double first_loss = 0, last_loss = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        adam.zero_grad();
        tg::Var<float> y = model(x);
        tg::Var<float> loss = tg::mse_loss(y, t);
        loss.backward();
        // Keras reports the loss and accuracy of the batch as it was before the update.
        last_loss = loss.item();
        if (epoch == 1) first_loss = last_loss;
        std::printf("Epoch %d/%d - loss: %.4f - accuracy: %.4f\n", epoch, epochs, last_loss, accuracy(y.value()));
        adam.step();
    }

    tg::NoGradGuard no_grad;
    const xt::xarray<float> outputs = model(x).value();
    std::printf("\nraw outputs:\n");
    for (std::size_t i = 0; i < 10; ++i) std::printf("  [%9.6f %9.6f]\n", outputs(i, 0), outputs(i, 1));
    std::vector<std::size_t> predicted(10);  // argmax over the two outputs of each row
    for (std::size_t i = 0; i < 10; ++i) predicted[i] = outputs(i, 1) > outputs(i, 0) ? 1 : 0;
    std::printf("argmax classes: [");
    for (std::size_t i = 0; i < 10; ++i) std::printf(i ? " %zu" : "%zu", predicted[i]);
    std::printf("]\n");
    int correct = 0;
    for (std::size_t i = 0; i < 10; ++i) {
        std::printf("%zu - Expected=%d, Got=%zu\n", i, static_cast<int>(classes(i)), predicted[i]);
        correct += static_cast<std::int64_t>(predicted[i]) == classes(i);
    }
    std::printf("accuracy: %d/10\n", correct);
    std::printf("loss went from %.4f to %.4f\n", first_loss, last_loss);
    return last_loss < first_loss ? 0 : 1;
}
