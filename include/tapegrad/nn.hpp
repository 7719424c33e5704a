#pragma once
/// \file nn.hpp
/// Modules and layers on top of the tape: the Module base (registration of parameters,
/// buffers, generators and child modules; names, state_dict, summary), Dense, the layers of
/// convolutional networks, activations, Dropout, Sequential, ModuleList, initialisers, and
/// functional_call.
///
/// \code
/// tg::nn::Sequential<float> model{tg::nn::Dense<float>(2, 3, tg::nn::Activation::sigmoid),
///                                 tg::nn::Dense<float>(3, 2)};
/// model.summary();
/// tg::Var<float> y = model(x);            // x: [batch, 2]
/// \endcode

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <map>
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
    /// The fill rule: writes the values into an array already of the parameter's shape, given the layer's fan-in and
    /// fan-out and the generator to draw from.
    using Fill = std::function<void(xt::xarray<double>&, std::size_t fan_in, std::size_t fan_out, Generator&)>;
    /// An initialiser called `name` (as summaries and errors show it) that fills with `fill`.
    Initializer(std::string name, Fill fill) : name_(std::move(name)), fill_(std::move(fill)) {}
    /// The initialiser's name, e.g. "glorot_uniform".
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

/// Another name for glorot_uniform.
inline Initializer xavier_uniform(double gain = 1.0)
{
    return glorot_uniform(gain);
}
/// Another name for glorot_normal.
inline Initializer xavier_normal(double gain = 1.0)
{
    return glorot_normal(gain);
}
/// Another name for he_uniform.
inline Initializer kaiming_uniform()
{
    return he_uniform();
}
/// Another name for he_normal.
inline Initializer kaiming_normal()
{
    return he_normal();
}

}  // namespace init

/// A module's state that is not a parameter, such as BatchNorm's running statistics:
/// saved and restored with the parameters (tg::io::save_parameters, checkpoints), never
/// given to optimisers. Exactly one pointer is set; it points into the module that
/// registered the buffer.
template <class T> struct BufferRef {
    xt::xarray<T>* values = nullptr;  ///< floating point, in the model's dtype
    std::int64_t* count = nullptr;    ///< an integer, stored as a rank-0 I64 tensor (as PyTorch)
};

template <class T> class Module;

namespace detail {
template <class T> class ParameterSwap;
}  // namespace detail

