// tg::io zip archives, the container of torch.save files: a reader of the central directory
// (zip64 included) whose entries are stored or deflated, and a writer of stored entries.
// Reading trusts nothing: every offset and size is checked against the bytes before use,
// an inflated entry must have exactly its declared size, and every CRC-32 is verified.

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"

namespace tg::io::detail {

namespace {

constexpr std::uint32_t local_signature = 0x04034b50;
constexpr std::uint32_t central_signature = 0x02014b50;
constexpr std::uint32_t end_signature = 0x06054b50;
constexpr std::uint32_t end64_signature = 0x06064b50;
constexpr std::uint32_t locator64_signature = 0x07064b50;
constexpr std::uint16_t zip64_extra_id = 0x0001;
constexpr std::uint16_t padding_extra_id = 0x4246;  // as PyTorch's writer: aligns the data
constexpr std::uint32_t u32_max = 0xffffffffu;
constexpr std::size_t alignment = 64;

// Reads little-endian fields at checked positions of the bytes.
class Cursor {
public:
    Cursor(const std::string& bytes, const std::string& where) : bytes_(bytes), where_(where) {}

    // Throws unless [pos, pos + n) lies inside the bytes.
    void need(std::uint64_t pos, std::uint64_t n, const std::string& what) const
    {
        if (pos > bytes_.size() || n > bytes_.size() - pos) {
            throw Error(where_ + ": " + what + " at byte " + std::to_string(pos) + " (" + std::to_string(n) +
                        " bytes) lies past the end of the " + std::to_string(bytes_.size()) +
                        "-byte file (truncated?)");
        }
    }
    template <class U> U at(std::uint64_t pos) const
    {
        return load_le<U>(reinterpret_cast<const unsigned char*>(bytes_.data()) + pos);
    }

private:
    const std::string& bytes_;
    const std::string& where_;
};

std::string printable_name(const std::string& name)
{
    std::string out;
    for (unsigned char c : name) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            static const char digits[] = "0123456789abcdef";
            out += "\\x";
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return quote(out);
}

std::uint32_t crc_of(const unsigned char* data, std::size_t size)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    // crc32_z takes a size_t; a null pointer would reset it, so empty data is skipped.
    if (size > 0) crc = crc32_z(crc, data, size);
    return static_cast<std::uint32_t>(crc);
}

std::string inflate_raw(const unsigned char* data, std::uint64_t compressed, std::uint64_t size,
                        const std::string& where)
{
    std::string out(size, '\0');
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw Error(where + ": zlib cannot start inflating");
    std::uint64_t in_done = 0, out_done = 0;
    int status = Z_OK;
    // zlib counts in uInt: feed and drain at most 1 GiB at a time.
    constexpr std::uint64_t step = 1u << 30;
    while (status == Z_OK) {
        const std::uint64_t in_now = std::min(step, compressed - in_done);
        const std::uint64_t out_now = std::min(step, size - out_done);
        z.next_in = const_cast<Bytef*>(data + in_done);
        z.avail_in = static_cast<uInt>(in_now);
        // One spare byte past the declared size shows a stream that is longer than declared.
        unsigned char spare = 0;
        z.next_out = out_now > 0 ? reinterpret_cast<Bytef*>(&out[out_done]) : &spare;
        z.avail_out = out_now > 0 ? static_cast<uInt>(out_now) : 1;
        status = inflate(&z, Z_NO_FLUSH);
        in_done += in_now - z.avail_in;
        if (out_now > 0) {
            out_done += out_now - z.avail_out;
        } else if (z.avail_out == 0) {
            inflateEnd(&z);
            throw Error(where + ": inflates to more than its declared " + std::to_string(size) + " bytes");
        }
        if (status == Z_BUF_ERROR && in_now == 0) break;  // no input left: truncated stream
        if (status == Z_BUF_ERROR) status = Z_OK;
    }
    inflateEnd(&z);
    if (status != Z_STREAM_END) {
        throw Error(where + ": the deflated data is corrupt or truncated (zlib: " +
                    (z.msg != nullptr ? std::string(z.msg) : "stream ends early") + ")");
    }
    if (out_done != size) {
        throw Error(where + ": inflates to " + std::to_string(out_done) + " bytes, not its declared " +
                    std::to_string(size));
    }
    return out;
}

}  // namespace

