// Gradient-ready hooks (tg::register_post_accumulate_grad_hook): when they run, what they
// see, and the registry's bookkeeping.

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using tg::Var;

namespace {

Var<double> p(xt::xarray<double> v)
{
    return tg::parameter(std::move(v));
}

// A three-layer chain, x -> w1 -> w2 -> w3 -> loss, whose hooks log their order and what
// each parameter's gradient was at that moment.
struct Chain {
    Var<double> w1 = p({0.5, -0.3}), w2 = p({1.5, 0.7}), w3 = p({-0.8, 1.1});
    Var<double> x = tg::constant(xt::xarray<double>{0.9, -1.2});
    Var<double> loss() const { return tg::sum(tg::tanh(tg::tanh(tg::tanh(x * w1) * w2) * w3)); }
    std::vector<Var<double>> params() const { return {w1, w2, w3}; }
};

}  // namespace

TEST_CASE("hooks run once per backward, in the order backward completes the gradients", "[hooks]")
{
    Chain c;
    std::vector<std::string> log;
    std::vector<bool> w1_done_when_w3_hooked;
    std::vector<tg::HookHandle> handles;
    const char* names[] = {"w1", "w2", "w3"};
    for (int k = 0; k < 3; ++k) {
        handles.push_back(
            tg::register_post_accumulate_grad_hook<double>(c.params()[k], [&, k](const Var<double>& param) {
                log.push_back(names[k]);
                CHECK(param.raw_node() == c.params()[k].raw_node());
                CHECK(param.has_grad());
                if (k == 2) w1_done_when_w3_hooked.push_back(c.w1.has_grad());
            }));
    }
    c.loss().backward();
    CHECK(log == std::vector<std::string>{"w3", "w2", "w1"});
    // w3's hook ran before the backward reached w1: the rest of the backward was still to come.
    REQUIRE(w1_done_when_w3_hooked.size() == 1);
    CHECK_FALSE(w1_done_when_w3_hooked[0]);

    // A second backward runs them again (gradients accumulate; hooks see the totals).
    c.loss().backward();
    CHECK(log.size() == 6);
    for (auto& h : handles) CHECK(h.active());
    CHECK(tg::num_post_accumulate_grad_hooks(c.w1) == 1);
}

TEST_CASE("a hook sees the parameter's complete gradient, even for a parameter used twice", "[hooks]")
{
    // w is used at the start and at the end of the pass: its gradient is complete only after
    // the earlier use's backward.
    Var<double> w = p({0.4, -0.6});
    Var<double> v = p({1.2, 0.3});
    xt::xarray<double> seen_w, seen_v;
    std::vector<std::string> order;
    tg::register_post_accumulate_grad_hook<double>(w, [&](const Var<double>& param) {
        seen_w = param.grad();
        order.push_back("w");
    });
    tg::register_post_accumulate_grad_hook<double>(v, [&](const Var<double>& param) {
        seen_v = param.grad();
        order.push_back("v");
    });
    Var<double> h = tg::tanh(w * 2.0);
    Var<double> loss = tg::sum(tg::sin(h * v) * w);
    loss.backward();
    CHECK(order == std::vector<std::string>{"v", "w"});
    CHECK((seen_w == w.grad()));
    CHECK((seen_v == v.grad()));
    // The gradient it saw is the full one: compare with tg::grad, which runs no hook.
    Var<double> h2 = tg::tanh(w * 2.0);
    auto g = tg::grad({tg::sum(tg::sin(h2 * v) * w)}, {w, v});
    CHECK(xt::allclose(seen_w, g[0].value(), 1e-15, 0));
    CHECK(xt::allclose(seen_v, g[1].value(), 1e-15, 0));
    CHECK(order.size() == 2);  // tg::grad ran none
}

TEST_CASE("hooks run only for parameters the backward reaches, and not for tg::grad", "[hooks]")
{
    Var<double> a = p({1.0}), b = p({2.0});
    int ran_a = 0, ran_b = 0;
    tg::register_post_accumulate_grad_hook<double>(a, [&](const Var<double>&) { ++ran_a; });
    tg::register_post_accumulate_grad_hook<double>(b, [&](const Var<double>&) { ++ran_b; });
    Var<double> yb = tg::sum(b * 3.0);
    Var<double> ya = tg::sum(a * 3.0);
    ya.backward();  // b's ops come earlier in the same pass, but the backward does not reach them
    CHECK(ran_a == 1);
    CHECK(ran_b == 0);

    tg::grad({tg::sum(a * b)}, {a, b});
    CHECK(ran_a == 1);
    CHECK(ran_b == 0);

    // A parameter that is itself the output.
    a.backward();
    CHECK(ran_a == 2);
}