/// Base of every layer and of the user's own modules. A module registers what it owns:
/// parameters (`register_parameter`), other modules (`register_module`), buffers
/// (`register_buffer`, state that is saved but never optimised) and random generators
/// (`register_generator`, saved in training checkpoints). Names, traversal, `train()` and
/// `eval()`, `zero_grad()`, `state_dict()` and `summary()` follow from the registrations,
/// with PyTorch's names and order: a module's own entries in registration order, then each
/// child's, prefixed with the child's name and a dot ("blocks.0.fc.weight").
///
/// \code
/// class Block : public tg::nn::Module<float> {
/// public:
///     Block() {
///         fc_ = register_module("fc", std::make_shared<tg::nn::Linear<float>>(8, 8));
///         norm_ = register_module("norm", std::make_shared<tg::nn::LayerNorm<float>>(std::vector<std::size_t>{8}));
///     }
///     tg::Var<float> forward(const tg::Var<float>& x) { return x + fc_->forward(norm_->forward(x)); }
/// private:
///     std::shared_ptr<tg::nn::Linear<float>> fc_;
///     std::shared_ptr<tg::nn::LayerNorm<float>> norm_;
/// };
/// \endcode
///
/// A module's forward may take any arguments: Module declares none. Sequential holds
/// modules whose forward takes one Var.
///
/// Copying a module shares its parameters and child modules with the copy (Vars and
/// shared pointers are handles) and copies its buffers and generators.
template <class T> class Module {
public:
    /// A module that owns nothing yet, in training mode.
    Module() = default;
    /// Shares other's parameters and children, copies its buffers, generators and training mode.
    Module(const Module& other);
    /// Takes over other's registrations; references to its buffers stay valid.
    Module(Module&& other) noexcept = default;
    /// As the copy constructor: parameters and children shared, buffers and generators copied.
    Module& operator=(const Module& other);
    /// As the move constructor.
    Module& operator=(Module&& other) noexcept = default;
    /// Releases the module's share of its parameters and children.
    virtual ~Module() = default;

    // --- registration -------------------------------------------------------------------
    // Names are non-empty, contain no '.', and are unique within the module across
    // parameters, buffers, generators and children; anything else is a tg::Error.

    /// Registers a parameter (a leaf: tg::parameter, or a tg::constant for a frozen one) and
    /// returns the registered handle. Copies of it are the same tensor; functional_call
    /// replaces only what the module holds, so a forward that should follow functional_call
    /// reads its parameters back from the module (a layer's `weight()`, or `get_parameter`).
    Var<T> register_parameter(std::string name, Var<T> value);

    /// Registers a child module and returns it. Its entries appear under "name." in the
    /// names of this module. Registering a module into itself or into one of its own
    /// descendants is refused.
    template <class M> std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module)
    {
        static_assert(std::is_base_of<Module<T>, M>::value,
                      "register_module: the module must derive from tg::nn::Module<T> with the same T");
        add_child("register_module", std::move(name), module);
        return module;
    }

    /// Registers a floating-point buffer (saved and loaded with the parameters, never
    /// optimised) and returns a reference to the module's copy; the reference stays valid
    /// while the module lives, including after a move of the module, but not in a copy of it.
    xt::xarray<T>& register_buffer(std::string name, xt::xarray<T> value);

    /// Registers an integer buffer (BatchNorm's num_batches_tracked): a rank-0 int64 tensor
    /// in files, as in PyTorch.
    std::int64_t& register_count_buffer(std::string name, std::int64_t value = 0);

    /// Registers a random generator that the module draws from while training (Dropout's
    /// masks); training checkpoints save and restore its state, so a resumed run repeats
    /// exactly.
    Generator& register_generator(std::string name, Generator generator);

    // --- traversal ----------------------------------------------------------------------

    /// The parameters with their dotted names, in PyTorch's order: this module's own in
    /// registration order, then each child's (recursively), children in registration order.
    /// A parameter reachable twice (a shared module, tied weights) is listed once, under
    /// its first name. With recurse = false, only this module's own.
    std::vector<std::pair<std::string, Var<T>>> named_parameters(bool recurse = true) const;
    /// The parameters in the order of named_parameters().
    std::vector<Var<T>> parameters(bool recurse = true) const;
    /// Total number of parameter elements.
    std::size_t num_parameters() const;

    /// The buffers with their dotted names, in PyTorch's order (as named_parameters).
    std::vector<std::pair<std::string, BufferRef<T>>> named_buffers(bool recurse = true);
    /// The random generators with their dotted names (as named_parameters).
    std::vector<std::pair<std::string, Generator*>> named_generators(bool recurse = true);

    /// The direct children in registration order.
    std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> named_children() const;
    /// This module (first, named "") and every module below it, depth first in
    /// registration order, each once. The first entry does not own the module (it may live
    /// on the stack); the others share ownership with their parents.
    std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> named_modules() const;

    /// The parameter with this dotted name ("blocks.0.fc.weight"): what the module holds
    /// now, i.e. a functional_call's stand-in while one runs. Throws tg::Error naming it
    /// when there is none.
    const Var<T>& get_parameter(const std::string& name) const;
    /// The module with this dotted name ("blocks.0"; "" is this module).
    std::shared_ptr<Module<T>> get_submodule(const std::string& name) const;

    // --- modes and gradients ------------------------------------------------------------

    /// Training mode (the default) or evaluation mode, for this module and every module
    /// below it; changes what Dropout and BatchNorm do. A module that overrides it calls
    /// Module<T>::train(on).
    virtual void train(bool on = true);
    /// Evaluation mode for this module and every module below it: train(false).
    void eval() { train(false); }
    /// Whether the module is in training mode (set by train() and eval()).
    bool is_training() const noexcept { return training_; }
    /// Forgets every parameter's gradient (as Var::zero_grad), recursively.
    void zero_grad();

    // --- state --------------------------------------------------------------------------

    /// Every parameter and buffer by its dotted name, as float64 (an integer buffer holds
    /// its count): PyTorch's state_dict keys. A module reachable under two names appears
    /// under both, as in PyTorch.
    std::map<std::string, xt::xarray<double>> state_dict() const;
    /// The keys of state_dict() in the order of PyTorch's state_dict: each module's own
    /// parameters, then its own buffers, then its children's entries, depth first.
    std::vector<std::string> state_dict_keys() const;
    /// The reverse, into a model of any dtype (values rounded to T). With strict, the state
    /// must hold every key of state_dict() and no other; without, missing keys keep their
    /// values and extra keys are ignored. Shapes must match either way, and an integer buffer
    /// takes only integral values. All or nothing: nothing changes unless every entry fits,
    /// and the tg::Error lists every problem by name.
    void load_state_dict(const std::map<std::string, xt::xarray<double>>& state, bool strict = true);

    // --- description --------------------------------------------------------------------

    /// The module's type as summary() shows it: by default the class's name without
    /// namespaces or template arguments ("ResidualBlock", "Linear").
    virtual std::string type_name() const;
    /// Output features for `in` input features (unknown: nullopt), for summary(). The
    /// default is unknown; layers that keep the feature count return `in`.
    virtual std::optional<std::size_t> output_features(std::optional<std::size_t> in) const
    {
        (void)in;
        return std::nullopt;
    }

    /// A table like Keras' model.summary(): every registered module below this one, nested
    /// ones indented under their parents, with its output features (where known) and its
    /// parameter count (its children's included); then the totals.
    std::string summary() const;
    /// Prints summary() to `out`.
    void print_summary(std::ostream& out) const;

