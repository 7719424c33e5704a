// The generic op tests: every registered op, over every sample its registration gives
// (broadcasting pairs, size-1 dims, rank-0 scalars, transposed inputs), is checked against
// its reference forward, gradchecked and gradgradchecked in float64, its fused first-order
// kernel compared with its vjp rule, checked for gradient shapes and retain_graph
// accumulation, and compared in float32 against float64. A new op is covered the moment
// it is registered.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

namespace {

constexpr std::uint64_t kSeed = 20261124;

std::vector<tg::Var<double>> params_of(const std::vector<xt::xarray<double>>& xs)
{
    std::vector<tg::Var<double>> ps;
    for (const auto& x : xs) ps.push_back(tg::parameter(x));
    return ps;
}

tg::GradcheckOptions tight()
{
    tg::GradcheckOptions opt;
    opt.eps = 1e-6;
    opt.atol = 1e-8;
    opt.rtol = 1e-6;
    return opt;
}

}  // namespace

// |a - b| <= atol + rtol |b| elementwise, NaN equal to NaN. A plain loop over equal shapes:
// xtensor's steppers offset the null data pointer of an empty array, which UBSan reports.
static bool all_close(const xt::xarray<double>& a, const xt::xarray<double>& b, double rtol, double atol)
{
    if (a.size() != b.size()) return false;
    for (std::size_t k = 0; k < a.size(); ++k) {
        const double u = a.data()[k], w = b.data()[k];
        if (std::isnan(u) && std::isnan(w)) continue;
        if (u == w) continue;  // equal infinities
        if (!(std::abs(u - w) <= atol + rtol * std::abs(w))) return false;
    }
    return true;
}

TEST_CASE("every registered op computes its reference forward value", "[ops][forward]")
{
    std::mt19937_64 rng(kSeed + 4);
    for (const auto& info : tg::registered_ops()) {
        std::size_t with_reference = 0;
        for (const auto& s : info.samples(rng)) {
            if (!s.reference) continue;
            ++with_reference;
            INFO(info.name << " " << s.label << " (seed " << kSeed + 4 << ")");
            std::vector<tg::Var<double>> cs;
            for (const auto& x : s.inputs) cs.push_back(tg::constant(x));
            const xt::xarray<double> y = s.f64(cs).value();
            const xt::xarray<double> want = s.reference(s.inputs);
            REQUIRE(y.shape() == want.shape());
            CHECK(all_close(y, want, 1e-12, 1e-12));  // NaN where the reference has NaN
        }
        INFO(info.name << " has no sample with a reference forward value");
        CHECK(with_reference > 0);
    }
}

// Runs check(result of checker) in a section of its own for every sample of every op.
template <class Checker> void check_every_sample(const char* what, Checker checker)
{
    std::mt19937_64 rng(kSeed);
    std::size_t checked = 0;
    for (const auto& info : tg::registered_ops()) {
        for (const auto& s : info.samples(rng)) {
            DYNAMIC_SECTION(info.name << " " << s.label)
            {
                INFO("seed " << kSeed);
                tg::GradcheckResult r;
                try {
                    r = checker(s);
                } catch (const tg::Error& e) {
                    FAIL(info.name << ": " << what << " threw: " << e.what());
                }
                INFO(r.message);
                CHECK(r.ok);
            }
            ++checked;
        }
    }
    CHECK(checked > 100);
}

TEST_CASE("every registered op passes gradcheck in float64 at tight tolerance", "[ops][gradcheck]")
{
    check_every_sample("gradcheck", [](const tg::OpSample& s) { return tg::gradcheck(s.f64, s.inputs, tight()); });
}

TEST_CASE("every registered op passes gradgradcheck in float64: it is twice differentiable", "[ops][gradgradcheck]")
{
    check_every_sample("gradgradcheck",
                       [](const tg::OpSample& s) { return tg::gradgradcheck(s.f64, s.inputs, tight()); });
}

TEST_CASE("every op's fused first-order kernel agrees with its vjp rule", "[ops][rule]")
{
    std::mt19937_64 rng(kSeed + 5);
    for (const auto& info : tg::registered_ops()) {
        for (const auto& s : info.samples(rng)) {
            INFO(info.name << " " << s.label << " (seed " << kSeed + 5 << ")");
            auto ps = params_of(s.inputs);
            tg::Var<double> y = s.f64(ps);
            const xt::xarray<double> seed = tg::sample_uniform(rng, {y.shape().begin(), y.shape().end()}, -1, 1);
            const auto by_kernel = tg::grad<double>({y}, ps, {tg::constant(seed)}, {false, true, true});
            const auto by_rule = tg::grad<double>({y}, ps, {tg::constant(seed)}, {true, true, true});
            for (std::size_t i = 0; i < ps.size(); ++i) {
                INFO("input " << i);
                REQUIRE(by_kernel[i].shape() == by_rule[i].shape());
                CHECK(all_close(by_kernel[i].value(), by_rule[i].value(), 1e-12, 1e-14));
            }
        }
    }
}

