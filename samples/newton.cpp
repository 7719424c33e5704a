// Newton's method without a Hessian: Newton-CG beside gradient descent, on an L2-regularised
// logistic regression that tells sneakers (Fashion-MNIST label 7) from ankle boots (label 9).
//
//   loss(w, b) = mean BCE(sigmoid(x w + b), t) + lambda / 2 |w|^2,   x [12000, 784], w [784, 1]
//
// The Hessian has 785 x 785 entries, but Newton's step only needs to solve H p = -g, and
// conjugate gradients solves that with nothing but products H v. The tape gives those at
// about the cost of two gradients: tg::grad with create_graph records the gradient g(w, b),
// then tg::grad({g}, {w, b}, {v}) differentiates g . v once more (Pearlmutter's trick), as
// often as CG asks, reusing the recorded gradient (retain_graph). CG stops early, at a
// relative residual min(0.5, sqrt|g|) that tightens as the gradient shrinks (an inexact
// Newton forcing term, as in Nocedal and Wright's Newton-CG), and a backtracking line
// search guards the step.
//
// Gradient descent takes the step 1/L, L the largest Hessian eigenvalue at w = 0, found by
// power iteration on the same Hessian-vector products (sigmoid' <= 1/4 is largest at 0, so
// that L bounds the curvature everywhere). It runs until it reaches Newton-CG's final loss,
// or an iteration cap: 500 by default, which keeps the whole run near 20 s on 2 cores. (An
// iteration costs about as much as a Hessian-vector product: a forward and a backward pass
// over the 12000 x 784 matrix. Gradient descent is nowhere near Newton-CG's loss by then;
// it is not at 2000 either.)
//
// Exit status: 0 when Newton-CG converges in far fewer (at least 10 times fewer) iterations
// than gradient descent needs or runs; 1 when not; 2 when the data is missing.
//
//   newton [--data-dir DIR] [--lambda 1e-3] [--gd-iterations 500]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <tapegrad/tapegrad.hpp>

namespace {

using Var = tg::Var<double>;
using Array = xt::xarray<double>;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kFeatures = 784;
constexpr std::size_t kDim = kFeatures + 1;  // w and b, flattened for CG
constexpr double kGradTolerance = 1e-6;      // Newton-CG stops at |g| <= this
constexpr double kLossTolerance = 1e-5;      // "the same loss": within this of Newton-CG's
constexpr int kMaxNewton = 30;
constexpr int kMaxCg = 400;

const char* kFiles[] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"};

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The rows of one IDX pair labelled `negative` (target 0) or `positive` (target 1).
struct TwoClass {
    Var x;  // constant [n, 784], pixels in [0, 1]
    Var t;  // constant [n, 1], 0 or 1
};

TwoClass load_two_classes(const std::filesystem::path& images, const std::filesystem::path& labels,
                          std::int64_t negative, std::int64_t positive)
{
    const auto all = tg::data::load_idx_dataset<double>(images.string(), labels.string());
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all.labels()(i) == negative || all.labels()(i) == positive) rows.push_back(i);
    }
    Array x = xt::empty<double>({rows.size(), kFeatures});
    Array t = xt::empty<double>({rows.size(), std::size_t(1)});
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const double* src = all.features().data() + rows[r] * kFeatures;
        std::copy(src, src + kFeatures, x.data() + r * kFeatures);
        t(r, 0) = all.labels()(rows[r]) == positive ? 1.0 : 0.0;
    }
    return {tg::constant(std::move(x)), tg::constant(std::move(t))};
}

// (w [784, 1], b [1]) <-> one vector [785], for CG's arithmetic.
Array pack(const Array& w, const Array& b)
{
    Array v = xt::empty<double>({kDim});
    std::copy(w.data(), w.data() + kFeatures, v.data());
    v(kFeatures) = b(0);
    return v;
}
Array unpack_w(const Array& v)
{
    Array w = xt::empty<double>({kFeatures, std::size_t(1)});
    std::copy(v.data(), v.data() + kFeatures, w.data());
    return w;
}
Array unpack_b(const Array& v)
{
    return Array{v(kFeatures)};
}

double dot(const Array& a, const Array& b)
{
    return xt::sum(a * b)();
}
double norm(const Array& a)
{
    return std::sqrt(dot(a, a));
}

