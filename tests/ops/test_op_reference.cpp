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

using json = nlohmann::json;
using tg::Var;

namespace {

// |a - b| <= 1e-10 max(|b|, 1e-2): relative, with an absolute 1e-12 for values near 0.
constexpr double kRelative = 1e-10;
constexpr double kFloor = 1e-2;

xt::xarray<double> array_of(const json& j)
{
    const auto shape = j.at("shape").get<std::vector<std::size_t>>();
    const json& data = j.at("data");
    xt::xarray<double> a = xt::zeros<double>(shape);
    REQUIRE(a.size() == data.size());
    std::size_t k = 0;
    for (const json& v : data) {
        // The generator writes non-finite values as strings, since JSON has no NaN or infinity.
        if (v.is_string()) {
            const std::string s = v.get<std::string>();
            REQUIRE((s == "nan" || s == "inf" || s == "-inf"));
            a.data()[k++] = s == "nan" ? std::nan("") : (s == "inf" ? HUGE_VAL : -HUGE_VAL);
        } else {
            a.data()[k++] = v.get<double>();
        }
    }
    return a;
}

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

// The largest relative error of got against want (shapes must match).
double worst(const xt::xarray<double>& got, const xt::xarray<double>& want)
{
    REQUIRE(std::vector<std::size_t>(got.shape().begin(), got.shape().end()) ==
            std::vector<std::size_t>(want.shape().begin(), want.shape().end()));
    double w = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
        const double a = got.data()[k], b = want.data()[k];
        if (std::isnan(a) && std::isnan(b)) continue;  // NaN where PyTorch has NaN
        if (std::isinf(b) && a == b) continue;
        const double err = std::abs(a - b) / std::max(std::abs(b), kFloor);
        w = std::max(w, err != err ? HUGE_VAL : err);
    }
    return w;
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
            for (const auto& e : c.at("inputs")) x.push_back(tg::parameter(array_of(e)));
            const Var<double> y = s.f64(x);
            double err = worst(y.value(), array_of(c.at("y")));
            const std::vector<Var<double>> g =
                tg::grad(std::vector<Var<double>>{y}, x, {tg::constant(array_of(c.at("v")))}, {true, true, true});
            Var<double> dot;
            for (std::size_t i = 0; i < x.size(); ++i) {
                err = std::max(err, worst(g[i].value(), array_of(c.at("g")[i])));
                if (!g[i].requires_grad()) continue;
                const Var<double> term = tg::sum(g[i] * tg::constant(array_of(c.at("w")[i])));
                dot = dot.defined() ? dot + term : term;
            }
            for (std::size_t i = 0; i < x.size(); ++i) {
                const xt::xarray<double> h = dot.defined() ? tg::grad({dot}, {x[i]}, {}, {false, true, true})[0].value()
                                                           : xt::xarray<double>(xt::zeros<double>(x[i].shape()));
                err = std::max(err, worst(h, array_of(c.at("h")[i])));
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
