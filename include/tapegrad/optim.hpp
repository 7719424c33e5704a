#pragma once
/// \file optim.hpp
/// Optimisers (SGD, Adam, AdamW), learning-rate schedules and gradient clipping, with
/// PyTorch's update formulas. Updates run in place with recording off.
///
/// \code
/// tg::optim::AdamOptions o;
/// o.lr = 1e-3;
/// tg::optim::Adam<float> opt(model.parameters(), o);
/// for (...) { opt.zero_grad(); loss(...).backward(); opt.step(); }
/// \endcode

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/var.hpp"

namespace tg::optim {

/// torch.optim.SGD's options. Default lr 0.01 (as Keras; PyTorch makes you choose).
struct SGDOptions {
    /// Learning rate, positive.
    double lr = 0.01;
    /// Momentum factor, >= 0 (0: plain SGD).
    double momentum = 0;
    /// Dampening of momentum: the new gradient enters the buffer times (1 - dampening).
    double dampening = 0;
    /// Nesterov momentum (needs momentum > 0 and dampening = 0).
    bool nesterov = false;
    double weight_decay = 0;  ///< L2 penalty added to the gradient
};

/// torch.optim.Adam's options (Keras' Adam defaults are the same).
struct AdamOptions {
    /// Learning rate, positive.
    double lr = 1e-3;
    /// Decay of the running mean of gradients, in [0, 1).
    double beta1 = 0.9;
    /// Decay of the running mean of squared gradients, in [0, 1).
    double beta2 = 0.999;
    /// Added to the denominator for stability, >= 0.
    double eps = 1e-8;
    double weight_decay = 0;  ///< L2 penalty added to the gradient (coupled, as torch's Adam)
    /// Use the maximum of all second-moment estimates so far (AMSGrad).
    bool amsgrad = false;
};

/// torch.optim.AdamW's options: decoupled weight decay, default 1e-2.
struct AdamWOptions : AdamOptions {
    AdamWOptions() { weight_decay = 1e-2; }
};

/// What every optimiser has: its parameters, a learning rate, a step count, and named
/// state that checkpoints can read and write.
///
/// State names: "lr", "step" (the optimiser's step count), and per parameter i
/// "i.step", "i.momentum_buffer" (SGD), "i.exp_avg", "i.exp_avg_sq", "i.max_exp_avg_sq"
/// (Adam with amsgrad). State exists once a step has created it; values are float64
/// arrays whatever T is (float32 values convert exactly).
template <class T> class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    /// One update of every parameter that has a gradient (others are skipped).
    virtual void step() = 0;
    /// Forgets every parameter's gradient.
    void zero_grad();

    /// The current learning rate.
    double lr() const noexcept { return lr_; }
    /// Sets the learning rate (schedules call this). Must not be negative: a schedule may
    /// anneal it to 0 (the constructor, where 0 is more likely a mistake, wants it positive).
    void set_lr(double lr);
    /// Number of step() calls so far.
    std::uint64_t step_count() const noexcept { return steps_; }
    /// The parameters it updates, in the order given to the constructor.
    const std::vector<Var<T>>& parameters() const noexcept { return params_; }
    /// "SGD", "Adam" or "AdamW".
    const std::string& name() const noexcept { return name_; }

    /// Names of the state entries that exist now, sorted.
    std::vector<std::string> state_names() const;
    /// One state entry; throws tg::Error for an unknown name.
    xt::xarray<double> state(const std::string& name) const;
    /// Writes one state entry (creating per-parameter buffers as needed); the shape must
    /// match the parameter's.
    void set_state(const std::string& name, const xt::xarray<double>& value);
    /// Every state entry by name.
    std::map<std::string, xt::xarray<double>> state_dict() const;
    /// Replaces the whole state (entries not in `state` are dropped).
    void load_state_dict(const std::map<std::string, xt::xarray<double>>& state);

protected:
    /// For the optimisers: `name` in errors, `buffer_names` the per-parameter state ("momentum_buffer", ...). Throws
    /// tg::Error when lr is not positive and finite, or params is empty or holds an undefined Var, an op's output, a
    /// constant or one Var twice.
    Optimizer(std::vector<Var<T>> params, double lr, std::string name, std::vector<std::string> buffer_names);