struct Problem {
    TwoClass train, test;
    double lambda;

    Var loss(const Var& w, const Var& b) const
    {
        const Var logits = tg::linear(train.x, w, b);
        return tg::binary_cross_entropy_with_logits(logits, train.t) + (lambda / 2) * tg::sum(tg::square(w));
    }
    double loss_at(const Array& w, const Array& b) const
    {
        tg::NoGradGuard no_grad;
        return loss(tg::constant(w), tg::constant(b)).item();
    }
    double test_accuracy(const Array& w, const Array& b) const
    {
        tg::NoGradGuard no_grad;
        const Array logits = tg::linear(test.x, tg::constant(w), tg::constant(b)).value();
        const Array& t = test.t.value();
        std::size_t right = 0;
        for (std::size_t i = 0; i < t.size(); ++i) right += (logits(i, 0) > 0) == (t(i, 0) > 0.5);
        return double(right) / double(t.size());
    }
};

// The loss, its gradient and Hessian-vector products at one point (w, b). The gradient is
// recorded once (create_graph); every product H v differentiates g . v again, reusing it.
class SecondOrder {
public:
    SecondOrder(const Problem& problem, const Var& w, const Var& b) : w_(w), b_(b)
    {
        const Var loss = problem.loss(w, b);
        loss_ = loss.item();
        g_ = tg::grad<double>({loss}, {w, b}, {}, tg::GradOptions{true, false, false});
        gradient_ = pack(g_[0].value(), g_[1].value());
    }
    // The pass holds the recorded gradient and what CG recorded, and no backward without
    // retain_graph ends it: end it here, so the next point's pass reuses its buffers.
    ~SecondOrder() { tg::end_pass<double>(); }
    SecondOrder(const SecondOrder&) = delete;
    SecondOrder& operator=(const SecondOrder&) = delete;

    double loss() const { return loss_; }
    const Array& gradient() const { return gradient_; }

    // H v = d(g . v)/d(w, b): the recorded gradient contracted with v, differentiated once
    // more; retain_graph, since CG asks again.
    Array hvp(const Array& v)
    {
        ++products_;
        const std::vector<Var> h = tg::grad<double>(
            g_, {w_, b_}, {tg::constant(unpack_w(v)), tg::constant(unpack_b(v))}, tg::GradOptions{false, true, false});
        return pack(h[0].value(), h[1].value());
    }
    int products() const { return products_; }

private:
    Var w_, b_;
    double loss_;
    std::vector<Var> g_;
    Array gradient_;
    int products_ = 0;
};

// Conjugate gradients on H p = -g, stopped when |H p + g| <= rel * |g|.
Array conjugate_gradient(SecondOrder& at, double rel)
{
    const Array& g = at.gradient();
    Array p = xt::zeros<double>({kDim});
    Array r = -g;
    Array d = r;
    double rr = dot(r, r);
    const double stop = rel * rel * dot(g, g);
    for (int i = 0; i < kMaxCg && rr > stop; ++i) {
        const Array hd = at.hvp(d);
        const double curvature = dot(d, hd);
        if (curvature <= 0) break;  // not for a strictly convex loss; kept for safety
        const double alpha = rr / curvature;
        p += alpha * d;
        r -= alpha * hd;
        const double rr_next = dot(r, r);
        d = r + (rr_next / rr) * d;
        rr = rr_next;
    }
    return p;
}

struct Row {
    int iteration;
    int products;  // Newton-CG: Hessian-vector products so far
    double loss, grad_norm, accuracy, seconds;
};

struct NewtonResult {
    std::vector<Row> rows;
    bool converged = false;
    int iterations = 0, products = 0;
    double loss = 0, seconds = 0;
};