protected:
    /// This module's i-th own parameter, in registration order (what a built-in layer reads
    /// in forward, so that functional_call reaches it).
    const Var<T>& own_parameter(std::size_t i) const noexcept { return params_[i].second; }
    /// The i-th own parameter if `present`, else an undefined Var (a layer built without bias).
    const Var<T>& own_parameter_if(bool present, std::size_t i) const noexcept;
    /// This module's i-th own buffer, in registration order (a floating-point one).
    xt::xarray<T>& own_buffer(std::size_t i) { return *buffers_[i].values; }
    /// The i-th own floating-point buffer, read-only.
    const xt::xarray<T>& own_buffer(std::size_t i) const { return *buffers_[i].values; }
    /// This module's i-th own buffer, in registration order (an integer one).
    std::int64_t& own_count(std::size_t i) { return *buffers_[i].count; }
    /// The i-th own integer buffer's value.
    std::int64_t own_count(std::size_t i) const { return *buffers_[i].count; }
    /// This module's i-th own generator, in registration order.
    Generator& own_generator(std::size_t i) { return *generators_[i].second; }
    /// The i-th own generator, read-only.
    const Generator& own_generator(std::size_t i) const { return *generators_[i].second; }

    /// Registers a child (the non-template part of register_module); `who` names the
    /// calling function in errors.
    void add_child(const char* who, std::string name, std::shared_ptr<Module<T>> module);

    /// Whether the module is in training mode; train() sets it, forward reads it.
    bool training_ = true;

private:
    struct Buffer {
        std::string name;
        std::unique_ptr<xt::xarray<T>> values;  // exactly one of the two is set; on the heap,
        std::unique_ptr<std::int64_t> count;    // so references survive a move of the module
    };

    /// Calls f(name, module, holder) for this module (name "", no holder) and every module
    /// below it, depth first in registration order: each module once when `unique` (as
    /// named_modules), else once under every name it is reachable by (as state_dict).
    using Visitor = std::function<void(const std::string&, const Module&, const std::shared_ptr<Module>&)>;
    void visit(const std::string& name, bool unique, const Visitor& f) const;
    void check_name(const char* who, const std::string& name) const;
    void copy_state_from(const Module& other);

    std::vector<std::pair<std::string, Var<T>>> params_;
    std::vector<Buffer> buffers_;
    std::vector<std::pair<std::string, std::unique_ptr<Generator>>> generators_;
    std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;

    template <class> friend class detail::ParameterSwap;
};

/// y = activation(x @ W + b), x: [batch, in], W: [in, out], b: [out].
template <class T> class Dense : public Module<T> {
public:
    /// Weights from `weight_init` (default Glorot uniform), bias from `bias_init` (default
    /// zeros), drawn from `gen` (default: the thread's generator, see tg::manual_seed).
    Dense(std::size_t in, std::size_t out, Activation activation = Activation::none,
          const init::Initializer& weight_init = init::glorot_uniform(),
          const init::Initializer& bias_init = init::zeros(), Generator& gen = default_generator());

    /// activation(x @ weight + bias) for x [batch, in], giving [batch, out]; throws tg::Error for any other shape of x.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }

    /// The weight parameter, [in, out].
    const Var<T>& weight() const noexcept { return this->own_parameter(0); }
    /// The bias parameter, [out].
    const Var<T>& bias() const noexcept { return this->own_parameter(1); }
    /// The number of input features, `in`.
    std::size_t in_features() const noexcept { return in_; }
    /// The number of output features, `out`.
    std::size_t out_features() const noexcept { return out_; }
    /// The activation applied after the affine map.
    Activation activation() const noexcept { return activation_; }

    std::string type_name() const override;
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return out_; }

private:
    std::size_t in_, out_;
    Activation activation_;
};

/// Elementwise sigmoid as a layer.
template <class T> class Sigmoid : public Module<T> {
public:
    /// sigmoid(x), elementwise, any shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "Sigmoid"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
};

/// Elementwise tanh as a layer.
template <class T> class Tanh : public Module<T> {
public:
    /// tanh(x), elementwise, any shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "Tanh"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
};

/// Elementwise max(x, 0) as a layer.
template <class T> class ReLU : public Module<T> {
public:
    /// max(x, 0), elementwise, any shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "ReLU"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
};

