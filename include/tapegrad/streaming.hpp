#pragma once
/// \file streaming.hpp
/// `tg::data` for data that does not fit in memory, or that is cheaper to compute than to
/// keep: a dataset that loads example i when asked (MapDataset), transforms applied on the
/// way (map), samplers that choose the order, and StreamingLoader, which stacks examples
/// into batches, optionally on worker threads that load ahead of the training step.
///
/// \code
/// struct Noise : tg::data::MapDataset<float> {   // 10^6 examples, none of them stored
///     std::size_t size() const override { return 1000000; }
///     tg::data::Example<float> get(std::size_t i) const override {
///         return {xt::xarray<float>(xt::ones<float>({3, 64, 64}) * float(i % 7)),
///                 xt::xarray<std::int64_t>(std::int64_t(i % 7))};
///     }
/// };
/// auto data = tg::data::map<float>(std::make_shared<Noise>(), [](tg::data::Example<float> e) {
///     e.data /= 6.0f;                            // a transform, run on the worker threads
///     return e;
/// });
/// tg::data::StreamingLoader<float> loader(data, {64, true, false, 2});  // batch_size, shuffle, drop_last, num_workers
/// for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
///     loader.set_epoch(epoch);
///     for (const tg::data::Example<float>& batch : loader) {
///         // batch.data [64, 3, 64, 64], batch.target [64]
///     }
/// }
/// \endcode
///
/// The in-memory Dataset and DataLoader (data.hpp) stay the fast path for data that fits.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tg::data {

/// One example, or a batch of them: data and target (class indices, or any integers).
template <class T> struct Example {
    /// The example's features, any shape; in a batch [B, ...].
    xt::xarray<T> data;
    /// The example's target, any shape (a class index is 0-d); in a batch [B, ...].
    xt::xarray<std::int64_t> target;
};

/// A dataset that loads example i when asked: a folder of files, a database, a generator.
///
/// `get` is called from the loader's worker threads, several at once: it must be
/// thread-safe (reading files and computing are; writing shared members is not).
template <class T> class MapDataset {
public:
    virtual ~MapDataset() = default;
    /// The number of examples.
    virtual std::size_t size() const = 0;
    /// Example `index` (0 <= index < size()). Every example of a dataset must have the same
    /// data shape and the same target shape, so that they stack into batches.
    virtual Example<T> get(std::size_t index) const = 0;
};

/// `dataset` with `transform` applied to every example as it is loaded (on the worker
/// threads: the transform must be thread-safe too). Throws tg::Error if either is empty.
template <class T>
std::shared_ptr<MapDataset<T>> map(std::shared_ptr<MapDataset<T>> dataset,
                                   std::function<Example<T>(Example<T>)> transform);

/// Chooses which examples an epoch visits, and in which order.
class Sampler {
public:
    virtual ~Sampler() = default;
    /// The indices epoch `epoch` visits in a dataset of `size` examples, in batch order.
    /// Called once per epoch, on the thread that iterates the loader.
    virtual std::vector<std::size_t> epoch_indices(std::size_t size, std::uint64_t epoch) = 0;
};

/// Every example once, in order: 0, 1, ..., size - 1.
class SequentialSampler : public Sampler {
public:
    /// 0, 1, ..., size - 1, whatever the epoch.
    std::vector<std::size_t> epoch_indices(std::size_t size, std::uint64_t epoch) override;
};

/// Every example once, in a permutation that depends only on (seed, epoch): the same as
/// DataLoader's shuffle with that seed (see epoch_order in data.hpp).
class RandomSampler : public Sampler {
public:
    /// The permutations of this seed.
    explicit RandomSampler(std::uint64_t seed = 0) : seed_(seed) {}
    /// The permutation of (seed, epoch).
    std::vector<std::size_t> epoch_indices(std::size_t size, std::uint64_t epoch) override;

private:
    std::uint64_t seed_;
};

/// Options of a StreamingLoader.
struct DataLoaderOptions {
    /// Examples per batch; must be positive.
    std::size_t batch_size = 1;
    /// Without a sampler: a new permutation every epoch (RandomSampler(seed)), else in order.
    bool shuffle = false;
    /// Leave out the last batch when it would be shorter than batch_size.
    bool drop_last = false;
    /// Threads that load batches ahead of the training step; 0 loads each batch on the
    /// iterating thread when it is asked for. Either way the batches are the same, bit for bit.
    std::size_t num_workers = 0;
    /// Batches each worker may hold ready ahead of the one being consumed; must be positive
    /// when there are workers.
    std::size_t prefetch = 2;
    /// The seed of the shuffle (with shuffle and no sampler).
    std::uint64_t seed = 0;
};

