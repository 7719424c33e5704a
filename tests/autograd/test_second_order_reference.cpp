// Replays PyTorch's float64 second- and third-order derivatives (tests/reference/second_order.json,
// made by make_second_order_reference.py) with tg::grad(create_graph) and the functional
// transforms: every value must agree to 1e-10 relative. The inputs come from the JSON, so
// both sides see the same numbers; a case missing from the JSON fails its test.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

using json = nlohmann::json;
using tg::Var;

namespace {

using tg_test::json_array;

constexpr double kRelative = 1e-10;
// |a - b| <= kRelative * max(|b|, kFloor): below |b| = 1e-2 the bound becomes an absolute
// 1e-12, for values that are zero (or nearly so) in PyTorch.
constexpr double kFloor = 1e-2;
constexpr tg::GradOptions kCreate{true, false, false};

// A case by name; REQUIREs that the JSON holds it, so a missing case fails rather than skips.
json load_case(const std::string& name)
{
    std::ifstream in(TAPEGRAD_REFERENCE_DIR "/second_order.json");
    INFO("reading " TAPEGRAD_REFERENCE_DIR "/second_order.json");
    REQUIRE(in.good());
    const json ref = json::parse(in);
    REQUIRE(ref.value("dtype", std::string()) == "float64");
    INFO("case " << name << " (reference from torch " << ref.value("torch_version", std::string("?")) << ")");
    REQUIRE(ref.contains("cases"));
    REQUIRE(ref["cases"].contains(name));
    return ref["cases"][name];
}

Var<double> parameter(const json& j)
{
    return tg::parameter(json_array(j));
}

Var<double> constant(const json& j)
{
    return tg::constant(json_array(j));
}

// Compares results against one case's outputs and keeps the worst relative error.
class Agreement {
public:
    Agreement(std::string name, json outputs) : name_(std::move(name)), outputs_(std::move(outputs)) {}

    void check(const std::string& key, const xt::xarray<double>& got)
    {
        INFO(name_ << ": " << key);
        REQUIRE(outputs_.contains(key));
        const xt::xarray<double> want = json_array(outputs_[key]);
        const std::vector<std::size_t> got_shape(got.shape().begin(), got.shape().end());
        const std::vector<std::size_t> want_shape(want.shape().begin(), want.shape().end());
        REQUIRE(got_shape == want_shape);
        for (std::size_t k = 0; k < want.size(); ++k) {
            const double a = got.data()[k], b = want.data()[k];
            const double err = std::abs(a - b) / std::max(std::abs(b), kFloor);
            INFO("element " << k << ": tapegrad " << a << ", torch " << b);
            CHECK(err <= kRelative);
            if (!(err <= worst_)) {  // also catches NaN
                worst_ = err;
                worst_where_ = key + "[" + std::to_string(k) + "]";
            }
        }
        ++checked_;
    }
    void check(const std::string& key, const Var<double>& got) { check(key, got.value()); }

    // Every output in the JSON must have been compared.
    void report() const
    {
        CHECK(checked_ == expected());
        WARN(name_ << ": worst relative error against PyTorch " << worst_ << " at " << worst_where_ << " (" << checked_
                   << " arrays)");
    }

private:
    std::size_t expected() const
    {
        std::size_t n = 0;
        for (const auto& item : outputs_.items())
            if (item.value().is_object()) ++n;
        return n;
    }

    std::string name_;
    json outputs_;
    double worst_ = 0;
    std::string worst_where_ = "-";
    std::size_t checked_ = 0;
};

Var<double> activate(const std::string& kind, const Var<double>& x)
{
    if (kind == "tanh") return tg::tanh(x);
    REQUIRE(kind == "relu");
    return tg::relu(x);
}

}  // namespace

TEST_CASE("a WGAN-GP gradient penalty differentiates through dD/dx as PyTorch does", "[reference][second_order]")
{
    const json c = load_case("gradient_penalty");
    const json& in = c["inputs"];
    Agreement agree("gradient_penalty", c["outputs"]);

    Var<double> x = parameter(in["x"]);
    const std::vector<Var<double>> weights{parameter(in["w1"]), parameter(in["b1"]), parameter(in["w2"]),
                                           parameter(in["b2"])};
    Var<double> critic = tg::linear(tg::tanh(tg::linear(x, weights[0], weights[1])), weights[2], weights[3]);
    Var<double> gx = tg::grad<double>({tg::sum(critic)}, {x}, {}, kCreate)[0];
    Var<double> norms = tg::sqrt(tg::sum(tg::square(gx), 1));
    Var<double> penalty = tg::mean(tg::pow(norms - 1.0, 2.0));
    Var<double> total = tg::mean(critic) + in["lambda"].get<double>() * penalty;
    agree.check("critic", critic);
    agree.check("grad_x", gx);
    agree.check("norms", norms);
    agree.check("penalty", penalty);
    agree.check("total", total);

    std::vector<Var<double>> wrt = weights;
    wrt.push_back(x);
    const auto g = tg::grad<double>({total}, wrt);
    REQUIRE(g.size() == 5);
    agree.check("d_total_d_w1", g[0]);
    agree.check("d_total_d_b1", g[1]);
    agree.check("d_total_d_w2", g[2]);
    agree.check("d_total_d_b2", g[3]);
    agree.check("d_total_d_x", g[4]);
    agree.report();
}