/// Zeroes each element with probability p while training and scales the rest by
/// 1 / (1 - p), so evaluation (eval(): identity) needs no rescaling. Masks come from
/// its own generator (registered as "generator"), seeded at construction: runs repeat exactly.
template <class T> class Dropout : public Module<T> {
public:
    /// Seeded from the thread's default generator (see tg::manual_seed).
    /// Throws tg::Error unless 0 <= p < 1 (p must also stay below 1 when rounded to T).
    explicit Dropout(double p = 0.5);
    /// Seeded explicitly.
    Dropout(double p, std::uint64_t seed);
    /// In training mode with p > 0, x with each element dropped with probability p and the rest scaled by
    /// 1 / (1 - p), using the next mask from generator(); otherwise x itself.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "Dropout"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
    /// The probability of dropping an element.
    double p() const noexcept { return p_; }
    /// The mask generator (its state goes into training checkpoints).
    Generator& generator() noexcept { return this->own_generator(0); }
    /// The mask generator, read-only.
    const Generator& generator() const noexcept { return this->own_generator(0); }

private:
    double p_;
};

namespace detail {
/// True when M has a forward that takes one Var<T> and returns a Var<T>.
template <class M, class T, class = void> struct has_unary_forward : std::false_type {};
template <class M, class T>
struct has_unary_forward<M, T, std::void_t<decltype(std::declval<M&>().forward(std::declval<const Var<T>&>()))>>
    : std::is_convertible<decltype(std::declval<M&>().forward(std::declval<const Var<T>&>())), Var<T>> {};
}  // namespace detail

/// A module whose forward takes one Var, held by shared pointer together with that forward;
/// converts implicitly from a module value (copied or moved) or a std::shared_ptr to one
/// (shared), so `Sequential<T>{Dense<T>(2, 3), Sigmoid<T>()}` works.
template <class T> class AnyModule {
public:
    template <class M, class = std::enable_if_t<std::is_base_of<Module<T>, std::decay_t<M>>::value>>
    /// Holds a copy of the module value m (moved in when given an rvalue).
    AnyModule(M&& m) : AnyModule(std::make_shared<std::decay_t<M>>(std::forward<M>(m)))
    {}
    template <class M, class = std::enable_if_t<std::is_base_of<Module<T>, M>::value>>
    /// Shares the module m (a module without a unary forward is a compile error).
    AnyModule(std::shared_ptr<M> m) : ptr_(m)
    {
        static_assert(detail::has_unary_forward<M, T>::value,
                      "Sequential holds modules with a forward(const tg::Var<T>&) returning a tg::Var<T>; "
                      "call modules with other forwards from a module of your own");
        M* raw = m.get();
        // The module itself, not a copy: the Sequential co-owns it through ptr_.
        if (raw != nullptr) forward_ = [raw](const Var<T>& x) { return Var<T>(raw->forward(x)); };
    }
    /// The module held.
    const std::shared_ptr<Module<T>>& ptr() const noexcept { return ptr_; }
    /// The module's forward.
    Var<T> forward(const Var<T>& x) const { return forward_(x); }

private:
    std::shared_ptr<Module<T>> ptr_;
    std::function<Var<T>(const Var<T>&)> forward_;
};

/// Modules applied in order, registered under their index ("0", "1", ...) or a name of
/// their own, so parameter names are "0.weight", ... as in torch.nn.Sequential.
template <class T> class Sequential : public Module<T> {
public:
    /// An empty Sequential, whose forward returns its input.
    Sequential() = default;
    /// The modules in order, registered as "0", "1", ...
    Sequential(std::initializer_list<AnyModule<T>> modules);

    /// Appends a module under its index; returns *this for chaining. The module takes the
    /// Sequential's training mode.
    Sequential& add(AnyModule<T> module);
    /// Appends a module under a name of its own (torch.nn.Sequential from an OrderedDict).
    Sequential& add(std::string name, AnyModule<T> module);

    /// Each module's forward applied in turn, starting from x; x itself when there are none.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "Sequential"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override;

    /// The number of modules.
    std::size_t size() const noexcept { return modules_.size(); }
    /// The i-th module; throws tg::Error when i is out of range.
    Module<T>& operator[](std::size_t i) const;
    /// The i-th module as type M (throws tg::Error if it is not one).
    template <class M> M& at(std::size_t i) const
    {
        auto* m = dynamic_cast<M*>(&(*this)[i]);
        if (m == nullptr) throw_wrong_type(i);
        return *m;
    }

private:
    [[noreturn]] void throw_wrong_type(std::size_t i) const;
    std::vector<AnyModule<T>> modules_;
};

