// tg::io zip archives, the container of torch.save files, on libzip: reading an archive held
// in memory (stored and deflated entries, zip64 included) and writing one of stored entries.
// libzip finds the central directory, checks each local header against it (ZIP_CHECKCONS),
// inflates and verifies every CRC-32; what is checked here is what libzip leaves to its caller:
// the methods and sizes an entry may have before anything is allocated for it, and the
// alignment of the entries' data in what we write. Every libzip error becomes a tg::Error
// that says in plain words what is wrong.

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"

namespace tg::io::detail {

void ZipCloser::operator()(::zip* archive) const
{
    zip_discard(archive);  // nothing is written back: the writer closes its archive itself
}

namespace {

constexpr std::uint16_t padding_extra_id = 0x4246;  // as PyTorch's writer: aligns the data
constexpr std::size_t alignment = 64;
constexpr std::uint64_t u32_max = 0xffffffffu;
// Every entry is dated 1980-01-01 00:00 (DOS time 0): the files are reproducible.
constexpr std::uint16_t dos_time = 0, dos_date = (0 << 9) | (1 << 5) | 1;

// A zip_error_t that frees what libzip allocated in it.
struct ZipError {
    zip_error_t error;
    ZipError() { zip_error_init(&error); }
    ~ZipError() { zip_error_fini(&error); }
    ZipError(const ZipError&) = delete;
    ZipError& operator=(const ZipError&) = delete;
};

struct FileCloser {
    void operator()(zip_file_t* file) const { zip_fclose(file); }
};
struct SourceFree {
    void operator()(zip_source_t* source) const { zip_source_free(source); }
};

// What a libzip error code means for an archive we read or write, in plain words.
std::string problem(int code)
{
    switch (code) {
    case ZIP_ER_NOZIP:
        return "no zip end record (the archive is truncated or is no zip archive)";
    case ZIP_ER_INCONS:
        return "the zip archive is inconsistent: its end record, central directory and local headers disagree "
               "(truncated or corrupt)";
    case ZIP_ER_CRC:
        return "CRC-32 mismatch, the archive is corrupt";
    case ZIP_ER_ZLIB:
    case ZIP_ER_COMPRESSED_DATA:
        return "the deflated data is corrupt or truncated";
    case ZIP_ER_COMPNOTSUPP:
        return "its compression method is not supported";
    case ZIP_ER_ENCRNOTSUPP:
    case ZIP_ER_NOPASSWD:
    case ZIP_ER_WRONGPASSWD:
        return "it is encrypted";
    case ZIP_ER_MULTIDISK:
        return "a zip archive split over several disks is not supported";
    case ZIP_ER_EXISTS:
        return "the archive holds two entries of the same name";
    case ZIP_ER_EOF:
        return "the archive ends early (truncated?)";
    case ZIP_ER_READ:
    case ZIP_ER_SEEK:
    case ZIP_ER_TELL:
        return "reading the archive failed (an offset or size points outside it: truncated or corrupt)";
    case ZIP_ER_WRITE:
        return "writing the archive failed";
    case ZIP_ER_MEMORY:
        return "out of memory";
    default:
        return "libzip failed";
    }
}

// problem(), with libzip's own words for the error after it.
std::string describe(zip_error_t* error)
{
    return problem(zip_error_code_zip(error)) + " (libzip: " + zip_error_strerror(error) + ")";
}

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

// The first name that two entries of the archive share, found by opening it without
// ZIP_CHECKCONS (then libzip lets a name repeat): for the message when libzip refused it.
std::optional<std::string> repeated_name(const std::string& bytes)
{
    ZipError error;
    zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error.error);
    if (source == nullptr) return std::nullopt;
    zip_t* opened = zip_open_from_source(source, ZIP_RDONLY, &error.error);
    if (opened == nullptr) {
        zip_source_free(source);
        return std::nullopt;
    }
    const std::unique_ptr<zip_t, ZipCloser> archive(opened);
    std::set<std::string> seen;
    const zip_int64_t count = zip_get_num_entries(opened, 0);
    for (zip_int64_t i = 0; i < count; ++i) {
        const char* name = zip_get_name(opened, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
        if (name != nullptr && !seen.insert(name).second) return std::string(name);
    }
    return std::nullopt;
}

// An entry's bytes as a source that does not tell libzip its size: libzip then writes a zip64
// extra field into the entry's local header, as it must for an entry that may reach 4 GiB.
struct Unsized {
    const unsigned char* data;
    std::size_t size;
    std::size_t at = 0;
    ZipError error;
    Unsized(const unsigned char* d, std::size_t n) : data(d), size(n) {}
};

zip_int64_t unsized_source(void* state, void* data, zip_uint64_t length, zip_source_cmd_t command)
{
    auto& s = *static_cast<Unsized*>(state);
    switch (command) {
    case ZIP_SOURCE_OPEN:
        s.at = 0;
        return 0;
    case ZIP_SOURCE_READ: {
        const std::size_t n = std::min<std::uint64_t>(length, s.size - s.at);
        if (n > 0) std::memcpy(data, s.data + s.at, n);
        s.at += n;
        return static_cast<zip_int64_t>(n);
    }
    case ZIP_SOURCE_STAT: {
        auto* st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, length, &s.error.error);
        if (st == nullptr) return -1;
        zip_stat_init(st);  // no size: that is the point
        return sizeof(zip_stat_t);
    }
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&s.error.error, data, length);
    case ZIP_SOURCE_CLOSE:
    case ZIP_SOURCE_FREE:
        return 0;
    case ZIP_SOURCE_SUPPORTS:
        return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
                                              ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
    default:
        zip_error_set(&s.error.error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

// The padding (0, or 4 to 67 bytes: an extra field's header and zeros) that puts each entry's
// data at a multiple of `alignment`, given the bytes libzip adds to each local header's extra
// field itself (`own`: a zip64 extra field or nothing). libzip writes the local headers and
// data in the order added, from byte 0, each header 30 bytes + name + extra field.
std::vector<std::size_t> paddings(const std::vector<ZipInput>& entries, const std::vector<std::uint64_t>& own)
{
    std::vector<std::size_t> pad(entries.size());
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const std::uint64_t header = 30 + entries[i].name.size() + own[i];
        pad[i] = (alignment - (offset + header) % alignment) % alignment;
        if (pad[i] != 0 && pad[i] < 4) pad[i] += alignment;  // an extra field takes at least 4 bytes
        offset += header + pad[i] + entries[i].size;
    }
    return pad;
}

// Where libzip put each entry's local header: the data's offset, and the bytes of the extra
// field that are libzip's own (all but the padding). Throws unless the local headers follow
// one another as paddings() assumes.
struct Placed {
    std::uint64_t data, own;
};

std::vector<Placed> placement(const std::string& bytes, const std::vector<ZipInput>& entries, const std::string& where)
{
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::vector<Placed> out;
    std::uint64_t at = 0;
    for (const ZipInput& e : entries) {
        const bool header = at + 30 <= bytes.size() && load_le<std::uint32_t>(p + at) == 0x04034b50;
        const std::uint64_t name = header ? load_le<std::uint16_t>(p + at + 26) : 0;
        const std::uint64_t extra = header ? load_le<std::uint16_t>(p + at + 28) : 0;
        const std::uint64_t data = at + 30 + name + extra;
        if (!header || data > bytes.size() || e.size > bytes.size() - data ||
            bytes.compare(at + 30, name, e.name) != 0) {
            throw Error(where + ": libzip did not write the local header of " + printable_name(e.name) + " at byte " +
                        std::to_string(at) + ", where the entries before it end");
        }
        std::uint64_t own = 0;
        for (std::uint64_t f = at + 30 + name; f + 4 <= data;) {
            const std::uint64_t size = 4 + load_le<std::uint16_t>(p + f + 2);
            if (load_le<std::uint16_t>(p + f) != padding_extra_id) own += size;
            f += size;
        }
        out.push_back({data, own});
        at = data + e.size;
    }
    return out;
}

// One archive of `entries`, stored, each local header's extra field padded by `pad` bytes.
std::string write_archive(const std::vector<ZipInput>& entries, bool force_zip64, const std::vector<std::size_t>& pad,
                          const std::string& where)
{
    auto fail = [&](const std::string& what, zip_error_t* error) {
        return Error(where + ": writing the zip archive: " + what + ": " + describe(error));
    };
    ZipError error;
    // The archive is written into `buffer`; one reference for the archive, one to read it back.
    const std::unique_ptr<zip_source_t, SourceFree> buffer(zip_source_buffer_create(nullptr, 0, 0, &error.error));
    if (!buffer) throw fail("cannot create the buffer", &error.error);
    zip_source_keep(buffer.get());
    zip_t* opened = zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error.error);
    if (opened == nullptr) {
        zip_source_free(buffer.get());  // the reference the archive did not take
        throw fail("cannot open the buffer", &error.error);
    }
    std::unique_ptr<zip_t, ZipCloser> archive(opened);
    std::deque<Unsized> unsized;  // must outlive zip_close, which reads them
    const std::string zeros(alignment + 4, '\0');
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const ZipInput& e = entries[i];
        const std::string what = "entry " + printable_name(e.name);
        if (e.name.find('\0') != std::string::npos) {
            throw Error(where + ": writing the zip archive: " + what + " has a NUL byte in its name");
        }
        zip_source_t* source = nullptr;
        if (force_zip64) {
            source = zip_source_function(archive.get(), unsized_source, &unsized.emplace_back(e.data, e.size));
        } else {
            source = zip_source_buffer(archive.get(), e.data, e.size, 0);  // not copied
        }
        if (source == nullptr) throw fail(what, zip_get_error(archive.get()));
        const zip_int64_t index = zip_file_add(archive.get(), e.name.c_str(), source, ZIP_FL_ENC_UTF_8);
        if (index < 0) {
            zip_source_free(source);  // not taken by the archive
            throw fail(what, zip_get_error(archive.get()));
        }
        const auto at = static_cast<zip_uint64_t>(index);
        if (zip_set_file_compression(archive.get(), at, ZIP_CM_STORE, 0) != 0 ||
            zip_file_set_dostime(archive.get(), at, dos_time, dos_date, 0) != 0 ||
            (pad[i] != 0 && zip_file_extra_field_set(archive.get(), at, padding_extra_id, ZIP_EXTRA_FIELD_NEW,
                                                     reinterpret_cast<const zip_uint8_t*>(zeros.data()),
                                                     static_cast<zip_uint16_t>(pad[i] - 4), ZIP_FL_LOCAL) != 0)) {
            throw fail(what, zip_get_error(archive.get()));
        }
    }
    if (zip_close(archive.get()) != 0) throw fail("closing", zip_get_error(archive.get()));
    (void)archive.release();  // zip_close freed it

    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_source_stat(buffer.get(), &st) != 0 || (st.valid & ZIP_STAT_SIZE) == 0) {
        throw fail("the size of what was written", zip_source_error(buffer.get()));
    }
    std::string bytes(st.size, '\0');
    if (zip_source_open(buffer.get()) != 0) throw fail("reading back", zip_source_error(buffer.get()));
    std::uint64_t done = 0;
    while (done < bytes.size()) {
        const zip_int64_t n = zip_source_read(buffer.get(), &bytes[done], bytes.size() - done);
        if (n <= 0) break;
        done += static_cast<std::uint64_t>(n);
    }
    zip_source_close(buffer.get());
    if (done != bytes.size()) throw fail("reading back", zip_source_error(buffer.get()));
    return bytes;
}

}  // namespace

