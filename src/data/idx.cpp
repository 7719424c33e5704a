// tg::data IDX files: the header checks, read_idx, and load_idx_dataset, which streams an
// images file and a labels file into a normalised Dataset.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "data/internal.hpp"
#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"

namespace tg::data {

namespace {

// Fashion-MNIST's training images are 47 MB; anything past this is a bad header, not data.
constexpr std::size_t max_idx_bytes = std::size_t{1} << 30;
// What load_idx_dataset's features may take in memory (float or double, 4 or 8 bytes a pixel).
constexpr std::size_t max_feature_bytes = std::size_t{2} << 30;
// A header's claim is believed only as far as the file backs it (see IdxReader::backed);
// otherwise memory grows with the data that actually arrives, from this much on.
constexpr std::size_t first_allocation = std::size_t{1} << 20;

std::string hex_byte(std::uint8_t b)
{
    char text[8];
    std::snprintf(text, sizeof text, "0x%02x", static_cast<unsigned>(b));
    return text;
}

const char* idx_type_name(std::uint8_t code)
{
    switch (code) {
    case 0x09:
        return " (signed byte)";
    case 0x0b:
        return " (short)";
    case 0x0c:
        return " (int)";
    case 0x0d:
        return " (float)";
    case 0x0e:
        return " (double)";
    default:
        return "";
    }
}

// Fresh pages cost a fault each on first write, and on some virtual machines (this
// project's among them) a fault takes microseconds: writing Fashion-MNIST's 188 MB of float
// features page by page took 0.5 s. Asking for huge pages and faulting the range in with one
// call (Linux 5.14+) brings that down to a few hundredths. Both are only hints: an older
// kernel or a system without transparent huge pages refuses them, which is harmless.
void prepare_for_writing([[maybe_unused]] void* start, [[maybe_unused]] std::size_t bytes)
{
#if defined(__linux__)
    if (start == nullptr || bytes < (std::size_t{4} << 20)) return;
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    // The whole pages inside [start, start + bytes): madvise takes page-aligned ranges only.
    const std::uintptr_t lead = (page - reinterpret_cast<std::uintptr_t>(start) % page) % page;
    if (bytes <= lead) return;
    const std::size_t length = (bytes - lead) / page * page;
    if (length == 0) return;
    void* const first = static_cast<char*>(start) + lead;
#if defined(MADV_HUGEPAGE)
    madvise(first, length, MADV_HUGEPAGE);
#endif
#if defined(MADV_POPULATE_WRITE)
    madvise(first, length, MADV_POPULATE_WRITE);
#endif
#endif
}

// An IDX file opened and its header checked; the data is then read in one go or in chunks.
class IdxReader {
public:
    explicit IdxReader(const std::string& path)
        : path_(path), in_(path), after_(in_.gzip() ? " after decompression" : "")
    {
        std::array<std::uint8_t, 4> magic{};
        const std::size_t got_magic = in_.read(magic.data(), magic.size());
        if (got_magic == 0) throw Error(path_ + ": empty file" + (in_.gzip() ? " (after decompression)" : ""));
        if (got_magic < magic.size())
            throw Error(path_ + ": too short for an IDX file: " + std::to_string(got_magic) + " bytes" + after_ +
                        ", the magic number alone takes 4");
        if (magic[0] != 0 || magic[1] != 0)
            throw Error(path_ + ": not an IDX file: the magic number must start with 0x00 0x00, found " +
                        hex_byte(magic[0]) + " " + hex_byte(magic[1]));
        if (magic[2] != 0x08)
            throw Error(path_ + ": unsupported IDX data type " + hex_byte(magic[2]) + idx_type_name(magic[2]) +
                        ", only unsigned bytes (0x08) are supported");
        const std::size_t rank = magic[3];
        if (rank == 0) throw Error(path_ + ": the IDX header gives 0 dimensions");

        std::vector<std::uint8_t> header(4 * rank);
        const std::size_t got_header = in_.read(header.data(), header.size());
        if (got_header < header.size())
            throw Error(path_ + ": IDX header cut short: " + std::to_string(rank) + " dimensions take " +
                        std::to_string(header.size()) + " bytes after the magic number, found " +
                        std::to_string(got_header));
        shape_.resize(rank);
        for (std::size_t k = 0; k < rank; ++k) {
            const std::uint8_t* b = header.data() + 4 * k;
            // IDX stores dimensions as big-endian 32-bit unsigned integers.
            shape_[k] = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) | b[3];
        }
        // A zero dimension makes the file empty however large the others are; otherwise the
        // product is checked step by step (count <= 1 GB and d < 2^32, so it cannot wrap).
        const bool empty = std::find(shape_.begin(), shape_.end(), std::size_t{0}) != shape_.end();
        count_ = empty ? 0 : 1;
        bool too_big = false;
        for (std::size_t k = 0; !empty && !too_big && k < rank; ++k) {
            count_ *= shape_[k];
            too_big = count_ > max_idx_bytes;
        }
        if (too_big)
            throw Error(path_ + ": IDX dimensions " + format_shape(shape_) +
                        " describe more than 1 GB of data (limit " + std::to_string(max_idx_bytes) + " bytes)");
    }

