// gradcheck and gradgradcheck: a function's Jacobian from the tape (one vector-Jacobian
// product per output element) against central differences, entry by entry. gradgradcheck
// is the same comparison applied to the function x, v -> tg::grad(f(x), x, v).

#include "tapegrad/gradcheck.hpp"

#include <cmath>
#include <random>
#include <sstream>

#include <xtensor/xarray.hpp>

#include "autograd/gradcheck_internal.hpp"
#include "autograd/tape_scope.hpp"
#include "tapegrad/autograd.hpp"
#include "tapegrad/error.hpp"

namespace tg {
namespace {

// The function under check: parameters -> outputs. `recorded` is false for the
// finite-difference evaluations, which need values only (gradgradcheck then skips
// create_graph).
template <class T> using Eval = std::function<std::vector<Var<T>>(const std::vector<Var<T>>&, bool recorded)>;

// Module checks: the inputs are given leaves (a module's parameters, then gradgradcheck's
// grad_outputs), named in messages; with `gradients`, output k is the gradient of parameter k.
struct Names {
    std::vector<std::string> parameters;
    bool gradients = false;
};

template <class T>
GradcheckResult compare(const char* who, const Eval<T>& f, const std::vector<xt::xarray<T>>& inputs,
                        const GradcheckOptions& o, const std::vector<Var<T>>* leaves = nullptr,
                        const Names* names = nullptr)
{
    if (!(o.eps > 0)) throw Error(std::string(who) + ": eps must be positive, got " + std::to_string(o.eps));
    detail::TapeScope<T> scope;
    std::vector<Var<T>> params;
    params.reserve(inputs.size());
    if (leaves != nullptr) {
        params = *leaves;
    } else {
        for (const auto& x : inputs) params.push_back(parameter(x));
    }
    std::vector<std::size_t> in_sizes;
    std::size_t total_in = 0;
    for (const auto& x : inputs) {
        in_sizes.push_back(x.size());
        total_in += x.size();
    }

    // Analytic Jacobian, one row per output element.
    const std::vector<Var<T>> ys = f(params, true);
    std::vector<typename xt::xarray<T>::shape_type> out_shapes;
    std::vector<std::size_t> out_sizes;
    std::size_t total_out = 0;
    for (const auto& y : ys) {
        if (!y.defined()) throw Error(std::string(who) + ": the function returned an undefined Var");
        out_shapes.push_back(y.shape());
        out_sizes.push_back(y.size());
        total_out += y.size();
    }
    std::vector<double> analytic(total_out * total_in, 0.0);
    std::size_t row = 0;
    for (std::size_t k = 0; k < ys.size(); ++k) {
        for (std::size_t j = 0; j < out_sizes[k]; ++j, ++row) {
            if (!ys[k].requires_grad()) continue;
            xt::xarray<T> seed = xt::zeros<T>(out_shapes[k]);
            seed.data()[j] = T(1);
            const std::vector<Var<T>> gs = grad<T>({ys[k]}, params, {constant(seed)}, {false, true, true});
            std::size_t col = 0;
            for (std::size_t i = 0; i < params.size(); ++i) {
                const auto& g = gs[i].value();
                if (g.shape() != params[i].shape()) {
                    throw Error(std::string(who) + ": the gradient of input " + std::to_string(i) + " has shape " +
                                format_shape(g.shape()) + ", the input has " + format_shape(params[i].shape()));
                }
                for (std::size_t e = 0; e < in_sizes[i]; ++e) analytic[row * total_in + col + e] = g.data()[e];
                col += in_sizes[i];
            }
        }
    }

    // Numerical Jacobian, one column per input element.
    std::vector<double> numerical(total_out * total_in, 0.0);
    // Each evaluation records as any call would (so f may itself call tg::grad), and the
    // scope drops what it recorded.
    auto values = [&]() {
        detail::TapeScope<T> evaluation;
        std::vector<xt::xarray<T>> v;
        for (const auto& y : f(params, false)) v.push_back(y.value());
        if (v.size() != ys.size()) throw Error(std::string(who) + ": the function's number of outputs changed");
        for (std::size_t k = 0; k < v.size(); ++k) {
            if (v[k].shape() != out_shapes[k]) {
                throw Error(std::string(who) + ": the function's output changed shape between evaluations (" +
                            format_shape(out_shapes[k]) + " vs " + format_shape(v[k].shape()) + ")");
            }
        }
        return v;
    };
    std::size_t col = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
        xt::xarray<T> x = inputs[i];
        for (std::size_t e = 0; e < in_sizes[i]; ++e, ++col) {
            const T orig = x.data()[e];
            x.data()[e] = static_cast<T>(orig + o.eps);
            params[i].set_value(x);
            const auto plus = values();
            x.data()[e] = static_cast<T>(orig - o.eps);
            params[i].set_value(x);
            const auto minus = values();
            x.data()[e] = orig;
            params[i].set_value(x);
            // The step actually taken, which float rounding may make differ from eps.
            const double h =
                static_cast<double>(static_cast<T>(orig + o.eps)) - static_cast<double>(static_cast<T>(orig - o.eps));
            std::size_t r = 0;
            for (std::size_t k = 0; k < plus.size(); ++k) {
                for (std::size_t j = 0; j < out_sizes[k]; ++j, ++r) {
                    numerical[r * total_in + col] =
                        (static_cast<double>(plus[k].data()[j]) - static_cast<double>(minus[k].data()[j])) / h;
                }
            }
        }
    }

