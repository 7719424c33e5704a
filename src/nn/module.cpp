// The module base: registration, traversal by dotted names in PyTorch's order, modes,
// state_dict, the summary table, and functional_call's parameter swap.

#include <cxxabi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
#include <typeinfo>

#include "tapegrad/nn.hpp"

namespace tg::nn {

namespace {

std::string quote(const std::string& s)
{
    return "'" + s + "'";
}

std::string join_name(const std::string& prefix, const std::string& name)
{
    return prefix.empty() ? name : prefix + "." + name;
}

std::string join_list(const std::vector<std::string>& items)
{
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

// The class name in a demangled type name, without namespaces, enclosing functions or
// template arguments: "tg::nn::Linear<float>" -> "Linear", "(anonymous namespace)::Block"
// -> "Block", "main()::Local" -> "Local".
std::string short_type_name(const char* mangled)
{
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                                     std::free);
    const std::string full = status == 0 && demangled ? demangled.get() : mangled;
    std::string plain;
    int depth = 0;
    for (char c : full) {
        if (c == '<') {
            ++depth;
        } else if (c == '>') {
            depth = std::max(depth - 1, 0);
        } else if (depth == 0) {
            plain += c;
        }
    }
    const auto colon = plain.rfind("::");
    return colon == std::string::npos ? plain : plain.substr(colon + 2);
}

}  // namespace

// --- copies ------------------------------------------------------------------------------

template <class T> Module<T>::Module(const Module& other)
{
    copy_state_from(other);
}

template <class T> Module<T>& Module<T>::operator=(const Module& other)
{
    if (this != &other) copy_state_from(other);
    return *this;
}

template <class T> void Module<T>::copy_state_from(const Module& other)
{
    training_ = other.training_;
    params_ = other.params_;
    children_ = other.children_;
    buffers_.clear();
    for (const auto& b : other.buffers_) {
        Buffer copy;
        copy.name = b.name;
        if (b.values) copy.values = std::make_unique<xt::xarray<T>>(*b.values);
        if (b.count) copy.count = std::make_unique<std::int64_t>(*b.count);
        buffers_.push_back(std::move(copy));
    }
    generators_.clear();
    for (const auto& g : other.generators_) generators_.emplace_back(g.first, std::make_unique<Generator>(*g.second));
}

// --- registration ------------------------------------------------------------------------

template <class T> void Module<T>::check_name(const char* who, const std::string& name) const
{
    if (name.empty() || name.find('.') != std::string::npos) {
        throw Error(std::string(who) + ": a name must be non-empty and contain no '.' (got " + quote(name) + " in " +
                    type_name() + ")");
    }
    const char* taken = nullptr;
    for (const auto& p : params_) taken = p.first == name ? "a parameter" : taken;
    for (const auto& b : buffers_) taken = b.name == name ? "a buffer" : taken;
    for (const auto& g : generators_) taken = g.first == name ? "a generator" : taken;
    for (const auto& c : children_) taken = c.first == name ? "a module" : taken;
    if (taken != nullptr) {
        throw Error(std::string(who) + ": the name " + quote(name) + " is taken in " + type_name() + " (by " + taken +
                    ")");
    }
}

template <class T> Var<T> Module<T>::register_parameter(std::string name, Var<T> value)
{
    check_name("register_parameter", name);
    if (!value.defined())
        throw Error("register_parameter: the Var for " + quote(name) + " is undefined (in " + type_name() + ")");
    if (!value.is_leaf()) {
        throw Error("register_parameter: " + quote(name) +
                    " must be a leaf (tg::parameter or tg::constant), got the output of an op (in " + type_name() +
                    ")");
    }
    params_.emplace_back(std::move(name), value);
    return value;
}

template <class T> xt::xarray<T>& Module<T>::register_buffer(std::string name, xt::xarray<T> value)
{
    check_name("register_buffer", name);
    Buffer b;
    b.name = std::move(name);
    b.values = std::make_unique<xt::xarray<T>>(std::move(value));
    buffers_.push_back(std::move(b));
    return *buffers_.back().values;
}

template <class T> std::int64_t& Module<T>::register_count_buffer(std::string name, std::int64_t value)
{
    check_name("register_count_buffer", name);
    Buffer b;
    b.name = std::move(name);
    b.count = std::make_unique<std::int64_t>(value);
    buffers_.push_back(std::move(b));
    return *buffers_.back().count;
}

template <class T> Generator& Module<T>::register_generator(std::string name, Generator generator)
{
    check_name("register_generator", name);
    generators_.emplace_back(std::move(name), std::make_unique<Generator>(generator));
    return *generators_.back().second;
}

template <class T> void Module<T>::add_child(const char* who, std::string name, std::shared_ptr<Module<T>> module)
{
    check_name(who, name);
    if (!module) throw Error(std::string(who) + ": the module " + quote(name) + " is null (in " + type_name() + ")");
    if (module.get() == this) {
        throw Error(std::string(who) + ": a module cannot be registered into itself (" + quote(name) + " in " +
                    type_name() + ")");
    }
    bool cycle = false;
    module->visit("", true, [&](const std::string&, const Module& m, const std::shared_ptr<Module>&) {
        cycle = cycle || &m == this;
    });
    if (cycle) {
        throw Error(std::string(who) + ": " + quote(name) + " (" + module->type_name() + ") contains this " +
                    type_name() + "; registering it would make a cycle");
    }
    children_.emplace_back(std::move(name), std::move(module));
}

template <class T> const Var<T>& Module<T>::own_parameter_if(bool present, std::size_t i) const noexcept
{
    static const Var<T> none;
    return present ? params_[i].second : none;
}

// --- traversal ---------------------------------------------------------------------------

template <class T> void Module<T>::visit(const std::string& name, bool unique, const Visitor& f) const
{
    std::set<const Module*> seen;
    // Depth first with an explicit recursion over children: modules are trees (registration
    // refuses cycles), so the depth is the nesting depth of the model.
    std::function<void(const std::string&, const Module&, const std::shared_ptr<Module>&)> go =
        [&](const std::string& n, const Module& m, const std::shared_ptr<Module>& holder) {
            if (unique && !seen.insert(&m).second) return;
            f(n, m, holder);
            for (const auto& c : m.children_) go(join_name(n, c.first), *c.second, c.second);
        };
    go(name, *this, nullptr);
}

template <class T> std::vector<std::pair<std::string, Var<T>>> Module<T>::named_parameters(bool recurse) const
{
    std::vector<std::pair<std::string, Var<T>>> out;
    if (!recurse) return params_;
    std::set<const void*> seen;  // tied parameters are listed once, as in PyTorch
    visit("", true, [&](const std::string& prefix, const Module& m, const std::shared_ptr<Module>&) {
        for (const auto& p : m.params_) {
            if (seen.insert(p.second.raw_node()).second) out.emplace_back(join_name(prefix, p.first), p.second);
        }
    });
    return out;
}

template <class T> std::vector<Var<T>> Module<T>::parameters(bool recurse) const
{
    std::vector<Var<T>> out;
    for (auto& np : named_parameters(recurse)) out.push_back(np.second);
    return out;
}

template <class T> std::size_t Module<T>::num_parameters() const
{
    std::size_t n = 0;
    for (auto& np : named_parameters()) n += np.second.size();
    return n;
}

template <class T> std::vector<std::pair<std::string, BufferRef<T>>> Module<T>::named_buffers(bool recurse)
{
    std::vector<std::pair<std::string, BufferRef<T>>> out;
    auto own = [&out](const std::string& prefix, const Module& m) {
        for (const auto& b : m.buffers_) {
            BufferRef<T> ref;
            ref.values = b.values.get();
            ref.count = b.count.get();
            out.emplace_back(join_name(prefix, b.name), ref);
        }
    };
    if (!recurse) {
        own("", *this);
        return out;
    }
    visit("", true,
          [&](const std::string& prefix, const Module& m, const std::shared_ptr<Module>&) { own(prefix, m); });
    return out;
}

template <class T> std::vector<std::pair<std::string, Generator*>> Module<T>::named_generators(bool recurse)
{
    std::vector<std::pair<std::string, Generator*>> out;
    auto own = [&out](const std::string& prefix, const Module& m) {
        for (const auto& g : m.generators_) out.emplace_back(join_name(prefix, g.first), g.second.get());
    };
    if (!recurse) {
        own("", *this);
        return out;
    }
    visit("", true,
          [&](const std::string& prefix, const Module& m, const std::shared_ptr<Module>&) { own(prefix, m); });
    return out;
}

template <class T> std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> Module<T>::named_children() const
{
    return children_;
}

template <class T> std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> Module<T>::named_modules() const
{
    std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> out;
    visit("", true, [&](const std::string& name, const Module& m, const std::shared_ptr<Module>& holder) {
        if (holder) {
            out.emplace_back(name, holder);
        } else {
            // Not owned: the aliasing constructor with an empty owner gives a pointer that
            // never deletes (the module may be on the stack).
            out.emplace_back(name, std::shared_ptr<Module>(std::shared_ptr<Module>(), const_cast<Module*>(&m)));
        }
    });
    return out;
}

template <class T> std::shared_ptr<Module<T>> Module<T>::get_submodule(const std::string& name) const
{
    if (name.empty()) return std::shared_ptr<Module>(std::shared_ptr<Module>(), const_cast<Module*>(this));
    std::shared_ptr<Module> m;
    const Module* at = this;
    std::size_t begin = 0;
    while (true) {
        const std::size_t dot = name.find('.', begin);
        const std::string part = name.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
        std::shared_ptr<Module> next;
        for (const auto& c : at->children_) next = c.first == part ? c.second : next;
        if (!next) throw Error("get_submodule: no module " + quote(name) + " in " + type_name());
        m = next;
        at = m.get();
        if (dot == std::string::npos) return m;
        begin = dot + 1;
    }
}

template <class T> const Var<T>& Module<T>::get_parameter(const std::string& name) const
{
    const std::size_t dot = name.rfind('.');
    const std::string owner = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    const Module* m = this;
    std::shared_ptr<Module> holder;
    if (!owner.empty()) {
        try {
            holder = get_submodule(owner);
        } catch (const Error&) {
            throw Error("get_parameter: no parameter " + quote(name) + " in " + type_name());
        }
        m = holder.get();
    }
    for (const auto& p : m->params_) {
        // The registry outlives this call: holder shares the child's ownership with its parent.
        if (p.first == leaf) return p.second;
    }
    throw Error("get_parameter: no parameter " + quote(name) + " in " + type_name());
}

// --- modes and gradients -----------------------------------------------------------------

template <class T> void Module<T>::train(bool on)
{
    training_ = on;
    for (auto& c : children_) c.second->train(on);
}

template <class T> void Module<T>::zero_grad()
{
    for (const auto& np : named_parameters()) np.second.zero_grad();
}

// --- state_dict --------------------------------------------------------------------------

template <class T> std::vector<std::string> Module<T>::state_dict_keys() const
{
    std::vector<std::string> out;
    visit("", false, [&](const std::string& prefix, const Module& m, const std::shared_ptr<Module>&) {
        for (const auto& p : m.params_) out.push_back(join_name(prefix, p.first));
        for (const auto& b : m.buffers_) out.push_back(join_name(prefix, b.name));
    });
    return out;
}

template <class T> std::map<std::string, xt::xarray<double>> Module<T>::state_dict() const
{
    std::map<std::string, xt::xarray<double>> out;
    visit("", false, [&](const std::string& prefix, const Module& m, const std::shared_ptr<Module>&) {
        for (const auto& p : m.params_) out[join_name(prefix, p.first)] = xt::cast<double>(p.second.value());
        for (const auto& b : m.buffers_) {
            out[join_name(prefix, b.name)] = b.values ? xt::xarray<double>(xt::cast<double>(*b.values))
                                                      : xt::xarray<double>(static_cast<double>(*b.count));
        }
    });
    return out;
}

template <class T> void Module<T>::load_state_dict(const std::map<std::string, xt::xarray<double>>& state, bool strict)
{
    struct Entry {
        const Var<T>* param = nullptr;
        xt::xarray<T>* values = nullptr;
        std::int64_t* count = nullptr;
        const xt::xarray<double>* source = nullptr;
    };
    std::vector<std::pair<std::string, Entry>> entries;
    visit("", false, [&](const std::string& prefix, const Module& m, const std::shared_ptr<Module>&) {
        for (const auto& p : m.params_) {
            Entry e;
            e.param = &p.second;
            entries.emplace_back(join_name(prefix, p.first), e);
        }
        for (const auto& b : m.buffers_) {
            Entry e;
            e.values = b.values.get();
            e.count = b.count.get();
            entries.emplace_back(join_name(prefix, b.name), e);
        }
    });
    std::vector<std::string> missing, unexpected, problems;
    std::set<std::string> known;
    for (auto& [name, e] : entries) {
        known.insert(name);
        const auto it = state.find(name);
        if (it == state.end()) {
            if (strict) missing.push_back(quote(name));
            continue;
        }
        const xt::xarray<double>& v = it->second;
        e.source = &v;
        if (e.count != nullptr) {
            const double c = v.size() == 1 ? v.data()[0] : 0.0;
            if (v.dimension() != 0) {
                problems.push_back(quote(name) + " is " + format_shape(v.shape()) + " in the state but [] in " +
                                   type_name());
            } else if (!(std::floor(c) == c && std::abs(c) < 9.2e18)) {
                problems.push_back(quote(name) + " must hold an integer, got " + format_number(c));
            }
            continue;
        }
        const auto& shape = e.param != nullptr ? e.param->shape() : e.values->shape();
        if (!std::equal(v.shape().begin(), v.shape().end(), shape.begin(), shape.end())) {
            problems.push_back(quote(name) + " is " + format_shape(v.shape()) + " in the state but " +
                               format_shape(shape) + " in " + type_name());
            continue;
        }
        for (std::size_t i = 0; i < v.size(); ++i) {
            const double x = v.data()[i];
            if (std::isfinite(x) && !std::isfinite(static_cast<T>(x))) {
                problems.push_back(quote(name) + " element " + std::to_string(i) + " (" + format_number(x) +
                                   ") does not fit in float");
                break;
            }
        }
    }
    if (strict) {
        for (const auto& kv : state) {
            if (known.count(kv.first) == 0) unexpected.push_back(quote(kv.first));
        }
    }
    if (!missing.empty() || !unexpected.empty() || !problems.empty()) {
        std::vector<std::string> parts;
        if (!missing.empty()) parts.push_back("missing " + join_list(missing));
        if (!unexpected.empty()) parts.push_back("unexpected " + join_list(unexpected));
        parts.insert(parts.end(), problems.begin(), problems.end());
        std::string message = "load_state_dict: the state does not fit " + type_name() + ": ";
        for (std::size_t i = 0; i < parts.size(); ++i) message += (i == 0 ? "" : "; ") + parts[i];
        throw Error(message);
    }
    // Everything fits: from here on nothing throws but allocation.
    for (auto& [name, e] : entries) {
        if (e.source == nullptr) continue;
        if (e.param != nullptr) {
            e.param->set_value(xt::xarray<T>(xt::cast<T>(*e.source)));
        } else if (e.values != nullptr) {
            *e.values = xt::cast<T>(*e.source);
        } else {
            *e.count = static_cast<std::int64_t>(e.source->data()[0]);
        }
    }
}

// --- description -------------------------------------------------------------------------

template <class T> std::string Module<T>::type_name() const
{
    return short_type_name(typeid(*this).name());
}

template <class T> std::string Module<T>::summary() const
{
    struct Row {
        std::string label, type;
        std::optional<std::size_t> features;
        std::size_t params;
    };
    std::vector<Row> rows;
    std::set<const Module*> seen;
    // A Sequential's children pass their features on to the next one; any other module's
    // children are called in ways the table cannot know, so their inputs are unknown.
    std::function<void(const Module&, const std::string&, std::size_t, std::optional<std::size_t>)> walk =
        [&](const Module& m, const std::string& prefix, std::size_t depth, std::optional<std::size_t> in) {
            const bool chained = dynamic_cast<const Sequential<T>*>(&m) != nullptr;
            std::optional<std::size_t> features = in;
            for (const auto& [name, child] : m.children_) {
                if (!seen.insert(child.get()).second) continue;
                const std::optional<std::size_t> child_in = chained ? features : std::nullopt;
                const std::optional<std::size_t> out = child->output_features(child_in);
                const std::string full = join_name(prefix, name);
                rows.push_back({std::string(2 * depth, ' ') + full, child->type_name(), out, child->num_parameters()});
                walk(*child, full, depth + 1, child_in);
                if (chained) features = out;
            }
        };
    walk(*this, "", 0, std::nullopt);

    std::size_t width = 28;
    for (const auto& r : rows) width = std::max(width, r.label.size() + r.type.size() + 5);
    const std::string rule(width + 37, '_');
    const std::string thick(width + 37, '=');
    std::ostringstream out;
    out << "Model: \"" << type_name() << "\"\n" << rule << '\n';
    out << std::left << ' ' << std::setw(static_cast<int>(width)) << "Layer (type)" << std::setw(26) << "Output Shape"
        << "Param #\n";
    out << thick << '\n';
    for (const auto& r : rows) {
        const std::string shape = "(None, " + (r.features ? std::to_string(*r.features) : std::string("?")) + ")";
        out << ' ' << std::setw(static_cast<int>(width)) << (r.label + " (" + r.type + ")") << std::setw(26) << shape
            << r.params << '\n';
    }
    std::size_t total = 0, trainable = 0;
    for (const auto& np : named_parameters()) {
        total += np.second.size();
        if (np.second.requires_grad()) trainable += np.second.size();
    }
    out << thick << '\n';
    out << "Total params: " << total << " (" << total * sizeof(T) << " bytes)\n";
    out << "Trainable params: " << trainable << '\n';
    out << "Non-trainable params: " << total - trainable << '\n' << rule << '\n';
    return out.str();
}

template <class T> void Module<T>::print_summary(std::ostream& out) const
{
    out << summary();
}

// --- functional_call ---------------------------------------------------------------------

namespace detail {

template <class T> ParameterSwap<T>::ParameterSwap(Module<T>& module, const std::map<std::string, Var<T>>& parameters)
{
    // Every place a parameter is registered, by every name it is reachable by.
    struct Place {
        Module<T>* module;
        std::size_t index;
    };
    std::map<std::string, Place> places;
    module.visit("", false, [&](const std::string& prefix, const Module<T>& m, const std::shared_ptr<Module<T>>&) {
        for (std::size_t i = 0; i < m.params_.size(); ++i)
            places.emplace(join_name(prefix, m.params_[i].first), Place{const_cast<Module<T>*>(&m), i});
    });
    std::vector<std::string> problems;
    std::map<const void*, std::pair<std::string, Var<T>>> replace;  // a parameter's node -> its stand-in
    for (const auto& [name, var] : parameters) {
        const auto it = places.find(name);
        if (it == places.end()) {
            problems.push_back(module.type_name() + " has no parameter " + quote(name));
            continue;
        }
        const Var<T>& own = it->second.module->params_[it->second.index].second;
        if (!var.defined()) {
            problems.push_back("the Var for " + quote(name) + " is undefined");
            continue;
        }
        if (var.shape() != own.shape()) {
            problems.push_back(quote(name) + " is " + format_shape(var.shape()) + " but the parameter is " +
                               format_shape(own.shape()));
            continue;
        }
        const auto [entry, added] = replace.emplace(own.raw_node(), std::make_pair(name, var));
        if (!added && entry->second.second.raw_node() != var.raw_node()) {
            problems.push_back(quote(entry->second.first) + " and " + quote(name) +
                               " are one parameter (tied) but were given different Vars");
        }
    }
    if (!problems.empty()) {
        std::string message = "functional_call: ";
        for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
        throw Error(message);
    }
    std::set<std::pair<Module<T>*, std::size_t>> done;
    for (const auto& [name, place] : places) {
        (void)name;
        if (!done.insert({place.module, place.index}).second) continue;
        Var<T>& slot = place.module->params_[place.index].second;
        const auto it = replace.find(slot.raw_node());
        if (it == replace.end()) continue;
        slots_.push_back({place.module, place.index, slot});
        slot = it->second.second;
    }
}

template <class T> ParameterSwap<T>::~ParameterSwap()
{
    for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) it->module->params_[it->index].second = it->original;
}

template class ParameterSwap<float>;
template class ParameterSwap<double>;

}  // namespace detail

template class Module<float>;
template class Module<double>;

}  // namespace tg::nn
