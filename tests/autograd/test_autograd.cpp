// Gradients as values: tg::grad, backward(create_graph), gradients of gradients, detach,
// the functional transforms, anomaly mode and graph export.

#include <cmath>
#include <thread>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using Catch::StartsWith;
using tg::Var;

namespace {

Var<double> p(xt::xarray<double> v)
{
    return tg::parameter(std::move(v));
}

constexpr tg::GradOptions kCreate{true, false, false};
constexpr tg::GradOptions kRetain{false, true, false};
constexpr tg::GradOptions kUnused{false, false, true};

// An op with a first-order kernel and no vjp rule.
struct KernelOnly {
    static constexpr const char* name = "kernel_only";
    void forward(tg::OpContext<double>& c) const { xt::noalias(c.output()) = 2.0 * c.input(0); }
    void backward(tg::OpContext<double>& c) const { c.add_grad(0, 2.0 * c.grad_out()); }
};

// y = x^3 whose rule can compute 3 x^2 from a detached x: first-order values are right,
// but the recorded gradient then no longer depends on x.
struct DetachedCube {
    static constexpr const char* name = "detached_cube";
    bool detached = true;
    void forward(tg::OpContext<double>& c) const { xt::noalias(c.output()) = c.input(0) * c.input(0) * c.input(0); }
    void vjp(tg::VjpContext<double>& v) const
    {
        const Var<double> x = detached ? tg::detach(v.input(0)) : v.input(0);
        v.add_grad(0, v.grad_out() * 3.0 * x * x);
    }
};

}  // namespace

TEST_CASE("grad returns d(output)/d(input) and leaves the leaves' grad() untouched", "[autograd][grad]")
{
    Var<double> w = p({1.0, 2.0, 3.0});
    Var<double> b = p({0.5});
    w.backward(xt::xarray<double>{7.0, 7.0, 7.0});  // an earlier gradient that must survive
    Var<double> loss = tg::sum(w * w * b);
    const auto g = tg::grad<double>({loss}, {w});
    REQUIRE(g.size() == 1);
    CHECK(g[0].value() == xt::xarray<double>{1.0, 2.0, 3.0});  // 2 w b
    CHECK_FALSE(g[0].requires_grad());
    CHECK(w.grad() == xt::xarray<double>{7.0, 7.0, 7.0});
    CHECK_FALSE(b.has_grad());
}

TEST_CASE("grad takes intermediate Vars, several outputs and explicit grad_outputs", "[autograd][grad]")
{
    Var<double> x = p({1.0, -2.0});
    Var<double> h = tg::exp(x);
    Var<double> y1 = tg::sum(h * 2.0);
    Var<double> y2 = h * 3.0;
    const auto g = tg::grad<double>(
        {y1, y2}, {h, x}, {tg::constant(xt::xarray<double>(1.0)), tg::constant(xt::xarray<double>{1.0, 10.0})});
    CHECK(g[0].value() == xt::xarray<double>{5.0, 32.0});  // 2 + 3 u
    const xt::xarray<double> ex = xt::exp(xt::xarray<double>{1.0, -2.0});
    CHECK(xt::allclose(g[1].value(), xt::xarray<double>{5.0, 32.0} * ex));
}

TEST_CASE("grad reports unused inputs unless allow_unused, then gives zeros", "[autograd][grad]")
{
    Var<double> x = p({1.0, 2.0});
    Var<double> unused = p({{1.0, 2.0}, {3.0, 4.0}});
    Var<double> y = tg::sum(x * x);
    CHECK_THROWS_WITH((tg::grad<double>({y}, {x, unused}, {}, kRetain)),
                      StartsWith("grad") && Contains("input 1 (shape [2, 2]) is not used"));
    const auto g = tg::grad<double>({y}, {x, unused}, {}, kUnused);
    CHECK(g[0].value() == xt::xarray<double>{2.0, 4.0});
    CHECK(g[1].value() == xt::zeros<double>({2, 2}));
}

