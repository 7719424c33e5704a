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

#include <array>
#include <cstddef>
#include <cstdint>
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

/// A module's state that is not a parameter, such as BatchNorm's running statistics:
/// saved and restored with the parameters (tg::io::save_parameters, checkpoints), never
/// given to optimisers. Exactly one pointer is set; it points into the module.
template <class T> struct BufferRef {
    xt::xarray<T>* values = nullptr;  ///< floating point, in the model's dtype
    std::int64_t* count = nullptr;    ///< an integer, stored as a rank-0 I64 tensor (as PyTorch)
};

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

    /// The buffers with their names, in PyTorch's state_dict order ("running_mean",
    /// "running_var", "num_batches_tracked"; prefixed like parameters in a Sequential).
    virtual std::vector<std::pair<std::string, BufferRef<T>>> named_buffers() { return {}; }

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
    std::vector<std::pair<std::string, BufferRef<T>>> named_buffers() override;
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

// --- Layers of convolutional networks (PyTorch's constructor arguments, default
// initialisation and parameter names, so state dicts map one to one) ----------------------

/// y = x @ weight^T + bias, x [batch, in], weight [out, in] (PyTorch's layout, unlike
/// Dense's [in, out]), bias [out]. Weight and bias U(-1/sqrt(in), 1/sqrt(in)), as torch.nn.Linear.
template <class T> class Linear : public Module<T> {
public:
    Linear(std::size_t in_features, std::size_t out_features, bool bias = true, Generator& gen = default_generator());
    Var<T> forward(const Var<T>& x) override;
    const Var<T>& weight() const noexcept { return weight_; }
    const Var<T>& bias() const noexcept { return bias_; }  ///< undefined without bias
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override { return "Linear"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return out_; }

private:
    std::size_t in_, out_;
    Var<T> weight_, bias_;
};

/// Options of Conv1d, in torch.nn.Conv1d's order after the kernel size.
struct Conv1dOptions {
    std::size_t stride = 1, padding = 0, dilation = 1, groups = 1;
    bool bias = true;
};
/// Options of Conv2d, in torch.nn.Conv2d's order after the kernel size.
struct Conv2dOptions {
    std::array<std::size_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
    std::size_t groups = 1;
    bool bias = true;
};
/// Options of ConvTranspose2d, in torch.nn.ConvTranspose2d's order after the kernel size.
struct ConvTranspose2dOptions {
    std::array<std::size_t, 2> stride{1, 1}, padding{0, 0}, output_padding{0, 0};
    std::size_t groups = 1;
    bool bias = true;
    std::array<std::size_t, 2> dilation{1, 1};
};

/// tg::conv1d as a layer: weight [out, in/groups, kernel], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * kernel (torch.nn.Conv1d's default).
template <class T> class Conv1d : public Module<T> {
public:
    Conv1d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size, Conv1dOptions options = {},
           Generator& gen = default_generator());
    Var<T> forward(const Var<T>& x) override;
    const Var<T>& weight() const noexcept { return weight_; }
    const Var<T>& bias() const noexcept { return bias_; }
    const Conv1dOptions& options() const noexcept { return options_; }
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override { return "Conv1d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    Conv1dOptions options_;
    Var<T> weight_, bias_;
};

/// tg::conv2d as a layer: weight [out, in/groups, kh, kw], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * kh * kw (torch.nn.Conv2d's default).
template <class T> class Conv2d : public Module<T> {
public:
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::array<std::size_t, 2> kernel_size,
           Conv2dOptions options = {}, Generator& gen = default_generator());
    /// A square kernel.
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size, Conv2dOptions options = {},
           Generator& gen = default_generator())
        : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options, gen)
    {}
    Var<T> forward(const Var<T>& x) override;
    const Var<T>& weight() const noexcept { return weight_; }
    const Var<T>& bias() const noexcept { return bias_; }
    const Conv2dOptions& options() const noexcept { return options_; }
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override { return "Conv2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    Conv2dOptions options_;
    Var<T> weight_, bias_;
};

/// tg::conv_transpose2d as a layer: weight [in, out/groups, kh, kw], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = out/groups * kh * kw (as torch.nn.ConvTranspose2d).
template <class T> class ConvTranspose2d : public Module<T> {
public:
    ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::array<std::size_t, 2> kernel_size,
                    ConvTranspose2dOptions options = {}, Generator& gen = default_generator());
    /// A square kernel.
    ConvTranspose2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size,
                    ConvTranspose2dOptions options = {}, Generator& gen = default_generator())
        : ConvTranspose2d(in_channels, out_channels, {kernel_size, kernel_size}, options, gen)
    {}
    Var<T> forward(const Var<T>& x) override;
    const Var<T>& weight() const noexcept { return weight_; }
    const Var<T>& bias() const noexcept { return bias_; }
    const ConvTranspose2dOptions& options() const noexcept { return options_; }
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override { return "ConvTranspose2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    ConvTranspose2dOptions options_;
    Var<T> weight_, bias_;
};

/// tg::max_pool1d as a layer (stride 0: the kernel size).
template <class T> class MaxPool1d : public Module<T> {
public:
    explicit MaxPool1d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0);
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "MaxPool1d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::size_t kernel_, stride_, padding_;
};

/// tg::max_pool2d as a layer (stride {0, 0}: the kernel size).
template <class T> class MaxPool2d : public Module<T> {
public:
    explicit MaxPool2d(std::array<std::size_t, 2> kernel_size, std::array<std::size_t, 2> stride = {0, 0},
                       std::array<std::size_t, 2> padding = {0, 0});
    /// A square window.
    explicit MaxPool2d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0)
        : MaxPool2d({kernel_size, kernel_size}, {stride, stride}, {padding, padding})
    {}
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "MaxPool2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::array<std::size_t, 2> kernel_, stride_, padding_;
};

