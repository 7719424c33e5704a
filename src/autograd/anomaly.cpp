// Anomaly mode: NaN/Inf checks on every forward output and every gradient, and a report
// that says where the op sits in the pass, which ops fed it, and where it was recorded.

#include <cxxabi.h>
#include <execinfo.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>

#include "tapegrad/op.hpp"
#include "tapegrad/tape.hpp"

namespace tg::detail {
namespace {

// "binary(_ZN2tg3fooEv+0x1c) [0x...]" -> "tg::foo() in binary"; other formats as they are.
std::string describe_frame(const char* symbol)
{
    std::string s(symbol);
    const auto open = s.find('(');
    const auto plus = s.find('+', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || plus == std::string::npos || plus == open + 1) return s;
    const std::string mangled = s.substr(open + 1, plus - open - 1);
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                                std::free);
    return (status == 0 && name ? std::string(name.get()) : mangled) + " in " + s.substr(0, open);
}

template <class T> std::string where_recorded(const Entry<T>& e)
{
    std::ostringstream out;
    out << "op " << e.out.index << " of the pass, " << e.name << '(';
    for (std::size_t i = 0; i < e.inputs.size(); ++i)
        out << (i ? ", " : "") << format_shape(e.inputs[i]->value.shape());
    out << ')';
    for (std::size_t i = 0; i < e.inputs.size(); ++i) {
        const Node<T>* in = e.inputs[i];
        out << "; input " << i << ' ';
        if (in->tape != nullptr) {
            const auto& tape = static_cast<const Tape<T>&>(*in->tape);
            out << "came from " << tape.entry(in->index).name << " (op " << in->index << ')';
        } else {
            out << (in->requires_grad ? "is a parameter" : "is a constant");
        }
    }
    if (!e.recorded_at.empty()) {
        out << "; recorded at:";
        char** symbols = backtrace_symbols(e.recorded_at.data(), static_cast<int>(e.recorded_at.size()));
        if (symbols != nullptr) {
            for (std::size_t i = 0; i < e.recorded_at.size(); ++i)
                out << "\n    #" << i << ' ' << describe_frame(symbols[i]);
            std::free(symbols);
        }
    }
    return out.str();
}

}  // namespace

template <class T> void note_recording_site(Entry<T>& e)
{
    constexpr int depth = 24;
    e.recorded_at.resize(depth);
    const int n = backtrace(e.recorded_at.data(), depth);
    // Drop this function and tg::record.
    const int skip = n > 2 ? 2 : 0;
    e.recorded_at.erase(e.recorded_at.begin(), e.recorded_at.begin() + skip);
    e.recorded_at.resize(static_cast<std::size_t>(n - skip));
}

template <class T>
void check_finite(const char* op, const Entry<T>* entry, const xt::xarray<T>& values, bool backward, std::size_t input)
{
    const T* p = values.data();
    const std::size_t n = values.size();
    std::size_t bad = n;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(p[i])) {
            bad = i;
            break;
        }
    }
    if (bad == n) return;
    const char* what = std::isnan(p[bad]) ? "NaN" : (p[bad] > 0 ? "+Inf" : "-Inf");
    std::ostringstream msg;
    msg << op << ": anomaly detected: ";
    if (backward) {
        msg << "the backward produced " << what << " in the gradient of input " << input << " (shape "
            << format_shape(values.shape()) << ", flat element " << bad << ")";
    } else {
        msg << "the forward produced " << what << " in its output (shape " << format_shape(values.shape())
            << ", flat element " << bad << ")";
    }
    if (!backward && thread_flags.in_rule != nullptr) {
        msg << " while computing the gradient of " << thread_flags.in_rule << " (its vjp rule)";
    }
    if (entry != nullptr) {
        msg << "; " << where_recorded(*entry);
    } else {
        msg << "; the op was not recorded (no input requires grad)";
    }
    throw Error(msg.str());
}

template void note_recording_site<float>(Entry<float>&);
template void note_recording_site<double>(Entry<double>&);
template void check_finite<float>(const char*, const Entry<float>*, const xt::xarray<float>&, bool, std::size_t);
template void check_finite<double>(const char*, const Entry<double>*, const xt::xarray<double>&, bool, std::size_t);

}  // namespace tg::detail
