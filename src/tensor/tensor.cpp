// torch's tensor conveniences on Vars: factory functions for constants, reshape with one
// inferred size (a thin layer over the reshape op), and printing in torch's format.

#include "tapegrad/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>

#include "tapegrad/error.hpp"
#include "tapegrad/ops.hpp"

namespace tg {

// --- constants ---------------------------------------------------------------------------

namespace {

template <class T, class Fill> Var<T> filled(const char* who, const std::vector<std::size_t>& shape, Fill fill)
{
    checked_size(who, shape);
    xt::xarray<T> a(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<T>(fill(i));
    return constant(std::move(a));
}

}  // namespace

template <class T> Var<T> randn(const std::vector<std::size_t>& shape, Generator& gen)
{
    std::normal_distribution<double> d(0.0, 1.0);
    return filled<T>("randn", shape, [&](std::size_t) { return d(gen); });
}

template <class T> Var<T> rand(const std::vector<std::size_t>& shape, Generator& gen)
{
    std::uniform_real_distribution<double> d(0.0, 1.0);
    return filled<T>("rand", shape, [&](std::size_t) { return d(gen); });
}

template <class T> Var<T> zeros(const std::vector<std::size_t>& shape)
{
    return filled<T>("zeros", shape, [](std::size_t) { return 0.0; });
}

template <class T> Var<T> ones(const std::vector<std::size_t>& shape)
{
    return filled<T>("ones", shape, [](std::size_t) { return 1.0; });
}

template <class T> Var<T> full(const std::vector<std::size_t>& shape, double value)
{
    return filled<T>("full", shape, [value](std::size_t) { return value; });
}

template <class T> Var<T> arange(std::size_t n)
{
    return filled<T>("arange", std::vector<std::size_t>{n}, [](std::size_t i) { return static_cast<double>(i); });
}

template <class T> Var<T> arange(double start, double end, double step)
{
    if (!std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step)) {
        throw Error("arange: start, end and step must be finite (got " + format_number(start) + ", " +
                    format_number(end) + ", " + format_number(step) + ")");
    }
    if (step == 0.0) throw Error("arange: step must be nonzero");
    if ((end - start) * step < 0.0) {
        throw Error("arange: step " + format_number(step) + " points away from end (start " + format_number(start) +
                    ", end " + format_number(end) + ")");
    }
    const double count = std::ceil((end - start) / step);
    if (!(count < 9.0e15)) throw Error("arange: " + format_number(count) + " elements are too many");
    return filled<T>("arange", std::vector<std::size_t>{static_cast<std::size_t>(count)},
                     [&](std::size_t i) { return start + static_cast<double>(i) * step; });
}

// --- reshape -----------------------------------------------------------------------------

template <class T> Var<T> reshape(const Var<T>& x, const std::vector<std::ptrdiff_t>& shape)
{
    std::size_t inferred_at = shape.size();
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1 && inferred_at == shape.size()) {
            inferred_at = i;
            sizes.push_back(1);
        } else if (shape[i] == -1) {
            throw Error("reshape: only one size can be -1 (got " + format_shape(shape) + ")");
        } else if (shape[i] < 0) {
            throw Error("reshape: sizes must be non-negative or -1 (got " + format_shape(shape) + ")");
        } else {
            sizes.push_back(static_cast<std::size_t>(shape[i]));
        }
    }
    if (inferred_at < shape.size()) {
        const auto& value = x.node("reshape")->value;
        const std::size_t others = checked_size("reshape", sizes);
        if (others == 0) {
            throw Error("reshape: the size for -1 cannot be inferred when another size is 0 (" + format_shape(shape) +
                        " for " + format_shape(value.shape()) + ")");
        }
        if (value.size() % others != 0) {
            throw Error("reshape: cannot reshape " + format_shape(value.shape()) + " (" + std::to_string(value.size()) +
                        " elements) into " + format_shape(shape) + ": " + std::to_string(value.size()) +
                        " is not a multiple of " + std::to_string(others));
        }
        sizes[inferred_at] = value.size() / others;
    }
    return reshape(x, sizes);
}

