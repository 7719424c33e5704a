// The tape's semantics: handles, leaves, accumulation, passes, staleness, no-grad, and a
// steady-state training loop that does not grow.

#include <malloc.h>

#include <thread>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using tg::Var;

TEST_CASE("copies of a Var refer to the same parameter", "[engine][var]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
    Var<double> alias = w;
    alias.set_value(xt::xarray<double>{5.0, 6.0});
    CHECK(w.value() == xt::xarray<double>{5.0, 6.0});
    CHECK(w.requires_grad());
    CHECK(w.is_leaf());
    CHECK_FALSE(tg::constant(xt::xarray<double>{1.0}).requires_grad());
}

TEST_CASE("backward leaves d(loss)/d(parameter) in every parameter", "[engine][backward]")
{
    // loss = sum(w * x + b) -> d/dw = x, d/db = number of elements
    Var<double> w = tg::parameter(xt::xarray<double>{{1.0, 2.0, 3.0}});
    Var<double> b = tg::parameter(xt::xarray<double>(2.0));
    Var<double> x = tg::constant(xt::xarray<double>{{4.0, 5.0, 6.0}, {7.0, 8.0, 9.0}});
    Var<double> loss = tg::sum(w * x + b);
    CHECK(loss.item() == Approx(1 * 4 + 2 * 5 + 3 * 6 + 1 * 7 + 2 * 8 + 3 * 9 + 6 * 2.0));
    loss.backward();
    CHECK(w.grad() == xt::xarray<double>{{11.0, 13.0, 15.0}});
    CHECK(b.grad()() == 6.0);
    CHECK(b.grad().dimension() == 0);
}

TEST_CASE("gradients accumulate across backward calls until zero_grad", "[engine][accumulate]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{3.0});
    for (int i = 0; i < 3; ++i) tg::sum(w * w).backward();
    CHECK(w.grad()(0) == 18.0);  // 3 * 2w
    w.zero_grad();
    CHECK_FALSE(w.has_grad());
    CHECK_THROWS_WITH(w.grad(), Catch::Contains("grad: no gradient"));
    tg::sum(w * w).backward();
    CHECK(w.grad()(0) == 6.0);
}

TEST_CASE("a Var used twice gets both contributions (fan-out)", "[engine][accumulate]")
{
    Var<double> x = tg::parameter(xt::xarray<double>{2.0});
    Var<double> y = x * x + x;  // dy/dx = 2x + 1
    tg::sum(y).backward();
    CHECK(x.grad()(0) == 5.0);
}

TEST_CASE("values of a pass stay readable after backward until the next op", "[engine][pass]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.5});
    Var<double> h = tg::exp(w);
    Var<double> loss = tg::sum(h);
    loss.backward();
    CHECK(loss.item() == Approx(std::exp(1.5)));
    CHECK(h.value()(0) == Approx(std::exp(1.5)));
    Var<double> next = tg::sum(w * 2.0);  // starts a new pass
    CHECK_THROWS_WITH(loss.value(), Catch::Contains("stale"));
    CHECK_THROWS_WITH(tg::exp(h), Catch::Contains("stale"));
    CHECK(next.item() == 3.0);
}

TEST_CASE("backward through a spent pass is an error, and retain_graph allows a second", "[engine][pass]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
    Var<double> loss = tg::sum(tg::square(w));
    loss.backward(tg::retain_graph);
    loss.backward();
    CHECK(w.grad() == xt::xarray<double>{4.0, 8.0});
    CHECK_THROWS_WITH(loss.backward(), Catch::StartsWith("backward") && Catch::Contains("already backpropagated"));
}

TEST_CASE("NoGradGuard records nothing and makes results that need no grad", "[engine][nograd]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
    tg::sum(w).backward();
    Var<double> start = tg::sum(w);  // a fresh pass with one entry
    const std::size_t before = tg::tape_size<double>();
    {
        tg::NoGradGuard guard;
        CHECK_FALSE(tg::is_grad_enabled());
        Var<double> y = tg::sigmoid(w * 3.0 + 1.0);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.value()(1) == Approx(1.0 / (1.0 + std::exp(-7.0))));
    }
    CHECK(tg::is_grad_enabled());
    CHECK(tg::tape_size<double>() == before);
    CHECK(start.item() == 3.0);
}