    GradcheckResult res;
    double worst = -1;  // error / allowed
    bool analytic_all_zero = true;
    double numeric_max = 0;
    std::size_t worst_r = 0, worst_c = 0;
    for (std::size_t r = 0; r < total_out; ++r) {
        for (std::size_t c = 0; c < total_in; ++c) {
            const double a = analytic[r * total_in + c];
            const double n = numerical[r * total_in + c];
            const double err = std::abs(a - n);
            analytic_all_zero = analytic_all_zero && a == 0.0;
            numeric_max = std::max(numeric_max, std::abs(n));
            const bool bad = !(err <= o.atol + o.rtol * std::abs(n));  // NaN counts as bad
            const double score = bad && !(err == err) ? HUGE_VAL : err / (o.atol + o.rtol * std::abs(n));
            if (err > res.max_abs_error || err != err) res.max_abs_error = err;
            if (n != 0.0 && (err / std::abs(n) > res.max_rel_error || err != err))
                res.max_rel_error = err / std::abs(n);
            if (bad) res.ok = false;
            if (score > worst) {
                worst = score;
                worst_r = r;
                worst_c = c;
            }
        }
    }
    if (total_out * total_in > 0) {
        std::size_t c = worst_c, i = 0;
        while (c >= in_sizes[i]) c -= in_sizes[i++];
        std::size_t r = worst_r, k = 0;
        while (r >= out_sizes[k]) r -= out_sizes[k++];
        res.input = i;
        res.input_index = detail::unravel(c, inputs[i].shape());
        res.output = k;
        res.output_index = detail::unravel(r, out_shapes[k]);
        res.analytic = analytic[worst_r * total_in + worst_c];
        res.numerical = numerical[worst_r * total_in + worst_c];
    }

