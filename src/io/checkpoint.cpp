// Training checkpoints on top of the safetensors module: parameters, optimiser state,
// generator states and progress, restored all or nothing.

#include "tapegrad/checkpoint.hpp"

#include <sstream>

#include "io/internal.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/random.hpp"

namespace tg::io {
namespace {

const char* const kModel = "model.";
const char* const kOptim = "optim.";
const char* const kRng = "rng.model.";
const char* const kRngDefault = "rng.default";
const char* const kExtra = "extra.";

bool starts_with(const std::string& s, const char* prefix)
{
    return s.rfind(prefix, 0) == 0;
}

// A generator's state as the numbers of its standard textual form, stored bit for bit
// in an int64 tensor (kept out of the JSON header, where 313 decimal numbers would bloat
// it, and covered by the file's checksum like any tensor).
Tensor generator_tensor(const Generator& g)
{
    std::stringstream s;
    s << g;
    std::vector<std::uint64_t> words;
    std::uint64_t w = 0;
    while (s >> w) words.push_back(w);
    xt::xarray<std::int64_t> a = xt::zeros<std::int64_t>({words.size()});
    for (std::size_t i = 0; i < words.size(); ++i) a(i) = static_cast<std::int64_t>(words[i]);
    return Tensor::from(a);
}

Generator generator_from(const std::string& path, const std::string& name, const Tensor& t)
{
    const xt::xarray<std::int64_t> a = detail::convert<std::int64_t>(t, path + ": tensor '" + name + "'");
    std::stringstream s;
    for (std::size_t i = 0; i < a.size(); ++i) s << static_cast<std::uint64_t>(a.data()[i]) << ' ';
    Generator g;
    s >> g;
    if (!s || a.dimension() != 1) throw Error(path + ": tensor '" + name + "' is not a generator state");
    return g;
}

std::uint64_t count_from(const std::string& path, const File& f, const char* key)
{
    const auto it = f.metadata.find(key);
    if (it == f.metadata.end()) throw Error(path + ": the checkpoint has no '" + std::string(key) + "' entry");
    const std::string& v = it->second;
    if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
        throw Error(path + ": metadata entry '" + std::string(key) + "' must be a count, got '" + v + "'");
    return std::stoull(v);
}

}  // namespace

template <class T>
void save_checkpoint(const std::string& path, nn::Module<T>& model, const optim::Optimizer<T>& opt,
                     const CheckpointInfo& info)
{
    File f;
    for (const auto& np : model.named_parameters()) f.tensors[kModel + np.first] = Tensor::from(np.second.value());
    for (const auto& nb : model.named_buffers()) f.tensors[kModel + nb.first] = detail::buffer_tensor(nb.second);
    for (const auto& kv : opt.state_dict()) f.tensors[kOptim + kv.first] = Tensor::from(kv.second);
    f.metadata["tapegrad.checkpoint"] = "1";
    f.metadata["epoch"] = std::to_string(info.epoch);
    f.metadata["step"] = std::to_string(info.step);
    f.metadata["optimizer"] = opt.name();
    f.tensors[kRngDefault] = generator_tensor(default_generator());
    for (const auto& ng : model.named_generators()) f.tensors[kRng + ng.first] = generator_tensor(*ng.second);
    for (const auto& kv : info.extra) f.metadata[kExtra + kv.first] = kv.second;
    save(path, f);
}

namespace {
// The checkpoint's own entries, checked; throws for a file that is not a checkpoint.
CheckpointInfo info_of(const std::string& path, const File& f)
{
    const auto marker = f.metadata.find("tapegrad.checkpoint");
    if (marker == f.metadata.end()) {
        throw Error(path + ": not a tapegrad training checkpoint (no 'tapegrad.checkpoint' entry); for a weights "
                           "file use tg::io::load_parameters");
    }
    if (marker->second != "1") throw Error(path + ": unknown checkpoint version '" + marker->second + "'");
    CheckpointInfo info;
    info.epoch = count_from(path, f, "epoch");
    info.step = count_from(path, f, "step");
    for (const auto& kv : f.metadata) {
        if (starts_with(kv.first, kExtra)) info.extra[kv.first.substr(std::string(kExtra).size())] = kv.second;
    }
    return info;
}

}  // namespace

CheckpointInfo read_checkpoint_info(const std::string& path)
{
    return info_of(path, load(path));
}

template <class T>
CheckpointInfo load_checkpoint(const std::string& path, nn::Module<T>& model, optim::Optimizer<T>& opt)
{
    return load_checkpoint(load(path), path, model, opt);
}

template <class T>
CheckpointInfo load_checkpoint(const File& f, const std::string& path, nn::Module<T>& model, optim::Optimizer<T>& opt)
{
    CheckpointInfo info = info_of(path, f);
    const auto optimizer = f.metadata.find("optimizer");
    if (optimizer == f.metadata.end() || optimizer->second != opt.name()) {
        throw Error(path + ": the checkpoint holds the state of " +
                    (optimizer == f.metadata.end() ? std::string("no optimiser") : optimizer->second) +
                    ", but the optimiser here is " + opt.name());
    }
    // Everything is read and checked before anything changes.
    std::vector<std::pair<Var<T>, xt::xarray<T>>> values;
    std::string problems;
    for (const auto& np : model.named_parameters()) {
        const auto it = f.tensors.find(kModel + np.first);
        if (it == f.tensors.end()) {
            problems += "\n  missing parameter '" + np.first + "'";
            continue;
        }
        xt::xarray<T> v = detail::convert<T>(it->second, path + ": tensor '" + it->first + "'");
        if (v.shape() != np.second.shape()) {
            problems += "\n  parameter '" + np.first + "' is " + format_shape(v.shape()) + " in the file but " +
                        format_shape(np.second.shape()) + " in the model";
            continue;
        }
        values.emplace_back(np.second, std::move(v));
    }
    std::vector<detail::BufferValue<T>> buffers;
    for (const auto& nb : model.named_buffers()) {
        const auto it = f.tensors.find(kModel + nb.first);
        if (it == f.tensors.end()) {
            problems += "\n  missing buffer '" + nb.first + "'";
            continue;
        }
        buffers.emplace_back();
        const std::string problem =
            detail::read_buffer(it->second, nb.first, nb.second, path + ": tensor '" + it->first + "'", buffers.back());
        if (!problem.empty()) problems += "\n  " + problem;
    }
    std::map<std::string, xt::xarray<double>> state;
    for (const auto& kv : f.tensors) {
        if (starts_with(kv.first, kModel)) {
            continue;
        } else if (starts_with(kv.first, kOptim)) {
            state.emplace(kv.first.substr(std::string(kOptim).size()),
                          detail::convert<double>(kv.second, path + ": tensor '" + kv.first + "'"));
        } else if (!starts_with(kv.first, "rng.")) {
            problems += "\n  unexpected tensor '" + kv.first + "'";
        }
    }
    for (const auto& kv : f.tensors) {
        if (!starts_with(kv.first, kModel)) continue;
        const std::string name = kv.first.substr(std::string(kModel).size());
        bool known = false;
        for (const auto& np : model.named_parameters()) known = known || np.first == name;
        for (const auto& nb : model.named_buffers()) known = known || nb.first == name;
        if (!known) problems += "\n  unexpected parameter '" + name + "'";
    }
    std::vector<std::pair<Generator*, Generator>> generators;
    for (const auto& ng : model.named_generators()) {
        const auto it = f.tensors.find(kRng + ng.first);
        if (it == f.tensors.end()) {
            problems += "\n  missing generator state '" + ng.first + "'";
            continue;
        }
        generators.emplace_back(ng.second, generator_from(path, it->first, it->second));
    }
    for (const auto& kv : f.tensors) {
        if (!starts_with(kv.first, kRng)) continue;
        bool known = false;
        for (const auto& ng : model.named_generators()) known = known || kRng + ng.first == kv.first;
        if (!known) problems += "\n  unexpected generator state '" + kv.first.substr(std::string(kRng).size()) + "'";
    }
    const auto def = f.tensors.find(kRngDefault);
    const Generator default_state =
        def == f.tensors.end() ? default_generator() : generator_from(path, def->first, def->second);
    if (!problems.empty()) throw Error(path + ": the checkpoint does not fit this model:" + problems);

    // load_state_dict checks every entry before it changes anything, and is the only step
    // here that can still fail: past it, nothing throws.
    try {
        opt.load_state_dict(state);
    } catch (const Error& e) {
        throw Error(path + ": the optimiser state does not fit: " + e.what());
    }
    for (auto& pv : values) pv.first.set_value(pv.second);
    for (const auto& b : buffers) b.assign();
    for (auto& g : generators) *g.first = g.second;
    default_generator() = default_state;
    return info;
}

template void save_checkpoint<float>(const std::string&, nn::Module<float>&, const optim::Optimizer<float>&,
                                     const CheckpointInfo&);
template void save_checkpoint<double>(const std::string&, nn::Module<double>&, const optim::Optimizer<double>&,
                                      const CheckpointInfo&);
template CheckpointInfo load_checkpoint<float>(const std::string&, nn::Module<float>&, optim::Optimizer<float>&);
template CheckpointInfo load_checkpoint<double>(const std::string&, nn::Module<double>&, optim::Optimizer<double>&);
template CheckpointInfo load_checkpoint<float>(const File&, const std::string&, nn::Module<float>&,
                                               optim::Optimizer<float>&);
template CheckpointInfo load_checkpoint<double>(const File&, const std::string&, nn::Module<double>&,
                                                optim::Optimizer<double>&);

}  // namespace tg::io
