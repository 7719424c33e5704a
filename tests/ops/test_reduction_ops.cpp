// The reductions max, min, amax, amin, argmax, argmin, logsumexp, var, norm and cumsum at
// the points the generic tests keep away from: ties, NaN and inf, zero-size inputs, the
// kinks of the norms, and bad input. The expected values are PyTorch's (1.13, float64),
// each noted where it is not obvious; both gradient paths are checked at each point: the
// fused first-order kernel and the vjp rule (what create_graph runs).

#include <cmath>
#include <limits>

#include <catch2/catch.hpp>
#include <xtensor/xio.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::StartsWith;
using tg::Var;
using Array = xt::xarray<double>;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Equal shapes, and equal elements up to 1e-12 relative, with NaN equal to NaN and each
// infinity to itself.
bool same(const Array& got, const Array& want)
{
    if (got.shape() != want.shape()) return false;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double a = got.data()[i], b = want.data()[i];
        if (std::isnan(b) ? !std::isnan(a) : std::isinf(b) ? a != b : std::abs(a - b) > 1e-12 * (1 + std::abs(b)))
            return false;
    }
    return true;
}

// The gradient of sum(seed * f(x)) at x (seed: ones when not given), by the fused kernel
// and by the vjp rule; both must agree with `want`.
template <class F> void check_grad_seeded(F f, const Array& x, const Array& want, const Array* seed)
{
    Var<double> p = tg::parameter(x);
    Var<double> y = f(p);
    const Var<double> s = tg::constant(seed != nullptr ? *seed : Array(xt::ones<double>(y.shape())));
    const Array by_kernel = tg::grad<double>({y}, {p}, {s}, {false, true, false})[0].value();
    const Array by_rule = tg::grad<double>({y}, {p}, {s}, {true, true, false})[0].value();
    tg::end_pass<double>();
    INFO("x = " << x << "\nkernel: " << by_kernel << "\nrule: " << by_rule << "\nwant: " << want);
    CHECK(same(by_kernel, want));
    CHECK(same(by_rule, want));
}

template <class F> void check_grad(F f, const Array& x, const Array& want)
{
    check_grad_seeded(f, x, want, nullptr);
}

template <class F> void check_grad(F f, const Array& x, const Array& want, const Array& seed)
{
    check_grad_seeded(f, x, want, &seed);
}

// An array of the given shape (xtensor's nested braces are ambiguous for one inner list).
Array shaped(Array a, const std::vector<std::size_t>& shape)
{
    a.reshape(shape);
    return a;
}

Array value(const Var<double>& y)
{
    return y.value();
}

}  // namespace

TEST_CASE("max and min along an axis take the first extremum, and only it gets the gradient", "[ops][reduction]")
{
    const Array x{{1.0, 3.0, 3.0}, {2.0, 2.0, 1.0}};
    CHECK(same(value(tg::max(tg::constant(x), 1)), Array{3.0, 2.0}));
    CHECK(same(value(tg::min(tg::constant(x), 1)), Array{1.0, 1.0}));
    check_grad([](const Var<double>& v) { return tg::max(v, 1); }, x, Array{{0, 1, 0}, {1, 0, 0}});
    check_grad([](const Var<double>& v) { return tg::min(v, -1); }, x, Array{{1, 0, 0}, {0, 0, 1}});
    check_grad([](const Var<double>& v) { return tg::max(v, 0, true); }, x, Array{{0, 1, 1}, {1, 0, 0}});
    check_grad([](const Var<double>& v) { return tg::min(v, 0, true); }, x, Array{{1, 0, 0}, {0, 1, 1}});
    CHECK(tg::max(tg::constant(x), 0, true).shape() == std::vector<std::size_t>{1, 3});
    // torch.min(torch.tensor([2., 1., 1., 3.]), 0) is (1., 1): the first of the tied minima.
    check_grad([](const Var<double>& v) { return tg::min(v, 0); }, Array{2.0, 1.0, 1.0, 3.0}, Array{0, 1, 0, 0});
    // Infinite ties too: torch.max([inf, inf, 1], 0) sends the gradient to index 0.
    check_grad([](const Var<double>& v) { return tg::max(v, 0); }, Array{kInf, kInf, 1.0}, Array{1, 0, 0});
    CHECK(same(value(tg::max(tg::constant(Array{-kInf, -kInf}), 0)), Array(-kInf)));
    check_grad([](const Var<double>& v) { return tg::max(v, 0); }, Array{-kInf, -kInf}, Array{1, 0});
}

