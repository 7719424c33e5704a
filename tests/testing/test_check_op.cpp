// The public op-testing kit (tapegrad/testing.hpp): check_op on correct ops, and on ops
// broken on purpose, each of which must fail exactly the check that covers its defect;
// registration from a user's file with TAPEGRAD_REGISTER_OP; and every misuse of the kit
// refused with a tg::Error.

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"
#include "tapegrad/testing.hpp"

using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;
using tg::Var;

namespace {

// y = x^2 with its vjp rule; `factor` is right at 2.
struct KitSquare {
    static constexpr const char* name = "kit_square";
    double factor = 2.0;
    template <class T> void forward(tg::OpContext<T>& c) const { xt::noalias(c.output()) = c.input(0) * c.input(0); }
    template <class T> void vjp(tg::VjpContext<T>& v) const { v.add_grad(0, v.grad_out() * v.input(0) * factor); }
};

// The same op with a fused first-order kernel beside its (right) rule; `kernel_factor` is
// right at 2.
struct KitSquareFused : KitSquare {
    double kernel_factor = 2.0;
    template <class T> void backward(tg::OpContext<T>& c) const
    {
        c.add_grad(0, c.grad_out() * c.input(0) * static_cast<T>(kernel_factor));
    }
};

// A kernel and no rule: first order only.
struct KitSquareKernelOnly {
    static constexpr const char* name = "kit_square";
    template <class T> void forward(tg::OpContext<T>& c) const { xt::noalias(c.output()) = c.input(0) * c.input(0); }
    template <class T> void backward(tg::OpContext<T>& c) const { c.add_grad(0, c.grad_out() * c.input(0) * T(2)); }
};

// Right in float64, off by 1% in float32.
struct KitSquareFloatDrift : KitSquare {
    template <class T> void forward(tg::OpContext<T>& c) const
    {
        const T drift = std::is_same<T, float>::value ? T(1.01) : T(1);
        xt::noalias(c.output()) = c.input(0) * c.input(0) * drift;
    }
};

// The samples of a square op made by `f`, with the reference x^2 (or `wrong_reference`).
template <class F> tg::OpInfo square_info(F f, bool wrong_reference = false)
{
    tg::OpInfo info;
    info.name = "kit_square";
    info.samples = [f, wrong_reference](std::mt19937_64& rng) {
        auto ref = [wrong_reference](const auto& x) {
            return xt::xarray<double>(x[0] * x[0] * (wrong_reference ? 1.5 : 1.0));
        };
        std::vector<tg::OpSample> s;
        s.push_back(tg::make_sample("(3,4)", {tg::sample_uniform(rng, {3, 4}, -2, 2)}, f, ref));
        s.push_back(tg::make_sample("()", {tg::sample_uniform(rng, {}, -2, 2)}, f, ref));
        return s;
    };
    return info;
}

// How kit_scale checks its scale factor, right and in every wrong way.
enum class Check { right, runtime_error, other_name, none };

// y = k x, k > 0.
struct KitScale {
    static constexpr const char* name = "kit_scale";
    double k;
    template <class T> void forward(tg::OpContext<T>& c) const
    {
        xt::noalias(c.output()) = c.input(0) * static_cast<T>(k);
    }
    template <class T> void vjp(tg::VjpContext<T>& v) const { v.add_grad(0, v.grad_out() * k); }
};

template <class T> Var<T> kit_scale(const Var<T>& x, double k, Check check)
{
    if (!(k > 0)) {
        const std::string what = "k must be positive, got " + tg::format_number(k);
        if (check == Check::right) throw tg::Error("kit_scale: " + what);
        if (check == Check::runtime_error) throw std::runtime_error(what);
        if (check == Check::other_name) throw tg::Error("scale: " + what);
    }
    return tg::record(KitScale{k}, x);
}

tg::OpInfo scale_info(Check check, std::string expected = "k must be positive, got -1")
{
    tg::OpInfo info;
    info.name = "kit_scale";
    info.samples = [check](std::mt19937_64& rng) {
        return std::vector<tg::OpSample>{tg::make_sample(
            "(2,3)", {tg::sample_uniform(rng, {2, 3}, -1, 1)},
            [check](const auto& v) { return kit_scale(v[0], 2.5, check); },
            [](const auto& x) { return xt::xarray<double>(2.5 * x[0]); })};
    };
    info.error_inputs = [check, expected] {
        return std::vector<tg::ErrorInput>{tg::make_error_input(
            "negative k", {xt::xarray<double>{1.0, 2.0}},
            [check](const auto& v) { return kit_scale(v[0], -1.0, check); }, expected)};
    };
    return info;
}

// The names of the checks that failed.
std::set<std::string> failed_checks(const tg::testing::CheckReport& r)
{
    std::set<std::string> out;
    for (const auto& c : r.checks) {
        if (c.failed > 0) out.insert(c.check);
    }
    return out;
}

std::string all_lines(const tg::testing::CheckReport& r)
{
    std::string s;
    for (const auto& line : r.failures) s += line + "\n";
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// A user op registered from this file at start-up, as a user's own op file would:
// y = x^3 / 3, dy/dx = x^2, d2y/dx2 = 2x.

namespace kit_test {

struct Cubed {
    static constexpr const char* name = "kit_cubed";
    template <class T> void forward(tg::OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        xt::noalias(c.output()) = x * x * x / T(3);
    }
    template <class T> void vjp(tg::VjpContext<T>& v) const { v.add_grad(0, v.grad_out() * tg::square(v.input(0))); }
};

template <class T> Var<T> kit_cubed(const Var<T>& x, double scale = 1.0)
{
    if (!(scale == 1.0)) throw tg::Error("kit_cubed: scale must be 1, got " + tg::format_number(scale));
    return tg::record(Cubed{}, x);
}

TAPEGRAD_REGISTER_OP(kit_cubed, rng)
{
    auto f = [](const auto& v) { return kit_cubed(v[0]); };
    auto ref = [](const auto& x) { return xt::xarray<double>(x[0] * x[0] * x[0] / 3.0); };
    return {tg::make_sample("(3,4)", {tg::sample_uniform(rng, {3, 4}, -2, 2)}, f, ref),
            tg::make_sample("()", {tg::sample_uniform(rng, {}, -2, 2)}, f, ref),
            tg::make_sample("(0,2) empty", {tg::sample_uniform(rng, {0, 2}, -2, 2)}, f, ref)};
}

TAPEGRAD_REGISTER_ERROR_INPUTS(kit_cubed)
{
    return {tg::make_error_input(
        "scale other than 1", {xt::xarray<double>{1.0}}, [](const auto& v) { return kit_cubed(v[0], 2.0); },
        "scale must be 1, got 2")};
}

}  // namespace kit_test

TEST_CASE("an op registered with TAPEGRAD_REGISTER_OP passes check_op by name", "[testing][check_op]")
{
    const std::size_t before = tg::tape_size<double>();
    const tg::testing::CheckReport r = tg::testing::check_op("kit_cubed");
    INFO(all_lines(r));
    CHECK(r.ok);
    CHECK(static_cast<bool>(r));
    CHECK(r.failures.empty());
    REQUIRE(r.checks.size() == tg::testing::check_names().size());
    for (std::size_t i = 0; i < r.checks.size(); ++i) {
        CHECK(r.checks[i].check == tg::testing::check_names()[i]);
        CHECK(r.checks[i].failed == 0);
    }
    CHECK(r.checks[0].runs == 1);  // the generator, once
    CHECK(r.checks[1].runs == 3);  // three samples with a reference
    CHECK(r.checks.back().check == "error_inputs");
    CHECK(r.checks.back().runs == 1);
    CHECK(tg::tape_size<double>() == before);  // what it recorded is dropped
}

TEST_CASE("check_op runs only the checks asked for", "[testing][check_op]")
{
    tg::testing::CheckOptions o;
    o.checks = {"gradcheck", "error_inputs"};
    const tg::testing::CheckReport r = tg::testing::check_op("kit_cubed", o);
    CHECK(r.ok);
    REQUIRE(r.checks.size() == 3);
    CHECK(r.checks[0].check == "samples");
    CHECK(r.checks[1].check == "gradcheck");
    CHECK(r.checks[1].runs == 3);
    CHECK(r.checks[2].check == "error_inputs");
}

TEST_CASE("check_op passes right ops, by rule, by kernel and by error input", "[testing][check_op]")
{
    CHECK(tg::testing::check_op(square_info([](const auto& v) { return tg::record(KitSquare{}, v[0]); })).ok);
    CHECK(tg::testing::check_op(square_info([](const auto& v) { return tg::record(KitSquareFused{}, v[0]); })).ok);
    const tg::testing::CheckReport r = tg::testing::check_op(scale_info(Check::right));
    INFO(all_lines(r));
    CHECK(r.ok);
}

TEST_CASE("check_op reports a wrong vjp rule in gradcheck, with the element and both values", "[testing][check_op]")
{
    const auto r = tg::testing::check_op(square_info([](const auto& v) {
        KitSquare op;
        op.factor = 1.0;  // the derivative of x^2 is 2x, not x
        return tg::record(op, v[0]);
    }));
    INFO(all_lines(r));
    CHECK_FALSE(r.ok);
    // The rule agrees with itself to second order; only the first-order check sees it.
    CHECK(failed_checks(r) == std::set<std::string>{"gradcheck"});
    REQUIRE(r.failures.size() == 2);  // both samples
    CHECK_THAT(r.failures[0], StartsWith("kit_square: gradcheck on '(3,4)': input 0, element [") &&
                                  Contains("analytic") && Contains("vs numerical"));
    CHECK_THAT(r.failures[1], StartsWith("kit_square: gradcheck on '()': input 0, element []"));
}

TEST_CASE("check_op reports a fused kernel that disagrees with its rule, and nothing else", "[testing][check_op]")
{
    const auto r = tg::testing::check_op(square_info([](const auto& v) {
        KitSquareFused op;
        op.kernel_factor = 2.0 * (1 + 1e-9);  // inside gradcheck's tolerance, not the rule's 1e-12
        return tg::record(op, v[0]);
    }));
    INFO(all_lines(r));
    CHECK(failed_checks(r) == std::set<std::string>{"kernel_vs_rule"});
    REQUIRE_FALSE(r.failures.empty());
    CHECK_THAT(r.failures[0], StartsWith("kit_square: kernel_vs_rule on '(3,4)': input 0, element [") &&
                                  Contains(": kernel ") && Contains(" vs rule "));
}

TEST_CASE("check_op reports an op without a vjp rule in the checks that need one", "[testing][check_op]")
{
    const auto r =
        tg::testing::check_op(square_info([](const auto& v) { return tg::record(KitSquareKernelOnly{}, v[0]); }));
    INFO(all_lines(r));
    CHECK(failed_checks(r) == std::set<std::string>{"gradgradcheck", "kernel_vs_rule"});
    for (const auto& line : r.failures)
        CHECK_THAT(line, Contains("threw tg::Error: backward: op 'kit_square' has no vjp rule"));
}

TEST_CASE("check_op reports a wrong reference value and a float32 drift, each in its check", "[testing][check_op]")
{
    auto right = [](const auto& v) { return tg::record(KitSquare{}, v[0]); };
    const auto wrong_ref = tg::testing::check_op(square_info(right, true));
    INFO(all_lines(wrong_ref));
    CHECK(failed_checks(wrong_ref) == std::set<std::string>{"reference"});
    CHECK_THAT(wrong_ref.failures.at(0),
               StartsWith("kit_square: reference on '(3,4)': element [") && Contains(" vs reference "));

    const auto drift =
        tg::testing::check_op(square_info([](const auto& v) { return tg::record(KitSquareFloatDrift{}, v[0]); }));
    INFO(all_lines(drift));
    CHECK(failed_checks(drift) == std::set<std::string>{"float32"});
    CHECK_THAT(drift.failures.at(0), StartsWith("kit_square: float32 on '(3,4)': value, element [") &&
                                         Contains("float32 ") && Contains(" vs float64 "));
}

TEST_CASE("check_op reports error inputs refused the wrong way, or not at all", "[testing][check_op][error_inputs]")
{
    const auto runtime = tg::testing::check_op(scale_info(Check::runtime_error));
    CHECK(failed_checks(runtime) == std::set<std::string>{"error_inputs"});
    CHECK(runtime.failures ==
          std::vector<std::string>{"kit_scale: error_inputs on 'negative k': float64: threw std::runtime_error instead "
                                   "of a tg::Error: k must be positive, got -1"});

    const auto other = tg::testing::check_op(scale_info(Check::other_name));
    CHECK(other.failures == std::vector<std::string>{
                                "kit_scale: error_inputs on 'negative k': float64: the tg::Error does not start with "
                                "'kit_scale: ': scale: k must be positive, got -1"});

    const auto silent = tg::testing::check_op(scale_info(Check::none));
    CHECK(silent.failures ==
          std::vector<std::string>{"kit_scale: error_inputs on 'negative k': float64: the call did not throw"});

    const auto text = tg::testing::check_op(scale_info(Check::right, "k must be finite"));
    CHECK(text.failures == std::vector<std::string>{
                               "kit_scale: error_inputs on 'negative k': float64: the tg::Error does not contain 'k "
                               "must be finite': kit_scale: k must be positive, got -1"});
    CHECK_FALSE(text.ok);
}

TEST_CASE("check_op reports sample generators that throw, give nothing or repeat a label", "[testing][check_op]")
{
    tg::OpInfo info = square_info([](const auto& v) { return tg::record(KitSquare{}, v[0]); });
    info.samples = [](std::mt19937_64&) -> std::vector<tg::OpSample> { throw std::logic_error("no samples today"); };
    auto r = tg::testing::check_op(info);
    CHECK(r.failures == std::vector<std::string>{
                            "kit_square: samples: the sample generator threw std::logic_error: no samples today"});
    CHECK(r.checks.size() == 1);  // nothing else can run

    info.samples = [](std::mt19937_64&) { return std::vector<tg::OpSample>{}; };
    r = tg::testing::check_op(info);
    CHECK(r.failures == std::vector<std::string>{"kit_square: samples: the sample generator gave no samples"});

    info.samples = [](std::mt19937_64&) {
        auto f = [](const auto& v) { return tg::record(KitSquare{}, v[0]); };
        return std::vector<tg::OpSample>{tg::make_sample("x", {xt::xarray<double>{1.0}}, f),
                                         tg::make_sample("x", {xt::xarray<double>{2.0}}, f)};
    };
    r = tg::testing::check_op(info);
    CHECK(r.failures == std::vector<std::string>{"kit_square: samples on 'x': two samples have this label"});

    info.samples = [](std::mt19937_64&) {
        return std::vector<tg::OpSample>{tg::make_sample("x", {xt::xarray<double>{1.0}},
                                                         [](const auto& v) { return tg::record(KitSquare{}, v[0]); })};
    };
    r = tg::testing::check_op(info);
    CHECK(r.failures == std::vector<std::string>{"kit_square: reference: no sample has a reference value"});
}

TEST_CASE("the kit refuses unknown ops and checks, nameless ops, missing generators and duplicates",
          "[testing][errors]")
{
    CHECK_THROWS_AS(tg::testing::check_op("no_such_op"), tg::Error);
    CHECK_THROWS_WITH(tg::testing::check_op("no_such_op"), Equals("check_op: no op named 'no_such_op' is registered"));
    tg::testing::CheckOptions o;
    o.checks = {"gradcheck", "gradchek"};
    CHECK_THROWS_WITH(tg::testing::check_op("kit_cubed", o),
                      StartsWith("check_op: unknown check 'gradchek' (the checks are samples, reference, gradcheck"));
    CHECK_THROWS_WITH(tg::testing::check_op(tg::OpInfo{}), Equals("check_op: the op has no name"));
    CHECK_THROWS_WITH(tg::testing::check_op(tg::OpInfo{"kit_nothing", nullptr, nullptr}),
                      Equals("check_op: op 'kit_nothing' has no sample generator"));

    CHECK_THROWS_WITH(tg::register_op(tg::OpInfo{"kit_nothing", nullptr, nullptr}),
                      Equals("register_op: op 'kit_nothing' has no sample generator"));
    CHECK_THROWS_WITH(tg::register_op(tg::OpInfo{"", [](std::mt19937_64&) { return std::vector<tg::OpSample>{}; }, {}}),
                      Equals("register_op: the op needs a name"));
    tg::OpInfo again = scale_info(Check::right);
    again.name = "kit_cubed";
    CHECK_THROWS_WITH(tg::register_op(again), Equals("register_op: an op named 'kit_cubed' is already registered"));
    again.name = "matmul";
    CHECK_THROWS_WITH(tg::register_op(again), Equals("register_op: an op named 'matmul' is already registered"));
    const auto n = std::count_if(tg::registered_ops().begin(), tg::registered_ops().end(),
                                 [](const tg::OpInfo& op) { return op.name == "kit_nothing" || op.name.empty(); });
    CHECK(n == 0);  // nothing refused was added
}

TEST_CASE("an op registered at run time is checked by name, failures included", "[testing][check_op]")
{
    // Broken only in its error input, so that the misuse suite, which walks every registered
    // op, still finds it well behaved if it runs in the same process.
    tg::register_op(scale_info(Check::runtime_error));
    const auto r = tg::testing::check_op("kit_scale");
    CHECK(failed_checks(r) == std::set<std::string>{"error_inputs"});
    CHECK_THAT(r.failures.at(0), StartsWith("kit_scale: error_inputs on 'negative k': float64: threw "
                                            "std::runtime_error instead of a tg::Error"));
}