ZipReader::ZipReader(const std::string& bytes, std::string where) : bytes_(bytes), where_(std::move(where))
{
    const Cursor c(bytes_, where_);
    const std::uint64_t n = bytes_.size();
    if (n < 22) {
        throw Error(where_ + ": the file has " + std::to_string(n) +
                    " bytes, too few for a zip archive's end record (truncated?)");
    }
    // The end record is the last 22 bytes, unless a comment (at most 65535 bytes) follows it.
    std::uint64_t end = n - 22;
    const std::uint64_t lowest = n - 22 > 65535 ? n - 22 - 65535 : 0;
    while (c.at<std::uint32_t>(end) != end_signature || end + 22 + c.at<std::uint16_t>(end + 20) != n) {
        if (end == lowest) {
            throw Error(where_ + ": no zip end record (the archive is truncated or is no zip archive)");
        }
        --end;
    }
    if (c.at<std::uint16_t>(end + 4) != 0 || c.at<std::uint16_t>(end + 6) != 0) {
        throw Error(where_ + ": a zip archive split over several disks is not supported");
    }
    std::uint64_t count = c.at<std::uint16_t>(end + 10);
    std::uint64_t dir_size = c.at<std::uint32_t>(end + 12);
    std::uint64_t dir_offset = c.at<std::uint32_t>(end + 16);
    std::uint64_t dir_end = end;  // where the central directory must end
    // zip64 end records: PyTorch's writer adds them to every archive, and any writer must
    // when the end record's fields overflow (then they hold 0xffff or 0xffffffff).
    const bool saturated = count == 0xffff || dir_size == u32_max || dir_offset == u32_max;
    const bool located = end >= 20 && c.at<std::uint32_t>(end - 20) == locator64_signature;
    if (saturated && !located) {
        throw Error(where_ + ": the zip end record asks for zip64 records, but there is no zip64 locator");
    }
    if (located) {
        const std::uint64_t record = c.at<std::uint64_t>(end - 12);
        if (end < 20 + 56 || record > end - 20 - 56 || c.at<std::uint32_t>(record) != end64_signature) {
            throw Error(where_ + ": the zip64 locator points at byte " + std::to_string(record) +
                        ", where there is no zip64 end record");
        }
        count = c.at<std::uint64_t>(record + 32);
        dir_size = c.at<std::uint64_t>(record + 40);
        dir_offset = c.at<std::uint64_t>(record + 48);
        dir_end = record;
    }
    if (dir_offset > dir_end || dir_size != dir_end - dir_offset) {
        throw Error(where_ + ": the central directory (" + std::to_string(dir_size) + " bytes at byte " +
                    std::to_string(dir_offset) + ") does not end where the end record begins (byte " +
                    std::to_string(dir_end) + "): truncated or corrupt");
    }
    if (count > dir_size / 46) {
        throw Error(where_ + ": the end record counts " + std::to_string(count) +
                    " entries, more than the central directory of " + std::to_string(dir_size) + " bytes can hold");
    }

    std::uint64_t pos = dir_offset;
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::string what = "central directory entry " + std::to_string(i);
        c.need(pos, 46, what);
        if (pos + 46 > dir_end || c.at<std::uint32_t>(pos) != central_signature) {
            throw Error(where_ + ": " + what + " (byte " + std::to_string(pos) + ") is not a central directory entry");
        }
        ZipEntry e;
        e.flags = c.at<std::uint16_t>(pos + 8);
        e.method = c.at<std::uint16_t>(pos + 10);
        e.crc = c.at<std::uint32_t>(pos + 16);
        e.compressed = c.at<std::uint32_t>(pos + 20);
        e.size = c.at<std::uint32_t>(pos + 24);
        const std::uint64_t name_size = c.at<std::uint16_t>(pos + 28);
        const std::uint64_t extra_size = c.at<std::uint16_t>(pos + 30);
        const std::uint64_t comment_size = c.at<std::uint16_t>(pos + 32);
        e.local_offset = c.at<std::uint32_t>(pos + 42);
        if (pos + 46 + name_size + extra_size + comment_size > dir_end) {
            throw Error(where_ + ": " + what + " reaches past the end of the central directory");
        }
        e.name = bytes_.substr(pos + 46, name_size);
        // zip64: the fields that hold 0xffffffff are in the extra field, in this order.
        std::uint64_t extra = pos + 46 + name_size;
        const std::uint64_t extra_end = extra + extra_size;
        while (extra + 4 <= extra_end) {
            const std::uint16_t id = c.at<std::uint16_t>(extra);
            const std::uint64_t size = c.at<std::uint16_t>(extra + 2);
            if (extra + 4 + size > extra_end) {
                throw Error(where_ + ": the extra field of entry " + printable_name(e.name) + " is truncated");
            }
            if (id == zip64_extra_id) {
                std::uint64_t field = extra + 4;
                for (std::uint64_t* value : {&e.size, &e.compressed, &e.local_offset}) {
                    if (*value != u32_max) continue;
                    if (field + 8 > extra + 4 + size) {
                        throw Error(where_ + ": the zip64 extra field of entry " + printable_name(e.name) +
                                    " is too short for the sizes it must hold");
                    }
                    *value = c.at<std::uint64_t>(field);
                    field += 8;
                }
            }
            extra += 4 + size;
        }
        if (e.local_offset > dir_offset || e.compressed > dir_offset - e.local_offset) {
            throw Error(where_ + ": entry " + printable_name(e.name) + " (" + std::to_string(e.compressed) +
                        " bytes at byte " + std::to_string(e.local_offset) +
                        ") does not lie before the central directory");
        }
        if (!index_.emplace(e.name, entries_.size()).second) {
            throw Error(where_ + ": the archive holds two entries named " + printable_name(e.name));
        }
        entries_.push_back(std::move(e));
        pos += 46 + name_size + extra_size + comment_size;
    }
}

