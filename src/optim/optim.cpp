// Optimisers, schedules and clipping. Updates are plain loops over the parameter's own
// memory: no temporaries, nothing recorded, the same arithmetic order as PyTorch's
// single-tensor implementations.

#include "tapegrad/optim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "tapegrad/kit/kernels.hpp"

namespace tg::optim {
namespace {

std::string num(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
}

void require(bool ok, const std::string& who, const std::string& what, double value)
{
    if (!ok) throw Error(who + ": " + what + ", got " + num(value));
}

// Hyperparameters must be finite as well: lr = inf or gamma = inf drives weights to -inf.
void require_finite(const std::string& who, const char* what, double value)
{
    if (!std::isfinite(value)) throw Error(who + ": " + what + " must be finite, got " + num(value));
}

// The largest count a double holds exactly: state is stored as float64.
constexpr double max_count = 9007199254740992.0;  // 2^53

// One SGD update, torch.optim.SGD's arithmetic, element by element.
template <class T, bool WeightDecay, bool Momentum, bool Nesterov>
void sgd_kernel(std::size_t n, const T* g, T* w, T* buf, bool first, T lr, T wd, T mom, T damp)
{
    kernel::for_each_lane<T>(n, [&](std::size_t i, auto tag) {
        using V = decltype(tag);
        V d = kernel::load<V>(g, i);
        V wi = kernel::load<V>(w, i);
        if constexpr (WeightDecay) d = d + V(wd) * wi;
        if constexpr (Momentum) {
            V b = first ? d : kernel::load<V>(buf, i) * V(mom) + V(damp) * d;
            kernel::store(buf, i, b);
            d = Nesterov ? d + V(mom) * b : b;
        }
        kernel::store(w, i, wi - V(lr) * d);
    });
}

// One Adam/AdamW update, torch.optim.Adam's arithmetic, element by element.
template <class T, bool Decoupled, bool WeightDecay, bool Amsgrad>
void adam_kernel(std::size_t n, const T* g, T* w, T* m, T* v, T* vm, T b1, T b2, T wd, T decay, T step_size,
                 T inv_bc2_sqrt, T eps)
{
    kernel::for_each_lane<T>(n, [&](std::size_t i, auto tag) {
        using V = decltype(tag);
        V d = kernel::load<V>(g, i);
        V wi = kernel::load<V>(w, i);
        if constexpr (Decoupled && WeightDecay) wi = wi * V(decay);
        if constexpr (!Decoupled && WeightDecay) d = d + V(wd) * wi;
        const V mi = kernel::load<V>(m, i) * V(b1) + V(T(1) - b1) * d;
        const V vi = kernel::load<V>(v, i) * V(b2) + V(T(1) - b2) * (d * d);
        kernel::store(m, i, mi);
        kernel::store(v, i, vi);
        V second = vi;
        if constexpr (Amsgrad) {
            second = kernel::lane_max(kernel::load<V>(vm, i), vi);
            kernel::store(vm, i, second);
        }
        // sqrt(v) / sqrt(1 - b2^t) as a product with the reciprocal: one division per
        // element instead of two (the updates stay within an ulp of PyTorch's).
        const V denom = xsimd::sqrt(second) * V(inv_bc2_sqrt) + V(eps);
        kernel::store(w, i, wi - V(step_size) * (mi / denom));
    });
}

}  // namespace

// --- Optimizer ---------------------------------------------------------------------------

template <class T>
Optimizer<T>::Optimizer(std::vector<Var<T>> params, double lr, std::string name, std::vector<std::string> buffer_names)
    : params_(std::move(params)), lr_(lr), name_(std::move(name)), buffer_names_(std::move(buffer_names))
{
    require_finite(name_, "lr", lr);
    require(lr > 0, name_, "lr must be positive", lr);
    if (params_.empty()) throw Error(name_ + ": the parameter list is empty");
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Var<T>& p = params_[i];
        if (!p.defined()) throw Error(name_ + ": parameter " + std::to_string(i) + " is undefined");
        if (!p.is_leaf()) {
            throw Error(name_ + ": parameter " + std::to_string(i) +
                        " is the output of an op, not a leaf; pass tg::parameter values");
        }
        if (!p.requires_grad()) {
            throw Error(name_ + ": parameter " + std::to_string(i) + " (shape " + format_shape(p.shape()) +
                        ") is a constant and never gets a gradient; pass tg::parameter values");
        }
        // One parameter twice would be updated twice per step (PyTorch refuses it too).
        for (std::size_t j = 0; j < i; ++j) {
            if (params_[j].raw_node() == p.raw_node()) {
                throw Error(name_ + ": parameter " + std::to_string(i) + " (shape " + format_shape(p.shape()) +
                            ") is the same Var as parameter " + std::to_string(j) + "; each parameter may appear once");
            }
        }
    }
    param_steps_.assign(params_.size(), 0);
    buffers_.assign(buffer_names_.size(), std::vector<xt::xarray<T>>(params_.size()));
    present_.assign(buffer_names_.size(), std::vector<bool>(params_.size(), false));
}

