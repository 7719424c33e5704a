// A gradient penalty (WGAN-GP): a loss that contains a gradient, trained by differentiating
// through that gradient.
//
// A small critic D: R^2 -> R (two tanh layers of 32 units) learns to tell "real" points, a
// Gaussian blob around (1, 1), from "fake" ones, the same blob moved to (0.4, 0.2). Its
// Wasserstein loss is mean D(fake) - mean D(real); alone it would make D arbitrarily steep,
// so WGAN-GP adds lambda * mean((|dD/dx| - 1)^2) at random points x on the segments between
// real and fake points, which asks D to be 1-Lipschitz there. The critic's mean D(real) -
// mean D(fake) then estimates the Wasserstein-1 distance of the blobs, which is 1 here.
//
// The penalty is a function of dD/dx, which tg::grad computes with create_graph: the
// backward of D is then recorded like any other ops, and loss.backward() goes through it to
// the critic's weights. That is a second derivative (d/dW of dD/dx), which is why the
// program first checks it against finite differences.
//
// At the optimum the two terms balance: a critic of slope s along the blobs' offset W gains
// s W and pays lambda (s - 1)^2, so s = 1 + W / (2 lambda) = 1.05, not exactly 1. The
// program fails (exit status 1) unless, after training, the mean |dD/dx| on fresh
// interpolates is within 0.1 of 1.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace {

using Var = tg::Var<double>;
using Array = xt::xarray<double>;

constexpr std::size_t kHidden = 32;
constexpr double kLambda = 10.0;     // WGAN-GP's penalty weight
constexpr double kTolerance = 0.1;   // |mean |dD/dx| - 1| allowed at the end
constexpr std::size_t kBatch = 128;  // real points, fake points and interpolates per step
constexpr int kSteps = 300;

// D(x) for x [n, 2] -> [n, 1]; p = {W1 [2, 32], b1 [32], W2 [32, 32], b2 [32], W3 [32, 1], b3 [1]}.
Var critic(const std::vector<Var>& p, const Var& x)
{
    const Var h1 = tg::tanh(tg::linear(x, p[0], p[1]));
    const Var h2 = tg::tanh(tg::linear(h1, p[2], p[3]));
    return tg::linear(h2, p[4], p[5]);
}

std::vector<Var> make_critic(tg::Generator& gen)
{
    const auto glorot = tg::nn::init::glorot_uniform();
    std::vector<Var> p;
    const std::size_t sizes[] = {2, kHidden, kHidden, 1};
    for (std::size_t l = 0; l < 3; ++l) {
        p.push_back(tg::parameter(glorot.make<double>({sizes[l], sizes[l + 1]}, sizes[l], sizes[l + 1], gen)));
        p.push_back(tg::parameter(Array(xt::zeros<double>({sizes[l + 1]}))));
    }
    return p;
}

// The penalty mean((|dD/dx| - 1)^2) at the points `at` [n, 2], and the norms |dD/dx| per point.
struct Penalty {
    Var value;
    Var norms;
};

// The penalty can be backpropagated to the critic's weights.
Penalty gradient_penalty(const std::vector<Var>& p, const Array& at)
{
    // The points must require grad for tg::grad to differentiate with respect to them.
    const Var x = tg::parameter(at);
    const Var d = critic(p, x);
    // create_graph: record the backward, so that the gradient g [n, 2] is itself differentiable.
    const Var g = tg::grad<double>({tg::sum(d)}, {x}, {}, tg::GradOptions{true, false, false})[0];
    const Var norms = tg::sqrt(tg::sum(tg::square(g), 1));
    return {tg::mean(tg::square(norms - 1.0)), norms};
}

struct Sampler {
    std::mt19937_64 rng;
    std::normal_distribution<double> normal{0.0, 1.0};
    std::uniform_real_distribution<double> uniform{0.0, 1.0};

    Array blob(std::size_t n, double cx, double cy, double spread)
    {
        Array a = xt::empty<double>({n, std::size_t(2)});
        for (std::size_t i = 0; i < n; ++i) {
            a(i, 0) = cx + spread * normal(rng);
            a(i, 1) = cy + spread * normal(rng);
        }
        return a;
    }
    // The means are 1 apart: the Wasserstein-1 distance between the two blobs is 1.
    Array real(std::size_t n) { return blob(n, 1.0, 1.0, 0.3); }
    Array fake(std::size_t n) { return blob(n, 0.4, 0.2, 0.3); }
    // One random point on the segment between each real point and a fake one.
    Array between(const Array& r, const Array& f)
    {
        Array a = r;
        for (std::size_t i = 0; i < r.shape()[0]; ++i) {
            const double e = uniform(rng);
            for (std::size_t j = 0; j < 2; ++j) a(i, j) = e * r(i, j) + (1 - e) * f(i, j);
        }
        return a;
    }
    // n such points between fresh real and fake ones.
    Array interpolates(std::size_t n)
    {
        const Array r = real(n);
        const Array f = fake(n);
        return between(r, f);
    }
};

