// gradcheck: the tape's Jacobian (one vector-Jacobian product per output element) against
// central differences, entry by entry.

#include "tapegrad/gradcheck.hpp"

#include <cmath>
#include <sstream>

#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"

namespace tg {
namespace {

template <class S> std::vector<std::size_t> unravel(std::size_t flat, const S& shape)
{
    std::vector<std::size_t> idx(shape.size());
    for (std::size_t j = shape.size(); j-- > 0;) {
        idx[j] = flat % shape[j];
        flat /= shape[j];
    }
    return idx;
}

template <class T, class F>
GradcheckResult check(const F& f, const std::vector<xt::xarray<T>>& inputs, const GradcheckOptions& o)
{
    if (!(o.eps > 0)) throw Error("gradcheck: eps must be positive, got " + std::to_string(o.eps));
    std::vector<Var<T>> params;
    params.reserve(inputs.size());
    for (const auto& x : inputs) params.push_back(parameter(x));

    // Analytic Jacobian, one row per output element.
    Var<T> y = f(params);
    if (!y.defined()) throw Error("gradcheck: the function returned an undefined Var");
    const auto out_shape = y.shape();
    const std::size_t m = y.size();
    std::vector<std::size_t> sizes;
    std::size_t total_in = 0;
    for (const auto& x : inputs) {
        sizes.push_back(x.size());
        total_in += x.size();
    }
    std::vector<double> analytic(m * total_in, 0.0);
    if (y.requires_grad()) {
        for (std::size_t j = 0; j < m; ++j) {
            for (auto& p : params) p.zero_grad();
            xt::xarray<T> seed = xt::zeros<T>(out_shape);
            seed.data()[j] = T(1);
            BackwardOptions bo;
            bo.retain_graph = j + 1 < m;
            y.backward(seed, bo);
            std::size_t col = 0;
            for (std::size_t i = 0; i < params.size(); ++i) {
                if (params[i].has_grad()) {
                    const auto& g = params[i].grad();
                    if (g.shape() != params[i].shape()) {
                        throw Error("gradcheck: the gradient of input " + std::to_string(i) + " has shape " +
                                    format_shape(g.shape()) + ", the input has " + format_shape(params[i].shape()));
                    }
                    for (std::size_t k = 0; k < sizes[i]; ++k) analytic[j * total_in + col + k] = g.data()[k];
                }
                col += sizes[i];
            }
        }
    }

    // Numerical Jacobian, one column per input element.
    std::vector<double> numerical(m * total_in, 0.0);
    {
        NoGradGuard guard;
        std::size_t col = 0;
        for (std::size_t i = 0; i < params.size(); ++i) {
            xt::xarray<T> x = inputs[i];
            for (std::size_t k = 0; k < sizes[i]; ++k, ++col) {
                const T orig = x.data()[k];
                x.data()[k] = static_cast<T>(orig + o.eps);
                params[i].set_value(x);
                const xt::xarray<T> plus = f(params).value();
                x.data()[k] = static_cast<T>(orig - o.eps);
                params[i].set_value(x);
                const xt::xarray<T> minus = f(params).value();
                x.data()[k] = orig;
                params[i].set_value(x);
                if (plus.size() != m || minus.size() != m) {
                    throw Error("gradcheck: the function's output changed shape between evaluations (" +
                                format_shape(out_shape) + " vs " + format_shape(plus.shape()) + ")");
                }
                // The step actually taken, which float rounding may make differ from eps.
                const double h = static_cast<double>(static_cast<T>(orig + o.eps)) -
                                 static_cast<double>(static_cast<T>(orig - o.eps));
                for (std::size_t j = 0; j < m; ++j) {
                    numerical[j * total_in + col] =
                        (static_cast<double>(plus.data()[j]) - static_cast<double>(minus.data()[j])) / h;
                }
            }
        }
    }

    GradcheckResult r;
    double worst = -1;  // error / allowed
    bool analytic_all_zero = true;
    double numeric_max = 0;
    std::size_t worst_j = 0, worst_c = 0;
    for (std::size_t j = 0; j < m; ++j) {
        for (std::size_t c = 0; c < total_in; ++c) {
            const double a = analytic[j * total_in + c];
            const double n = numerical[j * total_in + c];
            const double err = std::abs(a - n);
            analytic_all_zero = analytic_all_zero && a == 0.0;
            numeric_max = std::max(numeric_max, std::abs(n));
            const bool bad = !(err <= o.atol + o.rtol * std::abs(n));  // NaN counts as bad
            const double score = bad && !(err == err) ? HUGE_VAL : err / (o.atol + o.rtol * std::abs(n));
            if (err > r.max_abs_error || err != err) r.max_abs_error = err;
            if (n != 0.0 && (err / std::abs(n) > r.max_rel_error || err != err)) r.max_rel_error = err / std::abs(n);
            if (bad) r.ok = false;
            if (score > worst) {
                worst = score;
                worst_j = j;
                worst_c = c;
            }
        }
    }
    if (m * total_in > 0) {
        std::size_t c = worst_c, i = 0;
        while (c >= sizes[i]) c -= sizes[i++];
        r.input = i;
        r.input_index = unravel(c, inputs[i].shape());
        r.output_index = unravel(worst_j, out_shape);
        r.analytic = analytic[worst_j * total_in + worst_c];
        r.numerical = numerical[worst_j * total_in + worst_c];
    }

    std::ostringstream msg;
    msg.precision(6);
    const bool zero_fail = analytic_all_zero && numeric_max > o.atol;
    if (zero_fail) r.ok = false;
    if (r.ok) {
        msg << "gradcheck: ok (" << inputs.size() << " inputs, " << total_in << " input elements, " << m
            << " output elements; max abs error " << r.max_abs_error << ", max rel error " << r.max_rel_error << ")";
    } else if (zero_fail) {
        msg << "gradcheck: the tape's gradient is all zeros but the numerical one is not (largest |numerical| "
            << numeric_max << " at input " << r.input << ", element " << format_shape(r.input_index)
            << ", output element " << format_shape(r.output_index) << ")";
    } else {
        msg << "gradcheck: input " << r.input << ", element " << format_shape(r.input_index) << ", output element "
            << format_shape(r.output_index) << ": analytic " << r.analytic << " vs numerical " << r.numerical
            << " (abs error " << std::abs(r.analytic - r.numerical) << "; allowed " << o.atol << " + " << o.rtol
            << " * |numerical|; max abs error " << r.max_abs_error << ", max rel error " << r.max_rel_error << ")";
    }
    r.message = msg.str();
    return r;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<xt::xarray<double>>& inputs,
                          const GradcheckOptions& options)
{
    return check<double>(f, inputs, options);
}

GradcheckResult gradcheck(const GradcheckFnF& f, const std::vector<xt::xarray<float>>& inputs,
                          const GradcheckOptions& options)
{
    return check<float>(f, inputs, options);
}

}  // namespace tg