template <class T> void Optimizer<T>::zero_grad()
{
    for (auto& p : params_) p.zero_grad();
}

template <class T> void Optimizer<T>::set_lr(double lr)
{
    require_finite(name_, "lr", lr);
    require(lr > 0 || lr == 0, name_, "lr must not be negative", lr);
    lr_ = lr;
}

template <class T> xt::xarray<T>& Optimizer<T>::buffer(std::size_t b, std::size_t i)
{
    if (!present_[b][i]) {
        buffers_[b][i] = xt::zeros<T>(params_[i].shape());
        present_[b][i] = true;
    }
    return buffers_[b][i];
}

template <class T> bool Optimizer<T>::parse(const std::string& name, std::size_t& param, std::size_t& buf) const
{
    const auto dot = name.find('.');
    if (dot == std::string::npos || dot == 0) return false;
    const std::string index = name.substr(0, dot), rest = name.substr(dot + 1);
    // Digit by digit: an index of 20 digits is an unknown entry, not std::out_of_range.
    param = 0;
    for (const char c : index) {
        if (c < '0' || c > '9') return false;
        if (param >= params_.size()) return false;
        param = param * 10 + static_cast<std::size_t>(c - '0');
    }
    if (param >= params_.size()) return false;
    if (rest == "step") {
        buf = buffer_names_.size();
        return true;
    }
    for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
        if (buffer_names_[b] == rest) {
            buf = b;
            return true;
        }
    }
    return false;
}

template <class T> void Optimizer<T>::throw_unknown(const std::string& name) const
{
    std::string known = "lr, step, <i>.step";
    for (const auto& b : buffer_names_) known += ", <i>." + b;
    throw Error(name_ + ": unknown state entry '" + name + "' (known: " + known + ", with i < " +
                std::to_string(params_.size()) + ")");
}