ZipReader::ZipReader(const std::string& bytes, std::string where) : bytes_(bytes), where_(std::move(where))
{
    // libzip takes a file of 0 bytes for an empty archive; here it is a truncated file.
    if (bytes_.size() < 22) {
        throw Error(where_ + ": the file has " + std::to_string(bytes_.size()) +
                    " bytes, too few for a zip archive's end record (truncated?)");
    }
    ZipError error;
    zip_source_t* source = zip_source_buffer_create(bytes_.data(), bytes_.size(), 0, &error.error);
    if (source == nullptr) throw Error(where_ + ": " + describe(&error.error));
    // ZIP_CHECKCONS: every local header must agree with its central directory entry, and no
    // entry may reach into the central directory.
    zip_t* opened = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error.error);
    if (opened == nullptr) {
        zip_source_free(source);  // not taken by an archive
        if (zip_error_code_zip(&error.error) == ZIP_ER_EXISTS) {
            if (const auto name = repeated_name(bytes_)) {
                throw Error(where_ + ": the archive holds two entries named " + printable_name(*name));
            }
        }
        throw Error(where_ + ": " + describe(&error.error));
    }
    archive_.reset(opened);

    const zip_int64_t count = zip_get_num_entries(opened, 0);
    if (count < 0) throw Error(where_ + ": " + describe(zip_get_error(opened)));
    constexpr zip_uint64_t needed = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_CRC |
                                    ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
    for (zip_uint64_t i = 0; i < static_cast<zip_uint64_t>(count); ++i) {
        zip_stat_t st;
        zip_stat_init(&st);
        // The name's bytes as they are in the archive (PyTorch's names are ASCII).
        if (zip_stat_index(opened, i, ZIP_FL_ENC_RAW, &st) != 0) {
            throw Error(where_ + ": entry " + std::to_string(i) + ": " + describe(zip_get_error(opened)));
        }
        if ((st.valid & needed) != needed) {
            throw Error(where_ + ": entry " + std::to_string(i) +
                        ": its name, sizes, CRC-32 or methods are not in the central directory");
        }
        ZipEntry e;
        e.name = st.name;
        e.index = i;
        e.method = st.comp_method;
        e.encrypted = st.encryption_method != ZIP_EM_NONE;
        e.crc = st.crc;
        e.compressed = st.comp_size;
        e.size = st.size;
        if (!index_.emplace(e.name, entries_.size()).second) {
            throw Error(where_ + ": the archive holds two entries named " + printable_name(e.name));
        }
        entries_.push_back(std::move(e));
    }
}