TEST_CASE("max and min of a rank-0 Var along axis 0 or -1 are the Var itself, as PyTorch", "[ops][reduction]")
{
    CHECK(same(value(tg::max(tg::constant(Array(3.0)), 0)), Array(3.0)));
    CHECK(tg::min(tg::constant(Array(3.0)), -1, true).dim() == 0);
    check_grad([](const Var<double>& v) { return tg::max(v, -1, true); }, Array(3.0), Array(1.0));
    CHECK((tg::argmax(tg::constant(Array(3.0)), 0) == xt::xarray<std::int64_t>(0)));
    CHECK(tg::argmin(tg::constant(Array(3.0)), -1).dimension() == 0);
}

TEST_CASE("amax and amin split the gradient evenly among ties", "[ops][reduction]")
{
    const Array x{{1.0, 3.0, 3.0}, {2.0, 2.0, 1.0}};
    CHECK(tg::amax(tg::constant(x)).item() == 3.0);
    check_grad([](const Var<double>& v) { return tg::amax(v); }, x, Array{{0, 0.5, 0.5}, {0, 0, 0}});
    check_grad([](const Var<double>& v) { return tg::amin(v); }, x, Array{{0.5, 0, 0}, {0, 0, 0.5}});
    // torch.amin(torch.tensor([[1., 1.], [0., 1.]])): one minimum takes it all.
    check_grad([](const Var<double>& v) { return tg::amin(v); }, Array{{1, 1}, {0, 1}}, Array{{0, 0}, {1, 0}});
    check_grad([](const Var<double>& v) { return tg::amax(v); }, Array{kInf, kInf, 1.0}, Array{0.5, 0.5, 0});
    check_grad([](const Var<double>& v) { return tg::amax(v); }, Array(5.0), Array(1.0));
    check_grad([](const Var<double>& v) { return tg::amax(v) * 3.0; }, Array{2.0, 2.0, 2.0, 2.0},
               Array{0.75, 0.75, 0.75, 0.75});
}

TEST_CASE("a NaN is the extremum: max, min, argmax and argmin pick the first NaN", "[ops][reduction]")
{
    const Array x{{1.0, kNaN, 3.0, kNaN}, {2.0, 2.0, 1.0, 0.0}};
    // torch.max(x, 1) is ([nan, 2], [1, 0]); torch.min(x, 1) is ([nan, 0], [1, 3]).
    CHECK(same(value(tg::max(tg::constant(x), 1)), Array{kNaN, 2.0}));
    CHECK(same(value(tg::min(tg::constant(x), 1)), Array{kNaN, 0.0}));
    check_grad([](const Var<double>& v) { return tg::max(v, 1); }, x, Array{{0, 1, 0, 0}, {1, 0, 0, 0}});
    check_grad([](const Var<double>& v) { return tg::min(v, 1); }, x, Array{{0, 1, 0, 0}, {0, 0, 0, 1}});
    CHECK((tg::argmax(tg::constant(x), 1) == xt::xarray<std::int64_t>{1, 0}));
    CHECK((tg::argmin(tg::constant(x), 1) == xt::xarray<std::int64_t>{1, 3}));
    CHECK((tg::argmax(tg::constant(Array{kNaN, 5.0}), 0) == xt::xarray<std::int64_t>(0)));
    // torch.amax of a Var holding a NaN is NaN, and every element's gradient NaN (0 / 0).
    CHECK(std::isnan(tg::amax(tg::constant(Array{1.0, kNaN, 3.0})).item()));
    CHECK(std::isnan(tg::amin(tg::constant(Array{kNaN, 1.0})).item()));
    check_grad([](const Var<double>& v) { return tg::amax(v); }, Array{1.0, kNaN, 3.0, kNaN},
               Array{kNaN, kNaN, kNaN, kNaN});
}

