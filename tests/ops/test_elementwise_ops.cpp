// The elementwise ops of the N-D catalogue (abs, sin, cos, log1p, expm1, minimum, maximum,
// pow, clamp, leaky_relu, elu, gelu, silu, softplus, log_sigmoid): what the generic tests
// cannot see, since their samples stay clear of kinks. The gradient conventions at exactly
// the kinks, ties and bounds, with the hard values that Debian's PyTorch 1.13 gives there;
// values and gradients far out in the tails; NaN; bad arguments; zero-size inputs.
//
// Every point is run twice: alone (the kernels' scalar tail) and repeated 8 times in one
// array (the SIMD body), and each gradient both ways: by the fused kernel and by the vjp
// rule (create_graph), whose own derivative gives the second order.

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xio.hpp>

#include "tapegrad/kit.hpp"
#include "tapegrad/tapegrad.hpp"

using Catch::StartsWith;
using tg::Var;

namespace {

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

using Values = std::vector<double>;

xt::xarray<double> array(const Values& v)
{
    return xt::adapt(v, std::vector<std::size_t>{v.size()});
}

// Each element of x repeated `copies` times in a row.
xt::xarray<double> repeated(const xt::xarray<double>& x, std::size_t copies)
{
    xt::xarray<double> out = xt::zeros<double>({x.size() * copies});
    for (std::size_t i = 0; i < out.size(); ++i) out(i) = x(i / copies);
    return out;
}

// got equals want to 1e-12 relative; NaN matches NaN, infinities must be equal.
bool close(const xt::xarray<double>& got, const xt::xarray<double>& want)
{
    if (got.shape() != want.shape()) return false;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double a = got.data()[i], b = want.data()[i];
        if (std::isnan(b) ? !std::isnan(a) : !(a == b || std::abs(a - b) <= 1e-12 * std::abs(b))) return false;
    }
    return true;
}

std::string show(const xt::xarray<double>& a)
{
    std::ostringstream out;
    out.precision(17);
    out << a;
    return out.str();
}

// The value, the first-order gradient by the kernel and by the rule, and the second order
// d/dx_i sum_j d y_j / d x_j (through the rule), all for the seed ones.
struct Derivatives {
    xt::xarray<double> y, by_kernel, by_rule, second;
};

template <class F> Derivatives derivatives(F f, const std::vector<xt::xarray<double>>& at, std::size_t wrt)
{
    std::vector<Var<double>> x;
    for (const auto& a : at) x.push_back(tg::parameter(a));
    const Var<double> y = f(x);
    const Var<double> seed = tg::constant(xt::xarray<double>(xt::ones<double>(y.shape())));
    Derivatives d;
    d.y = y.value();
    d.by_kernel = tg::grad<double>({y}, x, {seed}, {false, true, true})[wrt].value();
    const std::vector<Var<double>> g = tg::grad<double>({y}, x, {seed}, {true, true, true});
    d.by_rule = g[wrt].value();
    Var<double> total;
    for (const auto& gi : g) {
        if (!gi.requires_grad()) continue;
        total = total.defined() ? total + tg::sum(gi) : tg::sum(gi);
    }
    d.second = total.defined() ? tg::grad<double>({total}, x, {}, {false, true, true})[wrt].value()
                               : xt::xarray<double>(xt::zeros<double>(at[wrt].shape()));
    tg::end_pass<double>();
    return d;
}

// What PyTorch gives at some points: y, dy/dx and (when given) the second derivative.
struct Expected {
    Values x, y, g, h;
};

