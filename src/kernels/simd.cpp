// The registry of the elementwise ops' wide SIMD loops (tapegrad/kit/simd.hpp), and the
// public switch of tapegrad/runtime.hpp.

#include "tapegrad/kit/simd.hpp"

#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "tapegrad/runtime.hpp"

// The wide copies of the op files, each of which defines an anchor: naming them here makes
// a static link take their objects out of the library, with the enrollments they run.
#define TAPEGRAD_SIMD_UNIT(NAME) extern "C" const int tapegrad_simd_anchor_##NAME;
#include "simd_units.inc"
#undef TAPEGRAD_SIMD_UNIT

namespace tg::simd {

std::atomic<bool> wide_on{true};

namespace {

struct Registry {
    std::mutex mutex;
    std::unordered_map<std::string, const void*> fns;
    std::unordered_set<std::string> found;  // the ops whose lookups found wide loops
};

Registry& registry()
{
    static Registry r;
    return r;
}

// The wide copy spells the library's namespaces with a suffix (tg_avx2 for tg); a mangled
// name writes each with its length first. The key uses the library's spelling.
std::string library_spelling(std::string name)
{
    static const std::pair<const char*, const char*> renames[] = {
        {"7tg_avx2", "2tg"}, {"7xt_avx2", "2xt"}, {"8xtl_avx2", "3xtl"}, {"10xsimd_avx2", "5xsimd"}};
    for (const auto& [from, to] : renames) {
        const std::string f(from);
        for (std::size_t at = name.find(f); at != std::string::npos; at = name.find(f, at)) {
            name.replace(at, f.size(), to);
        }
    }
    return name;
}

std::string key(const char* op, const char* type, int dtype, int arity)
{
    return std::string(op) + '|' + library_spelling(type) + '|' + std::to_string(dtype) + '|' + std::to_string(arity);
}

bool cpu_has_avx2() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    // Checks the operating system's support for the wide registers too.
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

int units() noexcept
{
    int n = 0;
#define TAPEGRAD_SIMD_UNIT(NAME) n += tapegrad_simd_anchor_##NAME;
#include "simd_units.inc"
#undef TAPEGRAD_SIMD_UNIT
    return n;
}

std::size_t enrolled() noexcept
{
    Registry& r = registry();
    const std::lock_guard<std::mutex> lock(r.mutex);
    return r.fns.size();
}

}  // namespace

const void* find(const char* op, const char* type, int dtype, int arity) noexcept
{
    static const bool usable = cpu_has_avx2() && units() > 0;
    if (!usable || op == nullptr || type == nullptr) return nullptr;
    try {
        Registry& r = registry();
        const std::lock_guard<std::mutex> lock(r.mutex);
        const auto it = r.fns.find(key(op, type, dtype, arity));
        if (it == r.fns.end()) return nullptr;
        r.found.insert(op);
        return it->second;
    } catch (...) {  // out of memory for the key: the op runs its own loops
        return nullptr;
    }
}

bool found(const char* op) noexcept
{
    if (op == nullptr) return false;
    try {
        Registry& r = registry();
        const std::lock_guard<std::mutex> lock(r.mutex);
        return r.found.count(op) != 0;
    } catch (...) {
        return false;
    }
}

}  // namespace tg::simd

extern "C" void tapegrad_simd_enroll(const char* op, const char* type, int dtype, int arity, const void* fns) noexcept
{
    if (op == nullptr || type == nullptr || fns == nullptr) return;
    try {
        tg::simd::Registry& r = tg::simd::registry();
        const std::lock_guard<std::mutex> lock(r.mutex);
        r.fns.emplace(tg::simd::key(op, type, dtype, arity), fns);
    } catch (...) {  // out of memory at start: that op keeps its own loops
    }
}

namespace tg {

bool wide_simd_available() noexcept
{
    static const bool available = simd::cpu_has_avx2() && simd::units() > 0 && simd::enrolled() > 0;
    return available;
}

void set_wide_simd(bool on) noexcept
{
    simd::wide_on.store(on, std::memory_order_relaxed);
}

bool wide_simd() noexcept
{
    return wide_simd_available() && simd::wide_on.load(std::memory_order_relaxed);
}

}  // namespace tg
