#pragma once
/// \file io.hpp
/// Checkpoints in the safetensors format (the format of Hugging Face and PyTorch's
/// `safetensors` package) and in PyTorch's own `torch.save` format: read and write files
/// other tools can open, and save and load a model's parameters by name.
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
/// `source` given); writing errors start with the path (serialize(): "serialize"). The
/// torch functions start theirs with the function's name: `load_torch: model.pt: ...`.

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

/// Reads the bytes of a file written by PyTorch's `torch.save` (the zip format of PyTorch 1.6
/// and later): a state_dict, an optimizer's state_dict, or any nesting of dicts, lists and
/// tuples holding tensors and plain values. Nested keys are joined with "." (integer keys
/// and list positions in decimal: "state.0.exp_avg", "param_groups.0.lr"; a bare tensor is
/// named ""). Tensors go to File::tensors, as PyTorch sees them: a view (a slice, a
/// transposed tensor, several tensors sharing one storage) loads as its own row-major
/// elements. Every other leaf goes to File::metadata as text: int "3", float as Python
/// prints it "0.001", bool "True", None "None", str as it is. Empty dicts and lists leave
/// no entry; attributes of a dict (a state_dict's `_metadata`) are not entries, except the
/// "tapegrad_metadata" attribute save_torch writes, whose entries go to File::metadata.
///
/// Safe for files from anywhere: the pickle is interpreted, never executed, and only what
/// PyTorch's `weights_only=True` allows for tensors is accepted (collections.OrderedDict,
/// torch._utils._rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter, torch.Size and
/// the storage types torch.FloatStorage, DoubleStorage, HalfStorage, BFloat16Storage,
/// LongStorage, IntStorage, ShortStorage, CharStorage, ByteStorage, BoolStorage); any other
/// global (a function, a class) is refused, naming it. Dtypes: float32, float64, float16,
/// bfloat16, int64, int32, int16, int8, uint8, bool (Dtype::f32 ... Dtype::boolean); others
/// (complex, quantized) are refused, naming the tensor. Also refused, with a message naming
/// `source` and the problem: the pre-1.6 format (the message says how to convert it),
/// truncated or corrupt archives (every entry's CRC-32 is checked), a missing data.pkl or
/// storage, unknown pickle opcodes, views that reach past their storage, sizes that
/// overflow, keys that collide once joined, and tensors that add up to more than twice the
/// file's size plus 64 MiB (only views that repeat their storage's elements, with stride 0 or
/// many views of one storage, can). Entries may be stored or deflated; zip64 and
/// big-endian files (a "byteorder" entry of "big") are read.
File parse_torch(const std::string& bytes, const std::string& source);

/// Reads the file at `path` (see parse_torch()).
File load_torch(const std::string& path);

/// The bytes of a torch.save file holding `file`, which `torch.load(path, weights_only=True)`
/// reads as a state_dict: a collections.OrderedDict of the tensors by name (in name order),
/// so `model.load_state_dict(torch.load(path))` takes it. The metadata, as strings, is the
/// state_dict's attribute "tapegrad_metadata" (a dict; load_state_dict ignores it, and
/// load_torch reads it back), so that parse_torch(serialize_torch(f)) == f. Storages are
/// little-endian, one per tensor, aligned to 64 bytes; the archive is stored (uncompressed),
/// with zip64 records when the file needs them. Throws tg::Error for a tensor whose bytes
/// disagree with its shape, and for a name or metadata entry that is not valid UTF-8.
std::string serialize_torch(const File& file);

/// Writes `file` to `path` as serialize_torch() does, atomically as save() does.
void save_torch(const std::string& path, const File& file);

/// Saves the module's named_parameters() and named_buffers() (dtype F32 for float, F64 for
/// double; a count buffer as a rank-0 I64), with the given metadata: the names and layout
/// of a PyTorch state_dict for the same architecture, so either side loads the other's file.
/// The format follows the path: a path ending in ".pt", ".pth" or ".bin" gets a torch.save
/// file (save_torch()), any other path a safetensors file (save()).
template <class T>
void save_parameters(const std::string& path, const nn::Module<T>& module,
                     std::map<std::string, std::string> metadata = {});

/// Loads parameters and buffers by name (named_parameters(), named_buffers()), converting
/// the dtype as Tensor::to does (an F32 file loads into a double model). The format follows
/// the file's content, whatever its name: a zip archive is read as a torch.save file
/// (load_torch(); metadata and other non-tensor entries are ignored), anything else as
/// safetensors (load()). The file must hold
/// exactly the module's parameters and buffers with their shapes; otherwise tg::Error lists every missing name,
/// unexpected name and shape mismatch. All or nothing: nothing is set unless everything checks out.
template <class T> void load_parameters(const std::string& path, nn::Module<T>& module);

namespace detail {

/// Test hook: the next save() or save_torch() on this thread fails (throws tg::Error) after
/// writing `bytes` bytes of the temporary file, as a full disk would. That call clears the
/// hook whatever happens, so it acts once.
void fail_writes_after(std::size_t bytes);

/// Test hook: while on, serialize_torch() and save_torch() on this thread write a zip64
/// extra field into every entry's local header, as they do for an entry of 4 GiB or more.
/// (The zip64 records of the central directory and the end are written only where the
/// archive needs them: libzip, which writes the archive, decides those itself.)
void force_zip64(bool on);

}  // namespace detail

}  // namespace tg::io
