// Numerics at the edges: logits of +-1000 give finite values and the limiting gradients;
// NaN in gives NaN out.

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

using tg::Var;

namespace {
bool all_finite(const xt::xarray<double>& a)
{
    return std::all_of(a.begin(), a.end(), [](double v) { return std::isfinite(v); });
}
}  // namespace

TEMPLATE_TEST_CASE("sigmoid at +-1000 is 0 and 1 with zero gradient", "[numerics]", float, double)
{
    Var<TestType> x = tg::parameter(xt::xarray<TestType>{-1000, 1000});
    Var<TestType> y = tg::sigmoid(x);
    CHECK(y.value()(0) == 0);
    CHECK(y.value()(1) == 1);
    tg::sum(y).backward();
    CHECK(x.grad()(0) == 0);
    CHECK(x.grad()(1) == 0);
}

TEMPLATE_TEST_CASE("log_softmax at +-1000 is finite with the limiting gradient", "[numerics]", float, double)
{
    Var<TestType> x = tg::parameter(xt::xarray<TestType>{{1000, -1000, 0}});
    Var<TestType> y = tg::log_softmax(x, 1);
    CHECK(y.value()(0, 0) == 0);
    CHECK(y.value()(0, 1) == -2000);
    CHECK(y.value()(0, 2) == -1000);
    // d/dx sum(w * log_softmax(x)) = w - softmax(x) * sum(w); softmax -> [1, 0, 0]
    y.backward(xt::xarray<TestType>{{1, 2, 3}});
    CHECK(x.grad()(0, 0) == Approx(1 - 6));
    CHECK(x.grad()(0, 1) == Approx(2));
    CHECK(x.grad()(0, 2) == Approx(3));
}

TEMPLATE_TEST_CASE("softmax at +-1000 is one-hot and finite", "[numerics]", float, double)
{
    Var<TestType> x = tg::parameter(xt::xarray<TestType>{{1000, -1000}, {-1000, 1000}});
    Var<TestType> y = tg::softmax(x, -1);
    CHECK(y.value() == xt::xarray<TestType>{{1, 0}, {0, 1}});
    y.backward(xt::xarray<TestType>{{1, 5}, {2, 7}});
    CHECK(xt::all(xt::equal(x.grad(), TestType(0))));
}

TEMPLATE_TEST_CASE("cross_entropy at +-1000 gives the exact loss and gradient", "[numerics]", float, double)
{
    Var<TestType> x = tg::parameter(xt::xarray<TestType>{{1000, -1000}, {1000, -1000}});
    Var<TestType> loss = tg::cross_entropy(x, xt::xarray<std::int64_t>{0, 1});
    // Row 0 is right with certainty (loss 0), row 1 wrong by 2000: mean 1000.
    CHECK(loss.item() == Approx(1000));
    loss.backward();
    // (softmax - onehot) / N = ([1, 0] - [1, 0]) / 2 and ([1, 0] - [0, 1]) / 2
    CHECK(x.grad() == xt::xarray<TestType>{{0, 0}, {0.5, -0.5}});
}

TEMPLATE_TEST_CASE("binary_cross_entropy_with_logits at +-1000 is finite with the limiting gradient", "[numerics]",
                   float, double)
{
    Var<TestType> x = tg::parameter(xt::xarray<TestType>{1000, -1000, 1000, -1000});
    Var<TestType> t = tg::constant(xt::xarray<TestType>{1, 0, 0, 1});
    Var<TestType> loss = tg::binary_cross_entropy_with_logits(x, t);
    CHECK(loss.item() == Approx(500));  // two certain-right (0) and two certain-wrong (1000)
    loss.backward();
    // (sigmoid(x) - t) / 4
    CHECK(x.grad() == xt::xarray<TestType>{0, 0, 0.25, -0.25});
}