TEST_CASE("Hessian-vector products of an MLP's cross-entropy match PyTorch for tanh and relu",
          "[reference][second_order]")
{
    for (const std::string name : {"mlp_cross_entropy_hvp", "mlp_relu_hvp"}) {
        const json c = load_case(name);
        const json& in = c["inputs"];
        Agreement agree(name, c["outputs"]);
        const std::vector<std::string> names{"w1", "b1", "w2", "b2"};

        const auto lv = in["labels"].get<std::vector<std::int64_t>>();
        xt::xarray<std::int64_t> labels = xt::zeros<std::int64_t>({lv.size()});
        std::copy(lv.begin(), lv.end(), labels.begin());
        std::vector<Var<double>> params;
        for (const auto& n : names) params.push_back(parameter(in[n]));

        Var<double> x = constant(in["x"]);
        Var<double> hidden = activate(in["activation"].get<std::string>(), tg::linear(x, params[0], params[1]));
        Var<double> loss = tg::cross_entropy(tg::linear(hidden, params[2], params[3]), labels);
        const auto g = tg::grad<double>({loss}, params, {}, kCreate);
        REQUIRE(g.size() == 4);
        Var<double> dot = tg::sum(g[0] * constant(in["v_w1"]));
        for (std::size_t k = 1; k < 4; ++k) dot = dot + tg::sum(g[k] * constant(in["v_" + names[k]]));
        const auto hv = tg::grad<double>({dot}, params);
        REQUIRE(hv.size() == 4);

        agree.check("loss", loss);
        for (std::size_t k = 0; k < 4; ++k) {
            agree.check("grad_" + names[k], g[k]);
            agree.check("hv_" + names[k], hv[k]);
        }
        agree.report();
    }
}

TEST_CASE("three nested grads of an elementwise function give PyTorch's first, second and third derivatives",
          "[reference][second_order]")
{
    const json c = load_case("third_derivative");
    Agreement agree("third_derivative", c["outputs"]);
    Var<double> x = parameter(c["inputs"]["x"]);
    Var<double> y =
        tg::sum(tg::tanh(x) * tg::exp(x) + tg::pow(tg::sigmoid(x), 2.0) + tg::log(x) * tg::sqrt(x) + tg::pow(x, 2.5));
    Var<double> d1 = tg::grad<double>({y}, {x}, {}, kCreate)[0];
    Var<double> d2 = tg::grad<double>({tg::sum(d1)}, {x}, {}, kCreate)[0];
    Var<double> d3 = tg::grad<double>({tg::sum(d2)}, {x})[0];
    agree.check("f", y);
    agree.check("d1", d1);
    agree.check("d2", d2);
    agree.check("d3", d3);
    agree.report();
}

TEST_CASE("jacobian of softmax over a vector and over a matrix's rows matches PyTorch", "[reference][second_order]")
{
    const json c = load_case("softmax_jacobian");
    Agreement agree("softmax_jacobian", c["outputs"]);
    agree.check("jacobian_vector_dim0", tg::jacobian([](const Var<double>& t) { return tg::softmax(t, 0); },
                                                     json_array(c["inputs"]["x_vector"])));
    agree.check("jacobian_matrix_dim1", tg::jacobian([](const Var<double>& t) { return tg::softmax(t, 1); },
                                                     json_array(c["inputs"]["x_matrix"])));
    agree.report();
}

TEST_CASE("hessian and hvp of a non-separable function match PyTorch", "[reference][second_order]")
{
    const json c = load_case("hessian_and_hvp");
    const json& in = c["inputs"];
    Agreement agree("hessian_and_hvp", c["outputs"]);
    const xt::xarray<double> w = json_array(in["w"]), cw = json_array(in["c"]);
    const auto f = [&](const Var<double>& t) {
        Var<double> logp = tg::log_softmax(tg::matmul(tg::reshape(t, {1, 4}), tg::constant(w)), 1);
        return tg::sum(logp * tg::constant(cw)) + tg::sum(tg::pow(t, 3.0)) / 3.0;
    };
    const xt::xarray<double> x = json_array(in["x"]);
    agree.check("f", f(tg::constant(x)));
    agree.check("hessian", tg::hessian(f, x));
    agree.check("hvp", tg::hvp(f, x, json_array(in["v"])));
    agree.report();
}

TEST_CASE("jvp and vjp of a vector function match PyTorch", "[reference][second_order]")
{
    const json c = load_case("jvp_and_vjp");
    const json& in = c["inputs"];
    Agreement agree("jvp_and_vjp", c["outputs"]);
    const xt::xarray<double> w = json_array(in["w"]);
    const auto f = [&](const Var<double>& t) {
        return tg::tanh(tg::matmul(tg::reshape(t, {1, 4}), tg::constant(w))) * 2.0;
    };
    const xt::xarray<double> x = json_array(in["x"]);
    agree.check("f", f(tg::constant(x)));
    agree.check("jvp", tg::jvp(f, x, json_array(in["v"])));
    agree.check("vjp", tg::vjp(f, x, json_array(in["u"])));
    agree.report();
}