NewtonResult newton_cg(const Problem& problem)
{
    NewtonResult res;
    const Var w = tg::parameter(Array(xt::zeros<double>({kFeatures, std::size_t(1)})));
    const Var b = tg::parameter(Array(xt::zeros<double>({std::size_t(1)})));
    const auto start = Clock::now();
    for (int k = 0;; ++k) {
        SecondOrder at(problem, w, b);
        const double gnorm = norm(at.gradient());
        res.rows.push_back(
            {k, res.products, at.loss(), gnorm, problem.test_accuracy(w.value(), b.value()), seconds_since(start)});
        res.loss = at.loss();
        res.iterations = k;
        if (gnorm <= kGradTolerance) {
            res.converged = true;
            break;
        }
        if (k == kMaxNewton) break;

        // Forcing term: loose while far away, tight (superlinear convergence) near the end.
        const Array p = conjugate_gradient(at, std::min(0.5, std::sqrt(gnorm)));
        res.products += at.products();

        // Backtracking (Armijo) from the full Newton step, which is nearly always taken.
        const Array theta = pack(w.value(), b.value());
        const double slope = dot(at.gradient(), p);
        double step = 1.0;
        Array next = theta + p;
        while (problem.loss_at(unpack_w(next), unpack_b(next)) > at.loss() + 1e-4 * step * slope && step > 1e-10) {
            step /= 2;
            next = theta + step * p;
        }
        w.set_value(unpack_w(next));
        b.set_value(unpack_b(next));
    }
    res.seconds = seconds_since(start);
    return res;
}

// The largest eigenvalue of the Hessian at w = 0, b = 0, by power iteration on H v.
double largest_curvature(const Problem& problem)
{
    const Var w = tg::parameter(Array(xt::zeros<double>({kFeatures, std::size_t(1)})));
    const Var b = tg::parameter(Array(xt::zeros<double>({std::size_t(1)})));
    SecondOrder at(problem, w, b);
    Array v = xt::ones<double>({kDim}) / std::sqrt(double(kDim));
    double lambda = 0;
    for (int i = 0; i < 50; ++i) {
        const Array hv = at.hvp(v);
        const double next = dot(v, hv);
        v = hv / norm(hv);
        if (std::abs(next - lambda) <= 1e-6 * next) break;
        lambda = next;
    }
    return lambda;
}

struct DescentResult {
    std::vector<Row> rows;
    bool reached = false;
    int iterations = 0;
    double loss = 0, seconds = 0;
};

DescentResult gradient_descent(const Problem& problem, double step, double target, int cap)
{
    DescentResult res;
    const Var w = tg::parameter(Array(xt::zeros<double>({kFeatures, std::size_t(1)})));
    const Var b = tg::parameter(Array(xt::zeros<double>({std::size_t(1)})));
    tg::optim::SGDOptions options;
    options.lr = step;
    tg::optim::SGD<double> sgd({w, b}, options);
    const auto start = Clock::now();
    auto logged = [cap](int k) {
        if (k == cap) return true;
        for (int m = 1; m <= k; m *= 10) {
            if (k == m || k == 2 * m || k == 5 * m) return true;
        }
        return k == 0;
    };
    for (int k = 0;; ++k) {
        sgd.zero_grad();
        const Var loss = problem.loss(w, b);
        loss.backward();
        res.loss = loss.item();
        res.iterations = k;
        res.reached = res.loss <= target;
        if (logged(k) || res.reached) {
            const double gnorm = norm(pack(w.grad(), b.grad()));
            res.rows.push_back(
                {k, 0, res.loss, gnorm, problem.test_accuracy(w.value(), b.value()), seconds_since(start)});
        }
        if (res.reached || k == cap) break;
        sgd.step();
    }
    res.seconds = seconds_since(start);
    return res;
}

}  // namespace