/// tg::avg_pool2d as a layer (stride {0, 0}: the kernel size; padding counts in the average).
template <class T> class AvgPool2d : public Module<T> {
public:
    explicit AvgPool2d(std::array<std::size_t, 2> kernel_size, std::array<std::size_t, 2> stride = {0, 0},
                       std::array<std::size_t, 2> padding = {0, 0});
    /// A square window.
    explicit AvgPool2d(std::size_t kernel_size, std::size_t stride = 0, std::size_t padding = 0)
        : AvgPool2d({kernel_size, kernel_size}, {stride, stride}, {padding, padding})
    {}
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "AvgPool2d"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::array<std::size_t, 2> kernel_, stride_, padding_;
};

/// tg::adaptive_avg_pool2d as a layer.
template <class T> class AdaptiveAvgPool2d : public Module<T> {
public:
    explicit AdaptiveAvgPool2d(std::array<std::size_t, 2> output_size);
    Var<T> forward(const Var<T>& x) override;
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
    Var<T> forward(const Var<T>& x) override;
    std::size_t num_features() const noexcept { return features_; }
    const Var<T>& weight() const noexcept { return weight_; }
    const Var<T>& bias() const noexcept { return bias_; }
    const xt::xarray<T>& running_mean() const noexcept { return running_mean_; }
    const xt::xarray<T>& running_var() const noexcept { return running_var_; }
    std::int64_t num_batches_tracked() const noexcept { return batches_; }
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::vector<std::pair<std::string, BufferRef<T>>> named_buffers() override;
    std::string type_name() const override { return name_; }

protected:
    BatchNorm(const char* name, std::size_t min_rank, std::size_t max_rank, std::size_t num_features, double eps,
              double momentum, bool affine, bool track_running_stats);

private:
    const char* name_;
    std::size_t min_rank_, max_rank_, features_;
    double eps_, momentum_;
    bool track_;
    Var<T> weight_, bias_;
    xt::xarray<T> running_mean_, running_var_;
    std::int64_t batches_ = 0;
};

template <class T> class BatchNorm1d : public BatchNorm<T> {
public:
    explicit BatchNorm1d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                         bool track_running_stats = true)
        : BatchNorm<T>("BatchNorm1d", 2, 3, num_features, eps, momentum, affine, track_running_stats)
    {}
};

template <class T> class BatchNorm2d : public BatchNorm<T> {
public:
    explicit BatchNorm2d(std::size_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                         bool track_running_stats = true)
        : BatchNorm<T>("BatchNorm2d", 4, 4, num_features, eps, momentum, affine, track_running_stats)
    {}
};

/// tg::layer_norm over the trailing `normalized_shape`, with weight (ones) and bias
/// (zeros) of that shape when `elementwise_affine`.
template <class T> class LayerNorm : public Module<T> {
public:
    explicit LayerNorm(std::vector<std::size_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
    Var<T> forward(const Var<T>& x) override;
    const Var<T>& weight() const noexcept { return weight_; }
    const Var<T>& bias() const noexcept { return bias_; }
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override { return "LayerNorm"; }

private:
    std::vector<std::size_t> shape_;
    double eps_;
    Var<T> weight_, bias_;
};

/// A lookup table: row i of weight [num_embeddings, embedding_dim] for index i
/// (tg::embedding); weight N(0, 1), as torch.nn.Embedding.
template <class T> class Embedding : public Module<T> {
public:
    Embedding(std::size_t num_embeddings, std::size_t embedding_dim, Generator& gen = default_generator());
    /// The rows for `indices` (any shape): shape indices.shape + [embedding_dim].
    Var<T> forward(const xt::xarray<std::int64_t>& indices);
    Var<T> operator()(const xt::xarray<std::int64_t>& indices) { return forward(indices); }
    /// The same for indices held in a Var (as in a Sequential); its values must be integers.
    Var<T> forward(const Var<T>& indices) override;
    using Module<T>::operator();
    const Var<T>& weight() const noexcept { return weight_; }
    std::vector<std::pair<std::string, Var<T>>> named_parameters() const override;
    std::string type_name() const override { return "Embedding"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return dim_; }

private:
    std::size_t num_, dim_;
    Var<T> weight_;
};

/// Flattens axes start_dim..end_dim into one (tg::flatten); by default everything but the batch axis.
template <class T> class Flatten : public Module<T> {
public:
    explicit Flatten(std::ptrdiff_t start_dim = 1, std::ptrdiff_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "Flatten"; }
    std::optional<std::size_t> output_features(std::optional<std::size_t>) const override { return std::nullopt; }

private:
    std::ptrdiff_t start_, end_;
};

/// Zeroes whole channels with probability p while training (tg::dropout2d) and scales the
/// rest by 1 / (1 - p); identity in eval(). Masks come from its own seeded generator.
template <class T> class Dropout2d : public Module<T> {
public:
    explicit Dropout2d(double p = 0.5);
    Dropout2d(double p, std::uint64_t seed);
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "Dropout2d"; }
    double p() const noexcept { return p_; }
    Generator& generator() noexcept { return gen_; }
    std::vector<std::pair<std::string, Generator*>> named_generators() override { return {{"generator", &gen_}}; }

private:
    double p_;
    Generator gen_;
};

/// max(x, 0) + negative_slope * min(x, 0) as a layer.
template <class T> class LeakyReLU : public Module<T> {
public:
    explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "LeakyReLU"; }

private:
    double slope_;
};

/// x Phi(x) (the exact GELU) as a layer.
template <class T> class GELU : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "GELU"; }
};

/// x sigmoid(x) as a layer.
template <class T> class SiLU : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string type_name() const override { return "SiLU"; }
};

}  // namespace tg::nn