    const std::vector<std::size_t>& shape() const noexcept { return shape_; }
    // Data bytes the dimensions promise.
    std::size_t count() const noexcept { return count_; }

    // True when the file's own size backs the header's promise: a plain file at least as
    // long as header and data, or a gzip file whose trailer records exactly that length.
    // Only then is the whole promise allocated at once; a 16-byte file claiming a gigabyte
    // gets memory only as its data arrives, and is reported truncated long before.
    bool backed() const
    {
        const std::uint64_t total = 4 + 4 * std::uint64_t{shape_.size()} + count_;
        const std::optional<std::uint64_t> hint = in_.size_hint();
        if (!hint) return false;
        return in_.gzip() ? *hint == (total & 0xffffffffu) : *hint >= total;
    }

    // The next n data bytes (done + n <= count()); throws if the data ends sooner.
    void read(std::uint8_t* out, std::size_t n)
    {
        const std::size_t got = in_.read(out, n);
        done_ += got;
        if (got < n)
            throw Error(path_ + ": truncated: dimensions " + format_shape(shape_) + " need " + std::to_string(count_) +
                        " data bytes, found " + std::to_string(done_) + after_);
    }

    // Checks that no data follows the promised bytes.
    void finish()
    {
        const std::size_t extra = in_.skip_rest();
        if (extra != 0)
            throw Error(path_ + ": " + std::to_string(extra) + " bytes" + after_ +
                        " past the end of the data (dimensions " + format_shape(shape_) + " describe " +
                        std::to_string(count_) + " bytes)");
    }

private:
    std::string path_;
    detail::ByteSource in_;
    std::string after_;
    std::vector<std::size_t> shape_;
    std::size_t count_ = 0;
    std::size_t done_ = 0;
};

// Reads the reader's data into `data`: all at once when the file backs the header's claim,
// otherwise growing geometrically as the bytes arrive.
void read_all(IdxReader& reader, std::vector<std::uint8_t>& data)
{
    const std::size_t count = reader.count();
    if (reader.backed()) {
        // Reserve first so that the pages can be prepared before resize() writes its zeros
        // (data() of an empty vector with capacity is its buffer in libstdc++ and libc++;
        // were it not, the hint would only be lost).
        data.reserve(count);
        prepare_for_writing(data.data(), count);
        data.resize(count);
        reader.read(data.data(), count);
        return;
    }
    std::size_t done = 0;
    while (done < count) {
        const std::size_t next = std::min(count, std::max(done * 2, first_allocation));
        data.reserve(next);
        data.resize(next);
        reader.read(data.data() + done, next - done);
        done = next;
    }
}

}  // namespace

Idx read_idx(const std::string& path)
{
    IdxReader reader(path);
    Idx idx;
    idx.shape = reader.shape();
    read_all(reader, idx.data);
    reader.finish();
    return idx;
}

