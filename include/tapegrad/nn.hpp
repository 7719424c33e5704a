#pragma once
/// \file nn.hpp
/// Layers on top of the tape: Dense, activations, Dropout, Sequential, and initialisers.
///
/// \code
/// tg::nn::Sequential<float> model{tg::nn::Dense<float>(2, 3, tg::nn::Activation::sigmoid),
///                                 tg::nn::Dense<float>(3, 2)};
/// model.summary();
/// tg::Var<float> y = model(x);            // x: [batch, 2]
/// \endcode

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/random.hpp"
#include "tapegrad/var.hpp"

namespace tg::nn {

/// The activation a Dense layer applies after `x @ W + b` (as Keras' `Dense(units, activation)`).
enum class Activation { none, sigmoid, tanh, relu };

/// "none", "sigmoid", "tanh" or "relu".
const char* to_string(Activation a);

namespace init {

/// How to fill a parameter, given the fan-in and fan-out of its layer.
class Initializer {
public:
    using Fill = std::function<void(xt::xarray<double>&, std::size_t fan_in, std::size_t fan_out, Generator&)>;
    Initializer(std::string name, Fill fill) : name_(std::move(name)), fill_(std::move(fill)) {}
    const std::string& name() const noexcept { return name_; }
    /// A new array of `shape` filled by this initialiser (drawn in double, then rounded to T).
    template <class T>
    xt::xarray<T> make(const std::vector<std::size_t>& shape, std::size_t fan_in, std::size_t fan_out,
                       Generator& gen) const;

private:
    std::string name_;
    Fill fill_;
};

/// All zeros (the default for biases, as in Keras and most PyTorch code).
Initializer zeros();
/// Every element `value`.
Initializer constant(double value);
/// Uniform in [a, b). `uniform()` is [0, 1), the tutorial's `random.random()`.
Initializer uniform(double a = 0.0, double b = 1.0);
/// Normal with the given mean and standard deviation.
Initializer normal(double mean = 0.0, double stddev = 1.0);
/// Glorot/Xavier uniform: U(-l, l), l = gain * sqrt(6 / (fan_in + fan_out)). The default for
/// Dense weights (as Keras): it keeps activations' variance steady through sigmoid and
/// tanh layers.
Initializer glorot_uniform(double gain = 1.0);
/// Glorot/Xavier normal: N(0, s), s = gain * sqrt(2 / (fan_in + fan_out)).
Initializer glorot_normal(double gain = 1.0);
/// He/Kaiming uniform for ReLU layers: U(-l, l), l = sqrt(6 / fan_in).
Initializer he_uniform();
/// He/Kaiming normal for ReLU layers: N(0, s), s = sqrt(2 / fan_in).
Initializer he_normal();

inline Initializer xavier_uniform(double gain = 1.0)
{
    return glorot_uniform(gain);
}
inline Initializer xavier_normal(double gain = 1.0)
{
    return glorot_normal(gain);
}
inline Initializer kaiming_uniform()
{
    return he_uniform();
}
inline Initializer kaiming_normal()
{
    return he_normal();
}

}  // namespace init

/// Base of every layer. A module maps a Var to a Var and owns parameters.
template <class T> class Module {
public:
    virtual ~Module() = default;

    virtual Var<T> forward(const Var<T>& x) = 0;
    Var<T> operator()(const Var<T>& x) { return forward(x); }

    /// The parameters with their names, in order ("weight", "bias"; "0.weight", ... in a Sequential).
    virtual std::vector<std::pair<std::string, Var<T>>> named_parameters() const { return {}; }
    /// The parameters in the order of named_parameters().
    std::vector<Var<T>> parameters() const;
    /// Total number of parameter elements.
    std::size_t num_parameters() const;

    /// The random generators the module draws from while training (Dropout's masks), by
    /// name; checkpoints save and restore their states so a resumed run repeats exactly.
    virtual std::vector<std::pair<std::string, Generator*>> named_generators() { return {}; }

    /// Training mode (the default) or evaluation mode; changes what Dropout does.
    virtual void train(bool on = true) { training_ = on; }
    void eval() { train(false); }
    bool is_training() const noexcept { return training_; }

    /// The layer's type as shown by summary(), e.g. "Dense".
    virtual std::string type_name() const = 0;
    /// Output features for `in` input features (unknown: nullopt), for summary().
    virtual std::optional<std::size_t> output_features(std::optional<std::size_t> in) const { return in; }

    /// A table like Keras' model.summary(): layer, output shape, parameter count, total.
    std::string summary() const;
    /// Prints summary() to `out`.
    void print_summary(std::ostream& out) const;

protected:
    /// Rows of the summary table: (name, type, output features, parameters).
    struct SummaryRow {
        std::string name, type;
        std::optional<std::size_t> features;
        std::size_t params;
    };
    virtual void summary_rows(std::vector<SummaryRow>& rows, std::optional<std::size_t>& features,
                              const std::string& prefix) const;

    bool training_ = true;

    template <class> friend class Sequential;
};

/// y = activation(x @ W + b), x: [batch, in], W: [in, out], b: [out].
template <class T> class Dense : public Module<T> {
public:
    /// Weights from `weight_init` (default Glorot uniform), bias from `bias_init` (default
    /// zeros), drawn from `gen` (default: the thread's generator, see tg::manual_seed).
    Dense(std::size_t in, std::size_t out, Activation activation = Activation::none,
          const init::Initializer& weight_init = init::glorot_uniform(),
          const init::Initializer& bias_init = init::zeros(), Generator& gen = default_generator());

    Var<T> forward(const Var<T>& x) override;

    /// The weight parameter, [in, out].
    const Var<T>& weight() const noexcept { return weight_; }
    /// The bias parameter, [out].
    const Var<T>& bias() const noexcept { return bias_; }
    std::size_t in_features() const noexcept { return in_; }
    std::size_t out_features() const noexcept { return out_; }
    Activation activation() const noexcept { return activation_; }

    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override;
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return out_; }

private:
    std::size_t in_, out_;
    Activation activation_;
    Var<T> weight_, bias_;
};

