// Every built-in op against PyTorch, sample by sample (tests/reference/op_reference.json,
// written by scripts/update-op-reference from each sample's PyTorch expression): the
// forward value, a vector-Jacobian product and a second-order product, in float64, to
// 1e-10 relative. A sample that names a PyTorch counterpart but has no reference fails.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

using json = nlohmann::json;
using tg::Var;

namespace {

using tg_test::json_array;
using tg_test::worst_relative;

// |a - b| <= 1e-10 max(|b|, 1e-2): relative, with an absolute 1e-12 for values near 0.
constexpr double kRelative = 1e-10;
constexpr double kFloor = 1e-2;
// Whether `op` is built in (has a file in ops/): ops that tests register for themselves have
// no PyTorch counterpart.
bool builtin(const std::string& op)
{
    for (const auto& entry : std::filesystem::recursive_directory_iterator(TAPEGRAD_OPS_DIR)) {
        if (entry.path().extension() == ".cpp" && entry.path().stem() == op) return true;
    }
    return false;
}

const json& references()
{
    static const json ref = [] {
        std::ifstream in(TAPEGRAD_REFERENCE_DIR "/op_reference.json");
        if (!in) return json();
        return json::parse(in);
    }();
    return ref;
}

}  // namespace

TEST_CASE("every op agrees with PyTorch: value, gradient and second-order gradient", "[ops][reference]")
{
    const json& ref = references();
    INFO("tests/reference/op_reference.json is missing or empty; run scripts/update-op-reference");
    REQUIRE(ref.contains("ops"));
    std::size_t cases = 0;
    double overall = 0;
    std::string overall_where;
    for (const auto& info : tg::registered_ops()) {
        if (!builtin(info.name)) continue;
        std::size_t with_torch = 0;
        std::mt19937_64 rng(tg::sample_seed(info.name));
        for (const auto& s : info.samples(rng)) {
            if (s.torch.empty()) continue;
            ++with_torch;
            INFO(info.name << " " << s.label << ": " << s.torch);
            const bool present = ref["ops"].contains(info.name) && ref["ops"][info.name].contains(s.label);
            INFO("no PyTorch reference for this sample; run scripts/update-op-reference");
            REQUIRE(present);
            const json& c = ref["ops"][info.name][s.label];
            INFO("the sample's PyTorch expression changed; run scripts/update-op-reference");
            REQUIRE(c.at("torch").get<std::string>() == s.torch);

            std::vector<Var<double>> x;
            for (const auto& e : c.at("inputs")) x.push_back(tg::parameter(json_array(e)));
            const Var<double> y = s.f64(x);
            double err = worst_relative(y.value(), json_array(c.at("y")), kFloor);
            const std::vector<Var<double>> g =
                tg::grad(std::vector<Var<double>>{y}, x, {tg::constant(json_array(c.at("v")))}, {true, true, true});
            Var<double> dot;
            for (std::size_t i = 0; i < x.size(); ++i) {
                err = std::max(err, worst_relative(g[i].value(), json_array(c.at("g")[i]), kFloor));
                if (!g[i].requires_grad()) continue;
                const Var<double> term = tg::sum(g[i] * tg::constant(json_array(c.at("w")[i])));
                dot = dot.defined() ? dot + term : term;
            }
            for (std::size_t i = 0; i < x.size(); ++i) {
                const xt::xarray<double> h = dot.defined() ? tg::grad({dot}, {x[i]}, {}, {false, true, true})[0].value()
                                                           : xt::xarray<double>(xt::zeros<double>(x[i].shape()));
                err = std::max(err, worst_relative(h, json_array(c.at("h")[i]), kFloor));
            }
            tg::end_pass<double>();
            CHECK(err <= kRelative);
            if (err > overall) {
                overall = err;
                overall_where = info.name + " " + s.label;
            }
            ++cases;
        }
        INFO(info.name << " has no sample with a PyTorch expression");
        CHECK(with_torch > 0);
    }
    WARN("PyTorch references: " << cases << " samples (values, gradients, second-order gradients), worst relative "
                                << "error " << overall << " at " << overall_where << " (torch "
                                << ref.value("torch_version", std::string("?")) << ")");
    CHECK(cases > 100);
}
