#pragma once
// Private to src/data/: the byte source that the IDX reader pulls from (defined in
// gzip.cpp). Not installed, and nothing here is part of the public API.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace tg::data::detail {

// The bytes of a file, gunzipped when it starts with the gzip magic 0x1f 0x8b. zlib reads
// plain files too ("direct" mode), so one path serves both, pipes included.
// read() returns fewer bytes than asked only at the end of the data; errors throw.
class ByteSource {
public:
    explicit ByteSource(const std::string& path);
    ~ByteSource() { gzclose(gz_); }
    ByteSource(const ByteSource&) = delete;
    ByteSource& operator=(const ByteSource&) = delete;

    // True for a gzip stream (zlib looks at the first bytes on the first read).
    bool gzip() const { return gzdirect(gz_) == 0; }

    std::size_t read(void* out, std::size_t n);

    // Reads to the end, returning how many bytes were left.
    std::size_t skip_rest();

    // What the file itself says about the size of its data, for checking a header's claim
    // before allocating for it: for a plain regular file its size; for a gzip'd regular
    // file the size its trailer records (ISIZE: the uncompressed size modulo 2^32, of the
    // last member), when deflate's 1032:1 limit allows it. Nothing for pipes and the like.
    // Call after the first read().
    std::optional<std::uint64_t> size_hint() const;

private:
    [[noreturn]] void throw_error() const;

    std::string path_;
    gzFile gz_ = nullptr;
};

}  // namespace tg::data::detail
