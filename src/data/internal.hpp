#pragma once
// Private to src/data/: the byte source that the IDX reader pulls from (defined in
// gzip.cpp). Not installed, and nothing here is part of the public API.

#include <zlib.h>

#include <cstddef>
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

private:
    [[noreturn]] void throw_error() const;

    std::string path_;
    gzFile gz_ = nullptr;
};

}  // namespace tg::data::detail
