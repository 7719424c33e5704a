#pragma once
/// \file data.hpp
/// `tg::data`: IDX files (MNIST, Fashion-MNIST; plain or gzip'd), in-memory datasets, and
/// mini-batch loaders whose shuffles repeat exactly for a given (seed, epoch).
///
/// \code
/// namespace data = tg::data;
/// const auto dir = std::string("/usr/share/datasets/fashion-mnist/");
/// data::Dataset<float> train = data::load_idx_dataset<float>(dir + "train-images-idx3-ubyte.gz",
///                                                            dir + "train-labels-idx1-ubyte.gz");
/// data::DataLoader<float> loader(train, {128, true, false, 42});   // batch_size, shuffle, drop_last, seed
/// for (std::uint64_t epoch = start_epoch; epoch < 20; ++epoch) {
///     loader.set_epoch(epoch);                 // the order depends on (seed, epoch) only
///     for (const data::Batch<float>& b : loader) {
///         tg::Var<float> x = tg::constant(b.features);   // [128, 784]
///         // ... b.labels: [128] class indices
///     }
/// }
/// \endcode

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/streaming.hpp"

namespace tg::data {

/// Contents of an IDX file (unsigned-byte data only, type code 0x08).
struct Idx {
    /// The dimensions from the header, e.g. [60000, 28, 28].
    std::vector<std::size_t> shape;
    /// The data, row-major: as many bytes as the product of `shape`.
    std::vector<std::uint8_t> data;
};

/// Reads an IDX file, gzip'd (recognised by its first two bytes, 0x1f 0x8b) or plain.
///
/// Throws tg::Error, with a message that starts with `path`, when the file cannot be opened
/// or read, is empty or too short for its header, is a corrupt or cut-short gzip stream, has
/// a wrong magic number (it must be 0x00 0x00 0x08 followed by a non-zero dimension count),
/// promises more than 1 GB of data, or holds fewer data bytes than its dimensions promise.
/// Bytes left over after the promised data are an error too (they mean the dimensions do not
/// describe the file), except garbage after the end of a gzip stream, which zlib ignores.
///
/// Memory follows the data, not the header: the whole promised size is allocated at once
/// only when the file backs it (a plain file at least that long, or a gzip file whose
/// trailer records that length); otherwise the buffer grows as bytes arrive, so a short
/// file with a huge header costs at most a few tens of MB before it is reported truncated.
Idx read_idx(const std::string& path);

/// Mean and (population) standard deviation of `x / 255` over all bytes of `images`, e.g.
/// of the training images to build Normalize::standardize. Throws tg::Error if there are
/// no bytes.
std::pair<double, double> pixel_mean_std(const Idx& images);

/// How unsigned-byte pixels become features.
struct Normalize {
    /// Which transformation applies.
    enum class Kind {
        none,        ///< raw values 0 .. 255
        unit,        ///< x / 255, in [0, 1]
        standardize  ///< (x / 255 - mean) / std
    };
    /// The transformation (x / 255 by default).
    Kind kind = Kind::unit;
    /// Mean subtracted by standardize, in units of x / 255.
    double mean = 0.0;
    /// Standard deviation divided by standardize, in units of x / 255.
    double std = 1.0;

