// A new differentiable op written outside the library, registered with the public op-testing
// kit (tapegrad/testing.hpp) and put through every generic check the built-in ops pass:
// softplus with a sharpness beta > 0, in the numerically stable form
//   forward: y = (max(beta x, 0) + log1p(exp(-|beta x|))) / beta      (= log(1 + exp(beta x)) / beta)
//   vjp:     grad_x = grad_out * sigmoid(beta x)
//
// The op is a struct with a name, a forward, and its derivative stated once as a vjp rule
// written with tg ops. Because the rule is made of ops, the gradient it computes is itself
// recorded when asked (create_graph), so the op has second and higher derivatives with no
// further code. Its registration gives sample calls with reference values and error inputs
// (calls it must refuse); tg::testing::check_op then runs gradcheck, gradgradcheck, the
// float32 comparison, the error inputs and the rest on it. (The library has its own
// tg::softplus; this one is named my_softplus so that the two do not meet, in overload
// resolution or in the registry.)

#include <tapegrad/testing.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <string>

#include <xtensor/xmath.hpp>

#include <tapegrad/tapegrad.hpp>

namespace {

struct MySoftplus {
    static constexpr const char* name = "my_softplus";
    double beta = 1.0;

    template <class T> void forward(tg::OpContext<T>& c) const
    {
        const T b = static_cast<T>(beta);
        const auto z = c.input(0) * b;
        xt::noalias(c.output()) = (xt::maximum(z, T(0)) + xt::log1p(xt::exp(-xt::abs(z)))) / b;
    }

    template <class T> void vjp(tg::VjpContext<T>& v) const
    {
        v.add_grad(0, v.grad_out() * tg::sigmoid(v.input(0) * beta));
    }
};

// Checks at entry, with a message that names the op: the kit's error inputs test exactly this.
template <class T> tg::Var<T> my_softplus(const tg::Var<T>& x, double beta = 1.0)
{
    if (!(beta > 0) || !std::isfinite(beta)) {
        throw tg::Error("my_softplus: beta must be positive and finite, got " + tg::format_number(beta));
    }
    return tg::record(MySoftplus{beta}, x);
}

// The same op with only a hand-written first-order kernel and no vjp rule: first-order
// gradients work, but its gradient cannot be recorded, and the checks say so.
struct SoftplusFirstOrderOnly {
    static constexpr const char* name = "softplus_first_order_only";
    template <class T> void forward(tg::OpContext<T>& c) const { MySoftplus{}.forward(c); }
    template <class T> void backward(tg::OpContext<T>& c) const
    {
        c.add_grad(0, c.grad_out() / (T(1) + xt::exp(-c.input(0))));
    }
};

xt::xarray<double> softplus_reference(const xt::xarray<double>& x, double beta)
{
    return xt::log1p(xt::exp(beta * x)) / beta;
}

}  // namespace

// Sample calls: the kit's unary shapes (rank 0, size-1 dims, a matrix, rank 3, an empty
// batch, a transposed input) at beta = 1, and one sharper call.
TAPEGRAD_REGISTER_OP(my_softplus, rng)
{
    auto samples = tg::samples::unary(
        rng, -5.0, 5.0, 0.0, [](const auto& v) { return my_softplus(v[0]); },
        [](const auto& x) { return softplus_reference(x, 1.0); });
    samples.push_back(tg::make_sample(
        "(3,4) beta 2.5", {tg::sample_uniform(rng, {3, 4}, -3.0, 3.0)},
        [](const auto& v) { return my_softplus(v[0], 2.5); },
        [](const auto& x) { return softplus_reference(x[0], 2.5); }));
    return samples;
}

// Calls it must refuse with a tg::Error naming it and saying what is wrong.
TAPEGRAD_REGISTER_ERROR_INPUTS(my_softplus)
{
    std::vector<tg::ErrorInput> errors;
    for (const double beta : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(), HUGE_VAL}) {
        const std::string shown = tg::format_number(beta);
        errors.push_back(tg::make_error_input(
            "beta " + shown, {xt::xarray<double>{1.0, 2.0}}, [beta](const auto& v) { return my_softplus(v[0], beta); },
            "beta must be positive and finite, got " + shown));
    }
    return errors;
}

int main()
{
    // 1. Use it like any op: in a small model, with backward.
    tg::Var<double> w = tg::parameter(xt::xarray<double>{{0.5, -1.0}, {2.0, 0.25}});
    tg::Var<double> x = tg::constant(xt::xarray<double>{{1.0, -3.0}});
    tg::Var<double> loss = tg::sum(my_softplus(tg::matmul(x, w)));
    loss.backward();
    std::printf("loss = %.6f\n", loss.item());
    std::printf("d loss / d w = [[%.6f, %.6f], [%.6f, %.6f]]\n", w.grad()(0, 0), w.grad()(0, 1), w.grad()(1, 0),
                w.grad()(1, 1));

    // 2. Its second derivative needs no more code: softplus'' = sigmoid * (1 - sigmoid).
    const xt::xarray<double> at{-2.0, 0.0, 3.0};
    const xt::xarray<double> h = tg::hvp([](const tg::Var<double>& v) { return tg::sum(my_softplus(v)); }, at,
                                         xt::xarray<double>{1.0, 1.0, 1.0});
    std::printf("softplus''(-2, 0, 3) = %.6f %.6f %.6f (sigmoid(x) (1 - sigmoid(x)): %.6f %.6f %.6f)\n", h(0), h(1),
                h(2), 0.104994, 0.25, 0.045177);

    // 3. Every generic check, over every sample and error input of the registration.
    const tg::testing::CheckReport report = tg::testing::check_op("my_softplus");
    std::printf("check_op(\"my_softplus\"):\n");
    for (const auto& c : report.checks) {
        std::printf("  %-15s %3zu run%s  %s\n", c.check.c_str(), c.runs, c.runs == 1 ? " " : "s",
                    c.failed == 0 ? "ok" : (std::to_string(c.failed) + " FAILED").c_str());
    }
    for (const auto& line : report.failures) std::printf("  %s\n", line.c_str());

    // 4. The checks can fail: the op without a vjp rule passes first order, and fails the two
    //    checks that need its rule, with a message that names it.
    tg::OpInfo first_only;
    first_only.name = "softplus_first_order_only";
    first_only.samples = [](std::mt19937_64& rng) {
        return std::vector<tg::OpSample>{tg::make_sample(
            "(3,4)", {tg::sample_uniform(rng, {3, 4}, -5.0, 5.0)},
            [](const auto& v) { return tg::record(SoftplusFirstOrderOnly{}, v[0]); },
            [](const auto& in) { return softplus_reference(in[0], 1.0); })};
    };
    const tg::testing::CheckReport refused = tg::testing::check_op(first_only);
    std::set<std::string> failed;
    for (const auto& c : refused.checks) {
        if (c.failed > 0) failed.insert(c.check);
    }
    std::printf("without a vjp rule: %s\n", refused.failures.empty() ? "no failure" : refused.failures[0].c_str());
    const bool refusal_right = failed == std::set<std::string>{"gradgradcheck", "kernel_vs_rule"};

    const bool ok = report.ok && refusal_right && std::abs(h(1) - 0.25) < 1e-12;
    std::printf("%s\n", ok ? "custom op: every generic check passed, to second order" : "custom op: A CHECK FAILED");
    return ok ? 0 : 1;
}
