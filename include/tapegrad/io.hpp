#pragma once
/// \file io.hpp
/// Checkpoints in the safetensors format (the format of Hugging Face and PyTorch's
/// `safetensors` package): read and write files other tools can open, and save and load a
/// model's parameters by name.
///
/// \code
/// tg::io::save_parameters("model.safetensors", model, {{"epoch", "12"}});
/// tg::io::load_parameters("model.safetensors", model);   // all or nothing
///
/// tg::io::File f = tg::io::load("other.safetensors");     // any safetensors file
/// xt::xarray<float> w = f.tensors.at("w").to<float>();     // F16/BF16/I64... convert
/// \endcode
///
/// A file is an 8-byte little-endian header length N, N bytes of JSON header
/// (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
/// "__metadata__": {"key": "value"}}`, padded with spaces to a multiple of 8), then the
/// data buffer, which the tensors' byte ranges cover exactly, without gaps or overlap.
///
/// Integrity: files written here carry two reserved metadata entries, "tapegrad.checksum"
/// (the algorithm, "crc32") and "tapegrad.crc32" (8 lowercase hex digits: zlib's CRC-32 of
/// a canonical serialisation of every tensor's name, dtype, shape and bytes and every other
/// metadata entry, in sorted order). Reading verifies the checksum when present and
/// removes both entries from File::metadata; files without them (written by other tools)
/// load normally. The marker entry guards the checksum entry: a file that has the marker
/// but no checksum was damaged (e.g. a flipped bit in the key "tapegrad.crc32").
///
/// Every error is a tg::Error. Reading errors start with the file's path (parse(): the
/// `source` given); writing errors start with the path (serialize(): "serialize").

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tg::nn {
template <class T> class Module;
}  // namespace tg::nn

namespace tg::io {

/// The element types of safetensors files (names "F64", "F32", "F16", "BF16", "I64",
/// "I32", "I16", "I8", "U8", "BOOL").
enum class Dtype { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

/// The safetensors name of a dtype, e.g. "F32".
const char* dtype_name(Dtype dtype);
/// Bytes per element (BOOL: 1).
std::size_t dtype_size(Dtype dtype);

/// One stored tensor, raw: elements little-endian, row-major.
struct Tensor {
    /// The element type.
    Dtype dtype = Dtype::f32;
    std::vector<std::size_t> shape;    ///< `{}` for a rank-0 scalar (one element)
    std::vector<unsigned char> bytes;  ///< product(shape) * dtype_size(dtype) bytes

    /// Number of elements: the product of the shape (1 for rank 0). Throws tg::Error
    /// when the product overflows.
    std::size_t numel() const;

    /// The array's elements, row-major. T is float (F32), double (F64), std::int64_t (I64),
    /// std::int32_t (I32) or std::uint8_t (U8).
    template <class T> static Tensor from(const xt::xarray<T>& array);

    /// The elements as an array of T (float, double, std::int64_t, std::int32_t or
    /// std::uint8_t), converting from any dtype: F16 and BF16 decode exactly; BOOL gives
    /// 0 and 1; integers round to the nearest float. Throws tg::Error, naming the element,
    /// instead of converting a value that T cannot hold: a finite value beyond a float's
    /// range, a non-integral, infinite, NaN or out-of-range value for an integer T, or a
    /// BOOL byte other than 0 and 1. Also throws when bytes.size() disagrees with the shape.
    template <class T> xt::xarray<T> to() const;
};

/// The contents of a safetensors file. Tensor names may be any UTF-8 string (the empty
/// string too, as in the reference implementation) except "__metadata__", which is the
/// header's metadata key.
struct File {
    /// The tensors by name.
    std::map<std::string, Tensor> tensors;
    std::map<std::string, std::string> metadata;  ///< without the reserved "tapegrad.*" entries
};

///@{
/// Equal when dtype, shape and bytes are equal (no conversion: F32 1.0 differs from F64 1.0).
bool operator==(const Tensor& a, const Tensor& b);
bool operator!=(const Tensor& a, const Tensor& b);
///@}
///@{
/// Equal when the tensors (by name) and the metadata are equal.
bool operator==(const File& a, const File& b);
bool operator!=(const File& a, const File& b);
///@}

/// The largest header accepted when reading (as the reference implementation): 100 MiB.
inline constexpr std::uint64_t max_header_bytes = 100ull * 1024 * 1024;

/// The bytes of a .safetensors file holding `file`, checksum entries added. Tensors are
/// laid out by element size (largest first), then name, so every tensor's data is aligned
/// to its element size in a file loaded at an 8-byte-aligned address. Throws tg::Error
/// for a tensor whose bytes disagree with its shape, a tensor named "__metadata__", a
/// metadata key "tapegrad.checksum" or "tapegrad.crc32" (reserved), or a name that is not
/// valid UTF-8.
std::string serialize(const File& file);

/// Reads the bytes of a .safetensors file. `source` (usually the path) starts every error
/// message. Rejects, never guesses: bad header length, header that is not a JSON object,
/// entries with missing or mistyped fields, unknown dtypes, duplicate keys (anywhere in the
/// header), byte ranges that fall outside the data buffer, overlap, leave gaps or disagree
/// with the shape and dtype, malformed metadata, and a checksum mismatch. Unknown fields
/// inside a tensor entry are ignored (as the reference implementation does).
File parse(const std::string& bytes, const std::string& source);

/// Writes `file` to `path` atomically: the bytes go to a new temporary file in the same
/// directory, which is flushed to disk and then renamed over `path`. On failure the
/// temporary is removed, any previous file at `path` is left untouched, and tg::Error
/// names the path.
void save(const std::string& path, const File& file);

/// Reads and parses the file at `path` (see parse()).
File load(const std::string& path);

/// Saves the module's named_parameters() and named_buffers() (dtype F32 for float, F64 for
/// double; a count buffer as a rank-0 I64), with the given metadata: the names and layout
/// of a PyTorch state_dict for the same architecture, so either side loads the other's file.
template <class T>
void save_parameters(const std::string& path, const nn::Module<T>& module,
                     std::map<std::string, std::string> metadata = {});

/// Loads parameters and buffers by name (named_parameters(), named_buffers()), converting
/// the dtype as Tensor::to does (an F32 file loads into a double model). The file must hold
/// exactly the module's parameters and buffers with their shapes; otherwise tg::Error lists every missing name,
/// unexpected name and shape mismatch. All or nothing: nothing is set unless everything checks out.
template <class T> void load_parameters(const std::string& path, nn::Module<T>& module);

namespace detail {

/// Test hook: the next save() on this thread fails (throws tg::Error) after writing
/// `bytes` bytes of the temporary file, as a full disk would. That save() clears the hook
/// whatever happens, so it acts once.
void fail_writes_after(std::size_t bytes);

}  // namespace detail

}  // namespace tg::io
