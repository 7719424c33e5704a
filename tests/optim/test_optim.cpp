// Optimiser behaviour beyond the PyTorch trajectories: skipping, state by name, bad
// options, schedules, clipping, and updates that allocate nothing.

#include <malloc.h>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using tg::Var;
namespace optim = tg::optim;

TEST_CASE("SGD subtracts lr * grad and skips parameters without a gradient", "[optim][sgd]")
{
    Var<double> a = tg::parameter(xt::xarray<double>{1.0, 2.0});
    Var<double> b = tg::parameter(xt::xarray<double>{5.0});
    optim::SGDOptions o;
    o.lr = 0.5;
    optim::SGD<double> opt({a, b}, o);
    tg::sum(a * a).backward();
    opt.step();
    CHECK(a.value() == xt::xarray<double>{0.0, 0.0});
    CHECK(b.value()(0) == 5.0);
    CHECK(opt.step_count() == 1);
    CHECK(opt.state("0.step")() == 1.0);
    CHECK(opt.state("1.step")() == 0.0);
    opt.zero_grad();
    CHECK_FALSE(a.has_grad());
}

TEST_CASE("Adam's first step moves each weight by lr against its gradient's sign", "[optim][adam]")
{
    Var<float> w = tg::parameter(xt::xarray<float>{1.0f, -1.0f, 3.0f});
    optim::AdamOptions o;
    o.lr = 0.1;
    optim::Adam<float> opt({w}, o);
    tg::sum(w * tg::constant(xt::xarray<float>{2.0f, -3.0f, 0.5f})).backward();
    opt.step();
    // m_hat / sqrt(v_hat) = sign(g) at t = 1, up to eps.
    CHECK(w.value()(0) == Approx(0.9f));
    CHECK(w.value()(1) == Approx(-0.9f));
    CHECK(w.value()(2) == Approx(2.9f));
}