    /// Per-parameter buffer `b` of parameter `i`, created as zeros when missing.
    xt::xarray<T>& buffer(std::size_t b, std::size_t i);
    /// Whether per-parameter buffer `b` of parameter `i` exists yet.
    bool has_buffer(std::size_t b, std::size_t i) const { return present_[b][i]; }
    /// Throws unless every parameter with a gradient still has the shape of its gradient and
    /// of its buffers (a shape changed through mutable_value() would make the update run
    /// past the end of one of them). Steps call it before changing anything.
    void check_shapes() const;

    std::vector<Var<T>> params_;
    double lr_;
    std::uint64_t steps_ = 0;
    std::vector<std::uint64_t> param_steps_;  ///< steps in which each parameter had a gradient
    std::string name_;
    std::vector<std::string> buffer_names_;
    std::vector<std::vector<xt::xarray<T>>> buffers_;
    std::vector<std::vector<bool>> present_;

private:
    [[noreturn]] void throw_unknown(const std::string& name) const;
    bool parse(const std::string& name, std::size_t& param, std::size_t& buf) const;
    /// What set_state and load_state_dict change, so that a whole state can be built on the
    /// side and swapped in only once every entry has been checked.
    struct State {
        double lr;
        std::uint64_t steps;
        std::vector<std::uint64_t> param_steps;
        std::vector<std::vector<xt::xarray<T>>> buffers;
        std::vector<std::vector<bool>> present;
    };
    /// Checks entry `name` and writes it into `into` (throws, leaving the optimiser alone).
    void apply_state(const std::string& name, const xt::xarray<double>& value, State& into) const;
};

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
/// weight decay, exactly as torch.optim.SGD:
///   g = grad + wd * p;  b = g (first step) or momentum * b + (1 - dampening) * g;
///   g = nesterov ? g + momentum * b : b (when momentum != 0);  p -= lr * g
template <class T> class SGD : public Optimizer<T> {
public:
    /// Throws tg::Error for invalid options (see SGDOptions) and for the parameter problems Optimizer lists.
    SGD(std::vector<Var<T>> params, SGDOptions options = {});
    /// One SGD update of every parameter that has a gradient.
    void step() override;
    /// The options it was built with.
    const SGDOptions& options() const noexcept { return options_; }

private:
    SGDOptions options_;
};

/// Adam (and AdamW when `decoupled`), exactly as torch.optim.Adam / AdamW:
///   AdamW: p *= 1 - lr * wd;   Adam: g = grad + wd * p
///   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v), use vmax)
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T> class Adam : public Optimizer<T> {
public:
    /// Throws tg::Error for invalid options (see AdamOptions) and for the parameter problems Optimizer lists.
    Adam(std::vector<Var<T>> params, AdamOptions options = {});
    /// One Adam (or AdamW) update of every parameter that has a gradient.
    void step() override;
    /// The options it was built with.
    const AdamOptions& options() const noexcept { return options_; }

protected:
    /// For AdamW: decoupled weight decay when `decoupled`, and `name` in errors and state.
    Adam(std::vector<Var<T>> params, AdamOptions options, bool decoupled, const char* name);

private:
    AdamOptions options_;
    bool decoupled_;
};

/// Adam with decoupled weight decay (torch.optim.AdamW).
template <class T> class AdamW : public Adam<T> {
public:
    /// Throws tg::Error for invalid options (see AdamOptions) and for the parameter problems Optimizer lists.
    AdamW(std::vector<Var<T>> params, AdamWOptions options = {});
};

// --- learning-rate schedules ------------------------------------------------------------

/// Base of the epoch-based schedules: step() once per epoch (after the optimiser's steps)
/// sets the optimiser's learning rate for the next epoch. Calling step() before the
/// optimiser has stepped even once is an error (it would skip the first rate).
template <class T> class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    /// Ends an epoch: advances the epoch count and sets the optimiser's rate to the schedule's. Throws tg::Error before
    /// the optimiser's first step, or when the rate would not be finite and >= 0.
    void step();
    /// The learning rate the schedule set last.
    double last_lr() const noexcept { return last_lr_; }
    /// Epochs stepped so far.
    std::uint64_t epoch() const noexcept { return epoch_; }
    /// Restores the epoch counter (from a checkpoint) and sets the matching rate.
    void set_epoch(std::uint64_t epoch);

