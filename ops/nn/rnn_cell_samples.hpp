#pragma once
// The samples and error inputs of the four recurrent cells: the same shapes and bias
// combinations for each, a reference step written as plain loops in double, and the step
// as a PyTorch expression built from matmul and the activations (PyTorch's fused cells have
// no second derivative, which the reference needs).

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::rnn_samples {

enum class Kind { lstm, gru, rnn_tanh, rnn_relu };

inline std::size_t gates_of(Kind k)
{
    return k == Kind::lstm ? 4 : k == Kind::gru ? 3 : 1;
}

// One step of the cell in plain loops: in = {x, h, [c], w_ih, w_hh, [b_ih], [b_hh]}. The
// LSTM's result is h' and c' stacked ([2, N, H]), as its samples return them.
inline xt::xarray<double> reference_step(Kind kind, const std::vector<xt::xarray<double>>& in, bool has_bi, bool has_bh)
{
    const bool lstm = kind == Kind::lstm;
    const xt::xarray<double>& x = in[0];
    const xt::xarray<double>& h = in[1];
    const std::size_t w = lstm ? 3 : 2;
    const xt::xarray<double>& wi = in[w];
    const xt::xarray<double>& wh = in[w + 1];
    const std::size_t n = x.shape()[0], ni = x.shape()[1], nh = h.shape()[1], gh = gates_of(kind) * nh;
    // a = x wi^T + b_ih and b = h wh^T + b_hh, kept apart (the GRU needs them so).
    xt::xarray<double> a = xt::zeros<double>({n, gh}), b = xt::zeros<double>({n, gh});
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t q = 0; q < gh; ++q) {
            double sa = has_bi ? in[w + 2](q) : 0.0, sb = has_bh ? in[w + 2 + (has_bi ? 1 : 0)](q) : 0.0;
            for (std::size_t p = 0; p < ni; ++p) sa += x(r, p) * wi(q, p);
            for (std::size_t p = 0; p < nh; ++p) sb += h(r, p) * wh(q, p);
            a(r, q) = sa;
            b(r, q) = sb;
        }
    }
    auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
    xt::xarray<double> y =
        xt::zeros<double>(lstm ? std::vector<std::size_t>{2, n, nh} : std::vector<std::size_t>{n, nh});
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t j = 0; j < nh; ++j) {
            switch (kind) {
            case Kind::lstm: {
                auto s = [&](std::size_t k) { return a(r, k * nh + j) + b(r, k * nh + j); };
                const double i = sigmoid(s(0)), f = sigmoid(s(1)), g = std::tanh(s(2)), o = sigmoid(s(3));
                const double c2 = f * in[2](r, j) + i * g;
                y(0, r, j) = o * std::tanh(c2);
                y(1, r, j) = c2;
                break;
            }
            case Kind::gru: {
                const double rg = sigmoid(a(r, j) + b(r, j)), z = sigmoid(a(r, nh + j) + b(r, nh + j));
                const double nn = std::tanh(a(r, 2 * nh + j) + rg * b(r, 2 * nh + j));
                y(r, j) = (1 - z) * nn + z * h(r, j);
                break;
            }
            case Kind::rnn_tanh:
                y(r, j) = std::tanh(a(r, j) + b(r, j));
                break;
            case Kind::rnn_relu:
                y(r, j) = std::max(a(r, j) + b(r, j), 0.0);
                break;
            }
        }
    }
    return y;
}

// The step in PyTorch over x[0], x[1], ... in the cell's input order.
inline std::string torch_step(Kind kind, bool has_bi, bool has_bh)
{
    const bool lstm = kind == Kind::lstm;
    const std::size_t w = lstm ? 3 : 2;
    auto at = [](std::size_t i) { return "x[" + std::to_string(i) + "]"; };
    const std::string bi = has_bi ? " + " + at(w + 2) : "";
    const std::string bh = has_bh ? " + " + at(w + 2 + (has_bi ? 1 : 0)) : "";
    const std::string a = "(x[0] @ " + at(w) + ".T" + bi + ")";
    const std::string b = "(x[1] @ " + at(w + 1) + ".T" + bh + ")";
    switch (kind) {
    case Kind::lstm:
        return "(lambda i, f, g, o: (lambda c2: torch.stack([torch.sigmoid(o) * torch.tanh(c2), c2]))("
               "torch.sigmoid(f) * x[2] + torch.sigmoid(i) * torch.tanh(g)))(*(" +
               a + " + " + b + ").chunk(4, 1))";
    case Kind::gru:
        return "(lambda ar, az, an, br, bz, bn: (lambda r, z: (1 - z) * torch.tanh(an + r * bn) + z * x[1])("
               "torch.sigmoid(ar + br), torch.sigmoid(az + bz)))(*" +
               a + ".chunk(3, 1), *" + b + ".chunk(3, 1))";
    case Kind::rnn_tanh:
        return "torch.tanh(" + a + " + " + b + ")";
    case Kind::rnn_relu:
        return "torch.relu(" + a + " + " + b + ")";
    }
    return "";
}

// The cell called on sample inputs, biases undefined where the sample has none.
template <class V> V call(Kind kind, const std::vector<V>& v, bool has_bi, bool has_bh)
{
    const std::size_t w = kind == Kind::lstm ? 3 : 2;
    const V bi = has_bi ? v[w + 2] : V();
    const V bh = has_bh ? v[w + 2 + (has_bi ? 1 : 0)] : V();
    switch (kind) {
    case Kind::lstm: {
        const auto [h2, c2] = lstm_cell(v[0], v[1], v[2], v[w], v[w + 1], bi, bh);
        return stack(std::vector<V>{h2, c2}, 0);
    }
    case Kind::gru:
        return gru_cell(v[0], v[1], v[w], v[w + 1], bi, bh);
    case Kind::rnn_tanh:
        return rnn_tanh_cell(v[0], v[1], v[w], v[w + 1], bi, bh);
    case Kind::rnn_relu:
        return rnn_relu_cell(v[0], v[1], v[w], v[w + 1], bi, bh);
    }
    return V();
}

