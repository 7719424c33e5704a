// Polynomial regression, as libtorch's C++ regression example: recover
//   y = w1 x + w2 x^2 + w3 x^3 + w4 x^4 + b
// from random samples with one linear layer on the features x, x^2, x^3, x^4 (built with
// unsqueeze, pow and concat), trained by SGD on the smooth L1 loss until the loss on a
// batch falls below 1e-3. Prints the learned and the true polynomial, and fails (exit
// status 1) unless each learned coefficient is within 0.05 of the true one.

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace {

constexpr std::size_t kDegree = 4;
constexpr std::size_t kBatch = 32;

using Var = tg::Var<double>;

// [batch] -> [batch, degree]: the columns x, x^2, ..., x^degree.
Var features(const Var& x)
{
    const Var column = tg::unsqueeze(x, 1);
    std::vector<Var> powers;
    for (std::size_t i = 1; i <= kDegree; ++i) powers.push_back(tg::pow(column, static_cast<double>(i)));
    return tg::concat(powers, 1);
}

std::string polynomial(const xt::xarray<double>& w, double b)
{
    std::string out = "y = ";
    char term[64];
    for (std::size_t i = 0; i < kDegree; ++i) {
        std::snprintf(term, sizeof term, "%+.2f x^%zu ", w(i), i + 1);
        out += term;
    }
    std::snprintf(term, sizeof term, "%+.2f", b);
    return out + term;
}

}  // namespace

int main()
{
    tg::Generator gen(7);
    std::normal_distribution<double> normal(0.0, 1.0);
    auto w_true = xt::xarray<double>::from_shape({kDegree, 1});
    for (auto& v : w_true) v = normal(gen) * 5;  // libtorch's example: randn * 5
    const double b_true = normal(gen) * 5;

    tg::nn::Dense<double> model(kDegree, 1, tg::nn::Activation::none, tg::nn::init::glorot_uniform(),
                                tg::nn::init::zeros(), gen);
    tg::optim::SGDOptions options;
    options.lr = 0.1;
    tg::optim::SGD<double> sgd(model.parameters(), options);

    double loss = 0;
    std::size_t batches = 0;
    for (;;) {
        auto x = xt::xarray<double>::from_shape({kBatch});
        for (auto& v : x) v = normal(gen);
        const Var inputs = features(tg::constant(x));
        const Var target = tg::matmul(inputs, tg::constant(w_true)) + b_true;  // no grad: all constants
        sgd.zero_grad();
        const Var l = tg::smooth_l1_loss(model(inputs), target);
        l.backward();
        sgd.step();
        loss = l.item();
        ++batches;
        if (loss < 1e-3 || batches == 100000) break;
    }
    const xt::xarray<double> w = xt::flatten(model.weight().value());
    const double b = model.bias().value()(0);
    std::printf("Loss: %.6f after %zu batches\n", loss, batches);
    std::printf("==> Learned function:\t%s\n", polynomial(w, b).c_str());
    std::printf("==> Actual function:\t%s\n", polynomial(xt::flatten(w_true), b_true).c_str());
    bool close = std::abs(b - b_true) < 0.05;
    for (std::size_t i = 0; i < kDegree; ++i) close = close && std::abs(w(i) - w_true(i, 0)) < 0.05;
    std::printf("regression: %s\n", close && loss < 1e-3 ? "every coefficient within 0.05 of the truth"
                                                         : "FAILED to recover the polynomial");
    return close && loss < 1e-3 ? 0 : 1;
}