    std::ostringstream msg;
    msg.precision(6);
    if (names != nullptr && res.input < names->parameters.size()) res.parameter = names->parameters[res.input];
    auto where = [&] {
        std::ostringstream w;
        if (names != nullptr) {
            w << (res.input < names->parameters.size() ? "parameter '" + res.parameter + "'" : "grad_outputs")
              << " element " << format_shape(res.input_index);
            if (names->gradients) {
                w << ", gradient of '" << names->parameters[res.output] << "' element "
                  << format_shape(res.output_index);
            } else if (total_out > 1) {
                w << ", output element " << format_shape(res.output_index);
            }
            return w.str();
        }
        w << "input " << res.input << ", element " << format_shape(res.input_index);
        if (ys.size() > 1) w << ", output " << res.output;
        w << ", output element " << format_shape(res.output_index);
        return w.str();
    };
    const bool zero_fail = analytic_all_zero && numeric_max > o.atol;
    if (zero_fail) res.ok = false;
    if (res.ok) {
        msg << who << ": ok (" << inputs.size() << " inputs, " << total_in << " input elements, " << total_out
            << " output elements; max abs error " << res.max_abs_error << ", max rel error " << res.max_rel_error
            << ")";
    } else if (zero_fail) {
        msg << who << ": the tape's gradient is all zeros but the numerical one is not (largest |numerical| "
            << numeric_max << "; worst at " << where() << ")";
    } else {
        msg << who << ": " << where() << ": analytic " << res.analytic << " vs numerical " << res.numerical
            << " (abs error " << std::abs(res.analytic - res.numerical) << "; allowed " << o.atol << " + " << o.rtol
            << " * |numerical|; max abs error " << res.max_abs_error << ", max rel error " << res.max_rel_error << ")";
    }
    res.message = msg.str();
    return res;
}

template <class T, class F> Eval<T> first_order(const F& f)
{
    return [&f](const std::vector<Var<T>>& p, bool) { return std::vector<Var<T>>{f(p)}; };
}

}  // namespace

namespace detail {

GradcheckResult gradcheck_leaves(const char* who, const LeafEval& f, const std::vector<Var<double>>& leaves,
                                 const std::vector<std::string>& parameter_names, bool outputs_are_gradients,
                                 const GradcheckOptions& options)
{
    std::vector<xt::xarray<double>> values;
    values.reserve(leaves.size());
    for (const auto& leaf : leaves) values.push_back(leaf.value());
    const Names names{parameter_names, outputs_are_gradients};
    return compare<double>(who, f, values, options, &leaves, &names);
}

}  // namespace detail

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                          const GradcheckOptions& options)
{
    return compare<double>("gradcheck", first_order<double>(f), inputs, options);
}

GradcheckResult gradcheck(const GradcheckFnF& f, const std::vector<xt::xarray<float>>& inputs,
                          const GradcheckOptions& options)
{
    return compare<float>("gradcheck", first_order<float>(f), inputs, options);
}

GradcheckResult gradgradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                              const GradcheckOptions& options)
{
    // The grad_outputs: f's output shape, values drawn from a fixed seed.
    xt::xarray<double> v;
    {
        NoGradGuard guard;
        std::vector<Var<double>> consts;
        consts.reserve(inputs.size());
        for (const auto& x : inputs) consts.push_back(constant(x));
        const Var<double> y = f(consts);
        if (!y.defined()) throw Error("gradgradcheck: the function returned an undefined Var");
        v = xt::xarray<double>(y.shape());
        std::mt19937_64 rng(0x6772616467726164ULL);
        std::uniform_real_distribution<double> u(-1.0, 1.0);
        for (auto& e : v) e = u(rng);
    }
    std::vector<xt::xarray<double>> all = inputs;
    all.push_back(v);
    const std::size_t n = inputs.size();
    const Eval<double> g = [&f, n](const std::vector<Var<double>>& p, bool recorded) {
        const std::vector<Var<double>> xs(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n));
        const Var<double> y = f(xs);
        if (!y.requires_grad()) {
            std::vector<Var<double>> zeros;
            zeros.reserve(xs.size());
            for (const auto& x : xs) zeros.push_back(constant(xt::xarray<double>(xt::zeros<double>(x.shape()))));
            return zeros;
        }
        return grad<double>({y}, xs, {p[n]}, {recorded, false, true});
    };
    return compare<double>("gradgradcheck", g, all, options);
}

}  // namespace tg