template <class F> void check_unary(const std::string& what, F f, const Expected& e)
{
    auto call = [f](const std::vector<Var<double>>& v) { return f(v[0]); };
    for (std::size_t i = 0; i < e.x.size(); ++i) {
        const Derivatives d = derivatives(call, {xt::xarray<double>(e.x[i])}, 0);
        INFO(what << " at " << e.x[i] << " alone: y " << show(d.y) << ", gradient by kernel " << show(d.by_kernel)
                  << ", by rule " << show(d.by_rule) << ", second order " << show(d.second));
        CHECK(close(d.y, xt::xarray<double>(e.y[i])));
        CHECK(close(d.by_kernel, xt::xarray<double>(e.g[i])));
        CHECK(close(d.by_rule, xt::xarray<double>(e.g[i])));
        if (!e.h.empty()) CHECK(close(d.second, xt::xarray<double>(e.h[i])));
    }
    const Derivatives d = derivatives(call, {repeated(array(e.x), 8)}, 0);
    INFO(what << " at " << show(array(e.x)) << " in one SIMD-wide array: y " << show(d.y) << ", gradient by kernel "
              << show(d.by_kernel) << ", by rule " << show(d.by_rule) << ", second order " << show(d.second));
    CHECK(close(d.y, repeated(array(e.y), 8)));
    CHECK(close(d.by_kernel, repeated(array(e.g), 8)));
    CHECK(close(d.by_rule, repeated(array(e.g), 8)));
    if (!e.h.empty()) CHECK(close(d.second, repeated(array(e.h), 8)));
}

// The same for a binary op at pairs (a[i], b[i]): the gradient of each input.
struct ExpectedPairs {
    Values a, b, y, ga, gb;
};

template <class F> void check_binary(const std::string& what, F f, const ExpectedPairs& e)
{
    auto call = [f](const std::vector<Var<double>>& v) { return f(v[0], v[1]); };
    for (std::size_t copies : {std::size_t(1), std::size_t(8)}) {
        const std::vector<xt::xarray<double>> at{repeated(array(e.a), copies), repeated(array(e.b), copies)};
        for (std::size_t wrt = 0; wrt < 2; ++wrt) {
            const Derivatives d = derivatives(call, at, wrt);
            const xt::xarray<double> want = repeated(array(wrt == 0 ? e.ga : e.gb), copies);
            INFO(what << " at a = " << show(at[0]) << ", b = " << show(at[1]) << ": y " << show(d.y) << ", gradient of "
                      << (wrt == 0 ? "a" : "b") << " by kernel " << show(d.by_kernel) << ", by rule "
                      << show(d.by_rule));
            CHECK(close(d.y, repeated(array(e.y), copies)));
            CHECK(close(d.by_kernel, want));
            CHECK(close(d.by_rule, want));
        }
    }
}

}  // namespace

TEST_CASE("abs has gradient 0 at exactly 0, as PyTorch's sgn", "[ops][elementwise][conventions]")
{
    check_unary(
        "abs", [](const auto& x) { return tg::abs(x); },
        {{0.0, -0.0, 2.0, -3.0, kNan}, {0.0, 0.0, 2.0, 3.0, kNan}, {0.0, 0.0, 1.0, -1.0, 0.0}, {0, 0, 0, 0, 0}});
}

TEST_CASE("minimum and maximum split a tie's gradient in halves and give NaN's to both",
          "[ops][elementwise][conventions]")
{
    const Values a{1.0, 2.0, 3.0, kNan, 1.0}, b{1.0, 1.0, 4.0, 1.0, kNan};
    check_binary("minimum", [](const auto& x, const auto& y) { return tg::minimum(x, y); },
                 {a, b, {1.0, 1.0, 3.0, kNan, kNan}, {0.5, 0.0, 1.0, 1.0, 1.0}, {0.5, 1.0, 0.0, 1.0, 1.0}});
    check_binary("maximum", [](const auto& x, const auto& y) { return tg::maximum(x, y); },
                 {a, b, {1.0, 2.0, 4.0, kNan, kNan}, {0.5, 1.0, 0.0, 1.0, 1.0}, {0.5, 0.0, 1.0, 1.0, 1.0}});

    // A broadcast scalar tied with some elements collects the halves.
    Var<double> s = tg::parameter(xt::xarray<double>(1.0));
    Var<double> v = tg::parameter(xt::xarray<double>{1.0, 1.0, 2.0});
    tg::sum(tg::maximum(s, v)).backward();
    CHECK(s.grad()() == 1.0);
    CHECK(v.grad() == xt::xarray<double>{0.5, 0.5, 1.0});
    s.zero_grad();
    v.zero_grad();
    tg::sum(tg::minimum(s, v)).backward();
    CHECK(s.grad()() == 2.0);
    CHECK(v.grad() == xt::xarray<double>{0.5, 0.5, 0.0});

    // The masks do not depend on a or b, so the second derivatives are 0.
    const Derivatives d = derivatives([](const auto& w) { return tg::maximum(w[0], w[1]); },
                                      {array({1.0, 2.0, 3.0}), array({1.0, 1.0, 4.0})}, 0);
    CHECK((d.second == xt::zeros<double>({3})));
}

