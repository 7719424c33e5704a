// Layers: Dense, activations, Dropout, Sequential, initialisers and the summary table.

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

// --- Module ------------------------------------------------------------------------------

template <class T> std::vector<Var<T>> Module<T>::parameters() const
{
    std::vector<Var<T>> out;
    for (auto& np : named_parameters()) out.push_back(np.second);
    return out;
}

template <class T> std::size_t Module<T>::num_parameters() const
{
    std::size_t n = 0;
    for (auto& np : named_parameters()) n += np.second.size();
    return n;
}

template <class T>
void Module<T>::summary_rows(std::vector<SummaryRow>& rows, std::optional<std::size_t>& features,
                             const std::string& prefix) const
{
    features = output_features(features);
    rows.push_back({prefix.empty() ? std::string("0") : prefix, type_name(), features, num_parameters()});
}

template <class T> std::string Module<T>::summary() const
{
    std::vector<SummaryRow> rows;
    std::optional<std::size_t> features;
    summary_rows(rows, features, "");
    std::ostringstream out;
    const std::string rule(65, '_');
    const std::string thick(65, '=');
    out << "Model: \"" << type_name() << "\"\n" << rule << '\n';
    out << std::left << ' ' << std::setw(28) << "Layer (type)" << std::setw(26) << "Output Shape"
        << "Param #\n";
    out << thick << '\n';
    std::size_t total = 0;
    for (const auto& r : rows) {
        const std::string shape = "(None, " + (r.features ? std::to_string(*r.features) : std::string("?")) + ")";
        out << ' ' << std::setw(28) << (r.name + " (" + r.type + ")") << std::setw(26) << shape << r.params << '\n';
        total += r.params;
    }
    out << thick << '\n';
    out << "Total params: " << total << " (" << total * sizeof(T) << " bytes)\n";
    out << "Trainable params: " << total << '\n';
    out << "Non-trainable params: 0\n" << rule << '\n';
    return out.str();
}

template <class T> void Module<T>::print_summary(std::ostream& out) const
{
    out << summary();
}

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
    weight_ = parameter(weight_init.make<T>({in, out}, in, out, gen));
    bias_ = parameter(bias_init.make<T>({out}, in, out, gen));
}

template <class T> Var<T> Dense<T>::forward(const Var<T>& x)
{
    const auto& s = x.shape();
    if (s.size() != 2 || s[1] != in_) {
        throw Error("Dense(" + std::to_string(in_) + " -> " + std::to_string(out_) + "): expected input [batch, " +
                    std::to_string(in_) + "], got " + format_shape(s));
    }
    Var<T> y = linear(x, weight_, bias_);
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

template <class T> std::vector<std::pair<std::string, Var<T>>> Dense<T>::named_parameters() const
{
    return {{"weight", weight_}, {"bias", bias_}};
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

template <class T> Dropout<T>::Dropout(double p, std::uint64_t seed) : p_(p), gen_(seed)
{
    if (!(p >= 0.0 && p < 1.0)) throw Error("Dropout: p must be in [0, 1), got " + format_number(p));
    // The layer drops with p in T: 0.99999999 is below 1 as a double but rounds to 1 in float.
    if (!(static_cast<T>(p) < T(1))) {
        throw Error("Dropout: p must be in [0, 1) in " + std::string(sizeof(T) == 4 ? "float" : "double") + ", got " +
                    format_number(p) + ", which rounds to 1");
    }
}

template <class T> Var<T> Dropout<T>::forward(const Var<T>& x)
{
    if (!this->training_ || p_ == 0.0) return x;
    return dropout(x, static_cast<T>(p_), gen_);
}

// --- Sequential --------------------------------------------------------------------------

template <class T> Sequential<T>::Sequential(std::initializer_list<AnyModule<T>> modules)
{
    for (const auto& m : modules) add(m);
}

template <class T> Sequential<T>& Sequential<T>::add(AnyModule<T> module)
{
    if (!module.ptr()) throw Error("Sequential::add: the module is null");
    module.ptr()->train(this->training_);
    modules_.push_back(module.ptr());
    return *this;
}

template <class T> Var<T> Sequential<T>::forward(const Var<T>& x)
{
    if (modules_.empty()) return x;
    Var<T> h = modules_[0]->forward(x);
    for (std::size_t i = 1; i < modules_.size(); ++i) h = modules_[i]->forward(h);
    return h;
}

template <class T> std::vector<std::pair<std::string, Var<T>>> Sequential<T>::named_parameters() const
{
    std::vector<std::pair<std::string, Var<T>>> out;
    for (std::size_t i = 0; i < modules_.size(); ++i) {
        for (auto& np : modules_[i]->named_parameters())
            out.emplace_back(std::to_string(i) + "." + np.first, np.second);
    }
    return out;
}

template <class T> std::vector<std::pair<std::string, BufferRef<T>>> Sequential<T>::named_buffers()
{
    std::vector<std::pair<std::string, BufferRef<T>>> out;
    for (std::size_t i = 0; i < modules_.size(); ++i) {
        for (auto& nb : modules_[i]->named_buffers()) out.emplace_back(std::to_string(i) + "." + nb.first, nb.second);
    }
    return out;
}

template <class T> std::vector<std::pair<std::string, Generator*>> Sequential<T>::named_generators()
{
    std::vector<std::pair<std::string, Generator*>> out;
    for (std::size_t i = 0; i < modules_.size(); ++i) {
        for (auto& ng : modules_[i]->named_generators())
            out.emplace_back(std::to_string(i) + "." + ng.first, ng.second);
    }
    return out;
}

template <class T> void Sequential<T>::train(bool on)
{
    this->training_ = on;
    for (auto& m : modules_) m->train(on);
}

template <class T> std::optional<std::size_t> Sequential<T>::output_features(std::optional<std::size_t> in) const
{
    for (auto& m : modules_) in = m->output_features(in);
    return in;
}

template <class T> Module<T>& Sequential<T>::operator[](std::size_t i) const
{
    if (i >= modules_.size()) {
        throw Error("Sequential: index " + std::to_string(i) + " is out of range for " +
                    std::to_string(modules_.size()) + " modules");
    }
    return *modules_[i];
}

template <class T> void Sequential<T>::throw_wrong_type(std::size_t i) const
{
    throw Error("Sequential::at: module " + std::to_string(i) + " is a " + modules_[i]->type_name() +
                ", not the requested type");
}

template <class T>
void Sequential<T>::summary_rows(std::vector<typename Module<T>::SummaryRow>& rows,
                                 std::optional<std::size_t>& features, const std::string& prefix) const
{
    for (std::size_t i = 0; i < modules_.size(); ++i) {
        const std::string name = prefix.empty() ? std::to_string(i) : prefix + "." + std::to_string(i);
        modules_[i]->summary_rows(rows, features, name);
    }
}

#define TAPEGRAD_NN_INSTANTIATE(T)                                                                                     \
    template class Module<T>;                                                                                          \
    template class Dense<T>;                                                                                           \
    template class Sigmoid<T>;                                                                                         \
    template class Tanh<T>;                                                                                            \
    template class ReLU<T>;                                                                                            \
    template class Dropout<T>;                                                                                         \
    template class Sequential<T>;
TAPEGRAD_NN_INSTANTIATE(float)
TAPEGRAD_NN_INSTANTIATE(double)

}  // namespace nn
}  // namespace tg
