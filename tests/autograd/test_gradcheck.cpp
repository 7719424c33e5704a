// gradcheck itself: it passes correct gradients, and it finds wrong ones and says where.

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using tg::Var;

namespace {

// y = x^3 with a backward that can be made wrong on purpose.
struct Cube {
    static constexpr const char* name = "cube";
    double factor = 3.0;  // the right factor is 3
    bool skip = false;    // "forget" to propagate at all
    template <class T> void forward(tg::OpContext<T>& c) const
    {
        xt::noalias(c.output()) = c.input(0) * c.input(0) * c.input(0);
    }
    template <class T> void backward(tg::OpContext<T>& c) const
    {
        if (skip) return;
        c.add_grad(0, c.grad_out() * static_cast<T>(factor) * c.input(0) * c.input(0));
    }
};

template <class T> Var<T> cube(const Var<T>& x, double factor = 3.0, bool skip = false)
{
    Cube op;
    op.factor = factor;
    op.skip = skip;
    return tg::record(op, x);
}

// a * b for a: [n], b: [] where the backward hands back a gradient for b shaped like a:
// the engine must sum it down to b's shape.
struct ScaleBy {
    static constexpr const char* name = "scale_by";
    template <class T> void forward(tg::OpContext<T>& c) const { xt::noalias(c.output()) = c.input(0) * c.input(1)(); }
    template <class T> void backward(tg::OpContext<T>& c) const
    {
        c.add_grad(0, c.grad_out() * c.input(1)());
        c.add_grad(1, c.grad_out() * c.input(0));
    }
};

}  // namespace

TEST_CASE("gradcheck passes a composed network and reports small errors", "[gradcheck]")
{
    auto f = [](const std::vector<Var<double>>& v) {
        return tg::mse_loss(tg::sigmoid(tg::matmul(v[0], v[1]) + v[2]), v[3]);
    };
    std::mt19937_64 rng(7);
    const tg::GradcheckResult r =
        tg::gradcheck(f, {tg::sample_uniform(rng, {4, 3}, -1, 1), tg::sample_uniform(rng, {3, 2}, -1, 1),
                          tg::sample_uniform(rng, {2}, -1, 1), tg::sample_uniform(rng, {4, 2}, 0, 1)});
    INFO(r.message);
    CHECK(r.ok);
    CHECK(static_cast<bool>(r));
    CHECK(r.max_abs_error < 1e-8);
    CHECK_THAT(r.message, Catch::StartsWith("gradcheck: ok"));
}

TEST_CASE("gradcheck checks every output element of a non-scalar output", "[gradcheck]")
{
    auto f = [](const std::vector<Var<double>>& v) { return tg::softmax(v[0] * v[1], 1); };
    const tg::GradcheckResult r =
        tg::gradcheck(f, {xt::xarray<double>{{0.1, 0.5, -0.3}, {1.0, 2.0, 0.0}}, xt::xarray<double>{1.5, -1.0, 0.5}});
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("gradcheck finds a wrong backward and says which element and by how much", "[gradcheck]")
{
    auto f = [](const std::vector<Var<double>>& v) { return tg::sum(cube(v[0]) * v[1]); };
    const std::vector<xt::xarray<double>> inputs{xt::xarray<double>{1.0, 2.0}, xt::xarray<double>{1.0, 1.0}};
    CHECK(tg::gradcheck(f, inputs).ok);

    auto wrong = [](const std::vector<Var<double>>& v) { return tg::sum(cube(v[0], 2.0) * v[1]); };
    const tg::GradcheckResult r = tg::gradcheck(wrong, inputs);
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK(r.input == 0);
    CHECK(r.input_index == std::vector<std::size_t>{1});  // 3 * 2^2 = 12 vs 2 * 2^2 = 8: the larger error
    CHECK(r.analytic == Approx(8.0));
    CHECK(r.numerical == Approx(12.0));
    CHECK(r.max_abs_error == Approx(4.0));
    CHECK_THAT(r.message, Catch::Contains("input 0, element [1]") && Catch::Contains("analytic 8") &&
                              Catch::Contains("numerical 12"));
}

TEST_CASE("gradcheck fails when the tape's gradient is all zeros and the numerical one is not", "[gradcheck]")
{
    auto f = [](const std::vector<Var<double>>& v) { return cube(v[0], 3.0, true); };
    const tg::GradcheckResult r = tg::gradcheck(f, {xt::xarray<double>{0.5, -1.5}});
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.message, Catch::Contains("all zeros"));
}

TEST_CASE("a user op whose backward returns a broadcast gradient is reduced by the engine", "[gradcheck][extend]")
{
    auto f = [](const std::vector<Var<double>>& v) { return tg::record(ScaleBy{}, v[0], v[1]); };
    const tg::GradcheckResult r = tg::gradcheck(f, {xt::xarray<double>{1.0, -2.0, 3.0}, xt::xarray<double>(0.7)});
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("gradcheck works in float32 with a float-sized step", "[gradcheck][float32]")
{
    auto f = [](const std::vector<Var<float>>& v) { return tg::sum(tg::tanh(v[0]) * v[1]); };
    tg::GradcheckOptions o;
    o.eps = 1e-2;
    o.atol = 1e-3;
    o.rtol = 1e-2;
    const tg::GradcheckResult r = tg::gradcheck(f, {xt::xarray<float>{0.3f, -0.2f}, xt::xarray<float>{1.0f, 2.0f}}, o);
    INFO(r.message);
    CHECK(r.ok);
}

TEST_CASE("a user-registered op is picked up by the registry", "[gradcheck][extend]")
{
    tg::register_op({"cube_test_op", [](std::mt19937_64& rng) {
                         std::vector<tg::OpSample> s;
                         s.push_back(tg::make_sample("(3,)", {tg::sample_uniform(rng, {3}, -1, 1)},
                                                     [](const auto& v) { return cube(v[0]); }));
                         return s;
                     }});
    const auto& ops = tg::registered_ops();
    auto it = std::find_if(ops.begin(), ops.end(), [](const tg::OpInfo& o) { return o.name == "cube_test_op"; });
    REQUIRE(it != ops.end());
    std::mt19937_64 rng(1);
    for (const auto& s : it->samples(rng)) CHECK(tg::gradcheck(s.f64, s.inputs).ok);
}