TEST_CASE("clamp passes the gradient at exactly lo and hi, and none at NaN", "[ops][elementwise][conventions]")
{
    check_unary("clamp", [](const auto& x) { return tg::clamp(x, -1.0, 2.0); },
                {{-1.0, 2.0, 0.0, -3.0, 3.0, kNan},
                 {-1.0, 2.0, 0.0, -1.0, 2.0, kNan},
                 {1.0, 1.0, 1.0, 0.0, 0.0, 0.0},
                 {0, 0, 0, 0, 0, 0}});
    // lo == hi is allowed: every value becomes lo, and only lo itself passes a gradient.
    check_unary("clamp to a point", [](const auto& x) { return tg::clamp(x, 0.5, 0.5); },
                {{0.5, 0.0, 1.0}, {0.5, 0.5, 0.5}, {1.0, 0.0, 0.0}, {0, 0, 0}});
    check_unary("clamp below only", [](const auto& x) { return tg::clamp(x, -kInf, 0.0); },
                {{-kInf, -5.0, 0.0, 5.0}, {-kInf, -5.0, 0.0, 0.0}, {1.0, 1.0, 1.0, 0.0}, {0, 0, 0, 0}});
}

TEST_CASE("leaky_relu and elu take PyTorch's gradient at exactly 0", "[ops][elementwise][conventions]")
{
    // leaky_relu: x > 0 ? grad : slope * grad, so the slope at 0 and at NaN.
    check_unary(
        "leaky_relu 0.2", [](const auto& x) { return tg::leaky_relu(x, 0.2); },
        {{0.0, -0.0, 1.0, -1.0, kNan}, {0.0, -0.0, 1.0, -0.2, kNan}, {0.2, 0.2, 1.0, 0.2, 0.2}, {0, 0, 0, 0, 0}});
    check_unary("leaky_relu default", [](const auto& x) { return tg::leaky_relu(x); },
                {{0.0, -1.0}, {0.0, -0.01}, {0.01, 0.01}, {0, 0}});
    // elu: the exp branch for x <= 0 gives alpha at 0, but the second derivative there is 0
    // (PyTorch masks x < 0 in elu's double backward); NaN takes the x > 0 branch's 1.
    check_unary("elu 1.5", [](const auto& x) { return tg::elu(x, 1.5); },
                {{-1000.0, -1.0, -0.0, 0.0, 1.0, 1000.0, kNan},
                 {-1.5, -0.9481808382428365, 0.0, 0.0, 1.0, 1000.0, kNan},
                 {0.0, 0.5518191617571635, 1.5, 1.5, 1.0, 1.0, 1.0},
                 {0.0, 0.5518191617571635, 0.0, 0.0, 0.0, 0.0, 0.0}});
}

TEST_CASE("softplus switches to x above threshold / beta, with PyTorch's derivatives at the switch",
          "[ops][elementwise][conventions][numerics]")
{
    // At beta x == threshold exactly the log branch is taken (slope sigmoid(threshold)), and
    // the second derivative is 0 there, as PyTorch's double backward masks beta x < threshold.
    // Just below it the second derivative is sigmoid(x) sigmoid(-x) in full precision; PyTorch's
    // sigmoid (1 - sigmoid) cancels to 2.063215816156829e-09 at 19.999, 9e-9 relative off.
    check_unary("softplus", [](const auto& x) { return tg::softplus(x); },
                {{-1000.0, -40.0, 0.0, 19.999, 20.0, 20.001, 40.0, 1000.0, kNan},
                 {0.0, 4.248354255291589e-18, 0.6931471805599453, 19.999000002063216, 20.000000002061153, 20.001, 40.0,
                  1000.0, kNan},
                 {0.0, 4.248354255291589e-18, 0.5, 0.9999999979367842, 0.9999999979388464, 1.0, 1.0, 1.0, kNan},
                 {0.0, 4.248354255291589e-18, 0.25, 2.0632157984677027e-09, 0.0, 0.0, 0.0, 0.0, kNan}});
    check_unary("softplus beta 2 threshold 3", [](const auto& x) { return tg::softplus(x, 2.0, 3.0); },
                {{1.5, 1.4999, 1.5001},
                 {1.524293675786871, 1.5241984188259827, 1.5001},
                 {0.9525741268224333, 0.9525650906726116, 1.0},
                 {0.0, 0.09036967740898162, 0.0}});
}