template <class T> std::vector<std::string> Optimizer<T>::state_names() const
{
    std::vector<std::string> out{"lr", "step"};
    for (std::size_t i = 0; i < params_.size(); ++i) {
        out.push_back(std::to_string(i) + ".step");
        for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
            if (present_[b][i]) out.push_back(std::to_string(i) + "." + buffer_names_[b]);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

template <class T> xt::xarray<double> Optimizer<T>::state(const std::string& name) const
{
    if (name == "lr") return xt::xarray<double>(lr_);
    if (name == "step") return xt::xarray<double>(static_cast<double>(steps_));
    std::size_t i = 0, b = 0;
    if (!parse(name, i, b)) throw_unknown(name);
    if (b == buffer_names_.size()) return xt::xarray<double>(static_cast<double>(param_steps_[i]));
    if (!present_[b][i]) throw Error(name_ + ": state entry '" + name + "' does not exist yet (no step has made it)");
    return xt::cast<double>(buffers_[b][i]);
}

template <class T>
void Optimizer<T>::apply_state(const std::string& name, const xt::xarray<double>& value, State& into) const
{
    auto scalar = [&](const char* what) {
        if (value.size() != 1) {
            throw Error(name_ + ": state entry '" + name + "' (" + what + ") takes one value, got shape " +
                        format_shape(value.shape()));
        }
        return value.data()[0];
    };
    auto count = [&](double v) {
        // Checked before the conversion: 1e30 or inf as an integer is undefined behaviour.
        if (!(v >= 0 && v <= max_count) || v != std::floor(v))
            throw Error(name_ + ": state entry '" + name + "' must be a count (an integer in [0, 2^53]), got " +
                        num(v));
        return static_cast<std::uint64_t>(v);
    };
    if (name == "lr") {
        const double lr = scalar("learning rate");
        if (!std::isfinite(lr) || lr < 0)
            throw Error(name_ + ": state entry 'lr' must be a finite learning rate >= 0, got " + num(lr));
        into.lr = lr;
        return;
    }
    if (name == "step") {
        into.steps = count(scalar("step count"));
        return;
    }
    std::size_t i = 0, b = 0;
    if (!parse(name, i, b)) throw_unknown(name);
    if (b == buffer_names_.size()) {
        into.param_steps[i] = count(scalar("step count"));
        return;
    }
    if (value.shape() != params_[i].shape()) {
        throw Error(name_ + ": state entry '" + name + "' has shape " + format_shape(value.shape()) + ", parameter " +
                    std::to_string(i) + " has shape " + format_shape(params_[i].shape()));
    }
    into.buffers[b][i] = xt::cast<T>(value);
    into.present[b][i] = true;
}

template <class T> void Optimizer<T>::set_state(const std::string& name, const xt::xarray<double>& value)
{
    // One entry: checked before it is written, so the optimiser changes only on success.
    State s{lr_, steps_, {}, {}, {}};
    std::size_t i = 0, b = 0;
    const bool per_buffer = parse(name, i, b) && b < buffer_names_.size();
    s.param_steps = param_steps_;
    if (per_buffer) {
        s.buffers.assign(buffer_names_.size(), std::vector<xt::xarray<T>>(params_.size()));
        s.present.assign(buffer_names_.size(), std::vector<bool>(params_.size(), false));
    }
    apply_state(name, value, s);
    lr_ = s.lr;
    steps_ = s.steps;
    param_steps_ = std::move(s.param_steps);
    if (per_buffer) {
        buffers_[b][i] = std::move(s.buffers[b][i]);
        present_[b][i] = true;
    }
}

template <class T> std::map<std::string, xt::xarray<double>> Optimizer<T>::state_dict() const
{
    std::map<std::string, xt::xarray<double>> out;
    for (const auto& n : state_names()) out.emplace(n, state(n));
    return out;
}

template <class T> void Optimizer<T>::load_state_dict(const std::map<std::string, xt::xarray<double>>& state)
{
    // All or nothing: the new state is built on the side from every entry, each checked,
    // and swapped in only when all of them fit.
    State s{lr_, steps_, std::vector<std::uint64_t>(params_.size(), 0),
            std::vector<std::vector<xt::xarray<T>>>(buffer_names_.size(), std::vector<xt::xarray<T>>(params_.size())),
            std::vector<std::vector<bool>>(buffer_names_.size(), std::vector<bool>(params_.size(), false))};
    for (const auto& kv : state) apply_state(kv.first, kv.second, s);
    lr_ = s.lr;
    steps_ = s.steps;
    param_steps_ = std::move(s.param_steps);
    buffers_ = std::move(s.buffers);
    present_ = std::move(s.present);
}

template <class T> void Optimizer<T>::check_shapes() const
{
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Var<T>& p = params_[i];
        if (!p.has_grad()) continue;
        const auto& shape = p.shape();
        auto refuse = [&](const std::string& what, const xt::xarray<T>& a) {
            throw Error(name_ + ": parameter " + std::to_string(i) + " has shape " + format_shape(shape) + " but its " +
                        what + " has shape " + format_shape(a.shape()) +
                        "; a parameter's shape must not change (mutable_value() may change values only)");
        };
        if (!detail::shapes_equal(p.grad().shape(), shape)) refuse("gradient", p.grad());
        for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
            if (present_[b][i] && !detail::shapes_equal(buffers_[b][i].shape(), shape))
                refuse(buffer_names_[b], buffers_[b][i]);
        }
    }
}

// --- SGD ---------------------------------------------------------------------------------

template <class T>
SGD<T>::SGD(std::vector<Var<T>> params, SGDOptions o)
    : Optimizer<T>(std::move(params), o.lr, "SGD", {"momentum_buffer"}), options_(o)
{
    require_finite("SGD", "momentum", o.momentum);
    require_finite("SGD", "dampening", o.dampening);
    require_finite("SGD", "weight_decay", o.weight_decay);
    require(o.momentum >= 0, "SGD", "momentum must not be negative", o.momentum);
    require(o.dampening >= 0, "SGD", "dampening must not be negative", o.dampening);
    require(o.weight_decay >= 0, "SGD", "weight_decay must not be negative", o.weight_decay);
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
        throw Error("SGD: nesterov needs momentum > 0 and dampening = 0, got momentum " + num(o.momentum) +
                    ", dampening " + num(o.dampening));
    }
}

