// Built against the installed package with default compiler flags: records, backpropagates,
// gradchecks to second order, and writes an op of its own with the installed kit, as a
// built-in op is written: registered with samples and error inputs through the public
// op-testing kit, put through every generic check, and differentiated twice against a
// hand-derived second derivative. Exits non-zero if anything is off.

// First and alone: the kit's header compiles on its own.
#include <tapegrad/testing.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <tapegrad/tapegrad.hpp>

namespace {

// softsign(x; k) = x / (k + |x|) for k > 0, written with the kit's elementwise helper: one
// formula for the SIMD kernel and for the recorded rule.
//   f'(x)  = k / (k + |x|)^2
//   f''(x) = -2 k sign(x) / (k + |x|)^3       (x != 0)
template <class T> struct Softsign : tg::elementwise::Unary<Softsign<T>> {
    static constexpr const char* name = "softsign";
    T k;
    explicit Softsign(T k_) : k(k_) {}
    template <class V> V f(const V& x) const { return x / (k + tg::fn::abs(x)); }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        const V d = k + tg::fn::abs(x);
        return g * k / (d * d);
    }
};

template <class T> tg::Var<T> softsign(const tg::Var<T>& x, double k = 1.0)
{
    if (!(k > 0) || !std::isfinite(k)) {
        throw tg::Error("softsign: k must be positive and finite, got " + tg::format_number(k));
    }
    return tg::record(Softsign<T>(static_cast<T>(k)), x);
}

}  // namespace

// Samples kept 0.1 away from the kink of |x| at 0, where the second derivative jumps.
TAPEGRAD_REGISTER_OP(softsign, rng)
{
    auto samples = tg::samples::unary(
        rng, -3.0, 3.0, 0.1, [](const auto& v) { return softsign(v[0]); },
        [](const auto& x) { return x / (1.0 + xt::abs(x)); });
    samples.push_back(tg::make_sample(
        "(2,3) k 2.5", {tg::sample_away_from_zero(rng, {2, 3}, -3.0, 3.0, 0.1)},
        [](const auto& v) { return softsign(v[0], 2.5); },
        [](const auto& x) { return xt::xarray<double>(x[0] / (2.5 + xt::abs(x[0]))); }));
    return samples;
}

TAPEGRAD_REGISTER_ERROR_INPUTS(softsign)
{
    std::vector<tg::ErrorInput> errors;
    for (const double k : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
        const std::string shown = tg::format_number(k);
        errors.push_back(tg::make_error_input(
            "k " + shown, {xt::xarray<double>{0.5, -1.0}}, [k](const auto& v) { return softsign(v[0], k); },
            "k must be positive and finite, got " + shown));
    }
    return errors;
}

int main()
{
    tg::Var<double> w = tg::parameter(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
    tg::Var<double> x = tg::constant(xt::xarray<double>{{1.0, -1.0}});
    tg::Var<double> loss = tg::sum(tg::sigmoid(tg::matmul(x, w)));
    loss.backward();
    const double value = loss.item();  // read before the next op starts a new pass
    auto f = [](const std::vector<tg::Var<double>>& v) { return softsign(tg::tanh(v[0] * 2.0)); };
    const auto r1 = tg::gradcheck(f, {xt::xarray<double>{0.5, -0.25}});
    const auto r2 = tg::gradgradcheck(f, {xt::xarray<double>{0.5, -0.25}});
    std::printf("loss %.6f, grad shape [%zu, %zu]\n%s\n%s\n", value, w.grad().shape()[0], w.grad().shape()[1],
                r1.message.c_str(), r2.message.c_str());

    // Every generic check on the registered op.
    const tg::testing::CheckReport report = tg::testing::check_op("softsign");
    for (const auto& c : report.checks) std::printf("%s: %zu runs, %zu failed\n", c.check.c_str(), c.runs, c.failed);
    for (const auto& line : report.failures) std::printf("%s\n", line.c_str());
    bool errors_ran = false;
    for (const auto& c : report.checks) errors_ran = errors_ran || (c.check == "error_inputs" && c.runs == 3);

    // Differentiated twice: d2/dx2 sum(softsign(x; k)) against the hand-derived formula.
    const double k = 1.5;
    const xt::xarray<double> at{-2.0, -0.5, 0.25, 3.0};
    tg::Var<double> p = tg::parameter(at);
    const tg::Var<double> g = tg::grad<double>({tg::sum(softsign(p, k))}, {p}, {}, {true, false, false})[0];
    const xt::xarray<double> second = tg::grad<double>({tg::sum(g)}, {p})[0].value();
    double worst = 0;
    for (std::size_t i = 0; i < at.size(); ++i) {
        const double d = k + std::abs(at(i));
        const double want = -2 * k * (at(i) > 0 ? 1.0 : -1.0) / (d * d * d);
        worst = std::max(worst, std::abs(second(i) - want));
    }
    std::printf("second derivative: worst error %.3g against -2 k sign(x) / (k + |x|)^3\n", worst);

    const bool ok = r1.ok && r2.ok && w.grad().shape()[0] == 2 && report.ok && errors_ran && worst < 1e-12;
    std::printf("%s\n", ok ? "consumer: ok" : "consumer: FAILED");
    return ok ? 0 : 1;
}
