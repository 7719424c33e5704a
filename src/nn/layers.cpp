// The layers of convolutional networks: Linear (PyTorch's layout), convolutions, pooling,
// normalisation, Embedding, Flatten, Dropout2d and the remaining activations. Each follows
// torch.nn's constructor arguments, default initialisation and parameter names.

#include <cmath>
#include <limits>

#include "tapegrad/nn.hpp"
#include "tapegrad/ops.hpp"

namespace tg::nn {

namespace {

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what torch.nn's kaiming_uniform_(a = sqrt(5)) gives
// weights and what it gives biases.
template <class T> Var<T> fan_in_uniform(const std::vector<std::size_t>& shape, std::size_t fan_in, Generator& gen)
{
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    return parameter(init::uniform(-bound, bound).make<T>(shape, fan_in, 0, gen));
}

void check_channels(const char* layer, std::size_t in, std::size_t out, std::size_t groups)
{
    if (in == 0 || out == 0) {
        throw Error(std::string(layer) + ": in and out channels must be positive, got in = " + std::to_string(in) +
                    ", out = " + std::to_string(out));
    }
    if (groups == 0 || in % groups != 0 || out % groups != 0) {
        throw Error(std::string(layer) + ": groups (" + std::to_string(groups) + ") must divide the in (" +
                    std::to_string(in) + ") and out (" + std::to_string(out) + ") channels");
    }
}

void check_kernel(const char* layer, std::array<std::size_t, 2> k)
{
    if (k[0] == 0 || k[1] == 0) {
        throw Error(std::string(layer) + ": kernel size must be positive, got [" + std::to_string(k[0]) + ", " +
                    std::to_string(k[1]) + "]");
    }
}

}  // namespace

// --- Linear ------------------------------------------------------------------------------

template <class T>
Linear<T>::Linear(std::size_t in_features, std::size_t out_features, bool bias, Generator& gen)
    : in_(in_features), out_(out_features), bias_(bias)
{
    if (in_ == 0 || out_ == 0) {
        throw Error("Linear: in and out features must be positive, got in = " + std::to_string(in_) +
                    ", out = " + std::to_string(out_));
    }
    this->register_parameter("weight", fan_in_uniform<T>({out_, in_}, in_, gen));
    if (bias) this->register_parameter("bias", fan_in_uniform<T>({out_}, in_, gen));
}

template <class T> Var<T> Linear<T>::forward(const Var<T>& x)
{
    const auto& s = x.shape();
    if (s.empty() || s.back() != in_) {
        throw Error("Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) + "): expected input [..., " +
                    std::to_string(in_) + "], got " + format_shape(s));
    }
    // With a bias, one fused entry for any rank (x @ weight^T + bias, the transpose folded in).
    if (bias_) return linear_t(x, weight(), bias());
    if (s.size() == 2) return matmul(x, weight(), false, true);
    // Other ranks as rows [batch, in]: one product for all the leading dims (as a batched
    // matmul, each matrix would be a product of its own and the weight's gradient a sum of them).
    std::vector<std::size_t> shape(s.begin(), s.end());
    const std::size_t rows = x.size() / in_;  // in_ > 0 (the constructor checks)
    const Var<T> y = matmul(reshape(x, {rows, in_}), weight(), false, true);
    shape.back() = out_;
    return reshape(y, shape);
}

// --- Convolutions ------------------------------------------------------------------------

template <class T>
Conv1d<T>::Conv1d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size, Conv1dOptions options,
                  Generator& gen)
    : options_(options)
{
    check_channels("Conv1d", in_channels, out_channels, options.groups);
    check_kernel("Conv1d", {kernel_size, kernel_size});
    const std::size_t fan_in = in_channels / options.groups * kernel_size;
    this->register_parameter("weight",
                             fan_in_uniform<T>({out_channels, in_channels / options.groups, kernel_size}, fan_in, gen));
    if (options.bias) this->register_parameter("bias", fan_in_uniform<T>({out_channels}, fan_in, gen));
}

template <class T> Var<T> Conv1d<T>::forward(const Var<T>& x)
{
    return conv1d(x, weight(), bias(), options_.stride, options_.padding, options_.dilation, options_.groups);
}

template <class T>
Conv2d<T>::Conv2d(std::size_t in_channels, std::size_t out_channels, std::array<std::size_t, 2> kernel_size,
                  Conv2dOptions options, Generator& gen)
    : options_(options)
{
    check_channels("Conv2d", in_channels, out_channels, options.groups);
    check_kernel("Conv2d", kernel_size);
    const std::size_t fan_in = in_channels / options.groups * kernel_size[0] * kernel_size[1];
    this->register_parameter(
        "weight",
        fan_in_uniform<T>({out_channels, in_channels / options.groups, kernel_size[0], kernel_size[1]}, fan_in, gen));
    if (options.bias) this->register_parameter("bias", fan_in_uniform<T>({out_channels}, fan_in, gen));
}

