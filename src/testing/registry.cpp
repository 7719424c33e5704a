// The op registry: the built-in ops (one registration function per file in ops/, listed
// by the build in builtin_ops.inc) followed by ops that user code registers at run time.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "tapegrad/testing/registry.hpp"

// Declares tapegrad_op_info_<name>() for every file in ops/ and defines
// TAPEGRAD_BUILTIN_OPS as the list of those functions.
#include "builtin_ops.inc"

namespace tg {
namespace {

std::mutex& registry_mutex()
{
    static std::mutex m;
    return m;
}

std::vector<OpInfo>& registry()
{
    static std::vector<OpInfo> ops = [] {
        std::vector<OpInfo> v;
        for (OpInfo (*info)() : {TAPEGRAD_BUILTIN_OPS}) v.push_back(info());
        return v;
    }();
    return ops;
}

}  // namespace

const std::vector<OpInfo>& registered_ops()
{
    std::lock_guard<std::mutex> lock(registry_mutex());
    return registry();
}

void register_op(OpInfo info)
{
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& ops = registry();
    if (info.name.empty()) throw Error("register_op: the op needs a name");
    if (!info.samples) throw Error("register_op: op '" + info.name + "' has no sample generator");
    const bool taken = std::any_of(ops.begin(), ops.end(), [&](const OpInfo& o) { return o.name == info.name; });
    if (taken) throw Error("register_op: an op named '" + info.name + "' is already registered");
    ops.push_back(std::move(info));
}

// Before main an exception has nowhere to go: say what is wrong and stop.
bool detail::register_op_at_start(OpInfo info)
{
    try {
        register_op(std::move(info));
    } catch (const Error& e) {
        std::fprintf(stderr, "TAPEGRAD_REGISTER_OP: %s\n", e.what());
        std::exit(EXIT_FAILURE);
    }
    return true;
}

xt::xarray<double> sample_uniform(std::mt19937_64& rng, const std::vector<std::size_t>& shape, double lo, double hi)
{
    std::uniform_real_distribution<double> dist(lo, hi);
    xt::xarray<double> out(shape);
    for (auto& v : out) v = dist(rng);
    return out;
}

xt::xarray<double> sample_away_from_zero(std::mt19937_64& rng, const std::vector<std::size_t>& shape, double lo,
                                         double hi, double gap)
{
    std::uniform_real_distribution<double> dist(lo, hi);
    xt::xarray<double> out(shape);
    for (auto& v : out) {
        do {
            v = dist(rng);
        } while (std::abs(v) < gap);
    }
    return out;
}

}  // namespace tg