template <class T>
Dataset<T> load_idx_dataset(const std::string& images, const std::string& labels, Normalize normalize)
{
    // Headers first, so that a wrong pair of files is reported before 47 MB are gunzipped.
    IdxReader pixels(images);
    if (pixels.shape().size() != 3)
        throw Error("load_idx_dataset: " + images + " must hold images [N, rows, cols], found dimensions " +
                    format_shape(pixels.shape()));
    IdxReader classes(labels);
    if (classes.shape().size() != 1)
        throw Error("load_idx_dataset: " + labels + " must hold labels [N], found dimensions " +
                    format_shape(classes.shape()));
    const std::size_t n = pixels.shape()[0];
    if (classes.count() != n)
        throw Error("load_idx_dataset: " + labels + " has " + std::to_string(classes.count()) + " labels but " +
                    images + " has " + std::to_string(n) + " images");
    if (n == 0)
        throw Error("load_idx_dataset: empty data set: " + images + " has dimensions " + format_shape(pixels.shape()));
    const std::size_t d = pixels.shape()[1] * pixels.shape()[2];
    if (d == 0)
        throw Error("load_idx_dataset: " + images + " holds images without pixels, dimensions " +
                    format_shape(pixels.shape()));
    // The limit counts what the features take in memory, not the pixel bytes of the file
    // (n * d <= 1 GB here, so the product cannot wrap).
    if (n * d > max_feature_bytes / sizeof(T))
        throw Error("load_idx_dataset: " + images + ": dimensions " + format_shape(pixels.shape()) + " make " +
                    std::to_string(n * d) + " features of " + std::to_string(sizeof(T)) + " bytes, more than the " +
                    std::to_string(max_feature_bytes) + "-byte limit");

    std::vector<std::uint8_t> bytes;
    read_all(classes, bytes);
    classes.finish();
    xt::xarray<std::int64_t> targets = xt::xarray<std::int64_t>::from_shape({n});
    std::copy(bytes.begin(), bytes.end(), targets.data());

    // Every byte maps through one table, computed in double: the same features for float
    // and double up to the final rounding, and no division per pixel.
    std::array<T, 256> table{};
    for (std::size_t v = 0; v < table.size(); ++v) {
        const double x = static_cast<double>(v);
        switch (normalize.kind) {
        case Normalize::Kind::none:
            table[v] = static_cast<T>(x);
            break;
        case Normalize::Kind::unit:
            table[v] = static_cast<T>(x / 255.0);
            break;
        case Normalize::Kind::standardize:
            table[v] = static_cast<T>((x / 255.0 - normalize.mean) / normalize.std);
            break;
        }
    }
    // The pixels stream through a small buffer straight into the features: no second copy
    // of the file in memory. When the file does not back its header's claim, the features
    // grow (flat, doubling) as pixels arrive, and take their shape at the end.
    const std::size_t total = pixels.count();
    std::size_t room = pixels.backed() ? total : std::min(total, first_allocation / sizeof(T));
    xt::xarray<T> features = xt::xarray<T>::from_shape({room});
    prepare_for_writing(features.data(), features.size() * sizeof(T));
    bytes.resize(std::min<std::size_t>(total, 1u << 20));
    for (std::size_t done = 0; done < total;) {
        if (done == room) {
            room = std::min(total, room * 2);
            xt::xarray<T> grown = xt::xarray<T>::from_shape({room});
            std::copy(features.data(), features.data() + done, grown.data());
            features = std::move(grown);
        }
        const std::size_t chunk = std::min({bytes.size(), total - done, room - done});
        pixels.read(bytes.data(), chunk);
        T* out = features.data() + done;
        for (std::size_t i = 0; i < chunk; ++i) out[i] = table[bytes[i]];
        done += chunk;
    }
    pixels.finish();
    features.reshape({n, d});
    return Dataset<T>(std::move(features), std::move(targets));
}

template Dataset<float> load_idx_dataset<float>(const std::string&, const std::string&, Normalize);
template Dataset<double> load_idx_dataset<double>(const std::string&, const std::string&, Normalize);

}  // namespace tg::data
