// Checks and transforms of a module's loss with respect to its parameters, by name:
// gradcheck, gradgradcheck and the Hessian-vector product. They work on the module's own
// parameters (perturbed in place, differentiated directly), so they need nothing from the
// module's forward beyond computing the loss.

#include <random>
#include <set>

#include "autograd/gradcheck_internal.hpp"
#include "autograd/tape_scope.hpp"
#include "tapegrad/autograd.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/nn.hpp"

namespace tg {
namespace {

std::string quote(const std::string& s)
{
    return "'" + s + "'";
}

// The parameters the checks differentiate: those that require grad, with their names.
template <class T> struct Trainable {
    std::vector<std::string> names;
    std::vector<Var<T>> vars;
};

template <class T> Trainable<T> trainable(const nn::Module<T>& module)
{
    Trainable<T> t;
    for (const auto& [name, var] : module.named_parameters()) {
        if (!var.requires_grad()) continue;
        t.names.push_back(name);
        t.vars.push_back(var);
    }
    return t;
}

// The module's buffers and generators and the thread's default generator as they were when
// this was made: restore() puts them back (before every evaluation of a check, so that
// running statistics and dropout masks are the same in each), and so does the destructor.
template <class T> class StateSnapshot {
public:
    explicit StateSnapshot(nn::Module<T>& module)
        : buffers_(module.named_buffers()), generators_(module.named_generators()), default_(default_generator())
    {
        for (const auto& nb : buffers_) {
            if (nb.second.values != nullptr) values_.push_back(*nb.second.values);
            if (nb.second.count != nullptr) counts_.push_back(*nb.second.count);
        }
        for (const auto& ng : generators_) states_.push_back(*ng.second);
    }
    StateSnapshot(const StateSnapshot&) = delete;
    StateSnapshot& operator=(const StateSnapshot&) = delete;
    ~StateSnapshot() { restore(); }

    void restore()
    {
        std::size_t v = 0, c = 0;
        for (const auto& nb : buffers_) {
            if (nb.second.values != nullptr) *nb.second.values = values_[v++];
            if (nb.second.count != nullptr) *nb.second.count = counts_[c++];
        }
        for (std::size_t g = 0; g < generators_.size(); ++g) *generators_[g].second = states_[g];
        default_generator() = default_;
    }

private:
    std::vector<std::pair<std::string, nn::BufferRef<T>>> buffers_;
    std::vector<std::pair<std::string, Generator*>> generators_;
    std::vector<xt::xarray<T>> values_;
    std::vector<std::int64_t> counts_;
    std::vector<Generator> states_;
    Generator default_;
};

template <class T> Var<T> call_loss(const char* who, const std::function<Var<T>()>& loss)
{
    Var<T> y = loss();
    if (!y.defined()) throw Error(std::string(who) + ": the loss function returned an undefined Var");
    return y;
}

}  // namespace

GradcheckResult gradcheck(nn::Module<double>& module, const std::function<Var<double>()>& loss,
                          const GradcheckOptions& options)
{
    if (!loss) throw Error("gradcheck: the loss function is empty");
    const Trainable<double> params = trainable(module);
    if (params.vars.empty()) throw Error("gradcheck: " + module.type_name() + " has no parameter that requires grad");
    StateSnapshot<double> state(module);
    const detail::LeafEval f = [&](const std::vector<Var<double>>&, bool) {
        state.restore();
        return std::vector<Var<double>>{call_loss("gradcheck", loss)};
    };
    return detail::gradcheck_leaves("gradcheck", f, params.vars, params.names, false, options);
}

GradcheckResult gradgradcheck(nn::Module<double>& module, const std::function<Var<double>()>& loss,
                              const GradcheckOptions& options)
{
    if (!loss) throw Error("gradgradcheck: the loss function is empty");
    const Trainable<double> params = trainable(module);
    if (params.vars.empty())
        throw Error("gradgradcheck: " + module.type_name() + " has no parameter that requires grad");
    StateSnapshot<double> state(module);
    // The grad_outputs: the loss's shape, values drawn from a fixed seed (as gradgradcheck).
    xt::xarray<double> v;
    {
        NoGradGuard guard;
        const Var<double> y = call_loss("gradgradcheck", loss);
        v = xt::xarray<double>(y.shape());
        std::mt19937_64 rng(0x6d6f64756c65ULL);
        std::uniform_real_distribution<double> u(-1.0, 1.0);
        for (auto& e : v) e = u(rng);
    }
    std::vector<Var<double>> leaves = params.vars;
    leaves.push_back(parameter(v));
    const std::size_t n = params.vars.size();
    const detail::LeafEval f = [&](const std::vector<Var<double>>& p, bool recorded) {
        state.restore();
        const std::vector<Var<double>> xs(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n));
        const Var<double> y = call_loss("gradgradcheck", loss);
        if (!y.requires_grad()) {
            std::vector<Var<double>> zeros;
            zeros.reserve(xs.size());
            for (const auto& x : xs) zeros.push_back(constant(xt::xarray<double>(xt::zeros<double>(x.shape()))));
            return zeros;
        }
        return grad<double>({y}, xs, {p[n]}, {recorded, false, true});
    };
    return detail::gradcheck_leaves("gradgradcheck", f, leaves, params.names, true, options);
}