TEST_CASE("pow(a, b) follows PyTorch at a = 0, b = 0, negative bases and NaN", "[ops][elementwise][conventions]")
{
    // grad_a is 0 where b = 0 and grad_b is 0 where a = 0 and b >= 0; 0 ** 0 = 1, and
    // a ** 0 and 1 ** b are 1 even for NaN, in the SIMD body as in the scalar tail.
    check_binary("pow", [](const auto& a, const auto& b) { return tg::pow(a, b); },
                 {{0.0, 0.0, 0.0, -2.0, 2.0, -2.0, 0.0, kNan, 1.0},
                  {0.0, 2.0, -1.0, 3.0, 0.5, 0.5, 0.5, 0.0, kNan},
                  {1.0, 0.0, kInf, -8.0, 1.4142135623730951, kNan, 0.0, 1.0, 1.0},
                  {0.0, 0.0, -kInf, 12.0, 0.3535533905932738, kNan, kInf, 0.0, kNan},
                  {0.0, 0.0, -kInf, kNan, 0.9802581434685472, kNan, 0.0, kNan, 0.0}});
    // Second order at a regular point: d/da (ga + gb) = b (b - 1) a^(b-2) + a^(b-1) (1 + b log a).
    const Derivatives d = derivatives([](const auto& v) { return tg::pow(v[0], v[1]); },
                                      {xt::xarray<double>(2.0), xt::xarray<double>(0.5)}, 0);
    CHECK(d.second() == Approx(-0.08838834764831845 + 0.9521713170536844).epsilon(1e-12));
}

TEST_CASE("the scalar-exponent pow is unchanged next to the new a ** b", "[ops][elementwise]")
{
    Var<double> x = tg::parameter(xt::xarray<double>{1.5, 2.0});
    const Var<double> y = tg::pow(x, 3.0);
    CHECK(y.value() == xt::xarray<double>{3.375, 8.0});
    tg::sum(y).backward();
    CHECK(x.grad() == xt::xarray<double>{6.75, 12.0});
    const Var<float> yf = tg::pow(tg::constant(xt::xarray<float>{4.0f}), 0.5f);
    CHECK(yf.value()(0) == 2.0f);
}

TEMPLATE_TEST_CASE("the scalar-exponent pow gives std::pow's edge values in the SIMD body and the tail alike",
                   "[ops][elementwise][conventions]", float, double)
{
    // 21 elements: several SIMD batches and a scalar tail, which once disagreed at 0 ** -1.5.
    const auto zeros = xt::xarray<TestType>(xt::zeros<TestType>({21}));
    const xt::xarray<TestType> inv = tg::pow(tg::constant(zeros), TestType(-1.5)).value();
    for (const TestType v : inv) CHECK(v == std::numeric_limits<TestType>::infinity());
    const xt::xarray<TestType> nan_base =
        tg::pow(tg::constant(xt::xarray<TestType>(xt::full_like(zeros, std::nan("")))), TestType(0)).value();
    for (const TestType v : nan_base) CHECK(v == TestType(1));  // x ** 0 is 1, even for NaN
}

