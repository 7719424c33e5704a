// tg::io dtypes and tensors: dtype names and sizes, and the conversions between the raw
// little-endian bytes of a Tensor and xt::xarray (half floats included).

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/io.hpp"

namespace tg::io {

namespace {

// The unsigned integer type with the size of T, to move T's bits byte by byte.
template <class T>
using UintOf = std::conditional_t<
    sizeof(T) == 8, std::uint64_t,
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::conditional_t<sizeof(T) == 2, std::uint16_t, std::uint8_t>>>;

template <class To, class From> To bit_cast(const From& from)
{
    static_assert(sizeof(To) == sizeof(From));
    To to;
    std::memcpy(&to, &from, sizeof to);
    return to;
}

double half_to_double(std::uint16_t h)
{
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    double v;
    if (exponent == 0) {
        v = std::ldexp(mantissa, -24);  // zero or subnormal
    } else if (exponent == 31) {
        v = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    } else {
        v = std::ldexp(mantissa + 1024, exponent - 25);
    }
    return (h & 0x8000) != 0 ? -v : v;
}

// --- conversions ----------------------------------------------------------------------

template <class T> constexpr Dtype dtype_of()
{
    if constexpr (std::is_same_v<T, float>) return Dtype::f32;
    if constexpr (std::is_same_v<T, double>) return Dtype::f64;
    if constexpr (std::is_same_v<T, std::int64_t>) return Dtype::i64;
    if constexpr (std::is_same_v<T, std::int32_t>) return Dtype::i32;
    if constexpr (std::is_same_v<T, std::uint8_t>) return Dtype::u8;
}

template <class T> const char* type_name()
{
    if constexpr (std::is_same_v<T, float>) return "float";
    if constexpr (std::is_same_v<T, double>) return "double";
    if constexpr (std::is_same_v<T, std::int64_t>) return "int64";
    if constexpr (std::is_same_v<T, std::int32_t>) return "int32";
    if constexpr (std::is_same_v<T, std::uint8_t>) return "uint8";
}

// Calls f(i, value) for every element: a double for the floating dtypes, an int64 for the
// integer dtypes and BOOL, so that no integer passes through a double on the way.
template <class F> void for_each_element(const Tensor& t, const std::string& where, F f)
{
    using detail::load_le;
    const unsigned char* p = t.bytes.data();
    const std::size_t n = t.bytes.size() / dtype_size(t.dtype);
    for (std::size_t i = 0; i < n; ++i) {
        switch (t.dtype) {
        case Dtype::f64:
            f(i, bit_cast<double>(load_le<std::uint64_t>(p + 8 * i)));
            break;
        case Dtype::f32:
            f(i, double{bit_cast<float>(load_le<std::uint32_t>(p + 4 * i))});
            break;
        case Dtype::f16:
            f(i, half_to_double(load_le<std::uint16_t>(p + 2 * i)));
            break;
        case Dtype::bf16:  // the upper half of a float32
            f(i, double{bit_cast<float>(std::uint32_t{load_le<std::uint16_t>(p + 2 * i)} << 16)});
            break;
        case Dtype::i64:
            f(i, bit_cast<std::int64_t>(load_le<std::uint64_t>(p + 8 * i)));
            break;
        case Dtype::i32:
            f(i, std::int64_t{bit_cast<std::int32_t>(load_le<std::uint32_t>(p + 4 * i))});
            break;
        case Dtype::i16:
            f(i, std::int64_t{bit_cast<std::int16_t>(load_le<std::uint16_t>(p + 2 * i))});
            break;
        case Dtype::i8:
            f(i, std::int64_t{bit_cast<std::int8_t>(p[i])});
            break;
        case Dtype::u8:
            f(i, std::int64_t{p[i]});
            break;
        case Dtype::boolean:
            if (p[i] > 1) {
                throw Error(where + ": element " + std::to_string(i) + " of the BOOL tensor is byte " +
                            std::to_string(p[i]) + ", neither 0 nor 1");
            }
            f(i, std::int64_t{p[i]});
            break;
        }
    }
}

template <class T, class V>
[[noreturn]] void throw_unconvertible(const std::string& where, std::size_t i, Dtype from, V v, const char* why)
{
    std::ostringstream out;
    out << where << ": element " << i << " of the " << dtype_name(from) << " tensor (" << v << ") " << why
        << ", so it does not convert to " << type_name<T>();
    throw Error(out.str());
}

template <class T> T narrow(double v, std::size_t i, Dtype from, const std::string& where)
{
    if constexpr (std::is_floating_point_v<T>) {
        // Out of range is undefined behaviour in C++, not infinity; NaN and inf carry over.
        if (std::isfinite(v) && std::abs(v) > double{std::numeric_limits<T>::max()}) {
            throw_unconvertible<T>(where, i, from, v, "is out of range");
        }
    } else {
        if (!std::isfinite(v) || v != std::trunc(v)) throw_unconvertible<T>(where, i, from, v, "is not an integer");
        if (v < double(std::numeric_limits<T>::lowest()) || v >= std::ldexp(1.0, std::numeric_limits<T>::digits)) {
            throw_unconvertible<T>(where, i, from, v, "is out of range");
        }
    }
    return static_cast<T>(v);
}

template <class T> T narrow(std::int64_t v, std::size_t i, Dtype from, const std::string& where)
{
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, std::int64_t>) {
        if (v < std::numeric_limits<T>::lowest() || v > std::numeric_limits<T>::max()) {
            throw_unconvertible<T>(where, i, from, v, "is out of range");
        }
    }
    return static_cast<T>(v);
}

}  // namespace

