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

namespace detail {

template <class T> void BufferValue<T>::assign() const
{
    if (ref.values != nullptr) {
        *ref.values = values;
    } else {
        *ref.count = count;
    }
}

template <class T> Tensor buffer_tensor(const nn::BufferRef<T>& buffer)
{
    if (buffer.values != nullptr) return Tensor::from(*buffer.values);
    return Tensor::from(xt::xarray<std::int64_t>(*buffer.count));
}

template <class T>
std::string read_buffer(const Tensor& t, const std::string& name, const nn::BufferRef<T>& buffer,
                        const std::string& where, BufferValue<T>& out)
{
    out.ref = buffer;
    if (buffer.values != nullptr) {
        if (!std::equal(t.shape.begin(), t.shape.end(), buffer.values->shape().begin(), buffer.values->shape().end())) {
            return "buffer " + quote(name) + " is " + format_shape(t.shape) + " in the file but " +
                   format_shape(buffer.values->shape()) + " in the model";
        }
        out.values = convert<T>(t, where);
        return "";
    }
    if (t.numel() != 1)
        return "buffer " + quote(name) + " is " + format_shape(t.shape) + " in the file but [] in the model";
    out.count = convert<std::int64_t>(t, where).data()[0];
    return "";
}

#define TAPEGRAD_IO_BUFFER(T)                                                                                          \
    template struct BufferValue<T>;                                                                                    \
    template Tensor buffer_tensor<T>(const nn::BufferRef<T>&);                                                         \
    template std::string read_buffer<T>(const Tensor&, const std::string&, const nn::BufferRef<T>&,                    \
                                        const std::string&, BufferValue<T>&);
TAPEGRAD_IO_BUFFER(float)
TAPEGRAD_IO_BUFFER(double)
#undef TAPEGRAD_IO_BUFFER

}  // namespace detail

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
    // Buffers (running statistics) go beside the parameters, as in a PyTorch state_dict;
    // saving only reads them.
    for (const auto& [name, buffer] : const_cast<nn::Module<T>&>(module).named_buffers()) {
        if (!file.tensors.emplace(name, detail::buffer_tensor(buffer)).second) {
            throw Error(path + ": the module has two parameters or buffers named " + quote(name));
        }
    }
    // The format follows the path's extension (documented in io.hpp).
    auto ends_with = [&](const std::string& suffix) {
        return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".pt") || ends_with(".pth") || ends_with(".bin")) {
        save_torch(path, file);
    } else {
        save(path, file);
    }
}

template <class T> void load_parameters(const std::string& path, nn::Module<T>& module)
{
    const File file = detail::load_by_content(path);
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
    std::vector<detail::BufferValue<T>> buffer_values;
    std::vector<std::string> missing_buffers;
    for (const auto& [name, buffer] : module.named_buffers()) {
        if (!names.insert(name).second)
            throw Error(path + ": the module has two parameters or buffers named " + quote(name));
        const auto it = file.tensors.find(name);
        if (it == file.tensors.end()) {
            missing_buffers.push_back(quote(name));
            continue;
        }
        buffer_values.emplace_back();
        const std::string problem =
            detail::read_buffer(it->second, name, buffer, path + ": buffer " + quote(name), buffer_values.back());
        if (!problem.empty()) mismatched.push_back(problem);
    }
    for (const auto& entry : file.tensors) {
        if (names.count(entry.first) == 0) unexpected.push_back(quote(entry.first));
    }
    if (!missing.empty() || !missing_buffers.empty() || !unexpected.empty() || !mismatched.empty()) {
        auto join = [](const std::vector<std::string>& items) {
            std::string s;
            for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
            return s;
        };
        std::vector<std::string> problems;
        if (!missing.empty()) problems.push_back("missing parameters " + join(missing));
        if (!missing_buffers.empty()) problems.push_back("missing buffers " + join(missing_buffers));
        if (!unexpected.empty()) problems.push_back("unexpected tensors " + join(unexpected));
        for (const auto& m : mismatched) problems.push_back(m);
        std::string message = path + ": the file does not match the model: ";
        for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
        throw Error(message);
    }
    // Convert everything before setting anything, so a failure leaves the model as it was.
    std::vector<xt::xarray<T>> values;
    values.reserve(params.size());
    for (const auto& [name, var] : params)
        values.push_back(detail::convert<T>(file.tensors.at(name), path + ": parameter " + quote(name)));
    for (std::size_t i = 0; i < params.size(); ++i) params[i].second.set_value(values[i]);
    for (const auto& b : buffer_values) b.assign();
}

#define TAPEGRAD_IO_MODEL(T)                                                                                           \
    template void save_parameters<T>(const std::string&, const nn::Module<T>&, std::map<std::string, std::string>);    \
    template void load_parameters<T>(const std::string&, nn::Module<T>&);
TAPEGRAD_IO_MODEL(float)
TAPEGRAD_IO_MODEL(double)
#undef TAPEGRAD_IO_MODEL

}  // namespace tg::io