/// Modules held in a list and registered under their index ("0", "1", ...), as
/// torch.nn.ModuleList: no forward of its own; the owner calls them. Any module may be
/// held, whatever its forward takes.
template <class T> class ModuleList : public Module<T> {
public:
    /// An empty list.
    ModuleList() = default;

    /// Appends a module (shared); returns *this for chaining.
    template <class M> ModuleList& push_back(std::shared_ptr<M> module)
    {
        static_assert(std::is_base_of<Module<T>, M>::value,
                      "ModuleList: the module must derive from tg::nn::Module<T> with the same T");
        this->add_child("ModuleList::push_back", std::to_string(modules_.size()), module);
        modules_.push_back(std::move(module));
        return *this;
    }
    /// Appends a copy of (or moves in) a module value.
    template <class M, class = std::enable_if_t<std::is_base_of<Module<T>, std::decay_t<M>>::value>>
    ModuleList& push_back(M&& module)
    {
        return push_back(std::make_shared<std::decay_t<M>>(std::forward<M>(module)));
    }

    /// The number of modules.
    std::size_t size() const noexcept { return modules_.size(); }
    /// Whether the list holds no module.
    bool empty() const noexcept { return modules_.empty(); }
    /// The i-th module; throws tg::Error when i is out of range.
    Module<T>& operator[](std::size_t i) const;
    /// The i-th module as type M (throws tg::Error if it is not one).
    template <class M> M& at(std::size_t i) const
    {
        auto* m = dynamic_cast<M*>(&(*this)[i]);
        if (m == nullptr) throw_wrong_type(i);
        return *m;
    }
    std::string type_name() const override { return "ModuleList"; }

private:
    [[noreturn]] void throw_wrong_type(std::size_t i) const;
    std::vector<std::shared_ptr<Module<T>>> modules_;
};

// --- Layers of convolutional networks (PyTorch's constructor arguments, default
// initialisation and parameter names, so state dicts map one to one) ----------------------

/// y = x @ weight^T + bias, x [batch, in], weight [out, in] (PyTorch's layout, unlike
/// Dense's [in, out]), bias [out]. Weight and bias U(-1/sqrt(in), 1/sqrt(in)), as torch.nn.Linear.
template <class T> class Linear : public Module<T> {
public:
    /// Throws tg::Error when in_features or out_features is 0; bias = false leaves the bias out.
    Linear(std::size_t in_features, std::size_t out_features, bool bias = true, Generator& gen = default_generator());
    /// x @ weight^T + bias for x [..., in_features] (any leading dims, as torch.nn.Linear), giving
    /// [..., out_features]; throws tg::Error for any other shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// The weight parameter, [out_features, in_features].
    const Var<T>& weight() const noexcept { return this->own_parameter(0); }
    const Var<T>& bias() const noexcept { return this->own_parameter_if(bias_, 1); }  ///< undefined without bias
    std::string type_name() const override { return "Linear"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return out_; }

private:
    std::size_t in_, out_;
    bool bias_;
};

/// Options of Conv1d, in torch.nn.Conv1d's order after the kernel size.
struct Conv1dOptions {
    ///@{
    /// Stride, zero padding on both sides, dilation and number of groups, as torch.nn.Conv1d.
    std::size_t stride = 1, padding = 0, dilation = 1, groups = 1;
    ///@}
    /// Whether the layer has a bias.
    bool bias = true;
};
/// Options of Conv2d, in torch.nn.Conv2d's order after the kernel size.
struct Conv2dOptions {
    ///@{
    /// Stride, zero padding on each side and dilation, per axis (height, width).
    std::array<std::size_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
    ///@}
    /// Number of groups: in and out channels split into this many independent convolutions.
    std::size_t groups = 1;
    /// Whether the layer has a bias.
    bool bias = true;
};
/// Options of ConvTranspose2d, in torch.nn.ConvTranspose2d's order after the kernel size.
struct ConvTranspose2dOptions {
    ///@{
    /// Stride, padding and output padding (added on one side of the output), per axis (height, width).
    std::array<std::size_t, 2> stride{1, 1}, padding{0, 0}, output_padding{0, 0};
    ///@}
    /// Number of groups: in and out channels split into this many independent convolutions.
    std::size_t groups = 1;
    /// Whether the layer has a bias.
    bool bias = true;
    /// Dilation of the kernel, per axis (last here, as in torch.nn.ConvTranspose2d's arguments).
    std::array<std::size_t, 2> dilation{1, 1};
};

/// tg::conv1d as a layer: weight [out, in/groups, kernel], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * kernel (torch.nn.Conv1d's default).
template <class T> class Conv1d : public Module<T> {
public:
    /// Throws tg::Error when a channel count or the kernel size is 0, or groups does not divide both channel counts.
    Conv1d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size, Conv1dOptions options = {},
           Generator& gen = default_generator());
    /// tg::conv1d of x [N, in_channels, L] with the layer's weight, bias and options: [N, out_channels, L_out].
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// The weight parameter, [out_channels, in_channels / groups, kernel_size].
    const Var<T>& weight() const noexcept { return this->own_parameter(0); }
    /// The bias parameter, [out_channels]; undefined when options().bias is false.
    const Var<T>& bias() const noexcept { return this->own_parameter_if(options_.bias, 1); }
    /// The options the layer was built with.
    const Conv1dOptions& options() const noexcept { return options_; }
    std::string type_name() const override { return "Conv1d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    Conv1dOptions options_;
};