// The penalty's tape gradient with respect to W1 (a backward through a recorded backward)
// against central differences of the penalty's value. Returns the largest error relative
// to the largest entry.
// The penalty's gradient with respect to W1 (through the recorded backward of D) against
// central differences, all of the penalty's other inputs held fixed.
tg::GradcheckResult check_penalty_gradient(const std::vector<Var>& p, const Array& at)
{
    const std::vector<Var> rest(p.begin() + 1, p.end());
    return tg::gradcheck(
        [&](const std::vector<Var>& v) {
            std::vector<Var> q{v[0]};
            q.insert(q.end(), rest.begin(), rest.end());
            return gradient_penalty(q, at).value;
        },
        {p[0].value()});
}

// Mean |dD/dx| over `at` (first order only: nothing is differentiated further).
double mean_gradient_norm(const std::vector<Var>& p, const Array& at)
{
    const Var x = tg::parameter(at);
    const Var g = tg::grad<double>({tg::sum(critic(p, x))}, {x})[0];
    return xt::mean(xt::sqrt(xt::sum(g.value() * g.value(), {1})))();
}

}  // namespace

int main()
{
    tg::Generator gen(7);
    std::vector<Var> params = make_critic(gen);
    Sampler sample{std::mt19937_64(11)};

    // 1. Is the second derivative right? First the critic's own second derivatives, the ones
    //    the penalty's backward runs through (gradgradcheck on D as a function of x, W1, b1,
    //    the other weights held fixed) ...
    const Array probe = sample.interpolates(4);
    const std::vector<Var> rest(params.begin() + 2, params.end());
    const tg::GradcheckResult gg = tg::gradgradcheck(
        [&rest](const std::vector<Var>& v) {
            std::vector<Var> p{v[1], v[2]};
            p.insert(p.end(), rest.begin(), rest.end());
            return critic(p, v[0]);
        },
        {probe, params[0].value(), params[1].value()});
    std::printf("critic: %s\n", gg.message.c_str());
    // ... then the penalty itself, as a function of W1: a function that calls tg::grad.
    const tg::GradcheckResult pc = check_penalty_gradient(params, sample.interpolates(16));
    const bool penalty_ok = pc.ok;
    std::printf("penalty: d penalty / d W1 by double backward vs central differences: %s\n\n", pc.message.c_str());

    // 2. Train the critic with the penalty. Each step differentiates the penalty's gradient.
    tg::optim::AdamOptions options;
    options.lr = 2e-3;
    options.beta1 = 0.5;  // as the WGAN-GP paper
    options.beta2 = 0.9;
    tg::optim::Adam<double> adam(params, options);
    // Annealed to 0 over the run (one schedule step per training step), so that the last
    // steps settle instead of jittering with each new batch.
    tg::optim::CosineAnnealingLR<double> schedule(adam, kSteps);

    // Held-out points, never trained on, to measure the critic before and after.
    const Array eval_real = sample.real(2000), eval_fake = sample.fake(2000);
    const Array eval_points = sample.between(eval_real, eval_fake);
    const double norm_before = mean_gradient_norm(params, eval_points);

    std::printf("W estimate: mean D(real) - mean D(fake) on the step's batch (the blobs' true distance is 1)\n");
    std::printf("%5s  %11s  %9s  %14s\n", "step", "W estimate", "penalty", "mean |dD/dx|");
    for (int step = 1; step <= kSteps; ++step) {
        const Array real = sample.real(kBatch), fake = sample.fake(kBatch);
        const Array mixed = sample.between(real, fake);
        adam.zero_grad();
        const Var d_real = tg::mean(critic(params, tg::constant(real)));
        const Var d_fake = tg::mean(critic(params, tg::constant(fake)));
        const Penalty gp = gradient_penalty(params, mixed);
        const Var loss = d_fake - d_real + kLambda * gp.value;
        loss.backward();  // through the recorded backward of D: second order
        if (step == 1 || step % 25 == 0) {
            std::printf("%5d  %11.4f  %9.5f  %14.4f\n", step, d_real.item() - d_fake.item(), gp.value.item(),
                        xt::mean(gp.norms.value())());
        }
        adam.step();
        schedule.step();
    }

    const double norm_after = mean_gradient_norm(params, eval_points);
    double w_estimate = 0;
    {
        tg::NoGradGuard no_grad;
        w_estimate = tg::mean(critic(params, tg::constant(eval_real))).item() -
                     tg::mean(critic(params, tg::constant(eval_fake))).item();
    }
    const bool converged = std::abs(norm_after - 1.0) <= kTolerance;
    std::printf("\ncritic's Wasserstein estimate on held-out points: %.4f (true distance 1)\n", w_estimate);
    std::printf("the two terms balance at a slope of 1 + W / (2 lambda) = %.3f\n", 1 + 1.0 / (2 * kLambda));
    std::printf("gradient penalty: mean |dD/dx| went from %.4f to %.4f (target 1, tolerance %.2f) on %zu held-out "
                "interpolates: %s\n",
                norm_before, norm_after, kTolerance, eval_points.shape()[0], converged ? "ok" : "FAILED");
    const bool all_ok = gg.ok && penalty_ok && converged;
    if (!all_ok) std::printf("gradient penalty: FAILED\n");
    return all_ok ? 0 : 1;
}
