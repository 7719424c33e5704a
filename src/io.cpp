// tg::io: safetensors reading and writing. Reading trusts nothing in the file: every
// length, offset and shape is checked before it is used, and a CRC-32 over the contents
// (when the writer left one) turns silent corruption into an error.

#include "tapegrad/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/nn.hpp"

namespace tg::io {

namespace {

using json = nlohmann::json;

const std::string metadata_key = "__metadata__";
const std::string marker_key = "tapegrad.checksum";  // says a checksum must be present
const std::string checksum_key = "tapegrad.crc32";

constexpr Dtype all_dtypes[] = {Dtype::f64, Dtype::f32, Dtype::f16, Dtype::bf16, Dtype::i64,
                                Dtype::i32, Dtype::i16, Dtype::i8,  Dtype::u8,   Dtype::boolean};

thread_local std::optional<std::size_t> fail_writes_after_bytes;

std::string quote(const std::string& s)
{
    return "'" + s + "'";
}

std::string system_message(int error)
{
    return std::error_code(error, std::generic_category()).message();
}

// --- bytes ----------------------------------------------------------------------------

// The unsigned integer type with the size of T, to move T's bits byte by byte.
template <class T>
using UintOf = std::conditional_t<
    sizeof(T) == 8, std::uint64_t,
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::conditional_t<sizeof(T) == 2, std::uint16_t, std::uint8_t>>>;

// Byte by byte, so the files are little-endian whatever the host is.
template <class U> U load_le(const unsigned char* p)
{
    U v = 0;
    for (std::size_t i = sizeof(U); i-- > 0;) v = static_cast<U>((std::uint64_t{v} << 8) | p[i]);
    return v;
}

template <class U> void store_le(unsigned char* p, U v)
{
    for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<unsigned char>(std::uint64_t{v} >> (8 * i));
}

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

// product(shape) * element size, or nullopt when it overflows.
std::optional<std::size_t> byte_count(const std::vector<std::size_t>& shape, Dtype dtype)
{
    std::size_t n = dtype_size(dtype);
    for (std::size_t d : shape) {
        if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
    }
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

template <class T> xt::xarray<T> convert(const Tensor& t, const std::string& where)
{
    check_bytes(t, where + ": the tensor");
    xt::xarray<T> out = xt::xarray<T>::from_shape(t.shape);
    T* data = out.data();
    for_each_element(t, where, [&](std::size_t i, auto v) { data[i] = narrow<T>(v, i, t.dtype, where); });
    return out;
}

// --- checksum -------------------------------------------------------------------------

class Crc {
public:
    void bytes(const void* p, std::size_t n)
    {
        // zlib resets the CRC on a null buffer, which an empty vector may hand us.
        if (n > 0) value_ = crc32_z(value_, static_cast<const Bytef*>(p), n);
    }
    void number(std::uint64_t v)
    {
        unsigned char b[8];
        store_le(b, v);
        bytes(b, 8);
    }
    void string(const std::string& s)
    {
        number(s.size());
        bytes(s.data(), s.size());
    }
    std::string hex() const
    {
        char out[9];
        std::snprintf(out, sizeof out, "%08lx", static_cast<unsigned long>(value_ & 0xffffffffu));
        return out;
    }

private:
    uLong value_ = crc32(0L, Z_NULL, 0);
};

// The canonical serialisation: tagged, length-prefixed records in sorted order, so that
// no two different files feed the CRC the same bytes.
std::string checksum(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata)
{
    Crc crc;
    for (const auto& [name, t] : tensors) {
        crc.bytes("T", 1);
        crc.string(name);
        crc.string(dtype_name(t.dtype));
        crc.number(t.shape.size());
        for (std::size_t d : t.shape) crc.number(d);
        crc.number(t.bytes.size());
        crc.bytes(t.bytes.data(), t.bytes.size());
    }
    for (const auto& [key, value] : metadata) {
        if (key == checksum_key) continue;
        crc.bytes("M", 1);
        crc.string(key);
        crc.string(value);
    }
    return crc.hex();
}

// --- header parsing -------------------------------------------------------------------

// nlohmann's messages quote the bytes they stopped at; keep the message printable.
std::string printable(const char* message)
{
    std::string s = message;
    if (s.rfind("[json.exception.", 0) == 0 && s.find("] ") != std::string::npos) s.erase(0, s.find("] ") + 2);
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

// Parses the header JSON. nlohmann keeps the last of duplicate keys without a word, so a
// parser callback tracks each open object's keys and rejects the second one. The callback
// also caps nesting at the depth a safetensors header has (a shape array inside an entry),
// so that 100 MB of '[' cannot build a 100-million-level tree.
json parse_header(const std::string& text, const std::string& source)
{
    // nlohmann stops at a NUL as at the end of input and would ignore what follows.
    if (text.find('\0') != std::string::npos) throw Error(source + ": the header contains a NUL byte");
    struct Frame {
        std::set<std::string> keys;
        std::string owner;  // the key this object is the value of ("" at the top level)
        int depth;
    };
    std::vector<Frame> frames;
    std::string last_key;
    auto duplicate = [&](const std::string& key) {
        const int depth = frames.back().depth;
        std::string what = "the header has the key " + quote(key) + " twice";  // when it is no object
        if (frames.front().depth == 0 && depth == 0) {
            what =
                key == metadata_key ? "the header has two __metadata__ entries" : "duplicate tensor name " + quote(key);
        } else if (frames.front().depth == 0 && frames[1].owner == metadata_key) {
            what = depth == 1 ? "duplicate metadata key " + quote(key)
                              : "__metadata__ has the key " + quote(key) + " twice";
        } else if (frames.front().depth == 0) {
            what = "tensor " + quote(frames[1].owner) + " has the key " + quote(key) + " twice";
        }
        return Error(source + ": " + what);
    };
    json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) {
            if (depth >= 3) throw Error(source + ": the header nests deeper than a safetensors header does");
            if (event == json::parse_event_t::object_start) frames.push_back({{}, depth == 0 ? "" : last_key, depth});
        } else if (event == json::parse_event_t::object_end) {
            frames.pop_back();
        } else if (event == json::parse_event_t::key) {
            last_key = parsed.get<std::string>();
            if (!frames.back().keys.insert(last_key).second) throw duplicate(last_key);
        }
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), callback);
    } catch (const json::exception& e) {
        throw Error(source + ": the header is not valid UTF-8 JSON (" + printable(e.what()) + ")");
    }
}

