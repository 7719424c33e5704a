// tg::to_dot: the recorded graph behind a Var as Graphviz DOT text.

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

#include "tapegrad/autograd.hpp"
#include "tapegrad/tape.hpp"

namespace tg {
namespace {

std::string escape(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

template <class T> std::string to_dot(const Var<T>& v, const std::vector<std::pair<std::string, Var<T>>>& names)
{
    using detail::Node;
    const Node<T>* root = v.node("to_dot");
    std::map<const Node<T>*, std::string> name_of;
    for (const auto& [name, var] : names) {
        if (var.defined() && !var.stale()) name_of[var.raw_node()] = name;
    }

    std::ostringstream out;
    out << "digraph tapegrad {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
    std::map<const Node<T>*, std::string> ids;
    auto leaf_id = [&](const Node<T>* n) {
        auto it = ids.find(n);
        if (it != ids.end()) return it->second;
        std::string id = "leaf" + std::to_string(ids.size());
        ids[n] = id;
        std::string label = format_shape(n->value.shape());
        const auto named = name_of.find(n);
        if (named != name_of.end()) {
            label = escape(named->second) + "\\n" + label;
        } else if (!n->requires_grad) {
            label = "constant\\n" + label;
        }
        if (n->requires_grad) {
            out << "  " << id << " [shape=ellipse, style=filled, fillcolor=\"#cfe2f3\", label=\"" << label << "\"];\n";
        } else {
            out << "  " << id << " [shape=ellipse, color=\"#888888\", label=\"" << label << "\"];\n";
        }
        return id;
    };

    if (root->tape == nullptr) {
        leaf_id(root);
        out << "}\n";
        return out.str();
    }
    const auto& tape = static_cast<const detail::Tape<T>&>(*root->tape);
    // Entries that lead to the root: walk its inputs down the tape (indices only decrease).
    std::vector<char> used(root->index + 1, 0);
    used[root->index] = 1;
    for (std::size_t i = root->index + 1; i-- > 0;) {
        if (!used[i]) continue;
        for (const Node<T>* in : tape.entry(i).inputs) {
            if (in->tape != nullptr) used[in->index] = 1;
        }
    }
    for (std::size_t i = 0; i <= root->index; ++i) {
        if (!used[i]) continue;
        const auto& e = tape.entry(i);
        const std::string id = "op" + std::to_string(i);
        out << "  " << id << " [shape=box, style=rounded, label=\"" << escape(e.name) << "\\n"
            << format_shape(e.out.value.shape()) << "\"" << (i == root->index ? ", penwidth=2" : "") << "];\n";
        for (std::size_t k = 0; k < e.inputs.size(); ++k) {
            const Node<T>* in = e.inputs[k];
            const std::string from = in->tape != nullptr ? "op" + std::to_string(in->index) : leaf_id(in);
            out << "  " << from << " -> " << id;
            if (e.inputs.size() > 1) out << " [label=\"" << k << "\", fontsize=8]";
            out << ";\n";
        }
    }
    out << "}\n";
    return out.str();
}

template std::string to_dot<float>(const Var<float>&, const std::vector<std::pair<std::string, Var<float>>>&);
template std::string to_dot<double>(const Var<double>&, const std::vector<std::pair<std::string, Var<double>>>&);

}  // namespace tg
