// The wide SIMD copy of the elementwise ops (tapegrad/kit/simd.hpp): on a CPU with AVX2 an
// optimised default build has it, every elementwise op reaches it, and it gives the same
// values and first-order gradients as the baseline loops, bit for bit (float sin, cos, tanh
// and gelu to 4 ulps, see tolerance()), for float and double, plain, broadcast and with
// scalar operands, at sizes around the SIMD widths and on NaN, infinities and zeros.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tapegrad/kit.hpp"
#include "tapegrad/runtime.hpp"
#include "tapegrad/tapegrad.hpp"

namespace {

template <class T> using Fn = std::function<tg::Var<T>(const tg::Var<T>&, const tg::Var<T>&)>;

struct Case {
    const char* op;  // the op's registered name, whose rules must reach the wide copy
    Fn<float> f32;
    Fn<double> f64;
};

#define TG_CASE(OP, EXPR)                                                                                              \
    Case                                                                                                               \
    {                                                                                                                  \
        OP, [](const auto& a, const auto& b) { return EXPR; }, [](const auto& a, const auto& b) { return EXPR; }       \
    }

std::vector<Case> cases()
{
    return {
        TG_CASE("exp", tg::exp(a) + 0 * b),
        TG_CASE("log", tg::log(a) + 0 * b),
        TG_CASE("sqrt", tg::sqrt(a) + 0 * b),
        TG_CASE("tanh", tg::tanh(a) + 0 * b),
        TG_CASE("sigmoid", tg::sigmoid(a) + 0 * b),
        TG_CASE("abs", tg::abs(a) + 0 * b),
        TG_CASE("sin", tg::sin(a) + 0 * b),
        TG_CASE("cos", tg::cos(a) + 0 * b),
        TG_CASE("log1p", tg::log1p(a) + 0 * b),
        TG_CASE("expm1", tg::expm1(a) + 0 * b),
        TG_CASE("relu", tg::relu(a) + 0 * b),
        TG_CASE("square", tg::square(a) + 0 * b),
        TG_CASE("neg", tg::neg(a) + 0 * b),
        TG_CASE("gelu", tg::gelu(a) + 0 * b),
        TG_CASE("silu", tg::silu(a) + 0 * b),
        TG_CASE("log_sigmoid", tg::log_sigmoid(a) + 0 * b),
        TG_CASE("elu", tg::elu(a, 0.7) + 0 * b),
        TG_CASE("leaky_relu", tg::leaky_relu(a, 0.02) + 0 * b),
        TG_CASE("clamp", tg::clamp(a, -1.0, 1.5) + 0 * b),
        TG_CASE("pow", tg::pow(a, 2.5) + tg::pow(tg::abs(a), b)),
        TG_CASE("add", a + b + (a + 1.5) + (2.0 + b)),
        TG_CASE("sub", a - b + (a - 1.5) + (2.0 - b)),
        TG_CASE("mul", a * b + a * 1.5 + 2.0 * b),
        TG_CASE("div", a / b + a / 1.5 + 2.0 / b),
        TG_CASE("minimum", tg::minimum(a, b)),
        TG_CASE("maximum", tg::maximum(a, b)),
    };
}
#undef TG_CASE

// Values with the hard ones mixed in: NaN, infinities, zeros of both signs, ties.
template <class T> std::vector<T> values(std::size_t n, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-3.0, 3.0);
    const T specials[] = {std::numeric_limits<T>::quiet_NaN(),
                          std::numeric_limits<T>::infinity(),
                          -std::numeric_limits<T>::infinity(),
                          T(0),
                          -T(0),
                          T(1),
                          T(-1)};
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i % 13 == 5 ? specials[(i / 13) % 7] : static_cast<T>(u(rng));
    return v;
}

template <class T> tg::Var<T> parameter(const std::vector<std::size_t>& shape, unsigned seed)
{
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    const std::vector<T> v = values<T>(n, seed);
    xt::xarray<T> x = xt::xarray<T>::from_shape(shape);
    for (std::size_t i = 0; i < n; ++i) x.data()[i] = v[i];
    return tg::parameter(x);
}