bool is_index(const json& v)
{
    return v.is_number_unsigned();
}

// A JSON value for a message, cut short (at a character boundary) if long.
std::string excerpt(const json& v)
{
    std::string s = v.dump();
    if (s.size() <= 60) return s;
    std::size_t cut = 60;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
    return s.substr(0, cut) + "...";
}

// "a number", "an array", "null", ... for messages.
std::string kind(const json& v)
{
    const std::string name = v.type_name();
    if (v.is_null()) return name;
    return (v.is_object() || v.is_array() ? "an " : "a ") + name;
}

Tensor read_entry(const json& entry, const std::string& where, std::pair<std::uint64_t, std::uint64_t>& offsets)
{
    if (!entry.is_object()) throw Error(where + " is " + kind(entry) + ", not an object");
    auto field = [&](const char* key) -> const json& {
        auto it = entry.find(key);
        if (it == entry.end()) throw Error(where + " has no \"" + key + "\"");
        return *it;
    };
    const json& dtype = field("dtype");
    const json& shape = field("shape");
    const json& range = field("data_offsets");

    Tensor t;
    if (!dtype.is_string()) throw Error(where + ": \"dtype\" is " + kind(dtype) + ", not a string");
    const auto& dname = dtype.get_ref<const std::string&>();
    auto known =
        std::find_if(std::begin(all_dtypes), std::end(all_dtypes), [&](Dtype d) { return dname == dtype_name(d); });
    if (known == std::end(all_dtypes)) throw Error(where + ": unknown dtype " + quote(dname));
    t.dtype = *known;

    if (!shape.is_array()) throw Error(where + ": \"shape\" is " + kind(shape) + ", not an array");
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (!is_index(shape[i])) {
            throw Error(where + ": \"shape\" must hold non-negative integers, element " + std::to_string(i) + " is " +
                        excerpt(shape[i]));
        }
        t.shape.push_back(shape[i].get<std::size_t>());
    }

    if (!range.is_array() || range.size() != 2 || !is_index(range[0]) || !is_index(range[1])) {
        throw Error(where + ": \"data_offsets\" must be [begin, end], two non-negative integers, not " +
                    excerpt(range));
    }
    offsets = {range[0].get<std::uint64_t>(), range[1].get<std::uint64_t>()};
    return t;
}

}  // namespace

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
    std::size_t n = 1;
    for (std::size_t d : shape) {
        if (__builtin_mul_overflow(n, d, &n))
            throw Error("Tensor::numel: shape " + format_shape(shape) + " has too many elements");
    }
    return n;
}