TEST_CASE("argmax and argmin return the first index of the extremum along the axis", "[ops][reduction]")
{
    using I = xt::xarray<std::int64_t>;
    CHECK((tg::argmin(tg::constant(Array{2.0, 1.0, 1.0, 3.0}), 0) == I(1)));
    CHECK((tg::argmax(tg::constant(Array{{2.0, 5.0, 5.0}, {7.0, 7.0, 0.0}}), 1) == I{1, 0}));
    CHECK((tg::argmax(tg::constant(Array{{2.0, 5.0, 5.0}, {7.0, 7.0, 0.0}}), -2) == I{1, 1, 0}));
    CHECK((tg::argmin(tg::constant(Array{{2.0, 5.0, 5.0}, {7.0, 7.0, 0.0}}), 0) == I{0, 0, 1}));
    const Array cube{{{1, 9}, {4, 4}}, {{0, -1}, {8, 2}}};  // [2, 2, 2]
    CHECK((tg::argmax(tg::constant(cube), 1) == I{{1, 0}, {1, 1}}));
    CHECK((tg::argmin(tg::constant(cube), -1) == I{{0, 0}, {1, 1}}));
    CHECK((tg::argmax(tg::constant(cube), 0) == I{{0, 0}, {1, 0}}));
    CHECK((tg::argmax(tg::constant(Array{-kInf, -kInf}), 0) == I(0)));
    CHECK((tg::argmax(tg::constant(Array{1.0, kInf, kInf}), 0) == I(1)));
    // float works the same way, and the result records nothing.
    CHECK((tg::argmax(tg::parameter(xt::xarray<float>{0.5f, 2.5f, 2.5f}), 0) == I(1)));
}

TEST_CASE("logsumexp is stable at any magnitude and treats inf as PyTorch", "[ops][reduction]")
{
    CHECK(same(value(tg::logsumexp(tg::constant(Array{1000.0, 1000.0}), 0)), Array(1000.0 + std::log(2.0))));
    CHECK(same(value(tg::logsumexp(tg::constant(Array{-1000.0, -1000.0}), 0)), Array(-1000.0 + std::log(2.0))));
    CHECK(same(value(tg::logsumexp(tg::constant(Array{1e308, 1e308}), 0)), Array(1e308)));
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, 0); }, Array{1000.0, 1000.0}, Array{0.5, 0.5});
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, -1); }, shaped({-1000.0, -1000.0}, {1, 2}),
               shaped({0.5, 0.5}, {1, 2}));
    // torch.logsumexp: [1, inf, 2] is inf with gradient [0, nan, 0]; all -inf is -inf with a
    // NaN gradient; [inf, -inf] is inf with gradient [nan, 0]; a NaN makes everything NaN.
    CHECK(same(value(tg::logsumexp(tg::constant(Array{1.0, kInf, 2.0}), 0)), Array(kInf)));
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, 0); }, Array{1.0, kInf, 2.0}, Array{0, kNaN, 0});
    CHECK(same(value(tg::logsumexp(tg::constant(Array{-kInf, -kInf}), 0)), Array(-kInf)));
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, 0); }, Array{-kInf, -kInf}, Array{kNaN, kNaN});
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, 0); }, Array{kInf, -kInf}, Array{kNaN, 0});
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, 0); }, Array{-kInf, 0.0}, Array{0, 1});
    CHECK(same(value(tg::logsumexp(tg::constant(Array{1.0, kNaN}), 0)), Array(kNaN)));
    check_grad([](const Var<double>& v) { return tg::logsumexp(v, 0); }, Array{1.0, kNaN}, Array{kNaN, kNaN});
    // keepdim and a rank-0 input
    CHECK(tg::logsumexp(tg::constant(shaped({1.0, 2.0}, {1, 2})), 1, true).shape() == std::vector<std::size_t>{1, 1});
    CHECK(same(value(tg::logsumexp(tg::constant(Array(2.0)), -1, true)), Array(2.0)));
}

