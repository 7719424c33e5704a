// Layers: Dense, activations, Dropout, Sequential and ModuleList, and initialisers.

#include "tapegrad/nn.hpp"

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "tapegrad/ops.hpp"

namespace tg {

Generator& default_generator()
{
    static thread_local Generator gen(5489u);
    return gen;
}

void manual_seed(std::uint64_t seed)
{
    default_generator().seed(seed);
}

namespace nn {

const char* to_string(Activation a)
{
    switch (a) {
    case Activation::sigmoid:
        return "sigmoid";
    case Activation::tanh:
        return "tanh";
    case Activation::relu:
        return "relu";
    default:
        return "none";
    }
}

namespace init {

template <class T>
xt::xarray<T> Initializer::make(const std::vector<std::size_t>& shape, std::size_t fan_in, std::size_t fan_out,
                                Generator& gen) const
{
    xt::xarray<double> v(shape);
    fill_(v, fan_in, fan_out, gen);
    return xt::xarray<T>(xt::cast<T>(v));
}
template xt::xarray<float> Initializer::make<float>(const std::vector<std::size_t>&, std::size_t, std::size_t,
                                                    Generator&) const;
template xt::xarray<double> Initializer::make<double>(const std::vector<std::size_t>&, std::size_t, std::size_t,
                                                      Generator&) const;

namespace {
void fill_uniform(xt::xarray<double>& v, double a, double b, Generator& gen)
{
    std::uniform_real_distribution<double> d(a, b);
    for (auto& x : v) x = d(gen);
}
void fill_normal(xt::xarray<double>& v, double mean, double stddev, Generator& gen)
{
    std::normal_distribution<double> d(mean, stddev);
    for (auto& x : v) x = d(gen);
}
std::string num(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
}
}  // namespace

Initializer zeros()
{
    return {"zeros", [](xt::xarray<double>& v, std::size_t, std::size_t, Generator&) { v.fill(0.0); }};
}

Initializer constant(double value)
{
    return {"constant(" + num(value) + ")",
            [value](xt::xarray<double>& v, std::size_t, std::size_t, Generator&) { v.fill(value); }};
}

Initializer uniform(double a, double b)
{
    if (!(a < b) || !std::isfinite(a) || !std::isfinite(b))
        throw Error("init::uniform: needs a < b, both finite, got a = " + num(a) + ", b = " + num(b));
    return {"uniform(" + num(a) + ", " + num(b) + ")",
            [a, b](xt::xarray<double>& v, std::size_t, std::size_t, Generator& g) { fill_uniform(v, a, b, g); }};
}

Initializer normal(double mean, double stddev)
{
    if (!(stddev > 0) || !std::isfinite(stddev))
        throw Error("init::normal: stddev must be positive and finite, got " + num(stddev));
    if (!std::isfinite(mean)) throw Error("init::normal: mean must be finite, got " + num(mean));
    return {"normal(" + num(mean) + ", " + num(stddev) + ")",
            [mean, stddev](xt::xarray<double>& v, std::size_t, std::size_t, Generator& g) {
                fill_normal(v, mean, stddev, g);
            }};
}

Initializer glorot_uniform(double gain)
{
    if (!std::isfinite(gain)) throw Error("init::glorot_uniform: gain must be finite, got " + num(gain));
    return {"glorot_uniform", [gain](xt::xarray<double>& v, std::size_t fi, std::size_t fo, Generator& g) {
                const double l = gain * std::sqrt(6.0 / static_cast<double>(fi + fo));
                fill_uniform(v, -l, l, g);
            }};
}

Initializer glorot_normal(double gain)
{
    if (!std::isfinite(gain)) throw Error("init::glorot_normal: gain must be finite, got " + num(gain));
    return {"glorot_normal", [gain](xt::xarray<double>& v, std::size_t fi, std::size_t fo, Generator& g) {
                fill_normal(v, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fi + fo)), g);
            }};
}

Initializer he_uniform()
{
    return {"he_uniform", [](xt::xarray<double>& v, std::size_t fi, std::size_t, Generator& g) {
                const double l = std::sqrt(6.0 / static_cast<double>(fi));
                fill_uniform(v, -l, l, g);
            }};
}

Initializer he_normal()
{
    return {"he_normal", [](xt::xarray<double>& v, std::size_t fi, std::size_t, Generator& g) {
                fill_normal(v, 0.0, std::sqrt(2.0 / static_cast<double>(fi)), g);
            }};
}

}  // namespace init

// --- Dense -------------------------------------------------------------------------------

template <class T>
Dense<T>::Dense(std::size_t in, std::size_t out, Activation activation, const init::Initializer& weight_init,
                const init::Initializer& bias_init, Generator& gen)
    : in_(in), out_(out), activation_(activation)
{
    if (in == 0 || out == 0) {
        throw Error("Dense: in and out features must be positive, got in = " + std::to_string(in) +
                    ", out = " + std::to_string(out));
    }
    checked_size("Dense", std::vector<std::size_t>{in, out});
    this->register_parameter("weight", parameter(weight_init.make<T>({in, out}, in, out, gen)));
    this->register_parameter("bias", parameter(bias_init.make<T>({out}, in, out, gen)));
}

