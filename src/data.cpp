// tg::data: IDX files (plain, or gzip'd and read through zlib), in-memory datasets, and
// mini-batch loaders whose shuffles depend on (seed, epoch) only.

#include "tapegrad/data.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "tapegrad/error.hpp"
#include "tapegrad/random.hpp"

namespace tg::data {

namespace {

// Fashion-MNIST's training images are 47 MB; anything past this is a bad header, not data.
constexpr std::size_t max_idx_bytes = std::size_t{1} << 30;

std::string hex_byte(std::uint8_t b)
{
    char text[8];
    std::snprintf(text, sizeof text, "0x%02x", static_cast<unsigned>(b));
    return text;
}

std::string number(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
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

// The bytes of a file, gunzipped when it starts with the gzip magic 0x1f 0x8b. zlib reads
// plain files too ("direct" mode), so one path serves both, pipes included.
// read() returns fewer bytes than asked only at the end of the data; errors throw.
class ByteSource {
public:
    explicit ByteSource(const std::string& path) : path_(path)
    {
        gz_ = gzopen(path.c_str(), "rb");
        if (gz_ == nullptr) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
        // zlib's default 8 KB input buffer costs a few percent on a 26 MB file.
        gzbuffer(gz_, 1u << 18);
    }
    ~ByteSource() { gzclose(gz_); }
    ByteSource(const ByteSource&) = delete;
    ByteSource& operator=(const ByteSource&) = delete;

    // True for a gzip stream (zlib looks at the first bytes on the first read).
    bool gzip() const { return gzdirect(gz_) == 0; }

    std::size_t read(void* out, std::size_t n)
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

    // Reads to the end, returning how many bytes were left.
    std::size_t skip_rest()
    {
        std::array<unsigned char, 1 << 16> sink{};
        std::size_t total = 0;
        for (;;) {
            const std::size_t got = read(sink.data(), sink.size());
            total += got;
            if (got < sink.size()) return total;
        }
    }

private:
    [[noreturn]] void throw_error() const
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

    std::string path_;
    gzFile gz_ = nullptr;
};

std::uint64_t splitmix64(std::uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// splitmix64 is a bijection, so for one seed every epoch gets its own generator seed, and
// neighbouring seeds or epochs give unrelated streams.
std::uint64_t epoch_seed(std::uint64_t seed, std::uint64_t epoch)
{
    return splitmix64(splitmix64(seed) ^ epoch);
}

// Uniform in [0, bound), bound > 0. The lowest 2^64 mod bound values of the generator are
// rejected: kept, they would make the smallest residues more likely than the rest.
// (std::uniform_int_distribution would do, but its algorithm differs between standard
// libraries, and the shuffle must be the same everywhere.)
std::uint64_t draw_below(Generator& gen, std::uint64_t bound)
{
    const std::uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        const std::uint64_t r = gen();
        if (r >= threshold) return r % bound;
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
    const auto begin = (reinterpret_cast<std::uintptr_t>(start) + page - 1) / page * page;
    const auto end = (reinterpret_cast<std::uintptr_t>(start) + bytes) / page * page;
    if (end <= begin) return;
#if defined(MADV_HUGEPAGE)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
#if defined(MADV_POPULATE_WRITE)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
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
    ByteSource in_;
    std::string after_;
    std::vector<std::size_t> shape_;
    std::size_t count_ = 0;
    std::size_t done_ = 0;
};

}  // namespace

Idx read_idx(const std::string& path)
{
    IdxReader reader(path);
    Idx idx;
    idx.shape = reader.shape();
    // Reserve first so that the pages can be prepared before resize() writes its zeros
    // (data() of an empty vector with capacity is its buffer in libstdc++ and libc++; were it
    // not, the hint would only be lost).
    idx.data.reserve(reader.count());
    prepare_for_writing(idx.data.data(), reader.count());
    idx.data.resize(reader.count());
    reader.read(idx.data.data(), idx.data.size());
    reader.finish();
    return idx;
}

std::pair<double, double> pixel_mean_std(const Idx& images)
{
    const std::size_t n = images.data.size();
    if (n == 0) throw Error("pixel_mean_std: no pixels (dimensions " + format_shape(images.shape) + ")");
    // A histogram makes both passes cost 256 steps and keeps the sums exact.
    std::array<std::uint64_t, 256> counts{};
    for (const std::uint8_t b : images.data) ++counts[b];
    std::uint64_t sum = 0;
    for (std::size_t v = 0; v < counts.size(); ++v) sum += counts[v] * v;
    const double mean = static_cast<double>(sum) / (255.0 * static_cast<double>(n));
    double squares = 0.0;
    for (std::size_t v = 0; v < counts.size(); ++v) {
        const double d = static_cast<double>(v) / 255.0 - mean;
        squares += static_cast<double>(counts[v]) * d * d;
    }
    return {mean, std::sqrt(squares / static_cast<double>(n))};
}

Normalize Normalize::standardize(double mean_value, double std_value)
{
    if (!std::isfinite(mean_value))
        throw Error("Normalize::standardize: mean must be finite, got " + number(mean_value));
    if (!(std_value > 0.0) || !std::isfinite(std_value))
        throw Error("Normalize::standardize: std must be positive and finite, got " + number(std_value));
    return {Kind::standardize, mean_value, std_value};
}

template <class T>
Dataset<T>::Dataset(xt::xarray<T> features, xt::xarray<std::int64_t> labels)
    : features_(std::move(features)), labels_(std::move(labels))
{
    if (features_.dimension() != 2)
        throw Error("Dataset: features must be [N, D], got " + format_shape(features_.shape()));
    if (labels_.dimension() != 1) throw Error("Dataset: labels must be [N], got " + format_shape(labels_.shape()));
    if (labels_.size() != features_.shape()[0])
        throw Error("Dataset: " + std::to_string(features_.shape()[0]) + " rows of features but " +
                    std::to_string(labels_.size()) + " labels (features " + format_shape(features_.shape()) +
                    ", labels " + format_shape(labels_.shape()) + ")");
    if (labels_.size() == 0) throw Error("Dataset: empty data set (features " + format_shape(features_.shape()) + ")");
    std::int64_t largest = 0;
    for (std::size_t i = 0; i < labels_.size(); ++i) {
        const std::int64_t label = labels_.data()[i];
        if (label < 0)
            throw Error("Dataset: labels must be non-negative, found " + std::to_string(label) + " at row " +
                        std::to_string(i));
        largest = std::max(largest, label);
    }
    num_classes_ = largest + 1;
}

template <class T> Dataset<T> Dataset<T>::subset(std::size_t first, std::size_t count) const
{
    const std::size_t n = size();
    if (count == 0) throw Error("Dataset::subset: count must be positive (first " + std::to_string(first) + ")");
    if (first > n || count > n - first) {
        const std::string end = count <= std::numeric_limits<std::size_t>::max() - first
                                    ? std::to_string(first + count)
                                    : std::to_string(first) + " + " + std::to_string(count);
        throw Error("Dataset::subset: rows [" + std::to_string(first) + ", " + end + ") run past the " +
                    std::to_string(n) + " rows of the data set");
    }
    const std::size_t d = num_features();
    xt::xarray<T> features = xt::xarray<T>::from_shape({count, d});
    xt::xarray<std::int64_t> labels = xt::xarray<std::int64_t>::from_shape({count});
    std::copy_n(features_.data() + first * d, count * d, features.data());
    std::copy_n(labels_.data() + first, count, labels.data());
    return Dataset(std::move(features), std::move(labels));
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

    std::vector<std::uint8_t> bytes(n);
    classes.read(bytes.data(), n);
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
    // of the file in memory.
    xt::xarray<T> features = xt::xarray<T>::from_shape({n, d});
    prepare_for_writing(features.data(), features.size() * sizeof(T));
    bytes.resize(std::min<std::size_t>(pixels.count(), 1u << 20));
    T* out = features.data();
    for (std::size_t done = 0, total = pixels.count(); done < total;) {
        const std::size_t chunk = std::min(bytes.size(), total - done);
        pixels.read(bytes.data(), chunk);
        for (std::size_t i = 0; i < chunk; ++i) out[done + i] = table[bytes[i]];
        done += chunk;
    }
    pixels.finish();
    return Dataset<T>(std::move(features), std::move(targets));
}

template <class T> DataLoader<T>::DataLoader(const Dataset<T>& data, Options options) : data_(&data), options_(options)
{
    if (options_.batch_size == 0) throw Error("DataLoader: batch_size must be positive");
    if (options_.drop_last && data.size() < options_.batch_size)
        throw Error("DataLoader: drop_last leaves no batch: batch_size " + std::to_string(options_.batch_size) +
                    " is larger than the " + std::to_string(data.size()) + " rows");
    set_epoch(0);
}

template <class T> std::size_t DataLoader<T>::num_batches() const noexcept
{
    const std::size_t n = data_->size(), b = options_.batch_size;
    return n / b + (!options_.drop_last && n % b != 0 ? 1 : 0);
}

template <class T> void DataLoader<T>::set_epoch(std::uint64_t epoch)
{
    epoch_ = epoch;
    // Start from the identity every time, so the order never depends on earlier epochs.
    order_.resize(data_->size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    if (!options_.shuffle) return;
    Generator gen(epoch_seed(options_.seed, epoch));
    for (std::size_t i = order_.size(); i-- > 1;) {
        const auto j = static_cast<std::size_t>(draw_below(gen, i + 1));
        std::swap(order_[i], order_[j]);
    }
}

template <class T> const Batch<T>& DataLoader<T>::batch(std::size_t i)
{
    const std::size_t b = options_.batch_size;
    Batch<T>& out = (i + 1) * b <= data_->size() ? full_ : short_;  // fill() checks i
    fill(i, out.features, out.labels);
    return out;
}

template <class T>
void DataLoader<T>::fill(std::size_t i, xt::xarray<T>& features_out, xt::xarray<std::int64_t>& labels_out) const
{
    const std::size_t n = data_->size();
    if (order_.size() != n)
        throw Error("DataLoader::batch: the data set changed size from " + std::to_string(order_.size()) + " to " +
                    std::to_string(n) + " rows; call set_epoch again");
    const std::size_t count = num_batches();
    if (i >= count)
        throw Error("DataLoader::batch: batch " + std::to_string(i) + " is out of range for " + std::to_string(count) +
                    " batches");
    const std::size_t b = options_.batch_size;
    const std::size_t first = i * b;
    const std::size_t rows = std::min(b, n - first);
    const std::size_t d = data_->num_features();
    if (features_out.dimension() != 2 || features_out.shape()[0] != rows || features_out.shape()[1] != d)
        features_out.resize({rows, d});
    if (labels_out.dimension() != 1 || labels_out.shape()[0] != rows) labels_out.resize({rows});
    const T* features = data_->features().data();
    const std::int64_t* labels = data_->labels().data();
    T* f = features_out.data();
    std::int64_t* l = labels_out.data();
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t row = order_[first + r];
        std::copy_n(features + row * d, d, f + r * d);
        l[r] = labels[row];
    }
}

template class Dataset<float>;
template class Dataset<double>;
template class DataLoader<float>;
template class DataLoader<double>;
template Dataset<float> load_idx_dataset<float>(const std::string&, const std::string&, Normalize);
template Dataset<double> load_idx_dataset<double>(const std::string&, const std::string&, Normalize);

}  // namespace tg::data