template <class T> Var<T> Conv2d<T>::forward(const Var<T>& x)
{
    return conv2d(x, weight(), bias(), options_.stride, options_.padding, options_.dilation, options_.groups);
}

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(std::size_t in_channels, std::size_t out_channels,
                                    std::array<std::size_t, 2> kernel_size, ConvTranspose2dOptions options,
                                    Generator& gen)
    : options_(options)
{
    check_channels("ConvTranspose2d", in_channels, out_channels, options.groups);
    check_kernel("ConvTranspose2d", kernel_size);
    // torch computes the fan-in from the weight's axis 1, which here holds out/groups.
    const std::size_t fan_in = out_channels / options.groups * kernel_size[0] * kernel_size[1];
    this->register_parameter(
        "weight",
        fan_in_uniform<T>({in_channels, out_channels / options.groups, kernel_size[0], kernel_size[1]}, fan_in, gen));
    if (options.bias) this->register_parameter("bias", fan_in_uniform<T>({out_channels}, fan_in, gen));
}

template <class T> Var<T> ConvTranspose2d<T>::forward(const Var<T>& x)
{
    return conv_transpose2d(x, weight(), bias(), options_.stride, options_.padding, options_.output_padding,
                            options_.groups, options_.dilation);
}

// --- Pooling -----------------------------------------------------------------------------

template <class T>
MaxPool1d<T>::MaxPool1d(std::size_t kernel_size, std::size_t stride, std::size_t padding)
    : kernel_(kernel_size), stride_(stride), padding_(padding)
{
    if (kernel_ == 0) throw Error("MaxPool1d: kernel size must be positive, got 0");
}
template <class T> Var<T> MaxPool1d<T>::forward(const Var<T>& x)
{
    return max_pool1d(x, kernel_, stride_, padding_);
}

template <class T>
MaxPool2d<T>::MaxPool2d(std::array<std::size_t, 2> kernel_size, std::array<std::size_t, 2> stride,
                        std::array<std::size_t, 2> padding)
    : kernel_(kernel_size), stride_(stride), padding_(padding)
{
    check_kernel("MaxPool2d", kernel_);
}
template <class T> Var<T> MaxPool2d<T>::forward(const Var<T>& x)
{
    return max_pool2d(x, kernel_, stride_, padding_);
}

template <class T>
AvgPool2d<T>::AvgPool2d(std::array<std::size_t, 2> kernel_size, std::array<std::size_t, 2> stride,
                        std::array<std::size_t, 2> padding)
    : kernel_(kernel_size), stride_(stride), padding_(padding)
{
    check_kernel("AvgPool2d", kernel_);
}
template <class T> Var<T> AvgPool2d<T>::forward(const Var<T>& x)
{
    return avg_pool2d(x, kernel_, stride_, padding_);
}

template <class T>
AdaptiveAvgPool2d<T>::AdaptiveAvgPool2d(std::array<std::size_t, 2> output_size) : output_size_(output_size)
{
    check_kernel("AdaptiveAvgPool2d", output_size_);
}
template <class T> Var<T> AdaptiveAvgPool2d<T>::forward(const Var<T>& x)
{
    return adaptive_avg_pool2d(x, output_size_);
}

// --- Normalisation -----------------------------------------------------------------------

template <class T>
BatchNorm<T>::BatchNorm(const char* name, std::size_t min_rank, std::size_t max_rank, std::size_t num_features,
                        double eps, double momentum, bool affine, bool track_running_stats)
    : name_(name), min_rank_(min_rank), max_rank_(max_rank), features_(num_features), eps_(eps), momentum_(momentum),
      affine_(affine), track_(track_running_stats)
{
    if (num_features == 0) throw Error(std::string(name) + ": num_features must be positive, got 0");
    if (!(eps > 0.0)) throw Error(std::string(name) + ": eps must be positive, got " + format_number(eps));
    if (!(momentum >= 0.0 && momentum <= 1.0))
        throw Error(std::string(name) + ": momentum must be in [0, 1], got " + format_number(momentum));
    if (affine) {
        this->register_parameter("weight", parameter(xt::xarray<T>(xt::ones<T>({num_features}))));
        this->register_parameter("bias", parameter(xt::xarray<T>(xt::zeros<T>({num_features}))));
    }
    // PyTorch's buffers, in its state_dict order.
    if (track_) {
        this->register_buffer("running_mean", xt::zeros<T>({num_features}));
        this->register_buffer("running_var", xt::ones<T>({num_features}));
        this->register_count_buffer("num_batches_tracked", 0);
    }
}

template <class T> Var<T> BatchNorm<T>::forward(const Var<T>& x)
{
    const auto& s = x.shape();
    if (s.size() < min_rank_ || s.size() > max_rank_ || s[1] != features_) {
        const std::string expected =
            max_rank_ == 4 ? "[N, " + std::to_string(features_) + ", H, W]"
                           : "[N, " + std::to_string(features_) + "] or [N, " + std::to_string(features_) + ", L]";
        throw Error(std::string(name_) + ": expected input " + expected + ", got " + format_shape(s));
    }
    const bool batch_stats = this->training_ || !track_;
    if (this->training_ && track_) ++this->own_count(2);
    return batch_norm(x, track_ ? &this->own_buffer(0) : nullptr, track_ ? &this->own_buffer(1) : nullptr, weight(),
                      bias(), batch_stats, momentum_, eps_);
}

