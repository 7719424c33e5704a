#pragma once
// Private to src/io/: what the files of tg::io share (byte codecs, tensor checks, the
// checksum, serialisation). Not installed, and nothing here is part of the public API.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/io.hpp"
#include "tapegrad/nn.hpp"

struct zip;  // libzip's archive (zip_t), opened by ZipReader

namespace tg::io::detail {

// The reserved metadata entry that holds the checksum (checksum() leaves it out).
inline const std::string checksum_key = "tapegrad.crc32";

inline std::string quote(const std::string& s)
{
    return "'" + s + "'";
}

// --- bytes ----------------------------------------------------------------------------

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

// --- defined in tensor.cpp -----------------------------------------------------------

// product(shape) * element size, or nullopt when it overflows.
std::optional<std::size_t> byte_count(const std::vector<std::size_t>& shape, Dtype dtype);

// Throws unless t.bytes holds exactly what t's shape and dtype need; `where` starts the message.
void check_bytes(const Tensor& t, const std::string& where);

// The elements of t as an array of T (see Tensor::to); `where` starts every message.
// Instantiated in tensor.cpp for the io element types.
template <class T> xt::xarray<T> convert(const Tensor& t, const std::string& where);

// --- defined in parameters.cpp -------------------------------------------------------

// A module buffer's value read from a file, checked but not yet set (loading is all or
// nothing: everything is read and checked before anything changes).
template <class T> struct BufferValue {
    nn::BufferRef<T> ref;
    xt::xarray<T> values;
    std::int64_t count = 0;
    void assign() const;
};

// The tensor that stores a buffer (the model's dtype; a count as a rank-0 I64).
template <class T> Tensor buffer_tensor(const nn::BufferRef<T>& buffer);

// Reads buffer `name` from `t` into `out`; returns what is wrong ("" when nothing is), e.g.
// "buffer 'running_mean' is [3] in the file but [4] in the model". `where` starts conversion errors.
template <class T>
std::string read_buffer(const Tensor& t, const std::string& name, const nn::BufferRef<T>& buffer,
                        const std::string& where, BufferValue<T>& out);

// --- defined in checksum.cpp ---------------------------------------------------------

// The CRC-32, as 8 lowercase hex digits, of the canonical serialisation of the tensors and
// of every metadata entry but checksum_key.
std::string checksum(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata);

// --- defined in safetensors.cpp ------------------------------------------------------

// serialize(), with `where` (the path, or "serialize") starting every message.
std::string serialize_as(const File& file, const std::string& where);

// --- defined in file.cpp -------------------------------------------------------------

// The whole file at `path`; `where` starts every message.
std::string read_file(const std::string& path, const std::string& where);

// Writes `bytes` to `path` atomically (temporary file, fsync, rename; see save()), failing
// after `fail_after` bytes when given (the fail_writes_after hook); `where` starts every message.
void write_atomically(const std::string& path, const std::string& bytes, std::optional<std::size_t> fail_after,
                      const std::string& where);

// Takes the fail_writes_after hook: the value it was set to (once), clearing it.
std::optional<std::size_t> take_write_failure();

// --- defined in torch.cpp ------------------------------------------------------------

// True when the bytes start as a zip archive or a legacy torch.save file does.
bool looks_like_torch(const std::string& bytes);

// The file at `path` as a torch.save file when looks_like_torch(), else as safetensors.
File load_by_content(const std::string& path);

// --- defined in zip.cpp (on libzip) --------------------------------------------------

// One entry of a zip archive, as its central directory describes it.
struct ZipEntry {
    std::string name;
    std::uint64_t index = 0;   // libzip's index of the entry
    std::uint16_t method = 0;  // 0 stored, 8 deflated
    bool encrypted = false;
    std::uint32_t crc = 0;
    std::uint64_t compressed = 0, size = 0;
};

// Closes a libzip archive without writing it.
struct ZipCloser {
    void operator()(::zip* archive) const;
};

// A zip archive in memory (read through libzip from `bytes`, which must outlive it). The
// constructor reads the central directory (zip64 too) and checks every local header against
// it; read() refuses methods other than stored and deflated and sizes the archive cannot
// hold, then inflates the entry and verifies its CRC-32. Messages start with `where`.
class ZipReader {
public:
    ZipReader(const std::string& bytes, std::string where);
    const std::vector<ZipEntry>& entries() const { return entries_; }
    // The entry named `name`, or nullptr.
    const ZipEntry* find(const std::string& name) const;
    std::string read(const ZipEntry& entry) const;

private:
    const std::string& bytes_;
    std::string where_;
    std::unique_ptr<::zip, ZipCloser> archive_;
    std::vector<ZipEntry> entries_;
    std::map<std::string, std::size_t> index_;
};

// One entry to write: its name and bytes (not copied).
struct ZipInput {
    std::string name;
    const unsigned char* data;
    std::size_t size;
};

// A zip archive of stored (uncompressed) entries, written by libzip, each entry's data
// aligned to 64 bytes in the archive (padding in the local header's extra field, as PyTorch's
// writer does). libzip writes zip64 records where sizes, offsets or the entry count need
// them; `force_zip64` makes it write a zip64 extra field into every local header (its
// central directory and end records stay zip64-free unless the archive needs them).
// Throws, with `where` starting the message, for an empty list or when libzip fails.
std::string zip_archive(const std::vector<ZipInput>& entries, bool force_zip64, const std::string& where);

}  // namespace tg::io::detail
