// tg::data compressed input: ByteSource reads a file through zlib, gunzipping it when it is
// a gzip stream, and turns zlib's errors into tg::Error.

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "data/internal.hpp"
#include "tapegrad/error.hpp"

namespace tg::data::detail {

ByteSource::ByteSource(const std::string& path) : path_(path)
{
    gz_ = gzopen(path.c_str(), "rb");
    if (gz_ == nullptr) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
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

void ByteSource::throw_error() const
{
    int code = Z_OK;
    std::string message = gzerror(gz_, &code);
    // zlib prefixes its messages with the path, which ours already starts with.
    const std::string prefix = path_ + ": ";
    if (message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
    if (code == Z_ERRNO) throw Error(path_ + ": read error (" + message + ")");
    if (code == Z_MEM_ERROR) throw Error(path_ + ": out of memory while decompressing");
    throw Error(path_ + ": corrupt gzip stream (" + message + ")");
}

}  // namespace tg::data::detail
