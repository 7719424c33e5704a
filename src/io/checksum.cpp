// tg::io integrity: zlib's CRC-32 over a canonical serialisation of a file's tensors and
// metadata (see io.hpp), which safetensors.cpp writes and verifies.

#include <zlib.h>

#include <cstdio>

#include "io/internal.hpp"

namespace tg::io::detail {

namespace {

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

}  // namespace

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

}  // namespace tg::io::detail