template <class Rng> std::vector<OpSample> cell_samples(Rng& rng, Kind kind)
{
    const std::size_t gates = gates_of(kind);
    const bool lstm = kind == Kind::lstm;
    std::vector<OpSample> out;
    auto sample = [&](std::string label, std::size_t n, std::size_t ni, std::size_t nh, bool has_bi, bool has_bh) {
        std::vector<xt::xarray<double>> in{sample_uniform(rng, {n, ni}, -1.0, 1.0),
                                           sample_uniform(rng, {n, nh}, -1.0, 1.0)};
        if (lstm) in.push_back(sample_uniform(rng, {n, nh}, -1.0, 1.0));
        in.push_back(sample_uniform(rng, {gates * nh, ni}, -0.6, 0.6));
        in.push_back(sample_uniform(rng, {gates * nh, nh}, -0.6, 0.6));
        std::vector<std::size_t> optional;
        if (has_bi) {
            optional.push_back(in.size());
            in.push_back(sample_uniform(rng, {gates * nh}, -0.5, 0.5));
        }
        if (has_bh) {
            optional.push_back(in.size());
            in.push_back(sample_uniform(rng, {gates * nh}, -0.5, 0.5));
        }
        out.push_back(make_sample(
                          std::move(label), std::move(in),
                          [kind, has_bi, has_bh](const auto& v) { return call(kind, v, has_bi, has_bh); },
                          [kind, has_bi, has_bh](const auto& x) { return reference_step(kind, x, has_bi, has_bh); })
                          .with_torch(torch_step(kind, has_bi, has_bh))
                          .with_optional(optional));
    };
    sample("N=3 I=4 H=5 with biases", 3, 4, 5, true, true);
    sample("N=1 I=2 H=3 without biases", 1, 2, 3, false, false);
    sample("N=2 I=3 H=2 b_ih only", 2, 3, 2, true, false);
    sample("N=4 I=1 H=1 b_hh only", 4, 1, 1, false, true);
    sample("N=8 I=20 H=16 via BLAS", 8, 20, 16, true, true);
    return out;
}

template <class Unused = void> std::vector<ErrorInput> cell_errors(Kind kind)
{
    const std::size_t g = gates_of(kind);
    const bool lstm = kind == Kind::lstm;
    const auto ones = [](const std::vector<std::size_t>& s) { return xt::xarray<double>(xt::ones<double>(s)); };
    // A valid call (N = 2, I = 3, H = 4) with one input replaced.
    auto inputs = [&](std::size_t which, xt::xarray<double> replacement) {
        std::vector<xt::xarray<double>> in{ones({2, 3}), ones({2, 4})};
        if (lstm) in.push_back(ones({2, 4}));
        in.push_back(ones({g * 4, 3}));
        in.push_back(ones({g * 4, 4}));
        in.push_back(ones({g * 4}));
        in.push_back(ones({g * 4}));
        in[which] = std::move(replacement);
        return in;
    };
    auto f = [kind](const auto& v) { return call(kind, v, true, true); };
    const std::size_t w = lstm ? 3 : 2;
    const std::string gh = std::to_string(g * 4);
    const std::string gates = std::to_string(g) + " gates x hidden_size 4";
    std::vector<ErrorInput> errors{
        make_error_input("x of rank 1", inputs(0, ones({3})), f, "x must be [N, input_size], got [3]"),
        make_error_input("x with 5 features for w_ih [G*4, 3]", inputs(0, ones({2, 5})), f,
                         "w_ih must be [" + gh + ", 5] (" + gates + ", input_size 5 from x [2, 5]), got [" + gh +
                             ", 3]"),
        make_error_input("h with 3 rows for x with 2", inputs(1, ones({3, 4})), f,
                         "h must be [N, hidden_size] with N = 2 as x [2, 3], got [3, 4]"),
        make_error_input("h of rank 1", inputs(1, ones({4})), f, "h must be [N, hidden_size]"),
        make_error_input("w_ih for 5 hidden units", inputs(w, ones({g * 5, 3})), f,
                         "w_ih must be [" + gh + ", 3] (" + gates + ", input_size 3 from x [2, 3]), got [" +
                             std::to_string(g * 5) + ", 3]"),
        make_error_input("w_hh [G*4, 3]", inputs(w + 1, ones({g * 4, 3})), f,
                         "w_hh must be [" + gh + ", 4] (" + gates + " from h [2, 4]), got [" + gh + ", 3]"),
        make_error_input("b_ih [G*4 + 1]", inputs(w + 2, ones({g * 4 + 1})), f,
                         "b_ih must be [" + gh + "] (" + gates + "), got [" + std::to_string(g * 4 + 1) + "]"),
        make_error_input("b_hh [1, G*4]", inputs(w + 3, ones({1, g * 4})), f,
                         "b_hh must be [" + gh + "] (" + gates + "), got [1, " + gh + "]")};
    if (lstm) {
        errors.push_back(make_error_input("c [2, 5] for h [2, 4]", inputs(2, ones({2, 5})), f,
                                          "c must have h's shape [2, 4], got [2, 5]"));
    }
    return errors;
}

}  // namespace tg::rnn_samples