// The parameter types are spelled as in the declaration (scalar_t keeps T from being
// deduced from them), which makes them part of the function's name for the linker.
template <class T>
std::map<std::string, xt::xarray<T>> hvp(nn::Module<T>& module, const std::function<Var<detail::scalar_t<T>>()>& loss,
                                         const std::map<std::string, xt::xarray<detail::scalar_t<T>>>& v)
{
    if (!loss) throw Error("hvp: the loss function is empty");
    const Trainable<T> params = trainable(module);
    std::vector<std::string> problems;
    std::set<std::string> known(params.names.begin(), params.names.end());
    std::vector<xt::xarray<T>> direction;
    for (std::size_t i = 0; i < params.names.size(); ++i) {
        const auto it = v.find(params.names[i]);
        if (it == v.end()) {
            direction.push_back(xt::zeros<T>(params.vars[i].shape()));
        } else if (it->second.shape() != params.vars[i].shape()) {
            problems.push_back("v[" + quote(it->first) + "] is " + format_shape(it->second.shape()) +
                               " but the parameter is " + format_shape(params.vars[i].shape()));
        } else {
            direction.push_back(it->second);
        }
    }
    for (const auto& kv : v) {
        if (known.count(kv.first) == 0)
            problems.push_back(module.type_name() + " has no parameter " + quote(kv.first) + " that requires grad");
    }
    if (!problems.empty()) {
        std::string message = "hvp: ";
        for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
        throw Error(message);
    }
    std::map<std::string, xt::xarray<T>> out;
    for (std::size_t i = 0; i < params.names.size(); ++i) out[params.names[i]] = xt::zeros<T>(params.vars[i].shape());
    detail::TapeScope<T> scope;  // drops what the loss and the gradients record
    const Var<T> y = call_loss("hvp", loss);
    if (y.size() != 1) throw Error("hvp: the loss must have one element, got shape " + format_shape(y.shape()));
    if (!y.requires_grad() || params.vars.empty()) return out;
    const std::vector<Var<T>> g = grad<T>({y}, params.vars, {}, {true, true, true});
    // Only gradients that still depend on the parameters have a second derivative; the
    // others (a loss linear in a parameter) contribute nothing to H v.
    std::vector<Var<T>> outputs, seeds;
    for (std::size_t i = 0; i < g.size(); ++i) {
        if (!g[i].requires_grad()) continue;
        outputs.push_back(g[i]);
        seeds.push_back(constant(direction[i]));
    }
    if (outputs.empty()) return out;
    const std::vector<Var<T>> hv = grad<T>(outputs, params.vars, seeds, {false, true, true});
    for (std::size_t i = 0; i < params.names.size(); ++i) out[params.names[i]] = hv[i].value();
    return out;
}

// NOLINTBEGIN(bugprone-macro-parentheses): T names a type
#define TAPEGRAD_MODULE_HVP(T)                                                                                         \
    template std::map<std::string, xt::xarray<T>> hvp<T>(                                                              \
        nn::Module<T>&, const std::function<Var<detail::scalar_t<T>>()>&,                                              \
        const std::map<std::string, xt::xarray<detail::scalar_t<T>>>&);
// NOLINTEND(bugprone-macro-parentheses)
TAPEGRAD_MODULE_HVP(float)
TAPEGRAD_MODULE_HVP(double)
#undef TAPEGRAD_MODULE_HVP

}  // namespace tg