    /// Raw byte values 0 .. 255.
    static Normalize raw() { return {Kind::none, 0.0, 1.0}; }
    /// x / 255, in [0, 1] (the default).
    static Normalize unit() { return {Kind::unit, 0.0, 1.0}; }
    /// (x / 255 - mean) / std; `std` must be positive and both finite (else tg::Error).
    /// Take mean and std from the training set (pixel_mean_std), never from the test set.
    static Normalize standardize(double mean, double std);
};

/// Rows of (features, label) held in memory: features [N, D], labels [N] with class indices
/// 0 .. num_classes() - 1. T is float or double.
template <class T> class Dataset {
public:
    /// Takes features [N, D] and labels [N]. Throws tg::Error unless the shapes are so, N > 0
    /// and every label is non-negative.
    Dataset(xt::xarray<T> features, xt::xarray<std::int64_t> labels);

    /// N, the number of rows.
    std::size_t size() const noexcept { return labels_.size(); }
    /// D, the number of features per row.
    std::size_t num_features() const noexcept { return features_.shape()[1]; }
    /// The largest label + 1.
    std::int64_t num_classes() const noexcept { return num_classes_; }
    /// [N, D]
    const xt::xarray<T>& features() const noexcept { return features_; }
    /// [N]
    const xt::xarray<std::int64_t>& labels() const noexcept { return labels_; }

    /// A copy of rows [first, first + count), e.g. to split off a validation set. Throws
    /// tg::Error if count is 0 or the rows run past size(). num_classes() of the subset is
    /// computed from its own labels.
    Dataset subset(std::size_t first, std::size_t count) const;

private:
    xt::xarray<T> features_;
    xt::xarray<std::int64_t> labels_;
    std::int64_t num_classes_ = 0;
};

/// Reads an images file [N, rows, cols] and a labels file [N] (IDX, plain or gzip'd; see
/// read_idx) into a Dataset with features [N, rows * cols] normalised as `normalize` says.
/// Throws tg::Error if either file is bad, the images file is not 3-D, the labels file is
/// not 1-D, the counts differ, N is 0, or the features would take more than 2 GB in memory
/// (N * rows * cols * sizeof(T): 512 M pixels as float, 256 M as double). Memory grows
/// with the data as in read_idx.
template <class T>
Dataset<T> load_idx_dataset(const std::string& images, const std::string& labels,
                            Normalize normalize = Normalize::unit());

/// One mini-batch: features [B, D] and labels [B].
template <class T> struct Batch {
    /// The rows' features, [B, D].
    xt::xarray<T> features;
    /// The rows' labels, [B].
    xt::xarray<std::int64_t> labels;
    /// B, the number of rows.
    std::size_t size() const noexcept { return labels.size(); }
};

/// Options of a DataLoader (also reachable as `DataLoader<T>::Options`).
struct LoaderOptions {
    /// Rows per batch; must be positive.
    std::size_t batch_size = 32;
    /// A new order each epoch; otherwise rows come in dataset order.
    bool shuffle = true;
    /// Leave out the last batch when it would be shorter than batch_size.
    bool drop_last = false;
    /// With the epoch number, fixes every shuffle.
    std::uint64_t seed = 0;
};

/// The order in which a DataLoader visits n rows in `epoch`: 0, 1, ..., n - 1 without
/// shuffle; with it, a permutation that depends only on (seed, epoch), the same with every
/// standard library (see DataLoader). tg::dist::DistributedSampler shards the same order.
std::vector<std::size_t> epoch_order(std::size_t n, bool shuffle, std::uint64_t seed, std::uint64_t epoch);

/// Cuts a Dataset into mini-batches, epoch after epoch.
///
/// The loader keeps a pointer to the dataset, not a copy: the dataset must outlive the
/// loader (and a temporary dataset is refused at compile time).
///
/// Call set_epoch(e) at the start of each epoch. With shuffle, the order of epoch e is a
/// permutation that depends only on (seed, e): a run resumed at epoch e sees exactly the
/// batches of an uninterrupted run, whatever the standard library (the shuffle is
/// Fisher-Yates on tg::Generator with tapegrad's own unbiased draws, not std::shuffle).
/// A new loader starts at epoch 0.
///
/// Batches are written into buffers owned by the loader: one for full batches and one for a
/// short last batch, so after the first epoch no batch allocates, and full batches always
/// come in the same memory. A returned batch stays valid while the loader lives, but the
/// next batch of the same size overwrites it: copy it to keep it.
template <class T> class DataLoader {
public:
    /// The loader's options.
    using Options = LoaderOptions;

    /// Throws tg::Error if batch_size is 0, or if drop_last leaves no batch at all.
    DataLoader(const Dataset<T>& data, Options options = {});
    /// Refused: the loader would point into a destroyed dataset.
    DataLoader(Dataset<T>&& data, Options options = {}) = delete;

    /// Batches per epoch: ceil(N / batch_size), or floor(N / batch_size) with drop_last.
    std::size_t num_batches() const noexcept;

    /// Fixes the row order for `epoch` (see the class comment).
    void set_epoch(std::uint64_t epoch);
    /// The epoch last given to set_epoch (0 for a new loader).
    std::uint64_t epoch() const noexcept { return epoch_; }
    /// The current epoch's row order: batch i holds rows order()[i * batch_size ...].
    const std::vector<std::size_t>& order() const noexcept { return order_; }

    /// The dataset the loader reads from.
    const Dataset<T>& dataset() const noexcept { return *data_; }
    /// The options it was built with.
    const Options& options() const noexcept { return options_; }

    /// Batch i (0 <= i < num_batches()) of the current epoch, copied into the loader's
    /// buffers. Throws tg::Error if i is out of range.
    const Batch<T>& batch(std::size_t i);

    /// Batch i written into the caller's arrays instead (resized when the shape differs,
    /// so reusing them allocates nothing): e.g. straight into a constant Var's
    /// `mutable_value()`, saving a copy per step.
    void fill(std::size_t i, xt::xarray<T>& features, xt::xarray<std::int64_t>& labels) const;

    /// Input iterator over the current epoch's batches; dereferencing fills the batch.
    class Iterator {
    public:
        /// Standard iterator types: an input iterator yielding const Batch<T>&.
        using iterator_category = std::input_iterator_tag;
        /// The batch type.
        using value_type = Batch<T>;
        /// Signed distance between positions.
        using difference_type = std::ptrdiff_t;
        /// Pointer to the current batch.
        using pointer = const Batch<T>*;
        /// Reference to the current batch, valid until the next batch of the same size.
        using reference = const Batch<T>&;

        /// A singular iterator, only for assignment.
        Iterator() = default;
        /// Stands at batch `index` of `loader`'s current epoch.
        Iterator(DataLoader* loader, std::size_t index) : loader_(loader), index_(index) {}
        /// Fills and returns the current batch (loader.batch(index())); throws tg::Error past the end.
        reference operator*() const { return loader_->batch(index_); }
        /// As operator*, by pointer.
        pointer operator->() const { return &loader_->batch(index_); }
        /// Moves to the next batch.
        Iterator& operator++()
        {
            ++index_;
            return *this;
        }
        /// Moves to the next batch, returning the iterator as it was.
        Iterator operator++(int)
        {
            Iterator old = *this;
            ++index_;
            return old;
        }
        /// The batch number this iterator stands at.
        std::size_t index() const noexcept { return index_; }
        /// Whether both stand at the same batch number.
        friend bool operator==(const Iterator& a, const Iterator& b) noexcept { return a.index_ == b.index_; }
        /// Whether they stand at different batch numbers.
        friend bool operator!=(const Iterator& a, const Iterator& b) noexcept { return a.index_ != b.index_; }

    private:
        DataLoader* loader_ = nullptr;
        std::size_t index_ = 0;
    };

    /// `for (const auto& b : loader)` walks the current epoch; call set_epoch first.
    Iterator begin() { return Iterator(this, 0); }
    /// Past the last batch of the epoch.
    Iterator end() { return Iterator(this, num_batches()); }

private:
    const Dataset<T>* data_;
    Options options_;
    std::uint64_t epoch_ = 0;
    std::vector<std::size_t> order_;
    Batch<T> full_;   ///< buffers for batches of batch_size rows
    Batch<T> short_;  ///< buffers for a shorter last batch
};

extern template class Dataset<float>;
extern template class Dataset<double>;
extern template class DataLoader<float>;
extern template class DataLoader<double>;
///@{
/// load_idx_dataset, compiled once in the library for float and double.
extern template Dataset<float> load_idx_dataset<float>(const std::string&, const std::string&, Normalize);
extern template Dataset<double> load_idx_dataset<double>(const std::string&, const std::string&, Normalize);
///@}

}  // namespace tg::data