template <class T> Tensor Tensor::from(const xt::xarray<T>& array)
{
    using U = UintOf<T>;
    Tensor t;
    t.dtype = dtype_of<T>();
    t.shape.assign(array.shape().begin(), array.shape().end());
    t.bytes.resize(array.size() * sizeof(T));
    const T* data = array.data();  // an xarray is contiguous and row-major
    for (std::size_t i = 0; i < array.size(); ++i) store_le(t.bytes.data() + i * sizeof(T), bit_cast<U>(data[i]));
    return t;
}

template <class T> xt::xarray<T> Tensor::to() const
{
    return convert<T>(*this, "Tensor::to");
}

bool operator==(const Tensor& a, const Tensor& b)
{
    return a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes;
}
bool operator!=(const Tensor& a, const Tensor& b)
{
    return !(a == b);
}
bool operator==(const File& a, const File& b)
{
    return a.tensors == b.tensors && a.metadata == b.metadata;
}
bool operator!=(const File& a, const File& b)
{
    return !(a == b);
}

namespace {

std::string serialize_as(const File& file, const std::string& where)
{
    std::map<std::string, std::string> metadata = file.metadata;
    for (const std::string& key : {marker_key, checksum_key}) {
        if (metadata.count(key) != 0) throw Error(where + ": metadata key " + quote(key) + " is reserved");
    }
    std::vector<const std::pair<const std::string, Tensor>*> order;
    for (const auto& entry : file.tensors) {
        if (entry.first == metadata_key)
            throw Error(where + ": a tensor cannot be named '__metadata__' (the metadata key)");
        check_bytes(entry.second, where + ": tensor " + quote(entry.first));
        order.push_back(&entry);
    }
    // Largest elements first: with the header padded to 8 bytes, every tensor then starts at
    // a multiple of its element size, as loaders that map the file in place want.
    std::stable_sort(order.begin(), order.end(),
                     [](auto* a, auto* b) { return dtype_size(a->second.dtype) > dtype_size(b->second.dtype); });
    metadata[marker_key] = "crc32";
    metadata[checksum_key] = checksum(file.tensors, metadata);

    json header = json::object();
    std::uint64_t offset = 0;
    for (const auto* entry : order) {
        const Tensor& t = entry->second;
        json e = json::object();
        e["dtype"] = dtype_name(t.dtype);
        e["shape"] = t.shape;
        e["data_offsets"] = json::array({offset, offset + t.bytes.size()});
        header[entry->first] = std::move(e);
        offset += t.bytes.size();
    }
    header[metadata_key] = metadata;
    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception&) {
        throw Error(where + ": a tensor name or metadata entry is not valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');

    std::string out(8, '\0');
    store_le(reinterpret_cast<unsigned char*>(out.data()), std::uint64_t{text.size()});
    out.reserve(8 + text.size() + offset);
    out += text;
    for (const auto* entry : order) out.append(entry->second.bytes.begin(), entry->second.bytes.end());
    return out;
}

// Opened file descriptor, closed on every path out.
struct Fd {
    int fd = -1;
    ~Fd()
    {
        if (fd >= 0) ::close(fd);
    }
};

std::string read_file(const std::string& path)
{
    Fd in;
    in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) throw Error(path + ": cannot open the file (" + system_message(errno) + ")");
    struct stat st {};
    if (::fstat(in.fd, &st) != 0) throw Error(path + ": cannot stat the file (" + system_message(errno) + ")");
    if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
    std::string out;
    out.reserve(static_cast<std::size_t>(st.st_size));
    char buffer[1 << 16];
    for (;;) {
        const ssize_t n = ::read(in.fd, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(path + ": read failed (" + system_message(errno) + ")");
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

void write_all(int fd, const std::string& bytes, std::optional<std::size_t> fail_after, const std::string& path)
{
    const std::size_t todo = fail_after ? std::min(*fail_after, bytes.size()) : bytes.size();
    std::size_t done = 0;
    while (done < todo) {
        const ssize_t n = ::write(fd, bytes.data() + done, todo - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(path + ": write failed (" + system_message(errno) + ")");
        done += static_cast<std::size_t>(n);
    }
    if (fail_after) {
        throw Error(path + ": write failed after " + std::to_string(done) +
                    " bytes (simulated by tg::io::detail::fail_writes_after)");
    }
}

}  // namespace

std::string serialize(const File& file)
{
    return serialize_as(file, "serialize");
}

File parse(const std::string& bytes, const std::string& source)
{
    const std::string where = source + ": ";
    if (bytes.size() < 8) {
        throw Error(where + "the file has " + std::to_string(bytes.size()) +
                    " bytes, too few for the 8-byte header length (truncated?)");
    }
    const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::uint64_t header_size = load_le<std::uint64_t>(raw);
    const std::uint64_t rest = bytes.size() - 8;
    if (header_size > max_header_bytes) {
        throw Error(where + "the header length " + std::to_string(header_size) + " exceeds the limit of " +
                    std::to_string(max_header_bytes) + " bytes (100 MiB)");
    }
    if (header_size > rest) {
        throw Error(where + "the header length " + std::to_string(header_size) + " exceeds the " +
                    std::to_string(rest) + " bytes that follow it (truncated?)");
    }
    const json header = parse_header(bytes.substr(8, header_size), source);
    if (!header.is_object()) throw Error(where + "the header is " + kind(header) + ", not an object");

    const std::uint64_t buffer_size = rest - header_size;
    const unsigned char* buffer = raw + 8 + header_size;
    struct Range {
        std::uint64_t begin, end;
        const std::string* name;
    };
    std::vector<Range> ranges;
    File file;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        if (name == metadata_key) {
            if (!it->is_object()) throw Error(where + "__metadata__ is " + kind(*it) + ", not an object");
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string()) {
                    throw Error(where + "__metadata__ must map to strings, but " + quote(m.key()) + " is " + kind(*m));
                }
                file.metadata[m.key()] = m->get<std::string>();
            }
            continue;
        }
        const std::string tensor = where + "tensor " + quote(name);
        std::pair<std::uint64_t, std::uint64_t> offsets;
        Tensor t = read_entry(*it, tensor, offsets);
        const auto [begin, end] = offsets;
        const std::string span = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
        if (begin > end) throw Error(tensor + ": " + span + " end before they begin");
        if (end > buffer_size) {
            throw Error(tensor + ": " + span + " reach past the end of the " + std::to_string(buffer_size) +
                        "-byte data buffer");
        }
        const auto needed = byte_count(t.shape, t.dtype);
        if (!needed) throw Error(tensor + ": shape " + format_shape(t.shape) + " has too many elements");
        if (*needed != end - begin) {
            throw Error(tensor + ": shape " + format_shape(t.shape) + " of " + dtype_name(t.dtype) + " needs " +
                        std::to_string(*needed) + " bytes, but " + span + " hold " + std::to_string(end - begin));
        }
        t.bytes.assign(buffer + begin, buffer + end);
        ranges.push_back({begin, end, &name});
        file.tensors.emplace(name, std::move(t));
    }

    // The ranges must tile the buffer: sorted by position, each begins where the last ended.
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    std::uint64_t pos = 0;
    const Range* previous = nullptr;
    auto unused = [&](std::uint64_t from, std::uint64_t to) {
        return Error(where + "bytes [" + std::to_string(from) + ", " + std::to_string(to) +
                     ") of the data buffer belong to no tensor");
    };
    for (const Range& r : ranges) {
        if (r.begin < pos) {
            throw Error(where + "tensors " + quote(*previous->name) + " and " + quote(*r.name) + " overlap ([" +
                        std::to_string(previous->begin) + ", " + std::to_string(previous->end) + "] and [" +
                        std::to_string(r.begin) + ", " + std::to_string(r.end) + "])");
        }
        if (r.begin > pos) throw unused(pos, r.begin);
        pos = r.end;
        previous = &r;
    }
    if (pos != buffer_size) throw unused(pos, buffer_size);

    const auto marker = file.metadata.find(marker_key);
    const auto stored = file.metadata.find(checksum_key);
    if (marker != file.metadata.end() && marker->second != "crc32") {
        throw Error(where + "unknown checksum kind " + quote(marker->second) + " in " + quote(marker_key));
    }
    if (marker != file.metadata.end() && stored == file.metadata.end()) {
        throw Error(where + "checksum entry " + quote(checksum_key) + " is missing: the file is corrupt");
    }
    if (stored != file.metadata.end()) {
        const std::string computed = checksum(file.tensors, file.metadata);
        if (stored->second != computed) {
            throw Error(where + "checksum mismatch: the file is corrupt (stored " + quote(stored->second) +
                        ", computed " + quote(computed) + ")");
        }
        file.metadata.erase(stored);
    }
    if (marker != file.metadata.end()) file.metadata.erase(marker);
    return file;
}

File load(const std::string& path)
{
    return parse(read_file(path), path);
}

void save(const std::string& path, const File& file)
{
    const std::optional<std::size_t> fail_after = std::exchange(fail_writes_after_bytes, std::nullopt);
    const std::string bytes = serialize_as(file, path);

    // Not mkstemp: it creates the file with mode 0600, which the rename would hand on to the
    // checkpoint. O_EXCL with mode 0666 gives the same uniqueness and lets the umask decide.
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    Fd out;
    std::string temp;
    for (int attempt = 0; out.fd < 0; ++attempt) {
        char suffix[32];
        std::snprintf(suffix, sizeof suffix, ".tmp.%016llx", static_cast<unsigned long long>(gen()));
        temp = path + suffix;
        out.fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (out.fd < 0 && (errno != EEXIST || attempt == 100)) {
            throw Error(path + ": cannot create a temporary file next to it (" + system_message(errno) + ")");
        }
    }
    try {
        write_all(out.fd, bytes, fail_after, path);
        if (::fsync(out.fd) != 0) throw Error(path + ": fsync failed (" + system_message(errno) + ")");
        const int closed = ::close(out.fd);
        out.fd = -1;
        if (closed != 0) throw Error(path + ": close failed (" + system_message(errno) + ")");
        if (std::rename(temp.c_str(), path.c_str()) != 0) {
            throw Error(path + ": cannot rename the temporary file over it (" + system_message(errno) + ")");
        }
    } catch (...) {
        if (out.fd >= 0) ::close(out.fd);
        out.fd = -1;
        std::remove(temp.c_str());
        throw;
    }
    // Make the rename itself durable. Best effort: some file systems refuse to fsync a
    // directory, and the new file is complete either way.
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    Fd d;
    d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d.fd >= 0) ::fsync(d.fd);
}

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
    save(path, file);
}

