// A gradient-checking experiment: the tutorial's hand-derived numpy backprop, written out
// in C++ with plain xtensor, compared element by element with the tape's gradients for
// the same weights and rows. Then the same derivation with a slip that is easy to make by
// hand (the sigmoid derivative applied twice to the hidden deltas), and the comparison
// points at the entries it gets wrong and by how much.
//
// Hand derivation, numpy layout (W1 [3, 2], W2 [2, 3]), one row x with one-hot target t,
// loss = mean over the 2 outputs of (y - t)^2, so d loss / d y = y - t:
//   h = sigmoid(W1 x + b1),  y = sigmoid(W2 h + b2)
//   delta2 = (y - t) * y * (1 - y)                 output deltas
//   delta1 = (W2^T delta2) * h * (1 - h)           hidden deltas
//   dW2 = delta2 h^T, db2 = delta2, dW1 = delta1 x^T, db1 = delta1

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <tapegrad/tapegrad.hpp>

#include "seed_data.hpp"

namespace nn = tg::nn;
using Array = xt::xarray<double>;

namespace {

Array sigmoid(const Array& z)
{
    return 1.0 / (1.0 + xt::exp(-z));
}
Array matvec(const Array& w, const Array& v)
{
    return xt::sum(w * xt::view(v, xt::newaxis(), xt::all()), {1});
}
Array matvec_t(const Array& w, const Array& v)
{
    return xt::sum(w * xt::view(v, xt::all(), xt::newaxis()), {0});
}
Array outer(const Array& a, const Array& b)
{
    return xt::view(a, xt::all(), xt::newaxis()) * xt::view(b, xt::newaxis(), xt::all());
}

struct Grads {
    Array w1, b1, w2, b2;  // numpy layout: w1 [3, 2], w2 [2, 3]
};

Grads hand_backprop(const Array& w1, const Array& b1, const Array& w2, const Array& b2, const Array& x, const Array& t,
                    bool slip)
{
    const Array h = sigmoid(matvec(w1, x) + b1);
    const Array y = sigmoid(matvec(w2, h) + b2);
    const Array delta2 = (y - t) * y * (1.0 - y);
    Array delta1 = matvec_t(w2, delta2) * h * (1.0 - h);
    if (slip) delta1 = delta1 * h * (1.0 - h);  // the slip: the derivative applied a second time
    return {outer(delta1, x), delta1, outer(delta2, h), delta2};
}

struct Entry {
    std::string name;
    double tape, hand;
};

// All 17 gradient entries of one row, tape (Dense layout [in, out]) against hand (numpy
// layout [out, in]), named in numpy layout.
std::vector<Entry> compare(const Grads& hand, const nn::Dense<double>& l1, const nn::Dense<double>& l2)
{
    std::vector<Entry> out;
    auto matrix = [&](const char* n, const Array& h, const Array& tape_in_out) {
        for (std::size_t i = 0; i < h.shape()[0]; ++i)
            for (std::size_t j = 0; j < h.shape()[1]; ++j)
                out.push_back({std::string(n) + "[" + std::to_string(i) + "," + std::to_string(j) + "]",
                               tape_in_out(j, i), h(i, j)});
    };
    auto vector = [&](const char* n, const Array& h, const Array& tape) {
        for (std::size_t i = 0; i < h.size(); ++i)
            out.push_back({std::string(n) + "[" + std::to_string(i) + "]", tape(i), h(i)});
    };
    matrix("W1", hand.w1, l1.weight().grad());
    vector("b1", hand.b1, l1.bias().grad());
    matrix("W2", hand.w2, l2.weight().grad());
    vector("b2", hand.b2, l2.bias().grad());
    return out;
}

bool agrees(const Entry& e)
{
    return std::abs(e.tape - e.hand) <= 1e-12 + 1e-9 * std::abs(e.tape);
}

}  // namespace