template <class T> Var<T> reshape(const Var<T>& x, std::initializer_list<ShapeDim> shape)
{
    bool negative = false;
    for (const ShapeDim& d : shape) negative = negative || d.negative();
    if (!negative) {
        std::vector<std::size_t> sizes;
        for (const ShapeDim& d : shape) sizes.push_back(d.size());
        return reshape(x, sizes);
    }
    std::vector<std::ptrdiff_t> sizes;
    for (const ShapeDim& d : shape) {
        if (!d.negative() && d.size() > static_cast<std::size_t>(PTRDIFF_MAX))
            throw Error("reshape: size " + std::to_string(d.size()) + " is too large");
        sizes.push_back(d.negative() ? d.negative_size() : static_cast<std::ptrdiff_t>(d.size()));
    }
    return reshape(x, sizes);
}

// --- printing ----------------------------------------------------------------------------

namespace {

constexpr std::size_t kSummariseAbove = 1000;  // torch's print threshold
constexpr std::size_t kEdgeItems = 3;
constexpr std::size_t kLineWidth = 80;

enum class Style { integer, fixed, scientific };

// One format for every element, chosen as torch's formatter does from the finite values.
Style choose_style(const std::vector<double>& values)
{
    bool integral = true;
    double largest = 0, smallest = HUGE_VAL;
    for (double v : values) {
        if (!std::isfinite(v)) continue;
        integral = integral && std::floor(v) == v;
        const double a = std::abs(v);
        largest = std::max(largest, a);
        if (a > 0) smallest = std::min(smallest, a);
    }
    const bool wide = largest / smallest > 1000.0 || largest > 1e8;
    if (integral) return wide ? Style::scientific : Style::integer;
    return wide || smallest < 1e-4 ? Style::scientific : Style::fixed;
}

std::string format_element(double v, Style style)
{
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    switch (style) {
    case Style::integer:
        std::snprintf(buf, sizeof buf, "%.0f.", v);
        break;
    case Style::fixed:
        std::snprintf(buf, sizeof buf, "%.4f", v);
        break;
    default:
        std::snprintf(buf, sizeof buf, "%.4e", v);
        break;
    }
    return buf;
}

template <class T> class Printer {
public:
    Printer(const xt::xarray<T>& a, bool summarise) : a_(a), summarise_(summarise)
    {
        // The style and width come from the elements that are shown, as in torch.
        std::vector<double> shown;
        collect(0, 0, shown);
        style_ = choose_style(shown);
        for (double v : shown) width_ = std::max(width_, format_element(v, style_).size());
    }

    // The block of dimension `dim` starting at flat offset `offset`; continuation lines are
    // indented by `indent`.
    std::string block(std::size_t dim, std::size_t offset, std::size_t indent) const
    {
        const std::size_t n = a_.shape()[dim];
        const std::size_t stride = stride_of(dim);
        std::vector<std::string> items;
        for (std::size_t i : shown_indices(n)) {
            if (i == n) {
                items.emplace_back(dim + 1 == a_.dimension() ? " ..." : "...");
            } else if (dim + 1 == a_.dimension()) {
                std::string s = format_element(static_cast<double>(a_.data()[offset + i]), style_);
                items.push_back(std::string(width_ - std::min(width_, s.size()), ' ') + s);
            } else {
                items.push_back(block(dim + 1, offset + i * stride, indent + 1));
            }
        }
        std::string out = "[";
        if (dim + 1 == a_.dimension()) {
            // Elements wrap to the line width, as torch's do.
            const std::size_t per_line =
                std::max<std::size_t>(1, (kLineWidth > indent ? kLineWidth - indent : 0) / (width_ + 2));
            for (std::size_t k = 0; k < items.size(); ++k) {
                if (k > 0) out += k % per_line == 0 ? ",\n" + std::string(indent + 1, ' ') : ", ";
                out += items[k];
            }
        } else {
            const std::string sep = "," + std::string(a_.dimension() - dim - 1, '\n') + std::string(indent + 1, ' ');
            for (std::size_t k = 0; k < items.size(); ++k) out += (k > 0 ? sep : "") + items[k];
        }
        return out + "]";
    }

private:
    std::size_t stride_of(std::size_t dim) const
    {
        std::size_t s = 1;
        for (std::size_t d = dim + 1; d < a_.dimension(); ++d) s *= a_.shape()[d];
        return s;
    }
    // The indices shown along a dimension of length n; n itself marks the "...".
    std::vector<std::size_t> shown_indices(std::size_t n) const
    {
        std::vector<std::size_t> out;
        if (summarise_ && n > 2 * kEdgeItems) {
            for (std::size_t i = 0; i < kEdgeItems; ++i) out.push_back(i);
            out.push_back(n);
            for (std::size_t i = n - kEdgeItems; i < n; ++i) out.push_back(i);
        } else {
            for (std::size_t i = 0; i < n; ++i) out.push_back(i);
        }
        return out;
    }
    void collect(std::size_t dim, std::size_t offset, std::vector<double>& out) const
    {
        const std::size_t n = a_.shape()[dim];
        for (std::size_t i : shown_indices(n)) {
            if (i == n) continue;
            if (dim + 1 == a_.dimension()) {
                out.push_back(static_cast<double>(a_.data()[offset + i]));
            } else {
                collect(dim + 1, offset + i * stride_of(dim), out);
            }
        }
    }

    const xt::xarray<T>& a_;
    bool summarise_;
    Style style_ = Style::fixed;
    std::size_t width_ = 0;
};

}  // namespace