template <class T> Var<T> Dense<T>::forward(const Var<T>& x)
{
    const auto& s = x.shape();
    if (s.size() != 2 || s[1] != in_) {
        throw Error("Dense(" + std::to_string(in_) + " -> " + std::to_string(out_) + "): expected input [batch, " +
                    std::to_string(in_) + "], got " + format_shape(s));
    }
    Var<T> y = linear(x, weight(), bias());
    switch (activation_) {
    case Activation::sigmoid:
        return sigmoid(y);
    case Activation::tanh:
        return tanh(y);
    case Activation::relu:
        return relu(y);
    default:
        return y;
    }
}

template <class T> std::string Dense<T>::type_name() const
{
    return activation_ == Activation::none ? "Dense" : std::string("Dense, ") + to_string(activation_);
}

template <class T> Var<T> Sigmoid<T>::forward(const Var<T>& x)
{
    return sigmoid(x);
}
template <class T> Var<T> Tanh<T>::forward(const Var<T>& x)
{
    return tanh(x);
}
template <class T> Var<T> ReLU<T>::forward(const Var<T>& x)
{
    return relu(x);
}

// --- Dropout -----------------------------------------------------------------------------

template <class T> Dropout<T>::Dropout(double p) : Dropout(p, default_generator()()) {}

template <class T> Dropout<T>::Dropout(double p, std::uint64_t seed) : p_(p)
{
    if (!(p >= 0.0 && p < 1.0)) throw Error("Dropout: p must be in [0, 1), got " + format_number(p));
    // The layer drops with p in T: 0.99999999 is below 1 as a double but rounds to 1 in float.
    if (!(static_cast<T>(p) < T(1))) {
        throw Error("Dropout: p must be in [0, 1) in " + std::string(sizeof(T) == 4 ? "float" : "double") + ", got " +
                    format_number(p) + ", which rounds to 1");
    }
    this->register_generator("generator", Generator(seed));
}

template <class T> Var<T> Dropout<T>::forward(const Var<T>& x)
{
    if (!this->training_ || p_ == 0.0) return x;
    return dropout(x, static_cast<T>(p_), generator());
}

// --- Sequential --------------------------------------------------------------------------

template <class T> Sequential<T>::Sequential(std::initializer_list<AnyModule<T>> modules)
{
    for (const auto& m : modules) add(m);
}

template <class T> Sequential<T>& Sequential<T>::add(AnyModule<T> module)
{
    return add(std::to_string(modules_.size()), std::move(module));
}

template <class T> Sequential<T>& Sequential<T>::add(std::string name, AnyModule<T> module)
{
    if (!module.ptr()) throw Error("Sequential::add: the module " + ("'" + name + "'") + " is null");
    this->add_child("Sequential::add", std::move(name), module.ptr());
    module.ptr()->train(this->training_);
    modules_.push_back(std::move(module));
    return *this;
}

template <class T> Var<T> Sequential<T>::forward(const Var<T>& x)
{
    if (modules_.empty()) return x;
    Var<T> h = modules_[0].forward(x);
    for (std::size_t i = 1; i < modules_.size(); ++i) h = modules_[i].forward(h);
    return h;
}

template <class T> std::optional<std::size_t> Sequential<T>::output_features(std::optional<std::size_t> in) const
{
    for (auto& m : modules_) in = m.ptr()->output_features(in);
    return in;
}

template <class T> Module<T>& Sequential<T>::operator[](std::size_t i) const
{
    if (i >= modules_.size()) {
        throw Error("Sequential: index " + std::to_string(i) + " is out of range for " +
                    std::to_string(modules_.size()) + " modules");
    }
    return *modules_[i].ptr();
}

template <class T> void Sequential<T>::throw_wrong_type(std::size_t i) const
{
    throw Error("Sequential::at: module " + std::to_string(i) + " is a " + modules_[i].ptr()->type_name() +
                ", not the requested type");
}

// --- ModuleList --------------------------------------------------------------------------

template <class T> Module<T>& ModuleList<T>::operator[](std::size_t i) const
{
    if (i >= modules_.size()) {
        throw Error("ModuleList: index " + std::to_string(i) + " is out of range for " +
                    std::to_string(modules_.size()) + " modules");
    }
    return *modules_[i];
}

template <class T> void ModuleList<T>::throw_wrong_type(std::size_t i) const
{
    throw Error("ModuleList::at: module " + std::to_string(i) + " is a " + modules_[i]->type_name() +
                ", not the requested type");
}

#define TAPEGRAD_NN_INSTANTIATE(T)                                                                                     \
    template class Dense<T>;                                                                                           \
    template class Sigmoid<T>;                                                                                         \
    template class Tanh<T>;                                                                                            \
    template class ReLU<T>;                                                                                            \
    template class Dropout<T>;                                                                                         \
    template class Sequential<T>;                                                                                      \
    template class ModuleList<T>;
TAPEGRAD_NN_INSTANTIATE(float)
TAPEGRAD_NN_INSTANTIATE(double)

}  // namespace nn
}  // namespace tg