/// tg::conv2d as a layer: weight [out, in/groups, kh, kw], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * kh * kw (torch.nn.Conv2d's default).
template <class T> class Conv2d : public Module<T> {
public:
    /// Throws tg::Error when a channel count or a kernel size is 0, or groups does not divide both channel counts.
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::array<std::size_t, 2> kernel_size,
           Conv2dOptions options = {}, Generator& gen = default_generator());
    /// A square kernel.
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size, Conv2dOptions options = {},
           Generator& gen = default_generator())
        : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options, gen)
    {}
    /// tg::conv2d of x [N, in_channels, H, W] with the layer's weight, bias and options: [N, out_channels, H_out,
    /// W_out].
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// The weight parameter, [out_channels, in_channels / groups, kh, kw].
    const Var<T>& weight() const noexcept { return this->own_parameter(0); }
    /// The bias parameter, [out_channels]; undefined when options().bias is false.
    const Var<T>& bias() const noexcept { return this->own_parameter_if(options_.bias, 1); }
    /// The options the layer was built with.
    const Conv2dOptions& options() const noexcept { return options_; }
    std::string type_name() const override { return "Conv2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    Conv2dOptions options_;
};

/// tg::conv_transpose2d as a layer: weight [in, out/groups, kh, kw], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = out/groups * kh * kw (as torch.nn.ConvTranspose2d).
template <class T> class ConvTranspose2d : public Module<T> {
public:
    /// Throws tg::Error when a channel count or a kernel size is 0, or groups does not divide both channel counts.
    ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::array<std::size_t, 2> kernel_size,
                    ConvTranspose2dOptions options = {}, Generator& gen = default_generator());
    /// A square kernel.
    ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size,
                    ConvTranspose2dOptions options = {}, Generator& gen = default_generator())
        : ConvTranspose2d(in_channels, out_channels, {kernel_size, kernel_size}, options, gen)
    {}
    /// tg::conv_transpose2d of x [N, in_channels, H, W] with the layer's weight, bias and options: [N, out_channels,
    /// H_out, W_out].
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// The weight parameter, [in_channels, out_channels / groups, kh, kw].
    const Var<T>& weight() const noexcept { return this->own_parameter(0); }
    /// The bias parameter, [out_channels]; undefined when options().bias is false.
    const Var<T>& bias() const noexcept { return this->own_parameter_if(options_.bias, 1); }
    /// The options the layer was built with.
    const ConvTranspose2dOptions& options() const noexcept { return options_; }
    std::string type_name() const override { return "ConvTranspose2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    ConvTranspose2dOptions options_;
};

/// tg::max_pool1d as a layer (stride 0: the kernel size).
template <class T> class MaxPool1d : public Module<T> {
public:
    /// Throws tg::Error when kernel_size is 0.
    explicit MaxPool1d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0);
    /// tg::max_pool1d of x [N, C, L] with the layer's kernel, stride and padding.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "MaxPool1d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::size_t kernel_, stride_, padding_;
};

/// tg::max_pool2d as a layer (stride {0, 0}: the kernel size).
template <class T> class MaxPool2d : public Module<T> {
public:
    /// Throws tg::Error when a kernel size is 0.
    explicit MaxPool2d(std::array<std::size_t, 2> kernel_size, std::array<std::size_t, 2> stride = {0, 0},
                       std::array<std::size_t, 2> padding = {0, 0});
    /// A square window.
    explicit MaxPool2d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0)
        : MaxPool2d({kernel_size, kernel_size}, {stride, stride}, {padding, padding})
    {}
    /// tg::max_pool2d of x [N, C, H, W] with the layer's kernel, stride and padding.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "MaxPool2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::array<std::size_t, 2> kernel_, stride_, padding_;
};

/// tg::avg_pool2d as a layer (stride {0, 0}: the kernel size; padding counts in the average).
template <class T> class AvgPool2d : public Module<T> {
public:
    /// Throws tg::Error when a kernel size is 0.
    explicit AvgPool2d(std::array<std::size_t, 2> kernel_size, std::array<std::size_t, 2> stride = {0, 0},
                       std::array<std::size_t, 2> padding = {0, 0});
    /// A square window.
    explicit AvgPool2d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0)
        : AvgPool2d({kernel_size, kernel_size}, {stride, stride}, {padding, padding})
    {}
    /// tg::avg_pool2d of x [N, C, H, W] with the layer's kernel, stride and padding.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "AvgPool2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::array<std::size_t, 2> kernel_, stride_, padding_;
};

/// tg::adaptive_avg_pool2d as a layer.
template <class T> class AdaptiveAvgPool2d : public Module<T> {
public:
    /// Pools to output_size (height, width); throws tg::Error when either is 0.
    explicit AdaptiveAvgPool2d(std::array<std::size_t, 2> output_size);
    /// tg::adaptive_avg_pool2d of x [N, C, H, W]: [N, C, output_size[0], output_size[1]].
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::array<std::size_t, 2> output_size_;
};