const ZipEntry* ZipReader::find(const std::string& name) const
{
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string ZipReader::read(const ZipEntry& e) const
{
    const Cursor c(bytes_, where_);
    const std::string what = "entry " + printable_name(e.name);
    c.need(e.local_offset, 30, "the local header of " + what);
    if (c.at<std::uint32_t>(e.local_offset) != local_signature) {
        throw Error(where_ + ": " + what + ": no local header at byte " + std::to_string(e.local_offset));
    }
    const std::uint64_t name_size = c.at<std::uint16_t>(e.local_offset + 26);
    const std::uint64_t extra_size = c.at<std::uint16_t>(e.local_offset + 28);
    const std::uint64_t data = e.local_offset + 30 + name_size + extra_size;
    c.need(e.local_offset + 30, name_size + extra_size, "the local header of " + what);
    if (bytes_.compare(e.local_offset + 30, name_size, e.name) != 0) {
        throw Error(where_ + ": " + what + ": its local header names " +
                    printable_name(bytes_.substr(e.local_offset + 30, name_size)));
    }
    c.need(data, e.compressed, "the data of " + what);
    if ((e.flags & 1) != 0) throw Error(where_ + ": " + what + " is encrypted");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data()) + data;
    std::string out;
    if (e.method == 0) {
        if (e.compressed != e.size) {
            throw Error(where_ + ": " + what + " is stored, but its sizes differ (" + std::to_string(e.compressed) +
                        " and " + std::to_string(e.size) + " bytes)");
        }
        out.assign(reinterpret_cast<const char*>(p), e.size);
    } else if (e.method == 8) {
        // Deflate expands at most 1032 to 1: a larger declared size is a lie, not allocated.
        if (e.size / 1032 > e.compressed + 1) {
            throw Error(where_ + ": " + what + " declares " + std::to_string(e.size) + " bytes, more than its " +
                        std::to_string(e.compressed) + " deflated bytes can hold");
        }
        out = inflate_raw(p, e.compressed, e.size, where_ + ": " + what);
    } else {
        throw Error(where_ + ": " + what + " uses compression method " + std::to_string(e.method) +
                    " (only stored and deflated entries are read)");
    }
    const std::uint32_t crc = crc_of(reinterpret_cast<const unsigned char*>(out.data()), out.size());
    if (crc != e.crc) {
        char text[64];
        std::snprintf(text, sizeof text, "stored %08x, computed %08x", e.crc, crc);
        throw Error(where_ + ": " + what + ": CRC-32 mismatch, the archive is corrupt (" + text + ")");
    }
    return out;
}