TEST_CASE("var divides by max(0, n - correction): inf or NaN at n - correction <= 0, as PyTorch", "[ops][reduction]")
{
    const Array x{1.0, 2.0, 3.0, 4.0};
    CHECK(same(value(tg::var(tg::constant(x), 0)), Array(5.0 / 3.0)));
    CHECK(same(value(tg::var(tg::constant(x), 0, 0)), Array(1.25)));
    CHECK(same(value(tg::var(tg::constant(x), 0, 3)), Array(5.0)));
    check_grad([](const Var<double>& v) { return tg::var(v, 0); }, x, Array{-1.0, -1.0 / 3, 1.0 / 3, 1.0});
    // A large common offset costs nothing (the mean is taken first).
    CHECK(same(value(tg::var(tg::constant(Array(x + 1e9)), 0)), Array(5.0 / 3.0)));
    // torch.var(torch.tensor([[2.], [3.]]), 1) is [nan, nan] with NaN gradients (0 / 0).
    CHECK(same(value(tg::var(tg::constant(shaped({2.0, 3.0}, {2, 1})), 1)), Array{kNaN, kNaN}));
    check_grad([](const Var<double>& v) { return tg::var(v, 1); }, shaped({2.0, 3.0}, {2, 1}),
               shaped({kNaN, kNaN}, {2, 1}));
    // torch.var(torch.tensor([2., 3.]), 0, correction=2) is inf with gradient [-inf, inf].
    CHECK(same(value(tg::var(tg::constant(Array{2.0, 3.0}), 0, 2)), Array(kInf)));
    check_grad([](const Var<double>& v) { return tg::var(v, 0, 2); }, Array{2.0, 3.0}, Array{-kInf, kInf});
    // correction 3 > n: PyTorch's value is inf as here, but its gradient divides by the
    // negative n - correction ([1, -1]); here it stays the clamped divisor's, as the value.
    CHECK(same(value(tg::var(tg::constant(Array{2.0, 3.0}), 0, 3)), Array(kInf)));
    check_grad([](const Var<double>& v) { return tg::var(v, 0, 3); }, Array{2.0, 3.0}, Array{-kInf, kInf});
    // A rank-0 Var: torch.var(torch.tensor(2.), 0) is nan, with correction=0 it is 0.
    CHECK(same(value(tg::var(tg::constant(Array(2.0)), 0)), Array(kNaN)));
    CHECK(same(value(tg::var(tg::constant(Array(2.0)), -1, 0, true)), Array(0.0)));
    check_grad([](const Var<double>& v) { return tg::var(v, 0, 0); }, Array(2.0), Array(0.0));
    CHECK(same(value(tg::var(tg::constant(shaped({1.0, 3.0}, {1, 2})), 1, 1, true)), shaped({2.0}, {1, 1})));
}

TEST_CASE("norm at zero has PyTorch's zero subgradient for every p", "[ops][reduction][norm]")
{
    // torch.linalg.vector_norm(torch.tensor([0., 3., -4., 0.]), p) and its gradient.
    const Array x{0.0, 3.0, -4.0, 0.0};
    struct Case {
        double p, y;
        Array g;
    };
    const std::vector<Case> cases = {
        {1.0, 7.0, {0, 1, -1, 0}},
        {2.0, 5.0, {0, 0.6, -0.8, 0}},
        {0.5, 13.928203230275509, {0, 2.154700538379252, -1.8660254037844386, 0}},
        {1.5, 5.584250376480029, {0, 0.7329564758289748, -0.8463452372482761, 0}},
        {3.0, 4.497941445275415, {0, 0.4448513517305356, -0.7908468475209521, 0}},
        {kInf, 4.0, {0, 0, -1, 0}},
    };
    for (const auto& c : cases) {
        INFO("p = " << c.p);
        CHECK(same(value(tg::norm(tg::constant(x), c.p)), Array(c.y)));
        check_grad([p = c.p](const Var<double>& v) { return tg::norm(v, p); }, x, c.g);
        check_grad([p = c.p](const Var<double>& v) { return tg::norm(v, p, 0); }, x, c.g);
        // All zeros: the norm is 0 and so is its gradient (PyTorch's subgradient).
        CHECK(same(value(tg::norm(tg::constant(Array{0.0, 0.0}), c.p)), Array(0.0)));
        check_grad([p = c.p](const Var<double>& v) { return tg::norm(v, p); }, Array{0.0, 0.0}, Array{0.0, 0.0});
        // Along an axis: a zero row gets 0, the other its usual gradient.
        const double row = c.p == kInf ? 4.0 : std::pow(std::pow(3.0, c.p) + std::pow(4.0, c.p), 1 / c.p);
        const Array g34 = c.p == 1.0    ? Array{1, 1}
                          : c.p == kInf ? Array{0, 1}
                                        : Array(xt::pow(Array{3, 4} / row, c.p - 1));
        check_grad([p = c.p](const Var<double>& v) { return tg::norm(v, p, -1, true); }, Array{{0.0, 0.0}, {3.0, 4.0}},
                   Array{{0.0, 0.0}, {g34(0), g34(1)}});
    }
}

