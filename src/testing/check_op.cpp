// tg::testing::check_op: every generic check an op must pass, run over the op's samples and
// error inputs, each failure reported as one line that says which check, which sample and
// what disagreed. The test suite's generic op tests call it for every built-in op, so each
// check is written once, here.

#include "tapegrad/testing.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <typeinfo>

#include <xtensor/xarray.hpp>

#include "autograd/gradcheck_internal.hpp"
#include "autograd/tape_scope.hpp"
#include "tapegrad/autograd.hpp"
#include "tapegrad/gradcheck.hpp"

namespace tg::testing {
namespace {

using Failure = std::optional<std::string>;

const char* const kSamples = "samples";
const char* const kReference = "reference";
const char* const kGradcheck = "gradcheck";
const char* const kGradgradcheck = "gradgradcheck";
const char* const kKernelVsRule = "kernel_vs_rule";
const char* const kGradShapes = "grad_shapes";
const char* const kRetainGraph = "retain_graph";
const char* const kFloat32 = "float32";
const char* const kErrorInputs = "error_inputs";

std::string number(double v)
{
    std::ostringstream out;
    out.precision(10);
    out << v;
    return out.str();
}

// The name of the dynamic type of an exception, readable (std::runtime_error, not
// St13runtime_error).
std::string type_name(const std::type_info& t)
{
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> readable(abi::__cxa_demangle(t.name(), nullptr, nullptr, &status),
                                                    std::free);
    return status == 0 && readable ? std::string(readable.get()) : std::string(t.name());
}

// What an exception escaping a check was, for its failure line.
std::string describe_current_exception()
{
    try {
        throw;
    } catch (const Error& e) {
        return std::string("threw tg::Error: ") + e.what();
    } catch (const std::exception& e) {
        return "threw " + type_name(typeid(e)) + ": " + e.what();
    } catch (...) {
        return "threw an exception that is not a std::exception";
    }
}

// The first element where |got - want| > atol + rtol |want| (NaN matches NaN when
// nan_equal, equal infinities match), described as "element [i, j]: <got_name> X vs
// <want_name> Y". A plain loop over the data: xtensor's steppers offset the null data
// pointer of an empty array, which UBSan reports.
Failure mismatch(const xt::xarray<double>& got, const xt::xarray<double>& want, double rtol, double atol,
                 const char* got_name, const char* want_name, bool nan_equal = true)
{
    if (!std::equal(got.shape().begin(), got.shape().end(), want.shape().begin(), want.shape().end())) {
        return std::string(got_name) + " has shape " + format_shape(got.shape()) + ", " + want_name + " has " +
               format_shape(want.shape());
    }
    for (std::size_t k = 0; k < want.size(); ++k) {
        const double u = got.data()[k], w = want.data()[k];
        if (nan_equal && std::isnan(u) && std::isnan(w)) continue;
        if (u == w) continue;
        if (std::abs(u - w) <= atol + rtol * std::abs(w)) continue;
        return "element " + format_shape(detail::unravel(k, want.shape())) + ": " + got_name + " " + number(u) +
               " vs " + want_name + " " + number(w) + " (allowed " + number(atol) + " + " + number(rtol) + " * |" +
               want_name + "|)";
    }
    return std::nullopt;
}

template <class T> std::vector<Var<T>> parameters_of(const std::vector<xt::xarray<double>>& xs)
{
    std::vector<Var<T>> ps;
    ps.reserve(xs.size());
    for (const auto& x : xs) ps.push_back(parameter(xt::xarray<T>(xt::cast<T>(x))));
    return ps;
}

xt::xarray<double> uniform_like(std::mt19937_64& rng, const std::vector<std::size_t>& shape)
{
    return sample_uniform(rng, shape, -1.0, 1.0);
}

template <class S> std::vector<std::size_t> as_vector(const S& shape)
{
    return std::vector<std::size_t>(shape.begin(), shape.end());
}

GradcheckOptions tight()
{
    GradcheckOptions o;
    o.eps = 1e-6;
    o.atol = 1e-8;
    o.rtol = 1e-6;
    return o;
}

// A gradcheck message without its leading "gradcheck: " (the report names the check).
std::string without_prefix(const std::string& message)
{
    const auto colon = message.find(": ");
    return colon == std::string::npos ? message : message.substr(colon + 2);
}

// ---------------------------------------------------------------------------------------
// The checks on one sample. Each returns the failure's detail, or nothing when it passed.

Failure check_reference(const OpSample& s)
{
    std::vector<Var<double>> cs;
    for (const auto& x : s.inputs) cs.push_back(constant(x));
    const xt::xarray<double> y = s.f64(cs).value();
    const xt::xarray<double> want = s.reference(s.inputs);
    return mismatch(y, want, 1e-12, 1e-12, "value", "reference");
}

Failure check_gradcheck(const OpSample& s)
{
    const GradcheckResult r = gradcheck(s.f64, s.inputs, tight());
    if (r.ok) return std::nullopt;
    return without_prefix(r.message);
}

Failure check_gradgradcheck(const OpSample& s)
{
    const GradcheckResult r = gradgradcheck(s.f64, s.inputs, tight());
    if (r.ok) return std::nullopt;
    return without_prefix(r.message);
}

Failure check_kernel_vs_rule(const OpSample& s, std::mt19937_64& rng)
{
    const auto ps = parameters_of<double>(s.inputs);
    const Var<double> y = s.f64(ps);
    const xt::xarray<double> seed = uniform_like(rng, as_vector(y.shape()));
    GradOptions kernel, rule;
    kernel.retain_graph = rule.retain_graph = true;
    kernel.allow_unused = rule.allow_unused = true;
    rule.create_graph = true;
    const auto by_kernel = grad<double>({y}, ps, {constant(seed)}, kernel);
    const auto by_rule = grad<double>({y}, ps, {constant(seed)}, rule);
    for (std::size_t i = 0; i < ps.size(); ++i) {
        if (Failure f = mismatch(by_kernel[i].value(), by_rule[i].value(), 1e-12, 1e-14, "kernel", "rule"))
            return "input " + std::to_string(i) + ", " + *f;
    }
    return std::nullopt;
}

Failure check_grad_shapes(const OpSample& s)
{
    const auto ps = parameters_of<double>(s.inputs);
    Var<double> y = s.f64(ps);
    y.backward(xt::ones<double>(y.shape()));
    for (std::size_t i = 0; i < ps.size(); ++i) {
        if (!ps[i].has_grad()) return "input " + std::to_string(i) + " got no gradient";
        if (ps[i].grad().shape() != ps[i].shape()) {
            return "input " + std::to_string(i) + " has shape " + format_shape(ps[i].shape()) + ", its gradient has " +
                   format_shape(ps[i].grad().shape());
        }
    }
    return std::nullopt;
}

Failure check_retain_graph(const OpSample& s, std::mt19937_64& rng)
{
    const auto ps = parameters_of<double>(s.inputs);
    Var<double> y = s.f64(ps);
    const xt::xarray<double> seed = uniform_like(rng, as_vector(y.shape()));
    y.backward(seed, retain_graph);
    std::vector<xt::xarray<double>> once;
    once.reserve(ps.size());
    for (const auto& p : ps) once.push_back(p.grad());
    y.backward(seed);
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const xt::xarray<double> twice = 2.0 * once[i];
        if (Failure f = mismatch(ps[i].grad(), twice, 0, 0, "after two passes", "twice the first"))
            return "input " + std::to_string(i) + ", " + *f;
    }
    return std::nullopt;
}

Failure check_float32(const OpSample& s, std::mt19937_64& rng)
{
    if (!s.f32) return std::string("the sample has no float32 call (make_sample gives one)");
    const auto p64 = parameters_of<double>(s.inputs);
    const auto p32 = parameters_of<float>(s.inputs);
    Var<double> y64 = s.f64(p64);
    Var<float> y32 = s.f32(p32);
    const xt::xarray<double> v32 = xt::cast<double>(y32.value());
    if (Failure f = mismatch(v32, y64.value(), 1e-4, 1e-5, "float32", "float64")) return "value, " + *f;
    const xt::xarray<double> seed = uniform_like(rng, as_vector(y64.shape()));
    y64.backward(seed);
    y32.backward(xt::xarray<float>(xt::cast<float>(seed)));
    for (std::size_t i = 0; i < p64.size(); ++i) {
        const xt::xarray<double> g32 = xt::cast<double>(p32[i].grad());
        if (Failure f = mismatch(g32, p64[i].grad(), 1e-3, 1e-4, "float32", "float64", false))
            return "gradient of input " + std::to_string(i) + ", " + *f;
    }
    return std::nullopt;
}

// One error input in one scalar type: the call must throw a tg::Error that starts with
// "<op>: " and contains the expected text.
template <class T>
Failure check_refused(const std::string& op, const ErrorInput& e,
                      const std::function<void(const std::vector<Var<T>>&)>& call)
{
    if (!call) return std::string("the error input has no call for this scalar type");
    const auto ps = parameters_of<T>(e.inputs);
    try {
        call(ps);
    } catch (const Error& err) {
        const std::string message = err.what();
        if (message.rfind(op + ": ", 0) != 0) return "the tg::Error does not start with '" + op + ": ': " + message;
        if (!e.message.empty() && message.find(e.message) == std::string::npos)
            return "the tg::Error does not contain '" + e.message + "': " + message;
        return std::nullopt;
    } catch (const std::exception& err) {
        return "threw " + type_name(typeid(err)) + " instead of a tg::Error: " + err.what();
    } catch (...) {
        return std::string("threw an exception that is not a std::exception, instead of a tg::Error");
    }
    return std::string("the call did not throw");
}

Failure check_error_input(const std::string& op, const ErrorInput& e)
{
    if (Failure f = check_refused<double>(op, e, e.f64)) return "float64: " + *f;
    if (Failure f = check_refused<float>(op, e, e.f32)) return "float32: " + *f;
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------

// Runs the checks and collects the report.
class Checker {
public:
    Checker(const OpInfo& op, const CheckOptions& options) : op_(op), options_(options)
    {
        for (const auto& c : options.checks) {
            const auto& names = check_names();
            if (std::find(names.begin(), names.end(), c) == names.end()) {
                std::string known;
                for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
                throw Error("check_op: unknown check '" + c + "' (the checks are " + known + ")");
            }
        }
    }

    CheckReport run()
    {
        const std::uint64_t seed = options_.seed != 0 ? options_.seed : sample_seed(op_.name);
        std::vector<OpSample> samples;
        begin(kSamples);
        ++count().runs;
        try {
            std::mt19937_64 rng(seed);
            samples = op_.samples(rng);
        } catch (...) {
            fail(kSamples, "", "the sample generator " + describe_current_exception());
            return std::move(report_);
        }
        if (samples.empty()) fail(kSamples, "", "the sample generator gave no samples");
        std::set<std::string> labels;
        for (const auto& s : samples) {
            if (!labels.insert(s.label).second) fail(kSamples, s.label, "two samples have this label");
            if (!s.f64) fail(kSamples, s.label, "the sample has no float64 call");
        }
        if (report_.checks.back().failed > 0) return std::move(report_);

        if (wants(kReference)) {
            begin(kReference);
            std::size_t with_reference = 0;
            for (const auto& s : samples) {
                if (!s.reference) continue;
                ++with_reference;
                on_sample(kReference, s, [&] { return check_reference(s); });
            }
            if (with_reference == 0) fail(kReference, "", "no sample has a reference value");
        }
        per_sample(kGradcheck, samples, 0, [](const OpSample& s, std::mt19937_64&) { return check_gradcheck(s); });
        per_sample(kGradgradcheck, samples, 0,
                   [](const OpSample& s, std::mt19937_64&) { return check_gradgradcheck(s); });
        per_sample(kKernelVsRule, samples, seed + 1, check_kernel_vs_rule);
        per_sample(kGradShapes, samples, 0, [](const OpSample& s, std::mt19937_64&) { return check_grad_shapes(s); });
        per_sample(kRetainGraph, samples, seed + 2, check_retain_graph);
        per_sample(kFloat32, samples, seed + 3, check_float32);

        if (wants(kErrorInputs)) {
            begin(kErrorInputs);
            std::vector<ErrorInput> errors;
            if (op_.error_inputs) {
                try {
                    errors = op_.error_inputs();
                } catch (...) {
                    fail(kErrorInputs, "", "the error-input generator " + describe_current_exception());
                }
            }
            std::set<std::string> error_labels;
            for (const auto& e : errors) {
                if (!error_labels.insert(e.label).second) {
                    ++count().runs;
                    fail(kErrorInputs, e.label, "two error inputs have this label");
                    continue;
                }
                ++count().runs;
                Failure f;
                {
                    detail::TapeScope<double> scope64;
                    detail::TapeScope<float> scope32;
                    f = check_error_input(op_.name, e);
                }
                if (f) fail(kErrorInputs, e.label, *f);
            }
        }
        return std::move(report_);
    }

private:
    bool wants(const char* check) const
    {
        return options_.checks.empty() ||
               std::find(options_.checks.begin(), options_.checks.end(), check) != options_.checks.end();
    }

    void begin(const char* check) { report_.checks.push_back(CheckCount{check, 0, 0}); }
    CheckCount& count() { return report_.checks.back(); }

    void fail(const char* check, const std::string& label, const std::string& detail)
    {
        report_.ok = false;
        ++count().failed;
        std::string line = op_.name + ": " + check;
        if (!label.empty()) line += " on '" + label + "'";
        report_.failures.push_back(line + ": " + detail);
    }

    // Runs one check on one sample with whatever it records dropped after, turning an
    // exception into a failure.
    template <class F> void on_sample(const char* check, const OpSample& s, F&& body)
    {
        ++count().runs;
        Failure f;
        {
            detail::TapeScope<double> scope64;
            detail::TapeScope<float> scope32;
            try {
                f = body();
            } catch (...) {
                f = describe_current_exception();
            }
        }
        if (f) fail(check, s.label, *f);
    }

    template <class F>
    void per_sample(const char* check, const std::vector<OpSample>& samples, std::uint64_t seed, F&& body)
    {
        if (!wants(check)) return;
        begin(check);
        std::mt19937_64 rng(seed);
        for (const auto& s : samples) on_sample(check, s, [&] { return body(s, rng); });
    }

    const OpInfo& op_;
    const CheckOptions& options_;
    CheckReport report_;
};

}  // namespace

const std::vector<std::string>& check_names()
{
    static const std::vector<std::string> names{kSamples,    kReference,   kGradcheck, kGradgradcheck, kKernelVsRule,
                                                kGradShapes, kRetainGraph, kFloat32,   kErrorInputs};
    return names;
}

CheckReport check_op(const OpInfo& op, const CheckOptions& options)
{
    if (op.name.empty()) throw Error("check_op: the op has no name");
    if (!op.samples) throw Error("check_op: op '" + op.name + "' has no sample generator");
    return Checker(op, options).run();
}

CheckReport check_op(const std::string& op_name, const CheckOptions& options)
{
    std::optional<OpInfo> found;
    for (const auto& op : registered_ops()) {
        if (op.name == op_name) {
            found = op;
            break;
        }
    }
    if (!found) throw Error("check_op: no op named '" + op_name + "' is registered");
    return check_op(*found, options);
}

CheckReport check_op(const std::string& op_name)
{
    return check_op(op_name, CheckOptions{});
}

}  // namespace tg::testing