/// Batch normalisation over channel axis 1 (tg::batch_norm) with learnable weight (ones)
/// and bias (zeros) when `affine`, and running statistics (buffers running_mean = 0,
/// running_var = 1, num_batches_tracked = 0) when `track_running_stats`. Training mode
/// normalises with the batch's statistics and updates the running ones; eval() uses the
/// running ones. BatchNorm1d takes [N, C] or [N, C, L], BatchNorm2d [N, C, H, W].
template <class T> class BatchNorm : public Module<T> {
public:
    /// x normalised per channel (axis 1), then scaled by weight and shifted by bias; in training mode with running
    /// statistics also updates them and counts the batch. Throws tg::Error when x is not of the layer's rank or its
    /// axis 1 is not num_features().
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// The number of channels, C.
    std::size_t num_features() const noexcept { return features_; }
    /// The scale parameter, [C]; undefined without affine.
    const Var<T>& weight() const noexcept { return this->own_parameter_if(affine_, 0); }
    /// The shift parameter, [C]; undefined without affine.
    const Var<T>& bias() const noexcept { return this->own_parameter_if(affine_, 1); }
    /// The running statistics (empty without track_running_stats).
    const xt::xarray<T>& running_mean() const noexcept;
    /// The running variance, [C] (empty without track_running_stats).
    const xt::xarray<T>& running_var() const noexcept;
    /// How many training batches updated the running statistics (0 without track_running_stats).
    std::int64_t num_batches_tracked() const noexcept { return track_ ? this->own_count(2) : 0; }
    std::string type_name() const override { return name_; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }

protected:
    /// For BatchNorm1d and BatchNorm2d: `name` in errors and summaries, inputs of rank min_rank to max_rank. Throws
    /// tg::Error when num_features is 0, eps is not positive or momentum is outside [0, 1].
    BatchNorm(const char* name, std::size_t min_rank, std::size_t max_rank, std::size_t num_features, double eps,
              double momentum, bool affine, bool track_running_stats);

private:
    const char* name_;
    std::size_t min_rank_, max_rank_, features_;
    double eps_, momentum_;
    bool affine_, track_;
};

/// BatchNorm over [N, C] or [N, C, L] (torch.nn.BatchNorm1d).
template <class T> class BatchNorm1d : public BatchNorm<T> {
public:
    /// C = num_features channels; momentum weighs the new batch's statistics in the running ones; eps is added to the
    /// variance. Throws tg::Error when num_features is 0, eps is not positive or momentum is outside [0, 1].
    explicit BatchNorm1d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                         bool track_running_stats = true)
        : BatchNorm<T>("BatchNorm1d", 2, 3, num_features, eps, momentum, affine, track_running_stats)
    {}
};

/// BatchNorm over [N, C, H, W] (torch.nn.BatchNorm2d).
template <class T> class BatchNorm2d : public BatchNorm<T> {
public:
    /// C = num_features channels; momentum weighs the new batch's statistics in the running ones; eps is added to the
    /// variance. Throws tg::Error when num_features is 0, eps is not positive or momentum is outside [0, 1].
    explicit BatchNorm2d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                         bool track_running_stats = true)
        : BatchNorm<T>("BatchNorm2d", 4, 4, num_features, eps, momentum, affine, track_running_stats)
    {}
};

