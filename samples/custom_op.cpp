// A new differentiable op written outside the library, recorded on the tape and checked
// to second order: softplus(x) = log(1 + exp(x)), in the numerically stable form
// max(x, 0) + log1p(exp(-|x|)).
//   forward: y = max(x, 0) + log1p(exp(-|x|))
//   vjp:     grad_x = grad_out * sigmoid(x)
//
// The op is a struct with a name, a forward, and its derivative stated once as a vjp rule
// written with tg ops. Because the rule is made of ops, the gradient it computes is itself
// recorded when asked (create_graph), so the op has second and higher derivatives with no
// further code. The same struct then goes into the registry so that the generic checks
// cover it like a built-in op. (The library has its own tg::softplus; this one is named
// my_softplus so that the two do not meet, in overload resolution or in the registry.)

#include <cstdio>

#include <xtensor/xmath.hpp>

#include <tapegrad/tapegrad.hpp>

namespace {

struct Softplus {
    static constexpr const char* name = "my_softplus";

    template <class T> void forward(tg::OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        xt::noalias(c.output()) = xt::maximum(x, T(0)) + xt::log1p(xt::exp(-xt::abs(x)));
    }

    template <class T> void vjp(tg::VjpContext<T>& v) const { v.add_grad(0, v.grad_out() * tg::sigmoid(v.input(0))); }
};

template <class T> tg::Var<T> my_softplus(const tg::Var<T>& x)
{
    return tg::record(Softplus{}, x);
}

// The same op with only a hand-written first-order kernel and no vjp rule: first-order
// gradients work, but its gradient cannot be recorded, and asking for it says so.
struct SoftplusFirstOrderOnly {
    static constexpr const char* name = "softplus_first_order_only";
    template <class T> void forward(tg::OpContext<T>& c) const { Softplus{}.forward(c); }
    template <class T> void backward(tg::OpContext<T>& c) const
    {
        c.add_grad(0, c.grad_out() / (T(1) + xt::exp(-c.input(0))));
    }
};

}  // namespace

int main()
{
    // 1. Use it like any op: in a small model, with backward.
    tg::Var<double> w = tg::parameter(xt::xarray<double>{{0.5, -1.0}, {2.0, 0.25}});
    tg::Var<double> x = tg::constant(xt::xarray<double>{{1.0, -3.0}});
    tg::Var<double> loss = tg::sum(my_softplus(tg::matmul(x, w)));
    loss.backward();
    std::printf("loss = %.6f\n", loss.item());
    std::printf("d loss / d w = [[%.6f, %.6f], [%.6f, %.6f]]\n", w.grad()(0, 0), w.grad()(0, 1), w.grad()(1, 0),
                w.grad()(1, 1));

    // 2. Its second derivative needs no more code: softplus'' = sigmoid * (1 - sigmoid).
    const xt::xarray<double> at{-2.0, 0.0, 3.0};
    const xt::xarray<double> h = tg::hvp([](const tg::Var<double>& v) { return tg::sum(my_softplus(v)); }, at,
                                         xt::xarray<double>{1.0, 1.0, 1.0});
    std::printf("softplus''(-2, 0, 3) = %.6f %.6f %.6f (sigmoid(x) (1 - sigmoid(x)): %.6f %.6f %.6f)\n", h(0), h(1),
                h(2), 0.104994, 0.25, 0.045177);

    // 3. Check first and second derivatives against central differences.
    auto f = [](const std::vector<tg::Var<double>>& v) { return my_softplus(v[0] * v[1]); };
    const std::vector<xt::xarray<double>> inputs{xt::xarray<double>{{-2.0, 0.1, 3.0}, {4.0, -4.0, 0.0}},
                                                 xt::xarray<double>{1.0, -0.5, 2.0}};
    const tg::GradcheckResult r1 = tg::gradcheck(f, inputs);
    const tg::GradcheckResult r2 = tg::gradgradcheck(f, inputs);
    std::printf("%s\n%s\n", r1.message.c_str(), r2.message.c_str());

    // 4. Without a vjp rule, second order is refused with a message that names the op.
    auto first_only = [](const std::vector<tg::Var<double>>& v) {
        return tg::record(SoftplusFirstOrderOnly{}, v[0] * v[1]);
    };
    const bool first_ok = tg::gradcheck(first_only, inputs).ok;
    bool refused = false;
    try {
        tg::gradgradcheck(first_only, inputs);
    } catch (const tg::Error& e) {
        refused = std::string(e.what()).find("softplus_first_order_only") != std::string::npos;
        std::printf("without a vjp rule: %s\n", e.what());
    }

    // 5. Register it: the registry's generic checks now cover it, as they do built-in ops.
    tg::register_op(
        {"my_softplus", [](std::mt19937_64& rng) {
             auto ref = [](const auto& in) { return xt::xarray<double>(xt::log(1.0 + xt::exp(in[0]))); };
             std::vector<tg::OpSample> s;
             s.push_back(tg::make_sample(
                 "(3,4)", {tg::sample_uniform(rng, {3, 4}, -5, 5)}, [](const auto& v) { return my_softplus(v[0]); },
                 ref));
             s.push_back(tg::make_sample(
                 "()", {tg::sample_uniform(rng, {}, -5, 5)}, [](const auto& v) { return my_softplus(v[0]); }, ref));
             return s;
         }});
    std::mt19937_64 rng(42);
    bool all_ok = r1.ok && r2.ok && first_ok && refused;
    for (const auto& info : tg::registered_ops()) {
        if (info.name != "my_softplus") continue;
        for (const auto& sample : info.samples(rng)) {
            const bool value_ok = xt::allclose(sample.f64({tg::constant(sample.inputs[0])}).value(),
                                               sample.reference(sample.inputs), 1e-12, 1e-12);
            const tg::GradcheckResult g1 = tg::gradcheck(sample.f64, sample.inputs);
            const tg::GradcheckResult g2 = tg::gradgradcheck(sample.f64, sample.inputs);
            std::printf("my_softplus %-6s value %s, first order %s, second order %s\n", sample.label.c_str(),
                        value_ok ? "ok" : "WRONG", g1.ok ? "ok" : g1.message.c_str(),
                        g2.ok ? "ok" : g2.message.c_str());
            all_ok = all_ok && value_ok && g1.ok && g2.ok;
        }
    }
    std::printf("%s\n", all_ok ? "custom op: gradients verified to second order" : "custom op: GRADIENT MISMATCH");
    return all_ok ? 0 : 1;
}