TEST_CASE("grad rejects bad calls with messages that start with grad", "[autograd][grad][errors]")
{
    Var<double> x = p({1.0, 2.0});
    Var<double> c = tg::constant(xt::xarray<double>{1.0, 2.0});
    Var<double> y = x * 2.0;
    CHECK_THROWS_WITH((tg::grad<double>({y}, {x})), StartsWith("grad: output 0 has shape [2]"));
    CHECK_THROWS_WITH((tg::grad<double>({}, {x})), StartsWith("grad: no outputs"));
    CHECK_THROWS_WITH((tg::grad<double>({tg::sum(y)}, {})), StartsWith("grad: no inputs"));
    CHECK_THROWS_WITH((tg::grad<double>({tg::sum(y)}, {c})), StartsWith("grad: input 0 does not require grad"));
    CHECK_THROWS_WITH((tg::grad<double>({tg::sum(c)}, {x})), StartsWith("grad: output 0 does not require grad"));
    CHECK_THROWS_WITH((tg::grad<double>({y}, {x}, {tg::constant(xt::xarray<double>{1.0})})),
                      StartsWith("grad: grad_outputs[0] has shape [1] but output 0 has shape [2]"));
    CHECK_THROWS_WITH(
        (tg::grad<double>({y}, {x},
                          {tg::constant(xt::xarray<double>{1.0, 1.0}), tg::constant(xt::xarray<double>{1.0})})),
        StartsWith("grad: 2 grad_outputs for 1 outputs"));
    CHECK_THROWS_WITH((tg::grad<double>({Var<double>()}, {x})), StartsWith("grad: the Var is undefined"));
    // A spent pass and a stale Var keep their errors.
    Var<double> loss = tg::sum(x * x);
    tg::grad<double>({loss}, {x});
    CHECK_THROWS_WITH((tg::grad<double>({loss}, {x})), StartsWith("grad: this graph was already backpropagated"));
    Var<double> next = tg::sum(x);  // y above was never backpropagated: the pass goes on
    CHECK_THROWS_WITH((tg::grad<double>({loss}, {x})), StartsWith("grad: this graph was already backpropagated"));
    tg::end_pass<double>();
    Var<double> later = tg::sum(x);  // a new pass: loss is stale now
    CHECK_THROWS_WITH((tg::grad<double>({loss}, {x})), StartsWith("grad: this Var is stale"));
}

TEST_CASE("grad with create_graph gives gradients that can be differentiated again", "[autograd][create_graph]")
{
    // f = x^3: f' = 3x^2, f'' = 6x, f''' = 6.
    Var<double> x = p({2.0, -1.0});
    Var<double> y = tg::sum(x * x * x);
    Var<double> d1 = tg::grad<double>({y}, {x}, {}, kCreate)[0];
    CHECK(d1.requires_grad());
    CHECK(d1.value() == xt::xarray<double>{12.0, 3.0});
    Var<double> d2 = tg::grad<double>({tg::sum(d1)}, {x}, {}, kCreate)[0];
    CHECK(xt::allclose(d2.value(), xt::xarray<double>{12.0, -6.0}));
    Var<double> d3 = tg::grad<double>({tg::sum(d2)}, {x}, {}, kCreate)[0];
    CHECK(xt::allclose(d3.value(), xt::xarray<double>{6.0, 6.0}));
}

TEST_CASE("backward(create_graph) records the leaves' gradients for a gradient penalty", "[autograd][create_graph]")
{
    // loss = sum(w x), so d loss / d w = x and d loss / d x = w; penalty = sum((d/dx)^2) = sum(w^2),
    // whose gradient with respect to w is 2 w.
    Var<double> w = p({1.0, -2.0, 0.5});
    Var<double> x = p({3.0, 4.0, 5.0});
    Var<double> loss = tg::sum(w * x);
    loss.backward(tg::create_graph);
    CHECK(x.grad() == w.value());
    Var<double> gx = x.grad_var();
    CHECK(gx.requires_grad());
    w.zero_grad();
    x.zero_grad();
    tg::sum(gx * gx).backward();
    CHECK(w.grad() == xt::xarray<double>{2.0, -4.0, 1.0});
    // A first-order gradient's grad_var() is a constant.
    w.zero_grad();
    tg::sum(w * 2.0).backward();
    CHECK_FALSE(w.grad_var().requires_grad());
    const xt::xarray<double> first_order = w.grad_var().value();
    CHECK(first_order == xt::xarray<double>{2.0, 2.0, 2.0});
    CHECK_THROWS_WITH(tg::constant(xt::xarray<double>{1.0}).grad_var(), StartsWith("grad: this Var is a constant"));
}