/// Elementwise sigmoid as a layer.
template <class T> class Sigmoid : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "Sigmoid"; }
};

/// Elementwise tanh as a layer.
template <class T> class Tanh : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "Tanh"; }
};

/// Elementwise max(x, 0) as a layer.
template <class T> class ReLU : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "ReLU"; }
};

/// Zeroes each element with probability p while training and scales the rest by
/// 1 / (1 - p), so evaluation (eval(): identity) needs no rescaling. Masks come from
/// its own generator, seeded at construction: runs repeat exactly.
template <class T> class Dropout : public Module<T> {
public:
    /// Seeded from the thread's default generator (see tg::manual_seed).
    explicit Dropout(double p = 0.5);
    /// Seeded explicitly.
    Dropout(double p, std::uint64_t seed);
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "Dropout"; }
    double p() const noexcept { return p_; }
    /// The mask generator (its state goes into training checkpoints).
    Generator& generator() noexcept { return gen_; }
    const Generator& generator() const noexcept { return gen_; }
    std::vector<std::pair<std::string, Generator*>> named_generators() override { return {{"generator", &gen_}}; }

private:
    double p_;
    Generator gen_;
};

template <class T> class Sequential;

/// Any module, held by shared pointer; converts implicitly from a module value (copied) or
/// a std::shared_ptr to one (shared), so `Sequential<T>{Dense<T>(2, 3), Sigmoid<T>()}` works.
template <class T> class AnyModule {
public:
    template <class M, class = std::enable_if_t<std::is_base_of<Module<T>, std::decay_t<M>>::value>>
    AnyModule(M&& m) : ptr_(std::make_shared<std::decay_t<M>>(std::forward<M>(m)))
    {}
    template <class M, class = std::enable_if_t<std::is_base_of<Module<T>, M>::value>>
    AnyModule(std::shared_ptr<M> m) : ptr_(std::move(m))
    {}
    const std::shared_ptr<Module<T>>& ptr() const noexcept { return ptr_; }

private:
    std::shared_ptr<Module<T>> ptr_;
};

/// Modules applied in order. Parameter names are prefixed with the module's index.
template <class T> class Sequential : public Module<T> {
public:
    Sequential() = default;
    Sequential(std::initializer_list<AnyModule<T>> modules);

    /// Appends a module; returns *this for chaining.
    Sequential& add(AnyModule<T> module);

    Var<T> forward(const Var<T>& x) override;
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::vector<std::pair<std::string, Generator*>> named_generators() override;
    void train(bool on = true) override;
    std::string type_name() const override { return "Sequential"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override;

    std::size_t size() const noexcept { return modules_.size(); }
    Module<T>& operator[](std::size_t i) const;
    /// The i-th module as type M (throws tg::Error if it is not one).
    template <class M> M& at(std::size_t i) const
    {
        auto* m = dynamic_cast<M*>(&(*this)[i]);
        if (m == nullptr) throw_wrong_type(i);
        return *m;
    }

protected:
    void summary_rows(std::vector<typename Module<T>::SummaryRow>& rows, std::optional<std::size_t>& features,
                      const std::string& prefix) const override;

private:
    [[noreturn]] void throw_wrong_type(std::size_t i) const;
    std::vector<std::shared_ptr<Module<T>>> modules_;
};

}  // namespace tg::nn