TEST_CASE("norm's second derivatives match PyTorch's off zero and stay finite at zero", "[ops][reduction][norm]")
{
    // d/dx sum(g * g) for g = d norm(x, p) / dx at x = [0, 3, -4, 0]: PyTorch's values at the
    // non-zero elements; at the zeros PyTorch gives NaN for p = 0.5 and 1.5 (0 * inf in its
    // double backward) where the masked rule here gives 0, and 0 for p = 2 and 3 as here.
    struct Case {
        double p;
        Array h;
    };
    const std::vector<Case> cases = {
        {2.0, {0, 0, 0, 0}},
        {0.5, {0, -0.29066948930938197, -0.21800211698203686, 0}},
        {1.5, {0, 0.0145445483063045, 0.010908411229728354, 0}},
        {3.0, {0, -0.06185657830884006, -0.046392433731630156, 0}},
    };
    for (const auto& c : cases) {
        INFO("p = " << c.p);
        Var<double> x = tg::parameter(Array{0.0, 3.0, -4.0, 0.0});
        const Var<double> g = tg::grad<double>({tg::norm(x, c.p)}, {x}, {}, {true, true, false})[0];
        const Array h = tg::grad<double>({tg::sum(g * g)}, {x})[0].value();
        tg::end_pass<double>();
        INFO("h = " << h);
        CHECK(xt::allclose(h, c.h, 1e-12, 1e-15));
        // All zeros: PyTorch's second derivative is NaN for p = 2, 0.5 and 1.5; here 0.
        Var<double> z = tg::parameter(Array{0.0, 0.0});
        const Var<double> gz = tg::grad<double>({tg::norm(z, c.p)}, {z}, {}, {true, true, false})[0];
        const Array hz = tg::grad<double>({tg::sum(gz * gz)}, {z}, {}, {false, false, true})[0].value();
        tg::end_pass<double>();
        CHECK(same(hz, Array{0.0, 0.0}));
    }
}

TEST_CASE("norm's ties, NaN, inf and large values", "[ops][reduction][norm]")
{
    // The inf-norm's tied maxima of |x| share the gradient, with their signs.
    check_grad([](const Var<double>& v) { return tg::norm(v, kInf); }, Array{3.0, -3.0, 1.0}, Array{0.5, -0.5, 0});
    // torch: the 2-norm of [3, nan, 1] is nan with an all-NaN gradient; its inf-norm is nan
    // and the gradient 0 (sign(NaN) is 0).
    CHECK(std::isnan(tg::norm(tg::constant(Array{3.0, kNaN, 1.0})).item()));
    check_grad([](const Var<double>& v) { return tg::norm(v); }, Array{3.0, kNaN, 1.0}, Array{kNaN, kNaN, kNaN});
    CHECK(std::isnan(tg::norm(tg::constant(Array{3.0, kNaN, 1.0}), kInf).item()));
    check_grad([](const Var<double>& v) { return tg::norm(v, kInf); }, Array{3.0, kNaN, 1.0}, Array{0, 0, 0});
    // torch: the 2-norm of [inf, 1] is inf, gradient [nan, 0].
    CHECK(tg::norm(tg::constant(Array{kInf, 1.0})).item() == kInf);
    check_grad([](const Var<double>& v) { return tg::norm(v); }, Array{kInf, 1.0}, Array{kNaN, 0});
    // Scaled by the largest |x|: no overflow or underflow (PyTorch gives inf and 0 here).
    CHECK(same(value(tg::norm(tg::constant(Array{1e200, 1e200}))), Array(std::sqrt(2.0) * 1e200)));
    CHECK(same(value(tg::norm(tg::constant(Array{1e-200, 1e-200}))), Array(std::sqrt(2.0) * 1e-200)));
    CHECK(same(value(tg::norm(tg::constant(Array{3e120, -4e120}), 3.0)), Array(std::cbrt(27.0 + 64.0) * 1e120)));
    check_grad([](const Var<double>& v) { return tg::norm(v); }, Array{1e200, 1e200},
               Array{std::sqrt(0.5), std::sqrt(0.5)});
    // Along an axis of a rank-0 Var: |x|.
    CHECK(same(value(tg::norm(tg::constant(Array(-3.0)), 2, 0)), Array(3.0)));
    CHECK(same(value(tg::norm(tg::constant(Array{{1.0, 2.0}, {3.0, 4.0}}), 2, -1, true)),
               shaped({std::sqrt(5.0), 5.0}, {2, 1})));
}