TEST_CASE("backward(create_graph) accumulates onto an existing gradient as PyTorch does", "[autograd][create_graph]")
{
    Var<double> w = p({1.0, 2.0});
    tg::sum(w * 3.0).backward();
    tg::sum(w * w).backward(tg::create_graph);
    CHECK(w.grad() == xt::xarray<double>{5.0, 7.0});
    Var<double> g = w.grad_var();
    const auto h = tg::grad<double>({tg::sum(g)}, {w});
    CHECK(h[0].value() == xt::xarray<double>{2.0, 2.0});
}

TEST_CASE("detach keeps the value and cuts the history", "[autograd][detach]")
{
    Var<double> x = p({1.0, 2.0});
    Var<double> y = x * x;
    Var<double> d = tg::detach(y);
    CHECK(d.value() == y.value());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    const auto g = tg::grad<double>({tg::sum(y * d)}, {x});  // d is a constant: d(y d)/dx = 2 x d
    CHECK(g[0].value() == xt::xarray<double>{2.0, 16.0});
}

TEST_CASE("an op without a vjp rule is refused under create_graph, naming the op", "[autograd][create_graph][errors]")
{
    Var<double> x = p({1.0, 2.0});
    Var<double> y = tg::sum(tg::record(KernelOnly{}, x));
    CHECK(tg::grad<double>({y}, {x}, {}, kRetain)[0].value() == xt::xarray<double>{2.0, 2.0});
    CHECK_THROWS_WITH((tg::grad<double>({y}, {x}, {}, kCreate)),
                      Contains("op 'kernel_only' has no vjp rule") && Contains("create_graph"));
}

TEST_CASE("gradgradcheck finds a vjp rule that is right to first order only", "[autograd][gradgradcheck]")
{
    // With the detached rule the derivative of the recorded gradient (6 x) comes out 0.
    auto f = [](bool detached) {
        return [detached](const std::vector<Var<double>>& v) {
            DetachedCube op;
            op.detached = detached;
            return tg::record(op, v[0]);
        };
    };
    const std::vector<xt::xarray<double>> in{xt::xarray<double>{0.5, -1.5, 2.0}};
    CHECK(tg::gradcheck(f(true), in).ok);
    const tg::GradcheckResult bad = tg::gradgradcheck(f(true), in);
    INFO(bad.message);
    CHECK_FALSE(bad.ok);
    CHECK(bad.message.rfind("gradgradcheck: ", 0) == 0);
    CHECK(bad.input == 0);
    const tg::GradcheckResult good = tg::gradgradcheck(f(false), in);
    INFO(good.message);
    CHECK(good.ok);
}

TEST_CASE("jacobian, hessian, hvp, vjp and jvp agree with closed forms", "[autograd][functional]")
{
    const xt::xarray<double> x{0.3, -1.2, 2.0};
    // f(x) = x * exp(x): J = diag((1 + x) e^x); sum f has H = diag((2 + x) e^x).
    auto f = [](const Var<double>& v) { return v * tg::exp(v); };
    auto s = [](const Var<double>& v) { return tg::sum(v * tg::exp(v)); };
    const xt::xarray<double> ex = xt::exp(x);
    const xt::xarray<double> d1 = (1.0 + x) * ex, d2 = (2.0 + x) * ex;
    const xt::xarray<double> J = tg::jacobian(f, x);
    REQUIRE(J.shape() == std::vector<std::size_t>{3, 3});
    const xt::xarray<double> H = tg::hessian(s, x);
    REQUIRE(H.shape() == std::vector<std::size_t>{3, 3});
    for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
            CHECK(J(i, j) == Approx(i == j ? d1(i) : 0.0).margin(1e-15));
            CHECK(H(i, j) == Approx(i == j ? d2(i) : 0.0).margin(1e-15));
        }
    }
    const xt::xarray<double> v{1.0, 2.0, -1.0};
    CHECK(xt::allclose(tg::hvp(s, x, v), d2 * v));
    CHECK(xt::allclose(tg::vjp(f, x, v), d1 * v));
    CHECK(xt::allclose(tg::jvp(f, x, v), d1 * v));
    // A non-diagonal case: f(x) = softmax(x) has J = diag(p) - p p^T.
    const xt::xarray<double> Js = tg::jacobian([](const Var<double>& u) { return tg::softmax(u, 0); }, x);
    const xt::xarray<double> e = xt::exp(x);
    const xt::xarray<double> pr = e / xt::sum(e)();
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) CHECK(Js(i, j) == Approx((i == j ? pr(i) : 0.0) - pr(i) * pr(j)));
    // Functions that do not depend on x give zeros.
    const xt::xarray<double> flat = tg::hessian([](const Var<double>& u) { return tg::sum(u * 2.0); }, x);
    CHECK(flat == xt::zeros<double>({3, 3}));
    const xt::xarray<double> none = tg::jvp(
        [](const Var<double>&) {
            return tg::constant(xt::xarray<double>{1.0, 2.0});
        },
        x, v);
    CHECK(none == xt::zeros<double>({2}));
}