// How far apart two values are in units in the last place (0: the same bits, or NaN in both).
template <class T> std::int64_t ulps(T x, T y)
{
    if (std::isnan(x) && std::isnan(y)) return 0;
    if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<std::int64_t>::max();
    using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    I a = 0, b = 0;
    std::memcpy(&a, &x, sizeof(T));
    std::memcpy(&b, &y, sizeof(T));
    if ((a < 0) != (b < 0)) return a == b ? 0 : std::numeric_limits<std::int64_t>::max();  // -0 and +0 differ too
    return a > b ? static_cast<std::int64_t>(a) - b : static_cast<std::int64_t>(b) - a;
}

// The same shape, and every element within `tolerance` ulps.
template <class T> bool same(const xt::xarray<T>& a, const xt::xarray<T>& b, std::int64_t tolerance)
{
    if (a.dimension() != b.dimension() || a.size() != b.size()) return false;
    for (std::size_t j = 0; j < a.dimension(); ++j) {
        if (a.shape()[j] != b.shape()[j]) return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ulps(a.data()[i], b.data()[i]) > tolerance) return false;
    }
    return true;
}

// Float sin, cos and tanh (and gelu, through tanh) are the exception to bit-for-bit
// agreement: the element of a tensor's tail beyond the last full vector is computed by the
// C library's scalar function, and which elements fall there depends on the width; xsimd's
// float cos also rounds a few arguments differently at the two widths. Both are faithful to a
// couple of ulps. Everything else, and all of double, must agree exactly.
template <class T> std::int64_t tolerance(const std::string& op)
{
    const bool loose = op == "sin" || op == "cos" || op == "tanh" || op == "gelu";
    return std::is_same<T, float>::value && loose ? 4 : 0;
}

template <class T> struct Result {
    xt::xarray<T> y, ga, gb;
};

// y = f(a, b), then the gradients of sum(y * w) + sum(f(a, b)): grad_out varies, and each
// input's gradient is accumulated from two backward passes (the kernels' `add` branch).
template <class T>
Result<T> run(const Fn<T>& f, const std::vector<std::size_t>& sa, const std::vector<std::size_t>& sb, bool wide)
{
    tg::set_wide_simd(wide);
    tg::Var<T> a = parameter<T>(sa, 1), b = parameter<T>(sb, 2);
    const tg::Var<T> y = f(a, b);
    xt::xarray<T> wv = xt::xarray<T>::from_shape(y.value().shape());
    for (std::size_t i = 0; i < wv.size(); ++i) wv.data()[i] = T(0.25) + T(i % 7) * T(0.125);
    const tg::Var<T> w = tg::constant(wv);
    tg::Var<T> loss = tg::sum(y * w) + tg::sum(f(a, b));
    loss.backward();
    tg::set_wide_simd(true);
    return {y.value(), a.grad(), b.grad()};
}

template <class T> void check_all(const std::vector<std::size_t>& sa, const std::vector<std::size_t>& sb)
{
    for (const Case& c : cases()) {
        const Fn<T>& f = [&]() -> const Fn<T>& {
            if constexpr (std::is_same<T, float>::value) {
                return c.f32;
            } else {
                return c.f64;
            }
        }();
        const Result<T> wide = run<T>(f, sa, sb, true), base = run<T>(f, sa, sb, false);
        INFO(c.op << (sizeof(T) == 4 ? " float " : " double ") << tg::format_shape(sa) << " with "
                  << tg::format_shape(sb));
        const std::int64_t tol = tolerance<T>(c.op);
        CHECK(same(wide.y, base.y, tol));
        CHECK(same(wide.ga, base.ga, tol));
        CHECK(same(wide.gb, base.gb, tol));
    }
}

}  // namespace

TEST_CASE("wide SIMD copy: present in an optimised default build on a CPU with AVX2", "[simd]")
{
#if defined(TAPEGRAD_TEST_EXPECT_WIDE_SIMD) && (defined(__x86_64__) || defined(__i386__))
    if (__builtin_cpu_supports("avx2")) {
        CHECK(tg::wide_simd_available());
        CHECK(tg::wide_simd());
        tg::set_wide_simd(false);
        CHECK_FALSE(tg::wide_simd());
        tg::set_wide_simd(true);
        CHECK(tg::wide_simd());
    } else {
        CHECK_FALSE(tg::wide_simd_available());
    }
#else
    // No wide copy in this build: the switch changes nothing.
    CHECK_FALSE(tg::wide_simd_available());
    tg::set_wide_simd(true);
    CHECK_FALSE(tg::wide_simd());
#endif
}