TEST_CASE("cumsum adds up along the axis and its gradient adds up from the other end", "[ops][reduction]")
{
    CHECK(same(value(tg::cumsum(tg::constant(Array{1.0, 2.0, 3.0}), 0)), Array{1.0, 3.0, 6.0}));
    check_grad([](const Var<double>& v) { return tg::cumsum(v, 0); }, Array{1.0, 2.0, 3.0}, Array{3.0, 2.0, 1.0});
    const Array x{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
    CHECK(same(value(tg::cumsum(tg::constant(x), 0)), Array{{1, 2, 3}, {5, 7, 9}}));
    CHECK(same(value(tg::cumsum(tg::constant(x), -1)), Array{{1, 3, 6}, {4, 9, 15}}));
    check_grad([](const Var<double>& v) { return tg::cumsum(v, -1); }, x, Array{{6, 5, 3}, {15, 11, 6}}, x);
    // The reversed sum is exact where total - cumsum would cancel.
    // torch (flip, cumsum, flip) gives [1, 0, -1e20] for this seed; total - cumsum + seed gives 0 first.
    check_grad([](const Var<double>& v) { return tg::cumsum(v, 0); }, Array{0.0, 0.0, 0.0}, Array{1.0, 0.0, -1e20},
               Array{1.0, 1e20, -1e20});
    CHECK(same(value(tg::cumsum(tg::constant(Array{1.0, kInf, -kInf}), 0)), Array{1.0, kInf, kNaN}));
    CHECK(same(value(tg::cumsum(tg::constant(Array(2.0)), -1)), Array(2.0)));
    check_grad([](const Var<double>& v) { return tg::cumsum(v, 0); }, Array(2.0), Array(1.0));
}

TEST_CASE("reductions of zero-size inputs follow PyTorch", "[ops][reduction][zero]")
{
    const Array e = xt::zeros<double>({2, 0, 3});
    // Along a non-empty axis the result is empty too.
    CHECK(tg::max(tg::constant(e), 2).shape() == std::vector<std::size_t>{2, 0});
    CHECK(tg::min(tg::constant(e), 0, true).shape() == std::vector<std::size_t>{1, 0, 3});
    CHECK(tg::argmax(tg::constant(e), 0).shape() == std::vector<std::size_t>{0, 3});
    CHECK(tg::argmin(tg::constant(Array(xt::zeros<double>({0, 3}))), 1).shape() == std::vector<std::size_t>{0});
    // Along the empty axis: the reductions with an identity give it (torch: logsumexp -inf,
    // var NaN (0 / 0), norm 0, cumsum an empty result), those without refuse (below).
    CHECK(same(value(tg::logsumexp(tg::constant(e), 1)), Array(xt::ones<double>({2, 3}) * -kInf)));
    CHECK(same(value(tg::var(tg::constant(e), 1)), Array(xt::ones<double>({2, 3}) * kNaN)));
    CHECK(same(value(tg::var(tg::constant(e), 1, 0, true)), Array(xt::ones<double>({2, 1, 3}) * kNaN)));
    for (const double p : {1.0, 2.0, 0.5, 3.0, kInf}) {
        INFO("p = " << p);
        CHECK(same(value(tg::norm(tg::constant(e), p, 1)), Array(xt::zeros<double>({2, 3}))));
        CHECK(same(value(tg::norm(tg::constant(e), p)), Array(0.0)));
    }
    CHECK(tg::cumsum(tg::constant(e), 1).shape() == std::vector<std::size_t>{2, 0, 3});
    // Gradients of an empty input are empty, through both paths.
    for (int which = 0; which < 6; ++which) {
        INFO("op " << which);
        check_grad(
            [which](const Var<double>& v) {
                switch (which) {
                case 0:
                    return tg::max(v, 2);
                case 1:
                    return tg::logsumexp(v, 1);
                case 2:
                    return tg::var(v, 1, 0);
                case 3:
                    return tg::norm(v, 2.0, 1);
                case 4:
                    return tg::norm(v, 3.0);
                default:
                    return tg::cumsum(v, 1);
                }
            },
            e, e);
    }
}

TEST_CASE("reductions refuse bad axes, empty axes without identity and bad p, naming the op",
          "[ops][reduction][errors]")
{
    const Var<double> x = tg::parameter(Array(xt::zeros<double>({2, 3})));
    const Var<double> s = tg::parameter(Array(1.0));
    const Var<double> e = tg::parameter(Array(xt::zeros<double>({2, 0, 3})));
    CHECK_THROWS_WITH(tg::max(x, 2), StartsWith("max: axis 2 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::min(x, -3), StartsWith("min: axis -3 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::argmax(x, 2), StartsWith("argmax: axis 2 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::argmin(x, -3), StartsWith("argmin: axis -3 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::logsumexp(x, 5), StartsWith("logsumexp: axis 5 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::var(x, -4), StartsWith("var: axis -4 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::norm(x, 2.0, 2), StartsWith("norm: axis 2 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::cumsum(x, 2), StartsWith("cumsum: axis 2 is out of range for shape [2, 3]"));
    CHECK_THROWS_WITH(tg::max(s, 1),
                      StartsWith("max: axis 1 is out of range for shape [] (a rank-0 Var takes axis 0 or -1)"));
    CHECK_THROWS_WITH(tg::cumsum(s, -2), StartsWith("cumsum: axis -2 is out of range for shape []"));
    CHECK_THROWS_WITH(tg::argmax(s, 1), StartsWith("argmax: axis 1 is out of range for shape []"));
    // torch: "max(): Expected reduction dim 1 to have non-zero size."
    CHECK_THROWS_WITH(tg::max(e, 1),
                      StartsWith("max: cannot reduce over axis 1 of size 0 (shape [2, 0, 3]): the reduction has no "
                                 "identity"));
    CHECK_THROWS_WITH(tg::min(e, -2), StartsWith("min: cannot reduce over axis -2 of size 0 (shape [2, 0, 3])"));
    CHECK_THROWS_WITH(tg::argmax(e, 1), StartsWith("argmax: cannot reduce over axis 1 of size 0 (shape [2, 0, 3])"));
    CHECK_THROWS_WITH(tg::argmin(e, 1), StartsWith("argmin: cannot reduce over axis 1 of size 0 (shape [2, 0, 3])"));
    CHECK_THROWS_WITH(tg::amax(e), StartsWith("amax: cannot reduce an empty Var of shape [2, 0, 3]: the reduction "
                                              "has no identity"));
    CHECK_THROWS_WITH(tg::amin(e), StartsWith("amin: cannot reduce an empty Var of shape [2, 0, 3]"));
    CHECK_THROWS_WITH(tg::norm(x, -1.0), StartsWith("norm: p must be positive (or inf for the max norm), got -1"));
    CHECK_THROWS_WITH(tg::norm(x, 0.0, 1), StartsWith("norm: p must be positive (or inf for the max norm), got 0"));
    CHECK_THROWS_WITH(tg::norm(x, kNaN), StartsWith("norm: p must be positive (or inf for the max norm), got nan"));
    CHECK_THROWS_WITH(tg::norm(x, -kInf), StartsWith("norm: p must be positive"));
    // An undefined Var is reported under the op's name.
    const Var<double> undefined;
    CHECK_THROWS_WITH(tg::max(undefined, 0), StartsWith("max: the Var is undefined"));
    CHECK_THROWS_WITH(tg::amin(undefined), StartsWith("amin: the Var is undefined"));
    CHECK_THROWS_WITH(tg::argmax(undefined, 0), StartsWith("argmax: the Var is undefined"));
    CHECK_THROWS_WITH(tg::logsumexp(undefined, 0), StartsWith("logsumexp: the Var is undefined"));
    CHECK_THROWS_WITH(tg::var(undefined, 0), StartsWith("var: the Var is undefined"));
    CHECK_THROWS_WITH(tg::norm(undefined), StartsWith("norm: the Var is undefined"));
    CHECK_THROWS_WITH(tg::norm(undefined, 1.0, 0), StartsWith("norm: the Var is undefined"));
    CHECK_THROWS_WITH(tg::cumsum(undefined, 0), StartsWith("cumsum: the Var is undefined"));
}