TEST_CASE("the functional transforms check shapes and leave the caller's pass as it was", "[autograd][functional]")
{
    const xt::xarray<double> x{1.0, 2.0};
    auto s = [](const Var<double>& v) { return tg::sum(v * v); };
    CHECK_THROWS_WITH(tg::hvp(s, x, xt::xarray<double>{1.0}), StartsWith("hvp: v has shape [1] but x has shape [2]"));
    CHECK_THROWS_WITH(tg::jvp(s, x, xt::xarray<double>{1.0}), StartsWith("jvp: v has shape [1]"));
    CHECK_THROWS_WITH(tg::vjp(s, x, xt::xarray<double>{1.0, 1.0}), StartsWith("vjp: u has shape [2]"));
    CHECK_THROWS_WITH(tg::hessian([](const Var<double>& v) { return v * 2.0; }, x),
                      StartsWith("hessian: f must return one element"));
    // In the middle of a pass: the pass's Vars stay usable and the tape does not grow.
    Var<double> w = p({1.0, 3.0});
    Var<double> loss = tg::sum(w * w);
    const std::size_t before = tg::tape_size<double>();
    tg::hessian(s, x);
    CHECK(tg::tape_size<double>() == before);
    loss.backward();
    CHECK(w.grad() == xt::xarray<double>{2.0, 6.0});
}

TEST_CASE("float32 second derivatives work too", "[autograd][float32]")
{
    const xt::xarray<float> x{0.5f, -0.25f};
    const xt::xarray<float> h =
        tg::hvp([](const Var<float>& v) { return tg::sum(tg::tanh(v)); }, x, xt::xarray<float>{1.0f, 1.0f});
    const xt::xarray<float> t = xt::tanh(x);
    CHECK(xt::allclose(h, -2.0f * t * (1.0f - t * t), 1e-5, 1e-6));
}

TEST_CASE("anomaly mode names the op, the pass position and the producers of a NaN", "[autograd][anomaly]")
{
    Var<double> x = p({1.0, -1.0});
    {
        tg::DetectAnomalyGuard guard;
        CHECK(tg::is_anomaly_enabled());
        Var<double> h = x * 2.0;
        try {
            tg::sqrt(h);
            FAIL("no anomaly reported");
        } catch (const tg::Error& e) {
            const std::string m = e.what();
            CHECK_THAT(m, StartsWith("sqrt: anomaly detected: the forward produced NaN in its output (shape [2], "
                                     "flat element 1)"));
            CHECK_THAT(m, Contains("op 1 of the pass") && Contains("input 0 came from mul (op 0)"));
            CHECK_THAT(m, Contains("recorded at:"));
        }
    }
    CHECK_FALSE(tg::is_anomaly_enabled());
    // Backward: log at 0 gives an infinite gradient.
    Var<double> z = p({0.0, 1.0});
    Var<double> loss = tg::sum(tg::log(z * 1.0));
    tg::DetectAnomalyGuard guard;
    CHECK_THROWS_WITH(loss.backward(),
                      StartsWith("log: anomaly detected: the backward produced +Inf in the gradient of input 0") &&
                          Contains("log([2]); input 0 came from mul"));
}