TEST_CASE("softplus, log_sigmoid, gelu, silu and elu stay finite and exact far out", "[ops][elementwise][numerics]")
{
    // The second derivative -sigmoid(x) sigmoid(-x) is exact on both sides (PyTorch's gives 0
    // at 40, where its sigmoid rounds to 1).
    check_unary("log_sigmoid", [](const auto& x) { return tg::log_sigmoid(x); },
                {{-1000.0, -40.0, 40.0, 1000.0, kNan, -kInf, kInf},
                 {-1000.0, -40.0, -4.248354255291589e-18, 0.0, kNan, -kInf, 0.0},
                 {1.0, 1.0, 4.248354255291589e-18, 0.0, kNan, 1.0, 0.0},
                 {0.0, -4.248354255291589e-18, -4.248354255291589e-18, 0.0, kNan, 0.0, 0.0}});
    check_unary("silu", [](const auto& x) { return tg::silu(x); },
                {{-1000.0, -40.0, 40.0, 1000.0},
                 {-0.0, -1.6993417021166355e-16, 40.0, 1000.0},
                 {-0.0, -1.6568581595637197e-16, 1.0, 1.0},
                 {0.0, -1.6143746170108038e-16, 0.0, 0.0}});
    // gelu through erfc keeps the lower tail, where PyTorch's 1 + erf(x / sqrt(2)) has
    // cancelled to 0 (PyTorch gives -0 at -9 and -10, and gradients 1% off at -10); both
    // agree far below the reference test's absolute floor. The values here are x Phi(x),
    // Phi(x) + x phi(x) and phi(x) (2 - x^2) in double.
    check_unary("gelu", [](const auto& x) { return tg::gelu(x); },
                {{-1000.0, -40.0, -10.0, -9.0, 0.0, 10.0, 40.0, 1000.0},
                 {-0.0, -0.0, -7.619853024160593e-23, -1.015729565358458e-18, 0.0, 10.0, 40.0, 1000.0},
                 {0.0, 0.0, -7.618400096464813e-22, -9.13893737390664e-18, 0.5, 1.0, 1.0, 1.0},
                 {0.0, 0.0, -7.540706654172292e-21, -8.121021121618445e-17, 0.7978845608028654, -7.540706654172292e-21,
                  0.0, 0.0}});
    // elu's rule takes exp only of x <= 0: at x = 1000 exp(x) would be inf, and inf times the
    // zero gradient of the branch not taken would make the second order NaN.
    check_unary("elu", [](const auto& x) { return tg::elu(x); },
                {{-1000.0, 1000.0}, {-1.0, 1000.0}, {0.0, 1.0}, {0.0, 0.0}});
}

TEMPLATE_TEST_CASE("far-out values need no overflow in float either", "[ops][elementwise][numerics]", float, double)
{
    using T = TestType;
    const xt::xarray<T> far{T(-1000), T(-80), T(80), T(1000)};
    auto finite = [](const xt::xarray<T>& a) {
        return std::all_of(a.begin(), a.end(), [](T v) { return std::isfinite(v); });
    };
    for (int op = 0; op < 5; ++op) {
        Var<T> x = tg::parameter(far);
        const Var<T> y = op == 0   ? tg::softplus(x)
                         : op == 1 ? tg::log_sigmoid(x)
                         : op == 2 ? tg::gelu(x)
                         : op == 3 ? tg::silu(x)
                                   : tg::elu(x);
        INFO("op " << op << ": " << y.value());
        CHECK(finite(y.value()));
        const Var<T> g = tg::grad<T>({tg::sum(y)}, {x}, {}, {true, true, true})[0];
        CHECK(finite(g.value()));
        CHECK(std::abs(g.value()(0)) <= T(1));
        CHECK(g.value()(3) == Approx(op == 1 ? 0.0 : 1.0));
        if (g.requires_grad()) CHECK(finite(tg::grad<T>({tg::sum(g)}, {x}, {}, {false, true, true})[0].value()));
        tg::end_pass<T>();
    }
}

TEST_CASE("expm1 and log1p keep full precision for tiny x", "[ops][elementwise][numerics]")
{
    // exp(x) - 1 and log(1 + x) would lose about half the digits at 1e-8 and all at 1e-17.
    check_unary("expm1", [](const auto& x) { return tg::expm1(x); },
                {{1e-10, -1e-10, 1e-300},
                 {1.00000000005e-10, -9.999999999500001e-11, 1e-300},
                 {1.0000000001, 0.9999999999, 1.0},
                 {1.0000000001, 0.9999999999, 1.0}});
    check_unary("log1p", [](const auto& x) { return tg::log1p(x); },
                {{1e-10, -1e-10, 1e-300, -1.0, -2.0},
                 {9.999999999500001e-11, -1.00000000005e-10, 1e-300, -kInf, kNan},
                 {0.9999999999, 1.0000000001, 1.0, kInf, -1.0},
                 {-0.9999999998, -1.0000000002, -1.0, -kInf, -1.0}});
    for (const double x : {1e-17, -3e-12, 2.5e-8, -7e-5}) {
        INFO("x = " << x);
        const double e = tg::expm1(tg::constant(repeated(xt::xarray<double>{x}, 8))).value()(3);
        const double l = tg::log1p(tg::constant(repeated(xt::xarray<double>{x}, 8))).value()(3);
        CHECK(e == Approx(std::expm1(x)).epsilon(1e-15));
        CHECK(l == Approx(std::log1p(x)).epsilon(1e-15));
        CHECK(tg::expm1(tg::constant(xt::xarray<float>(float(x)))).value()() == Approx(std::expm1(x)).epsilon(1e-6));
    }
}