template <class T> void load_parameters(const std::string& path, nn::Module<T>& module)
{
    const File file = load(path);
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
    for (const auto& entry : file.tensors) {
        if (names.count(entry.first) == 0) unexpected.push_back(quote(entry.first));
    }
    if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
        auto join = [](const std::vector<std::string>& items) {
            std::string s;
            for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
            return s;
        };
        std::vector<std::string> problems;
        if (!missing.empty()) problems.push_back("missing parameters " + join(missing));
        if (!unexpected.empty()) problems.push_back("unexpected tensors " + join(unexpected));
        for (const auto& m : mismatched) problems.push_back(m);
        std::string message = path + ": the file does not match the model: ";
        for (std::size_t i = 0; i < problems.size(); ++i) message += (i == 0 ? "" : "; ") + problems[i];
        throw Error(message);
    }
    // Convert everything before setting anything, so a failure leaves the model as it was.
    std::vector<xt::xarray<T>> values;
    for (const auto& [name, var] : params)
        values.push_back(convert<T>(file.tensors.at(name), path + ": parameter " + quote(name)));
    for (std::size_t i = 0; i < params.size(); ++i) params[i].second.set_value(values[i]);
}

namespace detail {

void fail_writes_after(std::size_t bytes)
{
    fail_writes_after_bytes = bytes;
}

}  // namespace detail

#define TAPEGRAD_IO_ELEMENT(T)                                                                                         \
    template Tensor Tensor::from<T>(const xt::xarray<T>& array);                                                       \
    template xt::xarray<T> Tensor::to<T>() const;
TAPEGRAD_IO_ELEMENT(float)
TAPEGRAD_IO_ELEMENT(double)
TAPEGRAD_IO_ELEMENT(std::int64_t)
TAPEGRAD_IO_ELEMENT(std::int32_t)
TAPEGRAD_IO_ELEMENT(std::uint8_t)
#undef TAPEGRAD_IO_ELEMENT

#define TAPEGRAD_IO_MODEL(T)                                                                                           \
    template void save_parameters<T>(const std::string&, const nn::Module<T>&, std::map<std::string, std::string>);    \
    template void load_parameters<T>(const std::string&, nn::Module<T>&);
TAPEGRAD_IO_MODEL(float)
TAPEGRAD_IO_MODEL(double)
#undef TAPEGRAD_IO_MODEL

}  // namespace tg::io
