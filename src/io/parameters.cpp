// tg::io model parameters: save_parameters and load_parameters map a module's
// named_parameters() to the tensors of a safetensors file, by name.

#include <algorithm>
#include <set>
#include <utility>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/nn.hpp"

namespace tg::io {

namespace {
using detail::quote;
}  // namespace

template <class T>
void save_parameters(const std::string& path, const nn::Module<T>& module, std::map<std::string, std::string> metadata)
{
    File file;
    file.metadata = std::move(metadata);
    for (const auto& [name, var] : module.named_parameters()) {
        if (!file.tensors.emplace(name, Tensor::from(var.value())).second) {
            throw Error(path + ": the module has two parameters named " + quote(name));
        }
    }
    save(path, file);
}

template <class T> void load_parameters(const std::string& path, nn::Module<T>& module)
{
    const File file = load(path);
    const auto params = module.named_parameters();
    std::set<std::string> names;
    std::vector<std::string> missing, unexpected, mismatched;
    for (const auto& [name, var] : params) {
        if (!names.insert(name).second) throw Error(path + ": the module has two parameters named " + quote(name));
        const auto it = file.tensors.find(name);
        if (it == file.tensors.end()) {
            missing.push_back(quote(name));
        } else if (!std::equal(it->second.shape.begin(), it->second.shape.end(), var.shape().begin(),
                               var.shape().end())) {
            mismatched.push_back("parameter " + quote(name) + " is " + format_shape(it->second.shape) +
                                 " in the file but " + format_shape(var.shape()) + " in the model");
        }
    }
    for (const auto& entry : file.tensors) {
        if (names.count(entry.first) == 0) unexpected.push_back(quote(entry.first));
    }
    if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
        auto join = [](const std::vector<std::string>& items) {
            std::string s;
            for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
            return s;
        };
        std::vector<std::string> problems;
        if (!missing.empty()) problems.push_back("missing parameters " + join(missing));
        if (!unexpected.empty()) problems.push_back("unexpected tensors " + join(unexpected));
        for (const auto& m : mismatched) problems.push_back(m);
        std::string message = path + ": the file does not match the model: ";
        for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
        throw Error(message);
    }
    // Convert everything before setting anything, so a failure leaves the model as it was.
    std::vector<xt::xarray<T>> values;
    for (const auto& [name, var] : params)
        values.push_back(detail::convert<T>(file.tensors.at(name), path + ": parameter " + quote(name)));
    for (std::size_t i = 0; i < params.size(); ++i) params[i].second.set_value(values[i]);
}

#define TAPEGRAD_IO_MODEL(T)                                                                                           \
    template void save_parameters<T>(const std::string&, const nn::Module<T>&, std::map<std::string, std::string>);    \
    template void load_parameters<T>(const std::string&, nn::Module<T>&);
TAPEGRAD_IO_MODEL(float)
TAPEGRAD_IO_MODEL(double)
#undef TAPEGRAD_IO_MODEL

}  // namespace tg::io
