// tg::data compressed input: ByteSource reads a file through zlib, gunzipping it when it is
// a gzip stream, and turns zlib's errors into tg::Error.

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "data/internal.hpp"
#include "tapegrad/error.hpp"

namespace tg::data::detail {

ByteSource::ByteSource(const std::string& path) : path_(path)
{
    errno = 0;
    gz_ = gzopen(path.c_str(), "rb");
    if (gz_ == nullptr) {
        // zlib fails without errno when it cannot allocate its state.
        const int e = errno;
        throw Error(path + ": cannot open (" + (e != 0 ? std::strerror(e) : "zlib could not allocate its state") + ")");
    }
    // zlib's default 8 KB input buffer costs a few percent on a 26 MB file.
    gzbuffer(gz_, 1u << 18);
}

std::size_t ByteSource::read(void* out, std::size_t n)
{
    auto* bytes = static_cast<unsigned char*>(out);
    std::size_t done = 0;
    while (done < n) {
        // gzread counts in unsigned int.
        const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
        const int got = gzread(gz_, bytes + done, chunk);
        if (got < 0) throw_error();
        done += static_cast<std::size_t>(got);
        if (static_cast<unsigned>(got) < chunk) {
            // A short read is the end of the data, or a cut-short or corrupt stream.
            int code = Z_OK;
            gzerror(gz_, &code);
            if (code != Z_OK) throw_error();
            break;
        }
    }
    return done;
}

std::size_t ByteSource::skip_rest()
{
    std::array<unsigned char, 1 << 16> sink{};
    std::size_t total = 0;
    for (;;) {
        const std::size_t got = read(sink.data(), sink.size());
        total += got;
        if (got < sink.size()) return total;
    }
}

std::optional<std::uint64_t> ByteSource::size_hint() const
{
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    if (!gzip()) return static_cast<std::uint64_t>(st.st_size);
    if (st.st_size < 18) return std::nullopt;  // smaller than a gzip header and trailer
    std::FILE* f = std::fopen(path_.c_str(), "rb");
    if (f == nullptr) return std::nullopt;
    unsigned char b[4] = {};
    const bool ok = std::fseek(f, -4, SEEK_END) == 0 && std::fread(b, 1, 4, f) == 4;
    std::fclose(f);
    if (!ok) return std::nullopt;
    const std::uint64_t isize =
        std::uint64_t{b[0]} | std::uint64_t{b[1]} << 8 | std::uint64_t{b[2]} << 16 | std::uint64_t{b[3]} << 24;
    // Deflate expands at most 1032-fold: a trailer claiming more than that is not believed.
    if (isize > static_cast<std::uint64_t>(st.st_size) * 1032) return std::nullopt;
    return isize;
}

void ByteSource::throw_error() const
{
    int code = Z_OK;
    std::string message = gzerror(gz_, &code);
    // zlib prefixes its messages with the path, which ours already starts with.
    const std::string prefix = path_ + ": ";
    if (message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
    // zlib words a failed read with strerror(errno), which is "Success" when the read failed
    // without setting errno: say what happened instead.
    if (message.empty() || message == std::strerror(0)) {
        message = code == Z_BUF_ERROR    ? "unexpected end of file"
                  : code == Z_DATA_ERROR ? "invalid compressed data"
                  : code == Z_ERRNO      ? "the read failed without a system error"
                                         : "zlib error " + std::to_string(code);
    }
    if (code == Z_ERRNO) throw Error(path_ + ": read error (" + message + ")");
    if (code == Z_MEM_ERROR) throw Error(path_ + ": out of memory while decompressing");
    throw Error(path_ + ": corrupt gzip stream (" + message + ")");
}

}  // namespace tg::data::detail