std::string zip_archive(const std::vector<ZipInput>& entries, bool force_zip64)
{
    struct Written {
        std::uint32_t crc;
        std::uint64_t offset;
    };
    std::vector<Written> written;
    std::string out;
    auto put16 = [&](std::uint64_t v) {
        unsigned char b[2];
        store_le(b, static_cast<std::uint16_t>(v));
        out.append(reinterpret_cast<const char*>(b), 2);
    };
    auto put32 = [&](std::uint64_t v) {
        unsigned char b[4];
        store_le(b, static_cast<std::uint32_t>(v));
        out.append(reinterpret_cast<const char*>(b), 4);
    };
    auto put64 = [&](std::uint64_t v) {
        unsigned char b[8];
        store_le(b, v);
        out.append(reinterpret_cast<const char*>(b), 8);
    };
    auto big = [](std::uint64_t v) { return v >= u32_max; };
    constexpr std::uint16_t dos_date = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: the files are reproducible

    for (const ZipInput& e : entries) {
        const std::uint64_t offset = out.size();
        const bool zip64 = force_zip64 || big(e.size);
        const std::uint32_t crc = crc_of(e.data, e.size);
        written.push_back({crc, offset});
        const std::uint64_t zip64_size = zip64 ? 20 : 0;
        std::uint64_t pad = (alignment - (offset + 30 + e.name.size() + zip64_size) % alignment) % alignment;
        if (pad != 0 && pad < 4) pad += alignment;
        put32(local_signature);
        put16(zip64 ? 45 : 20);
        put16(0);  // flags
        put16(0);  // stored
        put16(0);  // time
        put16(dos_date);
        put32(crc);
        put32(zip64 ? u32_max : e.size);
        put32(zip64 ? u32_max : e.size);
        put16(e.name.size());
        put16(zip64_size + pad);
        out += e.name;
        if (zip64) {
            put16(zip64_extra_id);
            put16(16);
            put64(e.size);
            put64(e.size);
        }
        if (pad != 0) {
            put16(padding_extra_id);
            put16(pad - 4);
            out.append(pad - 4, '\0');
        }
        out.append(reinterpret_cast<const char*>(e.data), e.size);
    }

    const std::uint64_t dir_offset = out.size();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const ZipInput& e = entries[i];
        const bool zip64 = force_zip64 || big(e.size) || big(written[i].offset);
        put32(central_signature);
        put16(zip64 ? 45 : 20);  // made by
        put16(zip64 ? 45 : 20);  // needed
        put16(0);
        put16(0);
        put16(0);
        put16(dos_date);
        put32(written[i].crc);
        put32(zip64 ? u32_max : e.size);
        put32(zip64 ? u32_max : e.size);
        put16(e.name.size());
        put16(zip64 ? 28 : 0);
        put16(0);  // comment
        put16(0);  // disk
        put16(0);  // internal attributes
        put32(0);  // external attributes
        put32(zip64 ? u32_max : written[i].offset);
        out += e.name;
        if (zip64) {
            put16(zip64_extra_id);
            put16(24);
            put64(e.size);
            put64(e.size);
            put64(written[i].offset);
        }
    }
    const std::uint64_t dir_size = out.size() - dir_offset;
    const bool zip64_end = force_zip64 || entries.size() >= 0xffff || big(dir_offset) || big(dir_size);
    if (zip64_end) {
        const std::uint64_t record = out.size();
        put32(end64_signature);
        put64(44);  // the record's size after this field
        put16(45);
        put16(45);
        put32(0);
        put32(0);
        put64(entries.size());
        put64(entries.size());
        put64(dir_size);
        put64(dir_offset);
        put32(locator64_signature);
        put32(0);
        put64(record);
        put32(1);
    }
    put32(end_signature);
    put16(0);
    put16(0);
    put16(zip64_end ? 0xffff : entries.size());
    put16(zip64_end ? 0xffff : entries.size());
    put32(zip64_end ? u32_max : dir_size);
    put32(zip64_end ? u32_max : dir_offset);
    put16(0);
    return out;
}

}  // namespace tg::io::detail
