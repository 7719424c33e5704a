// The sequence-model ops beyond what the generic checks see: attention's dropout and its
// generator, queries that may attend to nothing, cells unrolled over several steps,
// cross_entropy with every label ignored, and Linear on inputs of any rank.

#include <cmath>
#include <tuple>

#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using tg::Var;

namespace {

xt::xarray<double> uniform(std::mt19937_64& rng, std::vector<std::size_t> shape)
{
    std::uniform_real_distribution<double> d(-1.0, 1.0);
    xt::xarray<double> a = xt::xarray<double>::from_shape(shape);
    for (auto& v : a) v = d(rng);
    return a;
}

bool same(const xt::xarray<double>& a, const xt::xarray<double>& b)
{
    return a == b;
}

void check(const tg::GradcheckResult& r)
{
    INFO(r.message);
    CHECK(r.ok);
}

bool all_finite(const xt::xarray<double>& a)
{
    for (double v : a) {
        if (!std::isfinite(v)) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("attention dropout follows its generator: same seed, same result", "[ops][attention]")
{
    const std::uint64_t seed = 20240611;
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    const Var<double> q = tg::constant(uniform(rng, {2, 5, 4})), k = tg::constant(uniform(rng, {2, 6, 4})),
                      v = tg::constant(uniform(rng, {2, 6, 3}));
    auto run = [&](tg::Generator* g, double p) {
        tg::AttentionOptions o;
        o.dropout_p = p;
        o.generator = g;
        return xt::xarray<double>(tg::scaled_dot_product_attention(q, k, v, o).value());
    };
    tg::Generator a(1), b(1), c(2);
    const xt::xarray<double> ya = run(&a, 0.4), yb = run(&b, 0.4), yc = run(&c, 0.4);
    CHECK(same(ya, yb));
    CHECK(!same(ya, yc));
    CHECK(!same(run(&a, 0.4), ya));  // the generator moved on
    CHECK(same(run(&a, 0.0), run(nullptr, 0.0)));
    CHECK(xt::allclose(run(nullptr, 0.0), tg::scaled_dot_product_attention(q, k, v).value()));
    // No generator: the thread's default one, reseeded by tg::manual_seed.
    tg::manual_seed(77);
    const xt::xarray<double> d1 = run(nullptr, 0.4);
    tg::manual_seed(77);
    CHECK(same(run(nullptr, 0.4), d1));
    CHECK(!same(d1, run(nullptr, 0.4)));
}

TEST_CASE("attention: a query that may attend to no key gives 0 and zero gradients, never NaN", "[ops][attention]")
{
    const std::uint64_t seed = 99;
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    const xt::xarray<bool> mask{{true, true, false}, {false, false, false}, {false, true, true}};
    const Var<double> q = tg::parameter(uniform(rng, {2, 3, 4})), k = tg::parameter(uniform(rng, {2, 3, 4})),
                      v = tg::parameter(uniform(rng, {2, 3, 2}));
    for (const bool causal : {false, true}) {
        CAPTURE(causal);
        tg::AttentionOptions o;
        o.is_causal = causal;
        const Var<double> y = tg::scaled_dot_product_attention(q, k, v, mask, o);
        REQUIRE(all_finite(y.value()));
        for (std::size_t b = 0; b < 2; ++b) {
            for (std::size_t j = 0; j < 2; ++j) CHECK(y.value()(b, 1, j) == 0.0);
        }
        // First order, then second order through the rule.
        const auto g = tg::grad({tg::sum(y * y)}, {q, k, v}, {}, {true});
        for (const auto& gi : g) CHECK(all_finite(gi.value()));
        for (std::size_t b = 0; b < 2; ++b) {
            for (std::size_t e = 0; e < 4; ++e) CHECK(g[0].value()(b, 1, e) == 0.0);
        }
        const auto h = tg::grad({tg::sum(g[0] * g[0]) + tg::sum(g[1]) + tg::sum(g[2] * g[2])}, {q, k, v});
        for (const auto& hi : h) CHECK(all_finite(hi.value()));
        tg::end_pass<double>();
    }
    // Causal alone never leaves a query without a key; causality with a mask can.
    const xt::xarray<bool> first_key_hidden{false, true, true};
    tg::AttentionOptions causal;
    causal.is_causal = true;
    const Var<double> y = tg::scaled_dot_product_attention(q, k, v, first_key_hidden, causal);
    CHECK(y.value()(0, 0, 0) == 0.0);
    CHECK(y.value()(1, 0, 1) == 0.0);
    CHECK(all_finite(y.value()));
}

TEST_CASE("recurrent cells unrolled over several steps pass gradcheck and gradgradcheck", "[ops][rnn]")
{
    const std::uint64_t seed = 5;
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    const std::size_t n = 2, in = 3, hidden = 4, steps = 3;
    auto inputs = [&](std::size_t gates) {
        return std::vector<xt::xarray<double>>{uniform(rng, {steps, n, in}),
                                               uniform(rng, {n, hidden}),
                                               uniform(rng, {n, hidden}),
                                               uniform(rng, {gates * hidden, in}),
                                               uniform(rng, {gates * hidden, hidden}),
                                               uniform(rng, {gates * hidden})};
    };
    // h and c carried through the steps; the loss reads every step's h.
    auto lstm = [](const std::vector<Var<double>>& v) {
        Var<double> h = v[1], c = v[2], loss;
        const auto xs = tg::split(v[0], {1, 1, 1}, 0);
        for (const auto& x : xs) {
            std::tie(h, c) = tg::lstm_cell(tg::squeeze(x, 0), h, c, v[3], v[4], v[5], Var<double>());
            loss = loss.defined() ? loss + tg::sum(h * h) : tg::sum(h * h);
        }
        return loss + tg::sum(c);
    };
    auto gru = [](const std::vector<Var<double>>& v) {
        Var<double> h = v[1] + v[2], loss;
        for (const auto& x : tg::split(v[0], {1, 1, 1}, 0)) {
            h = tg::gru_cell(tg::squeeze(x, 0), h, v[3], v[4], Var<double>(), v[5]);
            loss = loss.defined() ? loss + tg::sum(h * h) : tg::sum(h * h);
        }
        return loss;
    };
    auto rnn = [](const std::vector<Var<double>>& v) {
        Var<double> h = v[1] * v[2], loss;
        for (const auto& x : tg::split(v[0], {1, 1, 1}, 0)) {
            h = tg::rnn_tanh_cell(tg::squeeze(x, 0), h, v[3], v[4], v[5], v[5]);
            loss = loss.defined() ? loss + tg::sum(h * h) : tg::sum(h * h);
        }
        return loss;
    };
    const auto li = inputs(4), gi = inputs(3), ri = inputs(1);
    check(tg::gradcheck(lstm, li));
    check(tg::gradgradcheck(lstm, li));
    check(tg::gradcheck(gru, gi));
    check(tg::gradgradcheck(gru, gi));
    check(tg::gradcheck(rnn, ri));
    check(tg::gradgradcheck(rnn, ri));
}

TEST_CASE("the recurrent layers' projected cells read their rows and refuse rows that are not there", "[ops][rnn]")
{
    // Rows 2..3 of a projection p give the step of x's rows 2..3: p = x w_ih^T + b_ih.
    std::mt19937_64 rng(9);
    const std::size_t hidden = 3;
    const Var<double> x = tg::constant(uniform(rng, {5, 2}));
    const Var<double> h = tg::constant(uniform(rng, {2, hidden}));
    const Var<double> c = tg::constant(uniform(rng, {2, hidden}));
    const Var<double> w_ih = tg::constant(uniform(rng, {4 * hidden, 2}));
    const Var<double> w_hh = tg::constant(uniform(rng, {4 * hidden, hidden}));
    const Var<double> b_ih = tg::constant(uniform(rng, {4 * hidden}));
    const Var<double> b_hh = tg::constant(uniform(rng, {4 * hidden}));
    const Var<double> p = tg::linear_t(x, w_ih, b_ih);
    const auto want = tg::lstm_cell(tg::narrow(x, 0, 2, 2), h, c, w_ih, w_hh, b_ih, b_hh);
    const auto got = tg::detail::lstm_cell_rows(p, 2, h, c, w_hh, b_hh);
    CHECK(xt::allclose(got.first.value(), want.first.value(), 1e-13, 1e-15));
    CHECK(xt::allclose(got.second.value(), want.second.value(), 1e-13, 1e-15));
    CHECK_THROWS_WITH(tg::detail::lstm_cell_rows(p, 4, h, c, w_hh, b_hh),
                      Contains("lstm_cell") && Contains("rows 4..6 present") && Contains("[5, 12]"));
    CHECK_THROWS_WITH(tg::detail::gru_cell_rows(p, 0, h, w_hh, b_hh),
                      Contains("gru_cell") && Contains("[rows, 9]") && Contains("[5, 12]"));
    const Var<double> p1 = tg::narrow(p, 1, 0, hidden);
    CHECK_THROWS_WITH(tg::detail::rnn_tanh_cell_rows(p1, 0, h, w_hh, b_hh),
                      Contains("rnn_tanh_cell: w_hh must be [3, 3]"));
    CHECK_THROWS_WITH(tg::detail::rnn_relu_cell_rows(p1, 0, h, tg::narrow(w_hh, 0, 0, hidden), b_ih),
                      Contains("rnn_relu_cell: b_hh must be [3]"));
}

TEST_CASE("cross_entropy with every label ignored: NaN mean with a zero gradient, as PyTorch", "[ops][loss]")
{
    const xt::xarray<std::int64_t> none_counted{-100, -100, -100};
    for (const double smoothing : {0.0, 0.2}) {  // the fused path and the composed one
        CAPTURE(smoothing);
        const Var<double> x = tg::parameter(xt::xarray<double>{{1, 2, 3}, {0, -1, 4}, {2, 2, 2}});
        const Var<double> loss = tg::cross_entropy(x, none_counted, tg::Reduction::mean, smoothing);
        CHECK(std::isnan(loss.item()));
        loss.backward();
        CHECK(same(x.grad(), xt::zeros<double>({3, 3})));
        CHECK(tg::cross_entropy(x, none_counted, tg::Reduction::sum, smoothing).item() == 0.0);
        CHECK(same(tg::cross_entropy(x, none_counted, tg::Reduction::none, smoothing).value(), xt::zeros<double>({3})));
    }
    // Ignoring a row is the same as leaving it out.
    const xt::xarray<double> logits{{1, 2, 3}, {0, -1, 4}, {2, 0.5, 2}};
    const Var<double> x = tg::parameter(logits);
    const double with = tg::cross_entropy(x, xt::xarray<std::int64_t>{2, 5, 0}, tg::Reduction::mean, 0.0, 5).item();
    const Var<double> two = tg::constant(xt::xarray<double>{{1, 2, 3}, {2, 0.5, 2}});
    CHECK(with == Approx(tg::cross_entropy(two, xt::xarray<std::int64_t>{2, 0}).item()).epsilon(1e-15));
}

TEST_CASE("Linear and linear take inputs with any leading dims, as torch.nn.Linear", "[nn][linear]")
{
    const std::uint64_t seed = 3;
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    tg::Generator gen(seed);
    tg::nn::Linear<double> layer(4, 3, true, gen);
    const xt::xarray<double> xv = uniform(rng, {2, 5, 4});
    const Var<double> x = tg::parameter(xv);
    const Var<double> y = layer(x);
    REQUIRE(y.shape() == std::vector<std::size_t>{2, 5, 3});
    const xt::xarray<double> yv = y.value();
    tg::sum(y * y).backward();
    const xt::xarray<double> grad_w = layer.weight().grad(), grad_x = x.grad();
    layer.zero_grad();
    // The same rows as one 2-D batch.
    const Var<double> x2 = tg::parameter(xt::xarray<double>(xt::reshape_view(xv, {10, 4})));
    const Var<double> y2 = layer(x2);
    CHECK(xt::allclose(xt::reshape_view(yv, {10, 3}), y2.value(), 1e-14, 0));
    tg::sum(y2 * y2).backward();
    CHECK(xt::allclose(layer.weight().grad(), grad_w, 1e-13, 1e-15));
    CHECK(xt::allclose(xt::reshape_view(grad_x, {10, 4}), x2.grad(), 1e-13, 1e-15));
    // One sample without a batch dim.
    const Var<double> one = layer(tg::constant(xt::xarray<double>(xt::view(xv, 0, 0, xt::all()))));
    CHECK(one.shape() == std::vector<std::size_t>{3});
    CHECK(xt::allclose(one.value(), xt::view(yv, 0, 0, xt::all()), 1e-14, 0));
    CHECK_THROWS_WITH(layer(tg::constant(xt::xarray<double>(xt::ones<double>({2, 5, 3})))),
                      Catch::Equals("Linear(4 -> 3): expected input [..., 4], got [2, 5, 3]"));
    // tg::linear itself, w [in, out].
    const Var<double> w = tg::parameter(uniform(rng, {4, 2})), b = tg::parameter(uniform(rng, {2}));
    const Var<double> z = tg::linear(x, w, b);
    CHECK(z.shape() == std::vector<std::size_t>{2, 5, 2});
    const Var<double> z2 = tg::linear(x2, w, b);
    CHECK(xt::allclose(xt::reshape_view(z.value(), {10, 2}), z2.value(), 1e-14, 0));
}