TEST_CASE("every registered op gives each input a gradient of the input's shape", "[ops][shapes]")
{
    std::mt19937_64 rng(kSeed + 1);
    for (const auto& info : tg::registered_ops()) {
        for (const auto& s : info.samples(rng)) {
            INFO(info.name << " " << s.label << " (seed " << kSeed + 1 << ")");
            auto ps = params_of(s.inputs);
            tg::Var<double> y = s.f64(ps);
            y.backward(xt::ones<double>(y.shape()));
            for (std::size_t i = 0; i < ps.size(); ++i) {
                INFO("input " << i);
                REQUIRE(ps[i].has_grad());
                CHECK(ps[i].grad().shape() == ps[i].shape());
            }
        }
    }
}

TEST_CASE("two backward passes with retain_graph accumulate exactly twice", "[ops][accumulate]")
{
    std::mt19937_64 rng(kSeed + 2);
    for (const auto& info : tg::registered_ops()) {
        for (const auto& s : info.samples(rng)) {
            INFO(info.name << " " << s.label << " (seed " << kSeed + 2 << ")");
            auto ps = params_of(s.inputs);
            tg::Var<double> y = s.f64(ps);
            const xt::xarray<double> seed = tg::sample_uniform(rng, {y.shape().begin(), y.shape().end()}, -1, 1);
            y.backward(seed, tg::retain_graph);
            std::vector<xt::xarray<double>> once;
            for (auto& p : ps) once.push_back(p.grad());
            y.backward(seed);
            for (std::size_t i = 0; i < ps.size(); ++i) CHECK(ps[i].grad() == 2.0 * once[i]);
        }
    }
}

TEST_CASE("every registered op agrees in float32 with float64", "[ops][float32]")
{
    std::mt19937_64 rng(kSeed + 3);
    for (const auto& info : tg::registered_ops()) {
        for (const auto& s : info.samples(rng)) {
            INFO(info.name << " " << s.label << " (seed " << kSeed + 3 << ")");
            auto p64 = params_of(s.inputs);
            std::vector<tg::Var<float>> p32;
            for (const auto& x : s.inputs) p32.push_back(tg::parameter(xt::xarray<float>(xt::cast<float>(x))));
            tg::Var<double> y64 = s.f64(p64);
            tg::Var<float> y32 = s.f32(p32);
            REQUIRE(y32.shape() == y64.shape());
            CHECK(xt::all(xt::isclose(xt::cast<double>(y32.value()), y64.value(), 1e-4, 1e-5, true)));
            const xt::xarray<double> seed = tg::sample_uniform(rng, {y64.shape().begin(), y64.shape().end()}, -1, 1);
            y64.backward(seed);
            y32.backward(xt::xarray<float>(xt::cast<float>(seed)));
            for (std::size_t i = 0; i < p64.size(); ++i) {
                INFO("input " << i);
                CHECK(xt::allclose(xt::cast<double>(p32[i].grad()), p64[i].grad(), 1e-3, 1e-4));
            }
        }
    }
}

TEST_CASE("every op's sample labels are distinct", "[ops][registry]")
{
    std::mt19937_64 rng(kSeed);
    for (const auto& info : tg::registered_ops()) {
        std::set<std::string> labels;
        for (const auto& s : info.samples(rng)) {
            INFO(info.name << " has two samples labelled '" << s.label << "'");
            CHECK(labels.insert(s.label).second);
        }
    }
}

TEST_CASE("every op file in ops/ has a registration under its own name", "[ops][registry]")
{
    std::set<std::string> names;
    for (const auto& info : tg::registered_ops()) names.insert(info.name);
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(TAPEGRAD_OPS_DIR)) {
        if (entry.path().extension() != ".cpp") continue;
        ++files;
        INFO(entry.path().string() << " has no registration named " << entry.path().stem().string());
        CHECK(names.count(entry.path().stem().string()) == 1);
    }
    CHECK(files >= 20);
    for (const auto& required : {"add",
                                 "sub",
                                 "mul",
                                 "div",
                                 "neg",
                                 "matmul",
                                 "transpose",
                                 "reshape",
                                 "sum",
                                 "mean",
                                 "exp",
                                 "log",
                                 "sqrt",
                                 "square",
                                 "pow",
                                 "sigmoid",
                                 "tanh",
                                 "relu",
                                 "softmax",
                                 "log_softmax",
                                 "mse_loss",
                                 "cross_entropy",
                                 "binary_cross_entropy_with_logits"}) {
        INFO(required);
        CHECK(names.count(required) == 1);
    }
}