template <class T> void SGD<T>::step()
{
    this->check_shapes();
    const T lr = static_cast<T>(this->lr_);
    const T wd = static_cast<T>(options_.weight_decay);
    const T mom = static_cast<T>(options_.momentum);
    const T damp = static_cast<T>(1.0 - options_.dampening);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
        const Var<T>& p = this->params_[i];
        if (!p.has_grad()) continue;
        const T* g = p.grad().data();
        const bool first = !this->has_buffer(0, i);
        T* buf = mom != 0 ? this->buffer(0, i).data() : nullptr;
        T* w = p.mutable_value().data();
        const std::size_t n = p.size();
        const bool nesterov = options_.nesterov;
        if (wd != 0) {
            if (mom == 0)
                sgd_kernel<T, true, false, false>(n, g, w, buf, first, lr, wd, mom, damp);
            else if (nesterov)
                sgd_kernel<T, true, true, true>(n, g, w, buf, first, lr, wd, mom, damp);
            else
                sgd_kernel<T, true, true, false>(n, g, w, buf, first, lr, wd, mom, damp);
        } else {
            if (mom == 0)
                sgd_kernel<T, false, false, false>(n, g, w, buf, first, lr, wd, mom, damp);
            else if (nesterov)
                sgd_kernel<T, false, true, true>(n, g, w, buf, first, lr, wd, mom, damp);
            else
                sgd_kernel<T, false, true, false>(n, g, w, buf, first, lr, wd, mom, damp);
        }
        ++this->param_steps_[i];
    }
    ++this->steps_;
}

// --- Adam / AdamW ------------------------------------------------------------------------

template <class T> Adam<T>::Adam(std::vector<Var<T>> params, AdamOptions o) : Adam(std::move(params), o, false, "Adam")
{}

template <class T>
Adam<T>::Adam(std::vector<Var<T>> params, AdamOptions o, bool decoupled, const char* name)
    : Optimizer<T>(std::move(params), o.lr, name, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}), options_(o),
      decoupled_(decoupled)
{
    require(o.beta1 >= 0 && o.beta1 < 1, name, "beta1 must be in [0, 1)", o.beta1);
    require(o.beta2 >= 0 && o.beta2 < 1, name, "beta2 must be in [0, 1)", o.beta2);
    require_finite(name, "eps", o.eps);
    require_finite(name, "weight_decay", o.weight_decay);
    require(o.eps >= 0, name, "eps must not be negative", o.eps);
    require(o.weight_decay >= 0, name, "weight_decay must not be negative", o.weight_decay);
}

template <class T> void Adam<T>::step()
{
    this->check_shapes();
    const AdamOptions& o = options_;
    const T b1 = static_cast<T>(o.beta1), b2 = static_cast<T>(o.beta2);
    const T wd = static_cast<T>(o.weight_decay);
    const T eps = static_cast<T>(o.eps);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
        const Var<T>& p = this->params_[i];
        if (!p.has_grad()) continue;
        const std::uint64_t t = ++this->param_steps_[i];
        const T* g = p.grad().data();
        T* m = this->buffer(0, i).data();
        T* v = this->buffer(1, i).data();
        T* vmax = o.amsgrad ? this->buffer(2, i).data() : nullptr;
        T* w = p.mutable_value().data();
        // PyTorch computes the bias corrections in Python floats (double).
        const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
        const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
        const T step_size = static_cast<T>(this->lr_ / bc1);
        const T inv_bc2_sqrt = static_cast<T>(1.0 / std::sqrt(bc2));
        const T decay = static_cast<T>(1.0 - this->lr_ * o.weight_decay);
        const std::size_t n = p.size();
        const bool has_wd = wd != 0;
        auto run = [&](auto decoupled, auto with_wd, auto amsgrad) {
            adam_kernel<T, decltype(decoupled)::value, decltype(with_wd)::value, decltype(amsgrad)::value>(
                n, g, w, m, v, vmax, b1, b2, wd, decay, step_size, inv_bc2_sqrt, eps);
        };
        using Y = std::true_type;
        using N = std::false_type;
        if (decoupled_) {
            if (has_wd)
                o.amsgrad ? run(Y{}, Y{}, Y{}) : run(Y{}, Y{}, N{});
            else
                o.amsgrad ? run(Y{}, N{}, Y{}) : run(Y{}, N{}, N{});
        } else {
            if (has_wd)
                o.amsgrad ? run(N{}, Y{}, Y{}) : run(N{}, Y{}, N{});
            else
                o.amsgrad ? run(N{}, N{}, Y{}) : run(N{}, N{}, N{});
        }
    }
    ++this->steps_;
}

