#pragma once
// The tutorial's data set, shared by the seed_* samples: 10 rows of 2 features, classes
// 0 (first five) and 1 (last five), targets one-hot.

#include <cstdint>
#include <cstdio>

#include <xtensor/xarray.hpp>

#include <tapegrad/nn.hpp>

namespace seed {

inline xt::xarray<double> rows()
{
    return {{2.7810836, 2.550537003},   {1.465489372, 2.362125076}, {3.396561688, 4.400293529},
            {1.38807019, 1.850220317},  {3.06407232, 3.005305973},  {7.627531214, 2.759262235},
            {5.332441248, 2.088626775}, {6.922596716, 1.77106367},  {8.675418651, -0.242068655},
            {7.673756466, 3.508563011}};
}

inline xt::xarray<std::int64_t> classes()
{
    return {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
}

inline xt::xarray<double> one_hot()
{
    xt::xarray<double> t = xt::zeros<double>({10, 2});
    const auto c = classes();
    for (std::size_t i = 0; i < 10; ++i) t(i, static_cast<std::size_t>(c(i))) = 1.0;
    return t;
}

/// The tutorial's network: 2 inputs, 3 sigmoid hidden units, 2 sigmoid outputs, weights
/// and biases drawn from uniform [0, 1) as the tutorial's random.random().
inline tg::nn::Sequential<double> tutorial_model(int seed)
{
    namespace nn = tg::nn;
    tg::Generator gen(static_cast<std::uint64_t>(seed));
    const auto u01 = nn::init::uniform(0.0, 1.0);
    return nn::Sequential<double>{nn::Dense<double>(2, 3, nn::Activation::sigmoid, u01, u01, gen),
                                  nn::Dense<double>(3, 2, nn::Activation::sigmoid, u01, u01, gen)};
}

/// Prints "row i  expected c  got p  (outputs a b)" for every row and returns the number right.
inline int report(const xt::xarray<double>& outputs)
{
    const auto c = classes();
    int correct = 0;
    for (std::size_t i = 0; i < 10; ++i) {
        const int got = outputs(i, 1) > outputs(i, 0) ? 1 : 0;
        correct += got == c(i);
        std::printf("row %zu  expected %d  got %d  (outputs %8.4f %8.4f)\n", i, static_cast<int>(c(i)), got,
                    outputs(i, 0), outputs(i, 1));
    }
    std::printf("accuracy: %d/10\n", correct);
    return correct;
}

}  // namespace seed