int main()
{
    tg::Generator gen(1);
    const auto u01 = nn::init::uniform(0.0, 1.0);
    nn::Dense<double> l1(2, 3, nn::Activation::sigmoid, u01, u01, gen);
    nn::Dense<double> l2(3, 2, nn::Activation::sigmoid, u01, u01, gen);
    const Array w1 = xt::transpose(l1.weight().value()), b1 = l1.bias().value();
    const Array w2 = xt::transpose(l2.weight().value()), b2 = l2.bias().value();
    const Array rows = seed::rows(), targets = seed::one_hot();

    // The tape itself, against central differences, on row 0.
    auto f = [&](const std::vector<tg::Var<double>>& p) {
        tg::Var<double> h =
            tg::sigmoid(tg::linear(tg::constant(Array(xt::view(rows, xt::range(0, 1), xt::all()))), p[0], p[1]));
        return tg::mse_loss(tg::sigmoid(tg::linear(h, p[2], p[3])),
                            tg::constant(Array(xt::view(targets, xt::range(0, 1), xt::all()))));
    };
    const tg::GradcheckResult check =
        tg::gradcheck(f, {l1.weight().value(), l1.bias().value(), l2.weight().value(), l2.bias().value()});
    std::printf("tape vs central differences (all 17 weights, row 0): %s\n\n", check.message.c_str());

    int wrong_correct = 0, wrong_slipped = 0, total = 0;
    double largest_correct = 0;
    std::vector<Entry> first_slipped_row;
    for (std::size_t r = 0; r < 10; ++r) {
        const Array x = xt::view(rows, r, xt::all()), t = xt::view(targets, r, xt::all());
        for (const auto& p : {l1.weight(), l1.bias(), l2.weight(), l2.bias()}) p.zero_grad();
        tg::Var<double> in = tg::constant(Array(xt::view(rows, xt::range(r, r + 1), xt::all())));
        tg::mse_loss(l2(l1(in)), tg::constant(Array(xt::view(targets, xt::range(r, r + 1), xt::all())))).backward();

        for (const Entry& e : compare(hand_backprop(w1, b1, w2, b2, x, t, false), l1, l2)) {
            ++total;
            wrong_correct += !agrees(e);
            largest_correct = std::max(largest_correct, std::abs(e.tape - e.hand));
        }
        const auto slipped = compare(hand_backprop(w1, b1, w2, b2, x, t, true), l1, l2);
        for (const Entry& e : slipped) wrong_slipped += !agrees(e);
        if (r == 0) first_slipped_row = slipped;
    }

    std::printf("correct hand derivation vs tape, 10 rows x 17 entries: %d of %d disagree (largest difference %.3g)\n",
                wrong_correct, total, largest_correct);
    std::printf("\nslipped derivation (sigmoid derivative applied twice to the hidden deltas) vs tape:\n");
    std::printf("%d of %d entries disagree; row 0 entry by entry:\n", wrong_slipped, total);
    std::printf("  %-8s %14s %14s %14s %10s\n", "entry", "tape", "hand", "hand - tape", "rel error");
    for (const Entry& e : first_slipped_row) {
        const double rel = std::abs(e.hand - e.tape) / std::max(std::abs(e.tape), 1e-300);
        std::printf("  %-8s %14.6e %14.6e %14.6e %10.3g  %s\n", e.name.c_str(), e.tape, e.hand, e.hand - e.tape, rel,
                    agrees(e) ? "ok" : "WRONG");
    }
    std::printf("the output layer (W2, b2) agrees everywhere: the slip sits in the hidden deltas.\n\n");

    const bool ok = check.ok && wrong_correct == 0 && wrong_slipped > 0;
    std::printf("hand-derived backprop: correct derivation %s, slipped derivation %s (%d wrong entries)\n",
                wrong_correct == 0 ? "agrees with the tape" : "DISAGREES", wrong_slipped > 0 ? "caught" : "NOT caught",
                wrong_slipped);
    return ok ? 0 : 1;
}
