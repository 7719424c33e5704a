// Gradient-ready hooks: a registry from leaf nodes to their hooks, shared by all threads.
// The engine reads it only while hooked_leaves is non-zero.

#include "autograd/hooks.hpp"

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tapegrad/hooks.hpp"

namespace tg {
namespace detail {
namespace {

template <class T> struct Registry {
    struct Item {
        std::uint64_t id;
        std::function<void(const Var<T>&)> hook;
    };
    std::mutex mutex;
    std::unordered_map<const Node<T>*, std::vector<Item>> hooks;
    std::uint64_t next_id = 1;

    static Registry& get()
    {
        // Never destroyed: leaves may be freed during static destruction.
        static Registry* r = new Registry;
        return *r;
    }
};

// Finds (and with erase, removes) the hook `id` of `node`; for HookHandle.
template <class T> bool find_hook(const void* node, std::uint64_t id, bool erase) noexcept
{
    Registry<T>& r = Registry<T>::get();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.hooks.find(static_cast<const Node<T>*>(node));
    if (it == r.hooks.end()) return false;
    auto& items = it->second;
    auto item = std::find_if(items.begin(), items.end(), [&](const auto& i) { return i.id == id; });
    if (item == items.end()) return false;
    if (erase) {
        items.erase(item);
        if (items.empty()) {
            r.hooks.erase(it);
            hooked_leaves<T>.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    return true;
}

}  // namespace

template <class T> bool has_hooks(const Node<T>* leaf)
{
    Registry<T>& r = Registry<T>::get();
    std::lock_guard<std::mutex> lock(r.mutex);
    return r.hooks.count(leaf) != 0;
}

template <class T> void run_hooks(Node<T>* leaf)
{
    std::vector<std::function<void(const Var<T>&)>> hooks;
    {
        Registry<T>& r = Registry<T>::get();
        std::lock_guard<std::mutex> lock(r.mutex);
        auto it = r.hooks.find(leaf);
        if (it == r.hooks.end()) return;
        for (const auto& item : it->second) hooks.push_back(item.hook);
    }
    // Called without the lock: a hook may register or remove hooks.
    const Var<T> param = Var<T>::from_node(leaf, 0);
    NoGradGuard no_grad;
    for (const auto& hook : hooks) hook(param);
}

template <class T> void drop_hooks(const Node<T>* leaf) noexcept
{
    Registry<T>& r = Registry<T>::get();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (r.hooks.erase(leaf) != 0) hooked_leaves<T>.fetch_sub(1, std::memory_order_relaxed);
}

template bool has_hooks<float>(const Node<float>*);
template bool has_hooks<double>(const Node<double>*);
template void run_hooks<float>(Node<float>*);
template void run_hooks<double>(Node<double>*);
template void drop_hooks<float>(const Node<float>*) noexcept;
template void drop_hooks<double>(const Node<double>*) noexcept;

}  // namespace detail

void HookHandle::remove() noexcept
{
    if (find_ != nullptr) find_(node_, id_, true);
    find_ = nullptr;
}

bool HookHandle::active() const noexcept
{
    return find_ != nullptr && find_(node_, id_, false);
}

template <class T>
HookHandle register_post_accumulate_grad_hook(const Var<T>& param, std::function<void(const Var<T>&)> hook)
{
    const char* who = "register_post_accumulate_grad_hook";
    detail::Node<T>* n = param.node(who);
    if (n->tape != nullptr) {
        throw Error(std::string(who) +
                    ": the Var is the output of a recorded op; only leaves (parameters) accumulate a gradient");
    }
    if (!n->requires_grad) throw Error(std::string(who) + ": the Var is a constant (it requires no gradient)");
    if (!hook) throw Error(std::string(who) + ": the hook is empty");
    auto& r = detail::Registry<T>::get();
    HookHandle h;
    {
        std::lock_guard<std::mutex> lock(r.mutex);
        auto& items = r.hooks[n];
        if (items.empty()) detail::hooked_leaves<T>.fetch_add(1, std::memory_order_relaxed);
        h.id_ = r.next_id++;
        items.push_back({h.id_, std::move(hook)});
    }
    h.find_ = &detail::find_hook<T>;
    h.node_ = n;
    return h;
}

template <class T> std::size_t num_post_accumulate_grad_hooks(const Var<T>& param)
{
    if (!param.defined()) return 0;
    auto& r = detail::Registry<T>::get();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.hooks.find(param.node("num_post_accumulate_grad_hooks"));
    return it == r.hooks.end() ? 0 : it->second.size();
}

template HookHandle register_post_accumulate_grad_hook<float>(const Var<float>&,
                                                              std::function<void(const Var<float>&)>);
template HookHandle register_post_accumulate_grad_hook<double>(const Var<double>&,
                                                               std::function<void(const Var<double>&)>);
template std::size_t num_post_accumulate_grad_hooks<float>(const Var<float>&);
template std::size_t num_post_accumulate_grad_hooks<double>(const Var<double>&);

}  // namespace tg