protected:
    /// For the schedules: starts from opt's current rate as the base rate; `name` is used in errors.
    LRScheduler(Optimizer<T>& opt, const char* name);
    /// The schedule's learning rate for `epoch`.
    virtual double lr_at(std::uint64_t epoch) const = 0;
    Optimizer<T>& opt_;
    const char* name_;
    double base_lr_;
    double last_lr_;
    std::uint64_t epoch_ = 0;
};

/// lr = base * gamma^floor(epoch / step_size)  (torch.optim.lr_scheduler.StepLR)
template <class T> class StepLR : public LRScheduler<T> {
public:
    /// Throws tg::Error unless step_size > 0 and gamma is positive and finite.
    StepLR(Optimizer<T>& opt, std::uint64_t step_size, double gamma = 0.1);

protected:
    /// base * gamma^floor(epoch / step_size).
    double lr_at(std::uint64_t epoch) const override;

private:
    std::uint64_t step_size_;
    double gamma_;
};

/// lr = base * gamma^epoch  (ExponentialLR)
template <class T> class ExponentialLR : public LRScheduler<T> {
public:
    /// Throws tg::Error unless gamma is positive and finite.
    ExponentialLR(Optimizer<T>& opt, double gamma);

protected:
    /// base * gamma^epoch.
    double lr_at(std::uint64_t epoch) const override;

private:
    double gamma_;
};

/// lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2  (CosineAnnealingLR)
template <class T> class CosineAnnealingLR : public LRScheduler<T> {
public:
    /// Throws tg::Error unless t_max > 0 and eta_min is finite and >= 0.
    CosineAnnealingLR(Optimizer<T>& opt, std::uint64_t t_max, double eta_min = 0.0);

protected:
    /// eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2.
    double lr_at(std::uint64_t epoch) const override;

private:
    std::uint64_t t_max_;
    double eta_min_;
};

/// ReduceLROnPlateau's options (PyTorch's defaults).
struct PlateauOptions {
    bool maximize = false;  ///< mode "max" instead of "min"
    double factor = 0.1;    ///< new lr = lr * factor
    /// Epochs without improvement tolerated; the rate drops on the next one.
    std::uint64_t patience = 10;
    /// How much better a metric must be to count as an improvement (relative or absolute).
    double threshold = 1e-4;
    bool relative = true;  ///< threshold_mode "rel" (else "abs")
    /// Epochs after a drop during which bad epochs are not counted.
    std::uint64_t cooldown = 0;
    /// The rate never drops below this.
    double min_lr = 0.0;
    double eps = 1e-8;  ///< changes smaller than this are ignored
};

/// Lowers the learning rate when a metric stops improving (torch's ReduceLROnPlateau).
template <class T> class ReduceLROnPlateau {
public:
    /// Throws tg::Error unless 0 < factor < 1, and threshold, min_lr and eps are finite (threshold and min_lr >= 0).
    ReduceLROnPlateau(Optimizer<T>& opt, PlateauOptions options = {});
    /// Reports the epoch's metric (e.g. validation loss).
    void step(double metric);
    /// The optimiser's current learning rate.
    double last_lr() const noexcept { return opt_.lr(); }
    /// Epochs since the last improvement (reset by a drop and during cooldown).
    std::uint64_t bad_epochs() const noexcept { return bad_epochs_; }

private:
    bool better(double a, double best) const;
    Optimizer<T>& opt_;
    PlateauOptions options_;
    double best_;
    std::uint64_t bad_epochs_ = 0;
    std::uint64_t cooldown_left_ = 0;
};

// --- gradient clipping ------------------------------------------------------------------

/// Scales all gradients together so that their global norm is at most max_norm
/// (torch.nn.utils.clip_grad_norm_: factor min(1, max_norm / (norm + 1e-6))). Returns the
/// norm before clipping. norm_type is p >= 1, or infinity for the max-norm.
template <class T> double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm, double norm_type = 2.0);

/// Clamps every gradient element to [-clip_value, clip_value].
template <class T> void clip_grad_value(const std::vector<Var<T>>& params, double clip_value);

}  // namespace tg::optim
