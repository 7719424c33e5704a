// Per-graph backward: a backward walks and releases only the graph of its output, so the
// other graphs of a pass stay usable (a GAN step, two losses one after the other), and
// entries no handle can reach any more are reclaimed (an evaluation loop without
// NoGradGuard stays flat). In-place changes of a leaf between forward and backward are
// refused, resizes included.

#include <fstream>
#include <string>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using Catch::StartsWith;
using tg::Var;

namespace {

xt::xarray<double> filled(std::vector<std::size_t> shape, double start, double step)
{
    xt::xarray<double> a = xt::zeros<double>(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = start + step * static_cast<double>(i % 7) - 0.1 * i;
    return a;
}

struct Gan {
    Var<double> wg = tg::parameter(filled({3, 4}, -0.4, 0.15));
    Var<double> wd = tg::parameter(filled({4, 1}, 0.3, -0.2));
    Var<double> z = tg::constant(filled({5, 3}, 0.5, -0.3));
    Var<double> real = tg::constant(filled({5, 4}, -0.2, 0.25));
    Var<double> ones = tg::constant(xt::xarray<double>(xt::ones<double>({5, 1})));
    Var<double> zeros = tg::constant(xt::xarray<double>(xt::zeros<double>({5, 1})));

    Var<double> generator() const { return tg::tanh(tg::matmul(z, wg)); }
    Var<double> discriminator(const Var<double>& x) const { return tg::sigmoid(tg::matmul(x, wd)); }
    Var<double> loss_d(const Var<double>& fake) const
    {
        return tg::mse_loss(discriminator(real), ones) + tg::mse_loss(discriminator(tg::detach(fake)), zeros);
    }
    Var<double> loss_g(const Var<double>& fake) const { return tg::mse_loss(discriminator(fake), ones); }
    void zero_grad() const
    {
        wg.zero_grad();
        wd.zero_grad();
    }
};

// Resident memory in bytes (Linux).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

std::size_t resident_bytes()
{
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("a GAN step backpropagates D's loss, then G's loss through the same fake, without retain_graph",
          "[engine][graphs]")
{
    const Gan gan;
    // Each loss alone, in a pass of its own: the gradients the shared pass must reproduce.
    gan.loss_d(gan.generator()).backward();
    const xt::xarray<double> want_d = gan.wd.grad();
    CHECK_FALSE(gan.wg.has_grad());  // detach: D's loss never reaches G
    gan.zero_grad();
    gan.loss_g(gan.generator()).backward();
    const xt::xarray<double> want_g_wg = gan.wg.grad(), want_g_wd = gan.wd.grad();
    gan.zero_grad();

    // One pass: fake is recorded once; D's backward releases only D's graph.
    const Var<double> fake = gan.generator();
    gan.loss_d(fake).backward();
    CHECK(gan.wd.grad() == want_d);
    gan.wd.zero_grad();
    const Var<double> loss_g = gan.loss_g(fake);  // fake is still usable
    loss_g.backward();
    CHECK(gan.wg.grad() == want_g_wg);
    CHECK(gan.wd.grad() == want_g_wd);
    CHECK_THROWS_WITH(loss_g.backward(), StartsWith("backward: this graph was already backpropagated and released"));
}

TEST_CASE("two independent losses of one pass are backpropagated one after the other", "[engine][graphs]")
{
    const Var<double> a = tg::parameter(xt::xarray<double>{0.5, -1.0, 2.0});
    const Var<double> b = tg::parameter(xt::xarray<double>{1.5, 0.25});
    const Var<double> la = tg::sum(tg::exp(a) * a);
    const Var<double> lb = tg::sum(tg::sin(b) * 3.0);
    la.backward();
    lb.backward();
    for (std::size_t i = 0; i < 3; ++i) CHECK(a.grad()(i) == Approx(std::exp(a.value()(i)) * (1 + a.value()(i))));
    for (std::size_t i = 0; i < 2; ++i) CHECK(b.grad()(i) == Approx(3 * std::cos(b.value()(i))));
    const double value = la.item();  // readable after its backward, until the pass ends
    CHECK(value == Approx(tg::sum(tg::exp(a) * a).item()));
    CHECK_THROWS_WITH(la.item(), Contains("stale"));  // every graph was released: that op began a new pass
}

TEST_CASE("two losses that share a subgraph need retain_graph, as in PyTorch", "[engine][graphs]")
{
    const Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
    const Var<double> h = tg::exp(w);
    const Var<double> l1 = tg::sum(h);
    const Var<double> l2 = tg::sum(h * h);
    l1.backward();
    CHECK_THROWS_WITH(l2.backward(),
                      StartsWith("backward: this graph was already backpropagated and released") && Contains("'exp'"));

    w.zero_grad();
    const Var<double> g = tg::exp(w);
    const Var<double> m1 = tg::sum(g);
    const Var<double> m2 = tg::sum(g * g);
    m1.backward(tg::retain_graph);
    m2.backward();
    for (std::size_t i = 0; i < 2; ++i) {
        const double e = std::exp(w.value()(i));
        CHECK(w.grad()(i) == Approx(e + 2 * e * e));
    }
}

TEST_CASE("an evaluation kept from before a training step stays usable after it", "[engine][graphs]")
{
    const Var<double> w = tg::parameter(xt::xarray<double>{0.5, 1.5});
    const Var<double> kept = tg::sum(tg::square(w));  // recorded, not backpropagated
    tg::sum(tg::exp(w)).backward();                   // a training step's backward
    const Var<double> next = tg::exp(w);              // recording goes on in the same pass
    CHECK(kept.item() == Approx(2.5));
    w.zero_grad();
    kept.backward();  // its graph was never released
    CHECK(w.grad() == xt::xarray<double>{1.0, 3.0});
    CHECK(next.value()(0) == Approx(std::exp(0.5)));
}

TEST_CASE("evaluations recorded and dropped without NoGradGuard keep the tape and memory flat",
          "[engine][graphs][memory]")
{
    tg::clear_tape<double>();
    const Var<double> w1 = tg::parameter(filled({8, 16}, 0.1, 0.05));
    const Var<double> w2 = tg::parameter(filled({16, 4}, -0.2, 0.03));
    const Var<double> x = tg::constant(filled({32, 8}, 0.3, -0.1));
    auto evaluate = [&] { return tg::sum(tg::matmul(tg::relu(tg::matmul(x, w1)), w2)).item(); };
    const Var<double> early = tg::sigmoid(tg::matmul(x, w1));  // held throughout: entries above it still go
    double total = 0;
    for (int i = 0; i < 1000; ++i) total += evaluate();
    const std::size_t capacity = tg::tape_capacity<double>();
    const std::size_t size = tg::tape_size<double>();
    const std::size_t resident = resident_bytes();
    for (int i = 0; i < 100000; ++i) total += evaluate();
    CHECK(std::isfinite(total));
    CHECK(tg::tape_size<double>() == size);
    CHECK(size <= 2);  // `early`'s two entries
    CHECK(tg::tape_capacity<double>() == capacity);
    // 10^5 evaluations of 5 entries each held 140 MB of tape before entries were reclaimed.
    // AddressSanitizer keeps freed blocks in quarantine, so resident memory there says
    // nothing about the tape (the tape's own checks above still hold).
    if (!kAddressSanitizer) CHECK(resident_bytes() < resident + (std::size_t{4} << 20));
    CHECK(early.value().shape()[0] == 32);
}

TEST_CASE("a leaf changed in place between forward and backward is refused, resizes included", "[engine][version]")
{
    SECTION("a version bump names the op and the input")
    {
        const Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0, 3.0});
        const Var<double> loss = tg::sum(tg::square(w) * 2.0);
        w.mutable_value() *= 2.0;
        CHECK_THROWS_WITH(loss.backward(), StartsWith("backward: input 0 of square") &&
                                               Contains("a leaf of shape [3]") && Contains("modified in place"));
    }
    SECTION("a resize through a reference taken before the op was recorded")
    {
        const Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0, 3.0});
        xt::xarray<double>& value = w.mutable_value();
        const Var<double> loss = tg::sum(tg::square(w) * 2.0);
        value.resize({1000});
        value.fill(1.0);
        CHECK_THROWS_WITH(loss.backward(), StartsWith("backward: input 0 of square, a leaf, was resized in place") &&
                                               Contains("[1000]"));
    }
    SECTION("an optimiser step after backward needs no check and breaks nothing")
    {
        const Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
        for (int step = 0; step < 3; ++step) {
            w.zero_grad();
            tg::sum(tg::square(w)).backward();
            xt::noalias(w.mutable_value()) -= 0.25 * w.grad();
        }
        CHECK(w.value()(1) == Approx(2.0 * 0.125));
    }
}