template <class T>
AdamW<T>::AdamW(std::vector<Var<T>> params, AdamWOptions o) : Adam<T>(std::move(params), o, true, "AdamW")
{}

// --- schedules ---------------------------------------------------------------------------

template <class T>
LRScheduler<T>::LRScheduler(Optimizer<T>& opt, const char* name)
    : opt_(opt), name_(name), base_lr_(opt.lr()), last_lr_(opt.lr())
{}

template <class T> void LRScheduler<T>::step()
{
    if (opt_.step_count() == 0) {
        throw Error(std::string(name_) + ": step() was called before the optimiser's first step(); call " +
                    opt_.name() + ".step() for the epoch's batches first, then the schedule's step()");
    }
    set_epoch(epoch_ + 1);
}

template <class T> void LRScheduler<T>::set_epoch(std::uint64_t epoch)
{
    // Computed and checked before anything changes (a huge gamma overflows to inf).
    const double lr = lr_at(epoch);
    if (!std::isfinite(lr) || lr < 0) {
        throw Error(std::string(name_) + ": the learning rate at epoch " + std::to_string(epoch) + " would be " +
                    num(lr) + "; it must be finite and not negative");
    }
    opt_.set_lr(lr);
    epoch_ = epoch;
    last_lr_ = lr;
}

template <class T>
StepLR<T>::StepLR(Optimizer<T>& opt, std::uint64_t step_size, double gamma)
    : LRScheduler<T>(opt, "StepLR"), step_size_(step_size), gamma_(gamma)
{
    require(step_size > 0, "StepLR", "step_size must be positive", static_cast<double>(step_size));
    require_finite("StepLR", "gamma", gamma);
    require(gamma > 0, "StepLR", "gamma must be positive", gamma);
}

template <class T> double StepLR<T>::lr_at(std::uint64_t epoch) const
{
    // NOLINTNEXTLINE(bugprone-integer-division): whole steps taken, floor(epoch / step_size) as torch
    return this->base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

template <class T>
ExponentialLR<T>::ExponentialLR(Optimizer<T>& opt, double gamma) : LRScheduler<T>(opt, "ExponentialLR"), gamma_(gamma)
{
    require_finite("ExponentialLR", "gamma", gamma);
    require(gamma > 0, "ExponentialLR", "gamma must be positive", gamma);
}

template <class T> double ExponentialLR<T>::lr_at(std::uint64_t epoch) const
{
    return this->base_lr_ * std::pow(gamma_, static_cast<double>(epoch));
}

template <class T>
CosineAnnealingLR<T>::CosineAnnealingLR(Optimizer<T>& opt, std::uint64_t t_max, double eta_min)
    : LRScheduler<T>(opt, "CosineAnnealingLR"), t_max_(t_max), eta_min_(eta_min)
{
    require(t_max > 0, "CosineAnnealingLR", "t_max must be positive", static_cast<double>(t_max));
    require_finite("CosineAnnealingLR", "eta_min", eta_min);
    require(eta_min >= 0, "CosineAnnealingLR", "eta_min must not be negative", eta_min);
}

template <class T> double CosineAnnealingLR<T>::lr_at(std::uint64_t epoch) const
{
    const double pi = 3.14159265358979323846;
    return eta_min_ + (this->base_lr_ - eta_min_) *
                          (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(t_max_))) / 2.0;
}