int main(int argc, char** argv)
{
    std::string data_dir = "/usr/share/datasets/fashion-mnist";
    double lambda = 1e-3;
    int gd_cap = 500;
    CLI::App app{"Newton-CG (Hessian-vector products from the tape) beside gradient descent, on logistic regression "
                 "of Fashion-MNIST sneakers vs ankle boots."};
    app.add_option("--data-dir", data_dir, "Folder with the four gzip'd IDX files")->capture_default_str();
    app.add_option("--lambda", lambda, "L2 regularisation weight")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--gd-iterations", gd_cap, "Gradient descent's iteration cap")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    const std::filesystem::path dir(data_dir);
    for (const char* f : kFiles) {
        if (!std::filesystem::exists(dir / f)) {
            std::fprintf(stderr,
                         "newton: Fashion-MNIST not found in %s (expected %s and the three other IDX files).\n"
                         "Install Debian's dataset-fashion-mnist package (scripts/install-deps does), or pass "
                         "--data-dir.\n",
                         data_dir.c_str(), f);
            return 2;
        }
    }

    try {
        const auto load_start = Clock::now();
        const Problem problem{load_two_classes(dir / kFiles[0], dir / kFiles[1], 7, 9),
                              load_two_classes(dir / kFiles[2], dir / kFiles[3], 7, 9), lambda};
        std::printf("sneakers (7) vs ankle boots (9): %zu training and %zu test images, 784 features in [0, 1], "
                    "lambda %g (loaded in %.1f s)\n",
                    problem.train.t.size(), problem.test.t.size(), lambda, seconds_since(load_start));

        const NewtonResult nt = newton_cg(problem);
        const double curvature = largest_curvature(problem);
        const double target = nt.loss + kLossTolerance;
        const DescentResult gd = gradient_descent(problem, 1 / curvature, target, gd_cap);

        std::printf("\ngradient descent stops at Newton-CG's loss + %.0e or after %d iterations (capped to keep the "
                    "run short; --gd-iterations N to change)\n",
                    kLossTolerance, gd_cap);
        std::printf("%-52s | gradient descent, step 1/L = 1/%.2f\n", "Newton-CG (H v products from the tape)",
                    curvature);
        std::printf("%4s %5s %12s %9s %8s %6s | %5s %12s %9s %8s %6s\n", "iter", "H v", "loss", "|grad|", "test acc",
                    "time", "iter", "loss", "|grad|", "test acc", "time");
        for (std::size_t i = 0; i < std::max(nt.rows.size(), gd.rows.size()); ++i) {
            if (i < nt.rows.size()) {
                const Row& r = nt.rows[i];
                std::printf("%4d %5d %12.9f %9.2e %7.2f%% %5.2fs", r.iteration, r.products, r.loss, r.grad_norm,
                            100 * r.accuracy, r.seconds);
            } else {
                std::printf("%52s", "");
            }
            if (i < gd.rows.size()) {
                const Row& r = gd.rows[i];
                std::printf(" | %5d %12.9f %9.2e %7.2f%% %5.2fs", r.iteration, r.loss, r.grad_norm, 100 * r.accuracy,
                            r.seconds);
            } else {
                std::printf(" |");
            }
            std::printf("\n");
        }

        std::printf("\nNewton-CG: %d outer iterations (%d Hessian-vector products) to loss %.9f (|grad| %s %.0e) in "
                    "%.2f s; gradient descent: ",
                    nt.iterations, nt.products, nt.loss, nt.converged ? "<=" : "NOT <=", kGradTolerance, nt.seconds);
        if (gd.reached) {
            std::printf("%d iterations to the same loss (within %.0e) in %.2f s\n", gd.iterations, kLossTolerance,
                        gd.seconds);
        } else {
            std::printf("did not reach the same loss (within %.0e) in %d iterations (%.2f s; loss %.9f)\n",
                        kLossTolerance, gd.iterations, gd.seconds, gd.loss);
        }
        // Far fewer: at least 10 times fewer iterations than gradient descent needed, or than
        // it ran without getting there.
        const bool far_fewer = nt.converged && 10 * nt.iterations <= gd.iterations;
        if (!nt.converged) {
            std::printf("newton: FAILED: Newton-CG did not reach |grad| <= %.0e in %d iterations\n", kGradTolerance,
                        kMaxNewton);
        } else if (!far_fewer && !gd.reached) {
            std::printf("newton: FAILED: cannot tell: gradient descent's cap of %d iterations is under 10 times "
                        "Newton-CG's %d\n",
                        gd_cap, nt.iterations);
        } else if (!far_fewer) {
            std::printf("newton: FAILED: Newton-CG took %d iterations, not 10 times fewer than gradient descent's %d\n",
                        nt.iterations, gd.iterations);
        } else {
            std::printf("newton: ok: Newton-CG converged in %dx fewer iterations than gradient descent %s\n",
                        gd.iterations / std::max(1, nt.iterations), gd.reached ? "needed" : "ran");
        }
        return far_fewer ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "newton: %s\n", e.what());
        return 1;
    }
}