TEST_CASE("NaN in gives NaN out where PyTorch's does", "[ops][elementwise][numerics][nan]")
{
    const xt::xarray<double> x = repeated(xt::xarray<double>{kNan}, 9);  // SIMD body and tail
    auto all_nan = [](const xt::xarray<double>& a) {
        return std::all_of(a.begin(), a.end(), [](double v) { return std::isnan(v); });
    };
    const Var<double> c = tg::constant(x);
    const Var<double> one = tg::constant(xt::xarray<double>(1.0));
    for (const auto& y : {tg::abs(c), tg::sin(c), tg::cos(c), tg::log1p(c), tg::expm1(c), tg::clamp(c, -1.0, 1.0),
                          tg::leaky_relu(c), tg::elu(c), tg::gelu(c), tg::silu(c), tg::softplus(c), tg::log_sigmoid(c),
                          tg::minimum(c, one), tg::minimum(one, c), tg::maximum(c, one), tg::maximum(one, c),
                          tg::pow(c, tg::constant(xt::xarray<double>(2.0))), tg::pow(one * 2.0, c)}) {
        CHECK(all_nan(y.value()));
    }
    // ... except where PyTorch's is a number: NaN ** 0 and 1 ** NaN are 1, as std::pow.
    CHECK((tg::pow(c, tg::constant(xt::xarray<double>(0.0))).value() == xt::ones<double>({9})));
    CHECK((tg::pow(one, c).value() == xt::ones<double>({9})));
}

TEST_CASE("the new kit functions work alike on scalars and SIMD batches", "[ops][elementwise][kit]")
{
    using B = xsimd::batch<double>;
    auto lane0 = [](const auto& v) {
        if constexpr (std::is_arithmetic<std::decay_t<decltype(v)>>::value) {
            return double(v);
        } else {
            return v.get(0);
        }
    };
    for (const double a : {-2.0, -0.0, 0.0, 1.0, 3.5, kNan, kInf}) {
        for (const double b : {-1.0, 0.0, 0.5, 2.0, 3.0, kNan}) {
            INFO("a = " << a << ", b = " << b);
            const double mn = tg::fn::minimum(a, b), mx = tg::fn::maximum(a, b);
            CHECK((std::isnan(mn) ? std::isnan(lane0(tg::fn::minimum(B(a), B(b))))
                                  : lane0(tg::fn::minimum(B(a), B(b))) == mn));
            CHECK((std::isnan(mx) ? std::isnan(lane0(tg::fn::maximum(B(a), B(b))))
                                  : lane0(tg::fn::maximum(B(a), B(b))) == mx));
            CHECK((std::isnan(a) || std::isnan(b) ? std::isnan(mn) && std::isnan(mx) : mn == std::min(a, b)));
            const double p = std::pow(a, b);
            const double pb = lane0(tg::fn::pow(B(a), B(b)));
            CHECK((std::isnan(p) ? std::isnan(pb) : pb == Approx(p).epsilon(1e-15)));
            CHECK(tg::fn::equal(a, b) == (a == b));
            CHECK(xsimd::any(tg::fn::equal(B(a), B(b))) == (a == b));
        }
        CHECK(tg::fn::isnan(a) == std::isnan(a));
        CHECK(xsimd::any(tg::fn::isnan(B(a))) == std::isnan(a));
        // xsimd's erfc is good to about 4e-12 relative up to 10 (see tg::fn::erfc).
        if (!std::isnan(a)) CHECK(lane0(tg::fn::erfc(B(a))) == Approx(std::erfc(a)).epsilon(1e-11));
    }
    const Var<double> v = tg::constant(xt::xarray<double>{1.0, kNan, 2.0});
    CHECK((tg::fn::isnan(v) == xt::xarray<bool>{false, true, false}));
    CHECK((tg::fn::equal(v, 2.0) == xt::xarray<bool>{false, false, true}));
    xt::xarray<double> column = xt::zeros<double>({2, 1});
    column(0, 0) = 1.0;
    column(1, 0) = 2.0;
    CHECK((tg::fn::equal(v, tg::constant(column)) == xt::xarray<bool>{{true, false, false}, {false, false, true}}));
    // Comparisons of Vars broadcast a trailing-dims operand right (xtensor 0.24 with xsimd does
    // not, when it assigns (4,) < (3, 4) into a bool array); minimum's and maximum's rules use them.
    const Var<double> row = tg::constant(xt::xarray<double>{0.0, 1.0, 3.0, -2.0});
    const Var<double> mat = tg::constant(xt::xarray<double>{{1.0, 5.0, -1.0, 2.0}, {2.0, 2.0, 2.0, 2.0}});
    CHECK(((row < mat) == xt::xarray<bool>{{true, true, false, true}, {true, true, false, true}}));
    CHECK(((mat < row) == xt::xarray<bool>{{false, false, true, false}, {false, false, true, false}}));
    CHECK(((row > mat) == xt::xarray<bool>{{false, false, true, false}, {false, false, true, false}}));
    CHECK((tg::fn::equal(row, mat) == xt::xarray<bool>{{false, false, false, false}, {false, false, false, false}}));
    CHECK((tg::fn::equal(mat, tg::constant(xt::xarray<double>{1.0, 2.0, 2.0, 2.0})) ==
           xt::xarray<bool>{{true, false, false, true}, {false, true, true, true}}));
    CHECK_THROWS_WITH(tg::fn::equal(v, tg::constant(xt::xarray<double>{1.0, 2.0})),
                      StartsWith("equal: shapes cannot be broadcast together: a is [3], b is [2]"));
}