template <class T> ReduceLROnPlateau<T>::ReduceLROnPlateau(Optimizer<T>& opt, PlateauOptions o) : opt_(opt), options_(o)
{
    require(o.factor > 0 && o.factor < 1, "ReduceLROnPlateau", "factor must be in (0, 1)", o.factor);
    require_finite("ReduceLROnPlateau", "threshold", o.threshold);
    require_finite("ReduceLROnPlateau", "min_lr", o.min_lr);
    require_finite("ReduceLROnPlateau", "eps", o.eps);
    require(o.threshold >= 0, "ReduceLROnPlateau", "threshold must not be negative", o.threshold);
    require(o.min_lr >= 0, "ReduceLROnPlateau", "min_lr must not be negative", o.min_lr);
    best_ = o.maximize ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

template <class T> bool ReduceLROnPlateau<T>::better(double a, double best) const
{
    const PlateauOptions& o = options_;
    if (!o.maximize) return o.relative ? a < best * (1.0 - o.threshold) : a < best - o.threshold;
    return o.relative ? a > best * (1.0 + o.threshold) : a > best + o.threshold;
}

template <class T> void ReduceLROnPlateau<T>::step(double metric)
{
    if (opt_.step_count() == 0) {
        throw Error("ReduceLROnPlateau: step() was called before the optimiser's first step(); call " + opt_.name() +
                    ".step() for the epoch's batches first");
    }
    if (better(metric, best_)) {
        best_ = metric;
        bad_epochs_ = 0;
    } else {
        ++bad_epochs_;
    }
    if (cooldown_left_ > 0) {
        --cooldown_left_;
        bad_epochs_ = 0;
    }
    if (bad_epochs_ > options_.patience) {
        const double old_lr = opt_.lr();
        const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
        if (old_lr - new_lr > options_.eps) opt_.set_lr(new_lr);
        cooldown_left_ = options_.cooldown;
        bad_epochs_ = 0;
    }
}

// --- clipping ----------------------------------------------------------------------------

template <class T> double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm, double norm_type)
{
    require(max_norm >= 0, "clip_grad_norm", "max_norm must not be negative", max_norm);
    require(norm_type >= 1, "clip_grad_norm", "norm_type must be at least 1 (or infinity)", norm_type);
    const bool inf = std::isinf(norm_type);
    double total = 0;
    for (const auto& p : params) {
        if (!p.has_grad()) continue;
        for (T g : p.grad()) {
            const double a = std::abs(static_cast<double>(g));
            total = inf ? std::max(total, a) : total + std::pow(a, norm_type);
        }
    }
    if (!inf) total = std::pow(total, 1.0 / norm_type);
    const double coef = std::min(1.0, max_norm / (total + 1e-6));
    for (const auto& p : params) {
        if (!p.has_grad()) continue;
        // Gradients are leaf buffers: scale them where they are.
        auto& g = const_cast<xt::xarray<T>&>(p.grad());
        for (T& v : g) v = static_cast<T>(v * coef);
    }
    return total;
}

template <class T> void clip_grad_value(const std::vector<Var<T>>& params, double clip_value)
{
    require(clip_value >= 0, "clip_grad_value", "clip_value must not be negative", clip_value);
    const T c = static_cast<T>(clip_value);
    for (const auto& p : params) {
        if (!p.has_grad()) continue;
        auto& g = const_cast<xt::xarray<T>&>(p.grad());
        for (T& v : g) v = std::min(std::max(v, -c), c);
    }
}

// NOLINTBEGIN(bugprone-macro-parentheses): T names a type
#define TAPEGRAD_OPTIM_INSTANTIATE(T)                                                                                  \
    template class Optimizer<T>;                                                                                       \
    template class SGD<T>;                                                                                             \
    template class Adam<T>;                                                                                            \
    template class AdamW<T>;                                                                                           \
    template class LRScheduler<T>;                                                                                     \
    template class StepLR<T>;                                                                                          \
    template class ExponentialLR<T>;                                                                                   \
    template class CosineAnnealingLR<T>;                                                                               \
    template class ReduceLROnPlateau<T>;                                                                               \
    template double clip_grad_norm<T>(const std::vector<Var<T>>&, double, double);                                     \
    template void clip_grad_value<T>(const std::vector<Var<T>>&, double);
// NOLINTEND(bugprone-macro-parentheses)
TAPEGRAD_OPTIM_INSTANTIATE(float)
TAPEGRAD_OPTIM_INSTANTIATE(double)

}  // namespace tg::optim