namespace detail {
template <class T> class StreamingRun;
}  // namespace detail

/// Batches of a MapDataset: examples stacked along a new first axis (data [B, ...],
/// target [B, ...]), in the order of a sampler, loaded on worker threads ahead of use.
///
/// Batch i of an epoch holds the sampler's indices [i * batch_size, (i + 1) * batch_size);
/// worker w loads batches w, w + N, w + 2N, ... (N workers), at most `prefetch` each ahead
/// of the batch being consumed, so memory stays bounded by N * prefetch batches whatever
/// the dataset's size, and the batches come in the same order as with no workers.
///
/// An exception thrown by the dataset's `get` (or a transform) reaches the iterating
/// thread as a tg::Error naming the example's index, when that batch is reached; the
/// loader stays usable (iterate on, or begin the epoch again). Examples whose shapes
/// differ from the batch's first example are refused the same way.
template <class T> class StreamingLoader {
public:
    /// Throws tg::Error if dataset is null, batch_size is 0, or prefetch is 0 with workers.
    /// Without a sampler: RandomSampler(options.seed) with shuffle, else SequentialSampler.
    StreamingLoader(std::shared_ptr<MapDataset<T>> dataset, DataLoaderOptions options = {},
                    std::shared_ptr<Sampler> sampler = nullptr);
    ~StreamingLoader();
    StreamingLoader(const StreamingLoader&) = delete;
    StreamingLoader& operator=(const StreamingLoader&) = delete;

    /// Chooses the epoch the next begin() iterates (the sampler's order for it).
    void set_epoch(std::uint64_t epoch);
    /// The epoch last given to set_epoch (0 for a new loader).
    std::uint64_t epoch() const noexcept { return epoch_; }
    /// Batches in an epoch of the current sampler order (computing it if needed).
    std::size_t num_batches();
    /// The options the loader was built with.
    const DataLoaderOptions& options() const noexcept { return options_; }

    /// Input iterator over one epoch's batches.
    class Iterator {
    public:
        /// Standard iterator types: an input iterator yielding const Example<T>&.
        using iterator_category = std::input_iterator_tag;
        /// A batch.
        using value_type = Example<T>;
        /// Signed distance between positions.
        using difference_type = std::ptrdiff_t;
        /// Pointer to the current batch.
        using pointer = const Example<T>*;
        /// The current batch, valid until the iterator moves.
        using reference = const Example<T>&;

        /// A singular iterator, only for assignment.
        Iterator() = default;
        /// The current batch: waits for it (or loads it, without workers). Throws tg::Error
        /// when loading it failed.
        reference operator*() const;
        /// As operator*, by pointer.
        pointer operator->() const { return &**this; }
        /// Moves to the next batch.
        Iterator& operator++();
        /// The batch number this iterator stands at.
        std::size_t index() const noexcept { return index_; }
        /// Whether both stand at the same batch number.
        friend bool operator==(const Iterator& a, const Iterator& b) noexcept { return a.index_ == b.index_; }
        /// Whether they stand at different batch numbers.
        friend bool operator!=(const Iterator& a, const Iterator& b) noexcept { return a.index_ != b.index_; }

    private:
        friend class StreamingLoader;
        Iterator(std::shared_ptr<detail::StreamingRun<T>> run, std::size_t index) : run_(std::move(run)), index_(index)
        {}
        std::shared_ptr<detail::StreamingRun<T>> run_;
        std::size_t index_ = 0;
    };

    /// Starts the current epoch (its workers begin loading) and stands at its first batch.
    /// The workers belong to the iterators of this begin(): they stop when the last copy
    /// goes (at the end of a range-for, or when a loop leaves early).
    Iterator begin();
    /// Past the last batch of the epoch.
    Iterator end();

private:
    const std::vector<std::size_t>& indices();
    std::shared_ptr<MapDataset<T>> dataset_;
    DataLoaderOptions options_;
    std::shared_ptr<Sampler> sampler_;
    std::uint64_t epoch_ = 0;
    bool have_indices_ = false;
    std::vector<std::size_t> indices_;
};

/// Stacks examples along a new first axis: data [B, ...], target [B, ...]. Throws
/// tg::Error naming `who` and the example's position if a shape differs from the first
/// example's, or if `examples` is empty.
template <class T>
Example<T> stack_examples(const std::vector<Example<T>>& examples, const char* who = "stack_examples");

extern template class StreamingLoader<float>;
extern template class StreamingLoader<double>;

}  // namespace tg::data