TEST_CASE("NaN in means NaN out", "[numerics][nan]")
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    auto x = [&] { return tg::parameter(xt::xarray<double>{{nan, 1.0, 2.0}}); };
    auto t = tg::constant(xt::xarray<double>{{0.0, 1.0, 0.0}});
    CHECK(std::isnan(tg::sigmoid(x()).value()(0, 0)));
    CHECK(std::isnan(tg::tanh(x()).value()(0, 0)));
    CHECK(std::isnan(tg::relu(x()).value()(0, 0)));
    CHECK(std::isnan(tg::exp(x()).value()(0, 0)));
    CHECK(std::isnan(tg::sum(x()).item()));
    CHECK(std::isnan(tg::mean(x(), 1).value()(0)));
    CHECK(std::isnan(tg::mse_loss(x(), t).item()));
    CHECK(std::isnan(tg::cross_entropy(x(), xt::xarray<std::int64_t>{1}).item()));
    CHECK(std::isnan(tg::binary_cross_entropy_with_logits(x(), t).item()));
    const auto sm = tg::softmax(x(), 1).value();
    CHECK(std::all_of(sm.begin(), sm.end(), [](double v) { return std::isnan(v); }));
    const auto ls = tg::log_softmax(x(), 1).value();
    CHECK(std::all_of(ls.begin(), ls.end(), [](double v) { return std::isnan(v); }));
    Var<double> w = x();
    tg::sum(w * w).backward();
    CHECK(std::isnan(w.grad()(0, 0)));
    CHECK(all_finite(xt::view(w.grad(), 0, xt::range(1, 3))));
}

TEMPLATE_TEST_CASE("kit gemm agrees with a plain double loop for every transpose, leading dimension and beta",
                   "[numerics][gemm]", float, double)
{
    // Large enough to leave the plain-loop path and reach the library gemm (oneDNN's for
    // float when the build has it, OpenBLAS's otherwise), with padded leading dimensions.
    using T = TestType;
    const std::size_t m = 37, n = 29, k = 53, pad = 3;
    REQUIRE(m * n * k > tg::blas::small_gemm_limit);
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> dist(-1, 1);
    for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
            for (double beta : {0.0, 1.0, -0.5}) {
                const std::size_t a_rows = ta ? k : m, a_cols = ta ? m : k, lda = a_cols + pad;
                const std::size_t b_rows = tb ? n : k, b_cols = tb ? k : n, ldb = b_cols + pad;
                const std::size_t ldc = n + pad;
                std::vector<T> a(a_rows * lda), b(b_rows * ldb), c(m * ldc);
                for (auto& v : a) v = static_cast<T>(dist(rng));
                for (auto& v : b) v = static_cast<T>(dist(rng));
                for (auto& v : c) v = beta == 0 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(dist(rng));
                std::vector<T> c0 = c;
                const double alpha = 0.75;
                tg::blas::gemm(ta, tb, m, n, k, static_cast<T>(alpha), a.data(), lda, b.data(), ldb,
                               static_cast<T>(beta), c.data(), ldc);
                double worst = 0;
                for (std::size_t i = 0; i < m; ++i) {
                    for (std::size_t j = 0; j < n; ++j) {
                        double s = 0;
                        for (std::size_t p = 0; p < k; ++p) {
                            const double av = ta ? a[p * lda + i] : a[i * lda + p];
                            const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                            s += av * bv;
                        }
                        double want = alpha * s;
                        if (beta != 0) want += beta * static_cast<double>(c0[i * ldc + j]);
                        worst = std::max(worst, std::abs(static_cast<double>(c[i * ldc + j]) - want));
                    }
                    for (std::size_t j = n; j < ldc; ++j) {  // the padding is not written
                        const T before = c0[i * ldc + j], after = c[i * ldc + j];
                        CHECK((before == after || (std::isnan(before) && std::isnan(after))));
                    }
                }
                INFO("trans_a " << ta << " trans_b " << tb << " beta " << beta);
                CHECK(worst < (std::is_same<T, float>::value ? 1e-4 : 1e-12));
            }
        }
    }
}