template <class T> const xt::xarray<T>& BatchNorm<T>::running_mean() const noexcept
{
    static const xt::xarray<T> none;
    return track_ ? this->own_buffer(0) : none;
}

template <class T> const xt::xarray<T>& BatchNorm<T>::running_var() const noexcept
{
    static const xt::xarray<T> none;
    return track_ ? this->own_buffer(1) : none;
}

template <class T>
LayerNorm<T>::LayerNorm(std::vector<std::size_t> normalized_shape, double eps, bool elementwise_affine)
    : shape_(std::move(normalized_shape)), eps_(eps), affine_(elementwise_affine)
{
    if (shape_.empty()) throw Error("LayerNorm: normalized_shape must not be empty");
    if (!(eps > 0.0)) throw Error("LayerNorm: eps must be positive, got " + format_number(eps));
    if (elementwise_affine) {
        this->register_parameter("weight", parameter(xt::xarray<T>(xt::ones<T>(shape_))));
        this->register_parameter("bias", parameter(xt::xarray<T>(xt::zeros<T>(shape_))));
    }
}

template <class T> Var<T> LayerNorm<T>::forward(const Var<T>& x)
{
    return layer_norm(x, shape_, weight(), bias(), eps_);
}

// --- Embedding, Flatten, Dropout2d, activations ------------------------------------------

template <class T>
Embedding<T>::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, Generator& gen)
    : num_(num_embeddings), dim_(embedding_dim)
{
    if (num_ == 0 || dim_ == 0) {
        throw Error("Embedding: num_embeddings and embedding_dim must be positive, got " + std::to_string(num_) +
                    " and " + std::to_string(dim_));
    }
    this->register_parameter("weight", parameter(init::normal(0.0, 1.0).make<T>({num_, dim_}, num_, dim_, gen)));
}

template <class T> Var<T> Embedding<T>::forward(const xt::xarray<std::int64_t>& indices)
{
    return embedding(indices, weight());
}

template <class T> Var<T> Embedding<T>::forward(const Var<T>& indices)
{
    const auto& v = indices.value();
    xt::xarray<std::int64_t> idx = xt::zeros<std::int64_t>(v.shape());
    for (std::size_t i = 0; i < v.size(); ++i) {
        const T e = v.data()[i];
        if (!(std::floor(e) == e) || std::abs(e) > T(std::numeric_limits<std::int32_t>::max())) {
            throw Error("Embedding: indices must be integers, got " + format_number(static_cast<double>(e)) +
                        " at flat position " + std::to_string(i));
        }
        idx.data()[i] = static_cast<std::int64_t>(e);
    }
    return embedding(idx, weight());
}

template <class T> Var<T> Flatten<T>::forward(const Var<T>& x)
{
    return flatten(x, start_, end_);
}

template <class T> Dropout2d<T>::Dropout2d(double p) : Dropout2d(p, default_generator()()) {}

template <class T> Dropout2d<T>::Dropout2d(double p, std::uint64_t seed) : p_(p)
{
    if (!(p >= 0.0 && p < 1.0) || !(static_cast<T>(p) < T(1)))
        throw Error("Dropout2d: p must be in [0, 1), got " + format_number(p));
    this->register_generator("generator", Generator(seed));
}

template <class T> Var<T> Dropout2d<T>::forward(const Var<T>& x)
{
    if (!this->training_ || p_ == 0.0) return x;
    return dropout2d(x, static_cast<T>(p_), generator());
}

template <class T> Var<T> LeakyReLU<T>::forward(const Var<T>& x)
{
    return leaky_relu(x, static_cast<T>(slope_));
}
template <class T> Var<T> GELU<T>::forward(const Var<T>& x)
{
    return gelu(x);
}
template <class T> Var<T> SiLU<T>::forward(const Var<T>& x)
{
    return silu(x);
}

#define TAPEGRAD_LAYERS_INSTANTIATE(T)                                                                                 \
    template class Linear<T>;                                                                                          \
    template class Conv1d<T>;                                                                                          \
    template class Conv2d<T>;                                                                                          \
    template class ConvTranspose2d<T>;                                                                                 \
    template class MaxPool1d<T>;                                                                                       \
    template class MaxPool2d<T>;                                                                                       \
    template class AvgPool2d<T>;                                                                                       \
    template class AdaptiveAvgPool2d<T>;                                                                               \
    template class BatchNorm<T>;                                                                                       \
    template class LayerNorm<T>;                                                                                       \
    template class Embedding<T>;                                                                                       \
    template class Flatten<T>;                                                                                         \
    template class Dropout2d<T>;                                                                                       \
    template class LeakyReLU<T>;                                                                                       \
    template class GELU<T>;                                                                                            \
    template class SiLU<T>;
TAPEGRAD_LAYERS_INSTANTIATE(float)
TAPEGRAD_LAYERS_INSTANTIATE(double)
#undef TAPEGRAD_LAYERS_INSTANTIATE

}  // namespace tg::nn