/// tg::layer_norm over the trailing `normalized_shape`, with weight (ones) and bias
/// (zeros) of that shape when `elementwise_affine`.
template <class T> class LayerNorm : public Module<T> {
public:
    /// eps is added to the variance; throws tg::Error when normalized_shape is empty or eps is not positive.
    explicit LayerNorm(std::vector<std::size_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
    /// x normalised over its trailing axes normalized_shape, then scaled by weight and shifted by bias (x's shape).
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    /// The scale parameter, of normalized_shape; undefined without elementwise_affine.
    const Var<T>& weight() const noexcept { return this->own_parameter_if(affine_, 0); }
    /// The shift parameter, of normalized_shape; undefined without elementwise_affine.
    const Var<T>& bias() const noexcept { return this->own_parameter_if(affine_, 1); }
    std::string type_name() const override { return "LayerNorm"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }

private:
    std::vector<std::size_t> shape_;
    double eps_;
    bool affine_;
};

/// A lookup table: row i of weight [num_embeddings, embedding_dim] for index i
/// (tg::embedding); weight N(0, 1), as torch.nn.Embedding.
template <class T> class Embedding : public Module<T> {
public:
    /// Throws tg::Error when num_embeddings or embedding_dim is 0.
    Embedding(std::size_t num_embeddings, std::size_t embedding_dim, Generator& gen = default_generator());
    /// The rows for `indices` (any shape): shape indices.shape + [embedding_dim].
    Var<T> forward(const xt::xarray<std::int64_t>& indices);
    /// Same as forward(indices).
    Var<T> operator()(const xt::xarray<std::int64_t>& indices) { return forward(indices); }
    /// The same for indices held in a Var (as in a Sequential); its values must be integers.
    Var<T> forward(const Var<T>& indices);
    /// Same as forward(indices).
    Var<T> operator()(const Var<T>& indices) { return forward(indices); }
    /// The table, [num_embeddings, embedding_dim].
    const Var<T>& weight() const noexcept { return this->own_parameter(0); }
    std::string type_name() const override { return "Embedding"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return dim_; }

private:
    std::size_t num_, dim_;
};

/// Flattens axes start_dim..end_dim into one (tg::flatten); by default everything but the batch axis.
template <class T> class Flatten : public Module<T> {
public:
    /// Axes may be negative (counted from the end).
    explicit Flatten(std::ptrdiff_t start_dim = 1, std::ptrdiff_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
    /// tg::flatten(x, start_dim, end_dim).
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "Flatten"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::ptrdiff_t start_, end_;
};

/// Zeroes whole channels with probability p while training (tg::dropout2d) and scales the
/// rest by 1 / (1 - p); identity in eval(). Masks come from its own seeded generator.
template <class T> class Dropout2d : public Module<T> {
public:
    /// Seeded from the thread's default generator (see tg::manual_seed); throws tg::Error unless 0 <= p < 1.
    explicit Dropout2d(double p = 0.5);
    /// Seeded explicitly; throws tg::Error unless 0 <= p < 1.
    Dropout2d(double p, std::uint64_t seed);
    /// In training mode with p > 0, tg::dropout2d(x, p, generator()) (x is [N, C, ...]); otherwise x itself.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "Dropout2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
    /// The probability of dropping a channel.
    double p() const noexcept { return p_; }
    /// The mask generator, registered as "generator" (its state goes into training checkpoints).
    Generator& generator() noexcept { return this->own_generator(0); }
    /// The mask generator, read-only.
    const Generator& generator() const noexcept { return this->own_generator(0); }

private:
    double p_;
};

/// max(x, 0) + negative_slope * min(x, 0) as a layer.
template <class T> class LeakyReLU : public Module<T> {
public:
    /// The slope for negative x.
    explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
    /// tg::leaky_relu(x, negative_slope), elementwise, any shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "LeakyReLU"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }

private:
    double slope_;
};

/// x Phi(x) (the exact GELU) as a layer.
template <class T> class GELU : public Module<T> {
public:
    /// tg::gelu(x), elementwise, any shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "GELU"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
};

/// x sigmoid(x) as a layer.
template <class T> class SiLU : public Module<T> {
public:
    /// tg::silu(x), elementwise, any shape.
    Var<T> forward(const Var<T>& x);
    /// Same as forward(x).
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    std::string type_name() const override { return "SiLU"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t> in) const override { return in; }
};

// --- functional_call ---------------------------------------------------------------------

namespace detail {

/// What functional_call does around f: checks the stand-ins, puts them in the place of the
/// module's parameters (every place a parameter is registered, so tied weights stay tied)
/// and puts the module's own back when it goes out of scope.
template <class T> class ParameterSwap {
public:
    ParameterSwap(Module<T>& module, const std::map<std::string, Var<T>>& parameters);
    ~ParameterSwap();
    ParameterSwap(const ParameterSwap&) = delete;
    ParameterSwap& operator=(const ParameterSwap&) = delete;

private:
    struct Slot {
        Module<T>* module;
        std::size_t index;
        Var<T> original;
    };
    std::vector<Slot> slots_;
};

}  // namespace detail

/// Runs f() with the Vars of `parameters` standing in, by dotted name, for the module's own
/// parameters, and puts the module's own back afterwards, also when f throws; returns what
/// f returns (torch.func.functional_call). The stand-ins may be any Vars of the parameters'
/// shapes, outputs of ops too, so that a gradient taken through them reaches what they were
/// computed from: one inner SGD step `w - lr * tg::grad(loss, {w}, {}, {true})[0]` and a
/// loss of the module at those weights give MAML's outer gradient. Names not given keep the
/// module's own parameters. An unknown name, an undefined Var, a shape that differs from the
/// parameter's, or two different Vars for one tied parameter are a tg::Error before anything
/// changes. The built-in layers read their parameters from the module in forward; a module of
/// your own follows functional_call when its forward does the same (get_parameter, or its
/// children's weight()).
template <class T, class F>
auto functional_call(Module<T>& module, const std::map<std::string, Var<T>>& parameters, F&& f)
{
    detail::ParameterSwap<T> swap(module, parameters);
    return std::forward<F>(f)();
}

}  // namespace tg::nn