const ZipEntry* ZipReader::find(const std::string& name) const
{
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string ZipReader::read(const ZipEntry& e) const
{
    const std::string what = where_ + ": entry " + printable_name(e.name);
    // libzip would read other methods too (bzip2, xz, zstd); PyTorch reads only these two.
    if (e.method != ZIP_CM_STORE && e.method != ZIP_CM_DEFLATE) {
        throw Error(what + " uses compression method " + std::to_string(e.method) +
                    " (only stored and deflated entries are read)");
    }
    if (e.encrypted) throw Error(what + " is encrypted");
    // The declared size is allocated below: it must be one the archive's bytes can hold.
    if (e.compressed > bytes_.size()) {
        throw Error(what + " declares " + std::to_string(e.compressed) + " bytes of data, more than the " +
                    std::to_string(bytes_.size()) + "-byte archive holds");
    }
    if (e.method == ZIP_CM_STORE && e.compressed != e.size) {
        throw Error(what + " is stored, but its sizes differ (" + std::to_string(e.compressed) + " and " +
                    std::to_string(e.size) + " bytes)");
    }
    // Deflate expands at most 1032 to 1: a larger declared size is a lie, not allocated.
    if (e.method == ZIP_CM_DEFLATE && e.size / 1032 > e.compressed + 1) {
        throw Error(what + " declares " + std::to_string(e.size) + " bytes, more than its " +
                    std::to_string(e.compressed) + " deflated bytes can hold");
    }
    const std::unique_ptr<zip_file_t, FileCloser> file(zip_fopen_index(archive_.get(), e.index, 0));
    if (!file) throw Error(what + ": " + describe(zip_get_error(archive_.get())));
    std::string out(e.size, '\0');
    std::uint64_t done = 0;
    while (done < e.size) {
        const zip_int64_t n = zip_fread(file.get(), &out[done], e.size - done);
        if (n < 0) throw Error(what + ": " + describe(zip_file_get_error(file.get())));
        if (n == 0) {
            throw Error(what + ": its data ends after " + std::to_string(done) + " of its declared " +
                        std::to_string(e.size) + " bytes (truncated or corrupt)");
        }
        done += static_cast<std::uint64_t>(n);
    }
    // Reading on to the end of the data is what makes libzip compare the CRC-32.
    char spare = 0;
    const zip_int64_t more = zip_fread(file.get(), &spare, 1);
    if (more < 0) throw Error(what + ": " + describe(zip_file_get_error(file.get())));
    if (more > 0) throw Error(what + ": its data is longer than its declared " + std::to_string(e.size) + " bytes");
    return out;
}

std::string zip_archive(const std::vector<ZipInput>& entries, bool force_zip64, const std::string& where)
{
    // libzip writes no archive at all without entries (a torch.save file has at least three).
    if (entries.empty()) throw Error(where + ": writing the zip archive: no entries");
    // First as libzip is expected to lay the entries out: a zip64 extra field (20 bytes) in a
    // local header when the entry's size is unknown to it (force_zip64) or reaches 4 GiB. If
    // the data is not aligned after all, once more with the extra fields libzip did write.
    std::vector<std::uint64_t> own(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) own[i] = force_zip64 || entries[i].size >= u32_max ? 20 : 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::string bytes = write_archive(entries, force_zip64, paddings(entries, own), where);
        const std::vector<Placed> placed = placement(bytes, entries, where);
        bool aligned = true;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            aligned = aligned && placed[i].data % alignment == 0;
            own[i] = placed[i].own;
        }
        if (aligned) return bytes;
    }
    throw Error(where + ": writing the zip archive: libzip did not put the entries' data at multiples of " +
                std::to_string(alignment) + " bytes");
}

}  // namespace tg::io::detail