TEST_CASE("optimiser state can be read, written and round-tripped by name", "[optim][state]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
    optim::AdamOptions o;
    o.amsgrad = true;
    optim::Adam<double> a({w}, o);
    tg::sum(tg::square(w)).backward();
    a.step();
    const auto names = a.state_names();
    CHECK(names == std::vector<std::string>{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq", "0.step", "lr", "step"});
    const auto saved = a.state_dict();
    CHECK(xt::allclose(saved.at("0.exp_avg"), xt::xarray<double>{0.2, 0.4}));  // (1 - 0.9) * 2w

    Var<double> w2 = tg::parameter(xt::xarray<double>{1.0, 2.0});
    optim::Adam<double> b({w2}, o);
    b.load_state_dict(saved);
    CHECK(b.state_dict() == saved);
    CHECK(b.step_count() == 1);
    b.set_state("lr", xt::xarray<double>(0.5));
    CHECK(b.lr() == 0.5);
    CHECK_THROWS_WITH(b.state("0.momentum_buffer"), Catch::StartsWith("Adam: unknown state entry '0.momentum_buffer'"));
    CHECK_THROWS_WITH(b.state("3.exp_avg"), Catch::StartsWith("Adam: unknown state entry '3.exp_avg'"));
    CHECK_THROWS_WITH(b.set_state("0.exp_avg", xt::zeros<double>({3})),
                      Catch::Equals("Adam: state entry '0.exp_avg' has shape [3], parameter 0 has shape [2]"));
    optim::SGD<double> s({w2});
    CHECK_THROWS_WITH(s.state("0.momentum_buffer"), Catch::Contains("does not exist yet"));
}

TEST_CASE("optimisers reject bad parameters and options with the name and the value", "[optim][errors]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0});
    Var<double> c = tg::constant(xt::xarray<double>{1.0});
    CHECK_THROWS_WITH(optim::SGD<double>({w, c}),
                      Catch::StartsWith("SGD: parameter 1 (shape [1]) is a constant and never gets a gradient"));
    CHECK_THROWS_WITH(optim::SGD<double>({w * 2.0}), Catch::Contains("is the output of an op"));
    CHECK_THROWS_WITH(optim::SGD<double>({}), Catch::Equals("SGD: the parameter list is empty"));
    optim::SGDOptions s;
    s.lr = 0;
    CHECK_THROWS_WITH(optim::SGD<double>({w}, s), Catch::Equals("SGD: lr must be positive, got 0"));
    s.lr = -0.1;
    CHECK_THROWS_WITH(optim::SGD<double>({w}, s), Catch::Equals("SGD: lr must be positive, got -0.1"));
    s.lr = 0.1;
    s.nesterov = true;
    CHECK_THROWS_WITH(optim::SGD<double>({w}, s), Catch::StartsWith("SGD: nesterov needs momentum > 0"));
    optim::AdamOptions a;
    a.beta1 = 1.0;
    CHECK_THROWS_WITH(optim::Adam<double>({w}, a), Catch::Equals("Adam: beta1 must be in [0, 1), got 1"));
    a.beta1 = 0.9;
    a.beta2 = -0.5;
    CHECK_THROWS_WITH(optim::Adam<double>({w}, a), Catch::Equals("Adam: beta2 must be in [0, 1), got -0.5"));
    optim::AdamWOptions aw;
    CHECK(aw.weight_decay == 1e-2);
    aw.lr = -1;
    CHECK_THROWS_WITH(optim::AdamW<double>({w}, aw), Catch::Equals("AdamW: lr must be positive, got -1"));
}

TEST_CASE("a schedule stepped before its optimiser is an error", "[optim][schedule][errors]")
{
    Var<double> w = tg::parameter(xt::xarray<double>{1.0});
    optim::SGD<double> opt({w});
    optim::StepLR<double> sched(opt, 2);
    CHECK_THROWS_WITH(sched.step(), Catch::StartsWith("StepLR: step() was called before the optimiser's first step()"));
    optim::ReduceLROnPlateau<double> plateau(opt);
    CHECK_THROWS_WITH(plateau.step(1.0), Catch::StartsWith("ReduceLROnPlateau: step() was called before"));
    CHECK_THROWS_WITH(optim::StepLR<double>(opt, 0), Catch::StartsWith("StepLR: step_size must be positive"));
    CHECK_THROWS_WITH(optim::ExponentialLR<double>(opt, 0.0),
                      Catch::StartsWith("ExponentialLR: gamma must be positive"));
}

namespace {
// An SGD optimiser at lr 1 that has taken one step (schedules refuse to step before it).
struct StepTaken {
    Var<double> w = tg::parameter(xt::xarray<double>{1.0});
    optim::SGD<double> opt{{w}, sgd_lr_one()};
    StepTaken()
    {
        tg::sum(w).backward();
        opt.step();
    }
    static optim::SGDOptions sgd_lr_one()
    {
        optim::SGDOptions o;
        o.lr = 1.0;
        return o;
    }
};
}  // namespace

TEST_CASE("schedules set the documented learning rates", "[optim][schedule]")
{
    StepTaken stepped;
    optim::SGD<double>& opt = stepped.opt;
    optim::StepLR<double> step(opt, 2, 0.5);
    std::vector<double> lrs;
    for (int e = 0; e < 5; ++e) {
        step.step();
        lrs.push_back(opt.lr());
    }
    CHECK(lrs == std::vector<double>{1.0, 0.5, 0.5, 0.25, 0.25});
    opt.set_lr(1.0);
    optim::CosineAnnealingLR<double> cos(opt, 4, 0.0);
    cos.step();
    cos.step();
    CHECK(opt.lr() == Approx(0.5));
    cos.step();
    cos.step();
    CHECK(opt.lr() == Approx(0.0).margin(1e-15));
    cos.set_epoch(1);
    CHECK(opt.lr() == Approx((1 + std::cos(3.14159265358979 / 4)) / 2));
}

TEST_CASE("ReduceLROnPlateau lowers the rate after patience epochs without improvement", "[optim][schedule]")
{
    StepTaken stepped;
    optim::SGD<double>& opt = stepped.opt;
    optim::PlateauOptions p;
    p.patience = 2;
    p.factor = 0.5;
    optim::ReduceLROnPlateau<double> plateau(opt, p);
    for (double metric : {1.0, 0.9, 0.9, 0.9}) plateau.step(metric);
    CHECK(opt.lr() == 1.0);  // two bad epochs: not yet
    plateau.step(0.95);
    CHECK(opt.lr() == 0.5);  // third bad epoch
    plateau.step(0.5);
    CHECK(opt.lr() == 0.5);
}

TEST_CASE("gradient clipping by global norm and by value", "[optim][clip]")
{
    Var<double> a = tg::parameter(xt::xarray<double>{0.0, 0.0});
    Var<double> b = tg::parameter(xt::xarray<double>{0.0});
    (tg::sum(a * 3.0) + tg::sum(b * 4.0)).backward();  // grads [3, 3] and [4]
    const double norm = optim::clip_grad_norm<double>({a, b}, 1.0);
    CHECK(norm == Approx(std::sqrt(9.0 + 9.0 + 16.0)));
    const double scale = 1.0 / (norm + 1e-6);
    CHECK(a.grad()(0) == Approx(3.0 * scale));
    CHECK(b.grad()(0) == Approx(4.0 * scale));
    optim::clip_grad_value<double>({a, b}, 0.5);
    CHECK(b.grad()(0) == Approx(std::min(0.5, 4.0 * scale)));
    CHECK_THROWS_WITH(optim::clip_grad_norm<double>({a}, -1.0),
                      Catch::StartsWith("clip_grad_norm: max_norm must not be negative"));
}

TEST_CASE("optimiser steps update in place and allocate nothing once warm", "[optim][memory]")
{
    tg::manual_seed(1);
    tg::nn::Sequential<float> model{tg::nn::Dense<float>(8, 16, tg::nn::Activation::relu), tg::nn::Dense<float>(16, 4)};
    Var<float> x = tg::constant(xt::xarray<float>(xt::ones<float>({5, 8})));
    xt::xarray<std::int64_t> labels{0, 1, 2, 3, 0};
    optim::AdamW<float> opt(model.parameters());
    const float* before = model.parameters()[0].value().data();
    auto step = [&] {
        opt.zero_grad();
        tg::cross_entropy(model(x), labels).backward();
        opt.step();
    };
    for (int i = 0; i < 5; ++i) step();
    const auto heap = mallinfo2().uordblks;
    for (int i = 0; i < 500; ++i) step();
    CHECK(mallinfo2().uordblks <= heap + 4096);
    CHECK(model.parameters()[0].value().data() == before);
}
