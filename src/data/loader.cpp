// tg::data loaders: DataLoader cuts a Dataset into mini-batches, in an order that depends
// on (seed, epoch) only, the same with every standard library.

#include <algorithm>
#include <numeric>

#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/random.hpp"

namespace tg::data {

namespace {

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

}  // namespace

std::vector<std::size_t> epoch_order(std::size_t n, bool shuffle, std::uint64_t seed, std::uint64_t epoch)
{
    // Starts from the identity every time, so the order never depends on earlier epochs.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (!shuffle) return order;
    Generator gen(epoch_seed(seed, epoch));
    for (std::size_t i = order.size(); i-- > 1;) {
        const auto j = static_cast<std::size_t>(draw_below(gen, i + 1));
        std::swap(order[i], order[j]);
    }
    return order;
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
    order_ = epoch_order(data_->size(), options_.shuffle, options_.seed, epoch);
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

template class DataLoader<float>;
template class DataLoader<double>;

}  // namespace tg::data