TEST_CASE("wide SIMD copy: the same values and gradients as the baseline loops, bit for bit", "[simd]")
{
    // Sizes below the wide threshold, at it, around the widths (4, 8) and large; broadcast
    // with a row, a column (materialised) and a one-element operand.
    const std::vector<std::vector<std::size_t>> same_shapes = {{0}, {5}, {31}, {32}, {33}, {37}, {1000}, {3, 0, 4}};
    for (const auto& s : same_shapes) {
        check_all<float>(s, s);
        check_all<double>(s, s);
    }
    check_all<float>({40, 33}, {33});
    check_all<double>({40, 33}, {33});
    check_all<float>({40, 1}, {40, 33});
    check_all<double>({40, 33}, {40, 1});
    check_all<float>({40, 33}, {1});
    check_all<double>({1}, {40, 33});

    if (tg::wide_simd_available()) {
        // Every op above reached its wide loops (a key that did not match would leave the
        // baseline running and the comparison above trivially equal).
        for (const Case& c : cases()) {
            INFO(c.op);
            CHECK(tg::simd::found(c.op));
        }
    }
}

TEST_CASE("wide SIMD copy: softmax over the last axis agrees with the baseline to the rounding of its row sums",
          "[simd]")
{
    // A row's sum of exponentials is added in a different order at the two widths; for n
    // positive terms two orders differ by at most 2 (n - 1) eps of the sum, and y = e / sum
    // and the backward's y * (g - sum(g * y)) add a rounding each. The bound below is that,
    // relative to each value's magnitude (and to the row's largest for the backward, whose
    // differences can cancel).
    const auto wv_at = [](std::size_t i) { return 0.25f + float(i % 5) * 0.5f; };
    for (const std::size_t n : {8, 31, 32, 33, 64, 257}) {
        const auto run = [n, wv_at](bool wide) {
            tg::set_wide_simd(wide);
            tg::Var<float> x = parameter<float>({6, n}, 7);
            const tg::Var<float> y = tg::softmax(x, -1);
            xt::xarray<float> wv = xt::xarray<float>::from_shape({6, n});
            for (std::size_t i = 0; i < wv.size(); ++i) wv.data()[i] = wv_at(i);
            tg::Var<float> loss = tg::sum(y * tg::constant(wv));
            loss.backward();
            tg::set_wide_simd(true);
            return std::pair<xt::xarray<float>, xt::xarray<float>>(y.value(), x.grad());
        };
        const auto [yw, gw] = run(true);
        const auto [yb, gb] = run(false);
        const double eps = std::numeric_limits<float>::epsilon();
        const double bound = (2.0 * double(n) + 4.0) * eps;
        REQUIRE(yw.size() == yb.size());
        for (std::size_t i = 0; i < yw.size(); ++i) {
            const double a = yw.data()[i], b = yb.data()[i];
            if (std::isnan(a) || std::isnan(b)) {
                CHECK(std::isnan(a) == std::isnan(b));
                continue;
            }
            INFO("n " << n << " element " << i << ": " << a << " against " << b);
            CHECK(std::abs(a - b) <= bound * std::abs(b));
        }
        // grad_j = y_j (g_j - d) with d = sum(g * y): a change of the forward's y by `bound`
        // relative and of d by `bound` times sum(|g y|) moves grad_j by at most
        // bound (|y_j| (|g_j| + |d| + sum|g y|) + |grad_j|).
        for (std::size_t row = 0; row < 6; ++row) {
            double d = 0, dabs = 0;
            for (std::size_t j = 0; j < n; ++j) {
                const double g = wv_at(row * n + j), y = yb.data()[row * n + j];
                d += g * y;
                dabs += std::abs(g * y);
            }
            for (std::size_t j = 0; j < n; ++j) {
                const double a = gw.data()[row * n + j], b = gb.data()[row * n + j];
                if (std::isnan(a) || std::isnan(b)) {
                    CHECK(std::isnan(a) == std::isnan(b));
                    continue;
                }
                const double y = std::abs(yb.data()[row * n + j]), g = std::abs(wv_at(row * n + j));
                INFO("n " << n << " gradient " << row << ", " << j << ": " << a << " against " << b);
                CHECK(std::abs(a - b) <= 2 * bound * (y * (g + std::abs(d) + dabs) + std::abs(b)));
            }
        }
    }
    if (tg::wide_simd_available()) CHECK(tg::simd::found("softmax"));
}