TEST_CASE("ops on constants only are not recorded", "[engine][nograd]")
{
    tg::sum(tg::parameter(xt::xarray<double>{1.0})).backward();
    Var<double> w = tg::parameter(xt::xarray<double>{1.0});
    Var<double> first = w * 1.0;
    const std::size_t before = tg::tape_size<double>();
    Var<double> c = tg::constant(xt::xarray<double>{1.0, 2.0});
    Var<double> y = tg::exp(c) + c;
    CHECK_FALSE(y.requires_grad());
    CHECK(tg::tape_size<double>() == before);
    CHECK(first.item() == 1.0);
}

TEST_CASE("a non-scalar output backpropagates with an explicit seed", "[engine][backward]")
{
    Var<double> x = tg::parameter(xt::xarray<double>{1.0, 2.0, 3.0});
    Var<double> y = x * x;
    y.backward(xt::xarray<double>{1.0, 0.0, 2.0});
    CHECK(x.grad() == xt::xarray<double>{2.0, 0.0, 12.0});
}

TEST_CASE("backward from a parameter itself seeds its own gradient", "[engine][backward]")
{
    Var<double> x = tg::parameter(xt::xarray<double>(4.0));
    x.backward();
    CHECK(x.grad()() == 1.0);
}

TEST_CASE("a leaf changed between forward and backward is reported, not silently used", "[engine][version]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{2.0});
    Var<double> loss = tg::sum(w * w);
    w.set_value(xt::xarray<double>{3.0});
    CHECK_THROWS_WITH(loss.backward(), Catch::StartsWith("backward") && Catch::Contains("modified in place"));
}

TEST_CASE("the tape reaches a steady state: a training loop does not grow", "[engine][memory]")
{
    Var<float> w1 = tg::parameter(xt::xarray<float>{{0.1f, 0.2f, 0.3f}, {0.4f, 0.5f, 0.6f}});
    Var<float> b1 = tg::parameter(xt::xarray<float>{0.1f, 0.1f, 0.1f});
    Var<float> w2 = tg::parameter(xt::xarray<float>{{0.1f, 0.2f}, {0.3f, 0.4f}, {0.5f, 0.6f}});
    Var<float> b2 = tg::parameter(xt::xarray<float>{0.0f, 0.0f});
    Var<float> x = tg::constant(xt::xarray<float>{{1.0f, 2.0f}});
    Var<float> t = tg::constant(xt::xarray<float>{{1.0f, 0.0f}});
    auto step = [&] {
        Var<float> h = tg::sigmoid(tg::matmul(x, w1) + b1);
        Var<float> y = tg::sigmoid(tg::matmul(h, w2) + b2);
        Var<float> loss = tg::mse_loss(y, t);
        loss.backward();
        tg::NoGradGuard guard;
        for (Var<float>* p : {&w1, &b1, &w2, &b2}) {
            p->set_value(p->value() - 0.5f * p->grad());
            p->zero_grad();
        }
    };
    for (int i = 0; i < 10; ++i) step();
    const std::size_t capacity = tg::tape_capacity<float>();
    const std::size_t entries = tg::tape_size<float>();
    const auto heap_before = mallinfo2().uordblks;
    for (int i = 0; i < 2000; ++i) step();
    const auto heap_after = mallinfo2().uordblks;
    CHECK(tg::tape_capacity<float>() == capacity);
    CHECK(tg::tape_size<float>() == entries);
    // A leak of even one small block per step would show as >= 2000 * 16 bytes.
    CHECK(heap_after <= heap_before + 4096);
}

TEST_CASE("clear_tape frees the tape and makes its Vars stale", "[engine][tape]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0});
    Var<double> y = w * 2.0;
    tg::clear_tape<double>();
    CHECK(tg::tape_capacity<double>() == 0);
    CHECK_THROWS_WITH(y.value(), Catch::Contains("stale"));
    CHECK(w.value()(0) == 1.0);
}

TEST_CASE("each thread records on its own tape", "[engine][threads]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{2.0});
    double from_thread = 0;
    std::thread worker([&] {
        Var<double> loss = tg::sum(w * w);
        from_thread = loss.item();
    });
    worker.join();
    CHECK(from_thread == 4.0);
}

TEST_CASE("value() of a temporary Var is a copy that outlives it", "[engine][var]")
{
    tg::NoGradGuard guard;
    Var<double> x = tg::constant(xt::xarray<double>{1.0, 2.0});
    const auto& y = tg::exp(x).value();  // bound to a copy: the node behind exp(x) is gone
    CHECK(y(1) == Approx(std::exp(2.0)));
}
