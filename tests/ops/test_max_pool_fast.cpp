// The 2 x 2, stride 2, unpadded max pooling kernel (max_forward_2x2 in ops/pool/pooling.hpp)
// against a plain scan of each window in row-major order, the generic kernel's rule: the
// scan starts at -inf with the window's first position and takes an element when it is
// greater or NaN. So a tie goes to the first maximum, NaN to the last NaN, and an all -inf
// window to its first element. Values are compared bit for bit (NaN payloads and -0.0
// included), positions exactly, through the kernel and through tg::max_pool2d (values and
// both gradient paths: the fused backward and the vjp rule).

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

#include "../../ops/pool/pooling.hpp"

using tg::Var;

namespace {

template <class T> struct Pooled {
    std::vector<T> y;
    std::vector<std::int64_t> pos;
};

// The reference: every window of x [planes, H, W] scanned in row-major order.
template <class T> Pooled<T> scan(const std::vector<T>& x, std::size_t planes, std::size_t H, std::size_t W)
{
    const std::size_t OH = H / 2, OW = W / 2;
    Pooled<T> r;
    for (std::size_t p = 0; p < planes; ++p) {
        const T* plane = x.data() + p * H * W;
        for (std::size_t oh = 0; oh < OH; ++oh) {
            for (std::size_t ow = 0; ow < OW; ++ow) {
                T y = -std::numeric_limits<T>::infinity();
                auto pos = static_cast<std::int64_t>(2 * oh * W + 2 * ow);
                for (std::size_t h = 2 * oh; h < 2 * oh + 2; ++h) {
                    for (std::size_t w = 2 * ow; w < 2 * ow + 2; ++w) {
                        const T v = plane[h * W + w];
                        if (v > y || v != v) {
                            y = v;
                            pos = static_cast<std::int64_t>(h * W + w);
                        }
                    }
                }
                r.y.push_back(y);
                r.pos.push_back(pos);
            }
        }
    }
    return r;
}

template <class T> bool same_bits(const T* a, const T* b, std::size_t n)
{
    return n == 0 || std::memcmp(a, b, n * sizeof(T)) == 0;
}

// n values of one of four flavours: 0 small integers (ties in most windows), 1 small
// integers mixed with NaN (of either sign), +-inf and -0.0, 2 mostly -inf and
// NaN, 3 normal random numbers.
template <class T> std::vector<T> sample_values(std::mt19937_64& rng, std::size_t n, int flavour)
{
    const T inf = std::numeric_limits<T>::infinity();
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const T other_nan = -nan;  // another bit pattern
    std::uniform_int_distribution<int> small(-2, 2), pick(0, 15);
    std::normal_distribution<double> normal;
    std::vector<T> x(n);
    for (auto& v : x) {
        const int k = pick(rng);
        switch (flavour) {
        case 0:
            v = T(small(rng));
            break;
        case 1: {
            const T specials[] = {nan, other_nan, inf, -inf, T(-0.0), T(0)};
            v = k < 6 ? specials[k] : T(small(rng));
            break;
        }
        case 2:
            v = k < 10 ? -inf : k < 13 ? nan : k < 14 ? other_nan : T(small(rng));
            break;
        default:
            v = T(normal(rng));
            break;
        }
    }
    return x;
}

struct Case {
    std::size_t n, c, h, w;
};

// Edge shapes (odd sizes, one-window planes, rows of fewer, exactly and more than four
// outputs, an empty batch), then random ones.
std::vector<Case> shapes(std::mt19937_64& rng)
{
    std::vector<Case> out = {{1, 1, 2, 2},  {2, 3, 2, 2},   {1, 1, 3, 3},   {1, 2, 2, 5},
                             {1, 1, 5, 2},  {2, 2, 4, 6},   {1, 1, 8, 8},   {1, 1, 7, 9},
                             {1, 2, 9, 10}, {2, 3, 14, 14}, {3, 2, 28, 28}, {1, 1, 29, 31},
                             {1, 1, 2, 64}, {1, 1, 3, 17},  {0, 3, 4, 4},   {2, 0, 6, 6}};
    std::uniform_int_distribution<std::size_t> batch(1, 3), size(2, 33);
    for (int i = 0; i < 60; ++i) out.push_back({batch(rng), batch(rng), size(rng), size(rng)});
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("max pooling's 2x2 stride-2 kernel agrees bit for bit with a row-major scan of each window",
                   "[ops][max_pool2d]", float, double)
{
    using T = TestType;
    std::mt19937_64 rng(20240611);
    const T guard = T(12345);
    for (const Case& s : shapes(rng)) {
        for (int flavour = 0; flavour < 4; ++flavour) {
            INFO("x [" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << "], flavour " << flavour);
            const std::vector<std::size_t> shape{s.n, s.c, s.h, s.w};
            const tg::pool::Geometry g = tg::pool::window_geometry("max_pool2d", shape, false, {2, 2}, {2, 2}, {0, 0});
            REQUIRE(tg::pool::max_2x2(g));
            const std::size_t planes = s.n * s.c, n = planes * g.out_plane();
            const std::vector<T> x = sample_values<T>(rng, planes * s.h * s.w, flavour);
            const Pooled<T> want = scan(x, planes, s.h, s.w);
            REQUIRE(want.y.size() == n);

            // A guard element past each output: no block writes beyond its row's end.
            std::vector<T> y(n + 1, guard), y_only(n + 1, guard);
            std::vector<std::int64_t> pos(n + 1, -7);
            tg::pool::max_forward<true>(g, planes, x.data(), y.data(), pos.data());
            tg::pool::max_forward<false>(g, planes, x.data(), y_only.data(), nullptr);
            CHECK(same_bits(y.data(), want.y.data(), n));
            CHECK(same_bits(y_only.data(), want.y.data(), n));
            CHECK(std::vector<std::int64_t>(pos.begin(), pos.begin() + std::ptrdiff_t(n)) == want.pos);
            CHECK(same_bits(&y[n], &guard, 1));
            CHECK(same_bits(&y_only[n], &guard, 1));
            CHECK(pos[n] == -7);
        }
    }
}

TEMPLATE_TEST_CASE("max_pool2d 2x2 keeps the first maximum, the last NaN and an all -inf window's first element",
                   "[ops][max_pool2d]", float, double)
{
    using T = TestType;
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    // Eight windows side by side in a 2 x 17 input (its last column unused): each window is
    // a b / c d, the expected position of its maximum (0 a, 1 b, 2 c, 3 d) below it.
    const T windows[8][4] = {
        {1, 1, 1, 1},                    // all tied: a
        {0, 3, 3, 1},                    // b and c tied: b
        {2, 1, 3, 3},                    // c and d tied: c
        {nan, 1, nan, 2},                // two NaN: the last, c
        {-inf, -inf, -inf, -inf},        // a
        {-inf, nan, 5, 7},               // b
        {T(-0.0), T(0), T(0), T(-0.0)},  // zeros compare equal: a, -0.0
        {-1, -2, -3, -inf},              // a
    };
    const int at[8] = {0, 1, 2, 2, 0, 1, 0, 0};
    const std::size_t W = 17;
    xt::xarray<T> xv = xt::zeros<T>({std::size_t(1), std::size_t(1), std::size_t(2), W});
    xv(0, 0, 0, W - 1) = 100;  // in no window
    xv(0, 0, 1, W - 1) = nan;
    for (std::size_t k = 0; k < 8; ++k) {
        xv(0, 0, 0, 2 * k) = windows[k][0];
        xv(0, 0, 0, 2 * k + 1) = windows[k][1];
        xv(0, 0, 1, 2 * k) = windows[k][2];
        xv(0, 0, 1, 2 * k + 1) = windows[k][3];
    }
    Var<T> x = tg::parameter(xv);
    Var<T> y = tg::max_pool2d(x, {2, 2});
    REQUIRE(y.value().size() == 8);
    xt::xarray<T> g = xt::zeros<T>({std::size_t(1), std::size_t(1), std::size_t(1), std::size_t(8)});
    for (std::size_t k = 0; k < 8; ++k) g(0, 0, 0, k) = T(k + 1);
    const Var<T> gx = tg::grad({y}, {x}, {tg::constant(g)})[0];
    for (std::size_t k = 0; k < 8; ++k) {
        INFO("window " << k);
        const T want = windows[k][at[k]];
        CHECK(same_bits(&y.value()(0, 0, 0, k), &want, 1));
        for (int e = 0; e < 4; ++e) {
            const T got = gx.value()(0, 0, std::size_t(e / 2), 2 * k + std::size_t(e % 2));
            CHECK(got == (e == at[k] ? T(k + 1) : T(0)));
        }
    }
    CHECK(gx.value()(0, 0, 0, W - 1) == 0);
    CHECK(gx.value()(0, 0, 1, W - 1) == 0);
}

TEMPLATE_TEST_CASE("max_pool2d 2x2 values and gradients agree bit for bit with a row-major scan", "[ops][max_pool2d]",
                   float, double)
{
    using T = TestType;
    std::mt19937_64 rng(77);
    std::normal_distribution<double> normal;
    for (const Case& s : shapes(rng)) {
        for (int flavour = 0; flavour < 4; ++flavour) {
            INFO("x [" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << "], flavour " << flavour);
            const std::size_t planes = s.n * s.c, ip = s.h * s.w;
            const std::vector<T> values = sample_values<T>(rng, planes * ip, flavour);
            const Pooled<T> want = scan(values, planes, s.h, s.w);
            xt::xarray<T> xv = xt::zeros<T>({s.n, s.c, s.h, s.w});
            std::copy(values.begin(), values.end(), xv.begin());
            xt::xarray<T> gv = xt::zeros<T>({s.n, s.c, s.h / 2, s.w / 2});
            for (auto& v : gv) v = T(normal(rng));
            if (gv.size() > 0) gv.data()[0] = T(-0.0);  // 0 + -0.0 is +0.0 in the gradient

            // The gradient: g added at each saved position onto zeros.
            std::vector<T> want_gx(planes * ip, T(0));
            const std::size_t op = gv.size() / std::max<std::size_t>(planes, 1);
            for (std::size_t i = 0; i < gv.size(); ++i)
                want_gx[(i / op) * ip + std::size_t(want.pos[i])] += gv.data()[i];

            Var<T> x = tg::parameter(xv);
            Var<T> y = tg::max_pool2d(x, {2, 2}, {2, 2}, {0, 0});
            REQUIRE(y.value().size() == want.y.size());
            CHECK(same_bits(y.value().data(), want.y.data(), want.y.size()));
            const Var<T> fused = tg::grad({y}, {x}, {tg::constant(gv)}, {false, true})[0];
            const Var<T> rule = tg::grad({y}, {x}, {tg::constant(gv)}, {true})[0];
            REQUIRE(fused.value().size() == want_gx.size());
            REQUIRE(rule.value().size() == want_gx.size());
            CHECK(same_bits(fused.value().data(), want_gx.data(), want_gx.size()));
            CHECK(same_bits(rule.value().data(), want_gx.data(), want_gx.size()));
        }
    }
}

TEST_CASE("max pooling takes the 2x2 kernel only for 2x2 windows, stride 2, no padding", "[ops][max_pool2d]")
{
    using Pair = std::array<std::size_t, 2>;
    const std::vector<std::size_t> x{2, 3, 9, 8};
    auto fast = [&](Pair k, Pair s, Pair p) {
        return tg::pool::max_2x2(tg::pool::window_geometry("max_pool2d", x, false, k, s, p));
    };
    CHECK(fast({2, 2}, {2, 2}, {0, 0}));
    CHECK(fast({2, 2}, {0, 0}, {0, 0}));  // the default stride is the kernel
    CHECK_FALSE(fast({2, 2}, {1, 1}, {0, 0}));
    CHECK_FALSE(fast({2, 2}, {2, 1}, {0, 0}));
    CHECK_FALSE(fast({2, 2}, {2, 2}, {1, 1}));
    CHECK_FALSE(fast({2, 2}, {2, 2}, {0, 1}));
    CHECK_FALSE(fast({3, 3}, {2, 2}, {0, 0}));
    CHECK_FALSE(fast({2, 3}, {2, 2}, {0, 0}));
    CHECK_FALSE(fast({2, 2}, {3, 3}, {0, 0}));
    CHECK_FALSE(tg::pool::max_2x2(
        tg::pool::window_geometry("max_pool1d", std::vector<std::size_t>{2, 3, 8}, true, {1, 2}, {1, 2}, {0, 0})));
    CHECK_FALSE(tg::pool::max_2x2(tg::pool::adaptive_geometry("adaptive_avg_pool2d", x, {4, 4})));
    // A 1 x 1 input has no 2 x 2 window: refused before any kernel runs.
    CHECK_THROWS_AS(tg::max_pool2d(tg::parameter(xt::xarray<float>(xt::ones<float>({1, 1, 1, 1}))), {2, 2}), tg::Error);
}