TEST_CASE("anomaly mode also checks recorded backwards and unrecorded ops", "[autograd][anomaly]")
{
    tg::DetectAnomalyGuard guard;
    CHECK_THROWS_WITH(tg::log(tg::constant(xt::xarray<double>{-1.0})),
                      StartsWith("log: anomaly detected: the forward produced NaN") && Contains("not recorded"));
    // sqrt at 0 is finite, its recorded gradient grad_out / (2 y) is not.
    Var<double> z = p({0.0});
    Var<double> y = tg::sum(tg::sqrt(z * 1.0));
    CHECK_THROWS_WITH(tg::grad<double>({y}, {z}, {}, kCreate),
                      StartsWith("div: anomaly detected: the forward produced +Inf") &&
                          Contains("while computing the gradient of sqrt (its vjp rule)"));
}

TEST_CASE("to_dot draws the ops, leaves and parameter names behind a Var", "[autograd][dot]")
{
    Var<double> w = p({{1.0, 2.0}});
    Var<double> x = tg::constant(xt::xarray<double>(xt::ones<double>({1, 1}) * 3.0));
    Var<double> unrelated = tg::exp(w);
    Var<double> loss = tg::sum(tg::sigmoid(tg::matmul(x, w)));
    const std::string dot = tg::to_dot(loss, {{"layer.weight", w}});
    CHECK_THAT(dot, StartsWith("digraph tapegrad {"));
    CHECK_THAT(dot, Contains("matmul\\n[1, 2]") && Contains("sigmoid\\n[1, 2]") && Contains("sum\\n[]"));
    CHECK_THAT(dot, Contains("layer.weight\\n[1, 2]") && Contains("fillcolor"));
    CHECK_THAT(dot, Contains("[1, 1]"));  // the constant input
    CHECK(dot.find("exp") == std::string::npos);
    CHECK(dot.find("->") != std::string::npos);
    CHECK_THAT(tg::to_dot(w), Contains("ellipse"));
    CHECK_THROWS_WITH(tg::to_dot(Var<double>()), StartsWith("to_dot: the Var is undefined"));
}

TEST_CASE("gradcheck checks a function that itself calls tg::grad", "[autograd][gradcheck]")
{
    // penalty(w) = sum((d/dx sum(tanh(w x)))^2) = sum((w (1 - tanh(w x)^2))^2), a function of w
    // through a gradient.
    auto penalty = [](const std::vector<Var<double>>& v) {
        Var<double> x = tg::parameter(xt::xarray<double>{0.3, -0.7, 1.1});
        Var<double> gx = tg::grad({tg::sum(tg::tanh(v[0] * x))}, {x}, {}, {true})[0];
        return tg::sum(gx * gx);
    };
    const tg::GradcheckResult r = tg::gradcheck(penalty, {xt::xarray<double>{0.5, -1.5, 2.0}});
    INFO(r.message);
    CHECK(r.ok);
    CHECK(r.max_abs_error > 0);
}

TEST_CASE("grad deduces float or double from braced lists", "[autograd][grad]")
{
    Var<float> xf = tg::parameter(xt::xarray<float>{1.0f, 2.0f});
    CHECK(tg::grad({tg::sum(xf * xf)}, {xf})[0].value() == xt::xarray<float>{2.0f, 4.0f});
    Var<double> xd = tg::parameter(xt::xarray<double>{3.0});
    CHECK(tg::grad({tg::sum(xd * xd)}, {xd}, {}, {true})[0].requires_grad());
}

TEST_CASE("end_pass ends a retained pass and reuses its entries", "[autograd][pass]")
{
    Var<double> w = p({1.0, 2.0});
    Var<double> g;
    for (int i = 0; i < 3; ++i) {
        Var<double> loss = tg::sum(w * w * w);
        g = tg::grad({loss}, {w}, {}, {true})[0];
        tg::grad({tg::sum(g)}, {w}, {}, {false, true});
        tg::end_pass<double>();
    }
    const std::size_t capacity = tg::tape_capacity<double>();
    Var<double> next = w * 2.0;
    CHECK(tg::tape_size<double>() == 1);
    CHECK(tg::tape_capacity<double>() == capacity);
    CHECK_THROWS_WITH(g.value(), Contains("stale"));
}