TEST_CASE("the new elementwise ops reject bad arguments, naming the op and the values", "[ops][elementwise][errors]")
{
    const Var<double> x = tg::parameter(xt::xarray<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    const Var<double> four = tg::parameter(xt::xarray<double>{1.0, 2.0, 3.0, 4.0});
    CHECK_THROWS_WITH(tg::clamp(x, 2.0, 1.0), StartsWith("clamp: lo must not exceed hi, got lo 2 and hi 1"));
    CHECK_THROWS_WITH(tg::clamp(x, kNan, 1.0), StartsWith("clamp: bounds must not be NaN, got lo nan and hi 1"));
    CHECK_THROWS_WITH(tg::clamp(x, 0.0, kNan), StartsWith("clamp: bounds must not be NaN, got lo 0 and hi nan"));
    CHECK_THROWS_WITH(tg::leaky_relu(x, kNan), StartsWith("leaky_relu: slope must not be NaN"));
    CHECK_THROWS_WITH(tg::elu(x, kNan), StartsWith("elu: alpha must not be NaN"));
    CHECK_THROWS_WITH(tg::softplus(x, 0.0), StartsWith("softplus: beta must be a nonzero number, got 0"));
    CHECK_THROWS_WITH(tg::softplus(x, kNan), StartsWith("softplus: beta must be a nonzero number, got nan"));
    CHECK_THROWS_WITH(tg::softplus(x, 1.0, kNan), StartsWith("softplus: threshold must not be NaN"));
    CHECK_THROWS_WITH(tg::minimum(x, four),
                      StartsWith("minimum: shapes cannot be broadcast together: a is [2, 3], b is [4]"));
    CHECK_THROWS_WITH(tg::maximum(four, x),
                      StartsWith("maximum: shapes cannot be broadcast together: a is [4], b is [2, 3]"));
    CHECK_THROWS_WITH(tg::pow(x, four), StartsWith("pow: shapes cannot be broadcast together: a is [2, 3], b is [4]"));
    // An undefined Var is reported under the op's name, before any argument check.
    const Var<double> undefined;
    CHECK_THROWS_WITH(tg::clamp(undefined, 2.0, 1.0), StartsWith("clamp: the Var is undefined"));
    CHECK_THROWS_WITH(tg::softplus(undefined, 0.0), StartsWith("softplus: the Var is undefined"));
    CHECK_THROWS_WITH(tg::minimum(undefined, x), StartsWith("minimum: the Var is undefined"));
    CHECK_THROWS_WITH(tg::pow(x, undefined), StartsWith("pow: the Var is undefined"));
    CHECK_THROWS_WITH(tg::gelu(undefined), StartsWith("gelu: the Var is undefined"));
    // Float takes the same checks.
    CHECK_THROWS_WITH(tg::clamp(tg::constant(xt::xarray<float>{1.0f}), 1.0f, 0.0f),
                      StartsWith("clamp: lo must not exceed hi"));
}

TEST_CASE("the new elementwise ops take zero-size inputs and give zero-size gradients", "[ops][elementwise][zero]")
{
    using Unary = std::function<Var<double>(const Var<double>&)>;
    const std::vector<std::pair<const char*, Unary>> unary{
        {"abs", [](const auto& x) { return tg::abs(x); }},
        {"sin", [](const auto& x) { return tg::sin(x); }},
        {"cos", [](const auto& x) { return tg::cos(x); }},
        {"log1p", [](const auto& x) { return tg::log1p(x); }},
        {"expm1", [](const auto& x) { return tg::expm1(x); }},
        {"clamp", [](const auto& x) { return tg::clamp(x, -1.0, 1.0); }},
        {"leaky_relu", [](const auto& x) { return tg::leaky_relu(x); }},
        {"elu", [](const auto& x) { return tg::elu(x); }},
        {"gelu", [](const auto& x) { return tg::gelu(x); }},
        {"silu", [](const auto& x) { return tg::silu(x); }},
        {"softplus", [](const auto& x) { return tg::softplus(x); }},
        {"log_sigmoid", [](const auto& x) { return tg::log_sigmoid(x); }},
    };
    const std::vector<std::vector<std::size_t>> shapes{{0}, {0, 3}, {2, 0, 3}};
    for (const auto& shape : shapes) {
        for (const auto& [name, f] : unary) {
            INFO(name << " on " << tg::format_shape(shape));
            Var<double> x = tg::parameter(xt::xarray<double>(xt::zeros<double>(shape)));
            const Var<double> y = f(x);
            CHECK(y.shape() == shape);
            tg::sum(y).backward();
            CHECK(x.grad().shape() == x.value().shape());
            // Second order through the rule, on nothing.
            const Var<double> g = tg::grad<double>({tg::sum(f(x))}, {x}, {}, {true, true, true})[0];
            CHECK(g.shape() == shape);
            tg::end_pass<double>();
        }
    }
    // Binary: an empty batch against a non-empty operand gives that operand a gradient of 0.
    using Binary = std::function<Var<double>(const Var<double>&, const Var<double>&)>;
    const std::vector<std::pair<const char*, Binary>> binary{
        {"minimum", [](const auto& a, const auto& b) { return tg::minimum(a, b); }},
        {"maximum", [](const auto& a, const auto& b) { return tg::maximum(a, b); }},
        {"pow", [](const auto& a, const auto& b) { return tg::pow(a, b); }},
    };
    for (const auto& [name, f] : binary) {
        INFO(name);
        Var<double> a = tg::parameter(xt::xarray<double>(xt::zeros<double>({2, 0, 3})));
        Var<double> b = tg::parameter(xt::xarray<double>{1.0, 2.0, 3.0});
        const Var<double> y = f(a, b);
        CHECK(y.shape() == std::vector<std::size_t>{2, 0, 3});
        tg::sum(y).backward();
        CHECK(a.grad().shape() == a.value().shape());
        CHECK((b.grad() == xt::zeros<double>({3})));
        CHECK(f(tg::constant(xt::xarray<double>(xt::zeros<double>({4, 0}))), tg::constant(xt::xarray<double>(1.0)))
                  .shape() == std::vector<std::size_t>{4, 0});
        CHECK_THROWS_WITH(f(a, tg::constant(xt::xarray<double>(xt::zeros<double>({2})))),
                          StartsWith(std::string(name) + ": shapes cannot be broadcast together: a is [2, 0, 3]"));
    }
}
