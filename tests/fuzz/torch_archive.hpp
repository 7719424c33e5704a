#pragma once
// Hand-made torch.save archives for the tests and the fuzz seeds: a pickle assembled opcode
// by opcode (so that a test can write what PyTorch never would), and a zip of stored
// entries written here, independently of the library's own writer.

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace tg_torch {

class Pickle {
public:
    Pickle() { raw(std::string("\x80\x02", 2)); }

    Pickle& raw(const std::string& bytes)
    {
        out_ += bytes;
        return *this;
    }
    Pickle& op(char c)
    {
        out_ += c;
        return *this;
    }
    // BINUNICODE
    Pickle& str(const std::string& s)
    {
        op('X');
        le(s.size(), 4);
        return raw(s);
    }
    // BININT, or LONG1 with 8 bytes beyond 32 bits
    Pickle& integer(std::int64_t v)
    {
        if (v >= INT32_MIN && v <= INT32_MAX) {
            op('J');
            le(static_cast<std::uint64_t>(v), 4);
        } else {
            op('\x8a');
            op('\x08');
            le(static_cast<std::uint64_t>(v), 8);
        }
        return *this;
    }
    // BINFLOAT (big-endian)
    Pickle& real(double v)
    {
        std::uint64_t u = 0;
        std::memcpy(&u, &v, sizeof u);
        op('G');
        for (int i = 7; i >= 0; --i) out_ += static_cast<char>((u >> (8 * i)) & 0xff);
        return *this;
    }
    Pickle& global(const std::string& module, const std::string& name)
    {
        return op('c').raw(module + "\n" + name + "\n");
    }
    // MARK, the ints, TUPLE
    Pickle& ints(const std::vector<std::int64_t>& values)
    {
        op('(');
        for (std::int64_t v : values) integer(v);
        return op('t');
    }
    // BINPUT and BINGET of memo entry i
    Pickle& put(unsigned char i) { return op('q').op(static_cast<char>(i)); }
    Pickle& get(unsigned char i) { return op('h').op(static_cast<char>(i)); }
    // collections.OrderedDict()
    Pickle& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
    // torch._utils._rebuild_tensor_v2 of a view of storage `key` (`type` e.g. "FloatStorage").
    Pickle& tensor(const std::string& key, const std::string& type, std::int64_t numel, std::int64_t offset,
                   const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides)
    {
        global("torch._utils", "_rebuild_tensor_v2").op('(');
        op('(').str("storage").global("torch", type).str(key).str("cpu").integer(numel).op('t').op('Q');
        integer(offset).ints(shape).ints(strides).op('\x89').ordered_dict();
        return op('t').op('R');
    }
    std::string bytes() const { return out_; }
    // The pickle with STOP.
    std::string done() const { return out_ + "."; }

private:
    void le(std::uint64_t v, int n)
    {
        for (int i = 0; i < n; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
    }
    std::string out_;
};

inline void put_le(std::string& out, std::uint64_t v, int n)
{
    for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A zip archive of stored entries, in the order given.
inline std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& entries)
{
    std::string out, dir;
    for (const auto& [name, data] : entries) {
        const auto crc = static_cast<std::uint32_t>(
            crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
        // The fields both headers share: flags, method (stored), time and date, CRC, both
        // sizes, name length, extra length.
        const std::size_t size = data.size(), name_size = name.size();
        auto common = [&](std::string& to) {
            put_le(to, 0, 2);
            put_le(to, 0, 2);
            put_le(to, 0, 4);
            put_le(to, crc, 4);
            put_le(to, size, 4);
            put_le(to, size, 4);
            put_le(to, name_size, 2);
            put_le(to, 0, 2);
        };
        const std::size_t offset = out.size();
        put_le(out, 0x04034b50, 4);
        put_le(out, 20, 2);
        common(out);
        out += name;
        out += data;
        put_le(dir, 0x02014b50, 4);
        put_le(dir, 20, 2);
        put_le(dir, 20, 2);
        common(dir);
        put_le(dir, 0, 2);
        put_le(dir, 0, 2);
        put_le(dir, 0, 2);
        put_le(dir, 0, 4);
        put_le(dir, offset, 4);
        dir += name;
    }
    const std::size_t dir_offset = out.size();
    out += dir;
    put_le(out, 0x06054b50, 4);
    put_le(out, 0, 2);
    put_le(out, 0, 2);
    put_le(out, entries.size(), 2);
    put_le(out, entries.size(), 2);
    put_le(out, dir.size(), 4);
    put_le(out, dir_offset, 4);
    put_le(out, 0, 2);
    return out;
}

// A torch.save archive: archive/data.pkl, archive/data/<key> for each storage, archive/version.
inline std::string archive(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages)
{
    std::vector<std::pair<std::string, std::string>> entries{{"archive/data.pkl", pickle}};
    for (const auto& [key, bytes] : storages) entries.emplace_back("archive/data/" + key, bytes);
    entries.emplace_back("archive/version", "3\n");
    return zip_stored(entries);
}

// `n` float32 values 0, 1, 2, ... as little-endian bytes.
inline std::string floats(std::size_t n)
{
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        const auto f = static_cast<float>(i);
        std::uint32_t u = 0;
        std::memcpy(&u, &f, sizeof u);
        put_le(out, u, 4);
    }
    return out;
}

}  // namespace tg_torch