namespace detail {

std::optional<std::size_t> byte_count(const std::vector<std::size_t>& shape, Dtype dtype)
{
    // Also nothing for a shape with a zero dim whose other dims overflow ([0, 2^32, 2^32]):
    // it holds no byte, but an array of that shape has strides that overflow.
    const std::optional<std::size_t> elements = tg::detail::checked_size(shape);
    std::size_t n = 0;
    if (!elements || __builtin_mul_overflow(*elements, dtype_size(dtype), &n)) return std::nullopt;
    return n;
}

void check_bytes(const Tensor& t, const std::string& where)
{
    const auto needed = byte_count(t.shape, t.dtype);
    if (!needed) throw Error(where + " has shape " + format_shape(t.shape) + ", too many elements");
    if (*needed != t.bytes.size()) {
        throw Error(where + " has " + std::to_string(t.bytes.size()) + " bytes, but shape " + format_shape(t.shape) +
                    " of " + dtype_name(t.dtype) + " needs " + std::to_string(*needed));
    }
}

template <class T> xt::xarray<T> convert(const Tensor& t, const std::string& where)
{
    check_bytes(t, where + ": the tensor");
    xt::xarray<T> out = xt::xarray<T>::from_shape(t.shape);
    T* data = out.data();
    for_each_element(t, where, [&](std::size_t i, auto v) { data[i] = narrow<T>(v, i, t.dtype, where); });
    return out;
}

}  // namespace detail

// --- public ---------------------------------------------------------------------------

const char* dtype_name(Dtype dtype)
{
    switch (dtype) {
    case Dtype::f64:
        return "F64";
    case Dtype::f32:
        return "F32";
    case Dtype::f16:
        return "F16";
    case Dtype::bf16:
        return "BF16";
    case Dtype::i64:
        return "I64";
    case Dtype::i32:
        return "I32";
    case Dtype::i16:
        return "I16";
    case Dtype::i8:
        return "I8";
    case Dtype::u8:
        return "U8";
    case Dtype::boolean:
        return "BOOL";
    }
    throw Error("dtype_name: invalid Dtype value " + std::to_string(static_cast<int>(dtype)));
}

std::size_t dtype_size(Dtype dtype)
{
    switch (dtype) {
    case Dtype::f64:
    case Dtype::i64:
        return 8;
    case Dtype::f32:
    case Dtype::i32:
        return 4;
    case Dtype::f16:
    case Dtype::bf16:
    case Dtype::i16:
        return 2;
    case Dtype::i8:
    case Dtype::u8:
    case Dtype::boolean:
        return 1;
    }
    throw Error("dtype_size: invalid Dtype value " + std::to_string(static_cast<int>(dtype)));
}

std::size_t Tensor::numel() const
{
    return checked_size("Tensor::numel", shape);
}

template <class T> Tensor Tensor::from(const xt::xarray<T>& array)
{
    using U = UintOf<T>;
    Tensor t;
    t.dtype = dtype_of<T>();
    t.shape.assign(array.shape().begin(), array.shape().end());
    t.bytes.resize(array.size() * sizeof(T));
    const T* data = array.data();  // an xarray is contiguous and row-major
    for (std::size_t i = 0; i < array.size(); ++i)
        detail::store_le(t.bytes.data() + i * sizeof(T), bit_cast<U>(data[i]));
    return t;
}

template <class T> xt::xarray<T> Tensor::to() const
{
    return detail::convert<T>(*this, "Tensor::to");
}

bool operator==(const Tensor& a, const Tensor& b)
{
    return a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes;
}
bool operator!=(const Tensor& a, const Tensor& b)
{
    return !(a == b);
}

#define TAPEGRAD_IO_ELEMENT(T)                                                                                         \
    template Tensor Tensor::from<T>(const xt::xarray<T>& array);                                                       \
    template xt::xarray<T> Tensor::to<T>() const;                                                                      \
    template xt::xarray<T> detail::convert<T>(const Tensor& t, const std::string& where);
TAPEGRAD_IO_ELEMENT(float)
TAPEGRAD_IO_ELEMENT(double)
TAPEGRAD_IO_ELEMENT(std::int64_t)
TAPEGRAD_IO_ELEMENT(std::int32_t)
TAPEGRAD_IO_ELEMENT(std::uint8_t)
#undef TAPEGRAD_IO_ELEMENT

}  // namespace tg::io