TEST_CASE("hooks run after backward(create_graph), with the recorded gradient in place", "[hooks][create_graph]")
{
    Var<double> w = p({0.3, -0.2});
    bool recorded = false;
    tg::register_post_accumulate_grad_hook<double>(w, [&](const Var<double>& param) {
        recorded = !param.grad_var().is_leaf();  // the gradient is a value of the pass
    });
    tg::sum(tg::exp(w) * w).backward(tg::create_graph);
    CHECK(recorded);
    // The penalty on the gradient can still be backpropagated.
    Var<double> penalty = tg::sum(w.grad_var() * w.grad_var());
    w.zero_grad();
    penalty.backward();
    CHECK(w.has_grad());
}

TEST_CASE("a hook may change the gradient, records nothing, and an exception from it ends the backward", "[hooks]")
{
    Chain c;
    bool grad_mode_in_hook = true;
    tg::HookHandle clip = tg::register_post_accumulate_grad_hook<double>(c.w3, [&](const Var<double>& param) {
        grad_mode_in_hook = tg::is_grad_enabled();
        xt::noalias(param.raw_node()->grad) = xt::clip(param.grad(), -0.01, 0.01);
    });
    c.loss().backward();
    CHECK_FALSE(grad_mode_in_hook);
    const double largest = xt::amax(xt::abs(c.w3.grad()))();
    CHECK(largest <= 0.01);
    CHECK(tg::is_grad_enabled());
    clip.remove();

    tg::HookHandle bad = tg::register_post_accumulate_grad_hook<double>(
        c.w2, [](const Var<double>&) { throw tg::Error("hook failed on purpose"); });
    for (const auto& q : c.params()) q.zero_grad();
    CHECK_THROWS_WITH(c.loss().backward(), Contains("hook failed on purpose"));
    bad.remove();
    // The engine is left usable: the next pass backpropagates normally.
    for (const auto& q : c.params()) q.zero_grad();
    c.loss().backward();
    CHECK(c.w1.has_grad());
}

TEST_CASE("remove() unregisters a hook, and a parameter's end releases its hooks", "[hooks]")
{
    Var<double> w = p({1.0, 2.0});
    int ran = 0;
    tg::HookHandle h = tg::register_post_accumulate_grad_hook<double>(w, [&](const Var<double>&) { ++ran; });
    tg::HookHandle h2 = tg::register_post_accumulate_grad_hook<double>(w, [&](const Var<double>&) { ran += 10; });
    CHECK(tg::num_post_accumulate_grad_hooks(w) == 2);
    tg::sum(w).backward();
    CHECK(ran == 11);  // registration order: both ran
    h.remove();
    CHECK_FALSE(h.active());
    CHECK(h2.active());
    h.remove();  // twice is fine
    tg::sum(w).backward();
    CHECK(ran == 21);
    CHECK(tg::num_post_accumulate_grad_hooks(w) == 1);

    // The registry lets go of a hook (and what it captured) when the parameter goes away.
    auto token = std::make_shared<int>(0);
    {
        Var<double> temp = p({3.0});
        tg::register_post_accumulate_grad_hook<double>(temp, [token](const Var<double>&) {});
        CHECK(token.use_count() == 2);
    }
    CHECK(token.use_count() == 1);
    CHECK_FALSE(tg::HookHandle().active());
}

TEST_CASE("register_post_accumulate_grad_hook refuses what cannot accumulate a gradient", "[hooks][errors]")
{
    Var<double> w = p({1.0});
    const auto noop = [](const Var<double>&) {};
    CHECK_THROWS_WITH(tg::register_post_accumulate_grad_hook<double>(w * 2.0, noop),
                      Contains("register_post_accumulate_grad_hook") && Contains("only leaves"));
    CHECK_THROWS_WITH(tg::register_post_accumulate_grad_hook<double>(tg::constant(xt::xarray<double>{1.0}), noop),
                      Contains("constant"));
    CHECK_THROWS_WITH(tg::register_post_accumulate_grad_hook<double>(w, {}), Contains("empty"));
    CHECK_THROWS_WITH(tg::register_post_accumulate_grad_hook<double>(Var<double>(), noop),
                      Contains("register_post_accumulate_grad_hook"));
    CHECK(tg::num_post_accumulate_grad_hooks(Var<double>()) == 0);
}

TEST_CASE("float32 parameters take hooks too", "[hooks][float32]")
{
    Var<float> w = tg::parameter(xt::xarray<float>{1.0f, -2.0f});
    xt::xarray<float> seen;
    tg::register_post_accumulate_grad_hook<float>(w, [&](const Var<float>& q) { seen = q.grad(); });
    tg::sum(w * w).backward();
    CHECK((seen == xt::xarray<float>{2.0f, -4.0f}));
}
