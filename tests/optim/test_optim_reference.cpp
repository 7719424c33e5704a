// Replays PyTorch's float64 training trajectories (tests/reference/optim_trajectories.json,
// made by make_optim_reference.py) with tapegrad's layers, optimisers, schedules and
// clipping: the loss at every step and the final parameters must agree to 1e-10 relative.

#include <fstream>
#include <memory>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/tapegrad.hpp"

using json = nlohmann::json;
using tg::Var;

namespace {

xt::xarray<double> to_array(const json& j)
{
    if (!j.is_array()) return xt::xarray<double>(j.get<double>());
    if (j.empty() || !j[0].is_array()) {
        const auto v = j.get<std::vector<double>>();
        xt::xarray<double> a = xt::zeros<double>({v.size()});
        std::copy(v.begin(), v.end(), a.begin());
        return a;
    }
    const auto rows = j.get<std::vector<std::vector<double>>>();
    xt::xarray<double> a = xt::zeros<double>({rows.size(), rows[0].size()});
    for (std::size_t i = 0; i < rows.size(); ++i)
        std::copy(rows[i].begin(), rows[i].end(), a.begin() + i * rows[0].size());
    return a;
}

tg::nn::Activation activation(const std::string& s)
{
    if (s == "sigmoid") return tg::nn::Activation::sigmoid;
    if (s == "tanh") return tg::nn::Activation::tanh;
    if (s == "relu") return tg::nn::Activation::relu;
    return tg::nn::Activation::none;
}

std::unique_ptr<tg::optim::Optimizer<double>> make_optimizer(const json& cfg, std::vector<Var<double>> params)
{
    const json& o = cfg["options"];
    const std::string kind = cfg["optimizer"];
    if (kind == "sgd") {
        tg::optim::SGDOptions s;
        s.lr = o["lr"];
        s.momentum = o.value("momentum", 0.0);
        s.dampening = o.value("dampening", 0.0);
        s.nesterov = o.value("nesterov", false);
        s.weight_decay = o.value("weight_decay", 0.0);
        return std::make_unique<tg::optim::SGD<double>>(params, s);
    }
    auto fill = [&](tg::optim::AdamOptions& a) {
        a.lr = o["lr"];
        if (o.contains("betas")) {
            a.beta1 = o["betas"][0];
            a.beta2 = o["betas"][1];
        }
        a.eps = o.value("eps", a.eps);
        a.weight_decay = o.value("weight_decay", a.weight_decay);
        a.amsgrad = o.value("amsgrad", false);
    };
    if (kind == "adam") {
        tg::optim::AdamOptions a;
        fill(a);
        return std::make_unique<tg::optim::Adam<double>>(params, a);
    }
    tg::optim::AdamWOptions a;
    fill(a);
    return std::make_unique<tg::optim::AdamW<double>>(params, a);
}

std::unique_ptr<tg::optim::LRScheduler<double>> make_schedule(const json& cfg, tg::optim::Optimizer<double>& opt)
{
    if (!cfg.contains("schedule")) return nullptr;
    const json& s = cfg["schedule"];
    if (s["type"] == "step_lr") return std::make_unique<tg::optim::StepLR<double>>(opt, s["step_size"], s["gamma"]);
    if (s["type"] == "cosine")
        return std::make_unique<tg::optim::CosineAnnealingLR<double>>(opt, s["t_max"], s["eta_min"]);
    return std::make_unique<tg::optim::ExponentialLR<double>>(opt, s["gamma"]);
}

double rel_error(double a, double b)
{
    return std::abs(a - b) / std::max(std::abs(b), 1e-300);
}

}  // namespace

TEST_CASE("optimisers, schedules and clipping follow PyTorch's float64 trajectories", "[optim][reference]")
{
    std::ifstream in(TAPEGRAD_REFERENCE_DIR "/optim_trajectories.json");
    REQUIRE(in.good());
    const json ref = json::parse(in);
    REQUIRE(ref["cases"].size() >= 20);
    double worst = 0;
    std::string worst_case;
    for (const json& c : ref["cases"]) {
        const std::string label = c["net"]["name"].get<std::string>() + "/" + c["config"]["name"].get<std::string>();
        INFO(label);
        const auto sizes = c["net"]["sizes"].get<std::vector<std::size_t>>();
        const auto acts = c["net"]["activations"].get<std::vector<std::string>>();
        tg::nn::Sequential<double> model;
        for (std::size_t l = 0; l + 1 < sizes.size(); ++l)
            model.add(tg::nn::Dense<double>(sizes[l], sizes[l + 1], activation(acts[l])));
        const auto params = model.parameters();
        REQUIRE(params.size() == c["initial"].size());
        for (std::size_t i = 0; i < params.size(); ++i) params[i].set_value(to_array(c["initial"][i]));

        auto opt = make_optimizer(c["config"], params);
        auto sched = make_schedule(c["config"], *opt);
        const bool clip = c["config"].contains("clip_norm");
        const json& losses = c["losses"];
        const bool mse = c["net"]["loss"] == "mse_loss";
        for (std::size_t step = 0; step < losses.size(); ++step) {
            INFO("step " << step);
            opt->zero_grad();
            Var<double> loss;
            if (mse) {
                Var<double> x = tg::constant(to_array(c["data"]["x"][step]));
                Var<double> t = tg::constant(to_array(c["data"]["t"][step]));
                loss = tg::mse_loss(model(x), t);
            } else {
                Var<double> x = tg::constant(to_array(c["data"]["x"][0]));
                const auto lv = c["data"]["labels"][0].get<std::vector<std::int64_t>>();
                xt::xarray<std::int64_t> labels = xt::zeros<std::int64_t>({lv.size()});
                std::copy(lv.begin(), lv.end(), labels.begin());
                loss = tg::cross_entropy(model(x), labels);
            }
            loss.backward();
            const double value = loss.item();
            if (clip) tg::optim::clip_grad_norm(params, c["config"]["clip_norm"].get<double>());
            CHECK(opt->lr() == Approx(c["lrs"][step].get<double>()).epsilon(1e-12));
            opt->step();
            if (sched) sched->step();
            const double e = rel_error(value, losses[step].get<double>());
            CHECK(e <= 1e-10);
            if (e > worst) {
                worst = e;
                worst_case = label + " loss at step " + std::to_string(step);
            }
        }
        for (std::size_t i = 0; i < params.size(); ++i) {
            const xt::xarray<double> want = to_array(c["final"][i]);
            REQUIRE(want.shape() == params[i].shape());
            for (std::size_t k = 0; k < want.size(); ++k) {
                const double e = rel_error(params[i].value().data()[k], want.data()[k]);
                // Relative to the parameter's scale: an element that ends near zero has
                // no meaningful relative error of its own.
                const double scale = std::max(std::abs(want.data()[k]), 1e-3);
                const double se = std::abs(params[i].value().data()[k] - want.data()[k]) / scale;
                INFO("parameter " << i << " element " << k);
                CHECK(se <= 1e-10);
                if (std::abs(want.data()[k]) >= 1e-3 && e > worst) {
                    worst = e;
                    worst_case = label + " parameter " + std::to_string(i);
                }
            }
        }
    }
    WARN("worst relative error against PyTorch: " << worst << " (" << worst_case << ")");
}