template <class T> std::ostream& operator<<(std::ostream& out, const Var<T>& v)
{
    if (!v.defined()) return out << "tensor(undefined)";
    const xt::xarray<T>& a = v.node("operator<<")->value;
    std::string body;
    if (a.dimension() == 0) {
        body = format_element(static_cast<double>(a.data()[0]), choose_style({static_cast<double>(a.data()[0])}));
    } else if (a.size() == 0) {
        body = "[]";
    } else {
        body = Printer<T>(a, a.size() > kSummariseAbove).block(0, 0, std::string("tensor(").size());
    }
    out << "tensor(" << body << ", shape=" << format_shape(a.shape())
        << ", dtype=" << (sizeof(T) == sizeof(float) ? "float32" : "float64");
    if (v.requires_grad()) out << ", requires_grad=true";
    return out << ')';
}

#define TAPEGRAD_TENSOR_INSTANTIATE(T)                                                                                 \
    template Var<T> randn<T>(const std::vector<std::size_t>&, Generator&);                                             \
    template Var<T> rand<T>(const std::vector<std::size_t>&, Generator&);                                              \
    template Var<T> zeros<T>(const std::vector<std::size_t>&);                                                         \
    template Var<T> ones<T>(const std::vector<std::size_t>&);                                                          \
    template Var<T> full<T>(const std::vector<std::size_t>&, double);                                                  \
    template Var<T> arange<T>(std::size_t);                                                                            \
    template Var<T> arange<T>(double, double, double);                                                                 \
    template Var<T> reshape<T>(const Var<T>&, const std::vector<std::ptrdiff_t>&);                                     \
    template Var<T> reshape<T>(const Var<T>&, std::initializer_list<ShapeDim>);                                        \
    template std::ostream& operator<< <T>(std::ostream&, const Var<T>&);
TAPEGRAD_TENSOR_INSTANTIATE(float)
TAPEGRAD_TENSOR_INSTANTIATE(double)
#undef TAPEGRAD_TENSOR_INSTANTIATE

}  // namespace tg
